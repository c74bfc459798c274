// The synchronous jifen client: one connection, one request at a time, typed calls.
//
//   jifen::client::Client client({.host = "127.0.0.1", .port = 7300, .api_key = key});
//   client.connect();
//   auto reply = client.earn(jifen::client::make_earn(42, 100));
//   if (reply.result != 0) { ... a business refusal: jifen::to_string(Result{reply.result}) ... }
//
// Errors: business outcomes come back in the reply's `result` (never thrown). Failures with no
// per-operation answer (cannot connect, timeout, connection lost after every reconnect attempt,
// an error frame, HELLO refused) throw client::Error, whose status() names the Failure and, for
// refusals, the Result. A lost connection, a timeout, busy or shutting_down is retried
// Options::reconnect_attempts times by reconnecting and resending the SAME frame with the SAME
// transaction ids, so a mutation is never applied twice: an already-applied one comes back with
// reply_flag_replayed.
//
// Not thread-safe: one Client per thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "client/connection.hpp"
#include "client/error.hpp"
#include "client/operations.hpp"
#include "client/options.hpp"
#include "client/txn_id.hpp"
#include "protocol/wire.hpp"

namespace jifen::client {

struct HistoryPage {
    protocol::HistoryReplyHeader header;          // header.result: ok or member_not_found.
    std::vector<protocol::HistoryEntry> entries;  // Newest first.
};

class Client {
public:
    explicit Client(Options options);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects and says HELLO. Throws Error (connect, timeout, refused: auth_failed).
    void connect();
    void close();
    bool is_connected() const noexcept;
    const protocol::HelloReply& hello() const noexcept;
    const Options& options() const noexcept { return options_; }

    // A fresh random transaction id (what a zero txn id is replaced with).
    TxnId new_txn_id() noexcept { return txn_ids_.next(); }

    // One mutating operation. A zero txn id is replaced by a fresh one. Returns the server's
    // reply; throws Error only for the failures listed at the top of this file.
    protocol::OperationReply enroll(protocol::Operation operation);
    protocol::OperationReply update_member(protocol::Operation operation);
    protocol::OperationReply earn(protocol::Operation operation);
    protocol::OperationReply redeem(protocol::Operation operation);
    protocol::OperationReply hold(protocol::Operation operation);
    protocol::OperationReply capture(protocol::Operation operation);
    protocol::OperationReply release(protocol::Operation operation);
    protocol::OperationReply reverse(protocol::Operation operation);
    protocol::OperationReply transfer(protocol::Operation operation);
    protocol::OperationReply adjust(protocol::Operation operation);

    // A batch of operations of one mutating opcode, split into frames of at most the server's
    // batch_ops_max. Zero txn ids are replaced IN PLACE, so the caller sees the ids used. One reply
    // per operation, in order.
    std::vector<protocol::OperationReply> submit(protocol::Opcode opcode,
                                                 std::span<protocol::Operation> operations);

    protocol::BalanceReply balance(uint64_t member_id);
    std::vector<protocol::BalanceReply> balances(std::span<const uint64_t> member_ids);
    // Entries with seq < before_seq (0: from the newest), at most limit (1..history_entries_max).
    HistoryPage history(uint64_t member_id, uint64_t before_seq, uint32_t limit);
    protocol::AuditReply audit();
    protocol::StatsReply stats();
    protocol::PingReply ping();

    // Sends one frame of any opcode and returns the reply body (the header is checked: same
    // opcode, count, request id). Throws Error. Used by the calls above and by tests.
    std::vector<std::byte> call(protocol::Opcode opcode, uint16_t count,
                                std::span<const std::byte> body);

private:
    protocol::OperationReply mutate(protocol::Opcode opcode, protocol::Operation operation);
    void open_with_retries();
    Status run_once(protocol::Opcode opcode, uint16_t count, std::span<const std::byte> body,
                    std::vector<std::byte>* reply_body);

    Options options_;
    boost::asio::io_context io_;
    std::unique_ptr<Connection> connection_;
    TxnIdGenerator txn_ids_;
};

}  // namespace jifen::client
