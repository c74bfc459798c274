// The synchronous client: a Connection driven by a private io_context, one request at a time,
// with reconnect-and-resend on a lost connection (same bytes, same transaction ids).
#include "client/client.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

namespace jifen::client {

namespace {

using Clock = std::chrono::steady_clock;

// Extra time the backstop deadline allows beyond the Connection's own timers, which normally
// fire first and report the precise reason.
constexpr auto deadline_slack = std::chrono::seconds(1);

// An error frame shutting_down: the server read the frame while stopping and did not start it.
bool is_server_stopping(const Status& status) {
    return status.failure == Failure::refused && status.result == Result::shutting_down;
}

bool is_retryable(const Status& status) {
    return status.failure == Failure::closed || status.failure == Failure::timeout ||
           is_server_stopping(status) ||
           (status.failure == Failure::refused && status.result == Result::busy);
}

template <typename Reply>
Reply read_single(const std::vector<std::byte>& body) {
    if (body.size() != sizeof(Reply)) {
        throw Error({Failure::protocol, Result::ok, "reply has the wrong size"});
    }
    Reply reply;
    std::memcpy(&reply, body.data(), sizeof(reply));
    return reply;
}

}  // namespace

Client::Client(Options options) : options_(std::move(options)) {}

Client::~Client() { close(); }

bool Client::is_connected() const noexcept { return connection_ && connection_->is_open(); }

const protocol::HelloReply& Client::hello() const noexcept {
    static const protocol::HelloReply none{};
    return connection_ ? connection_->hello() : none;
}

void Client::close() {
    if (connection_) {
        connection_->close();
        // Let the closed session's cancelled operations finish so nothing is left in io_.
        io_.restart();
        io_.poll();
    }
}

// Runs io_ until `done` or the deadline. False when the deadline passed (or nothing was left to
// run, which only a bug can cause since an open connection always has a read pending).
template <typename Done>
static bool run_until(boost::asio::io_context& io, const Done& done, Clock::time_point deadline) {
    io.restart();
    while (!done()) {
        if (io.run_one_until(deadline) == 0) {
            if (done()) {
                return true;
            }
            return false;
        }
    }
    return true;
}

void Client::connect() {
    Status status;
    for (uint32_t attempt = 0;; ++attempt) {
        if (!connection_) {
            connection_ = std::make_unique<Connection>(io_, options_);
        }
        bool done = false;
        connection_->async_open([&](const Status& result) {
            status = result;
            done = true;
        });
        if (!run_until(
                io_, [&] { return done; },
                Clock::now() + options_.connect_timeout + deadline_slack)) {
            connection_->close({Failure::timeout, Result::ok, "connect timed out"});
        }
        if (status.ok()) {
            return;
        }
        // A server that is down, restarting or at its connection limit may take us next time; a
        // refused key or version would be refused again.
        const bool retryable = status.failure == Failure::connect || is_retryable(status);
        if (!retryable || attempt >= options_.reconnect_attempts) {
            throw Error(status);
        }
        std::this_thread::sleep_for(reconnect_delay(options_, attempt));
    }
}

Status Client::run_once(protocol::Opcode opcode, uint16_t count, std::span<const std::byte> body,
                        std::vector<std::byte>* reply_body) {
    Status status;
    bool done = false;
    connection_->send(
        opcode, count, body,
        [&](const Status& result, const protocol::FrameHeader& header,
            std::span<const std::byte> reply) {
            status = result;
            if (result.ok() && header.count != count) {
                status = {Failure::protocol, Result::ok, "reply count differs from the request"};
            }
            reply_body->assign(reply.begin(), reply.end());
            done = true;
        });
    if (!run_until(
            io_, [&] { return done; }, Clock::now() + options_.request_timeout + deadline_slack)) {
        connection_->close({Failure::timeout, Result::ok, "no reply within the request timeout"});
    }
    return status;
}

std::vector<std::byte> Client::call(protocol::Opcode opcode, uint16_t count,
                                    std::span<const std::byte> body) {
    std::vector<std::byte> reply;
    for (uint32_t attempt = 0;; ++attempt) {
        if (!is_connected()) {
            connect();
        }
        const Status status = run_once(opcode, count, body, &reply);
        if (status.ok()) {
            return reply;
        }
        if (!is_retryable(status) || attempt >= options_.reconnect_attempts) {
            throw Error(status);
        }
        if (is_server_stopping(status)) {
            // This server is going away: the retry belongs on a new connection (to it restarted).
            connection_->close(status);
        }
        std::this_thread::sleep_for(reconnect_delay(options_, attempt));
    }
}

std::vector<protocol::OperationReply> Client::submit(protocol::Opcode opcode,
                                                     std::span<protocol::Operation> operations) {
    if (!protocol::is_mutation(opcode)) {
        throw Error({Failure::protocol, Result::unknown_opcode, "submit takes mutating opcodes"});
    }
    for (protocol::Operation& operation : operations) {
        if (txn_id_of(operation).is_zero()) {
            set_txn_id(&operation, txn_ids_.next());
        }
    }
    if (!is_connected()) {
        connect();
    }
    const size_t frame_ops_max =
        std::clamp<size_t>(hello().batch_ops_max, 1, protocol::batch_ops_max);
    std::vector<protocol::OperationReply> replies;
    replies.reserve(operations.size());
    for (size_t first = 0; first < operations.size(); first += frame_ops_max) {
        const size_t count = std::min(frame_ops_max, operations.size() - first);
        const auto body = std::as_bytes(operations.subspan(first, count));
        const std::vector<std::byte> reply = call(opcode, static_cast<uint16_t>(count), body);
        if (reply.size() != count * sizeof(protocol::OperationReply)) {
            throw Error({Failure::protocol, Result::ok, "operation replies have the wrong size"});
        }
        const size_t before = replies.size();
        replies.resize(before + count);
        std::memcpy(replies.data() + before, reply.data(), reply.size());
    }
    return replies;
}

protocol::OperationReply Client::mutate(protocol::Opcode opcode, protocol::Operation operation) {
    return submit(opcode, std::span(&operation, 1)).front();
}

protocol::OperationReply Client::enroll(protocol::Operation operation) {
    return mutate(protocol::Opcode::enroll, operation);
}
protocol::OperationReply Client::update_member(protocol::Operation operation) {
    return mutate(protocol::Opcode::update_member, operation);
}
protocol::OperationReply Client::earn(protocol::Operation operation) {
    return mutate(protocol::Opcode::earn, operation);
}
protocol::OperationReply Client::redeem(protocol::Operation operation) {
    return mutate(protocol::Opcode::redeem, operation);
}
protocol::OperationReply Client::hold(protocol::Operation operation) {
    return mutate(protocol::Opcode::hold, operation);
}
protocol::OperationReply Client::capture(protocol::Operation operation) {
    return mutate(protocol::Opcode::capture, operation);
}
protocol::OperationReply Client::release(protocol::Operation operation) {
    return mutate(protocol::Opcode::release, operation);
}
protocol::OperationReply Client::reverse(protocol::Operation operation) {
    return mutate(protocol::Opcode::reverse, operation);
}
protocol::OperationReply Client::transfer(protocol::Operation operation) {
    return mutate(protocol::Opcode::transfer, operation);
}
protocol::OperationReply Client::adjust(protocol::Operation operation) {
    return mutate(protocol::Opcode::adjust, operation);
}

protocol::BalanceReply Client::balance(uint64_t member_id) {
    return balances(std::span(&member_id, 1)).front();
}

std::vector<protocol::BalanceReply> Client::balances(std::span<const uint64_t> member_ids) {
    std::vector<protocol::BalanceReply> replies;
    replies.reserve(member_ids.size());
    std::vector<protocol::BalanceRequest> requests;
    for (size_t first = 0; first < member_ids.size(); first += protocol::batch_ops_max) {
        const size_t count = std::min<size_t>(protocol::batch_ops_max, member_ids.size() - first);
        requests.assign(count, {});
        for (size_t index = 0; index < count; ++index) {
            requests[index].member_id = member_ids[first + index];
        }
        const std::vector<std::byte> reply =
            call(protocol::Opcode::balance, static_cast<uint16_t>(count),
                 std::as_bytes(std::span(requests)));
        if (reply.size() != count * sizeof(protocol::BalanceReply)) {
            throw Error({Failure::protocol, Result::ok, "balance replies have the wrong size"});
        }
        const size_t before = replies.size();
        replies.resize(before + count);
        std::memcpy(replies.data() + before, reply.data(), reply.size());
    }
    return replies;
}

HistoryPage Client::history(uint64_t member_id, uint64_t before_seq, uint32_t limit) {
    protocol::HistoryRequest request;
    request.member_id = member_id;
    request.before_seq = before_seq;
    request.limit = limit;
    const std::vector<std::byte> reply =
        call(protocol::Opcode::history, 1, std::as_bytes(std::span(&request, 1)));
    HistoryPage page;
    if (reply.size() < sizeof(page.header)) {
        throw Error({Failure::protocol, Result::ok, "history reply too short"});
    }
    std::memcpy(&page.header, reply.data(), sizeof(page.header));
    if (reply.size() !=
        sizeof(page.header) + size_t{page.header.count} * sizeof(protocol::HistoryEntry)) {
        throw Error({Failure::protocol, Result::ok, "history reply has the wrong size"});
    }
    page.entries.resize(page.header.count);
    if (page.header.count > 0) {
        std::memcpy(page.entries.data(), reply.data() + sizeof(page.header),
                    reply.size() - sizeof(page.header));
    }
    return page;
}

protocol::AuditReply Client::audit() {
    return read_single<protocol::AuditReply>(call(protocol::Opcode::audit, 1, {}));
}

protocol::StatsReply Client::stats() {
    return read_single<protocol::StatsReply>(call(protocol::Opcode::stats, 1, {}));
}

protocol::PingReply Client::ping() {
    return read_single<protocol::PingReply>(call(protocol::Opcode::ping, 1, {}));
}

}  // namespace jifen::client
