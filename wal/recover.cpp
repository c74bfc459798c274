// Recovery: rebuilds every shard from its newest checkpoint plus the log records after it,
// checking each replayed outcome against the logged one. Runs before the writer starts. The log
// is never truncated (it is the history store), so recovery seeks to where the checkpoints end.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/assert.hpp"
#include "engine/shard.hpp"
#include "protocol/crc32c.hpp"
#include "wal/limits.hpp"
#include "wal/lmdb_log.hpp"
#include "wal/log_value.hpp"

namespace jifen::wal {

namespace {

// Owns a read-only transaction for the length of recovery.
class ReadTxn {
public:
    explicit ReadTxn(MDB_env* env) {
        const int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_);
        if (rc != 0) {
            throw StartupError(std::string("jifen log: recovery cannot read: ") + mdb_strerror(rc));
        }
    }
    ~ReadTxn() { mdb_txn_abort(txn_); }
    ReadTxn(const ReadTxn&) = delete;
    ReadTxn& operator=(const ReadTxn&) = delete;
    MDB_txn* get() const noexcept { return txn_; }

private:
    MDB_txn* txn_ = nullptr;
};

class Cursor {
public:
    Cursor(MDB_txn* txn, MDB_dbi dbi) {
        const int rc = mdb_cursor_open(txn, dbi, &cursor_);
        if (rc != 0) {
            throw StartupError(std::string("jifen log: recovery cannot read: ") + mdb_strerror(rc));
        }
    }
    ~Cursor() { mdb_cursor_close(cursor_); }
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    MDB_cursor* get() const noexcept { return cursor_; }

private:
    MDB_cursor* cursor_ = nullptr;
};

[[noreturn]] void damaged(const std::string& what) {
    throw StartupError("jifen log: damaged log, recovery stopped: " + what);
}

uint64_t steady_us() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

// Loads shard's checkpoint into it; returns its header (shard_seq 0 when there is none).
format::CheckpointHeader load_checkpoint(MDB_txn* txn, MDB_dbi dbi, uint32_t shard_index,
                                         engine::Shard& shard) {
    format::CheckpointHeader header;
    header.shard_seq = 0;
    uint32_t slot = 0;
    MDB_val value;
    int rc = find_checkpoint(txn, dbi, shard_index, &slot, &value);
    if (rc == MDB_NOTFOUND) {
        return header;
    }
    // The chunks follow the header: read on from it.
    Cursor cursor(txn, dbi);
    format::CheckpointKey header_key(shard_index, format::checkpoint_chunk(slot, 0));
    MDB_val key{sizeof(header_key.bytes), header_key.bytes};
    if (rc == 0) {
        rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_SET_KEY);
    }
    const std::string which = "checkpoint of shard " + std::to_string(shard_index);
    if (rc != 0 || value.mv_size != sizeof(header)) {
        damaged(which + ": bad header");
    }
    std::memcpy(&header, value.mv_data, sizeof(header));
    if (header.magic != format::checkpoint_magic ||
        header.chunk_count !=
            (header.size_bytes + checkpoint_chunk_bytes - 1) / checkpoint_chunk_bytes) {
        damaged(which + ": bad header");
    }
    // The chunks stay where the read transaction maps them; the shard loads from them directly.
    std::vector<std::span<const std::byte>> pieces;
    pieces.reserve(header.chunk_count);
    uint64_t offset = 0;
    uint32_t crc = 0;
    for (uint32_t chunk = 1; chunk <= header.chunk_count; ++chunk) {
        rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
        if (rc != 0 || key.mv_size != 8 ||
            format::load_be32(static_cast<const unsigned char*>(key.mv_data)) != shard_index ||
            format::load_be32(static_cast<const unsigned char*>(key.mv_data) + 4) !=
                format::checkpoint_chunk(slot, chunk) ||
            value.mv_size > header.size_bytes - offset) {
            damaged(which + ": chunk " + std::to_string(chunk) + " missing or wrong size");
        }
        pieces.emplace_back(static_cast<const std::byte*>(value.mv_data), value.mv_size);
        crc = protocol::crc32c(value.mv_data, value.mv_size, crc);
        offset += value.mv_size;
    }
    if (offset != header.size_bytes || crc != header.crc32c) {
        damaged(which + ": checksum mismatch");
    }
    if (!shard.load(pieces)) {
        throw StartupError("jifen log: " + which +
                           " is not in a format this build can load (engine version?)");
    }
    return header;
}

