// The LMDB implementation of wal::Log: the environment, its four tables, the writer thread and
// the heads map that history walks start from.
// Internal to wal/; everyone else sees only wal/log.hpp. The format is in wal/format.hpp.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "wal/format.hpp"
#include "wal/heads_map.hpp"
#include "wal/log.hpp"
#include "wal/record_ring.hpp"

namespace jifen::wal {

// Finds shard's checkpoint: the slot whose first chunk is a header (format.hpp). Returns 0 with
// *slot and *header set, MDB_NOTFOUND when neither slot has one, or LMDB's error.
int find_checkpoint(MDB_txn* txn, MDB_dbi dbi, uint32_t shard, uint32_t* slot, MDB_val* header);

class LmdbLog final : public Log {
public:
    // Opens or creates the environment; throws StartupError (see Log::open).
    explicit LmdbLog(const Options& options);
    ~LmdbLog() override;
    LmdbLog(const LmdbLog&) = delete;
    LmdbLog& operator=(const LmdbLog&) = delete;

    RecoveryStats recover(std::span<engine::Shard* const> shards) override;
    engine::Config engine_config() const override;
    void start(std::function<void(uint32_t shard, uint64_t shard_seq)> on_durable) override;
    void stop() override;
    bool append(uint32_t shard, std::span<const engine::Record> records) override;
    uint64_t appended_seq(uint32_t shard) const override;
    uint64_t durable_seq(uint32_t shard) const override;
    bool undurable_members(uint32_t shard, std::vector<engine::MemberId>* members) const override;
    void checkpoint(uint32_t shard, uint64_t shard_seq, engine::CheckpointBytes state) override;
    void checkpoint_part(uint32_t shard, engine::CheckpointBytes part) override;
    uint64_t checkpoint_bytes_waiting(uint32_t shard) const override;
    bool checkpoint_due(uint32_t shard) const override;
    bool storage_full() const override;
    bool failed() const override;
    HistoryPage history(engine::MemberId member_id, uint64_t before_seq,
                        uint32_t limit) const override;
    LogStats stats() const override;

private:
    // A checkpoint on its way: its parts in order, each a whole number of chunks but the last
    // one handed with checkpoint() (finished).
    struct Checkpoint {
        std::deque<engine::CheckpointBytes> parts;
        bool finished = false;
        uint64_t shard_seq = 0;  // Once finished.
        bool empty() const noexcept { return parts.empty() && !finished; }
    };
    // How far the writer is through the checkpoint it writes (Lane::taken).
    struct CheckpointCursor {
        uint32_t next_chunk = 0;  // The next chunk's number; 0: its slot is not cleared yet.
        size_t parts_done = 0;    // Leading parts of `taken` wholly written.
        size_t part_offset = 0;   // Bytes written of the next part.
        uint64_t size_bytes = 0;  // Written so far, and their CRC32C.
        uint32_t crc32c = 0;
        bool log_seq_known = false;  // The log sequence its header names (format.hpp).
        uint64_t log_seq = 0;
    };

    // Everything the log keeps per shard. The ring and the atomics are shared with the shard
    // thread; the fields marked writer-only are touched by the writer thread alone (or by
    // open/recover before it starts).
    struct Lane {
        Lane(uint32_t capacity, uint64_t last_seq) : ring(capacity, last_seq) {}

        RecordRing ring;
        alignas(64) std::atomic<uint64_t> durable_seq{0};
        // Shard sequence of the newest checkpoint handed over or on disk: checkpoint_due()
        // counts from here so a checkpoint in flight is not asked for twice.
        std::atomic<uint64_t> checkpoint_requested_seq{0};
        // Set by the writer when this shard's oldest record not covered by its checkpoint lies
        // more than checkpoint_every_records back in the log, so recovery would read the log
        // from there; makes checkpoint_due() true even for a quiet shard.
        std::atomic<bool> checkpoint_stale{false};

        // Shard sequence of the newest checkpoint on disk: checkpoint_due() waits for it to
        // reach checkpoint_requested_seq.
        std::atomic<uint64_t> checkpoint_written_seq{0};
        std::atomic<uint64_t> checkpoint_bytes_waiting{0};  // Handed over, not committed yet.

        std::mutex checkpoint_mutex;
        Checkpoint handed;  // Guarded by checkpoint_mutex; the shard thread's hand-over slot.
        // Guarded by checkpoint_mutex: the writer holds the first parts of a checkpoint whose
        // rest is still to be handed or taken, so `handed` continues it.
        bool taken_open = false;

