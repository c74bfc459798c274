// The write-ahead log: every applied command, durable in LMDB before its client hears "ok".
//
// One LMDB environment per data directory and one writer thread fed by all shards (see
// docs/architecture.md for the measurements behind that choice). Shards apply commands in memory,
// then append the resulting Records here; the writer packs everything waiting into one LMDB write
// transaction (group commit: one fsync for many operations) and then publishes, per shard, the
// sequence number up to which records are durable. The server releases replies only up to that
// number in `sync` durability; in `async` it replies at once and the loss window is one group.
//
// What a crash can lose: in `sync`, nothing that was acknowledged. In `async`, the records
// appended but not yet durable: the commit in flight, the last commit when its meta page still
// waits for a sync (power loss only, MetaSync::deferred), plus what waits in the queues
// (queue_records_per_shard per shard); under steady load, a few milliseconds of operations.
// durable_seq() never runs ahead of the disk in either mode, and no mode can corrupt the file on
// power loss (see MetaSync); docs/wal.md gives the reasoning and the measurements. The on-disk
// format is in wal/format.hpp: one file, data_dir/jifen.lmdb, and its lock, data_dir/jifen.lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/command.hpp"
#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "wal/limits.hpp"

namespace jifen::wal {

enum class Durability : uint8_t { sync, async };

// How a commit reaches the disk. Both keep the file intact on power loss; they differ in the
// syncs a commit costs and in when its records count as durable (docs/wal.md, "Durability").
enum class MetaSync : uint8_t {
    // MDB_NOMETASYNC: a commit fdatasyncs its data pages and writes its meta page unsynced; that
    // page reaches the disk with the next commit's fdatasync, or with an explicit sync the writer
    // issues when it has nothing else to commit. Only then are the commit's records reported
    // durable. One sync per commit under load; a lone commit on an idle log still costs two.
    deferred,
    // LMDB's default: data pages fdatasynced, then the meta page written through an O_DSYNC
    // descriptor; records are durable when the commit returns. Two syncs per commit.
    each_commit,
};

struct Options {
    std::filesystem::path data_dir;  // Created when missing.
    uint32_t shard_count = 1;        // Stored in the data directory; a different count is refused.
    // The log writes the same way in both modes; the server decides whether replies wait.
    Durability durability = Durability::sync;
    // each_commit by default: deferred measured no faster here (docs/wal.md, "Measurements").
    MetaSync meta_sync = MetaSync::each_commit;
    uint64_t map_bytes_initial = 1ull << 30;  // LMDB map size at first open.
    uint64_t map_bytes_max = 64ull << 30;     // Growth stops here; then writes get storage_full.
    uint32_t map_grow_percent = 80;           // Grow (double) when the map is this full.
    uint32_t queue_records_per_shard = 1u << 16;     // Per-shard queue; >= append_records_max.
    uint64_t checkpoint_every_records = 10'000'000;  // Ask shards for a checkpoint this often.
    // 1 MiB checkpoint chunks written per commit: a checkpoint larger than this is written over
    // several commits, so no commit (and no reply waiting for it) carries all of it. Measured
    // with a 450 MB checkpoint under load: 1 gave the shortest waits (docs/performance.md).
    uint32_t checkpoint_chunks_per_commit = 1;
    // Members whose newest log sequence the writer keeps in memory before it writes them all,
    // sorted, into the heads table in one commit (a heads flush). More means fewer flushes (each
    // rewrites about the whole heads table) and more memory: about 48 bytes per member (see
    // docs/wal.md, "History").
    uint32_t heads_map_members = 1u << 19;
    // The engine settings the shards are configured with. When set, the log keeps the rules
    // each stretch of it was applied under (meta["rules"], wal/format.hpp): recover() replays
    // every record under the rules it was applied with, leaves the shards with these and, once
    // the replay succeeded, records these when they differ from the last recorded (start()
    // does when recover() was not called); engine_config() gives the table sizes to build the
    // shards with (never below the largest logged records ran with). open() refuses a change of
    // expiry_months once anything is logged (StartupError naming it). Unset: nothing is
    // recorded and the shards keep the rules they were built with.
    std::optional<engine::Config> engine;
    // Tests only (jifend never sets it): asked before each commit; a non-zero result (an errno
    // such as ENOSPC or EIO) fails that commit as if LMDB had returned it, before anything is
    // written. Lets tests drive the log into what a full or failing disk does to it.
    std::function<int()> commit_fault;
    // Tests only: the most records one commit takes (records_per_commit_max), so tests can make
    // commits end anywhere in what the shards appended.
    uint32_t commit_records_max = records_per_commit_max;
};

// Refusal to open a data directory (corrupt, foreign, wrong shard count, no permission).
// Thrown only by Log::open and Log::recover, at startup; the message is for the operator.
struct StartupError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct RecoveryStats {
    // Log sequence the loaded checkpoints cover: the oldest over the shards that had one (0: no
    // shard had a checkpoint). A lower bound when the writer could not tell exactly.
    uint64_t checkpoint_seq = 0;
    uint64_t records_replayed = 0;
    uint64_t replay_us = 0;
};

struct LogStats {
    uint64_t records = 0;           // Records made durable since open.
    uint64_t commits = 0;           // Group commits since open.
    uint64_t checkpoints = 0;       // Shard checkpoints written since open.
    uint64_t checkpoint_bytes = 0;  // Their bytes (those of a checkpoint never finished too).
    uint64_t map_bytes = 0;         // Current LMDB map size.
    uint64_t used_bytes = 0;        // Pages in use.
    uint64_t last_seq = 0;          // Highest durable log sequence.
    // Committed records that claim no transaction id on replay (ticks, derived records), so
    // last_seq - records_without_ids bounds the ids a recovery claims. For startup (before
    // start()): while the writer runs it may count a commit last_seq does not cover yet.
    uint64_t records_without_ids = 0;
};

// A history page for one member, newest first.
struct HistoryPage {
    std::vector<std::pair<uint64_t, engine::Record>> entries;  // (log seq, record)
    uint64_t next_before_seq = 0;                              // 0: no older entries.
    // storage_error when the read failed (entries may be partial); field_out_of_range when
    // before_seq names no record of the member and more than history_skip_records_max of its
    // records are newer (wal/limits.hpp).
    Result result = Result::ok;
};

// Adds to `members` those whose balances must wait while the record of `command` is not durable:
// its member and counterparty; none for a derived record, whose members the record after it
// names too, but for the settlements of a tick: clock effects, which a balance previews anyway.
inline void add_waiting_members(const engine::Command& command,
                                std::vector<engine::MemberId>* members) {
    if (!engine::is_derived(command.op)) {
        members->push_back(command.member_id);
        members->push_back(command.counterparty_id);
    }
}

class Log {
public:
    // Opens or creates the environment. Throws StartupError with a clear reason for files that
    // are not a jifen log, a format version it does not know, or a different shard count.
    static std::unique_ptr<Log> open(const Options& options);
    virtual ~Log() = default;

