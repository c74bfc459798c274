// The pipelined client: per-opcode batches filled in preallocated frame buffers, sent through a
// Connection's in-flight window, each reply handed to its operation's handler. When the connection
// drops, frames that got no reply are kept with their bytes (so their transaction ids) unchanged
// and sent again, oldest first, on a new connection.
#include "client/async_client.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <string>
#include <vector>

namespace jifen::client {

namespace {

// Opcodes below this number index the per-opcode "batch being filled" table.
constexpr size_t opcode_slots = 32;
static_assert(static_cast<size_t>(protocol::Opcode::balance) < opcode_slots);
constexpr uint32_t filling_batches_max = async_filling_batches_max;
constexpr uint32_t no_batch = UINT32_MAX;

// A frame that failed this way may or may not have been applied; only resending it (same bytes,
// same transaction ids) on a new connection finds out, and the server's idempotency makes that
// safe.
bool is_link_loss(const Status& status) {
    return status.failure == Failure::closed || status.failure == Failure::timeout;
}

// An error frame for a frame the server read while stopping but did not start: nothing of it was
// applied, and it belongs on the next connection (docs/protocol.md, result 205).
bool is_server_stopping(const Status& status) {
    return status.failure == Failure::refused && status.result == Result::shutting_down;
}

bool calls_for_resend(const Status& status) {
    return is_link_loss(status) || is_server_stopping(status);
}

// Opening failures worth another attempt: the server is down, restarting, or at its connection
// limit. A refused key or version will be refused again.
bool is_worth_reopening(const Status& status) {
    return status.failure == Failure::connect || status.failure == Failure::timeout ||
           status.failure == Failure::closed || is_server_stopping(status) ||
           (status.failure == Failure::refused && status.result == Result::busy);
}

}  // namespace

struct AsyncClient::Impl : std::enable_shared_from_this<Impl> {
    enum class BatchState : uint8_t { free, filling, ready, in_flight };

    // idle: never connected, closed by the caller, or given up; submit refuses.
    // opening: a Connection open is under way (async_connect's, or an automatic reconnect).
    // open: sending; the connection may have dropped without a frame in flight to notice it.
    // waiting: the back-off before the next automatic open.
    enum class LinkState : uint8_t { idle, opening, open, waiting };

    struct Batch {
        protocol::Opcode opcode = protocol::Opcode::ping;
        BatchState state = BatchState::free;
        uint16_t count = 0;
        uint32_t resends = 0;         // Times sent again after a lost connection.
        uint64_t first_sent_seq = 0;  // Orders resends as the frames were first sent.
        std::vector<std::byte> body;
        std::vector<OperationHandler> operation_handlers;
        std::vector<BalanceHandler> balance_handlers;
    };

    Impl(boost::asio::io_context& io_context, const AsyncOptions& options_in)
        : io(io_context),
          options(options_in),
          connection(io_context, options_in),
          reconnect_timer(io_context) {
        batch_ops_max = std::clamp<uint32_t>(options.batch_ops_max, 1, protocol::batch_ops_max);
        const uint32_t depth =
            std::clamp<uint32_t>(options.frames_in_flight_max, 1, frames_in_flight_limit);
        batches.resize(depth + filling_batches_max);
        for (Batch& batch : batches) {
            batch.body.resize(size_t{batch_ops_max} * sizeof(protocol::Operation));
            batch.operation_handlers.resize(batch_ops_max);
            batch.balance_handlers.resize(batch_ops_max);
        }
        free_batches.reserve(batches.size());
        for (size_t index = batches.size(); index > 0; --index) {
            free_batches.push_back(static_cast<uint32_t>(index - 1));
        }
        ready_batches.reserve(batches.size());
        resend_batches.reserve(batches.size());
        filling.fill(no_batch);
    }

    ~Impl() { close({Failure::closed, Result::ok, "client destroyed"}); }

    // ---- filling ------------------------------------------------------------------------------

