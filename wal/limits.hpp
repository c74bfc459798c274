// Limits of the write-ahead log, each saying what it bounds and why it has this value.
// docs/wal.md gives the measurements behind the numbers.
#pragma once

#include <cstdint>

#include "engine/checkpoint_bytes.hpp"
#include "engine/command.hpp"

namespace jifen::wal {

// Records in one LMDB value of the `log` table. Packing records into one value makes a group
// commit one B-tree insert per value instead of one per record; 256 records (36 KiB with their
// history links) keeps each value a short run of overflow pages, so a history read that needs
// one record touches one short run.
inline constexpr uint32_t records_per_value_max = 256;

// Records written by one LMDB transaction. Bounds the dirty pages of a commit (the log values,
// plus a heads flush when one is due) so a commit stays well inside LMDB's dirty-page list and
// its latency stays bounded when every queue is full at once.
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

// Bounds of Options::heads_map_members, the members whose newest log sequence the writer keeps
// in memory between heads flushes (24 bytes a slot, at least two slots per member).
inline constexpr uint32_t heads_map_members_min = 1;
inline constexpr uint32_t heads_map_members_max = 1u << 24;

// Records logged between two heads flushes at most. open() rebuilds the heads map by reading the
// log after the last flush, so this bounds that read (about 0.1 s) even when few members are
// busy and the map never fills.
inline constexpr uint64_t heads_flush_log_records = 1u << 20;

// How many records ahead the writer starts loading heads map slots (each a likely cache miss in
// a table of tens of MiB) while it goes through a batch.
inline constexpr uint32_t heads_prefetch_records = 8;

// Newer records of the member a history read may step over when before_seq names no record of
// that member (a client's own number rather than a next_before_seq): it then walks from the
// member's newest record down to before_seq. Past this, the read is refused rather than left to
// walk a long history record by record.
inline constexpr uint32_t history_skip_records_max = 4'096;

// Checkpoint state is stored in chunks of this size, so a large shard never needs one huge
// contiguous run of free pages.
inline constexpr uint64_t checkpoint_chunk_bytes = 1ull << 20;
// Options::checkpoint_chunks_per_commit at most: 1 GiB of checkpoint in one commit.
inline constexpr uint32_t checkpoint_chunks_per_commit_max = 1'024;

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
// A built checkpoint's pieces are the chunks it is stored in, each written where it lies.
static_assert(checkpoint_chunk_bytes == engine::CheckpointBytes::piece_bytes_default);
// A commit adds at most two heads per record to the map before the flush that empties it.
static_assert(uint64_t{heads_map_members_max} + 2ull * records_per_commit_max < (1ull << 31));

}  // namespace jifen::wal