    // Rebuilds shards from the newest checkpoint plus the log after it, replaying each record
    // through Shard::apply and checking the replayed outcome equals the logged one (a mismatch
    // is a StartupError: the log and the code disagree). shards.size() == shard_count.
    virtual RecoveryStats recover(std::span<engine::Shard* const> shards) = 0;
    // Options::engine with each table size raised to the largest this data directory ran with
    // (a replay may need the room it had then); build the shards with it. Options::engine
    // unset: a default Config.
    virtual engine::Config engine_config() const = 0;

    // Starts the writer thread. on_durable(shard, shard_seq) runs on the writer thread after
    // each sync that made records durable (a commit's own, or with MetaSync::deferred the next
    // one), once per shard whose durable sequence advanced; it must be quick (wake the shard's
    // thread, nothing more).
    virtual void start(std::function<void(uint32_t shard, uint64_t shard_seq)> on_durable) = 0;
    // Commits everything appended so far, then stops the writer. Idempotent.
    virtual void stop() = 0;

    // Shard thread only (one producer per shard). Appends records for the writer. Returns false
    // and appends nothing if the shard's queue lacks room for all of them: the caller retries
    // after the writer catches up (it never drops). At most append_records_max (wal/limits.hpp)
    // records per call; the queue always has room for that many once the writer has drained it.
    // The records get consecutive shard sequence numbers; appended_seq(shard) is the last one
    // given.
    virtual bool append(uint32_t shard, std::span<const engine::Record> records) = 0;
    virtual uint64_t appended_seq(uint32_t shard) const = 0;
    virtual uint64_t durable_seq(uint32_t shard) const = 0;
    // Adds to `members` the members (member_id and counterparty_id) of the records the shard
    // appended that are not durable yet; false when it cannot tell (more of them than the queue
    // still holds). Only the shard's own thread may ask. For the rare state where the log cannot
    // write: it reads the whole queue.
    virtual bool undurable_members(uint32_t shard,
                                   std::vector<engine::MemberId>* members) const = 0;

