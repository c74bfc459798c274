// Limits of the write-ahead log, each saying what it bounds and why it has this value.
// docs/wal.md gives the measurements behind the numbers.
#pragma once

#include <cstdint>

#include "engine/command.hpp"

namespace jifen::wal {

// Records in one LMDB value of the `log` table. Packing records into one value makes a group
// commit one B-tree insert per value instead of one per record; 256 records (32 KiB) keeps each
// value a short run of overflow pages, which LMDB can still reuse after truncation without a
// long search for contiguous free pages.
inline constexpr uint32_t records_per_value_max = 256;

// Records written by one LMDB transaction. Bounds the dirty pages of a commit (log plus history,
// about 3x the record bytes) so a commit stays well inside LMDB's dirty-page list and its
// latency stays bounded when every queue is full at once.
inline constexpr uint32_t records_per_commit_max = 1u << 16;

// Per-shard append queue capacity bounds: a queue below the minimum cannot hold one frame's
// batch; above the maximum it only hides a writer that cannot keep up.
inline constexpr uint32_t queue_records_min = 1u << 10;
inline constexpr uint32_t queue_records_max = 1u << 24;

// Records one append() call may carry. The server stages up to this many records while the
// queue is full and hands them over in one call, so every ring holds at least this many,
// whatever queue_records_per_shard says (8 MiB per shard).
inline constexpr uint32_t append_records_max = 1u << 16;

// Shards one log serves; the durable positions of all of them are rewritten on every commit.
inline constexpr uint32_t shard_count_max = 1024;

// Old log values deleted per commit once every shard has a checkpoint: truncation is
// background work and must not lengthen a commit by more than a few pages.
inline constexpr uint32_t truncate_values_per_commit_max = 64;

// Checkpoint state is stored in chunks of this size, so a large shard never needs one huge
// contiguous run of free pages.
inline constexpr uint64_t checkpoint_chunk_bytes = 1ull << 20;

// The disk must keep this much free space; below it the log reports storage_full instead of
// letting LMDB fail a commit half-way through extending its file.
inline constexpr uint64_t disk_bytes_free_min = 256ull << 20;

// How often the writer re-checks the free disk space (a statvfs call) while committing.
inline constexpr uint64_t disk_check_interval_us = 1'000'000;

// While storage is full, how often the writer retries its pending commit (space may have been
// freed on the disk by the operator).
inline constexpr uint64_t storage_full_retry_us = 1'000'000;

// LMDB read slots: one per concurrent history() reader.
inline constexpr uint32_t readers_max = 512;

// Smallest map the log accepts: the meta pages, the four tables and one full value.
inline constexpr uint64_t map_bytes_min = 64ull << 10;

static_assert(records_per_value_max <= records_per_commit_max);
static_assert(queue_records_min <= queue_records_max);
static_assert(append_records_max <= queue_records_max);
static_assert(records_per_value_max * sizeof(engine::Record) < checkpoint_chunk_bytes);

}  // namespace jifen::wal
