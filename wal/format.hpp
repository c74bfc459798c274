// The on-disk format of the log (version 1): table names, key encodings and value headers.
// Keys are big-endian so LMDB's byte order is numeric order; values are host (little-endian)
// structs, which the format version pins. docs/wal.md draws the layout.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "engine/command.hpp"

namespace jifen::wal::format {

static_assert(std::endian::native == std::endian::little, "the log format is little-endian");

inline constexpr char env_file_name[] = "jifen.lmdb";   // The LMDB file (MDB_NOSUBDIR).
inline constexpr char lock_file_name[] = "jifen.lock";  // flock()ed: one process per directory.

// Table names inside the environment.
inline constexpr char meta_table[] = "meta";
inline constexpr char log_table[] = "log";
inline constexpr char history_table[] = "history";
inline constexpr char checkpoint_table[] = "checkpoint";

// "JIFENWAL" as little-endian bytes: the first field of the meta `format` value.
inline constexpr uint64_t magic = 0x4c41574e45464a49ull;
inline constexpr uint32_t version = 1;

// meta["format"]: what this directory is. Written once at creation.
inline constexpr char meta_format_key[] = "format";
struct MetaFormat {
    uint64_t magic = 0;
    uint32_t version = 0;
    uint32_t shard_count = 0;
};
static_assert(sizeof(MetaFormat) == 16 && std::is_trivially_copyable_v<MetaFormat>);

// meta["position"]: rewritten by every commit. The next log sequence, then one u64 per shard:
// the last shard sequence written. Lets open() report appended/durable positions without
// reading the log.
inline constexpr char meta_position_key[] = "position";
struct MetaPosition {
    uint64_t next_log_seq = 1;
    // Followed by shard_count uint64_t last shard sequences.
};
static_assert(sizeof(MetaPosition) == 8);

// log[u64 BE first log seq] = one value: a GroupHeader, then run_count runs, each a RunHeader
// and its records. Record i of the value (counting across runs) has log sequence key + i; the
// records of a run have consecutive shard sequences starting at first_shard_seq.
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

inline constexpr size_t group_value_size_bytes(uint32_t run_count, uint32_t record_count) {
    return sizeof(GroupHeader) + size_t{run_count} * sizeof(RunHeader) +
           size_t{record_count} * sizeof(engine::Record);
}

// history[u64 BE member id, u64 BE log seq] = the Record. Ticks name no member and are not in
// history; a transfer applied as one command (both members on one shard) is filed under both.
struct HistoryKey {
    unsigned char bytes[16];
};

// checkpoint[u32 BE shard, u32 BE chunk] : chunk 0 is a CheckpointHeader, chunks 1..n the state
// bytes in order. One checkpoint per shard: a new one replaces the old in the same transaction.
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

inline HistoryKey history_key(engine::MemberId member_id, uint64_t log_seq) noexcept {
    HistoryKey key;
    store_be64(key.bytes, member_id);
    store_be64(key.bytes + 8, log_seq);
    return key;
}

}  // namespace jifen::wal::format
