// Micro-benchmarks of the write-ahead log: append + group commit throughput by batch size in
// sync and async use, the log writer's CPU time per record, history page reads, recovery replay
// rate, and the raw LMDB choices behind the design (records per value, commit sync mode). The log
// benchmarks take wal::MetaSync as their last argument (0: each_commit, 1: deferred) so both are
// measured in one run. docs/wal.md quotes the figures.
#include <benchmark/benchmark.h>
#include <lmdb.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/command.hpp"
#include "engine/config.hpp"
#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "wal/log.hpp"

namespace {

using namespace jifen;

// JIFEN_BENCH_DIR picks the disk under test (default: the system temp dir).
class BenchDir {
public:
    BenchDir() {
        const char* base = std::getenv("JIFEN_BENCH_DIR");
        std::string pattern = ((base != nullptr ? std::filesystem::path(base)
                                                : std::filesystem::temp_directory_path()) /
                               "jifen-wal-bench-XXXXXX")
                                  .string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::abort();
        }
        path_ = pattern;
    }
    ~BenchDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

constexpr uint64_t members_max = 1'000'000;

double cpu_seconds(int who) {
    rusage usage{};
    ::getrusage(who, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// User + system CPU time of the whole process (every thread).
double process_cpu_seconds() { return cpu_seconds(RUSAGE_SELF); }

// The log writer thread's CPU time, sampled from on_durable (which runs on that thread after
// each commit): what one record costs the writer, kernel page copies and file system included.
class WriterCpu {
public:
    std::function<void(uint32_t, uint64_t)> callback(std::function<void(uint32_t, uint64_t)> next) {
        return [this, next = std::move(next)](uint32_t shard, uint64_t seq) {
            seconds_.store(cpu_seconds(RUSAGE_THREAD), std::memory_order_relaxed);
            if (next) {
                next(shard, seq);
            }
        };
    }
    void report(benchmark::State& state, uint64_t records) const {
        state.counters["writer_cpu_us_per_record"] =
            seconds_.load(std::memory_order_relaxed) * 1e6 / static_cast<double>(records);
    }

private:
    std::atomic<double> seconds_{0};
};

std::vector<engine::Record> earn_records(size_t count, uint64_t seed) {
    std::mt19937_64 random(seed);
    std::vector<engine::Record> records(count);
    for (size_t i = 0; i < count; ++i) {
        engine::Record& record = records[i];
        record.command.op = engine::Op::earn;
        record.command.txn_id = engine::TxnId{seed * count + i + 1, 1};
        record.command.member_id = 1 + random() % members_max;
        record.command.points = 100;
        record.applied_points = 100;
    }
    return records;
}

wal::MetaSync meta_sync_arg(int64_t arg) {
    return arg == 0 ? wal::MetaSync::each_commit : wal::MetaSync::deferred;
}

// Earn records of random members among members_max, handed out batch by batch: each append takes
// the next records of a pool of 1M (2^20 over all shards), so consecutive commits touch other
// members, as a server's do. Appending one fixed batch again and again would touch the same few
// members, whose history would stay in a few pages.
class RecordPool {
public:
    static constexpr size_t records_total = size_t{1} << 20;

    // Shard shard_index's share of the pool; logged_as: the shard index its records carry (0 for
    // a log of its own).
    RecordPool(uint32_t shard_index, uint32_t shard_count)
        : RecordPool(shard_index, shard_count, shard_index) {}
    RecordPool(uint32_t shard_index, uint32_t shard_count, uint32_t logged_as)
        : records_(earn_records(records_total / shard_count, 1 + shard_index)) {
        for (engine::Record& record : records_) {
            record.shard_index = logged_as;
        }
    }

    // batch must divide the pool size (a power of two), so no batch wraps.
    std::span<const engine::Record> next(size_t batch) {
        if (next_index_ + batch > records_.size()) {
            next_index_ = 0;
        }
        const std::span<const engine::Record> records(records_.data() + next_index_, batch);
        next_index_ += batch;
        return records;
    }

private:
    std::vector<engine::Record> records_;
    size_t next_index_ = 0;
};

// Sync use: append a batch, wait until it is durable (what a server in `sync` does per group).
void BM_AppendCommitSync(benchmark::State& state) {
    const auto batch = static_cast<size_t>(state.range(0));
    BenchDir dir;
    wal::Options options;
    options.data_dir = dir.path();
    options.meta_sync = meta_sync_arg(state.range(1));
    auto log = wal::Log::open(options);
    std::atomic<uint64_t> durable{0};
    WriterCpu writer_cpu;
    log->start(writer_cpu.callback([&](uint32_t, uint64_t seq) {
        durable.store(seq, std::memory_order_release);
        durable.notify_all();
    }));
    RecordPool pool(0, 1);
    for (auto _ : state) {
        const std::span<const engine::Record> records = pool.next(batch);
        while (!log->append(0, records)) {
            std::this_thread::yield();
        }
        const uint64_t target = log->appended_seq(0);
        for (uint64_t seen = durable.load(std::memory_order_acquire); seen < target;
             seen = durable.load(std::memory_order_acquire)) {
            durable.wait(seen, std::memory_order_acquire);
        }
    }
    log->stop();
    const wal::LogStats stats = log->stats();
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
    state.counters["records_per_commit"] =
        static_cast<double>(stats.records) / static_cast<double>(stats.commits);
    writer_cpu.report(state, stats.records);
}
BENCHMARK(BM_AppendCommitSync)->ArgsProduct({{1, 16, 256, 4096}, {0, 1}})->UseRealTime();

// Time from appending a record until the log reports it durable: what a `sync` reply waits
// under load. Samples one record of shard 0 every sample_interval into a fixed ring, without
// locks: the appending thread itself polls durable_seq (one atomic load) after every append, or
// every 64th when appends are single records.
class AckLatency {
public:
    static constexpr auto sample_interval = std::chrono::microseconds(200);
    static constexpr uint64_t in_flight_max = 4'096;

    explicit AckLatency(bool check_every_append)
        : check_every_append_(check_every_append), in_flight_(in_flight_max) {
        latencies_us_.reserve(1u << 20);
    }

    void after_append(const wal::Log& log, uint32_t shard, uint64_t appends) {
        if (shard != 0 || (!check_every_append_ && appends % 64 != 0)) {
            return;
        }
        const auto now = std::chrono::steady_clock::now();
        const uint64_t durable = log.durable_seq(0);
        for (; head_ != tail_ && in_flight_[head_ % in_flight_max].seq <= durable; ++head_) {
            const Sample& sample = in_flight_[head_ % in_flight_max];
            latencies_us_.push_back(
                std::chrono::duration<double, std::micro>(now - sample.at).count());
        }
        if (now - last_sample_ >= sample_interval && tail_ - head_ < in_flight_max) {
            in_flight_[tail_++ % in_flight_max] = Sample{log.appended_seq(0), now};
            last_sample_ = now;
        }
    }

    void report(benchmark::State& state) {
        if (latencies_us_.empty()) {
            return;
        }
        std::sort(latencies_us_.begin(), latencies_us_.end());
        state.counters["ack_us_p50"] = latencies_us_[latencies_us_.size() / 2];
        state.counters["ack_us_p99"] = latencies_us_[latencies_us_.size() * 99 / 100];
    }

private:
    struct Sample {
        uint64_t seq = 0;
        std::chrono::steady_clock::time_point at;
    };
    bool check_every_append_;
    std::vector<Sample> in_flight_;
    uint64_t head_ = 0;
    uint64_t tail_ = 0;
    std::vector<double> latencies_us_;
    std::chrono::steady_clock::time_point last_sample_{};
};

// Pipelined use: append without waiting for earlier batches, as a server does under load with
// many clients (in `sync` durability replies are held back until durable, but the shard keeps
// applying; `async` replies at once). The writer groups whatever has accumulated. Measured up
// to the moment everything appended is durable.
void BM_AppendCommitPipelined(benchmark::State& state) {
    const auto batch = static_cast<size_t>(state.range(0));
    const auto shard_count = static_cast<uint32_t>(state.range(1));
    BenchDir dir;
    wal::Options options;
    options.data_dir = dir.path();
    options.shard_count = shard_count;
    options.meta_sync = meta_sync_arg(state.range(2));
    auto log = wal::Log::open(options);
    WriterCpu writer_cpu;
    log->start(writer_cpu.callback(nullptr));
    AckLatency latency(batch >= 16);
    uint64_t appends = 0;
    std::vector<RecordPool> pools;
    for (uint32_t shard = 0; shard < shard_count; ++shard) {
        pools.emplace_back(shard, shard_count);
    }
    uint32_t shard = 0;
    const double cpu_before = process_cpu_seconds();
    for (auto _ : state) {
        const std::span<const engine::Record> records = pools[shard].next(batch);
        while (!log->append(shard, records)) {
            latency.after_append(*log, shard, appends);
            std::this_thread::yield();
        }
        latency.after_append(*log, shard, ++appends);
        shard = (shard + 1) % shard_count;
    }
    log->stop();  // Commits the rest: included in the measured time.
    const wal::LogStats stats = log->stats();
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
    state.counters["records_per_commit"] =
        static_cast<double>(stats.records) / static_cast<double>(stats.commits);
    state.counters["process_cpu_us_per_record"] = (process_cpu_seconds() - cpu_before) * 1e6 /
                                                  static_cast<double>(state.iterations() * batch);
    latency.report(state);
    writer_cpu.report(state, stats.records);
}
BENCHMARK(BM_AppendCommitPipelined)
    ->ArgsProduct({{1, 16, 256, 4096}, {1}, {0, 1}})
    ->Args({256, 2, 0})
    ->Args({256, 4, 0})
    ->Args({256, 4, 1})
    ->UseRealTime();

// The design alternative to one writer for all shards: one environment (one Log, its own
// writer thread and file) per shard, loaded exactly as BM_AppendCommitPipelined loads one Log's
// shards, with the same heads map memory in total. Compare
// BM_AppendCommitPipelinedLogPerShard/256/S/0 with BM_AppendCommitPipelined/256/S/0 in the same
// run: records/s, and process CPU per record (every writer's, the appender's).
void BM_AppendCommitPipelinedLogPerShard(benchmark::State& state) {
    const auto batch = static_cast<size_t>(state.range(0));
    const auto shard_count = static_cast<uint32_t>(state.range(1));
    std::vector<BenchDir> dirs(shard_count);
    std::vector<std::unique_ptr<wal::Log>> logs;
    std::vector<RecordPool> pools;
    for (uint32_t shard = 0; shard < shard_count; ++shard) {
        wal::Options options;
        options.data_dir = dirs[shard].path();
        options.shard_count = 1;
        options.meta_sync = meta_sync_arg(state.range(2));
        // The same memory for history heads as the one Log it is compared with: a larger share
        // each would mean fewer heads flushes, not a better design.
        options.heads_map_members = wal::Options{}.heads_map_members / shard_count;
        logs.push_back(wal::Log::open(options));
        logs.back()->start(nullptr);
        pools.emplace_back(shard, shard_count, 0);
    }
    AckLatency latency(batch >= 16);
    uint64_t appends = 0;
    uint32_t shard = 0;
    const double cpu_before = process_cpu_seconds();
    for (auto _ : state) {
        const std::span<const engine::Record> records = pools[shard].next(batch);
        while (!logs[shard]->append(0, records)) {
            if (shard == 0) {
                latency.after_append(*logs[0], 0, appends);
            }
            std::this_thread::yield();
        }
        if (shard == 0) {
            latency.after_append(*logs[0], 0, ++appends);
        }
        shard = (shard + 1) % shard_count;
    }
    uint64_t commits = 0;
    for (auto& log : logs) {
        log->stop();  // Commits the rest: included in the measured time.
        commits += log->stats().commits;
    }
    const double records = static_cast<double>(state.iterations() * batch);
    state.SetItemsProcessed(static_cast<int64_t>(records));
    state.counters["records_per_commit"] = records / static_cast<double>(commits);
    state.counters["process_cpu_us_per_record"] =
        (process_cpu_seconds() - cpu_before) * 1e6 / records;
    latency.report(state);
}
BENCHMARK(BM_AppendCommitPipelinedLogPerShard)->Args({256, 2, 0})->Args({256, 4, 0})->UseRealTime();

// History reads: pages of `limit` entries, newest first, `pages` pages deep (each page from the
// previous one's next_before_seq), for random members of a log of 1M earn records over 4096
// members (~244 records each, spread over the whole log, as busy members' are).
void BM_HistoryRead(benchmark::State& state) {
    const auto limit = static_cast<uint32_t>(state.range(0));
    const auto pages = static_cast<uint32_t>(state.range(1));
    constexpr uint64_t members = 4'096;
    constexpr uint64_t record_count = 1'000'000;
    BenchDir dir;
    wal::Options options;
    options.data_dir = dir.path();
    auto log = wal::Log::open(options);
    log->start(nullptr);
    std::mt19937_64 random(4);
    std::vector<engine::Record> batch = earn_records(4'096, 4);
    for (uint64_t written = 0; written < record_count; written += batch.size()) {
        for (engine::Record& record : batch) {
            record.command.member_id = 1 + random() % members;
        }
        while (!log->append(0, batch)) {
            std::this_thread::yield();
        }
    }
    log->stop();
    uint64_t entries = 0;
    for (auto _ : state) {
        const engine::MemberId member_id = 1 + random() % members;
        uint64_t before_seq = 0;
        for (uint32_t page_index = 0; page_index < pages; ++page_index) {
            const wal::HistoryPage page = log->history(member_id, before_seq, limit);
            entries += page.entries.size();
            before_seq = page.next_before_seq;
            benchmark::DoNotOptimize(page.entries.data());
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(entries));
    state.counters["entries_per_read"] =
        static_cast<double>(entries) / static_cast<double>(state.iterations() * pages);
}
BENCHMARK(BM_HistoryRead)
    ->Args({10, 1})
    ->Args({100, 1})
    ->Args({50, 4})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Recovery: replay a log of enroll/earn/redeem records through real shards. Arguments: records,
// members (the first records enrol them). With many members each replayed record misses cache.
void BM_RecoveryReplay(benchmark::State& state) {
    const auto record_count = static_cast<uint64_t>(state.range(0));
    const auto members = static_cast<uint64_t>(state.range(1));
    constexpr uint32_t shard_count = 2;
    BenchDir dir;
    wal::Options options;
    options.data_dir = dir.path();
    options.shard_count = shard_count;
    options.checkpoint_every_records = UINT64_MAX;
    engine::Config config;
    config.members_per_shard_max = static_cast<uint32_t>(std::bit_ceil(members));
    config.txns_per_shard_max = 1u << 22;
    const uint64_t txn_slots = 2 * (record_count + members) + 1'024;
    {
        engine::TxnIndex txn_index(txn_slots);
        std::vector<std::unique_ptr<engine::Shard>> shards;
        for (uint32_t i = 0; i < shard_count; ++i) {
            shards.push_back(std::make_unique<engine::Shard>(i, shard_count, config, &txn_index));
        }
        auto log = wal::Log::open(options);
        log->start(nullptr);
        std::mt19937_64 random(3);
        engine::TimeUs time_us = 1'750'000'000'000'000;
        for (uint64_t i = 0; i < record_count; ++i) {
            engine::Command command;
            command.txn_id = engine::TxnId{i + 1, 3};
            command.time_us = ++time_us;
            if (i < members) {
                command.op = engine::Op::enroll;
                command.member_id = i + 1;
            } else {
                command.op = random() % 4 == 0 ? engine::Op::redeem : engine::Op::earn;
                command.member_id = 1 + random() % members;
                command.points = 1 + static_cast<engine::Points>(random() % 50);
            }
            const uint32_t shard = engine::Shard::shard_of(command.member_id, shard_count);
            const engine::Outcome outcome = shards[shard]->apply(command);
            if (outcome.result != Result::ok) {
                continue;
            }
            engine::Record record;
            record.command = command;
            record.applied_points = outcome.points;
            record.available_after = outcome.available;
            record.shard_index = shard;
            while (!log->append(shard, std::span<const engine::Record>(&record, 1))) {
                std::this_thread::yield();
            }
        }
        log->stop();
    }
    uint64_t replayed = 0;
    double cpu_seconds = 0;
    // Declared outside the loop so that freeing one iteration's tables (munmap, TLB shootdowns)
    // happens while the timer is paused, not inside the next measurement.
    std::unique_ptr<wal::Log> log;
    std::vector<std::unique_ptr<engine::Shard>> shards;
    std::unique_ptr<engine::TxnIndex> txn_index;
    for (auto _ : state) {
        state.PauseTiming();
        log.reset();
        shards.clear();
        txn_index = std::make_unique<engine::TxnIndex>(txn_slots);
        std::vector<engine::Shard*> pointers;
        for (uint32_t i = 0; i < shard_count; ++i) {
            shards.push_back(
                std::make_unique<engine::Shard>(i, shard_count, config, txn_index.get()));
            pointers.push_back(shards.back().get());
        }
        log = wal::Log::open(options);
        state.ResumeTiming();
        const double cpu_before = process_cpu_seconds();
        replayed += log->recover(pointers).records_replayed;
        cpu_seconds += process_cpu_seconds() - cpu_before;
    }
    state.SetItemsProcessed(static_cast<int64_t>(replayed));
    // CPU time of all replay threads: the rate a core gives when the machine is not shared.
    state.counters["records_per_cpu_second"] = static_cast<double>(replayed) / cpu_seconds;
}
BENCHMARK(BM_RecoveryReplay)
    ->Args({1'000'000, 10'000})
    ->Args({3'000'000, 1'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Raw LMDB, the layout choice: 4096 records of 128 bytes per commit, written as values holding
// `records_per_value` records each under MDB_APPEND (1 = one key per record). Commits unsynced
// so only the B-tree work is measured.
void BM_LmdbRecordsPerValue(benchmark::State& state) {
    const auto per_value = static_cast<size_t>(state.range(0));
    constexpr size_t records_per_commit = 4'096;
    BenchDir dir;
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, 16ull << 30);
    const std::string path = (dir.path() / "raw.lmdb").string();
    if (mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_NOSYNC, 0644) != 0) {
        state.SkipWithError("mdb_env_open");
        return;
    }
    std::vector<unsigned char> value_bytes(per_value * 128, 7);
    uint64_t key_seq = 0;
    for (auto _ : state) {
        MDB_txn* txn = nullptr;
        mdb_txn_begin(env, nullptr, 0, &txn);
        MDB_dbi dbi;
        mdb_dbi_open(txn, nullptr, 0, &dbi);
        for (size_t written = 0; written < records_per_commit; written += per_value) {
            unsigned char key_bytes[8];
            const uint64_t big_endian = __builtin_bswap64(++key_seq);
            std::memcpy(key_bytes, &big_endian, 8);
            MDB_val key{8, key_bytes};
            MDB_val value{value_bytes.size(), value_bytes.data()};
            mdb_put(txn, dbi, &key, &value, MDB_APPEND);
        }
        mdb_txn_commit(txn);
    }
    mdb_env_close(env);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records_per_commit));
}
BENCHMARK(BM_LmdbRecordsPerValue)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->Arg(4096)->UseRealTime();

// Raw LMDB, the sync choice: one 32 KiB value per commit, committed with LMDB's own two-step
// sync (data pages, then meta page: arg 0), with MDB_NOSYNC|MDB_NOMETASYNC and one forced
// mdb_env_sync per commit (arg 1, rejected: may corrupt on power loss), or with MDB_NOMETASYNC
// (arg 2: the data pages' sync only; the meta page waits for the next commit's).
void BM_LmdbCommitSyncMode(benchmark::State& state) {
    const bool one_sync = state.range(0) == 1;
    const bool meta_deferred = state.range(0) == 2;
    BenchDir dir;
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, 16ull << 30);
    const std::string path = (dir.path() / "raw.lmdb").string();
    const unsigned flags = MDB_NOSUBDIR | (one_sync ? MDB_NOSYNC | MDB_NOMETASYNC : 0u) |
                           (meta_deferred ? MDB_NOMETASYNC : 0u);
    if (mdb_env_open(env, path.c_str(), flags, 0644) != 0) {
        state.SkipWithError("mdb_env_open");
        return;
    }
    std::vector<unsigned char> value_bytes(32 << 10, 7);
    uint64_t key_seq = 0;
    for (auto _ : state) {
        MDB_txn* txn = nullptr;
        mdb_txn_begin(env, nullptr, 0, &txn);
        MDB_dbi dbi;
        mdb_dbi_open(txn, nullptr, 0, &dbi);
        unsigned char key_bytes[8];
        const uint64_t big_endian = __builtin_bswap64(++key_seq);
        std::memcpy(key_bytes, &big_endian, 8);
        MDB_val key{8, key_bytes};
        MDB_val value{value_bytes.size(), value_bytes.data()};
        mdb_put(txn, dbi, &key, &value, MDB_APPEND);
        mdb_txn_commit(txn);
        if (one_sync) {
            mdb_env_sync(env, 1);
        }
    }
    mdb_env_close(env);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_LmdbCommitSyncMode)->Arg(0)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
