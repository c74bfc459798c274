// Connection options shared by the synchronous Client and the pipelined AsyncClient.
#pragma once

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
    // Client: on a broken connection or timeout, reconnect and resend (same transaction ids) this
    // many times before throwing. AsyncClient does not reconnect by itself.
    uint32_t reconnect_attempts = 3;
    std::chrono::milliseconds reconnect_backoff{50};  // Doubles per attempt.

    // Ask the server to serve this connection on this shard (docs/protocol.md, "Shards"): a
    // client that sends each member's operations on the connection of the member's shard
    // (protocol::shard_of) saves the server a hand-off between threads. hello().shard says which
    // shard serves the connection; the server may keep it where it is (TLS).
    std::optional<uint16_t> shard;

    // Frames one connection may have in flight (sent, reply not yet read). At most 4096.
    uint32_t frames_in_flight_max = 64;
};

}  // namespace jifen::client
