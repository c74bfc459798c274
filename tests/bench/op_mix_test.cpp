// Operation mix: parsing, proportions of the draws, and the expected-outcome table.
#include "bench/load/op_mix.hpp"

#include <gtest/gtest.h>

#include <array>
#include <stdexcept>

#include "tests/bench/seed.hpp"

namespace jifen::bench {
namespace {

TEST(OpMix, ParsesNamedWeightsAndLeavesTheRestAtZero) {
    const OpMix mix = OpMix::parse("earn=50, redeem=30,hold=10,balance=10,transfer=0");
    EXPECT_EQ(mix.weight(OpKind::earn), 50u);
    EXPECT_EQ(mix.weight(OpKind::redeem), 30u);
    EXPECT_EQ(mix.weight(OpKind::hold), 10u);
    EXPECT_EQ(mix.weight(OpKind::balance), 10u);
    EXPECT_EQ(mix.weight(OpKind::transfer), 0u);
    EXPECT_EQ(mix.weight(OpKind::purchase), 0u);
    EXPECT_EQ(mix.weight_total(), 100u);
    EXPECT_EQ(mix.to_string(), "earn=50,redeem=30,hold=10,balance=10");
}

TEST(OpMix, DrawsFollowTheWeights) {
    const uint64_t seed = testing::test_seed();
    const OpMix mix = OpMix::parse("earn=45,redeem=25,hold=15,balance=10,transfer=4,purchase=1");
    Rng rng(seed);
    constexpr int draws = 400'000;
    std::array<int, op_kind_count> counts = {};
    for (int draw = 0; draw < draws; ++draw) {
        ++counts[static_cast<size_t>(mix.next(rng))];
    }
    for (const OpKind kind : op_kinds_mixable) {
        EXPECT_NEAR(static_cast<double>(counts[static_cast<size_t>(kind)]) / draws, mix.share(kind),
                    0.005)
            << to_string(kind) << ", " << testing::seed_note(seed);
    }
    EXPECT_EQ(counts[static_cast<size_t>(OpKind::capture)], 0) << testing::seed_note(seed);
}

TEST(OpMix, AZeroWeightIsNeverDrawn) {
    const uint64_t seed = testing::test_seed();
    const OpMix mix = OpMix::parse("earn=0,balance=1");
    Rng rng(seed);
    for (int draw = 0; draw < 10'000; ++draw) {
        ASSERT_EQ(mix.next(rng), OpKind::balance) << testing::seed_note(seed);
    }
}

TEST(OpMix, RefusesUnknownNamesBadWeightsAndAnAllZeroMix) {
    EXPECT_THROW(OpMix::parse("earn=1,refund=2"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("capture=1"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn=50,earn=50"), std::invalid_argument);  // Which was meant?
    EXPECT_THROW(OpMix::parse("earn=1,,redeem=1"), std::invalid_argument);
    // An empty entry is refused wherever it is, last included.
    EXPECT_THROW(OpMix::parse(",earn=1"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn=1,"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn=1, "), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn=-1"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn=1x"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse("earn=0,redeem=0"), std::invalid_argument);
    EXPECT_THROW(OpMix::parse(""), std::invalid_argument);
}

TEST(OpMix, InsufficientPointsIsExpectedOnlyWhereTheMixSpendsPoints) {
    EXPECT_TRUE(is_expected(OpKind::redeem, Result::insufficient_points));
    EXPECT_TRUE(is_expected(OpKind::hold, Result::insufficient_points));
    EXPECT_TRUE(is_expected(OpKind::hold, Result::member_hold_limit));
    EXPECT_FALSE(is_expected(OpKind::redeem, Result::member_hold_limit));
    EXPECT_FALSE(is_expected(OpKind::hold, Result::hold_limit));
    EXPECT_TRUE(is_expected(OpKind::transfer, Result::insufficient_points));
    EXPECT_FALSE(is_expected(OpKind::earn, Result::insufficient_points));
    EXPECT_FALSE(is_expected(OpKind::capture, Result::insufficient_points));
    for (size_t index = 0; index < op_kind_count; ++index) {
        const auto kind = static_cast<OpKind>(index);
        EXPECT_TRUE(is_expected(kind, Result::ok)) << to_string(kind);
        EXPECT_FALSE(is_expected(kind, Result::busy)) << to_string(kind);
        EXPECT_FALSE(is_expected(kind, Result::member_not_found)) << to_string(kind);
    }
}

TEST(OpMix, KindNamesRoundTrip) {
    for (size_t index = 0; index < op_kind_count; ++index) {
        const auto kind = static_cast<OpKind>(index);
        EXPECT_EQ(parse_op_kind(to_string(kind)), kind);
    }
}

TEST(OpMix, AKeyWhoseScopeCannotSendTheMixIsNamedWithTheKindsItRefuses) {
    const OpMix mix = OpMix::parse("earn=50,redeem=20,hold=10,balance=10,transfer=10");
    const std::string read_only = scope_problem(mix, protocol::scope_read);
    EXPECT_NE(read_only.find("(read)"), std::string::npos) << read_only;
    EXPECT_NE(read_only.find("earn, redeem, hold, transfer"), std::string::npos) << read_only;
    EXPECT_EQ(read_only.find("balance,"), std::string::npos) << read_only;
    const std::string pos = scope_problem(mix, protocol::scope_pos);
    EXPECT_NE(pos.find("(pos) does not allow transfer"), std::string::npos) << pos;
    EXPECT_EQ(scope_problem(mix, protocol::scope_admin), "");
    EXPECT_EQ(scope_problem(OpMix::parse("balance=1"), protocol::scope_read), "");
    EXPECT_EQ(scope_problem(OpMix::parse("purchase=1,hold=1"), protocol::scope_pos), "");
}

}  // namespace
}  // namespace jifen::bench
