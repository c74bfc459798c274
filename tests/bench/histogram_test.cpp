// LatencyHistogram: bucket geometry, percentiles against a sorted-array reference, merging.
#include "bench/load/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "bench/load/random.hpp"
#include "tests/bench/seed.hpp"

namespace jifen::bench {
namespace {

// The nearest-rank percentile of a sorted array: what the histogram approximates. The smallest
// rank r with r / n >= ppm / 10^6, counted in integers.
uint64_t reference_percentile(const std::vector<uint64_t>& sorted, uint64_t ppm) {
    uint64_t rank = 1;
    while (rank < sorted.size() && rank * 1'000'000 < ppm * sorted.size()) {
        ++rank;
    }
    return sorted[rank - 1];
}

// Latency-like values: log-uniform from 1 ns to about 2^34 ns (17 s), so every bucket magnitude
// is exercised, with a dense cluster like a real latency mode.
std::vector<uint64_t> latency_like_values(Rng& rng, size_t count) {
    std::vector<uint64_t> values;
    values.reserve(count);
    for (size_t index = 0; index < count; ++index) {
        if (rng.below(2) == 0) {
            values.push_back(50'000 + rng.below(20'000));
        } else {
            values.push_back(static_cast<uint64_t>(std::exp2(rng.next_double() * 34.0)));
        }
    }
    return values;
}

struct Percentile {
    double percent;
    uint64_t ppm;  // The same, in parts per million.
};
constexpr Percentile percentiles_checked[] = {
    {0, 0},        {0.1, 1'000},  {1, 10'000},     {10, 100'000},    {50, 500'000},
    {90, 900'000}, {99, 990'000}, {99.9, 999'000}, {99.99, 999'900}, {100, 1'000'000},
};

TEST(LatencyHistogram, BucketsAreContiguousAndEachValueMapsIntoItsOwnBucket) {
    for (uint32_t index = 0; index + 1 < LatencyHistogram::bucket_count(); ++index) {
        const uint64_t lowest = LatencyHistogram::bucket_lowest_value(index);
        const uint64_t highest = LatencyHistogram::bucket_highest_value(index);
        ASSERT_LE(lowest, highest) << "bucket " << index;
        ASSERT_EQ(LatencyHistogram::bucket_index(lowest), index);
        ASSERT_EQ(LatencyHistogram::bucket_index(highest), index);
        ASSERT_EQ(LatencyHistogram::bucket_lowest_value(index + 1), highest + 1);
    }
}

TEST(LatencyHistogram, EveryBucketIsAtMostOne256thOfItsValuesWide) {
    for (uint32_t index = 0; index < LatencyHistogram::bucket_count(); ++index) {
        const uint64_t lowest = LatencyHistogram::bucket_lowest_value(index);
        const uint64_t width = LatencyHistogram::bucket_highest_value(index) - lowest + 1;
        ASSERT_TRUE(width == 1 || width * 256 <= lowest) << "bucket " << index;
    }
}

TEST(LatencyHistogram, SmallValuesAreCountedExactly) {
    LatencyHistogram histogram;
    for (uint64_t value = 1; value <= 100; ++value) {
        histogram.record(value);
    }
    EXPECT_EQ(histogram.value_at_percentile(50), 50u);
    EXPECT_EQ(histogram.value_at_percentile(99), 99u);
    EXPECT_EQ(histogram.value_at_percentile(100), 100u);
    EXPECT_EQ(histogram.min(), 1u);
    EXPECT_DOUBLE_EQ(histogram.mean(), 50.5);
}

// 99.9 x n / 100 is not exact in binary floating point: for n = 1000 its ceiling is 1000.
TEST(LatencyHistogram, TheP999RankIsExactWhenTheCountIsAMultipleOfAThousand) {
    for (const uint64_t count : {1'000u, 2'000u, 1'000'000u}) {
        LatencyHistogram histogram;
        histogram.record_n(1, count - count / 1'000);
        histogram.record_n(500, count / 1'000);
        EXPECT_EQ(histogram.value_at_percentile(99.9), 1u) << count << " values";
        EXPECT_EQ(histogram.value_at_percentile(99.99), 500u) << count << " values";
    }
}

TEST(LatencyHistogram, PercentilesMatchASortedArrayWithinOneBucketOnRandomData) {
    const uint64_t seed = testing::test_seed();
    Rng rng(seed);
    for (const size_t count : {1ul, 7ul, 1'000ul, 200'000ul}) {
        std::vector<uint64_t> values = latency_like_values(rng, count);
        LatencyHistogram histogram;
        for (const uint64_t value : values) {
            histogram.record(value);
        }
        std::sort(values.begin(), values.end());
        ASSERT_EQ(histogram.count(), count) << testing::seed_note(seed);
        ASSERT_EQ(histogram.min(), values.front()) << testing::seed_note(seed);
        ASSERT_EQ(histogram.max(), values.back()) << testing::seed_note(seed);
        for (const auto [percentile, ppm] : percentiles_checked) {
            const uint64_t expected = reference_percentile(values, ppm);
            const uint64_t actual = histogram.value_at_percentile(percentile);
            EXPECT_GE(actual, expected)
                << "p" << percentile << " of " << count << " values, " << testing::seed_note(seed);
            EXPECT_LE(actual, expected + expected / 256)
                << "p" << percentile << " of " << count << " values, " << testing::seed_note(seed);
        }
    }
}

TEST(LatencyHistogram, MergingPerThreadHistogramsEqualsRecordingIntoOne) {
    const uint64_t seed = testing::test_seed();
    Rng rng(seed + 1);
    const std::vector<uint64_t> values = latency_like_values(rng, 50'000);
    LatencyHistogram whole;
    std::vector<LatencyHistogram> parts(4);
    for (size_t index = 0; index < values.size(); ++index) {
        whole.record(values[index]);
        parts[index % parts.size()].record(values[index]);
    }
    LatencyHistogram merged;
    for (const LatencyHistogram& part : parts) {
        merged.merge(part);
    }
    EXPECT_EQ(merged.count(), whole.count()) << testing::seed_note(seed);
    EXPECT_EQ(merged.min(), whole.min()) << testing::seed_note(seed);
    EXPECT_EQ(merged.max(), whole.max()) << testing::seed_note(seed);
    for (const Percentile& checked : percentiles_checked) {
        EXPECT_EQ(merged.value_at_percentile(checked.percent),
                  whole.value_at_percentile(checked.percent))
            << "p" << checked.percent << ", " << testing::seed_note(seed);
    }
}

TEST(LatencyHistogram, AnEmptyHistogramReportsZeroEverywhere) {
    LatencyHistogram histogram;
    EXPECT_EQ(histogram.count(), 0u);
    EXPECT_EQ(histogram.min(), 0u);
    EXPECT_EQ(histogram.max(), 0u);
    EXPECT_EQ(histogram.value_at_percentile(99), 0u);
    EXPECT_EQ(histogram.mean(), 0.0);
}

TEST(LatencyHistogram, ValuesBeyondTheTrackedRangeShareTheLastBucketButKeepTheExactMax) {
    LatencyHistogram histogram;
    const uint64_t huge = uint64_t{1} << 50;
    histogram.record(huge);
    EXPECT_EQ(LatencyHistogram::bucket_index(huge), LatencyHistogram::bucket_count() - 1);
    EXPECT_EQ(histogram.max(), huge);
    EXPECT_EQ(histogram.value_at_percentile(100), huge);
}

TEST(LatencyHistogram, ClearForgetsEverything) {
    LatencyHistogram histogram;
    histogram.record_n(1'000, 5);
    histogram.clear();
    EXPECT_EQ(histogram.count(), 0u);
    EXPECT_EQ(histogram.max(), 0u);
    histogram.record(7);
    EXPECT_EQ(histogram.value_at_percentile(50), 7u);
}

}  // namespace
}  // namespace jifen::bench
