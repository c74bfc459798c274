// jifend as an object: startup order, shutdown order, and the counters the admin port shows.
#include "server/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <thread>

#include "engine/assert.hpp"
#include "engine/checkpoint_bytes.hpp"
#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "server/auth.hpp"
#include "server/core_thread.hpp"
#include "server/http_admin.hpp"
#include "server/limits.hpp"
#include "server/memory_guard.hpp"
#include "server/shard_thread.hpp"
#include "server/tls.hpp"
#include "wal/log.hpp"

namespace jifen::server {

namespace {

uint64_t wall_clock_us() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

// The shards' listeners share their port through SO_REUSEPORT, which would as readily let them
// join another process that listens there with it: a second jifend started on the port of a
// running one would take half its connections, each ledger answering for members it does not
// hold. A listener bound without SO_REUSEPORT cannot join, so binding one first (and closing it)
// refuses a port anyone already listens on. What is left is a start racing this one in the
// microseconds between that bind and the shards'.
void refuse_port_in_use(const boost::asio::ip::tcp::endpoint& endpoint) {
    if (endpoint.port() == 0) {
        return;  // An ephemeral port is free by definition.
    }
    boost::asio::io_context io(1);
    boost::asio::ip::tcp::acceptor probe(io);
    boost::system::error_code error;
    probe.open(endpoint.protocol(), error);
    if (!error) {
        probe.set_option(boost::asio::socket_base::reuse_address(true), error);
    }
    if (!error) {
        probe.bind(endpoint, error);
    }
    if (error) {
        throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}",
                                             endpoint.address().to_string(), endpoint.port(),
                                             error.message()));
    }
}

// The shards' counters summed, for /metrics and /stats alike.
struct ShardTotals {
    uint64_t operations = 0;
    uint64_t refused = 0;
    uint64_t busy = 0;
    uint64_t forwarded = 0;
    uint64_t storage_full_refusals = 0;
    uint64_t members = 0;
    uint64_t transactions = 0;
};
// Answers other than ok by result code, summed over the shards: (code, count) for each code
// answered at least once, in code order.
std::vector<std::pair<uint32_t, uint64_t>> refusals_by_result(
    const std::vector<std::unique_ptr<ShardThread>>& threads) {
    std::vector<std::pair<uint32_t, uint64_t>> refusals;
    for (uint32_t code = 1; code < ShardCounters::result_codes; ++code) {
        uint64_t count = 0;
        for (const auto& thread : threads) {
            count += thread->counters().refusals[code].load(std::memory_order_relaxed);
        }
        if (count > 0) {
            refusals.emplace_back(code, count);
        }
    }
    return refusals;
}

ShardTotals shard_totals(const std::vector<std::unique_ptr<ShardThread>>& threads) {
    ShardTotals totals;
    for (const auto& thread : threads) {
        const ShardCounters& counters = thread->counters();
        totals.operations += counters.operations.load(std::memory_order_relaxed);
        totals.refused += counters.operations_refused.load(std::memory_order_relaxed);
        totals.busy += counters.busy_refusals.load(std::memory_order_relaxed);
        totals.forwarded += counters.operations_forwarded.load(std::memory_order_relaxed);
        totals.storage_full_refusals +=
            counters.storage_full_refusals.load(std::memory_order_relaxed);
        totals.members += counters.members.load(std::memory_order_relaxed);
        totals.transactions += counters.transactions.load(std::memory_order_relaxed);
    }
    return totals;
}

// A table size configured below what the data directory ran with stays at the larger size (a
// replay may need the room its records had); says so once per key.
void warn_tables_kept(const engine::Config& configured, const engine::Config& used) {
    const auto warn = [](std::string_view key, uint32_t configured_size, uint32_t used_size) {
        if (used_size != configured_size) {
            spdlog::warn(
                "engine.{} is {}, below the {} this data directory ran with: {} is used (tables "
                "never shrink)",
                key, configured_size, used_size, used_size);
        }
    };
    warn("members_per_shard_max", configured.members_per_shard_max, used.members_per_shard_max);
    warn("holds_per_shard_max", configured.holds_per_shard_max, used.holds_per_shard_max);
    warn("lots_per_shard_max", configured.lots_per_shard_max, used.lots_per_shard_max);
}

