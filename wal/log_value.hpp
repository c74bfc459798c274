// Reading the `log` table: one value checked and taken apart, finding the value that holds a log
// sequence, and reading single records for history walks. Internal to wal/; the layout is in
// wal/format.hpp.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <cstring>

#include "protocol/crc32c.hpp"
#include "wal/format.hpp"
#include "wal/limits.hpp"
#include "wal/record_codec.hpp"

namespace jifen::wal {

// Record offsets are u16: a value of the most records, each packed as large as it gets, fits.
static_assert(records_per_value_max * format::packed_record_bytes_max <= UINT16_MAX);
static_assert(format::value_padding_bytes >= format::packed_read_slack_bytes);

// A view of one log value; valid while the transaction it was read in is open.
class LogValue {
public:
    // Checks the value's key size, magic, counts and size, and with check_checksum its CRC32C.
    // False: the value is damaged (or not a log value).
    bool parse(const MDB_val& key, const MDB_val& value, bool check_checksum) noexcept {
        if (key.mv_size != 8 || value.mv_size < sizeof(format::GroupHeader)) {
            return false;
        }
        first_log_seq_ = format::load_be64(static_cast<const unsigned char*>(key.mv_data));
        bytes_ = static_cast<const unsigned char*>(value.mv_data);
        std::memcpy(&header_, bytes_, sizeof(header_));
        if (header_.magic != format::group_magic || header_.run_count == 0 ||
            header_.run_count > header_.record_count ||
            header_.record_count > records_per_value_max) {
            return false;
        }
        const size_t records_at = format::records_at(header_.run_count, header_.record_count);
        if (value.mv_size < records_at + format::value_padding_bytes) {
            return false;
        }
        records_ = bytes_ + records_at;
        records_bytes_ = value.mv_size - records_at - format::value_padding_bytes;
        if (record_offset(0) != 0) {
            return false;
        }
        return !check_checksum || protocol::crc32c(bytes_ + 8, value.mv_size - 8) == header_.crc32c;
    }

    // After parse(): whether every run names a shard below shard_count, has records, and the runs
    // add up to the value's records.
    bool runs_ok(uint32_t shard_count) const noexcept {
        uint32_t records = 0;
        for (uint32_t index = 0; index < header_.run_count; ++index) {
            const format::RunHeader header = run(index);
            if (header.shard_index >= shard_count || header.record_count == 0 ||
                header.record_count > header_.record_count - records) {
                return false;
            }
            records += header.record_count;
        }
        return records == header_.record_count;
    }

    uint64_t first_log_seq() const noexcept { return first_log_seq_; }
    uint64_t end_log_seq() const noexcept { return first_log_seq_ + header_.record_count; }
    uint32_t run_count() const noexcept { return header_.run_count; }
    uint32_t record_count() const noexcept { return header_.record_count; }
    bool contains(uint64_t log_seq) const noexcept {
        return log_seq >= first_log_seq_ && log_seq < end_log_seq();
    }

    format::RunHeader run(uint32_t run_index) const noexcept {
        format::RunHeader header;
        std::memcpy(&header,
                    bytes_ + sizeof(format::GroupHeader) + size_t{run_index} * sizeof(header),
                    sizeof(header));
        return header;
    }

    // Unpacks record record_index of the value (log sequence first_log_seq() + record_index).
    // False when its bytes are damaged.
    bool record(uint32_t record_index, format::LoggedRecord* out) const noexcept {
        const size_t from = record_offset(record_index);
        const size_t to = record_index + 1 < header_.record_count ? record_offset(record_index + 1)
                                                                  : records_bytes_;
        return from <= to && to <= records_bytes_ &&
               format::unpack_record(records_ + from, to - from, out);
    }

private:
    size_t record_offset(uint32_t record_index) const noexcept {
        uint16_t offset;
        std::memcpy(&offset,
                    bytes_ + format::record_offsets_at(header_.run_count) +
                        size_t{record_index} * sizeof(offset),
                    sizeof(offset));
        return offset;
    }

    const unsigned char* bytes_ = nullptr;
    const unsigned char* records_ = nullptr;
    size_t records_bytes_ = 0;
    format::GroupHeader header_;
    uint64_t first_log_seq_ = 0;
};

// Positions cursor on the value that holds log_seq, if there is one: the last value whose first
// log sequence is <= log_seq (the caller checks that it reaches log_seq). MDB_NOTFOUND when every
// value starts after log_seq or the log is empty.
inline int seek_log_value(MDB_cursor* cursor, uint64_t log_seq, MDB_val* key, MDB_val* value) {
    unsigned char key_bytes[8];
    format::store_be64(key_bytes, log_seq);
    *key = MDB_val{sizeof(key_bytes), key_bytes};
    int rc = mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
    if (rc == 0 && key->mv_size == 8 &&
        format::load_be64(static_cast<const unsigned char*>(key->mv_data)) == log_seq) {
        return 0;
    }
    if (rc == 0) {
        return mdb_cursor_get(cursor, key, value, MDB_PREV);
    }
    if (rc == MDB_NOTFOUND) {
        return mdb_cursor_get(cursor, key, value, MDB_LAST);
    }
    return rc;
}

// Reads single records by log sequence, as a history walk does, remembering the last value read:
// a member's consecutive records often share one.
class LogRecordReader {
public:
    explicit LogRecordReader(MDB_cursor* cursor) noexcept : cursor_(cursor) {}

    // 0 and the record; MDB_NOTFOUND when the log holds no such record; MDB_CORRUPTED when the
    // value that should hold it, or the record, fails its checks (the checksum is left to
    // recovery: a history read unpacks one record of up to 256).
    int read(uint64_t log_seq, format::LoggedRecord* out) noexcept {
        if (!loaded_ || !value_.contains(log_seq)) {
            loaded_ = false;
            MDB_val key;
            MDB_val value;
            const int rc = seek_log_value(cursor_, log_seq, &key, &value);
            if (rc != 0) {
                return rc;
            }
            if (!value_.parse(key, value, false)) {
                return MDB_CORRUPTED;
            }
            loaded_ = true;
            if (!value_.contains(log_seq)) {
                return MDB_NOTFOUND;
            }
        }
        return value_.record(static_cast<uint32_t>(log_seq - value_.first_log_seq()), out)
                   ? 0
                   : MDB_CORRUPTED;
    }

private:
    MDB_cursor* cursor_;
    LogValue value_;
    bool loaded_ = false;
};

}  // namespace jifen::wal
