// Log-linear bucket arithmetic and percentile queries for LatencyHistogram.
#include "bench/load/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace jifen::bench {
namespace {

constexpr uint64_t exact_values = uint64_t{1} << histogram_sub_bucket_bits;
constexpr uint64_t half_sub_buckets = exact_values / 2;
// Magnitudes above the exact range: value bit width histogram_sub_bucket_bits + 1 gets magnitude
// 1, and so on up to histogram_value_bits_max.
constexpr uint32_t magnitudes = histogram_value_bits_max - histogram_sub_bucket_bits;
constexpr uint32_t total_buckets =
    static_cast<uint32_t>(exact_values + magnitudes * half_sub_buckets);
constexpr uint64_t value_tracked_max = (uint64_t{1} << histogram_value_bits_max) - 1;

static_assert(histogram_sub_bucket_bits >= 2 &&
              histogram_sub_bucket_bits < histogram_value_bits_max);
static_assert(histogram_value_bits_max < 63);

constexpr uint64_t ppm_whole = 1'000'000;

// ceil(ppm x count / 10^6) without overflow: count = whole x 10^6 + rest, and rest x ppm stays
// below 10^12.
constexpr uint64_t rank_at_ppm(uint64_t ppm, uint64_t count) noexcept {
    const uint64_t whole = count / ppm_whole;
    const uint64_t rest = count % ppm_whole;
    return whole * ppm + (rest * ppm + ppm_whole - 1) / ppm_whole;
}
static_assert(rank_at_ppm(999'000, 1'000) == 999);
static_assert(rank_at_ppm(999'000, 2'000'003) == 1'998'003);

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(total_buckets, 0) {}

uint32_t LatencyHistogram::bucket_count() noexcept { return total_buckets; }

uint32_t LatencyHistogram::bucket_index(uint64_t value) noexcept {
    value = std::min(value, value_tracked_max);
    if (value < exact_values) {
        return static_cast<uint32_t>(value);
    }
    // The value's top histogram_sub_bucket_bits bits pick the sub-bucket; the bits below them are
    // the bucket width that is lost.
    const auto magnitude = static_cast<uint32_t>(std::bit_width(value)) - histogram_sub_bucket_bits;
    const uint64_t top = value >> magnitude;  // In [half_sub_buckets, exact_values).
    return static_cast<uint32_t>(exact_values + (magnitude - 1) * half_sub_buckets +
                                 (top - half_sub_buckets));
}

uint64_t LatencyHistogram::bucket_lowest_value(uint32_t index) noexcept {
    if (index < exact_values) {
        return index;
    }
    const uint64_t above = index - exact_values;
    const uint64_t magnitude = above / half_sub_buckets + 1;
    const uint64_t top = above % half_sub_buckets + half_sub_buckets;
    return top << magnitude;
}

uint64_t LatencyHistogram::bucket_highest_value(uint32_t index) noexcept {
    if (index < exact_values) {
        return index;
    }
    const uint64_t magnitude = (index - exact_values) / half_sub_buckets + 1;
    return bucket_lowest_value(index) + (uint64_t{1} << magnitude) - 1;
}

void LatencyHistogram::record_n(uint64_t value, uint64_t count) noexcept {
    if (count == 0) {
        return;
    }
    counts_[bucket_index(value)] += count;
    count_ += count;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
    sum_ += static_cast<long double>(value) * static_cast<long double>(count);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
    if (other.count_ == 0) {
        return;
    }
    for (size_t index = 0; index < counts_.size(); ++index) {
        counts_[index] += other.counts_[index];
    }
    count_ += other.count_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
}

void LatencyHistogram::clear() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = 0;
    min_ = UINT64_MAX;
    max_ = 0;
    sum_ = 0;
}

double LatencyHistogram::mean() const noexcept {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

uint64_t LatencyHistogram::value_at_percentile(double percentile) const noexcept {
    if (count_ == 0) {
        return 0;
    }
    // Nearest rank, 1-based: ceil(p/100 x n), at least 1. Counted in parts per million of the
    // values, all in integers: 99.9 x 1000 / 100 in binary floating point is 999.0000000000000568,
    // whose ceiling is one rank too high. The percentile is rounded to 4 decimals to get there.
    const auto ppm = static_cast<uint64_t>(std::llround(std::clamp(percentile, 0.0, 100.0) * 1e4));
    uint64_t rank = rank_at_ppm(ppm, count_);
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (uint32_t index = 0; index < counts_.size(); ++index) {
        seen += counts_[index];
        if (seen >= rank) {
            // The last bucket also holds every clamped value, so only max_ bounds it.
            const bool last = index + 1 == counts_.size();
            return last ? max_ : std::min(bucket_highest_value(index), max_);
        }
    }
    return max_;
}

}  // namespace jifen::bench
