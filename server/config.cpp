// jifend's configuration: the embedded default, the JSON reader (simdjson DOM, error codes only),
// the JSON writer behind --print-default-config, and the final validation.
#include "server/config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "protocol/wire.hpp"
#include "wal/limits.hpp"

namespace jifen::server {
namespace {

namespace dom = simdjson::dom;

// Limits checked by validate(); docs/operations.md repeats them. The log's own limits
// (wal/limits.hpp) are checked here too, so that a value the log would clamp is refused instead.
constexpr uint32_t connections_max_limit = 1u << 20;
// Longest a configured timeout or interval may be: one day.
constexpr uint32_t timeout_ms_max = 24 * 3600 * 1000;
constexpr uint64_t txn_index_slots_min = 16;
constexpr uint64_t txn_index_slots_max = 1ull << 34;
// Points cannot outlive a century of expiry; larger values are typos.
constexpr uint32_t expiry_months_max = 1200;
constexpr uint32_t table_entries_max = 1u << 30;
constexpr uint32_t key_name_chars_max = 64;

struct DevelopmentKey {
    std::string_view name;
    std::string_view secret;  // Well known on purpose: these keys are for a laptop, not a network.
    std::string_view sha256_hex;
    uint32_t scope;
};

// The digests are SHA-256 of the secrets; tests/server/support_config_test.cpp recomputes them.
constexpr std::array<DevelopmentKey, 3> development_keys = {{
    {"dev-admin", "dev-admin-key",
     "df76ff796f70d2c9cb055ea6280553caa27eda26b70e01082c160de75a05a4a9",
     protocol::scope_admin | protocol::scope_pos | protocol::scope_read},
    {"dev-pos", "dev-pos-key", "8ddf5dfae693245af8b7da33287b2d3054d3653505c588358a989d960c1ae396",
     protocol::scope_pos | protocol::scope_read},
    {"dev-read", "dev-read-key", "bb22af3bbb7413af1d7c8f58b0a8c03350ab86a93e30cb92eb5021f477294ace",
     protocol::scope_read},
}};

struct ScopeName {
    std::string_view name;
    uint32_t bit;
};
// In the order to_json writes them.
constexpr std::array<ScopeName, 3> scope_names = {{
    {"admin", protocol::scope_admin},
    {"pos", protocol::scope_pos},
    {"read", protocol::scope_read},
}};
constexpr uint32_t scope_known = protocol::scope_admin | protocol::scope_pos | protocol::scope_read;

constexpr std::array<std::string_view, 7> log_levels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

[[noreturn]] void fail(std::string_view path, std::string_view what) {
    throw ConfigError(fmt::format("{}: {}", path, what));
}

std::string child_path(std::string_view parent, std::string_view key) {
    if (parent.empty()) {
        return std::string(key);
    }
    return fmt::format("{}.{}", parent, key);
}

// ---------------------------------------------------------------------------------------------
// Reading. Each reader names the key path in its error, so the operator knows what to fix.

uint64_t read_unsigned(dom::element value, std::string_view path, uint64_t max) {
    uint64_t number = 0;
    if (value.get_uint64().get(number) != simdjson::SUCCESS) {
        fail(path, "expected an unsigned integer");
    }
    if (number > max) {
        fail(path, fmt::format("{} is out of range (at most {})", number, max));
    }
    return number;
}

template <typename T>
T read_uint(dom::element value, std::string_view path) {
    return static_cast<T>(read_unsigned(value, path, std::numeric_limits<T>::max()));
}

std::string read_string(dom::element value, std::string_view path) {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) {
        fail(path, "expected a string");
    }
    // Paths, addresses and names all end up as C strings, where a NUL would silently cut them.
    if (text.find('\0') != std::string_view::npos) {
        fail(path, "must not contain a NUL character");
    }
    return std::string(text);
}

bool read_bool(dom::element value, std::string_view path) {
    bool flag = false;
    if (value.get_bool().get(flag) != simdjson::SUCCESS) {
        fail(path, "expected true or false");
    }
    return flag;
}

dom::array read_array(dom::element value, std::string_view path) {
    dom::array array;
    if (value.get_array().get(array) != simdjson::SUCCESS) {
        fail(path, "expected an array");
    }
    return array;
}

// Calls on_field(key, value, path) for each member of the object at `path`; on_field returns
// false for a key it does not know. Unknown and repeated keys are errors: a typo must not be
// silently ignored, and a repeated key would make the effective value depend on parser details.
template <typename OnField>
void read_object(dom::element value, std::string_view path, OnField&& on_field) {
    dom::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        fail(path.empty() ? std::string_view("configuration") : path, "expected an object");
    }
    std::vector<std::string_view> seen;
    for (dom::key_value_pair field : object) {
        const std::string field_path = child_path(path, field.key);
        if (std::find(seen.begin(), seen.end(), field.key) != seen.end()) {
            fail(field_path, "appears more than once");
        }
        seen.push_back(field.key);
        if (!on_field(field.key, field.value, field_path)) {
            fail(field_path, "unknown key");
        }
    }
}

