// The pipelined client: per-opcode batches filled in preallocated frame buffers, sent through a
// Connection's in-flight window, each reply handed to its operation's handler.
#include "client/async_client.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <cstring>
#include <vector>

namespace jifen::client {

namespace {

// Opcodes below this number index the per-opcode "batch being filled" table.
constexpr size_t opcode_slots = 32;
static_assert(static_cast<size_t>(protocol::Opcode::balance) < opcode_slots);
// Batches beyond the in-flight window: one being filled per batchable opcode (the ten mutations
// and balance), so filling never waits for the window.
constexpr uint32_t filling_batches_max = 11;
constexpr uint32_t no_batch = UINT32_MAX;

}  // namespace

struct AsyncClient::Impl : std::enable_shared_from_this<Impl> {
    enum class BatchState : uint8_t { free, filling, ready, in_flight };

    struct Batch {
        protocol::Opcode opcode = protocol::Opcode::ping;
        BatchState state = BatchState::free;
        uint16_t count = 0;
        std::vector<std::byte> body;
        std::vector<OperationHandler> operation_handlers;
        std::vector<BalanceHandler> balance_handlers;
    };

    Impl(boost::asio::io_context& io_context, const AsyncOptions& options_in)
        : io(io_context), options(options_in), connection(io_context, options_in) {
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
        filling.fill(no_batch);
    }

    ~Impl() { close({Failure::closed, Result::ok, "client destroyed"}); }

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

    bool submit(protocol::Opcode opcode, const protocol::Operation& operation,
                OperationHandler handler) {
        if (!protocol::is_mutation(opcode) || !connection.is_open()) {
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
        if (!connection.is_open()) {
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

    // Sends ready batches, oldest first, while the in-flight window has room.
    void pump() {
        size_t sent = 0;
        while (sent < ready_batches.size() && connection.can_send()) {
            const uint32_t index = ready_batches[sent];
            ++sent;
            Batch& batch = batches[index];
            batch.state = BatchState::in_flight;
            const size_t item_bytes = batch.opcode == protocol::Opcode::balance
                                          ? sizeof(protocol::BalanceRequest)
                                          : sizeof(protocol::Operation);
            // `this` and an index fit std::function's small buffer: no allocation per frame.
            connection.send(batch.opcode, batch.count,
                            std::span(batch.body.data(), batch.count * item_bytes),
                            [this, index](const Status& status, const protocol::FrameHeader& header,
                                          std::span<const std::byte> body) {
                                on_reply(index, status, header, body);
                            });
        }
        ready_batches.erase(ready_batches.begin(),
                            ready_batches.begin() + static_cast<std::ptrdiff_t>(sent));
    }

    void on_reply(uint32_t batch_index, Status status, const protocol::FrameHeader& header,
                  std::span<const std::byte> body) {
        Batch& batch = batches[batch_index];
        const bool is_balance = batch.opcode == protocol::Opcode::balance;
        const size_t reply_bytes =
            is_balance ? sizeof(protocol::BalanceReply) : sizeof(protocol::OperationReply);
        if (status.ok() &&
            (header.count != batch.count || body.size() != batch.count * reply_bytes)) {
            status = {Failure::protocol, Result::ok,
                      "reply count or size differs from the request"};
        }
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
        batch.state = BatchState::free;
        free_batches.push_back(batch_index);
        if (status.failure == Failure::protocol) {
            connection.close({Failure::protocol, Result::ok, status.message});
        }
        if (!connection.is_open()) {
            if (!failing_queued) {
                fail_queued(status.ok() ? Status{Failure::closed, Result::ok, "connection closed"}
                                        : status);
            }
            return;
        }
        pump();
    }

    // Fails batches that never reached the wire (filling or ready) with `status`.
    void fail_queued(const Status& status) {
        failing_queued = true;
        for (uint32_t index = 0; index < batches.size(); ++index) {
            Batch& batch = batches[index];
            if (batch.state != BatchState::filling && batch.state != BatchState::ready) {
                continue;
            }
            if (batch.state == BatchState::filling) {
                filling[static_cast<size_t>(batch.opcode)] = no_batch;
            }
            batch.state = BatchState::in_flight;  // Delivering: not reusable until done.
            on_reply(index, status, protocol::FrameHeader{}, {});
        }
        ready_batches.clear();
        failing_queued = false;
    }

    void close(const Status& reason) {
        connection.close(reason);
        fail_queued(reason);
    }

    boost::asio::io_context& io;
    AsyncOptions options;
    Connection connection;
    TxnIdGenerator txn_ids;
    uint32_t batch_ops_max = 0;
    std::vector<Batch> batches;
    std::vector<uint32_t> free_batches;
    std::vector<uint32_t> ready_batches;  // Sealed, waiting for the in-flight window; in order.
    std::array<uint32_t, opcode_slots> filling{};  // Per opcode: the batch being filled or none.
    bool flush_posted = false;
    bool failing_queued = false;  // fail_queued() is running: on_reply must not re-enter it.
    size_t operations_outstanding = 0;
};

AsyncClient::AsyncClient(boost::asio::io_context& io, AsyncOptions options)
    : impl_(std::make_shared<Impl>(io, options)) {}

AsyncClient::~AsyncClient() { impl_->close({Failure::closed, Result::ok, "client destroyed"}); }

void AsyncClient::async_connect(ConnectHandler handler) {
    impl_->fail_queued({Failure::closed, Result::ok, "reconnecting"});
    impl_->connection.async_open(std::move(handler));
}

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
