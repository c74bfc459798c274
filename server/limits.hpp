// Limits of jifend's core: every queue and buffer the shard threads and connections use, sized at
// startup, each with a defined answer when full (docs/architecture.md, "The server").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "engine/shard.hpp"
#include "protocol/wire.hpp"

namespace jifen::server {

// Requests (client operations, credit legs, balance and audit queries) one shard's inbox holds
// from all other shards. Past this, the sending shard answers those operations Result::busy.
inline constexpr uint32_t request_inbox_capacity = 1u << 14;

// Requests one shard may have outstanding on all other shards together. Every request gets
// exactly one reply, so this bounds what can be waiting in the shard's reply inbox.
inline constexpr uint32_t remote_requests_in_flight_max = 1u << 15;

// Cross-shard transfers one shard may hold between its debit leg and confirm/refund. Each gets
// one credit result back, also through the reply inbox.
inline constexpr uint32_t transfers_in_flight_max = 1u << 12;

// Replies can never find the reply inbox full: the two budgets above are reserved before a
// request leaves, so a shard never has to drop or retry a reply.
inline constexpr uint32_t reply_inbox_capacity = 1u << 16;
static_assert(remote_requests_in_flight_max + transfers_in_flight_max <= reply_inbox_capacity);

// Replies and sends one shard holds until the log makes the records they depend on durable.
// A frame or inbox message is only taken on when the queue has room for everything it can add.
inline constexpr uint32_t release_queue_capacity = 1u << 16;

// Records applied but not yet taken by the log's queue (wal::Log::append returned false).
// Like the release queue, checked before work is taken on, so no applied record is dropped.
// Records a shard holds before the log takes them: operations applied (and, in async
// durability, acknowledged) but not yet queued are at most unappended_operations_max, which
// bounds what a crash can lose; each may log up to records_per_operation_max records (its own
// and its derived records, engine::Shard::derived()), so the buffer holds more.
inline constexpr uint32_t records_per_operation_max = 8;
inline constexpr uint32_t unappended_operations_max = 1u << 16;
inline constexpr uint32_t unappended_records_max = 1u << 17;
static_assert(unappended_operations_max >= 2 * protocol::batch_ops_max);
static_assert(unappended_records_max >=
              unappended_operations_max + records_per_operation_max * protocol::batch_ops_max);

// Operations one connection has in flight: two full batches, so a pipelining client keeps the
// shard busy while the previous batch waits for its group commit.
inline constexpr uint32_t connection_ops_in_flight_max = 2 * protocol::batch_ops_max;
// Frames one connection has in flight (small frames pipelined).
inline constexpr uint32_t connection_frames_in_flight_max = 1024;
// Reply bytes a connection may have waiting for the socket before it stops reading requests
// (a client that sends but does not read is slowed down, never buffered without bound).
inline constexpr size_t connection_output_bytes_soft_max = 4u << 20;
// History requests one connection has waiting for the history reader: their replies arrive
// later and bypass the check above, so they are bounded here (16 pages of at most
// history_entries_max entries: under 1 MiB).
inline constexpr uint32_t connection_history_in_flight_max = 16;
// Replies go to the socket this much at a time; a connection that has not taken one in
// frame_timeout_ms is not reading them and is closed (Connection::check_timeouts).
inline constexpr size_t connection_write_chunk_bytes = 256u << 10;

// Requests staged per target shard while one frame is routed, then pushed with one reservation.
inline constexpr uint32_t staging_requests_max = 256;

// History requests waiting for the history reader thread (server/history_reader.hpp), from all
// shards. Past this, a history request is answered Result::busy.
inline constexpr uint32_t history_jobs_max = 1u << 12;

// Members and holds one Op::tick may visit (Command::points of the tick, so replay is exact).
inline constexpr int64_t tick_budget = 1024;
// A checkpoint is built in steps (Shard::continue_checkpoint): this many transactions per step
// (1.4 MiB copied, twice that of new pages touched: a few milliseconds), a step every interval.
// Measured at 2 M members and 8 M transactions on the loaded development VM: the longest step
// 8 to 18 ms and the last one 35 to 43 ms, where save() in one go held the shard 0.7 to 1 s.
inline constexpr uint32_t checkpoint_slice_txns = 1u << 14;
inline constexpr std::chrono::milliseconds checkpoint_step_interval{1};
// The log stores a checkpoint's pieces while it is built (Log::checkpoint_part); a shard copies
// no more transactions while this many bytes of it wait for the log. So a checkpoint holds about
// this much of the transactions in memory, not a copy of all of them.
inline constexpr uint64_t checkpoint_bytes_waiting_max = uint64_t{16} << 20;
// The transactions a checkpoint in the making holds at most: those waiting, one step's copy and
// the room made ahead of it (Shard::continue_checkpoint), and the piece being filled.
inline constexpr uint64_t checkpoint_txns_held_max =
    checkpoint_bytes_waiting_max / engine::Shard::checkpoint_bytes_per_transaction +
    4 * uint64_t{checkpoint_slice_txns};

// Transaction-index slots per shard at the least (the index starts at the larger of this times
// the shard count and txn_index_slots). Once the index is due to grow (3/4 full) a shard
// finishes at most the frame it started, batch_ops_max claims, before every shard waits for the
// growth (server/txn_index_growth.hpp); claims fail past 7/8. So 1/8 of the slots must hold one
// frame from every shard: here twice over.
inline constexpr uint64_t txn_index_slots_min_per_shard = 8 * 2 * uint64_t{protocol::batch_ops_max};

// Longest time a shutdown waits for in-flight requests to finish before closing connections.
inline constexpr uint32_t shutdown_drain_ms_max = 10'000;

}  // namespace jifen::server
