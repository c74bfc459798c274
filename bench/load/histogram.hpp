// A log-linear latency histogram in the spirit of HdrHistogram: constant relative precision over a
// wide range, fixed memory, O(1) record, and mergeable so each thread records into its own.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace jifen::bench {

// Values below 2^sub_bucket_bits are counted exactly; above that each power of two is split into
// 2^(sub_bucket_bits - 1) equal buckets, so a bucket is at most 1/256 of the values it holds wide
// (0.4% relative error), enough to tell a p99 of 1.00 ms from 1.01 ms.
inline constexpr uint32_t histogram_sub_bucket_bits = 9;
// Largest value kept apart: 2^40 ns is about 18 minutes. Larger values land in the last bucket
// (the exact maximum is still tracked separately).
inline constexpr uint32_t histogram_value_bits_max = 40;

class LatencyHistogram {
public:
    LatencyHistogram();

    // Records one value (nanoseconds, by convention of this tool).
    void record(uint64_t value) noexcept { record_n(value, 1); }
    void record_n(uint64_t value, uint64_t count) noexcept;

    // Adds every value of `other` into this one.
    void merge(const LatencyHistogram& other) noexcept;
    void clear() noexcept;

    uint64_t count() const noexcept { return count_; }
    uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
    uint64_t max() const noexcept { return max_; }
    double mean() const noexcept;

    // The value at `percentile` (0..100, to 4 decimals: 99.9999 is the finest) by the
    // nearest-rank rule: the smallest recorded value v such that at least percentile% of the
    // values are <= v, the rank counted exactly. Returned as the highest value that
    // shares v's bucket (never above max()), so it over-states by at most one bucket width.
    // 0 for an empty histogram.
    uint64_t value_at_percentile(double percentile) const noexcept;

    // Bucket geometry, public for the tests.
    static uint32_t bucket_index(uint64_t value) noexcept;
    static uint64_t bucket_lowest_value(uint32_t index) noexcept;
    static uint64_t bucket_highest_value(uint32_t index) noexcept;
    static uint32_t bucket_count() noexcept;

private:
    std::vector<uint64_t> counts_;  // Sized once in the constructor.
    uint64_t count_ = 0;
    uint64_t min_ = UINT64_MAX;
    uint64_t max_ = 0;
    long double sum_ = 0;
};

}  // namespace jifen::bench
