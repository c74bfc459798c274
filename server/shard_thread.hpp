// One shard: its engine::Shard, its listener and connections, its inboxes, and the queue of
// replies waiting for the log, all run by the core thread whose io_context it is given
// (server/core_thread.hpp; docs/architecture.md, "The server"). "Shard thread" in comments means
// that thread, which may host other shards too.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "protocol/wire.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/doorbell.hpp"
#include "server/history_reader.hpp"
#include "server/inbox.hpp"
#include "server/log_throttle.hpp"
#include "server/memory_guard.hpp"
#include "server/messages.hpp"
#include "server/txn_index_growth.hpp"
#include "wal/log.hpp"

namespace jifen::server {

class Connection;
struct Handover;
class ShardThread;

// What every shard thread shares: read-only after start, apart from the atomics.
struct Shared {
    const Config* config = nullptr;
    wal::Log* log = nullptr;
    engine::TxnIndex* txn_index = nullptr;
    TxnIndexGrowth* txn_index_growth = nullptr;
    HistoryReader* history_reader = nullptr;
    MemoryGuard* memory_guard = nullptr;  // Shard 0 samples it; every shard refuses by it.
    std::vector<Doorbell*> doorbells;     // Every shard's, for waking them all.
    const KeyRing* keys = nullptr;
    boost::asio::ssl::context* tls = nullptr;  // Null: plain TCP.
    std::vector<ShardThread*> shards;
    bool sync = true;  // Durability: replies wait for the log.
    uint64_t start_us = 0;
    std::atomic<uint64_t> connections{0};
    std::atomic<uint64_t> connections_accepted{0};  // Numbers them for the log.
    // True from the first write refused with storage_full until shard 0's timer sees the log take
    // writes again: one log line each way for the server, however many requests are refused.
    std::atomic<bool> storage_full_reported{false};
    std::atomic<bool> log_failure_reported{false};  // Once: a failed log stays failed.
};

// Counters any thread may read (stats, metrics). Only the shard's own thread writes them, so
// it bumps them with a plain load and store (add()): a locked add per operation would be the
// one serialising instruction on the path.
struct ShardCounters {
    static void add(std::atomic<uint64_t>& counter, uint64_t amount = 1) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
    }
    static void subtract(std::atomic<uint64_t>& counter, uint64_t amount = 1) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) - amount, std::memory_order_relaxed);
    }

    std::atomic<uint64_t> operations{0};
    std::atomic<uint64_t> operations_refused{0};
    std::atomic<uint64_t> connections{0};
    std::atomic<uint64_t> busy_refusals{0};  // Operations refused because a queue was full.
    // Operations refused because the log cannot grow (wal::Log::storage_full).
    std::atomic<uint64_t> storage_full_refusals{0};
    // Client operations handed to the shard owning their member (docs/protocol.md, "Shards").
    std::atomic<uint64_t> operations_forwarded{0};
    // Gauges of the shard's size, as of its last wake-up.
    std::atomic<uint64_t> members{0};
    std::atomic<uint64_t> transactions{0};
    std::atomic<uint64_t> holds_open{0};
    std::atomic<uint64_t> lot_nodes{0};
    // Answers other than ok sent on this shard's connections, by result code (the last entry
    // stands for any code past it): each operation's (forwarded ones included, counted where
    // the client is), each refused HELLO, history or stats request, each ErrorReply.
    static constexpr size_t result_codes = 400;
    std::array<std::atomic<uint64_t>, result_codes> refusals{};
};

class ShardThread;
// Room for a checkpoint of every shard at once, from their gauges (the memory budget keeps it).
uint64_t checkpoint_reserve_bytes(const std::vector<ShardThread*>& shards) noexcept;

class ShardThread {
public:
    ShardThread(Shared& shared, uint32_t index, engine::Shard& shard, boost::asio::io_context& io);
    ~ShardThread();
    ShardThread(const ShardThread&) = delete;
    ShardThread& operator=(const ShardThread&) = delete;