wal::Durability read_durability(dom::element value, std::string_view path) {
    const std::string text = read_string(value, path);
    if (text == "sync") {
        return wal::Durability::sync;
    }
    if (text == "async") {
        return wal::Durability::async;
    }
    fail(path, fmt::format("expected \"sync\" or \"async\", got \"{}\"", text));
}

uint32_t read_scope(dom::element value, std::string_view path) {
    uint32_t scope = 0;
    size_t index = 0;
    for (dom::element item : read_array(value, path)) {
        const std::string item_path = fmt::format("{}[{}]", path, index);
        const std::string name = read_string(item, item_path);
        const auto* found =
            std::find_if(scope_names.begin(), scope_names.end(),
                         [&](const ScopeName& known) { return known.name == name; });
        if (found == scope_names.end()) {
            fail(item_path,
                 fmt::format("unknown scope \"{}\" (expected admin, pos or read)", name));
        }
        scope |= found->bit;
        index++;
    }
    return scope;
}

ApiKey read_api_key(dom::element value, std::string_view path) {
    ApiKey key;
    bool has_name = false;
    bool has_sha256 = false;
    bool has_scope = false;
    read_object(value, path, [&](std::string_view name, dom::element field, const std::string& at) {
        if (name == "name") {
            key.name = read_string(field, at);
            has_name = true;
        } else if (name == "sha256") {
            key.sha256_hex = read_string(field, at);
            // Accept either case from the operator; compare and print lowercase.
            std::transform(key.sha256_hex.begin(), key.sha256_hex.end(), key.sha256_hex.begin(),
                           [](char c) { return c >= 'A' && c <= 'F' ? char(c - 'A' + 'a') : c; });
            has_sha256 = true;
        } else if (name == "scope") {
            key.scope = read_scope(field, at);
            has_scope = true;
        } else {
            return false;
        }
        return true;
    });
    if (!has_name) {
        fail(child_path(path, "name"), "missing");
    }
    if (!has_sha256) {
        fail(child_path(path, "sha256"), "missing");
    }
    if (!has_scope) {
        fail(child_path(path, "scope"), "missing");
    }
    return key;
}

void read_engine(dom::element value, std::string_view path, engine::Config* engine) {
    bool default_timeout_given = false;
    read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
        if (key == "expiry_months") {
            engine->expiry_months = read_uint<uint32_t>(field, at);
        } else if (key == "hold_timeout_us_default") {
            engine->hold_timeout_us_default = read_uint<engine::TimeUs>(field, at);
            default_timeout_given = true;
        } else if (key == "hold_timeout_us_max") {
            engine->hold_timeout_us_max = read_uint<engine::TimeUs>(field, at);
        } else if (key == "reverse_allows_negative") {
            engine->reverse_allows_negative = read_bool(field, at);
        } else if (key == "members_per_shard_max") {
            engine->members_per_shard_max = read_uint<uint32_t>(field, at);
        } else if (key == "holds_per_shard_max") {
            engine->holds_per_shard_max = read_uint<uint32_t>(field, at);
        } else if (key == "holds_per_member_max") {
            engine->holds_per_member_max = read_uint<uint32_t>(field, at);
        } else if (key == "pending_lots_per_member_max") {
            engine->pending_lots_per_member_max = read_uint<uint32_t>(field, at);
        } else if (key == "txns_per_shard_max") {
            engine->txns_per_shard_max = read_uint<uint32_t>(field, at);
        } else if (key == "lots_per_shard_max") {
            engine->lots_per_shard_max = read_uint<uint32_t>(field, at);
        } else {
            return false;
        }
        return true;
    });
    // A key left out keeps its default only as far as the keys given allow: a maximum below
    // the default timeout takes the timeout down with it (an error would name a key the
    // operator never wrote).
    if (!default_timeout_given) {
        engine->hold_timeout_us_default =
            std::min(engine->hold_timeout_us_default, engine->hold_timeout_us_max);
    }
}