        // Writer-only.
        Checkpoint taken;                 // Taken from `handed`, written by the next commits.
        bool checkpoint_on_disk = false;  // A checkpoint of this shard is stored.
        uint32_t checkpoint_slot = 0;     // Its slot (format.hpp); `taken` goes into the other.
        // `taken` is written a few chunks per commit. cursor: what the commits so far wrote;
        // cursor_pending: what this commit leaves, kept once it succeeds (record_commit).
        CheckpointCursor cursor;
        CheckpointCursor cursor_pending;
        bool piece_in_commit = false;  // This commit writes some of `taken`.
        bool piece_finishing = false;  // This commit writes its last chunks and its header.
        uint64_t checkpoint_shard_seq = 0;
        uint64_t checkpoint_log_seq = 0;
        // Log sequence (or a lower bound) of this shard's oldest record that its checkpoint does
        // not cover; 0 when the checkpoint covers every record.
        uint64_t uncovered_log_seq = 0;
        uint64_t last_log_seq = 0;  // Log sequence of this shard's last written record.
        // Shard sequence of the last record committed. Durable once a sync after the commit has
        // completed (at once with MetaSync::each_commit); durable_seq then catches up to it.
        uint64_t committed_seq = 0;
        uint64_t batch_from = 0;  // Positions [batch_from, batch_to) go into this commit.
        uint64_t batch_to = 0;
        uint64_t batch_first_log_seq = 0;
    };

    void open_environment();
    // open(), once next_log_seq_ is known: reads meta["rules"] into rules_ and adds Options::engine
    // as a new entry when it differs from the last one (rules_unwritten_); throws StartupError
    // for a changed expiry_months.
    void plan_rules(MDB_txn* txn, const std::string& env_path);
    // After a recovery that succeeded (or at start() without one): writes the entry plan_rules()
    // added, so a start that fails leaves the directory's rules as they were.
    void write_rules();
    // open(): throws StartupError when the file ends before the last page LMDB says it uses.
    void check_file_covers_used_pages(const std::string& env_path) const;
    // Writer, after a commit: extends the file over the last page in use if LMDB left it short.
    void cover_last_page() noexcept;
    // open(): reads the log from heads_next_log_seq_ on into the heads map.
    void rebuild_heads();
    // open(): writes the heads map into the heads table (a map filled while rebuilding).
    void flush_heads_at_open(uint64_t heads_next_log_seq);
    void release_resources() noexcept;
    void writer_main();
    void wake_writer() noexcept;
    // Sleeps until woken or timeout_us. Returns at once when records are queued, unless blocked
    // (the log cannot commit them now).
    void sleep_until_work(uint64_t timeout_us, bool blocked = false);
    bool has_work() const noexcept;
    void take_checkpoints();
    uint64_t gather_batch(uint64_t budget) noexcept;
    uint64_t commit_budget_max() const noexcept {
        return std::clamp<uint64_t>(options_.commit_records_max, 1, records_per_commit_max);
    }
    bool checkpoints_ready() const noexcept;
    // One attempt loop: grows the map and retries on MDB_MAP_FULL. False: nothing committed.
    bool commit_batch();
    int write_batch(MDB_txn* txn, uint64_t* next_log_seq);
    // Puts every member the batch files records under into the heads map, reading the heads
    // table (in member order) for those it did not hold, and notes their slots per record.
    int load_heads(MDB_txn* txn);
    int write_log_values(MDB_txn* txn, uint64_t* log_seq);
    // Fills in the record's links and moves its members' pending heads to log_seq; slots: the
    // record's two entries of record_slots_.
    void link_record(format::LoggedRecord* logged, uint64_t log_seq,
                     const uint32_t* slots) noexcept;
    // Reads a member's head from the heads table (0: none stored).
    int read_stored_head(MDB_txn* txn, engine::MemberId member_id, uint64_t* head) const;
    // The heads flush: every pending head of the map into the heads table, in member order.
    int write_heads(MDB_txn* txn);
    // Writes the next piece of lane.taken into its slot; *finished when that was the last.
    int write_checkpoint_piece(MDB_txn* txn, Lane& lane, uint32_t shard, bool* finished);
    // True when this commit can write some of the lane's `taken` checkpoint: chunks not written
    // yet, or its header once every chunk is written and its record is in the commit.
    static bool checkpoint_writable(const Lane& lane) noexcept;
    // Deletes every chunk of one slot of a shard's checkpoints.
    int delete_checkpoint_slot(MDB_txn* txn, uint32_t shard, uint32_t slot);
    int write_position(MDB_txn* txn, uint64_t next_log_seq, uint64_t heads_next_log_seq);
    // After a successful commit: the heads map shows its heads (or is emptied after a flush).
    void finish_heads(uint64_t next_log_seq);
    // After a successful commit: releases the ring slots and records what is now committed.
    void record_commit(uint64_t next_log_seq);
    // Reports everything committed so far as durable: durable_seq, on_durable, stats. Only after
    // a sync that covers the last commit's meta page.
    void publish_durable();
    // MetaSync::deferred, nothing left to commit: syncs the last commit's meta page, then
    // publishes. False when there was nothing to sync (or it may not be trusted).
    bool sync_committed();
    // Doubles the map (up to map_bytes_max); false at the limit or when the disk is low.
    bool grow_map();
    void check_map_usage();
    uint64_t free_pages() const noexcept;
    void check_disk() noexcept;
    bool disk_low() const noexcept;