    // The batch being filled for an opcode, starting a new one if needed; nullptr when none free.
    Batch* batch_for(protocol::Opcode opcode, uint32_t* batch_index) {
        uint32_t& index = filling[static_cast<size_t>(opcode)];
        if (index == no_batch) {
            if (free_batches.empty()) {
                return nullptr;
            }
            index = free_batches.back();
            free_batches.pop_back();
            Batch& batch = batches[index];
            batch.opcode = opcode;
            batch.state = BatchState::filling;
            batch.count = 0;
            batch.resends = 0;
        }
        *batch_index = index;
        return &batches[index];
    }

    // Called after an item was added: seal a full batch, or make sure the turn ends with a flush.
    void after_add(Batch& batch, uint32_t batch_index) {
        ++operations_outstanding;
        if (batch.count == frame_ops_max()) {
            seal(batch_index);
            pump();
        } else if (!flush_posted) {
            flush_posted = true;
            boost::asio::post(io, [weak = weak_from_this()] {
                if (auto self = weak.lock()) {
                    self->flush_posted = false;
                    self->flush();
                }
            });
        }
    }

    uint32_t frame_ops_max() const noexcept {
        const uint32_t server_max = connection.hello().batch_ops_max;
        return server_max == 0 ? batch_ops_max : std::min(batch_ops_max, server_max);
    }

    // Operations are accepted while a link exists or is being restored; they leave once it is up.
    bool accepting() const noexcept { return link != LinkState::idle; }

    bool submit(protocol::Opcode opcode, const protocol::Operation& operation,
                OperationHandler handler) {
        if (!protocol::is_mutation(opcode) || !accepting()) {
            return false;
        }
        uint32_t batch_index = 0;
        Batch* batch = batch_for(opcode, &batch_index);
        if (batch == nullptr) {
            return false;
        }
        protocol::Operation* slot =
            reinterpret_cast<protocol::Operation*>(batch->body.data()) + batch->count;
        std::memcpy(slot, &operation, sizeof(operation));
        if (txn_id_of(*slot).is_zero()) {
            set_txn_id(slot, txn_ids.next());
        }
        batch->operation_handlers[batch->count] = std::move(handler);
        ++batch->count;
        after_add(*batch, batch_index);
        return true;
    }

    bool balance(uint64_t member_id, BalanceHandler handler) {
        if (!accepting()) {
            return false;
        }
        uint32_t batch_index = 0;
        Batch* batch = batch_for(protocol::Opcode::balance, &batch_index);
        if (batch == nullptr) {
            return false;
        }
        protocol::BalanceRequest request;
        request.member_id = member_id;
        std::memcpy(batch->body.data() + size_t{batch->count} * sizeof(request), &request,
                    sizeof(request));
        batch->balance_handlers[batch->count] = std::move(handler);
        ++batch->count;
        after_add(*batch, batch_index);
        return true;
    }

    void seal(uint32_t batch_index) {
        Batch& batch = batches[batch_index];
        filling[static_cast<size_t>(batch.opcode)] = no_batch;
        batch.state = BatchState::ready;
        ready_batches.push_back(batch_index);
    }

    void flush() {
        for (const uint32_t index : filling) {
            if (index != no_batch && batches[index].count > 0) {
                seal(index);
            }
        }
        pump();
    }

    // ---- sending ------------------------------------------------------------------------------

    // Sends waiting batches while the in-flight window has room: first the ones to resend after a
    // lost connection, then the sealed ones, each list oldest first, so the server sees every
    // frame in the order it was first sent (docs/protocol.md applies one member's operations in
    // request order).
    void pump() {
        if (link != LinkState::open) {
            return;
        }
        if (!connection.is_open()) {
            // It dropped with nothing in flight, so no reply handler noticed.
            post_link_loss();
            return;
        }
        if (server_stopping) {
            // The server answers the frames it started, then closes; new ones would be refused.
            // Once those are answered there is no reason to wait for its close.
            if (connection.frames_in_flight() == 0) {
                const Status stopping{Failure::closed, Result::ok, "the server is stopping"};
                connection.close(stopping);
                after_link_loss(stopping);
            }
            return;
        }
        send_from(resend_batches);
        if (resend_batches.empty()) {
            send_from(ready_batches);
        }
    }