// data_dir, shard_count and durability are top-level keys that the server copies into
// wal::Options, so they are unknown here: one key, one place.
void read_wal(dom::element value, std::string_view path, wal::Options* wal) {
    bool initial_given = false;
    read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
        if (key == "map_bytes_initial") {
            wal->map_bytes_initial = read_uint<uint64_t>(field, at);
            initial_given = true;
        } else if (key == "map_bytes_max") {
            wal->map_bytes_max = read_uint<uint64_t>(field, at);
        } else if (key == "map_grow_percent") {
            wal->map_grow_percent = read_uint<uint32_t>(field, at);
        } else if (key == "queue_records_per_shard") {
            wal->queue_records_per_shard = read_uint<uint32_t>(field, at);
        } else if (key == "checkpoint_every_records") {
            wal->checkpoint_every_records = read_uint<uint64_t>(field, at);
        } else if (key == "checkpoint_chunks_per_commit") {
            wal->checkpoint_chunks_per_commit = read_uint<uint32_t>(field, at);
        } else if (key == "heads_map_members") {
            wal->heads_map_members = read_uint<uint32_t>(field, at);
        } else {
            return false;
        }
        return true;
    });
    // As for hold timeouts (read_engine): a smaller map_bytes_max takes the default start along.
    if (!initial_given) {
        wal->map_bytes_initial = std::min(wal->map_bytes_initial, wal->map_bytes_max);
    }
}

void read_tls(dom::element value, std::string_view path, TlsConfig* tls) {
    read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
        if (key == "cert_file") {
            tls->cert_file = read_string(field, at);
        } else if (key == "key_file") {
            tls->key_file = read_string(field, at);
        } else {
            return false;
        }
        return true;
    });
}

void read_config(dom::element root, Config* config) {
    read_object(root, "", [&](std::string_view key, dom::element field, const std::string& at) {
        if (key == "bind_address") {
            config->bind_address = read_string(field, at);
        } else if (key == "port") {
            config->port = read_uint<uint16_t>(field, at);
        } else if (key == "http_port") {
            config->http_port = read_uint<uint16_t>(field, at);
        } else if (key == "shard_count") {
            config->shard_count = read_uint<uint32_t>(field, at);
        } else if (key == "shard_threads") {
            config->shard_threads = read_uint<uint32_t>(field, at);
        } else if (key == "data_dir") {
            config->data_dir = read_string(field, at);
        } else if (key == "durability") {
            config->durability = read_durability(field, at);
        } else if (key == "connections_max") {
            config->connections_max = read_uint<uint32_t>(field, at);
        } else if (key == "idle_timeout_ms") {
            config->idle_timeout_ms = read_uint<uint32_t>(field, at);
        } else if (key == "frame_timeout_ms") {
            config->frame_timeout_ms = read_uint<uint32_t>(field, at);
        } else if (key == "txn_index_slots") {
            config->txn_index_slots = read_uint<uint64_t>(field, at);
        } else if (key == "tick_interval_ms") {
            config->tick_interval_ms = read_uint<uint32_t>(field, at);
        } else if (key == "memory_max_bytes") {
            config->memory_max_bytes = read_uint<uint64_t>(field, at);
        } else if (key == "engine") {
            read_engine(field, at, &config->engine);
        } else if (key == "wal") {
            read_wal(field, at, &config->wal);
        } else if (key == "api_keys") {
            std::vector<ApiKey> keys;
            for (dom::element item : read_array(field, at)) {
                keys.push_back(read_api_key(item, fmt::format("{}[{}]", at, keys.size())));
            }
            config->api_keys = std::move(keys);
            config->default_keys = false;
        } else if (key == "tls") {
            read_tls(field, at, &config->tls);
        } else if (key == "log_level") {
            config->log_level = read_string(field, at);
        } else if (key == "metrics_public") {
            config->metrics_public = read_bool(field, at);
        } else {
            return false;
        }
        return true;
    });
}

