// The on-disk format of the log (version 3): table names, key encodings and value layouts.
// Keys are big-endian so LMDB's byte order is numeric order; values are host (little-endian)
// structs, which the format version pins. docs/wal.md draws the layout.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "engine/command.hpp"
#include "engine/shard.hpp"

namespace jifen::wal::format {

static_assert(std::endian::native == std::endian::little, "the log format is little-endian");

inline constexpr char env_file_name[] = "jifen.lmdb";   // The LMDB file (MDB_NOSUBDIR).
inline constexpr char lock_file_name[] = "jifen.lock";  // flock()ed: one process per directory.

// Table names inside the environment.
inline constexpr char meta_table[] = "meta";
inline constexpr char log_table[] = "log";
inline constexpr char heads_table[] = "heads";
inline constexpr char checkpoint_table[] = "checkpoint";

// "JIFENWAL" as little-endian bytes: the first field of the meta `format` value.
inline constexpr uint64_t magic = 0x4c41574e45464a49ull;
// Version 1 kept a second copy of every record in a `history` table keyed by member; version 2
// serves history from the log itself (per-member links in each logged record, `heads` table);
// version 3 packs each logged record (wal/record_codec.hpp) instead of storing it whole. Nothing
// converts between them: a file of another version is refused at open.
inline constexpr uint32_t version = 3;

// meta["format"]: what this directory is. Written once at creation.
inline constexpr char meta_format_key[] = "format";
struct MetaFormat {
    uint64_t magic = 0;
    uint32_t version = 0;
    uint32_t shard_count = 0;
};
static_assert(sizeof(MetaFormat) == 16 && std::is_trivially_copyable_v<MetaFormat>);

// meta["rules3"]: the engine settings each stretch of the log was applied under, oldest first,
// one RulesEntry each. Replay applies each record under the entry whose from_log_seq is the
// greatest not above the record's log sequence. An entry is written only once a recovery under it
// succeeded, and an entry under which nothing was logged yet (recorded_at_log_seq is still the
// next log sequence) is replaced, not followed. Directories of older builds have shorter entries,
// whose missing fields read as 0: meta["rules2"] (before pending_lots_per_member_max),
// meta["rules"] (before holds kept months), or no rules at all. A build reads the newest it finds
// and writes meta["rules3"] from then on.
inline constexpr char meta_rules_key[] = "rules3";
inline constexpr char meta_rules_v2_key[] = "rules2";
inline constexpr char meta_rules_v1_key[] = "rules";
struct RulesEntry {
    uint64_t from_log_seq = 1;
    // The next log sequence when the entry was written.
    uint64_t recorded_at_log_seq = 1;
    uint64_t hold_timeout_us_default = 0;
    uint64_t hold_timeout_us_max = 0;
    uint32_t expiry_months = 0;
    uint32_t reverse_allows_negative = 0;  // 0 or 1.
    // Table sizes: the largest the directory ran with (they are never lowered).
    uint32_t members_per_shard_max = 0;
    uint32_t holds_per_shard_max = 0;
    uint32_t lots_per_shard_max = 0;
    // 1: the records before recorded_at_log_seq were written by a build that kept no rules, and
    // these settings were taken for them (they replayed without disagreement).
    uint32_t assumed = 0;
    // engine::Config::points_keep_months: 0 for records of builds before it.
    uint32_t points_keep_months = 0;
    // engine::Config::holds_per_member_max: 0 (no limit) for records of builds before it.
    uint32_t holds_per_member_max = 0;
    // engine::Config::pending_lots_per_member_max: 0 (no limit) for records of builds before it.
    uint32_t pending_lots_per_member_max = 0;
    uint32_t reserved = 0;
};
static_assert(sizeof(RulesEntry) == 72 && std::is_trivially_copyable_v<RulesEntry>);
// A meta["rules2"] entry: RulesEntry up to holds_per_member_max; a meta["rules"] entry: up to
// points_keep_months.
inline constexpr size_t rules_v2_entry_bytes = 64;
inline constexpr size_t rules_v1_entry_bytes = 56;

// meta["position"]: rewritten by every commit. The next log sequence, how far the heads table
// reaches, then one u64 per shard: the last shard sequence written. Lets open() report
// appended/durable positions without reading the log, and rebuild the heads changed since the
// last heads flush by reading only the log from heads_next_log_seq on.
inline constexpr char meta_position_key[] = "position";
struct MetaPosition {
    uint64_t next_log_seq = 1;
    // The heads table holds each member's newest record among the records below this log
    // sequence; the records from here on are newer than anything it says.
    uint64_t heads_next_log_seq = 1;
    // Followed by shard_count uint64_t last shard sequences.
};
static_assert(sizeof(MetaPosition) == 16);

// meta["idless"]: u64, how many of the log's records claim no transaction id when replayed: ticks
// and derived records (engine::is_derived). Absent: none, or a directory written before it
// existed (whose derived records it then misses). Written by a commit that logs such records.
// The log's length minus it bounds the ids a recovery claims, which the server reserves room
// for up front.
inline constexpr char meta_idless_key[] = "idless";

// log[u64 BE first log seq] = one value: a GroupHeader, run_count RunHeaders, record_count u16
// record offsets, the records packed (wal/record_codec.hpp), then value_padding_bytes zero bytes.
// Record i of the value has log sequence key + i; its offset (from the first record's first
// byte) lets a history walk unpack it without unpacking the ones before it, and it ends where the
// next one starts (the last where the padding starts). The runs, in order, say which shard each
// stretch of records came from: the records of a run have consecutive shard sequences starting
// at first_shard_seq.
inline constexpr uint32_t group_magic = 0x4a574c47u;  // "GLWJ"
struct GroupHeader {
    uint32_t magic = group_magic;
    uint32_t crc32c = 0;  // Over every byte after this field.
    uint32_t run_count = 0;
    uint32_t record_count = 0;
};
struct RunHeader {
    uint32_t shard_index = 0;
    uint32_t record_count = 0;
    uint64_t first_shard_seq = 0;
};
static_assert(sizeof(GroupHeader) == 16 && sizeof(RunHeader) == 16);
static_assert(offsetof(GroupHeader, crc32c) == 4);  // The checksum covers bytes 8.. of a value.
static_assert(std::is_trivially_copyable_v<GroupHeader> && std::is_trivially_copyable_v<RunHeader>);

// A record as the log stores it: the engine's Record and, beside it, the links that chain each
// member's history backwards. A link is the log sequence of the previous record filed under the
// same member (0: this is the member's first). engine::Record stays the engine's; the links are
// the log's.
struct LoggedRecord {
    engine::Record record;
    uint64_t member_previous_seq = 0;  // Under record.command.member_id (when filed under it).
    // Under record.command.counterparty_id, when the record is filed under it too (a transfer
    // applied as one command on one shard); 0 otherwise.
    uint64_t counterparty_previous_seq = 0;
};
static_assert(sizeof(LoggedRecord) == 144 && std::is_trivially_copyable_v<LoggedRecord>);

// The padding lets the unpacking of the last record load whole words (packed_read_slack_bytes).
inline constexpr size_t value_padding_bytes = 8;
inline constexpr size_t record_offsets_at(uint32_t run_count) {
    return sizeof(GroupHeader) + size_t{run_count} * sizeof(RunHeader);
}
inline constexpr size_t records_at(uint32_t run_count, uint32_t record_count) {
    return record_offsets_at(run_count) + size_t{record_count} * sizeof(uint16_t);
}

// The members whose history shows a record (0: none). Ticks name no member and are filed under
// nobody; a transfer applied as one command (both members on one shard) is filed under the
// sender, and the receiver's transfer_received under the receiver (before that record existed,
// engine::record_flag_receiver_apart unset, the transfer was filed under both). A
// cross-shard transfer's legs are each filed under the member whose shard applied them (the
// debit leg under the sender, transfer_credit under the receiver, and so on).
struct FiledUnder {
    engine::MemberId member_id = 0;
    engine::MemberId counterparty_id = 0;
};
inline FiledUnder filed_under(const engine::Record& record, uint32_t shard_count) noexcept {
    const engine::Command& command = record.command;
    FiledUnder filed;
    if (command.op == engine::Op::tick || command.member_id == 0) {
        return filed;
    }
    filed.member_id = command.member_id;
    if (command.op == engine::Op::transfer && command.counterparty_id != 0 &&
        (record.flags & engine::record_flag_receiver_apart) == 0 &&
        command.counterparty_id != command.member_id &&
        engine::Shard::shard_of(command.counterparty_id, shard_count) == record.shard_index) {
        filed.counterparty_id = command.counterparty_id;
    }
    return filed;
}

// heads[u64 member id, host order: the table is MDB_INTEGERKEY, compared as integers] = u64 log
// sequence of the member's newest record below MetaPosition::heads_next_log_seq. Written in
// bulk, sorted, by a heads flush (docs/wal.md).

// checkpoint[u32 BE shard, u32 BE chunk]: two slots per shard, chunk numbers below 2^31 and from
// 2^31 on. A slot's first chunk is a CheckpointHeader, the next ones the state bytes in order. A
// new checkpoint is written into the slot the shard's checkpoint is not in, over as many commits
// as it takes (its header first deleted, so a slot half written has none); the commit that
// writes its header deletes the other slot. So every commit leaves one whole checkpoint per shard
// (or none), and a slot without a header is ignored.
inline constexpr uint32_t checkpoint_slot_chunks = 1u << 31;
constexpr uint32_t checkpoint_chunk(uint32_t slot, uint32_t chunk) noexcept {
    return slot * checkpoint_slot_chunks + chunk;
}
inline constexpr uint64_t checkpoint_magic = 0x54504b434e454a49ull;  // "IJENCKPT"
struct CheckpointHeader {
    uint64_t magic = checkpoint_magic;
    uint64_t shard_seq = 0;  // State after the record with this shard sequence.
    uint64_t log_seq = 0;    // Log sequence of that record (a lower bound when not known).
    uint64_t size_bytes = 0;
    uint32_t chunk_count = 0;
    uint32_t crc32c = 0;  // Over the state bytes.
};
static_assert(sizeof(CheckpointHeader) == 40);

inline void store_be64(unsigned char* out, uint64_t value) noexcept {
    value = __builtin_bswap64(value);
    std::memcpy(out, &value, 8);
}
inline void store_be32(unsigned char* out, uint32_t value) noexcept {
    value = __builtin_bswap32(value);
    std::memcpy(out, &value, 4);
}

// The key of one checkpoint chunk: u32 BE shard, u32 BE chunk (checkpoint_chunk(slot, n)).
struct CheckpointKey {
    CheckpointKey(uint32_t shard, uint32_t chunk) noexcept {
        store_be32(bytes, shard);
        store_be32(bytes + 4, chunk);
    }
    unsigned char bytes[8];
};
inline uint64_t load_be64(const unsigned char* in) noexcept {
    uint64_t value;
    std::memcpy(&value, in, 8);
    return __builtin_bswap64(value);
}
inline uint32_t load_be32(const unsigned char* in) noexcept {
    uint32_t value;
    std::memcpy(&value, in, 4);
    return __builtin_bswap32(value);
}

}  // namespace jifen::wal::format