    void send_from(std::vector<uint32_t>& queue) {
        size_t sent = 0;
        while (sent < queue.size() && connection.can_send()) {
            const uint32_t index = queue[sent];
            ++sent;
            Batch& batch = batches[index];
            batch.state = BatchState::in_flight;
            if (batch.resends == 0) {
                batch.first_sent_seq = ++frames_sent;
            }
            const size_t item_bytes = batch.opcode == protocol::Opcode::balance
                                          ? sizeof(protocol::BalanceRequest)
                                          : sizeof(protocol::Operation);
            // `this` and an index fit std::function's small buffer: no allocation per frame.
            connection.send(batch.opcode, batch.count,
                            std::span(batch.body.data(), batch.count * item_bytes),
                            [this, index](const Status& status, const protocol::FrameHeader& header,
                                          std::span<const std::byte> body) {
                                on_frame_reply(index, status, header, body);
                            });
        }
        queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(sent));
    }

    // ---- replies --------------------------------------------------------------------------------

    void on_frame_reply(uint32_t batch_index, Status status, const protocol::FrameHeader& header,
                        std::span<const std::byte> body) {
        Batch& batch = batches[batch_index];
        const size_t reply_bytes = batch.opcode == protocol::Opcode::balance
                                       ? sizeof(protocol::BalanceReply)
                                       : sizeof(protocol::OperationReply);
        if (status.ok() &&
            (header.count != batch.count || body.size() != batch.count * reply_bytes)) {
            status = {Failure::protocol, Result::ok,
                      "reply count or size differs from the request"};
        }
        if (is_server_stopping(status) && options.reconnect_attempts > 0) {
            server_stopping = true;
        }
        if (calls_for_resend(status) && may_resend(batch)) {
            queue_for_resend(batch_index);
            carry_on(status);
            return;
        }
        if (calls_for_resend(status) && batch.resends > 0) {
            status.message += "; sent " + std::to_string(batch.resends + 1) + " times";
        }
        complete(batch_index, status, body);
        if (status.failure == Failure::protocol ||
            (!status.ok() && !calls_for_resend(status) && !connection.is_open())) {
            // Bytes one side could not parse (a protocol or framing error): a bug, which sending
            // the same bytes again would not cure.
            give_up(status);
            return;
        }
        carry_on(status);
    }

    // Keeps resend_batches in first-sent order whatever order the failures arrive in.
    void queue_for_resend(uint32_t batch_index) {
        Batch& batch = batches[batch_index];
        ++batch.resends;
        batch.state = BatchState::ready;
        const auto position = std::upper_bound(
            resend_batches.begin(), resend_batches.end(), batch.first_sent_seq,
            [this](uint64_t seq, uint32_t index) { return seq < batches[index].first_sent_seq; });
        resend_batches.insert(position, batch_index);
    }

    // After a reply or failure: reconnect if the connection is gone, else send what waits.
    void carry_on(const Status& status) {
        if (!connection.is_open()) {
            after_link_loss(status.ok() ? Status{Failure::closed, Result::ok, "connection closed"}
                                        : status);
            return;
        }
        pump();
    }

    bool may_resend(const Batch& batch) const noexcept {
        return link != LinkState::idle && batch.resends < options.reconnect_attempts;
    }