// memory_max_bytes, or the default when it is 0; no limit when neither is known.
uint64_t memory_budget_bytes(const Config& config) {
    const uint64_t budget = config.memory_max_bytes != 0 ? config.memory_max_bytes
                                                         : MemoryGuard::default_budget_bytes();
    return budget != 0 ? budget : std::numeric_limits<uint64_t>::max();
}

// The process's resident memory (/proc/self/statm), 0 when it cannot be read.
uint64_t resident_bytes() {
    std::FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr) {
        return 0;
    }
    unsigned long size_pages = 0;
    unsigned long resident_pages = 0;
    const bool read = std::fscanf(statm, "%lu %lu", &size_pages, &resident_pages) == 2;
    std::fclose(statm);
    return read ? resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

struct Server::Impl {
    Config config;
    engine::Config engine;  // config.engine with the table sizes the data directory needs.
    std::unique_ptr<KeyRing> keys;
    std::optional<boost::asio::ssl::context> tls;
    std::unique_ptr<wal::Log> log;
    std::unique_ptr<engine::TxnIndex> txn_index;
    std::unique_ptr<TxnIndexGrowth> txn_index_growth;
    std::unique_ptr<MemoryGuard> memory_guard;
    std::vector<std::unique_ptr<engine::Shard>> shards;
    Shared shared;
    // Before the shards that run on them: their io_contexts outlive the shards' sockets and timers.
    std::vector<std::unique_ptr<CoreThread>> cores;
    std::vector<std::unique_ptr<ShardThread>> threads;
    // After the threads: destroyed (and so stopped) first, as it posts replies to them.
    std::unique_ptr<HistoryReader> history;
    std::unique_ptr<HttpAdmin> http;
    bool started = false;
    bool running = false;  // Every shard thread was started.
    bool stopped = false;

    uint64_t members_max() const noexcept {
        return uint64_t{engine.members_per_shard_max} * shards.size();
    }

    // The core threads stop before anything they run is destroyed.
    ~Impl() {
        for (auto& core : cores) {
            core->stop_and_join();
        }
    }
};

Server::Server(Config config) : impl_(std::make_unique<Impl>()) {
    impl_->config = std::move(config);
}

Server::~Server() { stop(); }

