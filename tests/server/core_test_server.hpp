// Test helpers for jifend's core: an in-process Server on an ephemeral port with a temporary data
// directory, and a blocking client that speaks raw frames (so tests can also send broken ones).
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/wire.hpp"
#include "server/config.hpp"
#include "server/server.hpp"

namespace jifen::server::testing {

inline constexpr std::string_view admin_key = "dev-admin-key";
inline constexpr std::string_view pos_key = "dev-pos-key";
inline constexpr std::string_view read_key = "dev-read-key";

// A fresh directory under the system temp dir, removed when the object goes.
class TempDir {
public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "jifen-core-XXXXXX").string();
        const char* made = ::mkdtemp(pattern.data());
        EXPECT_NE(made, nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Small tables: tests need a few thousand members, not millions.
inline Config test_config(const std::filesystem::path& data_dir, uint32_t shard_count) {
    Config config = default_config();
    config.data_dir = data_dir;
    config.port = 0;
    config.http_port = 0;
    config.shard_count = shard_count;
    config.txn_index_slots = 1u << 18;
    config.engine.members_per_shard_max = 1u << 14;
    config.engine.holds_per_shard_max = 1u << 12;
    config.engine.txns_per_shard_max = 1u << 17;
    config.engine.lots_per_shard_max = 1u << 16;
    config.wal.map_bytes_initial = 64ull << 20;
    config.wal.queue_records_per_shard = 1u << 16;
    return config;
}

class RunningServer {
public:
    explicit RunningServer(Config config) : server_(std::make_unique<Server>(std::move(config))) {
        report_ = server_->start(false);
    }
    ~RunningServer() { stop(); }
    void stop() {
        if (server_) {
            server_->stop();
            server_.reset();
        }
    }
    uint16_t port() const { return report_.port; }
    const StartupReport& report() const { return report_; }
    std::string stats_json() const { return server_->stats_json(); }
    // The value of one metric of the Prometheus text, or -1 when it is missing.
    int64_t metric(std::string_view name) const {
        const std::string text = server_->metrics_text();
        const std::string line_start = std::string(name) + " ";
        for (size_t at = 0; at < text.size();) {
            const size_t end = text.find('\n', at);
            const std::string_view line(text.data() + at,
                                        (end == std::string::npos ? text.size() : end) - at);
            if (line.starts_with(line_start)) {
                return std::stoll(std::string(line.substr(line_start.size())));
            }
            at = end == std::string::npos ? text.size() : end + 1;
        }
        return -1;
    }

private:
    std::unique_ptr<Server> server_;
    StartupReport report_;
};

struct Frame {
    protocol::FrameHeader header;
    std::vector<std::byte> body;

    template <typename T>
    T item(size_t index = 0) const {
        T value;
        EXPECT_GE(body.size(), (index + 1) * sizeof(T));
        std::memcpy(&value, body.data() + index * sizeof(T), sizeof(T));
        return value;
    }
    Result error_result() const { return static_cast<Result>(item<protocol::ErrorReply>().result); }
    std::string error_message() const {
        const auto error = item<protocol::ErrorReply>();
        return std::string(reinterpret_cast<const char*>(body.data()) + sizeof(error),
                           error.message_bytes);
    }
};

// A blocking client with a receive timeout, so a missing reply fails the test instead of hanging.
class RawClient {
public:
    // receive_buffer_bytes: a small socket receive buffer (set before connecting, so the
    // window stays small), for a client that reads slowly or not at all.
    explicit RawClient(uint16_t port, int receive_buffer_bytes = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (receive_buffer_bytes > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes,
                         sizeof(receive_buffer_bytes));
        }
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
        timeval timeout{};
        timeout.tv_sec = 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return connected_; }

    void send_bytes(std::span<const std::byte> bytes) {
        size_t sent = 0;
        while (sent < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) {
                return;
            }
            sent += static_cast<size_t>(n);
        }
    }

    // Not inlined: GCC 12 otherwise warns about the copies for the empty-body call sites.
    [[gnu::noinline]] static std::vector<std::byte> encode(protocol::Opcode opcode,
                                                           uint64_t request_id, uint16_t count,
                                                           std::span<const std::byte> body) {
        protocol::FrameHeader header;
        header.opcode = static_cast<uint16_t>(opcode);
        header.request_id = request_id;
        header.count = count;
        protocol::seal(&header, body);
        std::vector<std::byte> bytes(sizeof(header) + body.size());
        std::memcpy(bytes.data(), &header, sizeof(header));
        for (size_t i = 0; i < body.size(); ++i) {
            bytes[sizeof(header) + i] = body[i];
        }
        return bytes;
    }

