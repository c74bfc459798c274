// jifend's configuration: the embedded default, the JSON file (--config), and command-line
// overrides, merged in that order. docs/operations.md documents every key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.hpp"
#include "wal/log.hpp"

namespace jifen::server {

// One API key. Only the SHA-256 of the secret is stored (hex, 64 characters); the secret itself
// never appears in the configuration, the logs or the metrics.
struct ApiKey {
    std::string name;        // For logs and metrics, e.g. "pos-store-12".
    std::string sha256_hex;  // SHA-256 of the secret, lowercase hex.
    uint32_t scope = 0;      // protocol::Scope bits.
};

struct TlsConfig {
    std::filesystem::path cert_file;  // PEM; TLS is on when both files are set.
    std::filesystem::path key_file;
    bool enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

struct Config {
    std::string bind_address = "127.0.0.1";
    uint16_t port = 7300;       // Binary protocol.
    uint16_t http_port = 7301;  // HTTP admin and WebSocket feed.
    uint32_t shard_count = 0;   // 0: one per core (std::thread::hardware_concurrency()).
    // Threads the shards run on, each hosting shard_count / shard_threads of them. 0: one per
    // core, at most one per shard (server/core_thread.hpp).
    uint32_t shard_threads = 0;
    std::filesystem::path data_dir = "data";
    wal::Durability durability = wal::Durability::sync;
    uint32_t connections_max = 1024;     // Past this, new connections are refused.
    uint32_t idle_timeout_ms = 300'000;  // A connection silent this long is closed.
    uint32_t frame_timeout_ms =
        10'000;  // A started frame, and a new connection's HELLO, within this.
    uint64_t txn_index_slots = 1ull << 22;  // engine::TxnIndex capacity (ledger-wide).
    uint32_t tick_interval_ms = 100;        // How often a shard issues an Op::tick.
    // Anonymous memory at which writes are refused with txn_limit (server/memory_guard.hpp).
    // 0: 90% of the machine's memory, or of its cgroup's limit when lower.
    uint64_t memory_max_bytes = 0;
    engine::Config engine;  // Programme rules and table sizes per shard.
    wal::Options wal;       // data_dir/shard_count/durability copied in.
    std::vector<ApiKey> api_keys;
    // True when the keys came from the embedded default (the well-known development keys): the
    // server says so at startup and refuses to use them on a non-loopback address.
    bool default_keys = true;
    TlsConfig tls;
    std::string log_level = "info";
    // HTTP /metrics and /stats without an API key (for a scraper on a trusted network).
    bool metrics_public = false;
};

// A configuration the operator must fix: the message names the key and what is wrong with it.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The configuration jifend runs with when given none: loopback, development keys.
Config default_config();

// Applies a JSON document (the --config file's text) on top of `config`. Unknown keys, wrong
// types and out-of-range values throw ConfigError naming the key.
void apply_json(Config* config, std::string_view json_text);

// Reads and applies a file; throws ConfigError when it cannot be read or parsed.
void apply_file(Config* config, const std::filesystem::path& path);

// Final checks after all sources are merged (ports, sizes, keys, TLS files); throws ConfigError.
void validate(const Config& config);

// The configuration as a JSON document that apply_json() reads back to an equal Config (apart
// from default_keys, which any api_keys array clears). --print-default-config prints this.
std::string to_json(const Config& config);

// True for an IPv4 address in 127.0.0.0/8 or the IPv6 address ::1.
bool is_loopback_address(std::string_view address);

// True when `sha256_hex` is the digest of one of the well-known development secrets
// ("dev-admin-key", "dev-pos-key", "dev-read-key"); validate() refuses those off loopback.
bool is_development_key(std::string_view sha256_hex);

}  // namespace jifen::server
