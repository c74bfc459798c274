// Key laws: the Zipf sampler follows its law, uniform is flat, hotset keeps its share.
#include "bench/load/key_distribution.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "tests/bench/seed.hpp"

namespace jifen::bench {
namespace {

// Pearson's chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<uint64_t>& observed, const std::vector<double>& probability,
                  uint64_t draws) {
    double statistic = 0;
    for (size_t index = 0; index < observed.size(); ++index) {
        const double expected = probability[index] * static_cast<double>(draws);
        const double difference = static_cast<double>(observed[index]) - expected;
        statistic += difference * difference / expected;
    }
    return statistic;
}

// The 99.9th percentile of chi-square with 49 degrees of freedom is 85.35: a correct sampler
// exceeds it once in a thousand seeds; a wrong one (an off-by-one rank, a wrong exponent) exceeds
// it by orders of magnitude at this many draws.
constexpr uint64_t ranks = 50;
constexpr double chi_square_49_df_p999 = 85.35;

TEST(ZipfSampler, RankFrequenciesFollowTheZipfLawForEveryExponent) {
    const uint64_t seed = testing::test_seed();
    for (const double s : {0.5, 0.99, 1.0, 1.1, 2.0}) {
        const ZipfSampler sampler(ranks, s);
        Rng rng(seed);
        constexpr uint64_t draws = 400'000;
        std::vector<uint64_t> observed(ranks, 0);
        for (uint64_t draw = 0; draw < draws; ++draw) {
            const uint64_t rank = sampler.sample(rng);
            ASSERT_GE(rank, 1u);
            ASSERT_LE(rank, ranks);
            ++observed[rank - 1];
        }
        std::vector<double> probability(ranks);
        for (uint64_t rank = 1; rank <= ranks; ++rank) {
            probability[rank - 1] = sampler.probability(rank);
        }
        EXPECT_LT(chi_square(observed, probability, draws), chi_square_49_df_p999)
            << "s=" << s << ", " << testing::seed_note(seed);
        // The most popular rank is visibly the most popular.
        EXPECT_GT(observed[0], observed[ranks - 1])
            << "s=" << s << ", " << testing::seed_note(seed);
    }
}

TEST(ZipfSampler, HugeKeyspacesCostNothingToSetUpAndStayInRange) {
    const uint64_t seed = testing::test_seed();
    const uint64_t members = 1'000'000'000;
    const ZipfSampler sampler(members, 0.99);
    Rng rng(seed);
    uint64_t rank_one = 0;
    constexpr uint64_t draws = 100'000;
    for (uint64_t draw = 0; draw < draws; ++draw) {
        const uint64_t rank = sampler.sample(rng);
        ASSERT_GE(rank, 1u) << testing::seed_note(seed);
        ASSERT_LE(rank, members) << testing::seed_note(seed);
        rank_one += rank == 1 ? 1 : 0;
    }
    // P(1) = 1 / H(10^9, 0.99), about 0.043; allow a wide band around it.
    const double share = static_cast<double>(rank_one) / draws;
    EXPECT_GT(share, 0.035) << testing::seed_note(seed);
    EXPECT_LT(share, 0.052) << testing::seed_note(seed);
}

TEST(ZipfSampler, RefusesAnEmptyKeyspaceOrANonPositiveExponent) {
    EXPECT_THROW(ZipfSampler(0, 1.0), std::invalid_argument);
    EXPECT_THROW(ZipfSampler(10, 0.0), std::invalid_argument);
    EXPECT_THROW(ZipfSampler(10, -1.0), std::invalid_argument);
}

TEST(KeyDistribution, UniformDrawsEveryMemberEquallyOften) {
    const uint64_t seed = testing::test_seed();
    const KeyDistribution keys({.law = KeyLaw::uniform, .members = ranks});
    Rng rng(seed);
    constexpr uint64_t draws = 200'000;
    std::vector<uint64_t> observed(ranks, 0);
    for (uint64_t draw = 0; draw < draws; ++draw) {
        const uint64_t member = keys.next(rng);
        ASSERT_GE(member, 1u);
        ASSERT_LE(member, ranks);
        ++observed[member - 1];
    }
    const std::vector<double> probability(ranks, 1.0 / ranks);
    EXPECT_LT(chi_square(observed, probability, draws), chi_square_49_df_p999)
        << testing::seed_note(seed);
}

TEST(KeyDistribution, HotsetSendsTheHotShareToTheHotMembers) {
    const uint64_t seed = testing::test_seed();
    const KeyDistribution keys(
        {.law = KeyLaw::hotset, .members = 10'000, .hot_fraction = 0.02, .hot_share = 0.8});
    ASSERT_EQ(keys.hot_members(), 200u);
    Rng rng(seed);
    constexpr uint64_t draws = 200'000;
    uint64_t hot = 0;
    for (uint64_t draw = 0; draw < draws; ++draw) {
        const uint64_t member = keys.next(rng);
        ASSERT_GE(member, 1u);
        ASSERT_LE(member, 10'000u);
        hot += member <= keys.hot_members() ? 1 : 0;
    }
    EXPECT_NEAR(static_cast<double>(hot) / draws, 0.8, 0.01) << testing::seed_note(seed);
}

TEST(KeyDistribution, ACounterpartyIsNeverTheMemberItself) {
    const uint64_t seed = testing::test_seed();
    // Two members under a steep Zipf law: the redraws alone would often return member 1 again.
    const KeyDistribution keys({.law = KeyLaw::zipf, .members = 2, .zipf_s = 3.0});
    Rng rng(seed);
    for (int draw = 0; draw < 10'000; ++draw) {
        const uint64_t member = keys.next(rng);
        const uint64_t other = keys.next_other_than(rng, member);
        ASSERT_NE(member, other) << testing::seed_note(seed);
        ASSERT_GE(other, 1u);
        ASSERT_LE(other, 2u);
    }
}

TEST(KeyDistribution, KeyLawNamesRoundTrip) {
    for (const KeyLaw law : {KeyLaw::uniform, KeyLaw::zipf, KeyLaw::hotset}) {
        EXPECT_EQ(parse_key_law(to_string(law)), law);
    }
    EXPECT_FALSE(parse_key_law("pareto").has_value());
}

}  // namespace
}  // namespace jifen::bench