    const Options options_;
    // meta["rules"] with the entry for this run last (empty when Options::engine is unset).
    std::vector<format::RulesEntry> rules_;
    bool rules_unwritten_ = false;
    int lock_fd_ = -1;           // flock of the directory's jifen.lock.
    int env_file_lock_fd_ = -1;  // flock of jifen.lmdb itself (links to it).
    MDB_env* env_ = nullptr;
    MDB_dbi meta_dbi_ = 0;
    MDB_dbi log_dbi_ = 0;
    MDB_dbi heads_dbi_ = 0;
    MDB_dbi checkpoint_dbi_ = 0;
    uint32_t page_bytes_ = 4096;
    std::vector<std::unique_ptr<Lane>> lanes_;

    // History readers hold it shared. Taken exclusively by map growth (no transaction may be
    // open while the mapping changes) and by the writer emptying the heads map after a heads
    // flush (a reader must not look a member up in a map being emptied).
    mutable std::shared_mutex map_mutex_;
    // The heads changed since the last heads flush. The writer inserts and publishes without
    // the lock; readers look up under map_mutex_ shared (see HeadsMap).
    HeadsMap heads_;
    std::atomic<uint64_t> map_bytes_{0};

    std::thread writer_;
    std::function<void(uint32_t, uint64_t)> on_durable_;
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> writer_sleeping_{false};
    // Orders "records pushed" against "writer going to sleep" without a fence (see append()).
    alignas(64) std::atomic<uint64_t> handshake_{0};
    std::atomic<bool> checkpoint_handed_{false};
    std::mutex wake_mutex_;
    std::condition_variable wake_cv_;
    bool wake_pending_ = false;  // Guarded by wake_mutex_.

    std::atomic<bool> map_full_{false};   // The map cannot grow and is (nearly) full.
    std::atomic<bool> disk_full_{false};  // The disk is nearly full, or ENOSPC.
    // A commit failed for space: storage stays full until a commit succeeds again, whatever
    // free space statvfs reports meanwhile. Writer thread only.
    bool space_failure_ = false;
    std::atomic<bool> failed_{false};

    // Writer-only (or open/recover before start).
    uint64_t next_log_seq_ = 1;  // Next log sequence to commit.
    // MetaSync::deferred: the last successful commit's meta page has not been synced yet.
    bool meta_unsynced_ = false;
    bool checkpoint_written_ = false;  // Since the last malloc_trim: set by record_commit().
    // A commit failed inside mdb_txn_commit, possibly in or after its fdatasync. The waiting
    // meta page may then have failed to reach the disk, and a later fdatasync would not say so
    // (Linux reports a write-back error once). Nothing more is reported durable until a later
    // commit's own meta page has been synced.
    bool meta_untrusted_ = false;
    // The heads table covers the records below this; the map holds the heads of the rest.
    uint64_t heads_next_log_seq_ = 1;
    bool heads_flushing_ = false;  // The commit being written includes a heads flush.
    uint64_t commit_budget_ = 0;
    uint32_t gather_start_lane_ = 0;
    uint64_t disk_checked_us_ = 0;
    uint64_t storage_retry_us_ = 0;
    std::vector<uint64_t> position_scratch_;
    // write_log_values() scratch: one log value, packed before LMDB is asked for its room.
    std::vector<unsigned char> value_scratch_;
    // write_checkpoint_piece() scratch: a chunk that spans two pieces of the checkpoint.
    std::vector<std::byte> chunk_scratch_;
    // load_heads() scratch: the batch's members the map lacked, and per record the map slots
    // of the members it is filed under (HeadsMap::none for none).
    struct MissingHead {
        engine::MemberId member_id;
        uint32_t slot;
    };
    std::vector<MissingHead> heads_missing_;
    std::vector<uint32_t> record_slots_;

    std::atomic<uint64_t> records_written_{0};
    std::atomic<uint64_t> commits_{0};
    std::atomic<uint64_t> checkpoints_written_{0};
    std::atomic<uint64_t> checkpoint_bytes_written_{0};
    std::atomic<uint64_t> last_log_seq_{0};  // Highest durable log sequence.
    // Committed records that claim no id (format::meta_idless_key), and those of the batch being
    // written (counted by load_heads, added once its commit succeeds).
    std::atomic<uint64_t> idless_records_{0};
    uint64_t idless_in_batch_ = 0;
};

}  // namespace jifen::wal
