// Connection options shared by the synchronous Client and the pipelined AsyncClient.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace jifen::client {

// The development admin key of jifend's embedded default configuration.
inline constexpr const char* dev_admin_key = "dev-admin-key";

struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 7300;
    std::string api_key = dev_admin_key;       // At most 64 bytes.
    std::string client_name = "jifen-client";  // At most 32 bytes; shows in server logs.

    // TLS (boost::asio::ssl). With tls_ca_file empty the system's default CA paths are used.
    bool tls = false;
    std::string tls_ca_file;
    bool tls_insecure_skip_verify = false;  // Tests with self-signed certificates only.

    std::chrono::milliseconds connect_timeout{5'000};   // Resolve + connect + TLS + HELLO.
    std::chrono::milliseconds request_timeout{10'000};  // Oldest request in flight, per frame.
    // On a broken connection or timeout, reconnect and resend what got no reply, with the SAME
    // transaction ids (the server answers an operation it had applied as replayed). Client: this
    // many resends of a request, then it throws. AsyncClient: this many connection attempts per
    // outage, and this many resends of each frame, then the operations complete with
    // Failure::closed. 0 turns reconnecting off. The default 8, with waits of 50 ms doubling up
    // to 2 s, rides over a server restart of about 7 s.
    uint32_t reconnect_attempts = 8;
    std::chrono::milliseconds reconnect_backoff{50};  // Before the first attempt; doubles after.
    std::chrono::milliseconds reconnect_backoff_max{2'000};  // The doubling stops here.

    // Ask the server to serve this connection on this shard (docs/protocol.md, "Shards"): a
    // client that sends each member's operations on the connection of the member's shard
    // (protocol::shard_of) saves the server a hand-off between threads. hello().shard says which
    // shard serves the connection; the server may keep it where it is (TLS).
    std::optional<uint16_t> shard;

    // Frames one connection may have in flight (sent, reply not yet read). At most 4096.
    uint32_t frames_in_flight_max = 64;
};

// Batches an AsyncClient preallocates beyond its in-flight window (frames_in_flight_max): one
// being filled per batchable opcode (the ten mutations and balance), so filling never waits for
// the window.
inline constexpr uint32_t async_filling_batches_max = 11;

// The wait before reconnect attempt `attempt` (0 for the first): reconnect_backoff doubled per
// earlier attempt, never more than reconnect_backoff_max.
inline std::chrono::milliseconds reconnect_delay(const Options& options, uint32_t attempt) {
    constexpr uint32_t doublings_max = 20;  // Keeps the shift far from overflowing.
    const auto doubled =
        options.reconnect_backoff * (int64_t{1} << std::min(attempt, doublings_max));
    return std::min(doubled, std::max(options.reconnect_backoff_max, options.reconnect_backoff));
}

}  // namespace jifen::client
