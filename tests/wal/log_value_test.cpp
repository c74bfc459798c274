// Tests of LogValue (wal/log_value.hpp) on values built by hand: each record unpacks from the
// stretch its offsets give it, and a value whose offsets or sizes are damaged is refused, never
// read past.
#include "wal/log_value.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "wal/record_codec.hpp"

namespace jifen::wal {
namespace {

format::LoggedRecord earn(uint64_t txn_lo, engine::Points points) {
    format::LoggedRecord logged;
    logged.record.command.op = engine::Op::earn;
    logged.record.command.txn_id = engine::TxnId{txn_lo, 0x5eed};
    logged.record.command.member_id = 1'000 + txn_lo;
    logged.record.command.points = points;
    logged.record.applied_points = points;
    logged.member_previous_seq = txn_lo > 1 ? txn_lo - 1 : 0;
    return logged;
}

// A value as the writer lays it out: one run of shard 0, the records packed, the padding.
std::vector<unsigned char> value_of(const std::vector<format::LoggedRecord>& records) {
    const auto count = static_cast<uint32_t>(records.size());
    std::vector<unsigned char> bytes(format::records_at(1, count) +
                                     count * format::packed_record_bytes_max +
                                     format::value_padding_bytes);
    format::GroupHeader header;
    header.run_count = 1;
    header.record_count = count;
    format::RunHeader run;
    run.record_count = count;
    run.first_shard_seq = 1;
    std::memcpy(bytes.data(), &header, sizeof(header));
    std::memcpy(bytes.data() + sizeof(header), &run, sizeof(run));
    unsigned char* records_at = bytes.data() + format::records_at(1, count);
    size_t used = 0;
    for (uint32_t index = 0; index < count; ++index) {
        const auto offset = static_cast<uint16_t>(used);
        std::memcpy(bytes.data() + format::record_offsets_at(1) + index * sizeof(offset), &offset,
                    sizeof(offset));
        used += format::pack_record(records[index], records_at + used);
    }
    bytes.resize(format::records_at(1, count) + used + format::value_padding_bytes);
    std::memset(bytes.data() + bytes.size() - format::value_padding_bytes, 0,
                format::value_padding_bytes);
    return bytes;
}

void set_offset(std::vector<unsigned char>* bytes, uint32_t index, uint16_t offset) {
    std::memcpy(bytes->data() + format::record_offsets_at(1) + index * sizeof(offset), &offset,
                sizeof(offset));
}

uint16_t offset_of(const std::vector<unsigned char>& bytes, uint32_t index) {
    uint16_t offset;
    std::memcpy(&offset, bytes.data() + format::record_offsets_at(1) + index * sizeof(offset),
                sizeof(offset));
    return offset;
}

bool parse(const std::vector<unsigned char>& bytes, LogValue* value) {
    unsigned char key[8];
    format::store_be64(key, 1);
    return value->parse(MDB_val{sizeof(key), key},
                        MDB_val{bytes.size(), const_cast<unsigned char*>(bytes.data())}, false);
}

const std::vector<format::LoggedRecord> three = {earn(1, 10), earn(2, 20'000), earn(3, 3)};

TEST(LogValue, EachRecordUnpacksFromItsOwnStretch) {
    const std::vector<unsigned char> bytes = value_of(three);
    LogValue value;
    ASSERT_TRUE(parse(bytes, &value));
    ASSERT_TRUE(value.runs_ok(1));
    for (uint32_t index = 0; index < three.size(); ++index) {
        format::LoggedRecord logged;
        ASSERT_TRUE(value.record(index, &logged)) << index;
        EXPECT_EQ(std::memcmp(&logged, &three[index], sizeof(logged)), 0) << index;
    }
}

TEST(LogValue, OffsetsOutOfOrderAreRefused) {
    std::vector<unsigned char> bytes = value_of(three);
    set_offset(&bytes, 1, static_cast<uint16_t>(offset_of(bytes, 2) + 1));  // Past record 2's.
    LogValue value;
    ASSERT_TRUE(parse(bytes, &value));
    format::LoggedRecord logged;
    EXPECT_FALSE(value.record(0, &logged));  // Its stretch now ends inside record 2.
    EXPECT_FALSE(value.record(1, &logged));  // Starts after where it ends.
}

TEST(LogValue, AnOffsetPastTheRecordsIsRefused) {
    std::vector<unsigned char> bytes = value_of(three);
    set_offset(&bytes, 2, 0xffff);
    LogValue value;
    ASSERT_TRUE(parse(bytes, &value));
    format::LoggedRecord logged;
    EXPECT_FALSE(value.record(2, &logged));
}

TEST(LogValue, AStretchOfTheWrongSizeIsRefused) {
    // One byte more or less for record 1 (its neighbour's offset moved): its packed bytes no
    // longer add up to its stretch.
    for (const int shift : {-1, 1}) {
        std::vector<unsigned char> bytes = value_of(three);
        set_offset(&bytes, 2, static_cast<uint16_t>(offset_of(bytes, 2) + shift));
        LogValue value;
        ASSERT_TRUE(parse(bytes, &value));
        format::LoggedRecord logged;
        EXPECT_TRUE(value.record(0, &logged)) << shift;
        EXPECT_FALSE(value.record(1, &logged)) << shift;
    }
}

TEST(LogValue, AValueTooShortForItsCountsIsRefused) {
    std::vector<unsigned char> bytes = value_of(three);
    bytes.resize(format::records_at(1, 3) + format::value_padding_bytes - 1);
    LogValue value;
    EXPECT_FALSE(parse(bytes, &value));

    std::vector<unsigned char> shifted = value_of(three);
    set_offset(&shifted, 0, 1);  // The first record must start at the first byte.
    EXPECT_FALSE(parse(shifted, &value));
}

}  // namespace
}  // namespace jifen::wal
