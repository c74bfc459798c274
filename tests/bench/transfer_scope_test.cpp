// Transfer scopes: counterparties land on the shard asked for, whatever the key law, and runs
// that cannot keep a scope are named before they start.
#include "bench/load/transfer_scope.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "protocol/wire.hpp"
#include "tests/bench/seed.hpp"

namespace jifen::bench {
namespace {

constexpr uint64_t members = 100'000;

std::vector<KeyDistributionConfig> every_law() {
    return {
        {.law = KeyLaw::uniform, .members = members},
        {.law = KeyLaw::zipf, .members = members, .zipf_s = 1.1},
        // One hot member takes every draw: the law alone never finds a counterparty.
        {.law = KeyLaw::hotset, .members = members, .hot_fraction = 1e-9, .hot_share = 1.0},
    };
}

// Draws `draws` transfers from the law's own senders and counts those whose counterparty is on
// the sender's shard; fails the test on a counterparty equal to its sender.
uint64_t same_shard_count(const KeyDistribution& keys, TransferScope scope, uint32_t shard_count,
                          uint64_t seed, uint64_t draws) {
    Rng rng(seed);
    uint64_t same = 0;
    for (uint64_t draw = 0; draw < draws; ++draw) {
        const uint64_t from = keys.next(rng);
        const uint64_t to = next_counterparty(keys, rng, from, scope, shard_count);
        EXPECT_NE(to, from) << testing::seed_note(seed);
        EXPECT_GE(to, 1u);
        EXPECT_LE(to, members);
        same += protocol::shard_of(from, shard_count) == protocol::shard_of(to, shard_count);
    }
    return same;
}

TEST(TransferScope, SameShardCounterpartiesLiveOnTheSendersShardForEveryLaw) {
    const uint64_t seed = testing::test_seed();
    for (const KeyDistributionConfig& config : every_law()) {
        const KeyDistribution keys(config);
        for (const uint32_t shard_count : {1u, 2u, 8u, 1'024u}) {
            EXPECT_EQ(same_shard_count(keys, TransferScope::same_shard, shard_count, seed, 2'000),
                      2'000u)
                << to_string(config.law) << ", " << shard_count << " shards, "
                << testing::seed_note(seed);
        }
    }
}

TEST(TransferScope, CrossShardCounterpartiesLiveOnAnotherShardForEveryLaw) {
    const uint64_t seed = testing::test_seed();
    for (const KeyDistributionConfig& config : every_law()) {
        const KeyDistribution keys(config);
        for (const uint32_t shard_count : {2u, 8u, 1'024u}) {
            EXPECT_EQ(same_shard_count(keys, TransferScope::cross_shard, shard_count, seed, 2'000),
                      0u)
                << to_string(config.law) << ", " << shard_count << " shards, "
                << testing::seed_note(seed);
        }
    }
}

TEST(TransferScope, AnyScopeKeepsTheLawsDrawSoBothKindsOccur) {
    const uint64_t seed = testing::test_seed();
    const KeyDistribution keys({.law = KeyLaw::uniform, .members = members});
    const uint64_t same = same_shard_count(keys, TransferScope::any, 2, seed, 2'000);
    // Uniform keys on 2 shards: about half stay on one shard; 600 is over 17 sigmas away.
    EXPECT_GT(same, 600u) << testing::seed_note(seed);
    EXPECT_LT(same, 1'400u) << testing::seed_note(seed);
}

TEST(TransferScope, ScopesThatCannotHoldAreNamedAndTheOthersPass) {
    EXPECT_EQ(transfer_scope_problem(TransferScope::any, 2, 1), "");
    EXPECT_EQ(transfer_scope_problem(TransferScope::same_shard, members, 1), "");
    EXPECT_EQ(transfer_scope_problem(TransferScope::same_shard, members, 8), "");
    EXPECT_EQ(transfer_scope_problem(TransferScope::cross_shard, members, 8), "");
    EXPECT_EQ(transfer_scope_problem(TransferScope::same_shard, uint64_t{1} << 30, 1'024), "");

    EXPECT_NE(transfer_scope_problem(TransferScope::cross_shard, members, 1).find("2 or more"),
              std::string::npos);
    // Two members on 1,024 shards: each is alone on its shard, and no two share one.
    ASSERT_NE(protocol::shard_of(1, 1'024), protocol::shard_of(2, 1'024));
    EXPECT_NE(transfer_scope_problem(TransferScope::same_shard, 2, 1'024).find("alone"),
              std::string::npos);
    EXPECT_EQ(transfer_scope_problem(TransferScope::cross_shard, 2, 1'024), "");
}

TEST(TransferScope, NamesRoundTripAndUnknownOnesAreRefused) {
    for (const TransferScope scope :
         {TransferScope::any, TransferScope::same_shard, TransferScope::cross_shard}) {
        EXPECT_EQ(parse_transfer_scope(to_string(scope)), scope);
    }
    EXPECT_EQ(parse_transfer_scope("cross"), std::nullopt);
}

}  // namespace
}  // namespace jifen::bench