    void send_frame(protocol::Opcode opcode, uint64_t request_id, uint16_t count,
                    std::span<const std::byte> body) {
        send_bytes(encode(opcode, request_id, count, body));
    }

    template <typename T>
    void send_items(protocol::Opcode opcode, uint64_t request_id, std::span<const T> items) {
        send_frame(opcode, request_id, static_cast<uint16_t>(items.size()), std::as_bytes(items));
    }

    // nullopt when the server closed the connection (or nothing came within the timeout).
    std::optional<Frame> read_frame() {
        Frame frame;
        if (!read_exact(&frame.header, sizeof(frame.header))) {
            return std::nullopt;
        }
        EXPECT_EQ(protocol::check_header(frame.header), Result::ok);
        EXPECT_NE(frame.header.flags & protocol::flag_response, 0);
        frame.body.resize(frame.header.body_bytes);
        if (!read_exact(frame.body.data(), frame.body.size())) {
            return std::nullopt;
        }
        EXPECT_EQ(protocol::check_body(frame.header, frame.body), Result::ok);
        return frame;
    }

    // True when the server closed the connection (EOF), false on data or timeout.
    bool closed_by_server() {
        std::byte byte;
        return ::recv(fd_, &byte, 1, 0) == 0;
    }

    // A HELLO frame; with `shard` it asks to be served there (hello_flag_shard).
    static std::vector<std::byte> encode_hello(std::string_view key,
                                               std::optional<uint16_t> shard = std::nullopt) {
        protocol::HelloRequest request;
        std::memcpy(request.client_name, "core-test", 9);
        std::memcpy(request.api_key, key.data(), std::min(key.size(), sizeof(request.api_key)));
        if (shard) {
            request.flags = protocol::hello_flag_shard;
            request.shard = *shard;
        }
        return encode(protocol::Opcode::hello, 1, 1, std::as_bytes(std::span(&request, 1)));
    }

    protocol::HelloReply hello(std::string_view key, std::optional<uint16_t> shard = std::nullopt) {
        send_bytes(encode_hello(key, shard));
        const auto frame = read_frame();
        EXPECT_TRUE(frame.has_value());
        return frame ? frame->item<protocol::HelloReply>() : protocol::HelloReply{};
    }

    // Sends one frame of operations and returns its replies.
    std::vector<protocol::OperationReply> operations(protocol::Opcode opcode,
                                                     std::span<const protocol::Operation> ops) {
        const uint64_t request_id = next_request_id_++;
        send_items(opcode, request_id, ops);
        const auto frame = read_frame();
        std::vector<protocol::OperationReply> replies;
        if (!frame) {
            ADD_FAILURE() << "no reply to " << protocol::to_string(opcode);
            return replies;
        }
        EXPECT_EQ(frame->header.request_id, request_id);
        EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(opcode));
        for (size_t i = 0; i < frame->header.count; ++i) {
            replies.push_back(frame->item<protocol::OperationReply>(i));
        }
        return replies;
    }

    protocol::OperationReply operation(protocol::Opcode opcode, const protocol::Operation& op) {
        const auto replies = operations(opcode, std::span<const protocol::Operation>(&op, 1));
        return replies.empty() ? protocol::OperationReply{} : replies[0];
    }

    protocol::BalanceReply balance(uint64_t member_id) {
        protocol::BalanceRequest request{member_id};
        const uint64_t request_id = next_request_id_++;
        send_items(protocol::Opcode::balance, request_id,
                   std::span<const protocol::BalanceRequest>(&request, 1));
        const auto frame = read_frame();
        return frame ? frame->item<protocol::BalanceReply>() : protocol::BalanceReply{};
    }

    protocol::AuditReply audit() {
        send_frame(protocol::Opcode::audit, next_request_id_++, 1, {});
        const auto frame = read_frame();
        return frame ? frame->item<protocol::AuditReply>() : protocol::AuditReply{};
    }

private:
    bool read_exact(void* data, size_t size) {
        auto* bytes = static_cast<char*>(data);
        size_t got = 0;
        while (got < size) {
            const ssize_t n = ::recv(fd_, bytes + got, size - got, 0);
            if (n <= 0) {
                return false;
            }
            got += static_cast<size_t>(n);
        }
        return true;
    }

    int fd_ = -1;
    bool connected_ = false;
    uint64_t next_request_id_ = 100;
};

inline protocol::Operation make_operation(uint64_t txn_id, uint64_t member_id, int64_t points) {
    protocol::Operation op;
    op.txn_id_lo = txn_id;
    op.member_id = member_id;
    op.points = points;
    return op;
}

inline Result result_of(const protocol::OperationReply& reply) {
    return static_cast<Result>(reply.result);
}

}  // namespace jifen::server::testing
