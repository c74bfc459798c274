// jifend as an object: opens the log, recovers the shards, starts the shard threads, the log
// writer and the HTTP admin port, and stops them in order. main() and the tests both use it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/config.hpp"

namespace jifen::server {

struct StartupReport {
    uint32_t shard_count = 0;
    uint32_t shard_threads = 0;  // Core threads the shards run on (server/core_thread.hpp).
    uint16_t port = 0;           // The bound binary-protocol port (the ephemeral one for port 0).
    uint16_t http_port = 0;      // 0 when the HTTP admin port is disabled.
    uint64_t records_replayed = 0;
    uint64_t checkpoint_seq = 0;
    uint64_t replay_us = 0;
    uint64_t transfers_resumed = 0;    // Credit legs recovery found in flight.
    uint64_t memory_budget_bytes = 0;  // Anonymous memory at which writes are refused.
};

class Server {
public:
    // `config` must have passed validate(). shard_count 0 means one shard per core.
    explicit Server(Config config);
    ~Server();  // Calls stop().
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Opens and recovers the data directory, binds the listeners and starts every thread.
    // Throws wal::StartupError (the data directory), ConfigError (keys, TLS) or
    // std::system_error (a port that cannot be bound). Call once.
    StartupReport start(bool with_http_admin = true);

    // Stops accepting, lets in-flight requests finish (their replies are sent once durable),
    // stops the shard threads, then the log writer after its final commit. Idempotent.
    void stop();

    // Prometheus text and a JSON object from the shards' counters (the HTTP admin callbacks).
    std::string metrics_text() const;
    std::string stats_json() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace jifen::server
