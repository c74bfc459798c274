// The load driver: one io_context per client thread, each owning some connections; every
// connection keeps a fixed window of operations outstanding (closed loop) or sends on an
// open-loop schedule, and records each completion's latency and outcome.
#include "bench/load/runner.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <variant>
#include <vector>

#include "bench/load/key_distribution.hpp"
#include "bench/load/pacing.hpp"
#include "bench/load/random.hpp"
#include "bench/load/report.hpp"
#include "bench/load/transfer_scope.hpp"
#include "client/async_client.hpp"
#include "client/client.hpp"
#include "client/operations.hpp"
#include "client/txn_id.hpp"

namespace jifen::bench {
namespace {

using Clock = std::chrono::steady_clock;
using protocol::Opcode;

uint64_t now_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count());
}

// CPU time of the calling thread.
uint64_t thread_cpu_ns() {
    timespec time{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time);
    return static_cast<uint64_t>(time.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(time.tv_nsec);
}

Clock::time_point time_point_of(uint64_t ns) {
    return Clock::time_point(std::chrono::nanoseconds(static_cast<int64_t>(ns)));
}

// Enrolment: large frames and a deep window, since only the total time matters.
constexpr uint32_t bulk_batch_ops = 1'024;
constexpr uint32_t bulk_frames_in_flight = 8;

// Amount ranges per kind, in points. Redeems and holds are smaller than earns on average so a
// mixed run does not drain every balance.
struct AmountRange {
    int64_t low;
    int64_t high;
};
constexpr AmountRange earn_points = {10, 500};
constexpr AmountRange purchase_points = {20, 2'000};
constexpr AmountRange redeem_points = {10, 300};
constexpr AmountRange hold_points = {10, 300};
constexpr AmountRange transfer_points = {1, 100};
constexpr uint32_t stores = 500;
constexpr uint32_t merchants = 50;

int64_t draw(Rng& rng, AmountRange range) {
    return range.low +
           static_cast<int64_t>(rng.below(static_cast<uint64_t>(range.high - range.low + 1)));
}

ClientFailure client_failure_of(client::Failure failure) {
    switch (failure) {
        case client::Failure::connect:
            return ClientFailure::connect;
        case client::Failure::timeout:
            return ClientFailure::timeout;
        case client::Failure::protocol:
            return ClientFailure::protocol;
        case client::Failure::overloaded:
            return ClientFailure::overloaded;
        case client::Failure::none:
        case client::Failure::refused:
        case client::Failure::closed:
            return ClientFailure::closed;
    }
    return ClientFailure::closed;
}

client::AsyncOptions client_options(const BenchOptions& options, uint32_t frames_in_flight,
                                    uint32_t batch_ops,
                                    std::optional<uint16_t> shard = std::nullopt) {
    client::AsyncOptions result;
    result.host = options.host;
    result.port = options.port;
    result.api_key = options.api_key;
    result.tls = options.tls;
    result.tls_ca_file = options.ca_file;
    result.tls_insecure_skip_verify = options.insecure;
    result.client_name = "jifen-bench";
    result.frames_in_flight_max = frames_in_flight;
    result.batch_ops_max = batch_ops;
    result.shard = shard;
    // A load test reports a lost connection as errors instead of riding over it: a reconnect in
    // the middle of a run would hide the outage and distort its latencies.
    result.reconnect_attempts = 0;
    return result;
}

// --shard-aware and --transfers: the server's shard count, from a HELLO of its own.
std::variant<uint32_t, std::string> server_shard_count(const BenchOptions& options) {
    client::Client probe(client_options(options, 1, 1));
    try {
        probe.connect();
    } catch (const client::Error& error) {
        return std::string("cannot connect to ") + options.host + ":" +
               std::to_string(options.port) + ": " + error.what();
    }
    return probe.hello().shard_count;
}

// A shard-aware connection draws from the key law until it gets a member of its own shard. A
// law that rarely or never lands there (a tiny hot set) gives up after this many draws and sends
// the member it has; the server routes it anyway.
constexpr int shard_draws_max = 64;

// A non-zero random word per connection and run: the high half of every transaction id, so that
// repeated runs against one server never reuse an id (which would be answered as a replay).
uint64_t fresh_txn_id_high() {
    std::random_device device;
    uint64_t high = 0;
    while (high == 0) {
        high = (uint64_t{device()} << 32) ^ device();
    }
    return high;
}

// ---------------------------------------------------------------------------------------------
// Enrolment: members 1..N, then optionally an initial credit, over one connection.

struct BulkPass {
    Opcode opcode = Opcode::enroll;
    std::function<protocol::Operation(uint64_t member_id)> make;
    // Enrolment before a run means "make sure these members exist": one enrolled earlier with
    // other attributes (a tier set by the CLI) is there all the same, so member_exists counts it
    // instead of failing the run.
    bool existing_member_is_present = false;
};

struct BulkLoad {
    client::AsyncClient* client = nullptr;
    uint64_t members = 0;
    std::vector<BulkPass> passes;
    size_t pass_index = 0;
    uint64_t next_member = 1;
    uint64_t completed = 0;
    uint64_t members_with_other_attributes = 0;
    std::string failure;

    void start_pass() {
        next_member = 1;
        completed = 0;
        pump();
    }

    void pump() {
        const BulkPass& pass = passes[pass_index];
        while (failure.empty() && next_member <= members) {
            const uint64_t member_id = next_member;
            const bool queued = client->submit(
                pass.opcode, pass.make(member_id),
                [this](const client::Status& status, const protocol::OperationReply& reply) {
                    on_reply(status, reply);
                });
            if (!queued) {
                return;  // The window is full; completions pump again.
            }
            ++next_member;
        }
    }

    void on_reply(const client::Status& status, const protocol::OperationReply& reply) {
        ++completed;
        if (failure.empty()) {
            if (!status.ok()) {
                failure = std::string(protocol::to_string(passes[pass_index].opcode)) +
                          " failed: " + status.to_string();
            } else if (passes[pass_index].existing_member_is_present &&
                       reply.result == static_cast<uint32_t>(Result::member_exists)) {
                ++members_with_other_attributes;
            } else if (reply.result != static_cast<uint32_t>(Result::ok)) {
                failure = std::string(protocol::to_string(passes[pass_index].opcode)) +
                          " refused: " + std::string(to_string(static_cast<Result>(reply.result)));
            }
        }
        if (completed == next_member - 1 && (next_member > members || !failure.empty())) {
            // Every submitted operation of this pass has answered.
            if (failure.empty() && pass_index + 1 < passes.size()) {
                ++pass_index;
                start_pass();
                return;
            }
            client->close();
            return;
        }
        pump();
    }
};

std::string enroll_members(const BenchOptions& options, std::FILE* progress) {
    boost::asio::io_context io;
    client::AsyncClient client(io, client_options(options, bulk_frames_in_flight, bulk_batch_ops));
    BulkLoad load;
    load.client = &client;
    load.members = options.members;
    load.passes.push_back(
        {.opcode = Opcode::enroll,
         .make = [](uint64_t member_id) { return client::make_enroll(member_id); },
         .existing_member_is_present = true});
    if (options.initial_points > 0) {
        const int64_t points = options.initial_points;
        load.passes.push_back({.opcode = Opcode::earn, .make = [points](uint64_t member_id) {
                                   return client::make_earn(member_id, points);
                               }});
    }
    const uint64_t started_ns = now_ns();
    std::string connect_failure;
    client.async_connect([&](const client::Status& status) {
        if (!status.ok()) {
            connect_failure = "cannot connect to " + options.host + ":" +
                              std::to_string(options.port) + ": " + status.to_string();
            return;
        }
        load.start_pass();
    });
    io.run();
    if (!connect_failure.empty()) {
        return connect_failure;
    }
    if (!load.failure.empty()) {
        return "enrolment: " + load.failure;
    }
    std::fprintf(progress, "enrolled members 1..%llu with %lld points each in %.2f s\n",
                 static_cast<unsigned long long>(options.members),
                 static_cast<long long>(options.initial_points),
                 static_cast<double>(now_ns() - started_ns) / 1e9);
    if (load.members_with_other_attributes > 0) {
        std::fprintf(progress,
                     "%llu of members 1..%llu were already enrolled with other attributes; kept "
                     "as they are\n",
                     static_cast<unsigned long long>(load.members_with_other_attributes),
                     static_cast<unsigned long long>(options.members));
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// The timed run.

// Shared between the main thread and the client threads.
struct RunControl {
    explicit RunControl(std::ptrdiff_t workers) : connected(workers) {}

    std::latch connected;  // Every worker has connected (or failed to).
    std::latch go{1};      // Main has set start_ns (or abort).
    std::atomic<uint64_t> start_ns{0};
    std::atomic<bool> abort{false};
    std::atomic<uint32_t> workers_running{0};
    std::atomic<uint32_t> server_shards{0};
    std::mutex fatal_mutex;
    std::string fatal;

    void fail(std::string message) {
        const std::scoped_lock lock(fatal_mutex);
        if (fatal.empty()) {
            fatal = std::move(message);
        }
    }
};

class Worker;

// When the warm-up ends and the measured part of the run begins.
uint64_t measured_from_ns(const BenchOptions& options, uint64_t start_ns) {
    return start_ns + uint64_t{options.warmup_s} * 1'000'000'000;
}

// When a timed run stops sending (the warm-up included), or UINT64_MAX for an --ops run.
uint64_t planned_stop_ns(const BenchOptions& options, uint64_t start_ns) {
    if (options.duration_s <= 0) {
        return UINT64_MAX;
    }
    return measured_from_ns(options, start_ns) + static_cast<uint64_t>(options.duration_s * 1e9);
}

// The signal that interrupted the run, or 0. Set by the handler, read by the main thread.
std::atomic<int> stop_signal_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "written from a signal handler");

extern "C" void on_stop_signal(int signal_number) {
    stop_signal_received = signal_number;
    // A second Ctrl-C ends the process at once, as if the bench did not handle it.
    std::signal(signal_number, SIG_DFL);
}

// Handles SIGINT and SIGTERM for the timed run only; the handlers before are restored after.
class StopSignalScope {
public:
    StopSignalScope()
        : previous_int_(std::signal(SIGINT, on_stop_signal)),
          previous_term_(std::signal(SIGTERM, on_stop_signal)) {
        stop_signal_received = 0;
    }
    ~StopSignalScope() {
        std::signal(SIGINT, previous_int_);
        std::signal(SIGTERM, previous_term_);
    }
    StopSignalScope(const StopSignalScope&) = delete;
    StopSignalScope& operator=(const StopSignalScope&) = delete;

private:
    void (*previous_int_)(int);
    void (*previous_term_)(int);
};

// One connection's load: a fixed pool of operation slots (the window), a seeded generator, and
// either closed-loop refill or an open-loop schedule. When the client library refuses an
// operation for want of free frame buffers (its back-pressure), the slot waits in a FIFO and is
// submitted again as replies free buffers; its latency keeps counting from its intended time.
class Driver {
public:
    // shard: with --shard-aware, the shard this connection asks for and draws members of.
    Driver(Worker* worker, boost::asio::io_context& io, const BenchOptions& options,
           const KeyDistribution& keys, uint32_t connection_index, uint64_t ops_budget,
           std::optional<uint16_t> shard);

    client::AsyncClient& client() noexcept { return client_; }
    // stop_ns: when a timed run ends (UINT64_MAX for --ops); the open loop sends nothing due then
    // or later.
    void start(uint64_t start_ns, uint64_t stop_ns);
    void pump(uint64_t now);  // Open loop: send what is due while slots are free.
    void stop();              // No new operations; the connection closes once drained.
    // Stops at once and leaves the operations still in flight out of the results.
    void abandon();
    bool finished() const noexcept { return closed_; }
    bool lost() const noexcept { return dead_; }
    // Open loop: when the next operation is due, or UINT64_MAX when nothing will be sent before
    // a completion frees a slot (or ever).
    uint64_t next_due_ns() const noexcept;

private:
    struct Slot {
        Driver* driver = nullptr;
        OpKind kind = OpKind::earn;
        Opcode opcode = Opcode::earn;
        uint64_t intended_ns = 0;
        uint64_t member_id = 0;
        bool crosses_shards = false;    // A transfer between members of two shards.
        uint64_t txn_id_low = 0;        // The operation's own transaction id (low half).
        protocol::Operation operation;  // Built once, so a deferred resend sends the same bytes.
        Slot* next = nullptr;           // Free list or deferred FIFO.
    };
    static_assert(sizeof(Slot) <= slot_bytes_per_op, "window_bytes() would underestimate");

    bool issue(uint64_t intended_ns);
    uint64_t next_member();
    void build(Slot* slot);
    void build_capture(Slot* slot, uint64_t hold_txn_id_low);
    bool submit(Slot* slot);
    // Submits, or defers when the client is full; false when the slot did not go out now.
    bool submit_or_defer(Slot* slot);
    void resubmit_deferred();
    void on_reply(Slot* slot, const client::Status& status, Result result);
    void refill(uint64_t now);
    void release(Slot* slot) noexcept;
    void fail_deferred();
    void close_when_drained();
    bool accepting() const noexcept { return !stopping_ && !dead_ && scheduled_ < ops_budget_; }

    Worker* worker_;
    boost::asio::io_context& io_;
    const BenchOptions& options_;
    const KeyDistribution& keys_;
    std::optional<uint16_t> shard_;
    uint32_t connection_index_;
    uint32_t shard_count_ = 0;  // From the HELLO, at the start.
    uint32_t home_shard_ = 0;
    client::AsyncClient client_;
    Rng rng_;
    uint64_t txn_id_high_;
    uint64_t txn_id_low_next_ = 1;
    std::vector<Slot> slots_;
    Slot* free_ = nullptr;
    Slot* deferred_head_ = nullptr;
    Slot* deferred_tail_ = nullptr;
    bool resubmit_posted_ = false;
    size_t outstanding_ = 0;  // Slots in use: in the client or deferred.
    uint64_t ops_budget_;
    uint64_t scheduled_ = 0;
    std::optional<OpenLoopSchedule> schedule_;
    bool stopping_ = false;
    bool dead_ = false;  // The connection broke: nothing more can be sent on it.
    bool abandoned_ = false;
    bool closed_ = false;
};

class Worker {
public:
    // shard_count: with --shard-aware, the server's; connection i then asks for shard i mod it.
    Worker(const BenchOptions& options, const KeyDistribution& keys,
           const std::vector<uint32_t>& connection_indexes, const std::vector<uint64_t>& budgets,
           uint32_t shard_count)
        : options_(options), deadline_timer_(io_), pace_timer_(io_) {
        for (size_t index = 0; index < connection_indexes.size(); ++index) {
            std::optional<uint16_t> shard;
            if (shard_count > 0) {
                shard = static_cast<uint16_t>(connection_indexes[index] % shard_count);
            }
            drivers_.push_back(std::make_unique<Driver>(
                this, io_, options, keys, connection_indexes[index], budgets[index], shard));
        }
    }

    void run(RunControl* control);

    // From another thread (after SIGINT or SIGTERM): stop sending and drain; then, if replies
    // are still missing, abandon them.
    void request_stop() {
        boost::asio::post(io_, [this] {
            for (auto& driver : drivers_) {
                driver->stop();
            }
        });
    }
    void abandon() {
        boost::asio::post(io_, [this] {
            for (auto& driver : drivers_) {
                driver->abandon();
            }
        });
    }
    // After run() returned.
    uint32_t connections_lost() const noexcept {
        return static_cast<uint32_t>(std::count_if(
            drivers_.begin(), drivers_.end(), [](const auto& driver) { return driver->lost(); }));
    }

    // Completions are gathered while one event-loop handler runs (one read delivers the replies
    // of whole frames) and handed to the shared stats when it ends: one clock read and one lock
    // per handler, and one histogram update per run of equal outcomes, instead of each per
    // operation. The client thread's time goes to the load, not to counting it.
    //
    // The time every completion of the handler is stamped with, read at its first: replies read
    // together arrived together.
    uint64_t completion_ns() {
        if (completion_ns_ == 0) {
            completion_ns_ = now_ns();
        }
        return completion_ns_;
    }
    void record(OpKind kind, Result result, uint64_t latency, uint64_t completed_ns,
                bool crosses_shards) {
        if (pending_.count > 0 &&
            (pending_.kind != kind || pending_.result != result || pending_.latency != latency)) {
            hand_over_completions();
        }
        pending_.kind = kind;
        pending_.result = result;
        pending_.latency = latency;
        ++pending_.count;
        pending_.cross_shard_transfers += crosses_shards ? 1 : 0;
        pending_.last_completion_ns = std::max(pending_.last_completion_ns, completed_ns);
    }
    // An operation that ended without an answer: no latency, and not a completed transfer.
    void record_failure(OpKind kind, ClientFailure failure, uint64_t failed_ns) {
        hand_over_completions();
        const std::scoped_lock lock(mutex_);
        stats_at(failed_ns).record_failure(kind, failure);
    }
    // After every handler of the event loop.
    void end_of_handler() {
        completion_ns_ = 0;
        hand_over_completions();
    }
    // Moves what was recorded since the last call into `measured` and `warmup` (which must be
    // clear), split by when each operation completed or failed.
    void take_stats(RunStats* measured, RunStats* warmup) {
        const std::scoped_lock lock(mutex_);
        std::swap(stats_, *measured);
        std::swap(warmup_stats_, *warmup);
    }
    // Open loop: how long after its due time the pacing took an operation up (measured part only).
    void record_send_lag(uint64_t intended_ns, uint64_t now) noexcept {
        if (intended_ns >= measured_from_ns_) {
            send_lag_ns_.record(latency_ns(intended_ns, now));
        }
    }
    // After run() returned.
    const LatencyHistogram& send_lag_ns() const noexcept { return send_lag_ns_; }
    void add_unsent_due(uint64_t count) noexcept { unsent_due_ += count; }
    uint64_t unsent_due() const noexcept { return unsent_due_; }
    uint64_t last_completion_ns() {
        const std::scoped_lock lock(mutex_);
        return last_completion_ns_;
    }

    void driver_finished() {
        if (std::all_of(drivers_.begin(), drivers_.end(),
                        [](const auto& driver) { return driver->finished(); })) {
            finished_ns_ = now_ns();
            deadline_timer_.cancel();
            pace_timer_.cancel();
        }
    }
    // After run() returned: the share of the run (from the start to the end of run()) this thread
    // spent on the CPU other than polling for a due time. Near 1, the thread and not the server
    // set the pace.
    double busy() const noexcept { return busy_; }
    // When the last of this thread's connections finished (after run() returned), or 0.
    uint64_t finished_ns() const noexcept { return finished_ns_; }

private:
    // Open loop: sends what is due, then sleeps, polls or comes back at once (pace_wait).
    void pace();
    // Runs the event loop until it runs out of work, ending each handler with end_of_handler().
    void run_handlers() {
        while (io_.run_one() > 0) {
            ++handlers_run_;
            end_of_handler();
        }
        end_of_handler();
    }
    void hand_over_completions() {
        if (pending_.count == 0) {
            return;
        }
        const std::scoped_lock lock(mutex_);
        // One handler's completions share their time, so they share the phase of the run too.
        RunStats& stats = stats_at(pending_.last_completion_ns);
        stats.record_n(pending_.kind, pending_.result, pending_.latency, pending_.count);
        stats.cross_shard_transfers += pending_.cross_shard_transfers;
        if (&stats == &stats_) {
            last_completion_ns_ = std::max(last_completion_ns_, pending_.last_completion_ns);
        }
        pending_ = PendingCompletions{};
    }
    // The warm-up's outcomes are kept apart from the measured ones rather than dropped: an
    // unexpected failure in the warm-up still fails the run.
    RunStats& stats_at(uint64_t ns) noexcept {
        return ns < measured_from_ns_ ? warmup_stats_ : stats_;
    }

    const BenchOptions& options_;
    boost::asio::io_context io_;
    boost::asio::steady_timer deadline_timer_;
    boost::asio::steady_timer pace_timer_;
    TimerLateness pace_timer_lateness_;
    uint64_t handlers_run_ = 0;
    // Time spent polling for a due time (counted as idle, though replies read meanwhile were
    // work: a thread that is behind never polls), and since when it has been polling, or 0.
    uint64_t polling_ns_ = 0;
    uint64_t polling_since_ns_ = 0;
    double busy_ = 0;  // See busy().
    std::vector<std::unique_ptr<Driver>> drivers_;
    // Worker thread only: completions of the running handler not yet in stats_, all with one
    // outcome and latency.
    struct PendingCompletions {
        OpKind kind = OpKind::earn;
        Result result = Result::ok;
        uint64_t latency = 0;
        uint64_t count = 0;
        uint64_t cross_shard_transfers = 0;
        uint64_t last_completion_ns = 0;
    };
    PendingCompletions pending_;
    uint64_t completion_ns_ = 0;  // 0: not read yet in this handler.
    std::mutex mutex_;
    RunStats stats_;
    RunStats warmup_stats_;
    uint64_t measured_from_ns_ = 0;    // The end of the warm-up; set before the run starts.
    uint64_t last_completion_ns_ = 0;  // Of the measured part.
    uint64_t finished_ns_ = 0;
    LatencyHistogram send_lag_ns_;  // Worker thread only, until run() returned.
    std::atomic<uint64_t> unsent_due_{0};
};

Driver::Driver(Worker* worker, boost::asio::io_context& io, const BenchOptions& options,
               const KeyDistribution& keys, uint32_t connection_index, uint64_t ops_budget,
               std::optional<uint16_t> shard)
    : worker_(worker),
      io_(io),
      options_(options),
      keys_(keys),
      shard_(shard),
      connection_index_(connection_index),
      client_(io, client_options(options, options.pipeline, options.batch, shard)),
      rng_(options.seed * 0x9E3779B97F4A7C15ull + connection_index + 1),
      txn_id_high_(fresh_txn_id_high()),
      slots_(size_t{options.pipeline} * options.batch),
      ops_budget_(ops_budget) {
    for (Slot& slot : slots_) {
        slot.driver = this;
        slot.next = free_;
        free_ = &slot;
    }
}

void Driver::start(uint64_t start_ns, uint64_t stop_ns) {
    shard_count_ = client_.hello().shard_count;
    // Where the server put the connection: the shard asked for unless it kept it (TLS).
    home_shard_ = client_.hello().shard;
    if (options_.rate > 0) {
        schedule_.emplace(start_ns, options_.rate, options_.burst,
                          ScheduleShare{.index = connection_index_, .count = options_.connections});
        if (stop_ns != UINT64_MAX) {
            // The deadline and the pacing timer race for an operation due at the stop instant:
            // settled here, so a run sends rate x duration operations.
            ops_budget_ = std::min(ops_budget_, schedule_->due_count(stop_ns - 1));
        }
        pump(now_ns());
    } else {
        refill(now_ns());
    }
    close_when_drained();  // A zero budget (fewer --ops than connections) ends at once.
}

void Driver::pump(uint64_t now) {
    const uint64_t due = schedule_->due_count(now);
    while (scheduled_ < due && free_ != nullptr && accepting()) {
        const uint64_t intended_ns = schedule_->intended_ns(scheduled_);
        worker_->record_send_lag(intended_ns, now);
        if (!issue(intended_ns)) {
            return;  // Deferred: the client library is full.
        }
    }
}

uint64_t Driver::next_due_ns() const noexcept {
    if (!accepting() || free_ == nullptr) {
        return UINT64_MAX;
    }
    return schedule_->intended_ns(scheduled_);
}

void Driver::refill(uint64_t now) {
    if (deferred_head_ != nullptr) {
        return;  // The client is full; new operations would only queue behind the deferred.
    }
    if (schedule_) {
        pump(now);
        return;
    }
    while (free_ != nullptr && issue(now)) {
    }
}

bool Driver::issue(uint64_t intended_ns) {
    if (!accepting() || free_ == nullptr) {
        return false;
    }
    Slot* slot = free_;
    free_ = slot->next;
    slot->next = nullptr;
    ++outstanding_;
    ++scheduled_;
    slot->kind = options_.mix.next(rng_);
    slot->intended_ns = intended_ns;
    slot->member_id = next_member();
    slot->crosses_shards = false;
    slot->txn_id_low = txn_id_low_next_++;
    build(slot);
    return submit_or_defer(slot);
}

uint64_t Driver::next_member() {
    uint64_t member = keys_.next(rng_);
    if (!shard_) {
        return member;
    }
    for (int draw = 1;
         draw < shard_draws_max && protocol::shard_of(member, shard_count_) != home_shard_;
         ++draw) {
        member = keys_.next(rng_);
    }
    return member;
}

void Driver::build(Slot* slot) {
    protocol::Operation& operation = slot->operation;
    switch (slot->kind) {
        case OpKind::earn:
            slot->opcode = Opcode::earn;
            operation =
                client::make_earn(slot->member_id, draw(rng_, earn_points) * options_.earn_factor);
            break;
        case OpKind::purchase:
            slot->opcode = Opcode::earn;
            operation = client::make_earn(
                slot->member_id, draw(rng_, purchase_points) * options_.earn_factor, 0,
                client::PosFields{.store_id = 1 + static_cast<uint32_t>(rng_.below(stores)),
                                  .merchant_id = 1 + static_cast<uint32_t>(rng_.below(merchants)),
                                  .order_ref = slot->txn_id_low});
            break;
        case OpKind::redeem:
            slot->opcode = Opcode::redeem;
            operation = client::make_redeem(slot->member_id, draw(rng_, redeem_points));
            break;
        case OpKind::hold:
            slot->opcode = Opcode::hold;
            operation = client::make_hold(slot->member_id, draw(rng_, hold_points));
            break;
        case OpKind::transfer: {
            slot->opcode = Opcode::transfer;
            const uint64_t to_member_id =
                next_counterparty(keys_, rng_, slot->member_id, options_.transfers, shard_count_);
            slot->crosses_shards = protocol::shard_of(slot->member_id, shard_count_) !=
                                   protocol::shard_of(to_member_id, shard_count_);
            operation =
                client::make_transfer(slot->member_id, to_member_id, draw(rng_, transfer_points));
            break;
        }
        case OpKind::balance:
            slot->opcode = Opcode::balance;
            return;  // Only member_id is sent.
        case OpKind::capture:
            return;  // build_capture() makes these.
    }
    client::set_txn_id(&operation, {slot->txn_id_low, txn_id_high_});
}

void Driver::build_capture(Slot* slot, uint64_t hold_txn_id_low) {
    slot->kind = OpKind::capture;
    slot->opcode = Opcode::capture;
    slot->txn_id_low = txn_id_low_next_++;
    slot->operation = client::make_capture({hold_txn_id_low, txn_id_high_}, 0, slot->member_id);
    client::set_txn_id(&slot->operation, {slot->txn_id_low, txn_id_high_});
}

bool Driver::submit(Slot* slot) {
    if (slot->opcode == Opcode::balance) {
        return client_.balance(slot->member_id, [slot](const client::Status& status,
                                                       const protocol::BalanceReply& reply) {
            slot->driver->on_reply(slot, status, static_cast<Result>(reply.result));
        });
    }
    return client_.submit(
        slot->opcode, slot->operation,
        [slot](const client::Status& status, const protocol::OperationReply& reply) {
            slot->driver->on_reply(slot, status, static_cast<Result>(reply.result));
        });
}

bool Driver::submit_or_defer(Slot* slot) {
    if (deferred_head_ == nullptr && submit(slot)) {
        return true;
    }
    slot->next = nullptr;
    if (deferred_tail_ != nullptr) {
        deferred_tail_->next = slot;
    } else {
        deferred_head_ = slot;
    }
    deferred_tail_ = slot;
    if (!client_.is_connected()) {
        dead_ = true;
        fail_deferred();
    }
    return false;
}

void Driver::resubmit_deferred() {
    while (deferred_head_ != nullptr && submit(deferred_head_)) {
        deferred_head_ = deferred_head_->next;
        if (deferred_head_ == nullptr) {
            deferred_tail_ = nullptr;
        }
    }
    if (deferred_head_ != nullptr && !client_.is_connected()) {
        dead_ = true;
        fail_deferred();
    }
}

void Driver::fail_deferred() {
    // The connection is gone: operations never sent are failures of the run, not silently lost.
    while (deferred_head_ != nullptr) {
        Slot* slot = deferred_head_;
        deferred_head_ = slot->next;
        worker_->record_failure(slot->kind, ClientFailure::closed, now_ns());
        release(slot);
    }
    deferred_tail_ = nullptr;
}

void Driver::on_reply(Slot* slot, const client::Status& status, Result result) {
    if (abandoned_) {
        release(slot);
        close_when_drained();
        return;
    }
    const uint64_t now = worker_->completion_ns();
    const uint64_t latency = latency_ns(slot->intended_ns, now);
    if (status.ok()) {
        worker_->record(slot->kind, result, latency, now, slot->crosses_shards);
    } else if (status.failure == client::Failure::refused) {
        // An error frame.
        worker_->record(slot->kind, status.result, latency, now, slot->crosses_shards);
    } else {
        worker_->record_failure(slot->kind, client_failure_of(status.failure), now);
        dead_ = true;
    }
    // A successful hold is followed at once by the capture of the whole hold, as at a till; it is
    // sent even while stopping so that no hold is left open.
    if (status.ok() && slot->kind == OpKind::hold && result == Result::ok && !dead_) {
        build_capture(slot, slot->txn_id_low);
        slot->intended_ns = now;
        submit_or_defer(slot);
    } else {
        release(slot);
    }
    resubmit_deferred();
    refill(now);
    if (deferred_head_ != nullptr && !resubmit_posted_) {
        // This reply's frame buffer is freed only after its handlers return: try again then.
        resubmit_posted_ = true;
        boost::asio::post(io_, [this] {
            resubmit_posted_ = false;
            resubmit_deferred();
            refill(now_ns());
            close_when_drained();
        });
    }
    close_when_drained();
}

void Driver::release(Slot* slot) noexcept {
    slot->next = free_;
    free_ = slot;
    --outstanding_;
}

void Driver::stop() {
    if (schedule_ && !stopping_) {
        // Operations the schedule made due that never went out because the window stayed full:
        // the server fell behind the requested rate. Reported, since their latency is unknown.
        // What fell due in the last pacing interval (or the timer's longest wait) is not: the
        // deadline and the pacing timer race for it, whatever the server does.
        const uint64_t grace_ns = std::max(schedule_->interval_ns(), pace_wait_ns_max);
        worker_->add_unsent_due(unsent_behind(*schedule_, scheduled_, ops_budget_, now_ns(),
                                              grace_ns, free_ == nullptr));
    }
    stopping_ = true;
    close_when_drained();
}

void Driver::abandon() {
    if (closed_) {
        return;
    }
    abandoned_ = true;
    stopping_ = true;
    while (deferred_head_ != nullptr) {
        Slot* slot = deferred_head_;
        deferred_head_ = slot->next;
        release(slot);
    }
    deferred_tail_ = nullptr;
    client_.close();  // What is in flight completes now, as closed, and on_reply drops it.
    close_when_drained();
}

void Driver::close_when_drained() {
    if (closed_ || outstanding_ != 0 || accepting()) {
        return;
    }
    closed_ = true;
    // Closed from a fresh handler rather than from inside the client's own reply handler.
    boost::asio::post(io_, [this] {
        client_.close();
        worker_->driver_finished();
    });
}

void Worker::run(RunControl* control) {
    size_t connecting = drivers_.size();
    for (auto& owned : drivers_) {
        Driver* driver = owned.get();
        driver->client().async_connect([this, control, driver,
                                        &connecting](const client::Status& status) {
            --connecting;
            if (!status.ok()) {
                control->fail("cannot connect to " + options_.host + ":" +
                              std::to_string(options_.port) + ": " + status.to_string());
                return;
            }
            control->server_shards = driver->client().hello().shard_count;
            if (std::string problem = scope_problem(options_.mix, driver->client().hello().scope);
                !problem.empty()) {
                control->fail(std::move(problem));
            }
        });
    }
    while (connecting > 0 && io_.run_one() > 0) {
    }
    control->connected.count_down();
    control->go.wait();
    if (control->abort) {
        for (auto& driver : drivers_) {
            driver->client().close();
        }
        io_.restart();
        io_.run();
        return;
    }
    const uint64_t start_ns = control->start_ns;
    const uint64_t stop_ns = planned_stop_ns(options_, start_ns);
    measured_from_ns_ = measured_from_ns(options_, start_ns);
    std::this_thread::sleep_until(time_point_of(start_ns));
    const uint64_t cpu_started_ns = thread_cpu_ns();
    for (auto& driver : drivers_) {
        driver->start(start_ns, stop_ns);
    }
    if (stop_ns != UINT64_MAX) {
        deadline_timer_.expires_at(time_point_of(stop_ns));
        deadline_timer_.async_wait([this](const boost::system::error_code& error) {
            if (!error) {
                for (auto& driver : drivers_) {
                    driver->stop();
                }
            }
        });
    }
    if (options_.rate > 0) {
        boost::asio::post(io_, [this] { pace(); });  // From a handler, as always (handlers_run_).
    }
    io_.restart();
    run_handlers();
    const uint64_t ran_ns = now_ns() - start_ns;
    const uint64_t worked_ns = thread_cpu_ns() - cpu_started_ns;
    busy_ = ran_ns == 0 ? 0.0
                        : static_cast<double>(worked_ns - std::min(worked_ns, polling_ns_)) /
                              static_cast<double>(ran_ns);
}

void Worker::pace() {
    const uint64_t now = now_ns();
    if (polling_since_ns_ != 0) {
        polling_ns_ += now - polling_since_ns_;
        polling_since_ns_ = 0;
    }
    uint64_t next = UINT64_MAX;
    bool any_running = false;
    for (auto& driver : drivers_) {
        if (driver->finished()) {
            continue;
        }
        any_running = true;
        if (driver->next_due_ns() <= now) {
            driver->pump(now);  // Everything due goes out together, each timed from its due time.
        }
        next = std::min(next, driver->next_due_ns());
    }
    if (!any_running) {
        return;
    }
    const PaceWait wait = pace_wait(now_ns(), next, pace_timer_lateness_.lead_ns());
    if (wait.step != PaceStep::sleep) {
        // Behind the handlers already queued, such as replies to read: they run, then this looks
        // again. Polling, the thread stays awake for the due time instead of waking late.
        if (wait.step == PaceStep::poll) {
            polling_since_ns_ = now_ns();
        }
        boost::asio::post(io_, [this] { pace(); });
        return;
    }
    pace_timer_.expires_at(time_point_of(wait.wake_ns));
    // This handler, running now, is counted when it returns.
    pace_timer_.async_wait([this, wake_ns = wait.wake_ns, handlers_before = handlers_run_ + 1](
                               const boost::system::error_code& error) {
        if (error) {
            return;
        }
        // Only a wake-up from sleep says how late the timer is. When other handlers ran first,
        // the thread was busy at the wake time anyway, and polling earlier would not have helped.
        if (handlers_run_ == handlers_before) {
            pace_timer_lateness_.observe(latency_ns(wake_ns, now_ns()));
        }
        pace();
    });
}

}  // namespace

RunResult run_load(const BenchOptions& options, std::FILE* progress) {
    RunResult result;
    const KeyDistribution keys(options.keys);
    const bool scoped_transfers =
        options.transfers != TransferScope::any && options.mix.weight(OpKind::transfer) > 0;
    uint32_t shard_count = 0;  // Only with --shard-aware: each connection then asks for a shard.
    if (options.shard_aware || scoped_transfers) {
        auto probed = server_shard_count(options);
        if (auto* message = std::get_if<std::string>(&probed)) {
            result.fatal = std::move(*message);
            return result;
        }
        const uint32_t server_shards = std::get<uint32_t>(probed);
        // Refused before any load: a run that cannot keep --transfers would measure other
        // transfers than it claims.
        result.fatal =
            transfer_scope_problem(scoped_transfers ? options.transfers : TransferScope::any,
                                   options.members, server_shards);
        if (!result.fatal.empty()) {
            return result;
        }
        shard_count = options.shard_aware ? server_shards : 0;
    }
    if (options.shard_aware && options.connections < shard_count) {
        result.fatal = "--shard-aware needs a connection per shard: the server has " +
                       std::to_string(shard_count) + " shards, --connections is " +
                       std::to_string(options.connections);
        return result;
    }
    // After the checks above, so that a run refused for its flags does not enrol first.
    if (options.enroll) {
        result.fatal = enroll_members(options, progress);
        if (!result.fatal.empty()) {
            return result;
        }
        result.members_enrolled = options.members;
    }

    const uint32_t threads = std::min(options.threads, options.connections);
    std::vector<std::vector<uint32_t>> connections_of(threads);
    std::vector<std::vector<uint64_t>> budgets_of(threads);
    for (uint32_t connection = 0; connection < options.connections; ++connection) {
        uint64_t budget = UINT64_MAX;
        if (options.ops > 0) {
            budget = options.ops / options.connections +
                     (connection < options.ops % options.connections ? 1 : 0);
        }
        connections_of[connection % threads].push_back(connection);
        budgets_of[connection % threads].push_back(budget);
    }
    std::vector<std::unique_ptr<Worker>> workers;
    for (uint32_t thread = 0; thread < threads; ++thread) {
        workers.push_back(std::make_unique<Worker>(options, keys, connections_of[thread],
                                                   budgets_of[thread], shard_count));
    }

    RunControl control(threads);
    control.workers_running = threads;
    const StopSignalScope stop_signals;
    std::vector<std::thread> pool;
    for (auto& worker : workers) {
        pool.emplace_back([&control, worker = worker.get()] {
            worker->run(&control);
            --control.workers_running;
        });
    }
    control.connected.wait();
    {
        const std::scoped_lock lock(control.fatal_mutex);
        if (!control.fatal.empty()) {
            control.abort = true;
            result.fatal = control.fatal;
        }
    }
    // A short lead so every thread is waiting at the start line when the clock begins.
    const uint64_t start_ns = now_ns() + 5'000'000;
    control.start_ns = start_ns;
    control.go.count_down();
    if (control.abort) {
        for (auto& thread : pool) {
            thread.join();
        }
        return result;
    }

    auto spare = std::make_unique<RunStats>();
    auto spare_warmup = std::make_unique<RunStats>();
    auto interval = std::make_unique<RunStats>();  // Both phases: the progress line shows all.
    auto collect = [&] {
        for (auto& worker : workers) {
            worker->take_stats(spare.get(), spare_warmup.get());
            interval->merge(*spare);
            interval->merge(*spare_warmup);
            result.stats.merge(*spare);
            result.warmup.merge(*spare_warmup);
            spare->clear();
            spare_warmup->clear();
        }
    };
    const uint64_t warmup_end_ns = measured_from_ns(options, start_ns);
    constexpr uint64_t second_ns = 1'000'000'000;
    uint64_t next_report_ns = start_ns + second_ns;
    uint64_t interval_start_ns = start_ns;
    // One line for the interval since the last: its real length, since this thread may wake late.
    auto report_interval = [&] {
        const uint64_t now = now_ns();
        const bool warming_up = interval_start_ns < warmup_end_ns;
        std::fprintf(progress, "%s%s\n",
                     format_progress(static_cast<double>(now - start_ns) / 1e9, *interval,
                                     static_cast<double>(now - interval_start_ns) / 1e9)
                         .c_str(),
                     warming_up ? "   (warm-up, not in the results)" : "");
        std::fflush(progress);
        interval->clear();
        interval_start_ns = now;
    };
    uint64_t interrupted_ns = 0;
    bool abandoned = false;
    while (control.workers_running > 0) {
        std::this_thread::sleep_until(
            std::min(time_point_of(next_report_ns), Clock::now() + std::chrono::milliseconds(20)));
        if (result.stop_signal == 0 && stop_signal_received != 0) {
            result.stop_signal = stop_signal_received;
            interrupted_ns = now_ns();
            for (auto& worker : workers) {
                worker->request_stop();
            }
        }
        if (interrupted_ns != 0 && !abandoned &&
            now_ns() >= interrupted_ns + interrupt_grace_s * 1'000'000'000) {
            abandoned = true;
            for (auto& worker : workers) {
                worker->abandon();
            }
        }
        if (now_ns() >= next_report_ns && control.workers_running > 0) {
            collect();
            report_interval();
            next_report_ns += second_ns;
        }
    }
    for (auto& thread : pool) {
        thread.join();
    }
    result.ran_s = static_cast<double>(now_ns() - start_ns) / 1e9;
    collect();
    if (interval->completed() + interval->failed() > 0) {
        report_interval();  // The last, partial interval.
    }
    for (auto& worker : workers) {
        result.connections_lost += worker->connections_lost();
    }

    uint64_t last_completion_ns = 0;
    uint64_t finished_ns = 0;
    for (auto& worker : workers) {
        last_completion_ns = std::max(last_completion_ns, worker->last_completion_ns());
        finished_ns = std::max(finished_ns, worker->finished_ns());
    }
    // A timed open loop runs on its schedule to the planned stop, even when its last operations
    // fell due well before (a burst's quiet rest), unless an interrupt or a lost server stopped
    // the sending before.
    uint64_t schedule_end_ns = 0;
    if (options.rate > 0 && options.duration_s > 0) {
        schedule_end_ns = planned_stop_ns(options, start_ns);
        if (interrupted_ns != 0) {
            schedule_end_ns = std::min(schedule_end_ns, interrupted_ns);
        } else if (result.connections_lost > 0) {
            schedule_end_ns = std::min(schedule_end_ns, finished_ns);
        }
    }
    result.elapsed_s =
        static_cast<double>(measured_span_ns(warmup_end_ns, last_completion_ns, schedule_end_ns)) /
        1e9;
    for (auto& worker : workers) {
        result.unsent_due_ops += worker->unsent_due();
        result.send_lag_ns.merge(worker->send_lag_ns());
        result.client_busy = std::max(result.client_busy, worker->busy());
    }
    result.server_shards = control.server_shards;
    {
        const std::scoped_lock lock(control.fatal_mutex);
        if (result.fatal.empty()) {
            result.fatal = control.fatal;
        }
    }
    return result;
}

}  // namespace jifen::bench