    // Before start(): opens this shard's listener (SO_REUSEPORT, so every shard thread listens on
    // the same port and the kernel spreads connections). Returns the bound port.
    uint16_t listen(const boost::asio::ip::tcp::endpoint& endpoint);
    // Posts the shard's start to its io_context (it runs once the core thread runs).
    // credits_owed: transfer_credit commands recovery found still in flight.
    void start(std::vector<engine::Command> credits_owed);
    // Any thread: stop accepting and reading; in-flight requests still finish.
    void begin_stop();
    // Any thread: true once stopping and nothing is in flight here.
    bool quiescent() const noexcept { return quiescent_.load(std::memory_order_acquire); }
    // Any thread, after begin_stop: posts the closing of every connection and of the shard's
    // timers; done once the core thread has run it (CoreThread::stop_and_join).
    void finish_stop();

    // Any thread: how other shards and the log writer reach this one.
    Inbox<Request>& requests() noexcept { return requests_; }
    Inbox<Reply>& replies() noexcept { return replies_; }
    Doorbell& doorbell() noexcept { return doorbell_; }
    // The log writer, after it made more of this shard's records durable and freed their room
    // in its queue: rings the doorbell if the shard waits for that. In sync durability every
    // reply waits for it; in async only the legs of cross-shard transfers (must_wait_for_log)
    // and records the full queue refused (flush_records).
    void on_durable() noexcept;
    const ShardCounters& counters() const noexcept { return counters_; }
    // An answer other than ok went out on one of this shard's connections.
    void count_refusal(uint32_t result) noexcept {
        ShardCounters::add(
            counters_.refusals[std::min<size_t>(result, ShardCounters::result_codes - 1)]);
    }
    uint32_t index() const noexcept { return index_; }
    // Any thread (another shard): serve a session whose HELLO asked for this shard.
    void adopt(Handover handover);
    // Any thread (the history reader): sends a history reply on this shard's thread, if the
    // connection is still the one that asked.
    void deliver_history(const HistoryJob& job, std::vector<std::byte> body);

    // --- Shard thread only: what connections call. ---
    Shared& shared() noexcept { return shared_; }
    // Refused HELLOs on this shard's connections, logged at most once a second.
    LogThrottle& refused_keys_log() noexcept { return refused_keys_log_; }
    // Routes or answers one authenticated, well-formed frame. False when there is no room for it
    // now: the connection stalls and is resumed after the shard freed room.
    bool handle_frame(Connection& connection, const protocol::FrameHeader& header,
                      std::span<const std::byte> body);
    void stall(Connection& connection);
    void schedule_flush(Connection& connection);
    void on_connection_closed(Connection& connection);
    // Releases replies, appends records, resumes stalled connections, rings other shards. Called
    // at the end of every handler that may have done work (one batch per wake-up).
    void after_work();
    uint64_t now_ms() const noexcept;
    bool stopping() const noexcept { return stopping_; }

private:
    // A release waits in release_ until the shard's durable sequence reaches gate_seq.
    enum class ReleaseKind : uint8_t {
        local,  // `parts` completions of a local connection's frame (replies already in slots).
        reply,  // Push `reply` to the origin shard's reply inbox.
        credit  // Send the credit leg of transfers_[transfer_slot].
    };
    struct Release {
        uint64_t gate_seq = 0;
        ReleaseKind kind = ReleaseKind::local;
        uint32_t parts = 0;
        uint32_t transfer_slot = 0;
        Reply reply;  // local: reply.ref names the connection and operation.
    };
    // A cross-shard transfer between its debit leg and confirm/refund.
    struct Transfer {
        OpRef client;            // connection_index == no_connection: resent after recovery.
        engine::Command credit;  // Shard::transfer_credit_for(the debit leg).
        engine::Outcome debit_outcome;
        bool in_use = false;
    };
    struct ConnectionEntry {
        std::shared_ptr<Connection> connection;
        uint32_t generation = 0;
    };
    struct Applied {
        engine::Outcome outcome;
        bool deferred = false;  // A cross-shard transfer: the answer comes after its credit leg.
        bool admitted = true;   // False: refused before the engine saw it (shows no state).
    };

    void run_accept();
    void on_accept(const boost::system::error_code& error, boost::asio::ip::tcp::socket socket);
    // Registers a connection in the table; returns it and the server's open connection count.
    std::pair<Connection*, uint64_t> add_connection(boost::asio::ip::tcp::socket socket,
                                                    uint64_t number);
    void arm_doorbell();
    void on_doorbell(const boost::system::error_code& error);
    void arm_timer();
    void on_timer(const boost::system::error_code& error);
    void step_checkpoint();
    void drain_inboxes();
    void handle_request(const Request& request);
    void handle_reply(const Reply& reply);

