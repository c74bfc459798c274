// The HTTP admin port (config.http_port): health, Prometheus metrics, stats and the effective
// configuration, served by Boost.Beast on a thread of its own, away from the shard threads.
//
//   GET /health   no key              200 {"status":"ok",...}; 503 with status storage_full or
//                                     log_failed while writes are refused (callbacks.write_state)
//   GET /metrics  admin key*          200 Prometheus text (callbacks.metrics_text)
//   GET /stats    admin key*          200 JSON (callbacks.stats_json)
//   GET /config   admin key           200 the effective configuration (to_json; key digests only)
// (*) no key needed when config.metrics_public is true.
// The key goes in `Authorization: Bearer <secret>`. No key: 401; a key without admin scope: 403;
// unknown path: 404; a method other than GET/HEAD: 405. Errors are JSON {"error": "..."}.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "server/auth.hpp"
#include "server/config.hpp"

namespace jifen::server {

// Limits of the admin port. Requests are small GETs; anything larger is refused (413).
inline constexpr uint32_t http_header_bytes_max = 8 * 1024;
inline constexpr uint32_t http_body_bytes_max = 4 * 1024;
// A request must arrive, and a response be written, within this; then the connection is closed.
inline constexpr uint32_t http_timeout_ms = 10'000;
// Admin connections open at once; past this, new ones are closed on accept.
inline constexpr uint32_t http_connections_max = 64;

struct HttpAdminCallbacks {
    // Both run on the HTTP thread, so they must be safe to call concurrently with the shards
    // (read atomics or ask the shards; never touch shard state directly). Either may be empty:
    // the endpoint then answers 503.
    std::function<std::string()> metrics_text;  // Prometheus text exposition format 0.0.4.
    std::function<std::string()> stats_json;    // One JSON object.
    // "ok", or why writes are refused: "storage_full", "log_failed". Empty: always "ok".
    std::function<std::string_view()> write_state;
};

class HttpAdmin {
public:
    using Callbacks = HttpAdminCallbacks;

    // Copies what it needs from `config` and `keys`; nothing is bound until start().
    // With config.tls.enabled() the port speaks HTTPS only (throws ConfigError if the files
    // cannot be loaded).
    HttpAdmin(const Config& config, const KeyRing& keys, Callbacks callbacks);
    ~HttpAdmin();  // Calls stop().
    HttpAdmin(const HttpAdmin&) = delete;
    HttpAdmin& operator=(const HttpAdmin&) = delete;

    // Binds config.bind_address:config.http_port, starts the thread, and returns the bound port
    // (the ephemeral one when http_port is 0). Throws std::system_error when the bind fails.
    // Call at most once.
    uint16_t start();

    // Stops accepting, closes every connection and joins the thread. Idempotent; callable from
    // any thread except the HTTP thread itself (i.e. not from a callback).
    void stop();

private:
    struct Impl;  // Beast lives in http_admin.cpp alone: it is slow to compile.
    std::unique_ptr<Impl> impl_;
};

}  // namespace jifen::server