// Records of one shard replayed together through Shard::apply_batch, which overlaps their memory
// misses (the member, the transaction index), then each outcome checked against the log.
class ReplayBatch {
public:
    ReplayBatch() {
        commands_.reserve(size_max);
        logged_.reserve(size_max);
        outcomes_.resize(size_max);
    }

    void add(const engine::Record& record, uint64_t log_seq, uint64_t shard_seq) {
        JIFEN_DASSERT(!full());
        commands_.push_back(record.command);
        logged_.push_back({record.applied_points, record.available_after, log_seq, shard_seq});
    }
    bool full() const noexcept { return commands_.size() == size_max; }

    // Applies the records added since the last call to shard, which must be theirs.
    void apply(engine::Shard& shard) {
        const std::span<engine::Outcome> outcomes(outcomes_.data(), commands_.size());
        shard.apply_batch(commands_, outcomes);
        for (size_t i = 0; i < commands_.size(); ++i) {
            check(shard.shard_index(), commands_[i].op, logged_[i], outcomes[i]);
        }
        commands_.clear();
        logged_.clear();
    }

private:
    // Enough to keep apply_batch's prefetch distance busy; small enough to stay in cache.
    static constexpr size_t size_max = 256;

    // What the log says a record's replay must give, and where the record is.
    struct Logged {
        engine::Points applied_points;
        engine::Points available_after;
        uint64_t log_seq;
        uint64_t shard_seq;
    };

    static void check(uint32_t shard_index, engine::Op op, const Logged& logged,
                      const engine::Outcome& outcome) {
        if (outcome.result == Result::ok && !outcome.replayed &&
            outcome.points == logged.applied_points &&
            outcome.available == logged.available_after) {
            return;
        }
        throw StartupError(
            "jifen log: replay disagrees with the log at log seq " +
            std::to_string(logged.log_seq) + " (shard " + std::to_string(shard_index) + " seq " +
            std::to_string(logged.shard_seq) + ", op " + std::to_string(static_cast<unsigned>(op)) +
            "): logged points " + std::to_string(logged.applied_points) + " available " +
            std::to_string(logged.available_after) + ", replay gave " +
            std::string(to_string(outcome.result)) + (outcome.replayed ? " (replayed)" : "") +
            " points " + std::to_string(outcome.points) + " available " +
            std::to_string(outcome.available) +
            ". The log and this build disagree; run the build that wrote it (for a data directory "
            "written before jifen recorded the engine rules, also the engine settings it ran "
            "with).");
    }

    std::vector<engine::Command> commands_;
    std::vector<Logged> logged_;  // logged_[i] belongs to commands_[i].
    std::vector<engine::Outcome> outcomes_;
};

// What one replay thread found: its shards' last sequences and how far the log went.
struct ReplayPart {
    std::vector<uint64_t> last_seq;  // Indexed by shard; only this part's shards are filled.
    uint64_t records_replayed = 0;
    uint64_t checkpoint_seq = 0;
    uint64_t end_log_seq = 0;  // One past the last record read.
    std::exception_ptr error;
};

// The rules a record was applied under, for Shard::set_rules (which takes only the rules).
engine::Config rules_of(const format::RulesEntry& entry) {
    engine::Config rules;
    rules.expiry_months = entry.expiry_months;
    rules.hold_timeout_us_default = entry.hold_timeout_us_default;
    rules.hold_timeout_us_max = entry.hold_timeout_us_max;
    rules.reverse_allows_negative = entry.reverse_allows_negative != 0;
    rules.points_keep_months = entry.points_keep_months != 0;
    rules.holds_per_member_max = entry.holds_per_member_max;
    rules.pending_lots_per_member_max = entry.pending_lots_per_member_max;
    return rules;
}

// Which entry of meta["rules"] each shard's records are being replayed under. Empty rules:
// the shards keep the rules they were built with.
class ReplayRules {
public:
    ReplayRules(std::span<const format::RulesEntry> rules, size_t shard_count)
        : rules_(rules), at_(shard_count, unset) {}

