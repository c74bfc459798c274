// A shard thread: accepts and serves connections, applies operations for its members, forwards
// the others through inboxes, and releases replies as the log makes them durable.
#include "server/shard_thread.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <chrono>
#include <cstring>
#include <string>

#include "engine/assert.hpp"
#include "server/connection.hpp"
#include "server/dispatch.hpp"
#include "server/limits.hpp"
#include "wal/limits.hpp"

namespace jifen::server {

namespace {

static_assert(records_per_operation_max == 1 + engine::Shard::derived_records_per_command_max);
// A tick logs itself and the settlement records of up to tick_budget members.
constexpr size_t records_per_tick_max =
    1 + size_t{engine::Shard::settlement_records_per_member} * tick_budget;
static_assert(records_per_tick_max <= unappended_records_max);

using protocol::FrameHeader;
using protocol::Opcode;

using ReusePort = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

uint64_t wall_clock_us() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

bool names_transaction(Opcode opcode) noexcept {
    return opcode == Opcode::capture || opcode == Opcode::release || opcode == Opcode::reverse;
}

engine::Outcome refused(Result result) noexcept {
    engine::Outcome outcome;
    outcome.result = result;
    return outcome;
}

// While memory is at its budget, a capture or release still closes its hold: a checkout that
// took points is finished rather than left to time out, and open holds are bounded
// (holds_per_shard_max), so what they add is too.
bool closes_a_hold(engine::Op op) noexcept {
    return op == engine::Op::capture || op == engine::Op::release;
}

}  // namespace

ShardThread::ShardThread(Shared& shared, uint32_t index, engine::Shard& shard,
                         boost::asio::io_context& io)
    : shared_(shared),
      index_(index),
      shard_count_(static_cast<uint32_t>(shared.shards.size())),
      shard_(shard),
      io_(io),
      acceptor_(io_),
      timer_(io_),
      accept_retry_timer_(io_),
      checkpoint_timer_(io_),
      doorbell_(io_),
      requests_(request_inbox_capacity),
      replies_(reply_inbox_capacity),
      release_(release_queue_capacity),
      durable_wait_(release_queue_capacity),
      staged_(shard_count_),
      ring_needed_(shard_count_, 0),
      transfers_(transfers_in_flight_max) {
    records_.reserve(unappended_records_max);
    // For the members' histories (recovery ran without): room for the derived records of one
    // apply call, a frame's batch or a tick.
    shard_.record_derived(true,
                          engine::Shard::derived_records_max(protocol::batch_ops_max, tick_budget));
    state_free_.reserve(release_queue_capacity);
    batch_commands_.reserve(protocol::batch_ops_max);
    batch_positions_.reserve(protocol::batch_ops_max);
    batch_outcomes_.resize(protocol::batch_ops_max);
    connections_.reserve(shared.config->connections_max);
    stalled_.reserve(shared.config->connections_max);
    to_flush_.reserve(shared.config->connections_max);
    for (auto& staged : staged_) {
        staged.reserve(staging_requests_max);
    }
    free_transfer_slots_.reserve(transfers_in_flight_max);
    for (uint32_t slot = transfers_in_flight_max; slot > 0; --slot) {
        free_transfer_slots_.push_back(slot - 1);
    }
    credit_retry_.reserve(transfers_in_flight_max);
    credit_retry_scratch_.reserve(transfers_in_flight_max);
    publish_gauges();  // The recovered shard's, before its first wake-up.
    stalled_scratch_.reserve(shared.config->connections_max);
    appended_seq_ = shared.log->appended_seq(index);
}

ShardThread::~ShardThread() = default;

uint16_t ShardThread::listen(const boost::asio::ip::tcp::endpoint& endpoint) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.set_option(ReusePort(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(boost::asio::socket_base::max_listen_connections);
    return acceptor_.local_endpoint().port();
}

void ShardThread::start(std::vector<engine::Command> credits_owed) {
    credits_owed_ = std::move(credits_owed);
    boost::asio::post(io_, [this] {
        arm_doorbell();
        run_accept();
        arm_timer();
        resend_recovered_credits();
        after_work();
    });
}

void ShardThread::begin_stop() {
    boost::asio::post(io_, [this] {
        stopping_ = true;
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        accept_retry_timer_.cancel();
        for (auto& entry : connections_) {
            if (entry.connection) {
                entry.connection->begin_drain();
            }
        }
        after_work();
    });
}

void ShardThread::finish_stop() {
    boost::asio::post(io_, [this] {
        for (auto& entry : connections_) {
            if (entry.connection) {
                entry.connection->close();
            }
        }
        // A checkpoint that is due is taken now rather than at the next start: Log::stop()
        // commits it with the last records, and recovery then replays less. Only when what is
        // left to copy fits the room a checkpoint may hold: finished at once, a large ledger's
        // checkpoint would copy every transaction, which the memory budget keeps no room for.
        // The next start then replays the records since the last checkpoint instead.
        flush_records();
        wal::Log& log = *shared_.log;
        const bool writable = !log.failed() && !log.storage_full();
        if (records_.empty() && writable && log.checkpoint_due(index_) &&
            (shard_.checkpoint_building() ||
             shard_.transaction_count() <= checkpoint_txns_held_max)) {
            if (!shard_.checkpoint_building()) {
                shard_.begin_checkpoint();
            }
            // What finishing would hold: the rest of the transactions beside those waiting.
            const uint64_t held =
                shard_.continue_checkpoint(0, 0) * engine::Shard::checkpoint_bytes_per_transaction +
                log.checkpoint_bytes_waiting(index_);
            if (held <=
                checkpoint_txns_held_max * engine::Shard::checkpoint_bytes_per_transaction) {
                engine::CheckpointBytes state;
                shard_.finish_checkpoint(&state);
                log.checkpoint(index_, appended_seq_, std::move(state));
            }
        }
        timer_.cancel();
        checkpoint_timer_.cancel();
        doorbell_.cancel();
        // A handler already queued (a timer or doorbell that fired, a read that completed) may
        // still run on the core thread: it must not apply anything once the shard has left the
        // transaction index's growth protocol.
        stopped_ = true;
        // Later growths of the transaction index do not wait for this shard.
        shared_.txn_index_growth->leave(index_, shared_.doorbells);
    });
}

uint64_t ShardThread::now_ms() const noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

void ShardThread::step_checkpoint() {
    // Built in steps a millisecond apart, requests served in between: the transactions (most
    // of a big checkpoint) a slice per step, then the rest at once when little is left and every
    // applied record is appended, so the checkpoint's sequence is the shard's.
    if (stopping_) {
        return;  // The stop takes a due checkpoint whole.
    }
    if (!shard_.checkpoint_building()) {
        shard_.begin_checkpoint();
    }
    // The log stores each whole piece as it is built; a step copies no more than the log has
    // room for, so a checkpoint holds a few pieces, not a copy of every transaction.
    wal::Log& log = *shared_.log;
    const uint64_t waiting = log.checkpoint_bytes_waiting(index_);
    const auto room =
        static_cast<uint32_t>(waiting >= checkpoint_bytes_waiting_max
                                  ? 0
                                  : (checkpoint_bytes_waiting_max - waiting) /
                                        engine::Shard::checkpoint_bytes_per_transaction);
    const uint64_t left = shard_.continue_checkpoint(checkpoint_slice_txns, room);
    log.checkpoint_part(index_, shard_.take_checkpoint_part());
    if (left <= checkpoint_slice_txns && records_.empty()) {
        engine::CheckpointBytes state;
        shard_.finish_checkpoint(&state);
        log.checkpoint(index_, appended_seq_, std::move(state));
        return;
    }
    checkpoint_timer_.expires_after(checkpoint_step_interval);
    checkpoint_timer_.async_wait([this](const boost::system::error_code& error) {
        if (!error && !stopped_) {
            step_checkpoint();
            after_work();
        }
    });
}

uint64_t ShardThread::stamp_time_us() noexcept {
    // Wall-clock time, but never earlier than the last command this shard applied: the engine
    // and its replay rely on a shard's time only moving forward.
    last_time_us_ = std::max(last_time_us_, wall_clock_us());
    return last_time_us_;
}

size_t ShardThread::record_room() const noexcept {
    return unappended_records_max - records_.size();
}

bool ShardThread::has_room_for(uint32_t operations) const noexcept {
    // Each operation adds at most records_per_operation_max records (its own and its derived
    // records) and two releases (its reply and a credit leg). The records held stay below
    // unappended_operations_max before it is taken on, so at most that many operations wait to
    // be handed to the log (what async durability can lose), whatever their derived records.
    return release_room() >= 2 * size_t{operations} + 1 &&
           records_.size() + operations < unappended_operations_max &&
           record_room() >= records_per_operation_max * operations + 1;
}

// ---------------------------------------------------------------------------------------------
// Accepting.

void ShardThread::run_accept() {
    acceptor_.async_accept(
        [this](const boost::system::error_code& error, boost::asio::ip::tcp::socket socket) {
            on_accept(error, std::move(socket));
        });
}

void ShardThread::on_accept(const boost::system::error_code& error,
                            boost::asio::ip::tcp::socket socket) {
    if (error == boost::asio::error::operation_aborted || stopping_) {
        return;
    }
    if (error) {
        // Typically EMFILE: back off instead of spinning on a listener that keeps failing.
        spdlog::warn("shard {}: accept failed: {}", index_, error.message());
        accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
        accept_retry_timer_.async_wait([this](const boost::system::error_code& timer_error) {
            if (!timer_error && !stopping_) {
                run_accept();
            }
        });
        return;
    }
    const uint64_t number =
        shared_.connections_accepted.fetch_add(1, std::memory_order_relaxed) + 1;
    if (spdlog::should_log(spdlog::level::debug)) {
        boost::system::error_code ignored;
        const auto peer = socket.remote_endpoint(ignored);
        spdlog::debug("connection {} on shard {}: accepted from {}:{}", number, index_,
                      peer.address().to_string(ignored), peer.port());
    }
    const auto [connection, open] = add_connection(std::move(socket), number);
    if (open > shared_.config->connections_max) {
        // A flood of connections must not flood the log.
        if (refused_connections_log_.allow()) {
            spdlog::warn("shard {}: refusing connections: connections_max ({}) reached{}", index_,
                         shared_.config->connections_max,
                         refused_connections_log_.suffix("refused"));
        }
        connection->refuse(Result::busy, "connections_max reached; try again later");
    } else {
        connection->start();
    }
    after_work();
    run_accept();
}

std::pair<Connection*, uint64_t> ShardThread::add_connection(boost::asio::ip::tcp::socket socket,
                                                             uint64_t number) {
    uint32_t index = 0;
    if (!free_connection_indexes_.empty()) {
        index = free_connection_indexes_.back();
        free_connection_indexes_.pop_back();
    } else {
        index = static_cast<uint32_t>(connections_.size());
        connections_.emplace_back();
    }
    ConnectionEntry& entry = connections_[index];
    const uint64_t open = shared_.connections.fetch_add(1, std::memory_order_relaxed) + 1;
    ShardCounters::add(counters_.connections);
    entry.connection = std::make_shared<Connection>(*this, std::move(socket), shared_.tls, index,
                                                    entry.generation, number);
    return {entry.connection.get(), open};
}

void ShardThread::adopt(Handover handover) {
    // Once per session, not per request, so Asio's post (a mutex) is fine here.
    boost::asio::post(io_, [this, handover = std::move(handover)]() mutable {
        if (stopping_) {
            return;  // handover closes the socket.
        }
        boost::asio::ip::tcp::socket socket(io_);
        boost::system::error_code error;
        socket.assign(handover.protocol, handover.fd, error);
        if (error) {
            spdlog::warn("shard {}: cannot adopt a connection: {}", index_, error.message());
            return;
        }
        handover.fd = -1;  // The socket owns it now.
        // Counted again here: the shard that handed it over stopped counting it.
        add_connection(std::move(socket), handover.number).first->start_handed_over(handover);
        after_work();
    });
}

void ShardThread::on_connection_closed(Connection& connection) {
    ConnectionEntry& entry = connections_[connection.index()];
    JIFEN_ASSERT(entry.connection.get() == &connection);
    // Replies still travelling for this connection carry the old generation and are dropped.
    ++entry.generation;
    stalled_.erase(std::remove(stalled_.begin(), stalled_.end(), &connection), stalled_.end());
    std::replace(stalled_scratch_.begin(), stalled_scratch_.end(), &connection,
                 static_cast<Connection*>(nullptr));
    entry.connection.reset();
    free_connection_indexes_.push_back(connection.index());
    shared_.connections.fetch_sub(1, std::memory_order_relaxed);
    ShardCounters::subtract(counters_.connections);
}

Connection* ShardThread::find_connection(const OpRef& ref) noexcept {
    if (ref.connection_index >= connections_.size()) {
        return nullptr;
    }
    ConnectionEntry& entry = connections_[ref.connection_index];
    if (entry.generation != ref.connection_generation || !entry.connection) {
        return nullptr;
    }
    return entry.connection.get();
}

void ShardThread::stall(Connection& connection) {
    if (std::find(stalled_.begin(), stalled_.end(), &connection) == stalled_.end()) {
        stalled_.push_back(&connection);
    }
}

void ShardThread::schedule_flush(Connection& connection) {
    if (!connection.flush_scheduled_) {
        connection.flush_scheduled_ = true;
        to_flush_.push_back(connection.shared_from_this());
    }
}

// ---------------------------------------------------------------------------------------------
// Wake-ups: doorbell and timer.

void ShardThread::arm_doorbell() {
    doorbell_.async_wait([this](const boost::system::error_code& error) { on_doorbell(error); });
}

void ShardThread::on_doorbell(const boost::system::error_code& error) {
    if (error || stopped_) {
        return;  // Cancelled at shutdown.
    }
    doorbell_.acknowledge();
    drain_inboxes();
    after_work();
    arm_doorbell();
}

void ShardThread::arm_timer() {
    timer_.expires_after(std::chrono::milliseconds(shared_.config->tick_interval_ms));
    timer_.async_wait([this](const boost::system::error_code& error) { on_timer(error); });
}

void ShardThread::on_timer(const boost::system::error_code& error) {
    if (error || stopped_) {
        return;
    }
    wal::Log& log = *shared_.log;
    flush_records();  // Room for the tick, when the log has room for what waits.
    if (!stopping_ && !log.storage_full() && !log.failed() &&
        record_room() >= records_per_tick_max) {
        // Clock-driven work (expiry, hold timeouts, pending points) as a logged command, so
        // replay sees exactly the same sweeps.
        engine::Command tick;
        tick.op = engine::Op::tick;
        tick.points = tick_budget;
        tick.time_us = stamp_time_us();
        const engine::Outcome outcome = shard_.apply(tick);
        // A tick that settled nothing (no members, no due holds) changed nothing: an idle empty
        // ledger does not grow its log.
        if (outcome.points > 0) {
            log_if_applied(tick, outcome);
        }
    }
    flush_records();
    if (index_ == 0) {
        report_log_state();
        report_memory_state();
    }
    if (!stopping_ && log.checkpoint_due(index_) && !shard_.checkpoint_building()) {
        step_checkpoint();  // Its own timer takes the next steps.
    }
    const uint64_t now = now_ms();
    for (auto& entry : connections_) {
        if (entry.connection) {
            entry.connection->check_timeouts(now);
        }
    }
    resend_recovered_credits();
    after_work();
    if (stopping_) {
        update_quiescent();
    }
    arm_timer();
}

// ---------------------------------------------------------------------------------------------
// After every handler: log, release, resume, ring.

void ShardThread::publish_gauges() noexcept {
    counters_.members.store(shard_.member_count(), std::memory_order_relaxed);
    counters_.transactions.store(shard_.transaction_count(), std::memory_order_relaxed);
    counters_.holds_open.store(shard_.open_hold_count(), std::memory_order_relaxed);
    counters_.lot_nodes.store(shard_.lot_nodes_in_use(), std::memory_order_relaxed);
}

void ShardThread::after_work() {
    if (stopped_) {
        return;
    }
    // Before any reply of this wake-up leaves: a client that heard back sees its work counted.
    publish_gauges();
    // In async durability a reply does not wait for the log, so it goes to the socket before the
    // records go to the log: handing them over may wake the writer thread, and on two cores that
    // wake-up (and the writer taking the core) would sit between an operation and its reply.
    const bool replies_first = !shared_.sync;
    // First, so that the frames and requests held back for it go on in the rounds below.
    shared_.txn_index_growth->between_batches(index_, shared_.doorbells);
    // Bounded: each round either made progress or stops.
    for (int round = 0; round < 4; ++round) {
        // Replies first, unless records waiting for the log's queue are what holds frames back.
        if (!replies_first || !has_room_for(1)) {
            flush_records();
        }
        release_durable();
        if (inbox_backlog_ && has_room_for(1)) {
            inbox_backlog_ = false;
            drain_inboxes();
            continue;
        }
        if (!stalled_.empty() && has_room_for(1)) {
            resume_stalled();
            continue;
        }
        break;
    }
    // What the last round let in (frames resumed, inboxes drained) goes out now too; in async
    // this also sets aside, with the wake-up they need, the hand-offs that must wait.
    release_durable();
    if (!credit_retry_.empty()) {
        // Swapped with a scratch list of the same reserved size: no allocation here.
        credit_retry_scratch_.clear();
        credit_retry_scratch_.swap(credit_retry_);
        for (const uint32_t slot : credit_retry_scratch_) {
            send_credit(slot);
        }
    }
    for (auto& connection : to_flush_) {
        connection->flush();
    }
    to_flush_.clear();
    if (replies_first) {
        flush_records();
        // Nothing waits: the writer's commits need not wake this shard (see on_durable). Set
        // again, before looking, by whatever finds it must wait. Credits refused by a full inbox
        // keep it set: a commit is as good a moment as any to try them again.
        if (records_.empty() && durable_wait_head_ == durable_wait_tail_ && credit_retry_.empty()) {
            wants_durable_wake_.store(false, std::memory_order_relaxed);
        }
    }
    for (uint32_t shard = 0; shard < shard_count_; ++shard) {
        if (ring_needed_[shard] != 0) {
            ring_needed_[shard] = 0;
            shared_.shards[shard]->doorbell().ring();
        }
    }
    // Again at the end: claims made in the rounds above may have made a growth due, and every
    // shard holds claiming work back from that moment; the request must not wait for the next
    // wake-up.
    shared_.txn_index_growth->between_batches(index_, shared_.doorbells);
    if (stopping_) {
        update_quiescent();
    }
}

void ShardThread::flush_records() {
    if (records_.empty()) {
        return;
    }
    expect_durable_wake();
    // All or nothing per call (Log::append), at most append_records_max records each, and never
    // derived records without the record they come before (the writer commits such a chain
    // whole only if it sees it whole); when the log's queue is full the rest stay here and the
    // next on_durable wake-up retries. Gates already count them (current_seq()).
    size_t handed = 0;
    while (handed < records_.size()) {
        size_t count = std::min<size_t>(records_.size() - handed, wal::append_records_max);
        while (engine::is_derived(records_[handed + count - 1].command.op)) {
            --count;  // A chain is far shorter than append_records_max: this stops above 0.
        }
        if (!shared_.log->append(index_, std::span(records_).subspan(handed, count))) {
            break;
        }
        handed += count;
        appended_seq_ += count;
        JIFEN_DASSERT(appended_seq_ == shared_.log->appended_seq(index_));
    }
    records_.erase(records_.begin(), records_.begin() + static_cast<std::ptrdiff_t>(handed));
}

void ShardThread::expect_durable_wake() noexcept {
    if (!shared_.sync) {
        // Set before the shard reads the log's state, with a fence against the writer's in
        // on_durable(): either the shard sees the room or durability the writer published, or
        // the writer sees the flag and rings. after_work() clears it when nothing waits.
        wants_durable_wake_.store(true, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
}

void ShardThread::on_durable() noexcept {
    if (shared_.sync) {
        doorbell_.ring();
        return;
    }
    // In async replies never wait for the log: waking the shard for every commit (every shard,
    // several hundred times a second each) cost more than anything else when 8 shard threads
    // shared 2 cores. The writer freed the room and published durability before this call; see
    // expect_durable_wake().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (wants_durable_wake_.load(std::memory_order_relaxed)) {
        doorbell_.ring();
    }
}

// What waits for durability in async durability too: the two hand-offs of a cross-shard
// transfer. A credit sent before its debit is durable, or a credit's result sent before the
// credit is, could leave one leg in the log and not the other after a crash (points made or
// lost), whatever the loss window of async replies.
bool ShardThread::must_wait_for_log(const Release& release) noexcept {
    return release.kind == ReleaseKind::credit ||
           (release.kind == ReleaseKind::reply && release.reply.kind == ReplyKind::credit_result);
}

void ShardThread::release_durable() {
    for (const Release& release : state_free_) {
        release_now(release);
    }
    state_free_.clear();
    if (shared_.sync) {
        release_durable_from(release_, &release_head_, release_tail_);
        return;
    }
    // Async: only a transfer's hand-offs wait (must_wait_for_log), moved aside so the replies
    // behind them go at once. Their order is kept: their gates only grow.
    while (release_head_ != release_tail_) {
        const Release& release = release_[release_head_ % release_.size()];
        ++release_head_;
        if (must_wait_for_log(release)) {
            // Cannot overflow: both queues together hold at most release_.size().
            durable_wait_[durable_wait_tail_ % durable_wait_.size()] = release;
            ++durable_wait_tail_;
        } else {
            release_now(release);
        }
    }
    if (durable_wait_head_ == durable_wait_tail_) {
        return;
    }
    expect_durable_wake();  // Only now: the log's state is read only for what waits on it.
    release_durable_from(durable_wait_, &durable_wait_head_, durable_wait_tail_);
}

void ShardThread::release_durable_from(const std::vector<Release>& queue, uint64_t* head,
                                       uint64_t tail) {
    const uint64_t durable = shared_.log->durable_seq(index_);
    while (*head != tail) {
        const Release& release = queue[*head % queue.size()];
        if (release.gate_seq > durable) {
            break;
        }
        ++*head;
        release_now(release);
    }
}

void ShardThread::release_now(const Release& release) {
    switch (release.kind) {
        case ReleaseKind::local:
            if (Connection* connection = find_connection(release.reply.ref)) {
                connection->complete(release.reply.ref.op_position, release.parts);
            }
            break;
        case ReleaseKind::reply: {
            const uint32_t origin = release.reply.ref.origin_shard;
            // Cannot fail: the origin reserved this reply's room when it sent the request.
            const bool pushed = shared_.shards[origin]->replies().try_push(release.reply);
            JIFEN_ASSERT(pushed);
            ring_needed_[origin] = 1;
            break;
        }
        case ReleaseKind::credit:
            send_credit(release.transfer_slot);
            break;
    }
}

void ShardThread::push_release(const Release& release) {
    JIFEN_ASSERT(release_room() > 0);
    release_[release_tail_ % release_.size()] = release;
    ++release_tail_;
}

void ShardThread::push_state_free(const Release& release) {
    JIFEN_ASSERT(release_room() > 0);
    state_free_.push_back(release);  // Within its reserve: release_room() counts it.
}

bool ShardThread::log_stuck() const noexcept {
    const wal::Log& log = *shared_.log;
    return shared_.sync && (log.storage_full() || log.failed()) &&
           current_seq() > log.durable_seq(index_);
}

bool ShardThread::repeats_durable_transaction(const engine::Command& command) {
    return shared_.txn_index->find(command.txn_id) == command.member_id &&
           (!log_stuck() || !waits_for_log(command.member_id));
}

bool ShardThread::answers_from_durable_state(const engine::Command& command,
                                             const engine::Outcome& outcome) {
    // Only what a repeat is answered with: other refusals may rest on state of other members
    // (a counterparty, a shard's table) that is not durable yet.
    const bool repeat_answer = outcome.replayed || outcome.result == Result::id_conflict ||
                               outcome.result == Result::in_progress;
    return log_stuck() && repeat_answer && !waits_for_log(command.member_id);
}

bool ShardThread::waits_for_log(engine::MemberId member_id) {
    const std::pair<uint64_t, uint64_t> seqs{shared_.log->durable_seq(index_), current_seq()};
    if (seqs != undurable_seqs_) {
        // Rebuilt only when a record was applied or became durable, which a stuck log rarely
        // sees: a read costs a binary search, not a pass over the queue.
        undurable_seqs_ = seqs;
        undurable_members_.clear();
        all_undurable_ = !shared_.log->undurable_members(index_, &undurable_members_);
        for (const engine::Record& record : records_) {
            wal::add_waiting_members(record.command, &undurable_members_);
        }
        std::sort(undurable_members_.begin(), undurable_members_.end());
    }
    return all_undurable_ ||
           std::binary_search(undurable_members_.begin(), undurable_members_.end(), member_id);
}

void ShardThread::resume_stalled() {
    stalled_scratch_.clear();
    stalled_scratch_.swap(stalled_);
    for (size_t i = 0; i < stalled_scratch_.size(); ++i) {
        // Still alive: closing a connection removes it from both lists (on_connection_closed).
        if (stalled_scratch_[i] != nullptr) {
            stalled_scratch_[i]->resume();
        }
    }
    stalled_scratch_.clear();
}

void ShardThread::update_quiescent() {
    bool idle = release_head_ == release_tail_ && durable_wait_head_ == durable_wait_tail_ &&
                records_.empty() && remote_in_flight_ == 0 &&
                free_transfer_slots_.size() == transfers_in_flight_max && requests_.empty() &&
                replies_.empty() && credits_owed_.empty();
    for (const auto& entry : connections_) {
        if (entry.connection && !entry.connection->idle()) {
            idle = false;
        }
    }
    quiescent_.store(idle, std::memory_order_release);
}

// ---------------------------------------------------------------------------------------------
// Frames from local connections.

bool ShardThread::handle_frame(Connection& connection, const FrameHeader& header,
                               std::span<const std::byte> body) {
    if (stopped_) {
        return true;  // A read that completed before the close: its connection is gone.
    }
    const auto opcode = static_cast<Opcode>(header.opcode);
    switch (opcode) {
        case Opcode::ping:
            answer_ping(connection, header);
            return true;
        case Opcode::stats:
            answer_stats(connection, header);
            return true;
        case Opcode::history:
            answer_history(connection, header, body);
            return true;
        case Opcode::audit:
            if (!connection.can_open_frame(1) || !has_room_for(1)) {
                return false;
            }
            route_audit(connection, header);
            return true;
        case Opcode::balance:
            if (!connection.can_open_frame(header.count) || !has_room_for(header.count)) {
                return false;
            }
            route_balances(connection, header, body);
            return true;
        case Opcode::enroll:
        case Opcode::update_member:
        case Opcode::earn:
        case Opcode::redeem:
        case Opcode::hold:
        case Opcode::capture:
        case Opcode::release:
        case Opcode::reverse:
        case Opcode::transfer:
        case Opcode::adjust:
            // While the transaction index waits to grow, nothing new may claim ids in it.
            if (!connection.can_open_frame(header.count) || !has_room_for(header.count) ||
                shared_.txn_index_growth->pending()) {
                return false;
            }
            route_operations(connection, header, body);
            return true;
        case Opcode::hello:
        case Opcode::error:
            break;
    }
    JIFEN_ASSERT(false && "check_request_shape admits no other opcode here");
    return true;
}

void ShardThread::answer_ping(Connection& connection, const FrameHeader& header) {
    protocol::PingReply reply;
    reply.server_time_us = wall_clock_us();
    connection.send_frame(Opcode::ping, header.request_id, 1,
                          std::as_bytes(std::span<const protocol::PingReply>(&reply, 1)));
}

void ShardThread::answer_stats(Connection& connection, const FrameHeader& header) {
    protocol::StatsReply reply;
    reply.result = static_cast<uint32_t>(Result::ok);
    reply.shard_count = shard_count_;
    reply.uptime_us = wall_clock_us() - shared_.start_us;
    reply.connections = shared_.connections.load(std::memory_order_relaxed);
    for (const ShardThread* shard : shared_.shards) {
        reply.operations += shard->counters().operations.load(std::memory_order_relaxed);
        reply.operations_refused +=
            shard->counters().operations_refused.load(std::memory_order_relaxed);
    }
    const wal::LogStats log = shared_.log->stats();
    reply.log_records = log.records;
    reply.log_commits = log.commits;
    reply.log_bytes = log.used_bytes;
    reply.log_map_bytes = log.map_bytes;
    connection.send_frame(Opcode::stats, header.request_id, 1,
                          std::as_bytes(std::span<const protocol::StatsReply>(&reply, 1)));
}

void ShardThread::answer_history(Connection& connection, const FrameHeader& header,
                                 std::span<const std::byte> body) {
    // History reads the durable log on the history reader's thread (a read there may wait for
    // the disk; a shard thread must not), never waiting for the owning shard: it shows what is
    // durable, in both durability modes. Requests that cannot be read are answered here.
    protocol::HistoryRequest request;
    std::memcpy(&request, body.data(), sizeof(request));
    Result refused = check_history(request);
    if (refused == Result::ok) {
        const HistoryJob job{index_, connection.index(), connection.generation(), header.request_id,
                             request};
        if (shared_.history_reader->submit(job)) {
            connection.history_submitted();
            return;
        }
        refused = Result::busy;
        ShardCounters::add(counters_.busy_refusals);
    }
    protocol::HistoryReplyHeader reply;
    reply.result = static_cast<uint32_t>(refused);
    connection.send_frame(Opcode::history, header.request_id, 1,
                          std::as_bytes(std::span<const protocol::HistoryReplyHeader>(&reply, 1)));
}

void ShardThread::deliver_history(const HistoryJob& job, std::vector<std::byte> body) {
    boost::asio::post(io_, [this, job, body = std::move(body)] {
        const OpRef ref{job.connection_index, job.connection_generation, 0, index_};
        if (Connection* connection = find_connection(ref)) {
            connection->history_answered();
            connection->send_frame(Opcode::history, job.request_id, 1, body);
            after_work();
        }
    });
}

void ShardThread::route_audit(Connection& connection, const FrameHeader& header) {
    const wal::Log& log = *shared_.log;
    if (shared_.sync && (log.storage_full() || log.failed())) {
        // An audit sums every shard's state, so it would wait for all of it to be durable;
        // with the log unable to write, say so at once rather than never.
        bool waits = false;
        for (uint32_t shard = 0; shard < shard_count_; ++shard) {
            waits = waits || log.appended_seq(shard) > log.durable_seq(shard);
        }
        if (waits || current_seq() > log.durable_seq(index_)) {
            const uint32_t position = connection.open_frame(header, 1);
            connection.set_frame_result(
                position, log.failed() ? Result::storage_error : Result::storage_full);
            Release release;
            release.kind = ReleaseKind::local;
            release.parts = 1;
            release.reply.ref = {connection.index(), connection.generation(), position, index_};
            push_state_free(release);
            return;
        }
    }
    const uint32_t position = connection.open_frame(header, shard_count_);
    const OpRef ref{connection.index(), connection.generation(), position, index_};
    uint32_t local_parts = 1;
    merge_audit(&connection.audit_sum(position), shard_.audit());
    for (uint32_t target = 0; target < shard_count_; ++target) {
        if (target == index_) {
            continue;
        }
        Request request;
        request.kind = RequestKind::audit;
        request.ref = ref;
        if (remote_in_flight_ < remote_requests_in_flight_max &&
            shared_.shards[target]->requests().try_push(request)) {
            ++remote_in_flight_;
            ring_needed_[target] = 1;
        } else {
            connection.set_frame_result(position, Result::busy);
            ++local_parts;
        }
    }
    Release release;
    release.gate_seq = current_seq();
    release.kind = ReleaseKind::local;
    release.parts = local_parts;
    release.reply.ref = ref;
    push_release(release);
}

void ShardThread::route_balances(Connection& connection, const FrameHeader& header,
                                 std::span<const std::byte> body) {
    const uint32_t first = connection.open_frame(header, header.count);
    const auto query_at = [&body](uint32_t i) {
        protocol::BalanceRequest query;
        std::memcpy(&query, body.data() + i * sizeof(query), sizeof(query));
        return query;
    };
    // One time for the whole frame, and the members' table slots loading while the first
    // queries are answered: each lookup is a memory miss or two.
    const uint64_t now_us = stamp_time_us();
    for (uint32_t i = 0; i < header.count; ++i) {
        const uint64_t member_id = query_at(i).member_id;
        if (engine::Shard::shard_of(member_id, shard_count_) == index_) {
            shard_.prefetch_member(member_id);
        }
    }
    uint32_t local_parts = 0;
    // In sync durability a balance waits until what the shard applied before it is durable, so
    // no reply shows state a crash could undo. When the log cannot write, that wait has no end:
    // then a frame whose members have nothing waiting for the log is answered at once.
    bool shows_durable_state_only = log_stuck();
    for (uint32_t i = 0; i < header.count; ++i) {
        const protocol::BalanceRequest query = query_at(i);
        const uint32_t position = first + i;
        if (query.member_id == 0) {
            connection.set_reply(position, balance_refusal(0, Result::member_id_zero));
            ++local_parts;
            continue;
        }
        const uint32_t target = engine::Shard::shard_of(query.member_id, shard_count_);
        if (target == index_) {
            shows_durable_state_only = shows_durable_state_only && !waits_for_log(query.member_id);
            engine::MemberView view;
            connection.set_reply(position,
                                 shard_.find_at(query.member_id, now_us, &view)
                                     ? to_balance_reply(view)
                                     : balance_refusal(query.member_id, Result::member_not_found));
            ++local_parts;
            continue;
        }
        Request request;
        request.kind = RequestKind::balance;
        request.ref = {connection.index(), connection.generation(), position, index_};
        request.command.member_id = query.member_id;
        stage(target, request, &connection, &local_parts);
    }
    finish_routing(connection, first, local_parts, shows_durable_state_only);
}

void ShardThread::route_operations(Connection& connection, const FrameHeader& header,
                                   std::span<const std::byte> body) {
    const auto opcode = static_cast<Opcode>(header.opcode);
    const engine::Op op = *op_of(opcode);
    const uint32_t first = connection.open_frame(header, header.count);
    uint32_t local_parts = 0;
    // This shard's operations are applied together after the loop (Shard::apply_batch overlaps
    // their memory misses); the others are staged for their shards meanwhile.
    batch_commands_.clear();
    batch_positions_.clear();
    uint32_t transfers_taken = 0;  // Transfer slots the batch's cross-shard transfers will take.
    // One clock read for the frame: its operations arrived together (and a read per operation
    // was 8% of a busy shard thread's time).
    const uint64_t time_us = stamp_time_us();
    for (uint32_t i = 0; i < header.count; ++i) {
        protocol::Operation operation;
        std::memcpy(&operation, body.data() + i * sizeof(operation), sizeof(operation));
        const uint32_t position = first + i;
        const OpRef ref{connection.index(), connection.generation(), position, index_};
        const Result checked = check_operation(opcode, operation);
        if (checked != Result::ok) {
            connection.set_reply(position, refusal(checked));
            ++local_parts;
            continue;
        }
        engine::Command command = to_command(op, operation);
        if (command.member_id == 0 && names_transaction(opcode)) {
            // The client may leave the member out: the transaction index knows whose it is.
            command.member_id = shared_.txn_index->find(command.ref_txn_id);
            if (command.member_id == 0) {
                connection.set_reply(position,
                                     refusal(opcode == Opcode::reverse ? Result::txn_not_found
                                                                       : Result::hold_not_found));
                ++local_parts;
                continue;
            }
        }
        if (command.member_id == 0) {
            connection.set_reply(position, refusal(Result::member_id_zero));
            ++local_parts;
            continue;
        }
        const uint32_t target = engine::Shard::shard_of(command.member_id, shard_count_);
        if (target == index_) {
            const Result admitted =
                admit_client(&command, time_us, operation.duration_us, transfers_taken);
            if (admitted != Result::ok) {
                connection.set_reply(position, refusal(admitted));
                ++local_parts;
                continue;
            }
            transfers_taken += crosses_shards(command) ? 1 : 0;
            batch_commands_.push_back(command);
            batch_positions_.push_back(position);
            continue;
        }
        Request request;
        request.kind = RequestKind::apply;
        request.duration_us = operation.duration_us;
        request.ref = ref;
        request.command = command;
        stage(target, request, &connection, &local_parts);
    }
    const size_t batched = batch_commands_.size();
    shard_.apply_batch(batch_commands_, std::span(batch_outcomes_).first(batched));
    // Refusals alone (nothing applied) need not wait for the log: they show no state. Nor, while
    // the log cannot write, answers from durable state alone (repeats of durable transactions).
    bool state_free = batched == 0 || log_stuck();
    for (size_t k = 0; k < batched; ++k) {
        const uint32_t position = batch_positions_[k];
        const OpRef ref{connection.index(), connection.generation(), position, index_};
        state_free =
            state_free && answers_from_durable_state(batch_commands_[k], batch_outcomes_[k]);
        const Applied applied = finish_client(batch_commands_[k], batch_outcomes_[k], ref);
        if (!applied.deferred) {
            connection.set_reply(position, to_reply(applied.outcome));
            ++local_parts;
        }
    }
    finish_routing(connection, first, local_parts, state_free);
}

void ShardThread::finish_routing(Connection& connection, uint32_t first, uint32_t local_parts,
                                 bool state_free) {
    for (uint32_t target = 0; target < shard_count_; ++target) {
        flush_staged(target, &connection, &local_parts);
    }
    // The frame's local answers leave together, once the log covers what this shard applied.
    if (local_parts > 0) {
        Release release;
        release.gate_seq = current_seq();
        release.kind = ReleaseKind::local;
        release.parts = local_parts;
        release.reply.ref = {connection.index(), connection.generation(), first, index_};
        if (state_free) {
            push_state_free(release);
        } else {
            push_release(release);
        }
    }
}

void ShardThread::stage(uint32_t target, const Request& request, Connection* connection,
                        uint32_t* local_parts) {
    std::vector<Request>& staged = staged_[target];
    staged.push_back(request);
    if (staged.size() == staging_requests_max) {
        flush_staged(target, connection, local_parts);
    }
}

void ShardThread::flush_staged(uint32_t target, Connection* connection, uint32_t* local_parts) {
    std::vector<Request>& staged = staged_[target];
    if (staged.empty()) {
        return;
    }
    const auto count = static_cast<uint32_t>(staged.size());
    if (remote_in_flight_ + count <= remote_requests_in_flight_max &&
        shared_.shards[target]->requests().try_push(std::span<const Request>(staged))) {
        remote_in_flight_ += count;
        ring_needed_[target] = 1;
        // Ledger operations, as jifen_operations_total counts them: not balance queries.
        ShardCounters::add(counters_.operations_forwarded,
                           static_cast<uint64_t>(std::count_if(
                               staged.begin(), staged.end(), [](const Request& request) {
                                   return request.kind == RequestKind::apply;
                               })));
    } else {
        // The target's inbox is full: refuse rather than wait, so one slow shard cannot stall
        // the others. Nothing was applied; the client retries with the same transaction ids.
        ShardCounters::add(counters_.busy_refusals, count);
        for (const Request& request : staged) {
            if (request.kind == RequestKind::balance) {
                connection->set_reply(request.ref.op_position,
                                      balance_refusal(request.command.member_id, Result::busy));
            } else {
                connection->set_reply(request.ref.op_position, refusal(Result::busy));
            }
        }
        *local_parts += count;
    }
    staged.clear();
}

// ---------------------------------------------------------------------------------------------
// Applying.

bool ShardThread::crosses_shards(const engine::Command& command) const noexcept {
    return command.op == engine::Op::transfer && command.counterparty_id != 0 &&
           engine::Shard::shard_of(command.counterparty_id, shard_count_) != index_;
}

Result ShardThread::admit_client(engine::Command* command, uint64_t time_us, uint64_t duration_us,
                                 uint32_t transfer_slots_taken) {
    ShardCounters::add(counters_.operations);
    const wal::Log& log = *shared_.log;
    Result admitted = Result::ok;
    if (log.failed()) {
        admitted = Result::storage_error;
    } else if (log.storage_full() && !repeats_durable_transaction(*command)) {
        admitted = Result::storage_full;
        ShardCounters::add(counters_.storage_full_refusals);
        report_storage_full();
    } else if (shared_.memory_guard->full() && !closes_a_hold(command->op) &&
               shared_.txn_index->find(command->txn_id) == 0) {
        // Only a new id takes memory: a retry of an applied transaction gets its original
        // outcome (replayed), or id_conflict, as at any other time.
        admitted = Result::txn_limit;
    } else if (const Result stamped = stamp(command, time_us, duration_us); stamped != Result::ok) {
        admitted = stamped;
    } else if (crosses_shards(*command) && free_transfer_slots_.size() <= transfer_slots_taken) {
        admitted = Result::busy;
    }
    if (admitted != Result::ok) {
        ShardCounters::add(counters_.operations_refused);
    }
    return admitted;
}

void ShardThread::report_storage_full() {
    std::atomic<bool>& reported = shared_.storage_full_reported;
    // The load first: while storage is full every refusal passes here, on every shard.
    if (reported.load(std::memory_order_relaxed) ||
        reported.exchange(true, std::memory_order_relaxed)) {
        return;
    }
    const wal::LogStats stats = shared_.log->stats();
    const uint64_t map_bytes_max = shared_.config->wal.map_bytes_max;
    // Below its limit the map could still grow: then the disk is what ran out.
    const std::string cause =
        stats.map_bytes < map_bytes_max
            ? fmt::format("the data directory's disk is full or has less than {} MiB free",
                          wal::disk_bytes_free_min >> 20)
            : std::string("the map is at its limit: restart with a larger wal.map_bytes_max");
    spdlog::warn(
        "log storage full: writes are refused with storage_full, reads keep working (LMDB map {} "
        "bytes, {} bytes used, wal.map_bytes_max {} bytes): {}",
        stats.map_bytes, stats.used_bytes, map_bytes_max, cause);
}

void ShardThread::report_log_state() {
    // Sampled once a tick by one shard, so a log that is full again right after a commit is not
    // reported as recovered and full again at every commit.
    const wal::Log& log = *shared_.log;
    if (log.failed()) {
        if (!shared_.log_failure_reported.exchange(true, std::memory_order_relaxed)) {
            spdlog::error(
                "the log stopped writing (its error is on stderr above): writes are refused with "
                "storage_error, reads of durable state keep working; fix the disk and restart");
        }
        return;
    }
    std::atomic<bool>& reported = shared_.storage_full_reported;
    if (log.storage_full()) {
        report_storage_full();  // Also when no write was refused yet (a start on a full disk).
        return;
    }
    if (!reported.load(std::memory_order_relaxed)) {
        return;
    }
    reported.store(false, std::memory_order_relaxed);
    const wal::LogStats stats = shared_.log->stats();
    spdlog::info(
        "log storage no longer full: writes are accepted again (LMDB map {} bytes, {} bytes "
        "used, wal.map_bytes_max {} bytes)",
        stats.map_bytes, stats.used_bytes, shared_.config->wal.map_bytes_max);
}

uint64_t checkpoint_reserve_bytes(const std::vector<ShardThread*>& shards) noexcept {
    uint64_t reserve = 0;
    for (const ShardThread* shard : shards) {
        const ShardCounters& counters = shard->counters();
        // The members are copied whole when a checkpoint finishes; the transactions pass
        // through a few pieces at a time (step_checkpoint).
        reserve += engine::Shard::checkpoint_bytes_estimate(
            counters.members.load(std::memory_order_relaxed),
            std::min(counters.transactions.load(std::memory_order_relaxed),
                     checkpoint_txns_held_max));
    }
    return reserve;
}

void ShardThread::report_memory_state() {
    MemoryGuard& guard = *shared_.memory_guard;
    if (!guard.update(checkpoint_reserve_bytes(shared_.shards))) {
        return;
    }
    if (guard.full()) {
        spdlog::warn(
            "memory at its budget ({} bytes anonymous, {} counting room for checkpoints, "
            "memory_max_bytes {}): new transactions are refused with txn_limit, "
            "reads keep working; restart with more memory or a larger memory_max_bytes (every "
            "transaction id stays in memory: docs/operations.md, Memory)",
            guard.last_bytes(), guard.counted_bytes(), guard.budget_bytes());
    } else {
        spdlog::info(
            "memory below its budget again ({} bytes counting room for checkpoints, "
            "memory_max_bytes {}): new transactions are accepted again",
            guard.counted_bytes(), guard.budget_bytes());
    }
}

ShardThread::Applied ShardThread::finish_client(const engine::Command& command,
                                                const engine::Outcome& outcome, const OpRef& ref) {
    Applied applied{outcome, false};
    log_if_applied(command, outcome);
    if (outcome.result != Result::ok) {
        ShardCounters::add(counters_.operations_refused);
    } else if (!outcome.replayed && crosses_shards(command)) {
        // The debit leg is applied; the credit leg leaves once that record is durable.
        const uint32_t slot = free_transfer_slots_.back();
        free_transfer_slots_.pop_back();
        transfers_[slot] =
            Transfer{ref, engine::Shard::transfer_credit_for(command), outcome, true};
        Release release;
        release.gate_seq = current_seq();
        release.kind = ReleaseKind::credit;
        release.transfer_slot = slot;
        push_release(release);
        applied.deferred = true;
    }
    return applied;
}

ShardThread::Applied ShardThread::apply_client(engine::Command command, uint64_t duration_us,
                                               const OpRef& ref) {
    const Result admitted = admit_client(&command, stamp_time_us(), duration_us, 0);
    if (admitted != Result::ok) {
        return {refused(admitted), false, false};
    }
    return finish_client(command, shard_.apply(command), ref);
}

engine::Outcome ShardThread::apply_internal(engine::Command command) {
    command.time_us = stamp_time_us();
    const engine::Outcome outcome = shard_.apply(command);
    log_if_applied(command, outcome);
    return outcome;
}

void ShardThread::log_if_applied(const engine::Command& command, const engine::Outcome& outcome) {
    if (outcome.result != Result::ok || outcome.replayed) {
        return;  // Refusals and repeats change nothing, so there is nothing to log.
    }
    // has_room_for() and the tick counted these (records_per_operation_max, _per_tick_max).
    JIFEN_ASSERT(records_.size() + outcome.derived_count < unappended_records_max);
    // The derived records go first: settling the command's members happened before it.
    const std::span<const engine::Record> derived = shard_.derived_of(outcome);
    records_.insert(records_.end(), derived.begin(), derived.end());
    records_.push_back(shard_.record_of(command, outcome));
}

void ShardThread::send_credit(uint32_t transfer_slot) {
    const Transfer& transfer = transfers_[transfer_slot];
    Request request;
    request.kind = RequestKind::transfer_credit;
    request.transfer_slot = transfer_slot;
    request.ref = {no_connection, 0, 0, index_};
    request.command = transfer.credit;
    const uint32_t target = engine::Shard::shard_of(request.command.member_id, shard_count_);
    if (shared_.shards[target]->requests().try_push(request)) {
        ring_needed_[target] = 1;
    } else {
        credit_retry_.push_back(transfer_slot);  // Durable debit: must be delivered, later.
    }
}

void ShardThread::resend_recovered_credits() {
    // Credit legs owed since before a restart: the debit is durable, the credit may or may not
    // have been applied; the receiver's idempotency makes a second credit a harmless repeat.
    while (!credits_owed_.empty() && !free_transfer_slots_.empty() && has_room_for(1)) {
        const engine::Command credit = credits_owed_.back();
        credits_owed_.pop_back();
        const uint32_t slot = free_transfer_slots_.back();
        free_transfer_slots_.pop_back();
        Transfer& transfer = transfers_[slot];
        transfer.client = {no_connection, 0, 0, index_};
        transfer.credit = credit;
        transfer.debit_outcome = engine::Outcome{};
        transfer.in_use = true;
        send_credit(slot);
    }
}

void ShardThread::finish_transfer(uint32_t transfer_slot, const engine::Outcome& credit_outcome) {
    Transfer& transfer = transfers_[transfer_slot];
    JIFEN_ASSERT(transfer.in_use);
    const engine::Command close =
        credit_outcome.result == Result::ok
            ? engine::Shard::transfer_confirm_for(transfer.credit)
            : engine::Shard::transfer_refund_for(transfer.credit, credit_outcome.result);
    const engine::Outcome closed = apply_internal(close);
    if (closed.result != Result::ok) {
        spdlog::error("shard {}: {} of transfer {:x}:{:x} refused: {}", index_,
                      close.op == engine::Op::transfer_confirm ? "confirm" : "refund",
                      close.txn_id.hi, close.txn_id.lo, to_string(closed.result));
    }
    if (transfer.client.connection_index != no_connection) {
        // The client hears the transfer's final outcome: the debit as applied, or the credit's
        // refusal with the sender's balances after the refund.
        engine::Outcome final_outcome = transfer.debit_outcome;
        if (credit_outcome.result != Result::ok) {
            final_outcome = closed;
            final_outcome.result = credit_outcome.result;
            final_outcome.replayed = false;
        }
        deliver(transfer.client, final_outcome);
    }
    transfer.in_use = false;
    free_transfer_slots_.push_back(transfer_slot);
}

void ShardThread::deliver(const OpRef& ref, const engine::Outcome& outcome) {
    Release release;
    release.gate_seq = current_seq();
    if (ref.origin_shard == index_) {
        Connection* connection = find_connection(ref);
        if (connection == nullptr) {
            return;
        }
        connection->set_reply(ref.op_position, to_reply(outcome));
        release.kind = ReleaseKind::local;
        release.parts = 1;
        release.reply.ref = ref;
    } else {
        release.kind = ReleaseKind::reply;
        release.reply.kind = ReplyKind::outcome;
        release.reply.ref = ref;
        release.reply.payload = outcome;
    }
    push_release(release);
}

// ---------------------------------------------------------------------------------------------
// Inboxes.

void ShardThread::drain_inboxes() {
    // Replies first: they free budget and finish frames. Each message may add a record and two
    // releases, so stop (and resume after the next release) when that room is not there.
    // Neither while the transaction index waits to grow: a credit's result applies the
    // transfer's confirm or refund, which looks its id up in the index.
    const TxnIndexGrowth& growth = *shared_.txn_index_growth;
    Reply reply;
    while (has_room_for(1) && !growth.pending() && replies_.try_pop(&reply)) {
        handle_reply(reply);
    }
    Request request;
    while (has_room_for(1) && !growth.pending() && requests_.try_pop(&request)) {
        handle_request(request);
    }
    if (!has_room_for(1) || growth.pending()) {
        inbox_backlog_ = true;
    }
}

void ShardThread::handle_request(const Request& request) {
    Release release;
    release.kind = ReleaseKind::reply;
    release.reply.ref = request.ref;
    bool state_free = false;  // As in route_operations and route_balances.
    switch (request.kind) {
        case RequestKind::apply: {
            const Applied applied = apply_client(request.command, request.duration_us, request.ref);
            if (applied.deferred) {
                return;  // The transfer's final outcome goes back after its credit leg.
            }
            release.reply.kind = ReplyKind::outcome;
            release.reply.payload = applied.outcome;
            state_free =
                !applied.admitted || answers_from_durable_state(request.command, applied.outcome);
            break;
        }
        case RequestKind::balance: {
            state_free = log_stuck() && !waits_for_log(request.command.member_id);
            BalanceAnswer answer;
            answer.found = shard_.find_at(request.command.member_id, stamp_time_us(), &answer.view);
            if (!answer.found) {
                answer.view = engine::MemberView{};
                answer.view.member_id = request.command.member_id;
            }
            release.reply.kind = ReplyKind::balance;
            release.reply.payload = answer;
            break;
        }
        case RequestKind::audit:
            release.reply.kind = ReplyKind::audit;
            release.reply.payload = shard_.audit();
            break;
        case RequestKind::transfer_credit: {
            engine::Outcome outcome = apply_internal(request.command);
            ShardCounters::add(counters_.operations);
            release.reply.kind = ReplyKind::credit_result;
            release.reply.transfer_slot = request.transfer_slot;
            release.reply.payload = outcome;
            break;
        }
    }
    release.gate_seq = current_seq();
    if (state_free) {
        push_state_free(release);
    } else {
        push_release(release);
    }
}

void ShardThread::handle_reply(const Reply& reply) {
    if (reply.kind == ReplyKind::credit_result) {
        finish_transfer(reply.transfer_slot, std::get<engine::Outcome>(reply.payload));
        return;
    }
    JIFEN_ASSERT(remote_in_flight_ > 0);
    --remote_in_flight_;
    Connection* connection = find_connection(reply.ref);
    if (connection == nullptr) {
        return;  // The client left; its answer has nowhere to go.
    }
    const uint32_t position = reply.ref.op_position;
    switch (reply.kind) {
        case ReplyKind::outcome:
            connection->set_reply(position, to_reply(std::get<engine::Outcome>(reply.payload)));
            break;
        case ReplyKind::balance: {
            const auto& answer = std::get<BalanceAnswer>(reply.payload);
            connection->set_reply(
                position, answer.found
                              ? to_balance_reply(answer.view)
                              : balance_refusal(answer.view.member_id, Result::member_not_found));
            break;
        }
        case ReplyKind::audit:
            merge_audit(&connection->audit_sum(position),
                        std::get<engine::AuditReport>(reply.payload));
            break;
        case ReplyKind::credit_result:
            break;
    }
    connection->complete(position, 1);
}

}  // namespace jifen::server
