// The pipelined jifen client for high throughput: operations are queued per opcode, packed into
// frames of up to batch_ops_max operations, and up to frames_in_flight_max frames travel at once;
// each operation's handler runs with its own reply. Everything submitted during one turn of the
// io_context leaves together (batches are sealed when full or on the next turn), so a closed-loop
// caller gets large batches without any added delay.
//
//   boost::asio::io_context io;
//   jifen::client::AsyncClient client(io, {});
//   client.async_connect([&](const Status& status) {
//       client.submit(Opcode::earn, make_earn(42, 100),
//                     [](const Status& s, const OperationReply& reply) { ... });
//   });
//   io.run();
//
// Threading: single-threaded like Connection. Call members on the io_context's thread; handlers run
// there. Memory: frame buffers and handler slots are allocated once at construction; submitting
// an operation allocates nothing when its handler fits std::function's small buffer (a lambda
// capturing up to two pointers does).
//
// Reconnecting: when the connection breaks or a reply is late (closed, timeout), the client
// reconnects by itself after Options::reconnect_backoff (doubling per failed attempt, at most
// reconnect_backoff_max), up to reconnect_attempts attempts per outage, and sends again every
// frame that got no reply: the same bytes, so the same transaction ids (an operation the server
// had applied is answered with its original outcome and reply_flag_replayed), oldest first, before
// anything newer. Balance queries are simply asked again. Operations submitted meanwhile are
// queued and leave once connected. A frame is sent again at most reconnect_attempts times.
// reconnect_attempts = 0 turns this off.
//
// Failures: a handler gets !status.ok() when its frame was refused as a whole (an error frame), or
// got no reply and will not be sent again: reconnecting failed, the frame's resends are used up, or
// the caller closed. Then, for closed/timeout, the operation may or may not have been applied:
// resend it later with the same txn id (keep it: set it with new_txn_id() before submitting).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>

#include "client/connection.hpp"
#include "client/error.hpp"
#include "client/operations.hpp"
#include "client/options.hpp"
#include "client/txn_id.hpp"
#include "protocol/wire.hpp"

namespace jifen::client {

struct AsyncOptions : Options {
    // Operations per frame, capped by the server's batch_ops_max from HELLO.
    uint32_t batch_ops_max = 256;
};

class AsyncClient {
public:
    using ConnectHandler = std::function<void(const Status&)>;
    using OperationHandler = std::function<void(const Status&, const protocol::OperationReply&)>;
    using BalanceHandler = std::function<void(const Status&, const protocol::BalanceReply&)>;

    AsyncClient(boost::asio::io_context& io, AsyncOptions options);
    ~AsyncClient();  // Closes; queued and in-flight handlers run with Failure::closed.
    AsyncClient(const AsyncClient&) = delete;
    AsyncClient& operator=(const AsyncClient&) = delete;

    // Connects and says HELLO (see Connection::async_open): one attempt, whose outcome the
    // handler gets. Called again after close() or a failure that ended in giving up, it starts
    // over. Called while connected or reconnecting, it replaces the connection at once: what got
    // no reply is sent again on the new one; if the new one fails, everything outstanding fails.
    void async_connect(ConnectHandler handler);
    bool is_connected() const noexcept;
    const protocol::HelloReply& hello() const noexcept;

    // Queues one mutating operation (a zero txn id is replaced by a fresh one). Returns false
    // before async_connect, after close() or after giving up on reconnecting, or when all
    // frames_in_flight_max + async_filling_batches_max preallocated batches are full, in flight or
    // waiting to be resent (one may be filling per batchable opcode): nothing is queued and the
    // handler is not called (back-pressure: submit again from a completion). Otherwise the handler
    // runs exactly once. While connecting or reconnecting, operations are queued and leave once
    // connected.
    bool submit(protocol::Opcode opcode, const protocol::Operation& operation,
                OperationHandler handler);
    // Queues a balance query, batched like operations.
    bool balance(uint64_t member_id, BalanceHandler handler);

    // Seals every partly filled batch and sends what the in-flight window allows. Runs by itself
    // once per io_context turn after a submit; call it to send immediately.
    void flush();

    // Operations queued or in flight whose handler has not started: inside a handler its own
    // operation no longer counts, so the last handler sees 0.
    size_t operations_outstanding() const noexcept;
    size_t frames_in_flight() const noexcept;

    TxnId new_txn_id() noexcept;

    // Closes the connection; every outstanding handler runs with Failure::closed.
    void close();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace jifen::client
