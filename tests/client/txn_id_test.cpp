// Transaction id text form: 32 hex digits, high half first; parsing rejects everything else.
#include "client/txn_id.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <set>

namespace jifen::client {
namespace {

uint64_t test_seed() {
    const char* text = std::getenv("JIFEN_SEED");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : std::random_device{}();
}

TEST(TxnId, TextIsHighHalfThenLowHalfInLowercaseHex) {
    const TxnId txn_id{0xfedcba9876543210ull, 0x0123456789abcdefull};
    EXPECT_EQ(to_hex(txn_id), "0123456789abcdeffedcba9876543210");
}

TEST(TxnId, SmallIdsAreZeroPaddedTo32Digits) {
    EXPECT_EQ(to_hex(TxnId{1, 0}), "00000000000000000000000000000001");
    EXPECT_EQ(to_hex(TxnId{0, 1}), "00000000000000010000000000000000");
}

TEST(TxnId, ParsingAcceptsEitherCase) {
    const auto txn_id = parse_txn_id("0123456789ABCDEFfedcba9876543210");
    ASSERT_TRUE(txn_id.has_value());
    EXPECT_EQ(txn_id->hi, 0x0123456789abcdefull);
    EXPECT_EQ(txn_id->lo, 0xfedcba9876543210ull);
}

TEST(TxnId, ParsingRejectsWrongLengthsAndNonHexCharacters) {
    EXPECT_FALSE(parse_txn_id(""));
    EXPECT_FALSE(parse_txn_id("0123456789abcdef0123456789abcde"));
    EXPECT_FALSE(parse_txn_id("0123456789abcdef0123456789abcdef0"));
    EXPECT_FALSE(parse_txn_id("0123456789abcdef0123456789abcdeg"));
    EXPECT_FALSE(parse_txn_id("0x23456789abcdef0123456789abcdef"));
    EXPECT_FALSE(parse_txn_id(" 123456789abcdef0123456789abcdef"));
}

TEST(TxnId, RandomIdsRoundTripThroughText) {
    const uint64_t seed = test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    std::mt19937_64 random(seed);
    for (int i = 0; i < 10'000; ++i) {
        const TxnId txn_id{random(), random()};
        const auto parsed = parse_txn_id(to_hex(txn_id));
        ASSERT_TRUE(parsed.has_value());
        ASSERT_EQ(*parsed, txn_id);
    }
    EXPECT_EQ(parse_txn_id(to_hex(TxnId{0, ~0ull})), (TxnId{0, ~0ull}));
    EXPECT_EQ(parse_txn_id(to_hex(TxnId{~0ull, ~0ull})), (TxnId{~0ull, ~0ull}));
}

TEST(TxnId, GeneratedIdsAreNonZeroAndDistinct) {
    TxnIdGenerator generator;
    std::set<std::pair<uint64_t, uint64_t>> seen;
    for (int i = 0; i < 10'000; ++i) {
        const TxnId txn_id = generator.next();
        ASSERT_FALSE(txn_id.is_zero());
        ASSERT_TRUE(seen.insert({txn_id.hi, txn_id.lo}).second);
    }
}

TEST(TxnId, TwoDefaultGeneratorsStartFromDifferentSeeds) {
    TxnIdGenerator first;
    TxnIdGenerator second;
    EXPECT_NE(first.next(), second.next());
}

}  // namespace
}  // namespace jifen::client