StartupReport Server::start(bool with_http_admin) {
    Impl& impl = *impl_;
    JIFEN_ASSERT(!impl.started);
    impl.started = true;
    Config& config = impl.config;
    StartupReport report;
    const uint32_t machine_cores = std::max(1u, std::thread::hardware_concurrency());
    const uint32_t shard_count = config.shard_count != 0 ? config.shard_count : machine_cores;
    report.shard_count = shard_count;

    // Before the data directory is touched: a start refused for its port leaves nothing behind.
    refuse_port_in_use({boost::asio::ip::make_address(config.bind_address), config.port});
    if (with_http_admin) {
        refuse_port_in_use({boost::asio::ip::make_address(config.bind_address), config.http_port});
    }
    impl.keys = std::make_unique<KeyRing>(config.api_keys);
    if (config.tls.enabled()) {
        impl.tls.emplace(make_server_tls_context(config.tls));
    }

    wal::Options options = config.wal;
    options.data_dir = config.data_dir;
    options.shard_count = shard_count;
    options.durability = config.durability;
    options.engine = config.engine;
    impl.log = wal::Log::open(options);
    // The table sizes this data directory needs: never below what it ran with before.
    impl.engine = impl.log->engine_config();
    warn_tables_kept(config.engine, impl.engine);

    std::vector<engine::Shard*> shard_pointers;
    try {
        // A random hash key at every start, so no client can choose ids that crowd one segment.
        std::random_device random;
        impl.txn_index = std::make_unique<engine::TxnIndex>(
            std::max(config.txn_index_slots, txn_index_slots_min_per_shard * shard_count),
            shard_count, (uint64_t{random()} << 32) | random());
        for (uint32_t index = 0; index < shard_count; ++index) {
            impl.shards.push_back(std::make_unique<engine::Shard>(index, shard_count, impl.engine,
                                                                  impl.txn_index.get()));
            shard_pointers.push_back(impl.shards.back().get());
        }
    } catch (const std::bad_alloc&) {
        throw std::runtime_error(
            fmt::format("not enough memory for the engine's tables: {} shards with "
                        "engine.members_per_shard_max {}, engine.holds_per_shard_max {}, "
                        "engine.lots_per_shard_max {} and engine.txns_per_shard_max {} each, and "
                        "txn_index_slots {}; lower them",
                        shard_count, impl.engine.members_per_shard_max,
                        impl.engine.holds_per_shard_max, impl.engine.lots_per_shard_max,
                        impl.engine.txns_per_shard_max, config.txn_index_slots));
    }
    // Every id recovery will claim was logged once, by a record that is no tick and not derived,
    // so those records bound them: room for all of them up front, as replay runs on several
    // threads without the growth barrier.
    const wal::LogStats logged = impl.log->stats();
    if (!impl.txn_index->reserve(logged.last_seq - logged.records_without_ids)) {
        throw wal::StartupError("not enough memory for the transaction index of this log");
    }
    const wal::RecoveryStats recovery = impl.log->recover(shard_pointers);
    report.records_replayed = recovery.records_replayed;
    report.checkpoint_seq = recovery.checkpoint_seq;
    report.replay_us = recovery.replay_us;

    Shared& shared = impl.shared;
    shared.config = &impl.config;
    shared.log = impl.log.get();
    shared.txn_index = impl.txn_index.get();
    impl.txn_index_growth = std::make_unique<TxnIndexGrowth>(*impl.txn_index, shard_count);
    shared.txn_index_growth = impl.txn_index_growth.get();
    impl.memory_guard = std::make_unique<MemoryGuard>(memory_budget_bytes(config));
    shared.memory_guard = impl.memory_guard.get();
    report.memory_budget_bytes = impl.memory_guard->budget_bytes();
    shared.keys = impl.keys.get();
    shared.tls = impl.tls ? &*impl.tls : nullptr;
    shared.sync = config.durability == wal::Durability::sync;
    shared.start_us = wall_clock_us();
    shared.shards.assign(shard_count, nullptr);
    const uint32_t core_count =
        std::min(shard_count, config.shard_threads != 0 ? config.shard_threads : machine_cores);
    for (uint32_t core = 0; core < core_count; ++core) {
        impl.cores.push_back(std::make_unique<CoreThread>(core));
    }
    report.shard_threads = core_count;
    for (uint32_t index = 0; index < shard_count; ++index) {
        impl.threads.push_back(std::make_unique<ShardThread>(shared, index, *impl.shards[index],
                                                             impl.cores[index % core_count]->io()));
        shared.shards[index] = impl.threads.back().get();
        shared.doorbells.push_back(&impl.threads.back()->doorbell());
    }
    // The recovered ledger against the memory budget, before any client is served.
    if (impl.memory_guard->update(checkpoint_reserve_bytes(shared.shards)) &&
        impl.memory_guard->full()) {
        spdlog::warn(
            "memory is over its budget after loading the ledger ({} bytes anonymous, {} counting "
            "room for checkpoints, memory_max_bytes {}): new transactions are refused "
            "with txn_limit until it is not",
            impl.memory_guard->last_bytes(), impl.memory_guard->counted_bytes(),
            impl.memory_guard->budget_bytes());
    }
    impl.history = std::make_unique<HistoryReader>(
        *impl.log, [&threads = impl.threads](const HistoryJob& job, std::vector<std::byte> body) {
            threads[job.shard]->deliver_history(job, std::move(body));
        });
    shared.history_reader = impl.history.get();

    // Every shard thread listens on the same port (SO_REUSEPORT): the first binds (port 0 picks
    // an ephemeral one), the others join it.
    const boost::asio::ip::tcp::endpoint first_endpoint(
        boost::asio::ip::make_address(config.bind_address), config.port);
    report.port = impl.threads[0]->listen(first_endpoint);
    for (uint32_t index = 1; index < shard_count; ++index) {
        impl.threads[index]->listen({first_endpoint.address(), report.port});
    }

    impl.log->start(
        [&threads = impl.threads](uint32_t shard, uint64_t) { threads[shard]->on_durable(); });
    for (uint32_t index = 0; index < shard_count; ++index) {
        std::vector<engine::Command> owed = impl.shards[index]->transfers_in_flight();
        report.transfers_resumed += owed.size();
        impl.threads[index]->start(std::move(owed));
    }
    for (auto& core : impl.cores) {
        core->start();
    }
    impl.history->start();
    impl.running = true;

    if (with_http_admin) {
        HttpAdmin::Callbacks callbacks;
        callbacks.metrics_text = [this] { return metrics_text(); };
        callbacks.stats_json = [this] { return stats_json(); };
        callbacks.write_state = [this]() -> std::string_view {
            const wal::Log& log = *impl_->log;
            return log.failed()                  ? "log_failed"
                   : log.storage_full()          ? "storage_full"
                   : impl_->memory_guard->full() ? "memory_full"
                                                 : "ok";
        };
        impl.http = std::make_unique<HttpAdmin>(config, *impl.keys, std::move(callbacks));
        report.http_port = impl.http->start();
    }
    return report;
}