    // Hands a shard's checkpoint to the writer: `state` is Shard::save() or finish_checkpoint()
    // output taken right after the record with shard sequence shard_seq was applied. Written in
    // later commits, wal::Options::checkpoint_chunks_per_commit chunks of
    // wal::checkpoint_chunk_bytes a commit or twice the transaction bytes the commit's records
    // may add to a checkpoint when that is more; it becomes the shard's checkpoint in the commit
    // that writes its last chunk, no earlier than the commit of the record shard_seq. After
    // checkpoint_part() it hands that checkpoint's rest; a whole checkpoint replaces one handed
    // whole that the writer has not started on, and otherwise waits for it.
    virtual void checkpoint(uint32_t shard, uint64_t shard_seq, engine::CheckpointBytes state) = 0;
    // Hands the leading bytes of a checkpoint still being built (Shard::take_checkpoint_part(),
    // a whole number of chunks): the writer may store them at once, and the next checkpoint()
    // of the shard hands the rest. A shard hands parts only when checkpoint_due() (its previous
    // checkpoint is on disk).
    virtual void checkpoint_part(uint32_t shard, engine::CheckpointBytes part) = 0;
    // Bytes of the shard's checkpoint handed over and not yet committed: a shard building one
    // copies no more while this is large, so a checkpoint holds little memory.
    virtual uint64_t checkpoint_bytes_waiting(uint32_t shard) const = 0;
    // True when shard should take a checkpoint now: checkpoint_every_records since its last
    // one, or, for a quiet shard, when its oldest record the checkpoint does not cover lies more
    // than checkpoint_every_records back in the log (recovery would read the log from there).
    // False while its last checkpoint handed over is not on disk yet.
    virtual bool checkpoint_due(uint32_t shard) const = 0;

    // True when writes must be refused with Result::storage_full (map at its limit or the disk
    // nearly full). Reads keep working.
    virtual bool storage_full() const = 0;
    // True after a commit failed for a reason growth cannot fix: writes get storage_error.
    virtual bool failed() const = 0;

    // Any thread. The member's records with log sequence < before_seq (0: from the newest),
    // newest first, at most limit. One short read transaction that follows the member's chain of
    // links back through the log: a page costs O(limit) record reads when before_seq is 0 or a
    // next_before_seq. Shows durable records only (up to stats().last_seq), never a commit whose
    // meta page still waits for its sync. Never blocks the writer; waits only for a map growth
    // or a heads flush.
    virtual HistoryPage history(engine::MemberId member_id, uint64_t before_seq,
                                uint32_t limit) const = 0;

    virtual LogStats stats() const = 0;
};

}  // namespace jifen::wal
