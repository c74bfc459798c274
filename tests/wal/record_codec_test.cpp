// Tests of the packed record format (wal/record_codec.hpp): every record comes back byte for byte,
// typical records shrink, and bytes that are not a packed record of the given size are refused.
#include "wal/record_codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <random>

namespace jifen::wal::format {
namespace {

// Room for the largest packed record and the slack unpack_record() may read past it.
using PackBuffer = std::array<unsigned char, packed_record_bytes_max + packed_read_slack_bytes>;

LoggedRecord typical_earn() {
    LoggedRecord logged;
    engine::Command& command = logged.record.command;
    command.op = engine::Op::earn;
    command.txn_id = engine::TxnId{0x8f3a'51c2'77d0'19e4ull, 0x1b2c'3d4e'5f60'7182ull};
    command.member_id = 123'456;
    command.points = 250;
    command.time_us = 1'795'000'000'000'000;
    command.store_id = 17;
    logged.record.applied_points = 250;
    logged.record.available_after = 4'750;
    logged.record.shard_index = 1;
    logged.member_previous_seq = 98'765'432;
    return logged;
}

// A word of the given kind: zero, one byte, a random number of significant bytes, all ones.
uint64_t random_word(std::mt19937_64& random) {
    switch (random() % 4) {
        case 0:
            return 0;
        case 1:
            return random() & 0xff;
        case 2:
            return random() >> (random() % 64);
        default:
            return ~uint64_t{0};
    }
}

// A record whose every word is fill.
LoggedRecord filled_record(uint64_t fill) {
    uint64_t words[record_words];
    std::fill(std::begin(words), std::end(words), fill);
    LoggedRecord record;
    std::memcpy(&record, words, sizeof(words));
    return record;
}

void expect_round_trip(const LoggedRecord& record) {
    PackBuffer buffer{};
    const size_t size = pack_record(record, buffer.data());
    ASSERT_LE(size, packed_record_bytes_max);
    LoggedRecord back = filled_record(0xa5a5'a5a5'a5a5'a5a5ull);
    ASSERT_TRUE(unpack_record(buffer.data(), size, &back));
    EXPECT_EQ(std::memcmp(&back, &record, sizeof(record)), 0);
}

TEST(RecordCodec, EveryRecordComesBackByteForByte) {
    std::mt19937_64 random(20261124);
    for (int round = 0; round < 20'000; ++round) {
        uint64_t words[record_words];
        for (uint64_t& word : words) {
            word = random_word(random);
        }
        LoggedRecord record;
        std::memcpy(&record, words, sizeof(words));
        expect_round_trip(record);
    }
    expect_round_trip(filled_record(0));
    expect_round_trip(LoggedRecord{});
    expect_round_trip(typical_earn());
}

TEST(RecordCodec, ZeroWordsAreLeftOutAndTheOthersCutToTheirBytes) {
    PackBuffer buffer{};
    EXPECT_EQ(pack_record(filled_record(0), buffer.data()), packed_mask_bytes);

    // The earn above: 11 words are not zero, holding 37 significant bytes.
    EXPECT_EQ(pack_record(typical_earn(), buffer.data()), packed_mask_bytes + 6 + 37);

    EXPECT_EQ(pack_record(filled_record(~uint64_t{0}), buffer.data()), packed_record_bytes_max);
}

TEST(RecordCodec, BytesOfAnotherSizeOrShapeAreRefused) {
    PackBuffer buffer{};
    const size_t size = pack_record(typical_earn(), buffer.data());
    LoggedRecord back;
    EXPECT_FALSE(unpack_record(buffer.data(), size - 1, &back));
    EXPECT_FALSE(unpack_record(buffer.data(), size + 1, &back));
    EXPECT_FALSE(unpack_record(buffer.data(), 2, &back));

    PackBuffer beyond = buffer;
    beyond[2] |= 0x80;  // A word past the record's 18.
    EXPECT_FALSE(unpack_record(beyond.data(), size, &back));

    PackBuffer too_long = buffer;
    too_long[packed_mask_bytes] |= 0x08;  // The first word claims 9 or more bytes.
    EXPECT_FALSE(unpack_record(too_long.data(), size, &back));

    EXPECT_TRUE(unpack_record(buffer.data(), size, &back));

    // Word 0 alone, as pack_record would never write it: 2 bytes with a zero top byte, or a
    // zero word present at all. Bytes: the mask (3), one length nibble (1), the word.
    PackBuffer padded_word{0x01, 0x00, 0x00, 0x01, 0x03, 0x00};
    EXPECT_FALSE(unpack_record(padded_word.data(), 6, &back));
    PackBuffer zero_word{0x01, 0x00, 0x00, 0x00, 0x00};
    EXPECT_FALSE(unpack_record(zero_word.data(), 5, &back));
    PackBuffer canonical{0x01, 0x00, 0x00, 0x00, 0x03};
    EXPECT_TRUE(unpack_record(canonical.data(), 5, &back));
}

}  // namespace
}  // namespace jifen::wal::format