    // Runs each item's handler with its reply (or the failure) and frees the batch.
    void complete(uint32_t batch_index, const Status& status, std::span<const std::byte> body) {
        Batch& batch = batches[batch_index];
        batch.state = BatchState::in_flight;  // Delivering: not reusable until done.
        const bool is_balance = batch.opcode == protocol::Opcode::balance;
        const size_t reply_bytes =
            is_balance ? sizeof(protocol::BalanceReply) : sizeof(protocol::OperationReply);
        const uint16_t count = batch.count;
        for (uint16_t item = 0; item < count; ++item) {
            if (is_balance) {
                protocol::BalanceReply reply{};
                if (status.ok()) {
                    std::memcpy(&reply, body.data() + size_t{item} * reply_bytes, sizeof(reply));
                }
                BalanceHandler handler = std::move(batch.balance_handlers[item]);
                batch.balance_handlers[item] = nullptr;
                --operations_outstanding;  // Before the handler, so it sees itself finished.
                if (handler) {
                    handler(status, reply);
                }
            } else {
                protocol::OperationReply reply{};
                if (status.ok()) {
                    std::memcpy(&reply, body.data() + size_t{item} * reply_bytes, sizeof(reply));
                }
                OperationHandler handler = std::move(batch.operation_handlers[item]);
                batch.operation_handlers[item] = nullptr;
                --operations_outstanding;  // Before the handler, so it sees itself finished.
                if (handler) {
                    handler(status, reply);
                }
            }
        }
        batch.count = 0;
        batch.resends = 0;
        batch.state = BatchState::free;
        free_batches.push_back(batch_index);
    }

    // ---- reconnecting ---------------------------------------------------------------------------

    // after_link_loss() from the event loop: pump() runs inside submit() and flush(), and their
    // callers must not see operations complete (and their slots reused) before they return.
    void post_link_loss() {
        if (link_loss_posted) {
            return;
        }
        link_loss_posted = true;
        boost::asio::post(io, [weak = weak_from_this()] {
            if (auto self = weak.lock()) {
                self->link_loss_posted = false;
                self->after_link_loss({Failure::closed, Result::ok, "connection closed"});
            }
        });
    }

    void after_link_loss(const Status& status) {
        if (link != LinkState::open || connection.is_open()) {
            return;  // Already reconnecting or closing, or (stopping server) not lost yet.
        }
        lost_because = status.to_string();
        if (options.reconnect_attempts == 0) {
            give_up(status);
            return;
        }
        open_attempts = 0;
        wait_and_reopen();
    }

    void wait_and_reopen() {
        link = LinkState::waiting;
        reconnect_timer.expires_after(reconnect_delay(options, open_attempts));
        reconnect_timer.async_wait(
            [weak = weak_from_this()](const boost::system::error_code& error) {
                auto self = weak.lock();
                if (error || !self || self->link != LinkState::waiting) {
                    return;
                }
                self->open(nullptr);
            });
    }

    // Opens a new connection. `handler` is async_connect's; automatic reconnects pass none.
    void open(ConnectHandler handler) {
        reconnect_timer.cancel();
        link = LinkState::opening;
        ConnectHandler replaced = std::move(connect_handler);
        connect_handler = std::move(handler);
        const uint64_t generation = ++open_generation;
        // Closing the current connection (if any) fails its frames in flight with `closed`: they
        // join resend_batches and go out again on the new connection.
        connection.async_open([weak = weak_from_this(), generation](const Status& status) {
            if (auto self = weak.lock()) {
                self->on_open(generation, status);
            }
        });
        if (replaced) {
            replaced({Failure::closed, Result::ok, "replaced by a later async_connect"});
        }
    }

    void on_open(uint64_t generation, const Status& status) {
        if (generation != open_generation || link != LinkState::opening) {
            return;  // A later open replaced this one, or the caller closed.
        }
        ConnectHandler handler = std::move(connect_handler);
        connect_handler = nullptr;
        if (status.ok()) {
            link = LinkState::open;
            server_stopping = false;
            if (handler) {
                handler(status);
            }
            pump();
            return;
        }
        if (handler) {
            // The caller asked for this connection and hears why it failed; what was queued fails
            // with the same reason.
            give_up(status);
            handler(status);
            return;
        }
        ++open_attempts;
        if (is_worth_reopening(status) && open_attempts < options.reconnect_attempts) {
            wait_and_reopen();
            return;
        }
        give_up({Failure::closed, Result::ok,
                 "connection lost (" + lost_because + "); " + std::to_string(open_attempts) +
                     " reconnect attempts failed, the last: " + status.to_string()});
    }

    // No more sending: every outstanding operation completes with `status`.
    void give_up(const Status& status) {
        link = LinkState::idle;
        reconnect_timer.cancel();
        connection.close(status);  // Frames in flight complete with `status` (nothing resends).
        fail_unsent(status);
    }

