// One framed protocol connection (TCP or TLS) on an Asio io_context: connect + HELLO, then frames
// sent with a per-frame reply handler, many in flight, replies matched by request_id. Both Client
// and AsyncClient are built on it; use it directly to send any opcode.
//
// Threading: single-threaded. Call every member on the io_context's thread (or before it runs);
// handlers run there too. Not copyable or movable.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "client/error.hpp"
#include "client/options.hpp"
#include "protocol/wire.hpp"

namespace jifen::client {

// Largest frames_in_flight_max: request ids carry the in-flight slot index in their low 16 bits.
inline constexpr uint32_t frames_in_flight_limit = 4'096;

class Connection {
public:
    using OpenHandler = std::function<void(const Status&)>;
    // Runs exactly once per sent frame: with ok() and the reply's header and body (valid only
    // during the call), or with the failure (then header and body are empty).
    using ReplyHandler = std::function<void(const Status&, const protocol::FrameHeader&,
                                            std::span<const std::byte>)>;

    Connection(boost::asio::io_context& io, const Options& options);
    ~Connection();  // Closes; pending handlers run with Failure::closed.
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Resolves, connects, does the TLS handshake if asked, and sends HELLO. The handler gets ok()
    // once the server accepted the key, else connect/timeout/refused (auth_failed, bad_version).
    // May be called again after a close to reconnect.
    void async_open(OpenHandler handler);

    bool is_open() const noexcept;
    // The server's HELLO reply (limits, scope, shard count) of the current session.
    const protocol::HelloReply& hello() const noexcept;

    // True when a frame can be sent now: open and fewer than frames_in_flight_max in flight.
    bool can_send() const noexcept;
    size_t frames_in_flight() const noexcept;

    // Sends one frame. The body bytes must stay valid and unchanged until the handler runs.
    // Precondition: can_send(). Never blocks; frames queue and leave in one gathered write.
    void send(protocol::Opcode opcode, uint16_t count, std::span<const std::byte> body,
              ReplyHandler handler);

    // Closes the socket. Every frame in flight gets `reason` (Failure::closed when none given).
    // Handlers may run inside this call.
    void close(Status reason = {Failure::closed, Result::ok, "closed by the client"});

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace jifen::client