    // True when the shard's record with this log sequence needs other rules than the records
    // before it (the caller applies those first, then calls set()).
    bool changes(uint32_t shard, uint64_t log_seq) const noexcept {
        if (rules_.empty()) {
            return false;
        }
        const size_t at = at_[shard];
        return at == unset || log_seq < rules_[at].from_log_seq ||
               (at + 1 < rules_.size() && rules_[at + 1].from_log_seq <= log_seq);
    }
    void set(engine::Shard& shard, uint32_t shard_index, uint64_t log_seq) {
        size_t at = 0;
        while (at + 1 < rules_.size() && rules_[at + 1].from_log_seq <= log_seq) {
            ++at;
        }
        at_[shard_index] = at;
        shard.set_rules(rules_of(rules_[at]));
    }

private:
    static constexpr size_t unset = ~size_t{0};
    std::span<const format::RulesEntry> rules_;
    std::vector<size_t> at_;
};

// Replays the shards with index % part_count == part_index, reading the log from from_log_seq
// (no record of any shard after its checkpoint lies before it). Each part reads that stretch in
// its own read transaction and applies only its shards' runs: shards share nothing but the
// lock-free TxnIndex, and each transaction id was claimed by exactly one logged record, so the
// shards' relative order does not change any outcome.
void replay_part(MDB_env* env, MDB_dbi log_dbi, MDB_dbi checkpoint_dbi,
                 std::span<engine::Shard* const> shards, std::span<const format::RulesEntry> rules,
                 uint64_t from_log_seq, uint64_t next_log_seq, uint32_t part_index,
                 uint32_t part_count, ReplayPart* part) {
    auto mine = [&](uint32_t shard) { return shard % part_count == part_index; };
    ReplayRules replay_rules(rules, shards.size());
    std::vector<uint64_t>& last_seq = part->last_seq;
    last_seq.assign(shards.size(), 0);
    ReadTxn txn(env);
    for (uint32_t shard = 0; shard < shards.size(); ++shard) {
        if (!mine(shard)) {
            continue;
        }
        const format::CheckpointHeader header =
            load_checkpoint(txn.get(), checkpoint_dbi, shard, *shards[shard]);
        last_seq[shard] = header.shard_seq;
        if (header.shard_seq != 0 &&
            (part->checkpoint_seq == 0 || header.log_seq < part->checkpoint_seq)) {
            part->checkpoint_seq = header.log_seq;
        }
    }
    part->end_log_seq = from_log_seq;
    if (from_log_seq == next_log_seq) {
        return;  // Every shard's checkpoint covers all its records.
    }

    Cursor cursor(txn.get(), log_dbi);
    MDB_val key;
    MDB_val value;
    int rc = seek_log_value(cursor.get(), from_log_seq, &key, &value);
    uint64_t expected_log_seq = 0;  // 0 until the first value fixes where reading starts.
    LogValue log_value;
    ReplayBatch batch;
    for (; rc == 0; rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) {
        if (!log_value.parse(key, value, true)) {
            damaged("log value at " +
                    (key.mv_size == 8 ? std::to_string(format::load_be64(
                                            static_cast<const unsigned char*>(key.mv_data)))
                                      : std::string("?")) +
                    " fails its checks");
        }
        const uint64_t log_seq = log_value.first_log_seq();
        if (expected_log_seq == 0 && !log_value.contains(from_log_seq)) {
            damaged("log sequence " + std::to_string(from_log_seq) + " is missing");
        }
        if (expected_log_seq != 0 && log_seq != expected_log_seq) {
            damaged("log sequence jumps from " + std::to_string(expected_log_seq) + " to " +
                    std::to_string(log_seq));
        }
        if (!log_value.runs_ok(static_cast<uint32_t>(shards.size()))) {
            damaged("log value at " + std::to_string(log_seq) + " has a bad run");
        }
        uint32_t record_index = 0;
        for (uint32_t run_index = 0; run_index < log_value.run_count(); ++run_index) {
            const format::RunHeader run = log_value.run(run_index);
            if (!mine(run.shard_index)) {
                record_index += run.record_count;
                continue;
            }
            engine::Shard& shard = *shards[run.shard_index];
            uint64_t& shard_last_seq = last_seq[run.shard_index];
            for (uint32_t i = 0; i < run.record_count; ++i, ++record_index) {
                const uint64_t shard_seq = run.first_shard_seq + i;
                if (shard_seq <= shard_last_seq) {
                    continue;  // Covered by the checkpoint.
                }
                if (shard_seq != shard_last_seq + 1) {
                    damaged("shard " + std::to_string(run.shard_index) + " misses records " +
                            std::to_string(shard_last_seq + 1) + ".." +
                            std::to_string(shard_seq - 1));
                }
                format::LoggedRecord logged;
                if (!log_value.record(record_index, &logged)) {
                    damaged("log record " + std::to_string(log_seq + record_index) +
                            " fails its checks");
                }
                const engine::Record& record = logged.record;
                if (record.shard_index != run.shard_index) {
                    damaged("log record " + std::to_string(log_seq + record_index) +
                            " names shard " + std::to_string(record.shard_index) +
                            " in a run of shard " + std::to_string(run.shard_index));
                }
                if (engine::is_derived(record.command.op)) {
                    // For the members' histories only: the command after it does it again.
                    shard_last_seq = shard_seq;
                    continue;
                }
                if (replay_rules.changes(run.shard_index, log_seq + record_index)) {
                    batch.apply(shard);  // The records before this one, under their rules.
                    replay_rules.set(shard, run.shard_index, log_seq + record_index);
                }
                batch.add(record, log_seq + record_index, shard_seq);
                if (batch.full()) {
                    batch.apply(shard);
                }
                shard_last_seq = shard_seq;
                ++part->records_replayed;
            }
            batch.apply(shard);
        }
        expected_log_seq = log_value.end_log_seq();
    }
    if (rc != MDB_NOTFOUND) {
        throw StartupError(std::string("jifen log: recovery cannot read: ") + mdb_strerror(rc));
    }
    if (expected_log_seq == 0) {
        damaged("log sequence " + std::to_string(from_log_seq) + " is missing");
    }
    part->end_log_seq = expected_log_seq;
}

}  // namespace