// ---------------------------------------------------------------------------------------------
// Writing.

void append_json_string(std::string* out, std::string_view text) {
    out->push_back('"');
    for (const char c : text) {
        switch (c) {
            case '"':
                out->append("\\\"");
                break;
            case '\\':
                out->append("\\\\");
                break;
            case '\n':
                out->append("\\n");
                break;
            case '\t':
                out->append("\\t");
                break;
            case '\r':
                out->append("\\r");
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    fmt::format_to(std::back_inserter(*out), "\\u{:04x}",
                                   static_cast<unsigned>(static_cast<unsigned char>(c)));
                } else {
                    out->push_back(c);
                }
        }
    }
    out->push_back('"');
}

std::string json_string(std::string_view text) {
    std::string out;
    append_json_string(&out, text);
    return out;
}

bool is_lower_hex(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_key_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

void require_readable(const std::filesystem::path& file, std::string_view path) {
    std::ifstream stream(file, std::ios::binary);
    if (!stream) {
        fail(path, fmt::format("cannot read {}: {}", file.string(), std::strerror(errno)));
    }
}

void require_range(uint64_t value, uint64_t min, uint64_t max, std::string_view path) {
    if (value < min || value > max) {
        fail(path, fmt::format("{} is out of range ({} to {})", value, min, max));
    }
}

}  // namespace

Config default_config() {
    Config config;
    config.bind_address = "127.0.0.1";
    config.port = 7300;
    config.http_port = 7301;
    config.data_dir = "data";
    config.durability = wal::Durability::sync;
    config.shard_count = 0;
    config.shard_threads = 0;
    config.api_keys.clear();
    for (const DevelopmentKey& key : development_keys) {
        config.api_keys.push_back(
            ApiKey{std::string(key.name), std::string(key.sha256_hex), key.scope});
    }
    config.default_keys = true;
    return config;
}

void apply_json(Config* config, std::string_view json_text) {
    simdjson::dom::parser parser;
    const simdjson::padded_string padded(json_text);
    dom::element root;
    if (const auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
        throw ConfigError(
            fmt::format("configuration is not valid JSON: {}", simdjson::error_message(error)));
    }
    // Apply to a copy so that a refused document changes nothing.
    Config updated = *config;
    read_config(root, &updated);
    *config = std::move(updated);
}

void apply_file(Config* config, const std::filesystem::path& path) {
    std::ifstream stream(path, std::ios::binary);
    if (!stream) {
        throw ConfigError(fmt::format("{}: cannot read the configuration: {}", path.string(),
                                      std::strerror(errno)));
    }
    std::ostringstream text;
    text << stream.rdbuf();
    if (stream.bad()) {
        throw ConfigError(fmt::format("{}: read failed", path.string()));
    }
    try {
        apply_json(config, text.str());
    } catch (const ConfigError& error) {
        throw ConfigError(fmt::format("{}: {}", path.string(), error.what()));
    }
}

bool is_loopback_address(std::string_view address) {
    const std::string text(address);
    in_addr ipv4{};
    if (inet_pton(AF_INET, text.c_str(), &ipv4) == 1) {
        return (ntohl(ipv4.s_addr) >> 24) == 127;
    }
    in6_addr ipv6{};
    if (inet_pton(AF_INET6, text.c_str(), &ipv6) == 1) {
        return IN6_IS_ADDR_LOOPBACK(&ipv6);
    }
    return false;
}