    void route_operations(Connection& connection, const protocol::FrameHeader& header,
                          std::span<const std::byte> body);
    void route_balances(Connection& connection, const protocol::FrameHeader& header,
                        std::span<const std::byte> body);
    void route_audit(Connection& connection, const protocol::FrameHeader& header);
    void answer_history(Connection& connection, const protocol::FrameHeader& header,
                        std::span<const std::byte> body);
    void answer_stats(Connection& connection, const protocol::FrameHeader& header);
    void answer_ping(Connection& connection, const protocol::FrameHeader& header);

    // Stages a request for another shard; pushed in one reservation per target (flush_staged).
    void stage(uint32_t target, const Request& request, Connection* connection,
               uint32_t* local_parts);
    void flush_staged(uint32_t target, Connection* connection, uint32_t* local_parts);
    // End of a routed frame: pushes what is staged for other shards and queues the release of
    // the local_parts answered here (from position first on).
    // state_free: the frame's local replies show no state (see push_state_free).
    void finish_routing(Connection& connection, uint32_t first, uint32_t local_parts,
                        bool state_free);

    // A client operation on this shard's member, in three steps so a frame's operations can be
    // applied as one batch: admit (log state, time stamp, transfer slot: transfer_slots_taken are
    // already promised to earlier operations of the batch), apply, finish (log the record, send
    // a cross-shard transfer's credit leg once durable). apply_client does all three for one.
    Result admit_client(engine::Command* command, uint64_t time_us, uint64_t duration_us,
                        uint32_t transfer_slots_taken);
    Applied finish_client(const engine::Command& command, const engine::Outcome& outcome,
                          const OpRef& ref);
    Applied apply_client(engine::Command command, uint64_t duration_us, const OpRef& ref);
    bool crosses_shards(const engine::Command& command) const noexcept;
    // Log a warning when the server starts refusing writes for storage (any shard at a refusal,
    // or shard 0's tick), an info when the log takes writes again and an error once the log
    // failed (shard 0, once a tick).
    void report_storage_full();
    void report_memory_state();
    // Publishes the shard's size gauges in counters_ (at construction, then after every wake-up).
    void publish_gauges() noexcept;
    void report_log_state();
    engine::Outcome apply_internal(engine::Command command);
    void log_if_applied(const engine::Command& command, const engine::Outcome& outcome);
    void send_credit(uint32_t transfer_slot);
    void finish_transfer(uint32_t transfer_slot, const engine::Outcome& credit_outcome);
    void resend_recovered_credits();
    void deliver(const OpRef& ref, const engine::Outcome& outcome);

    void push_release(const Release& release);
    // A release whose replies show no ledger state (refusals decided before anything was
    // applied; reads of members nothing waits for while the log cannot write): it leaves at the
    // end of the round, not behind the releases waiting for the log.
    void push_state_free(const Release& release);
    void release_durable();
    void release_now(const Release& release);
    // Releases the oldest entries of queue[*head, tail) (a ring) while they are durable.
    void release_durable_from(const std::vector<Release>& queue, uint64_t* head, uint64_t tail);
    static bool must_wait_for_log(const Release& release) noexcept;
    // Async: announces, before the shard looks at the log's state, that it may need the
    // writer's wake-up (see on_durable).
    void expect_durable_wake() noexcept;
    void flush_records();
    void resume_stalled();
    void update_quiescent();