void Server::stop() {
    Impl& impl = *impl_;
    if (!impl.started || impl.stopped) {
        return;
    }
    impl.stopped = true;
    if (!impl.running) {
        // start() failed part way: core threads that did start stop before the log they
        // append to.
        for (auto& core : impl.cores) {
            core->stop_and_join();
        }
        if (impl.log) {
            impl.log->stop();
        }
        return;
    }
    if (impl.http) {
        impl.http->stop();
    }
    for (auto& thread : impl.threads) {
        thread->begin_stop();
    }
    // Wait for every shard to have nothing in flight, twice in a row: work can only move between
    // shards, so two consecutive all-quiet polls mean it has all drained. A failed log makes
    // nothing durable again, so what waits for it would wait out the whole deadline.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(shutdown_drain_ms_max);
    int quiet_polls = 0;
    while (quiet_polls < 2 && std::chrono::steady_clock::now() < deadline && !impl.log->failed()) {
        const bool quiet = std::all_of(impl.threads.begin(), impl.threads.end(),
                                       [](const auto& thread) { return thread->quiescent(); });
        quiet_polls = quiet ? quiet_polls + 1 : 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (impl.log->failed()) {
        spdlog::warn("shutdown: the log failed; operations it did not write stay unanswered");
    } else if (quiet_polls < 2) {
        spdlog::warn("shutdown: requests still in flight after {} ms; closing anyway",
                     shutdown_drain_ms_max);
    }
    for (auto& thread : impl.threads) {
        thread->finish_stop();
    }
    for (auto& core : impl.cores) {
        core->stop_and_join();
    }
    // The core threads are joined; replies the reader still posts to them are dropped with
    // their io_contexts, as the connections are closed.
    impl.history->stop();
    impl.log->stop();
}

std::string Server::metrics_text() const {
    const Impl& impl = *impl_;
    const ShardTotals totals = shard_totals(impl.threads);
    const wal::LogStats log = impl.log->stats();
    std::string text;
    const auto metric = [&text](std::string_view name, std::string_view type, std::string_view help,
                                uint64_t value) {
        fmt::format_to(std::back_inserter(text), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help,
                       name, type, name, value);
    };
    metric("jifen_shards", "gauge", "Shards.", impl.threads.size());
    metric("jifen_shard_threads", "gauge", "Threads the shards run on.", impl.cores.size());
    metric("jifen_connections", "gauge", "Open binary-protocol connections.",
           impl.shared.connections.load(std::memory_order_relaxed));
    metric("jifen_operations_total", "counter",
           "Ledger operations (mutations) applied or refused; balance queries are not counted.",
           totals.operations);
    metric("jifen_operations_refused_total", "counter", "Operations with a result other than ok.",
           totals.refused);
    fmt::format_to(std::back_inserter(text),
                   "# HELP jifen_refusals_total Answers other than ok, by result: each "
                   "operation's, each refused HELLO, history or stats request, each frame refused "
                   "as a whole (ErrorReply). A result appears once it was answered.\n"
                   "# TYPE jifen_refusals_total counter\n");
    for (const auto& [code, count] : refusals_by_result(impl.threads)) {
        fmt::format_to(std::back_inserter(text), "jifen_refusals_total{{result=\"{}\"}} {}\n",
                       to_string(static_cast<Result>(code)), count);
    }
    metric("jifen_busy_refusals_total", "counter", "Operations refused because a queue was full.",
           totals.busy);
    metric("jifen_storage_full_refusals_total", "counter",
           "Operations refused with storage_full because the log cannot grow.",
           totals.storage_full_refusals);
    metric("jifen_operations_forwarded_total", "counter",
           "Operations handed to the shard owning their member: high when clients are not "
           "shard-aware.",
           totals.forwarded);
    metric("jifen_members", "gauge", "Members enrolled.", totals.members);
    metric("jifen_members_max", "gauge",
           "Members the shards hold at most (engine.members_per_shard_max each): enroll is "
           "refused with member_limit on a full shard.",
           impl.members_max());
    metric("jifen_transactions", "gauge",
           "Applied transactions kept for idempotency: every one, for ever; with the members, "
           "what the server's memory grows with.",
           totals.transactions);
    // The tables that refuse everyone on a shard once full: one gauge per shard, since one full
    // shard refuses its members while the totals still look fine.
    const auto per_shard = [&](std::string_view name, std::string_view help,
                               std::atomic<uint64_t> ShardCounters::*gauge) {
        fmt::format_to(std::back_inserter(text), "# HELP {} {}\n# TYPE {} gauge\n", name, help,
                       name);
        for (const auto& thread : impl.threads) {
            fmt::format_to(std::back_inserter(text), "{}{{shard=\"{}\"}} {}\n", name,
                           thread->index(),
                           (thread->counters().*gauge).load(std::memory_order_relaxed));
        }
    };
    per_shard("jifen_shard_holds_open",
              "Open holds per shard; hold gets hold_limit on a shard at jifen_shard_holds_max.",
              &ShardCounters::holds_open);
    metric("jifen_shard_holds_max", "gauge",
           "Open holds a shard holds at most (engine.holds_per_shard_max).",
           impl.engine.holds_per_shard_max);
    per_shard("jifen_shard_lot_nodes",
              "Point-lot nodes in use per shard (older months, pending points, the months of "
              "open holds); lot_limit refuses on a shard at jifen_shard_lot_nodes_max.",
              &ShardCounters::lot_nodes);
    metric("jifen_shard_lot_nodes_max", "gauge",
           "Point-lot nodes a shard holds at most (engine.lots_per_shard_max).",
           impl.engine.lots_per_shard_max);
    metric("process_resident_memory_bytes", "gauge", "Resident memory of the jifend process.",
           resident_bytes());
    metric("jifen_log_records_total", "counter", "Durable log records written since start.",
           log.records);
    metric("jifen_log_commits_total", "counter", "Group commits since start.", log.commits);
    metric("jifen_log_checkpoints_total", "counter", "Shard checkpoints written since start.",
           log.checkpoints);
    metric("jifen_log_checkpoint_bytes_total", "counter",
           "Bytes of shard checkpoints written since start, those of checkpoints not finished "
           "(a stop while building) included.",
           log.checkpoint_bytes);
    metric("jifen_checkpoint_held_bytes", "gauge",
           "Memory held by checkpoints being built or waiting for the log: up to about 21 MiB "
           "per shard building one, and a copy of its members while its last part waits.",
           engine::CheckpointBytes::bytes_held_in_process());
    metric("jifen_log_used_bytes", "gauge", "Bytes of the LMDB map in use.", log.used_bytes);
    metric("jifen_log_map_bytes", "gauge", "Current LMDB map size.", log.map_bytes);
    metric("jifen_storage_full", "gauge",
           "1 while writes are refused with storage_full (the LMDB map at wal.map_bytes_max, or "
           "the disk nearly full; reads keep working), else 0.",
           impl.log->storage_full() ? 1 : 0);
    metric("jifen_memory_full", "gauge",
           "1 while writes are refused with txn_limit because the process's anonymous memory "
           "reached memory_max_bytes (reads keep working), else 0.",
           impl.memory_guard->full() ? 1 : 0);
    metric("jifen_memory_budget_bytes", "gauge",
           "memory_max_bytes in force: the anonymous memory at which writes are refused.",
           impl.memory_guard->budget_bytes());
    metric("jifen_memory_counted_bytes", "gauge",
           "What the last sample compared with memory_max_bytes: the anonymous memory without "
           "checkpoints being made, plus room for a checkpoint of every shard.",
           impl.memory_guard->counted_bytes());
    metric("process_anonymous_memory_bytes", "gauge",
           "Anonymous memory of the jifend process, resident or swapped out, as last sampled (a "
           "tick): what memory_max_bytes limits.",
           impl.memory_guard->last_bytes());
    metric("jifen_log_failed", "gauge",
           "1 once a log write failed for a reason other than space (an I/O error, a read-only "
           "file system): writes are refused with storage_error until a restart; else 0.",
           impl.log->failed() ? 1 : 0);
    metric("jifen_uptime_seconds", "gauge", "Seconds since start.",
           (wall_clock_us() - impl.shared.start_us) / 1'000'000);
    return text;
}

std::string Server::stats_json() const {
    const Impl& impl = *impl_;
    const ShardTotals totals = shard_totals(impl.threads);
    std::string shards;
    for (const auto& thread : impl.threads) {
        const ShardCounters& counters = thread->counters();
        fmt::format_to(std::back_inserter(shards),
                       "{}{{\"index\":{},\"operations\":{},\"operations_forwarded\":{},"
                       "\"connections\":{},\"members\":{},\"transactions\":{},\"holds_open\":{},"
                       "\"lot_nodes\":{}}}",
                       shards.empty() ? "" : ",", thread->index(),
                       counters.operations.load(std::memory_order_relaxed),
                       counters.operations_forwarded.load(std::memory_order_relaxed),
                       counters.connections.load(std::memory_order_relaxed),
                       counters.members.load(std::memory_order_relaxed),
                       counters.transactions.load(std::memory_order_relaxed),
                       counters.holds_open.load(std::memory_order_relaxed),
                       counters.lot_nodes.load(std::memory_order_relaxed));
    }
    std::string refusals;
    for (const auto& [code, count] : refusals_by_result(impl.threads)) {
        fmt::format_to(std::back_inserter(refusals), "{}\"{}\":{}", refusals.empty() ? "" : ",",
                       to_string(static_cast<Result>(code)), count);
    }
    const wal::LogStats log = impl.log->stats();
    return fmt::format(
        "{{\"shard_count\":{},\"shard_threads\":{},\"uptime_us\":{},\"connections\":{},"
        "\"operations\":{},\"operations_refused\":{},\"busy_refusals\":{},"
        "\"storage_full_refusals\":{},\"operations_forwarded\":{},\"log_records\":{},"
        "\"log_commits\":{},\"log_checkpoints\":{},\"log_checkpoint_bytes\":{},"
        "\"checkpoint_held_bytes\":{},\"log_used_bytes\":{},\"log_map_bytes\":{},"
        "\"storage_full\":{},"
        "\"log_failed\":{},\"memory_full\":{},\"memory_budget_bytes\":{},"
        "\"members\":{},\"members_max\":{},\"transactions\":{},\"resident_bytes\":{},"
        "\"durability\":\"{}\",\"refusals\":{{{}}},\"shards\":[{}]}}",
        impl.threads.size(), impl.cores.size(), wall_clock_us() - impl.shared.start_us,
        impl.shared.connections.load(std::memory_order_relaxed), totals.operations, totals.refused,
        totals.busy, totals.storage_full_refusals, totals.forwarded, log.records, log.commits,
        log.checkpoints, log.checkpoint_bytes, engine::CheckpointBytes::bytes_held_in_process(),
        log.used_bytes, log.map_bytes, impl.log->storage_full(), impl.log->failed(),
        impl.memory_guard->full(), impl.memory_guard->budget_bytes(), totals.members,
        impl.members_max(), totals.transactions, resident_bytes(),
        impl.shared.sync ? "sync" : "async", refusals, shards);
}

}  // namespace jifen::server