    // Completes every batch not on the wire, oldest first: those waiting to be resent, then the
    // sealed ones, then those being filled. Each leaves its list before its handlers run, so a
    // handler that closes the client finds a consistent state.
    void fail_unsent(const Status& status) {
        // All taken first: a handler that connects again and submits starts a new batch, which
        // must not be failed with this status.
        std::vector<uint32_t> unsent;
        for (uint32_t index = take_oldest_unsent(); index != no_batch;
             index = take_oldest_unsent()) {
            unsent.push_back(index);
        }
        for (const uint32_t index : unsent) {
            complete(index, status, {});
        }
    }

    uint32_t take_oldest_unsent() {
        for (std::vector<uint32_t>* queue : {&resend_batches, &ready_batches}) {
            if (!queue->empty()) {
                const uint32_t index = queue->front();
                queue->erase(queue->begin());
                return index;
            }
        }
        for (uint32_t& filling_index : filling) {
            if (filling_index != no_batch) {
                const uint32_t index = filling_index;
                filling_index = no_batch;
                return index;
            }
        }
        return no_batch;
    }

    // The caller's close: an async_connect still under way hears `reason` too.
    void close(const Status& reason) {
        ConnectHandler handler = std::move(connect_handler);
        connect_handler = nullptr;
        give_up(reason);
        if (handler) {
            handler(reason);
        }
    }

    boost::asio::io_context& io;
    AsyncOptions options;
    Connection connection;
    TxnIdGenerator txn_ids;
    uint32_t batch_ops_max = 0;
    std::vector<Batch> batches;
    std::vector<uint32_t> free_batches;
    std::vector<uint32_t> ready_batches;           // Sealed, never sent; oldest first.
    std::vector<uint32_t> resend_batches;          // Sent, no reply, connection lost; oldest first.
    std::array<uint32_t, opcode_slots> filling{};  // Per opcode: the batch being filled or none.
    bool flush_posted = false;
    bool link_loss_posted = false;  // post_link_loss() has an after_link_loss() on its way.
    size_t operations_outstanding = 0;
    uint64_t frames_sent = 0;

    LinkState link = LinkState::idle;
    boost::asio::steady_timer reconnect_timer;
    ConnectHandler connect_handler;  // async_connect's, until its open completes.
    uint64_t open_generation = 0;    // Tells a superseded open's completion from the current one.
    uint32_t open_attempts = 0;      // Failed automatic opens in the current outage.
    std::string lost_because;        // What ended the last connection, for the final error.
    bool server_stopping = false;    // It answered shutting_down: send nothing more on this link.
};

AsyncClient::AsyncClient(boost::asio::io_context& io, AsyncOptions options)
    : impl_(std::make_shared<Impl>(io, options)) {}

AsyncClient::~AsyncClient() { impl_->close({Failure::closed, Result::ok, "client destroyed"}); }

void AsyncClient::async_connect(ConnectHandler handler) { impl_->open(std::move(handler)); }

bool AsyncClient::is_connected() const noexcept { return impl_->connection.is_open(); }

const protocol::HelloReply& AsyncClient::hello() const noexcept {
    return impl_->connection.hello();
}

bool AsyncClient::submit(protocol::Opcode opcode, const protocol::Operation& operation,
                         OperationHandler handler) {
    return impl_->submit(opcode, operation, std::move(handler));
}

bool AsyncClient::balance(uint64_t member_id, BalanceHandler handler) {
    return impl_->balance(member_id, std::move(handler));
}

void AsyncClient::flush() { impl_->flush(); }

size_t AsyncClient::operations_outstanding() const noexcept {
    return impl_->operations_outstanding;
}

size_t AsyncClient::frames_in_flight() const noexcept {
    return impl_->connection.frames_in_flight();
}

TxnId AsyncClient::new_txn_id() noexcept { return impl_->txn_ids.next(); }

void AsyncClient::close() { impl_->close({Failure::closed, Result::ok, "closed by the client"}); }

}  // namespace jifen::client