RecoveryStats LmdbLog::recover(std::span<engine::Shard* const> shards) {
    if (writer_.joinable()) {
        throw StartupError("jifen log: recover() must run before start()");
    }
    if (shards.size() != lanes_.size()) {
        throw StartupError("jifen log: recover() needs " + std::to_string(lanes_.size()) +
                           " shards, got " + std::to_string(shards.size()));
    }
    const uint64_t started_us = steady_us();
    // Where the oldest record that some checkpoint does not cover lies (open() worked it out
    // from the checkpoint headers and the position): everything before it is in a checkpoint.
    uint64_t from_log_seq = next_log_seq_;
    for (const auto& lane : lanes_) {
        if (lane->uncovered_log_seq != 0) {
            from_log_seq = std::min(from_log_seq, lane->uncovered_log_seq);
        }
    }
    // One thread per core (at most one per shard): replay is CPU-bound in Shard::apply.
    const uint32_t part_count = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 1,
                                                     static_cast<uint32_t>(shards.size()));
    std::vector<ReplayPart> parts(part_count);
    auto run_part = [&](uint32_t part_index) {
        try {
            replay_part(env_, log_dbi_, checkpoint_dbi_, shards, rules_, from_log_seq,
                        next_log_seq_, part_index, part_count, &parts[part_index]);
        } catch (...) {
            parts[part_index].error = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    for (uint32_t part_index = 1; part_index < part_count; ++part_index) {
        threads.emplace_back(run_part, part_index);
    }
    run_part(0);
    for (std::thread& thread : threads) {
        thread.join();
    }

    RecoveryStats stats;
    for (const ReplayPart& part : parts) {
        if (part.error) {
            std::rethrow_exception(part.error);
        }
        stats.records_replayed += part.records_replayed;
        if (part.checkpoint_seq != 0 &&
            (stats.checkpoint_seq == 0 || part.checkpoint_seq < stats.checkpoint_seq)) {
            stats.checkpoint_seq = part.checkpoint_seq;
        }
    }
    const uint64_t end_log_seq = parts[0].end_log_seq;
    if (end_log_seq != next_log_seq_) {
        damaged("log ends at " + std::to_string(end_log_seq - 1) + " but its position says " +
                std::to_string(next_log_seq_ - 1));
    }
    // The position record and the log are written by the same transactions: they must agree.
    for (uint32_t shard = 0; shard < shards.size(); ++shard) {
        const uint64_t last_seq = parts[shard % part_count].last_seq[shard];
        if (last_seq != lanes_[shard]->ring.tail()) {
            damaged("shard " + std::to_string(shard) + " ends at " + std::to_string(last_seq) +
                    " but its position says " + std::to_string(lanes_[shard]->ring.tail()));
        }
    }
    if (options_.engine) {
        // What the records from here on are applied under, recorded now that the records
        // before replayed: a start that fails leaves the directory's rules as they were.
        for (engine::Shard* shard : shards) {
            shard->set_rules(*options_.engine);
        }
        write_rules();
    }
    stats.replay_us = steady_us() - started_us;
    return stats;
}

}  // namespace jifen::wal
