// A tiny in-process server for client tests: accepts on an ephemeral loopback port and runs a
// test-written script per connection on its own thread, with blocking frame reads and writes.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "protocol/wire.hpp"

namespace jifen::testing {

struct Frame {
    protocol::FrameHeader header;
    std::vector<std::byte> body;

    template <typename T>
    T item(size_t index) const {
        T value;
        std::memcpy(&value, body.data() + index * sizeof(T), sizeof(T));
        return value;
    }
};

using tcp = boost::asio::ip::tcp;

// Reads one frame; returns false at end of stream or on a broken frame.
inline bool read_frame(tcp::socket& socket, Frame* frame) {
    boost::system::error_code error;
    boost::asio::read(socket, boost::asio::buffer(&frame->header, sizeof(frame->header)), error);
    if (error || protocol::check_header(frame->header) != Result::ok) {
        return false;
    }
    frame->body.resize(frame->header.body_bytes);
    boost::asio::read(socket, boost::asio::buffer(frame->body), error);
    return !error && protocol::check_body(frame->header, frame->body) == Result::ok;
}

// Writes a reply frame (flag_response set) for a request id.
inline void write_reply(tcp::socket& socket, protocol::Opcode opcode, uint64_t request_id,
                        uint16_t count, std::span<const std::byte> body) {
    protocol::FrameHeader header;
    header.opcode = static_cast<uint16_t>(opcode);
    header.request_id = request_id;
    header.count = count;
    header.flags = protocol::flag_response;
    protocol::seal(&header, body);
    std::vector<boost::asio::const_buffer> buffers{boost::asio::buffer(&header, sizeof(header)),
                                                   boost::asio::buffer(body.data(), body.size())};
    boost::system::error_code error;
    boost::asio::write(socket, buffers, error);
}

template <typename T>
void write_items(tcp::socket& socket, const Frame& request, std::span<const T> items) {
    write_reply(socket, static_cast<protocol::Opcode>(request.header.opcode),
                request.header.request_id, static_cast<uint16_t>(items.size()),
                std::as_bytes(items));
}

inline void write_error(tcp::socket& socket, uint64_t request_id, Result result,
                        std::string_view message) {
    std::vector<std::byte> body(sizeof(protocol::ErrorReply) + message.size());
    protocol::ErrorReply error;
    error.result = static_cast<uint32_t>(result);
    error.message_bytes = static_cast<uint32_t>(message.size());
    std::memcpy(body.data(), &error, sizeof(error));
    std::memcpy(body.data() + sizeof(error), message.data(), message.size());
    write_reply(socket, protocol::Opcode::error, request_id, 1, body);
}

// Reads HELLO and answers it: ok when the key matches, else auth_failed. Returns the request.
inline protocol::HelloRequest answer_hello(tcp::socket& socket, std::string_view key = "",
                                           uint32_t shard_count = 2) {
    Frame frame;
    if (!read_frame(socket, &frame) ||
        frame.header.opcode != static_cast<uint16_t>(protocol::Opcode::hello)) {
        return {};
    }
    const auto request = frame.item<protocol::HelloRequest>(0);
    protocol::HelloReply reply;
    const bool key_ok = key.empty() || std::string_view(request.api_key) == key;
    reply.result = static_cast<uint32_t>(key_ok ? Result::ok : Result::auth_failed);
    reply.scope = protocol::scope_admin;
    reply.shard_count = shard_count;
    write_items(socket, frame, std::span<const protocol::HelloReply>(&reply, 1));
    return request;
}

// Runs `script` once per accepted connection, the n-th connection with scripts[n].
class FakeServer {
public:
    using Script = std::function<void(tcp::socket&)>;

    explicit FakeServer(std::vector<Script> scripts)
        : acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)),
          scripts_(std::move(scripts)) {
        thread_ = std::thread([this] {
            for (Script& script : scripts_) {
                tcp::socket socket(io_);
                boost::system::error_code error;
                acceptor_.accept(socket, error);
                if (error || stopping_) {
                    return;
                }
                script(socket);
            }
        });
    }

    // Unblocks a pending accept with a throwaway connection (closing the acceptor from another
    // thread does not reliably wake accept on Linux), then waits for the scripts to finish.
    ~FakeServer() {
        stopping_ = true;
        boost::system::error_code ignored;
        tcp::socket wake(io_);
        wake.connect(acceptor_.local_endpoint(), ignored);
        thread_.join();
    }

    uint16_t port() const { return acceptor_.local_endpoint().port(); }

private:
    boost::asio::io_context io_;
    tcp::acceptor acceptor_;
    std::vector<Script> scripts_;
    std::atomic<bool> stopping_ = false;
    std::thread thread_;
};

}  // namespace jifen::testing