bool is_development_key(std::string_view sha256_hex) {
    return std::any_of(development_keys.begin(), development_keys.end(),
                       [&](const DevelopmentKey& key) { return key.sha256_hex == sha256_hex; });
}

void validate(const Config& config) {
    {
        const std::string text = config.bind_address;
        in_addr ipv4{};
        in6_addr ipv6{};
        if (inet_pton(AF_INET, text.c_str(), &ipv4) != 1 &&
            inet_pton(AF_INET6, text.c_str(), &ipv6) != 1) {
            fail("bind_address",
                 fmt::format("\"{}\" is not an IPv4 or IPv6 address", config.bind_address));
        }
    }
    // Port 0 asks the kernel for an ephemeral port (tests); otherwise the two must differ.
    if (config.port != 0 && config.port == config.http_port) {
        fail("http_port", fmt::format("{} is also the binary protocol port", config.http_port));
    }
    require_range(config.shard_count, 0, wal::shard_count_max, "shard_count");
    require_range(config.shard_threads, 0, wal::shard_count_max, "shard_threads");
    if (config.data_dir.empty()) {
        fail("data_dir", "must not be empty");
    }
    require_range(config.connections_max, 1, connections_max_limit, "connections_max");
    require_range(config.idle_timeout_ms, 1, timeout_ms_max, "idle_timeout_ms");
    require_range(config.frame_timeout_ms, 1, timeout_ms_max, "frame_timeout_ms");
    require_range(config.tick_interval_ms, 1, timeout_ms_max, "tick_interval_ms");
    require_range(config.txn_index_slots, txn_index_slots_min, txn_index_slots_max,
                  "txn_index_slots");
    if (!std::has_single_bit(config.txn_index_slots)) {
        fail("txn_index_slots", fmt::format("{} is not a power of two", config.txn_index_slots));
    }

    const engine::Config& engine = config.engine;
    require_range(engine.expiry_months, 0, expiry_months_max, "engine.expiry_months");
    require_range(engine.hold_timeout_us_max, 1, std::numeric_limits<engine::TimeUs>::max() / 2,
                  "engine.hold_timeout_us_max");
    require_range(engine.hold_timeout_us_default, 1, engine.hold_timeout_us_max,
                  "engine.hold_timeout_us_default");
    require_range(engine.members_per_shard_max, 1, table_entries_max,
                  "engine.members_per_shard_max");
    require_range(engine.holds_per_shard_max, 1, table_entries_max, "engine.holds_per_shard_max");
    require_range(engine.holds_per_member_max, 0, table_entries_max, "engine.holds_per_member_max");
    require_range(engine.pending_lots_per_member_max, 0, table_entries_max,
                  "engine.pending_lots_per_member_max");
    require_range(engine.txns_per_shard_max, 1, table_entries_max, "engine.txns_per_shard_max");
    require_range(engine.lots_per_shard_max, 1, table_entries_max, "engine.lots_per_shard_max");

    const wal::Options& wal = config.wal;
    require_range(wal.map_bytes_max, wal::map_bytes_min, std::numeric_limits<int64_t>::max(),
                  "wal.map_bytes_max");
    require_range(wal.map_bytes_initial, wal::map_bytes_min, wal.map_bytes_max,
                  "wal.map_bytes_initial");
    // LMDB's map size must be a multiple of the OS page; 4 KiB divides every page size we run on.
    // The maximum first: a start size left out is clamped to it (read_wal).
    if (wal.map_bytes_max % 4096 != 0) {
        fail("wal.map_bytes_max", "must be a multiple of 4096");
    }
    if (wal.map_bytes_initial % 4096 != 0) {
        fail("wal.map_bytes_initial", "must be a multiple of 4096");
    }
    require_range(wal.map_grow_percent, 1, 99, "wal.map_grow_percent");
    require_range(wal.queue_records_per_shard, wal::queue_records_min, wal::queue_records_max,
                  "wal.queue_records_per_shard");
    if (!std::has_single_bit(wal.queue_records_per_shard)) {
        fail("wal.queue_records_per_shard",
             fmt::format("{} is not a power of two", wal.queue_records_per_shard));
    }
    require_range(wal.checkpoint_every_records, 1, std::numeric_limits<uint64_t>::max(),
                  "wal.checkpoint_every_records");
    require_range(wal.checkpoint_chunks_per_commit, 1, wal::checkpoint_chunks_per_commit_max,
                  "wal.checkpoint_chunks_per_commit");
    require_range(wal.heads_map_members, wal::heads_map_members_min, wal::heads_map_members_max,
                  "wal.heads_map_members");

    if (config.api_keys.empty()) {
        fail("api_keys", "at least one key is required");
    }
    const bool loopback = is_loopback_address(config.bind_address);
    for (size_t index = 0; index < config.api_keys.size(); index++) {
        const ApiKey& key = config.api_keys[index];
        const std::string path = fmt::format("api_keys[{}]", index);
        if (key.name.empty() || key.name.size() > key_name_chars_max ||
            !std::all_of(key.name.begin(), key.name.end(), is_key_name_char)) {
            fail(path + ".name", fmt::format("\"{}\" must be 1 to {} of A-Z a-z 0-9 - _ .",
                                             key.name, key_name_chars_max));
        }
        if (key.sha256_hex.size() != 64 || !is_lower_hex(key.sha256_hex)) {
            fail(path + ".sha256", "expected 64 hex digits (jifend --hash-key SECRET prints them)");
        }
        if (key.scope == 0) {
            fail(path + ".scope", "must name at least one of admin, pos, read");
        }
        if ((key.scope & ~scope_known) != 0) {
            fail(path + ".scope", fmt::format("unknown scope bits {:#x}", key.scope));
        }
        for (size_t other = 0; other < index; other++) {
            if (config.api_keys[other].name == key.name) {
                fail(path + ".name", fmt::format("\"{}\" is also api_keys[{}]", key.name, other));
            }
            if (config.api_keys[other].sha256_hex == key.sha256_hex) {
                fail(path + ".sha256", fmt::format("same secret as api_keys[{}]", other));
            }
        }
        // The development secrets are printed in the docs: anyone could use them.
        if (!loopback && is_development_key(key.sha256_hex)) {
            fail(path + ".sha256",
                 fmt::format("is a well-known development key, refused on non-loopback "
                             "bind_address {}; configure your own keys (jifend --hash-key SECRET)",
                             config.bind_address));
        }
    }
    if (!loopback && config.default_keys) {
        fail("api_keys", fmt::format("the built-in development keys are refused on non-loopback "
                                     "bind_address {}",
                                     config.bind_address));
    }

    if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
        fail("tls", "cert_file and key_file must be set together");
    }
    if (config.tls.enabled()) {
        require_readable(config.tls.cert_file, "tls.cert_file");
        require_readable(config.tls.key_file, "tls.key_file");
    }

    if (std::find(log_levels.begin(), log_levels.end(), config.log_level) == log_levels.end()) {
        fail("log_level",
             fmt::format("\"{}\" is not one of trace, debug, info, warn, error, critical, off",
                         config.log_level));
    }
}