    Connection* find_connection(const OpRef& ref) noexcept;
    uint64_t stamp_time_us() noexcept;
    uint64_t current_seq() const noexcept { return appended_seq_ + records_.size(); }
    // The queues share one capacity: a release moved aside still counts.
    size_t release_room() const noexcept {
        return release_.size() - (release_tail_ - release_head_) -
               (durable_wait_tail_ - durable_wait_head_) - state_free_.size();
    }
    // Sync durability, and the log cannot write (storage full, failed) while this shard has
    // records not durable yet: what waits for the log may wait until an operator acts.
    bool log_stuck() const noexcept;
    // Whether a read of member_id may show state not durable yet, while log_stuck().
    bool waits_for_log(engine::MemberId member_id);
    // Storage full: whether command repeats a transaction of its member whose record is durable.
    // The engine answers it from what it kept (replayed, id_conflict, or in_progress for a
    // transfer whose credit is on its way) and logs nothing, so it is admitted: a client
    // retrying an operation it got no answer for learns its outcome.
    bool repeats_durable_transaction(const engine::Command& command);
    // While log_stuck(): whether the engine's answer to command shows durable state only (a
    // repeat's answer, which logs nothing, and nothing of its member waits for the log), so it
    // need not wait for a log that may not write again.
    bool answers_from_durable_state(const engine::Command& command, const engine::Outcome& outcome);
    size_t record_room() const noexcept;
    bool has_room_for(uint32_t operations) const noexcept;

    Shared& shared_;
    const uint32_t index_;
    const uint32_t shard_count_;
    engine::Shard& shard_;
    ShardCounters counters_;

    boost::asio::io_context& io_;  // The core thread's.
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer accept_retry_timer_;
    boost::asio::steady_timer checkpoint_timer_;  // Paces the steps of a checkpoint being built.
    Doorbell doorbell_;
    Inbox<Request> requests_;
    Inbox<Reply> replies_;

    std::vector<ConnectionEntry> connections_;
    std::vector<uint32_t> free_connection_indexes_;
    std::vector<Connection*> stalled_;
    std::vector<Connection*> stalled_scratch_;  // The list being resumed (null: closed since).
    std::vector<std::shared_ptr<Connection>> to_flush_;

    // Replies and sends waiting for durability, oldest first (their gates only grow).
    std::vector<Release> release_;
    uint64_t release_head_ = 0;
    uint64_t release_tail_ = 0;
    // Async only: the releases that must wait for durability even there (must_wait_for_log),
    // moved aside so the replies queued behind them need not wait. Oldest first.
    std::vector<Release> durable_wait_;
    uint64_t durable_wait_head_ = 0;
    uint64_t durable_wait_tail_ = 0;
    // push_state_free(); reserved to the queues' capacity, emptied every round.
    std::vector<Release> state_free_;
    // waits_for_log(): the members of the records not durable yet (sorted), as of
    // undurable_seqs_ (durable, current); all_undurable_ when the log could not tell.
    std::vector<engine::MemberId> undurable_members_;
    std::pair<uint64_t, uint64_t> undurable_seqs_{0, 0};
    bool all_undurable_ = false;

    // Applied records the log has not taken yet; appended_seq_ mirrors Log::appended_seq.
    std::vector<engine::Record> records_;
    // One frame's operations on this shard, applied together (route_operations).
    std::vector<engine::Command> batch_commands_;
    std::vector<uint32_t> batch_positions_;
    std::vector<engine::Outcome> batch_outcomes_;
    uint64_t appended_seq_ = 0;

    std::vector<std::vector<Request>> staged_;  // Per target shard.
    std::vector<uint8_t> ring_needed_;          // Per shard: its inbox got something this round.
    uint32_t remote_in_flight_ = 0;             // Requests awaiting a reply (budgeted).
    bool inbox_backlog_ = false;                // Drain stopped for lack of room.

    std::vector<Transfer> transfers_;
    std::vector<uint32_t> free_transfer_slots_;
    std::vector<uint32_t> credit_retry_;          // Credit legs whose target inbox was full.
    std::vector<uint32_t> credit_retry_scratch_;  // The list being retried.
    std::vector<engine::Command> credits_owed_;   // Recovered, waiting for a free transfer slot.

    uint64_t last_time_us_ = 0;
    bool stopping_ = false;
    bool stopped_ = false;  // finish_stop ran: nothing is applied any more.
    std::atomic<bool> quiescent_{false};
    // Async durability: true while records wait for room in the log's queue, transfer hand-offs
    // wait for durability or credits wait for room in another shard's inbox (see on_durable).
    std::atomic<bool> wants_durable_wake_{false};

    // Last: touched only when a HELLO or a connection is refused, they stay off the lines the
    // hot fields share.
    LogThrottle refused_keys_log_;
    LogThrottle refused_connections_log_;
};

}  // namespace jifen::server