std::string to_json(const Config& config) {
    const engine::Config& engine = config.engine;
    const wal::Options& wal = config.wal;
    std::string out;
    auto line = std::back_inserter(out);
    fmt::format_to(line, "{{\n");
    fmt::format_to(line, "  \"bind_address\": {},\n", json_string(config.bind_address));
    fmt::format_to(line, "  \"port\": {},\n", config.port);
    fmt::format_to(line, "  \"http_port\": {},\n", config.http_port);
    fmt::format_to(line, "  \"shard_count\": {},\n", config.shard_count);
    fmt::format_to(line, "  \"shard_threads\": {},\n", config.shard_threads);
    fmt::format_to(line, "  \"data_dir\": {},\n", json_string(config.data_dir.string()));
    fmt::format_to(line, "  \"durability\": \"{}\",\n",
                   config.durability == wal::Durability::sync ? "sync" : "async");
    fmt::format_to(line, "  \"connections_max\": {},\n", config.connections_max);
    fmt::format_to(line, "  \"idle_timeout_ms\": {},\n", config.idle_timeout_ms);
    fmt::format_to(line, "  \"frame_timeout_ms\": {},\n", config.frame_timeout_ms);
    fmt::format_to(line, "  \"txn_index_slots\": {},\n", config.txn_index_slots);
    fmt::format_to(line, "  \"tick_interval_ms\": {},\n", config.tick_interval_ms);
    fmt::format_to(line, "  \"memory_max_bytes\": {},\n", config.memory_max_bytes);
    fmt::format_to(line, "  \"engine\": {{\n");
    fmt::format_to(line, "    \"expiry_months\": {},\n", engine.expiry_months);
    fmt::format_to(line, "    \"hold_timeout_us_default\": {},\n", engine.hold_timeout_us_default);
    fmt::format_to(line, "    \"hold_timeout_us_max\": {},\n", engine.hold_timeout_us_max);
    fmt::format_to(line, "    \"reverse_allows_negative\": {},\n", engine.reverse_allows_negative);
    fmt::format_to(line, "    \"members_per_shard_max\": {},\n", engine.members_per_shard_max);
    fmt::format_to(line, "    \"holds_per_shard_max\": {},\n", engine.holds_per_shard_max);
    fmt::format_to(line, "    \"holds_per_member_max\": {},\n", engine.holds_per_member_max);
    fmt::format_to(line, "    \"pending_lots_per_member_max\": {},\n",
                   engine.pending_lots_per_member_max);
    fmt::format_to(line, "    \"txns_per_shard_max\": {},\n", engine.txns_per_shard_max);
    fmt::format_to(line, "    \"lots_per_shard_max\": {}\n", engine.lots_per_shard_max);
    fmt::format_to(line, "  }},\n");
    fmt::format_to(line, "  \"wal\": {{\n");
    fmt::format_to(line, "    \"map_bytes_initial\": {},\n", wal.map_bytes_initial);
    fmt::format_to(line, "    \"map_bytes_max\": {},\n", wal.map_bytes_max);
    fmt::format_to(line, "    \"map_grow_percent\": {},\n", wal.map_grow_percent);
    fmt::format_to(line, "    \"queue_records_per_shard\": {},\n", wal.queue_records_per_shard);
    fmt::format_to(line, "    \"checkpoint_every_records\": {},\n", wal.checkpoint_every_records);
    fmt::format_to(line, "    \"checkpoint_chunks_per_commit\": {},\n",
                   wal.checkpoint_chunks_per_commit);
    fmt::format_to(line, "    \"heads_map_members\": {}\n", wal.heads_map_members);
    fmt::format_to(line, "  }},\n");
    fmt::format_to(line, "  \"api_keys\": [");
    for (size_t index = 0; index < config.api_keys.size(); index++) {
        const ApiKey& key = config.api_keys[index];
        fmt::format_to(line, "{}\n    {{\"name\": {}, \"sha256\": {}, \"scope\": [",
                       index == 0 ? "" : ",", json_string(key.name), json_string(key.sha256_hex));
        bool first = true;
        for (const ScopeName& scope : scope_names) {
            if ((key.scope & scope.bit) != 0) {
                fmt::format_to(line, "{}\"{}\"", first ? "" : ", ", scope.name);
                first = false;
            }
        }
        fmt::format_to(line, "]}}");
    }
    fmt::format_to(line, "{}],\n", config.api_keys.empty() ? "" : "\n  ");
    fmt::format_to(line, "  \"tls\": {{\n");
    fmt::format_to(line, "    \"cert_file\": {},\n", json_string(config.tls.cert_file.string()));
    fmt::format_to(line, "    \"key_file\": {}\n", json_string(config.tls.key_file.string()));
    fmt::format_to(line, "  }},\n");
    fmt::format_to(line, "  \"log_level\": {},\n", json_string(config.log_level));
    fmt::format_to(line, "  \"metrics_public\": {}\n", config.metrics_public);
    fmt::format_to(line, "}}\n");
    return out;
}

}  // namespace jifen::server
