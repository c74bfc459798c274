// Tests of server/config.cpp: the embedded default, the JSON reader and writer, and validate().
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "protocol/wire.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"

namespace jifen::server {
namespace {

// The message of the ConfigError that `action` throws, or "" when it throws none.
template <typename Action>
std::string config_error(Action&& action) {
    try {
        action();
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "";
}

std::string apply_error(std::string_view json) {
    Config config = default_config();
    return config_error([&] { apply_json(&config, json); });
}

std::string validate_error(const Config& config) {
    return config_error([&] { validate(config); });
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// A file in the test's temporary directory, removed when the test ends.
class TempFile {
public:
    TempFile(std::string_view name, std::string_view contents)
        : path_(std::filesystem::temp_directory_path() /
                (std::string(name) + "." + std::to_string(::getpid()))) {
        std::ofstream(path_, std::ios::binary) << contents;
    }
    ~TempFile() { std::filesystem::remove(path_); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// A configuration where every field differs from the default.
Config every_field_changed() {
    Config config = default_config();
    config.bind_address = "::1";
    config.port = 9100;
    config.http_port = 9101;
    config.shard_count = 4;
    config.shard_threads = 3;
    config.data_dir = "/var/lib/jifen \"quoted\"";
    config.durability = wal::Durability::async;
    config.connections_max = 77;
    config.idle_timeout_ms = 1234;
    config.frame_timeout_ms = 567;
    config.txn_index_slots = 1ull << 10;
    config.tick_interval_ms = 25;
    config.memory_max_bytes = 123'456'789;
    config.engine.expiry_months = 24;
    config.engine.hold_timeout_us_default = 5'000'000;
    config.engine.hold_timeout_us_max = 6'000'000;
    config.engine.reverse_allows_negative = true;
    config.engine.members_per_shard_max = 1000;
    config.engine.holds_per_shard_max = 100;
    config.engine.holds_per_member_max = 7;
    config.engine.pending_lots_per_member_max = 9;
    config.engine.txns_per_shard_max = 10'000;
    config.engine.lots_per_shard_max = 20'000;
    config.wal.map_bytes_initial = 1ull << 21;
    config.wal.map_bytes_max = 1ull << 22;
    config.wal.map_grow_percent = 50;
    config.wal.queue_records_per_shard = 1u << 10;
    config.wal.checkpoint_every_records = 999;
    config.wal.checkpoint_chunks_per_commit = 3;
    config.wal.heads_map_members = 1u << 12;
    config.api_keys = {
        ApiKey{"store-1", sha256_hex("store-1 secret"), protocol::scope_pos},
        ApiKey{"ops", sha256_hex("ops secret"), protocol::scope_admin | protocol::scope_read},
    };
    config.default_keys = false;
    config.tls.cert_file = "/etc/jifen/cert.pem";
    config.tls.key_file = "/etc/jifen/key.pem";
    config.log_level = "debug";
    config.metrics_public = true;
    return config;
}

TEST(SupportConfig, DefaultIsLoopbackWithDevelopmentKeysAndSyncDurability) {
    const Config config = default_config();
    EXPECT_EQ(config.bind_address, "127.0.0.1");
    EXPECT_EQ(config.port, 7300);
    EXPECT_EQ(config.http_port, 7301);
    EXPECT_EQ(config.data_dir, "data");
    EXPECT_EQ(config.durability, wal::Durability::sync);
    EXPECT_EQ(config.shard_count, 0u);
    EXPECT_TRUE(config.default_keys);
    EXPECT_FALSE(config.tls.enabled());
    EXPECT_FALSE(config.metrics_public);
    ASSERT_EQ(config.api_keys.size(), 3u);
    EXPECT_EQ(config.api_keys[0].name, "dev-admin");
    EXPECT_EQ(config.api_keys[0].scope,
              protocol::scope_admin | protocol::scope_pos | protocol::scope_read);
    EXPECT_EQ(config.api_keys[1].name, "dev-pos");
    EXPECT_EQ(config.api_keys[1].scope, protocol::scope_pos | protocol::scope_read);
    EXPECT_EQ(config.api_keys[2].name, "dev-read");
    EXPECT_EQ(config.api_keys[2].scope, protocol::scope_read);
    EXPECT_EQ(validate_error(config), "");
}

TEST(SupportConfig, DevelopmentKeyDigestsAreTheSha256OfTheDocumentedSecrets) {
    const Config config = default_config();
    EXPECT_EQ(config.api_keys[0].sha256_hex, sha256_hex("dev-admin-key"));
    EXPECT_EQ(config.api_keys[1].sha256_hex, sha256_hex("dev-pos-key"));
    EXPECT_EQ(config.api_keys[2].sha256_hex, sha256_hex("dev-read-key"));
    for (const ApiKey& key : config.api_keys) {
        EXPECT_TRUE(is_development_key(key.sha256_hex)) << key.name;
    }
    EXPECT_FALSE(is_development_key(sha256_hex("something else")));
}

TEST(SupportConfig, JsonOfEveryFieldReadsBackToTheSameConfig) {
    const Config written = every_field_changed();
    Config read = default_config();
    apply_json(&read, to_json(written));
    EXPECT_EQ(to_json(read), to_json(written));
    EXPECT_EQ(read.bind_address, "::1");
    EXPECT_EQ(read.port, 9100);
    EXPECT_EQ(read.http_port, 9101);
    EXPECT_EQ(read.shard_count, 4u);
    EXPECT_EQ(read.shard_threads, 3u);
    EXPECT_EQ(read.data_dir, written.data_dir);
    EXPECT_EQ(read.durability, wal::Durability::async);
    EXPECT_EQ(read.connections_max, 77u);
    EXPECT_EQ(read.idle_timeout_ms, 1234u);
    EXPECT_EQ(read.frame_timeout_ms, 567u);
    EXPECT_EQ(read.txn_index_slots, 1ull << 10);
    EXPECT_EQ(read.memory_max_bytes, 123'456'789u);
    EXPECT_EQ(read.tick_interval_ms, 25u);
    EXPECT_EQ(read.engine.expiry_months, 24u);
    EXPECT_EQ(read.engine.hold_timeout_us_default, 5'000'000u);
    EXPECT_EQ(read.engine.hold_timeout_us_max, 6'000'000u);
    EXPECT_TRUE(read.engine.reverse_allows_negative);
    EXPECT_EQ(read.engine.members_per_shard_max, 1000u);
    EXPECT_EQ(read.engine.holds_per_shard_max, 100u);
    EXPECT_EQ(read.engine.holds_per_member_max, 7u);
    EXPECT_EQ(read.engine.pending_lots_per_member_max, 9u);
    EXPECT_EQ(read.engine.txns_per_shard_max, 10'000u);
    EXPECT_EQ(read.engine.lots_per_shard_max, 20'000u);
    EXPECT_EQ(read.wal.map_bytes_initial, 1ull << 21);
    EXPECT_EQ(read.wal.map_bytes_max, 1ull << 22);
    EXPECT_EQ(read.wal.map_grow_percent, 50u);
    EXPECT_EQ(read.wal.queue_records_per_shard, 1u << 10);
    EXPECT_EQ(read.wal.checkpoint_every_records, 999u);
    EXPECT_EQ(read.wal.checkpoint_chunks_per_commit, 3u);
    EXPECT_EQ(read.wal.heads_map_members, 1u << 12);
    ASSERT_EQ(read.api_keys.size(), 2u);
    EXPECT_EQ(read.api_keys[0].name, "store-1");
    EXPECT_EQ(read.api_keys[0].sha256_hex, written.api_keys[0].sha256_hex);
    EXPECT_EQ(read.api_keys[0].scope, protocol::scope_pos);
    EXPECT_EQ(read.api_keys[1].scope, protocol::scope_admin | protocol::scope_read);
    EXPECT_FALSE(read.default_keys);
    EXPECT_EQ(read.tls.cert_file, "/etc/jifen/cert.pem");
    EXPECT_EQ(read.tls.key_file, "/etc/jifen/key.pem");
    EXPECT_EQ(read.log_level, "debug");
    EXPECT_TRUE(read.metrics_public);
}

TEST(SupportConfig, DefaultJsonReadsBackAndStillValidates) {
    Config read = default_config();
    apply_json(&read, to_json(default_config()));
    EXPECT_EQ(to_json(read), to_json(default_config()));
    EXPECT_EQ(validate_error(read), "");
}

TEST(SupportConfig, EmptyObjectChangesNothing) {
    Config config = default_config();
    apply_json(&config, "{}");
    EXPECT_EQ(to_json(config), to_json(default_config()));
    EXPECT_TRUE(config.default_keys);
}

TEST(SupportConfig, PartialDocumentChangesOnlyTheKeysItNames) {
    Config config = default_config();
    apply_json(&config, R"({"port": 8000, "engine": {"expiry_months": 12}})");
    EXPECT_EQ(config.port, 8000);
    EXPECT_EQ(config.engine.expiry_months, 12u);
    EXPECT_EQ(config.http_port, 7301);
    EXPECT_EQ(config.engine.holds_per_shard_max, default_config().engine.holds_per_shard_max);
}

TEST(SupportConfig, AMaximumBelowADefaultLeftOutTakesTheDefaultDownWithIt) {
    // Otherwise the refusal would name a key the operator never wrote.
    Config config = default_config();
    apply_json(&config, R"({"engine": {"hold_timeout_us_max": 60000000},
                            "wal": {"map_bytes_max": 536870912}})");
    EXPECT_EQ(config.engine.hold_timeout_us_default, 60'000'000u);
    EXPECT_EQ(config.wal.map_bytes_initial, 536'870'912u);
    EXPECT_NO_THROW(validate(config));
    // Given explicitly, the default is kept and checked as written.
    Config explicit_config = default_config();
    apply_json(&explicit_config, R"({"engine": {"hold_timeout_us_max": 60000000,
                                                "hold_timeout_us_default": 90000000}})");
    EXPECT_TRUE(starts_with(validate_error(explicit_config), "engine.hold_timeout_us_default"))
        << validate_error(explicit_config);
}

TEST(SupportConfig, SuppliedApiKeysReplaceTheDefaultsAndClearDefaultKeys) {
    Config config = default_config();
    const std::string digest = sha256_hex("s3cret");
    apply_json(&config, R"({"api_keys": [{"name": "a", "sha256": ")" + digest +
                            R"(", "scope": ["read", "pos"]}]})");
    ASSERT_EQ(config.api_keys.size(), 1u);
    EXPECT_EQ(config.api_keys[0].name, "a");
    EXPECT_EQ(config.api_keys[0].scope, protocol::scope_read | protocol::scope_pos);
    EXPECT_FALSE(config.default_keys);
}

TEST(SupportConfig, UppercaseDigestIsAcceptedAndStoredLowercase) {
    Config config = default_config();
    std::string digest = sha256_hex("s3cret");
    std::string upper = digest;
    for (char& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    apply_json(&config,
               R"({"api_keys": [{"name": "a", "sha256": ")" + upper + R"(", "scope": ["read"]}]})");
    EXPECT_EQ(config.api_keys[0].sha256_hex, digest);
}

TEST(SupportConfig, RefusedDocumentLeavesTheConfigUnchanged) {
    Config config = default_config();
    EXPECT_THROW(apply_json(&config, R"({"port": 8000, "bogus": 1})"), ConfigError);
    EXPECT_EQ(config.port, 7300);
}

TEST(SupportConfig, MalformedJsonIsAConfigError) {
    EXPECT_TRUE(starts_with(apply_error("{\"port\": "), "configuration is not valid JSON"));
    EXPECT_TRUE(starts_with(apply_error(""), "configuration is not valid JSON"));
    EXPECT_TRUE(starts_with(apply_error("{} {}"), "configuration is not valid JSON"));
}

TEST(SupportConfig, TopLevelMustBeAnObject) {
    EXPECT_EQ(apply_error("[]"), "configuration: expected an object");
    EXPECT_EQ(apply_error("7"), "configuration: expected an object");
}

TEST(SupportConfig, UnknownKeysAreNamedWithTheirPath) {
    EXPECT_EQ(apply_error(R"({"prot": 1})"), "prot: unknown key");
    EXPECT_EQ(apply_error(R"({"engine": {"expiry": 1}})"), "engine.expiry: unknown key");
    EXPECT_EQ(apply_error(R"({"wal": {"data_dir": "x"}})"), "wal.data_dir: unknown key");
    EXPECT_EQ(apply_error(R"({"tls": {"ca_file": "x"}})"), "tls.ca_file: unknown key");
    EXPECT_EQ(apply_error(R"({"api_keys": [{"name": "a", "sha256": "x", "scope": [], "x": 1}]})"),
              "api_keys[0].x: unknown key");
}

TEST(SupportConfig, RepeatedKeyIsRefused) {
    EXPECT_EQ(apply_error(R"({"port": 1, "port": 2})"), "port: appears more than once");
}

TEST(SupportConfig, WrongTypesAreNamedWithTheirPath) {
    EXPECT_EQ(apply_error(R"({"engine": {"expiry_months": "12"}})"),
              "engine.expiry_months: expected an unsigned integer");
    EXPECT_EQ(apply_error(R"({"engine": {"expiry_months": -1}})"),
              "engine.expiry_months: expected an unsigned integer");
    EXPECT_EQ(apply_error(R"({"engine": {"expiry_months": 1.5}})"),
              "engine.expiry_months: expected an unsigned integer");
    EXPECT_EQ(apply_error(R"({"bind_address": 1})"), "bind_address: expected a string");
    EXPECT_EQ(apply_error(R"({"metrics_public": 1})"), "metrics_public: expected true or false");
    EXPECT_EQ(apply_error(R"({"engine": 1})"), "engine: expected an object");
    EXPECT_EQ(apply_error(R"({"api_keys": {}})"), "api_keys: expected an array");
    EXPECT_EQ(apply_error(R"({"api_keys": [1]})"), "api_keys[0]: expected an object");
    EXPECT_EQ(apply_error(R"({"durability": "fast"})"),
              R"(durability: expected "sync" or "async", got "fast")");
}

TEST(SupportConfig, StringsWithNulCharactersAreRefused) {
    EXPECT_EQ(apply_error(R"({"data_dir": "data\u0000/x"})"),
              "data_dir: must not contain a NUL character");
}

TEST(SupportConfig, IntegersTooLargeForTheirFieldAreOutOfRange) {
    EXPECT_EQ(apply_error(R"({"port": 65536})"), "port: 65536 is out of range (at most 65535)");
    EXPECT_EQ(apply_error(R"({"shard_count": 4294967296})"),
              "shard_count: 4294967296 is out of range (at most 4294967295)");
    Config config = default_config();
    apply_json(&config, R"({"port": 65535, "txn_index_slots": 18446744073709551615})");
    EXPECT_EQ(config.port, 65535);
    EXPECT_EQ(config.txn_index_slots, UINT64_MAX);
}

TEST(SupportConfig, ApiKeyFieldsAreRequiredAndScopesKnown) {
    EXPECT_EQ(apply_error(R"({"api_keys": [{"sha256": "x", "scope": []}]})"),
              "api_keys[0].name: missing");
    EXPECT_EQ(apply_error(R"({"api_keys": [{"name": "a", "scope": []}]})"),
              "api_keys[0].sha256: missing");
    EXPECT_EQ(apply_error(R"({"api_keys": [{"name": "a", "sha256": "x"}]})"),
              "api_keys[0].scope: missing");
    EXPECT_EQ(
        apply_error(R"({"api_keys": [{"name": "a", "sha256": "x", "scope": ["read", "root"]}]})"),
        R"(api_keys[0].scope[1]: unknown scope "root" (expected admin, pos or read))");
}

TEST(SupportConfig, ApplyFileNamesTheFileInErrors) {
    const TempFile file("jifen-support-config.json", R"({"idle_timeout_ms": true})");
    Config config = default_config();
    const std::string error = config_error([&] { apply_file(&config, file.path()); });
    EXPECT_EQ(error, file.path().string() + ": idle_timeout_ms: expected an unsigned integer");

    const TempFile good("jifen-support-config-good.json", R"({"idle_timeout_ms": 5})");
    apply_file(&config, good.path());
    EXPECT_EQ(config.idle_timeout_ms, 5u);
}

TEST(SupportConfig, MissingFileIsAConfigError) {
    Config config = default_config();
    const std::string error =
        config_error([&] { apply_file(&config, "/nonexistent/jifen/config.json"); });
    EXPECT_TRUE(starts_with(error, "/nonexistent/jifen/config.json: cannot read")) << error;
}

TEST(SupportConfig, DefaultKeysAreRefusedOnAnyNonLoopbackAddress) {
    Config config = default_config();
    config.bind_address = "0.0.0.0";
    EXPECT_TRUE(starts_with(validate_error(config),
                            "api_keys[0].sha256: is a well-known "
                            "development key, refused on non-loopback"))
        << validate_error(config);
    config.bind_address = "::";
    EXPECT_NE(validate_error(config), "");
    config.bind_address = "127.0.0.2";
    EXPECT_EQ(validate_error(config), "");
    config.bind_address = "::1";
    EXPECT_EQ(validate_error(config), "");
}

TEST(SupportConfig, DevelopmentKeyCopiedIntoAFileIsStillRefusedOffLoopback) {
    Config config = default_config();
    apply_json(&config, to_json(default_config()));
    ASSERT_FALSE(config.default_keys);
    config.bind_address = "10.1.2.3";
    EXPECT_TRUE(starts_with(validate_error(config), "api_keys[0].sha256: is a well-known"));
}

TEST(SupportConfig, OwnKeysAreAcceptedOnAnyAddress) {
    Config config = every_field_changed();
    config.tls = {};
    config.bind_address = "0.0.0.0";
    EXPECT_EQ(validate_error(config), "");
}

TEST(SupportConfig, LoopbackAddressesAreRecognised) {
    EXPECT_TRUE(is_loopback_address("127.0.0.1"));
    EXPECT_TRUE(is_loopback_address("127.255.0.9"));
    EXPECT_TRUE(is_loopback_address("::1"));
    EXPECT_FALSE(is_loopback_address("0.0.0.0"));
    EXPECT_FALSE(is_loopback_address("128.0.0.1"));
    EXPECT_FALSE(is_loopback_address("::"));
    EXPECT_FALSE(is_loopback_address("localhost"));
    EXPECT_FALSE(is_loopback_address(""));
}

// Each case breaks one field of a valid configuration; validate() must name that field.
TEST(SupportConfig, ValidateNamesTheFieldThatIsOutOfRange) {
    struct Case {
        std::string_view key;
        void (*breaks)(Config*);
    };
    const Case cases[] = {
        {"bind_address", [](Config* c) { c->bind_address = "localhost"; }},
        {"http_port", [](Config* c) { c->http_port = c->port; }},
        {"shard_count", [](Config* c) { c->shard_count = 1025; }},
        {"shard_threads", [](Config* c) { c->shard_threads = 1025; }},
        {"data_dir", [](Config* c) { c->data_dir = ""; }},
        {"connections_max", [](Config* c) { c->connections_max = 0; }},
        {"idle_timeout_ms", [](Config* c) { c->idle_timeout_ms = 0; }},
        {"frame_timeout_ms", [](Config* c) { c->frame_timeout_ms = 0; }},
        {"tick_interval_ms", [](Config* c) { c->tick_interval_ms = 0; }},
        {"txn_index_slots", [](Config* c) { c->txn_index_slots = 1000; }},
        {"txn_index_slots", [](Config* c) { c->txn_index_slots = 8; }},
        {"engine.expiry_months", [](Config* c) { c->engine.expiry_months = 1201; }},
        {"engine.hold_timeout_us_default",
         [](Config* c) { c->engine.hold_timeout_us_default = c->engine.hold_timeout_us_max + 1; }},
        {"engine.hold_timeout_us_default",
         [](Config* c) { c->engine.hold_timeout_us_default = 0; }},
        {"engine.members_per_shard_max", [](Config* c) { c->engine.members_per_shard_max = 0; }},
        {"engine.holds_per_shard_max", [](Config* c) { c->engine.holds_per_shard_max = 0; }},
        {"engine.holds_per_member_max",
         [](Config* c) { c->engine.holds_per_member_max = (1u << 30) + 1; }},
        {"engine.pending_lots_per_member_max",
         [](Config* c) { c->engine.pending_lots_per_member_max = (1u << 30) + 1; }},
        {"engine.txns_per_shard_max", [](Config* c) { c->engine.txns_per_shard_max = 0; }},
        {"engine.lots_per_shard_max", [](Config* c) { c->engine.lots_per_shard_max = 0; }},
        {"wal.map_bytes_initial",
         [](Config* c) { c->wal.map_bytes_initial = c->wal.map_bytes_max + 4096; }},
        {"wal.map_bytes_initial", [](Config* c) { c->wal.map_bytes_initial = (1u << 20) + 1; }},
        {"wal.map_bytes_initial", [](Config* c) { c->wal.map_bytes_initial = 4096; }},
        {"wal.map_bytes_max", [](Config* c) { c->wal.map_bytes_max = 4096; }},
        {"wal.map_grow_percent", [](Config* c) { c->wal.map_grow_percent = 100; }},
        {"wal.queue_records_per_shard", [](Config* c) { c->wal.queue_records_per_shard = 1000; }},
        {"wal.queue_records_per_shard", [](Config* c) { c->wal.queue_records_per_shard = 512; }},
        {"wal.queue_records_per_shard",
         [](Config* c) { c->wal.queue_records_per_shard = 1u << 25; }},
        {"wal.checkpoint_every_records", [](Config* c) { c->wal.checkpoint_every_records = 0; }},
        {"wal.checkpoint_chunks_per_commit",
         [](Config* c) { c->wal.checkpoint_chunks_per_commit = 0; }},
        {"wal.checkpoint_chunks_per_commit",
         [](Config* c) { c->wal.checkpoint_chunks_per_commit = 1'025; }},
        {"wal.heads_map_members", [](Config* c) { c->wal.heads_map_members = 0; }},
        {"wal.heads_map_members", [](Config* c) { c->wal.heads_map_members = (1u << 24) + 1; }},
        {"api_keys", [](Config* c) { c->api_keys.clear(); }},
        {"api_keys[1].name", [](Config* c) { c->api_keys[1].name = ""; }},
        {"api_keys[1].name", [](Config* c) { c->api_keys[1].name = "has space"; }},
        {"api_keys[1].name", [](Config* c) { c->api_keys[1].name = c->api_keys[0].name; }},
        {"api_keys[1].sha256", [](Config* c) { c->api_keys[1].sha256_hex = "abc"; }},
        {"api_keys[1].sha256", [](Config* c) { c->api_keys[1].sha256_hex = std::string(64, 'g'); }},
        {"api_keys[1].sha256",
         [](Config* c) { c->api_keys[1].sha256_hex = c->api_keys[0].sha256_hex; }},
        {"api_keys[1].scope", [](Config* c) { c->api_keys[1].scope = 0; }},
        {"api_keys[1].scope", [](Config* c) { c->api_keys[1].scope = 1u << 7; }},
        {"tls", [](Config* c) { c->tls.cert_file = "/etc/jifen/cert.pem"; }},
        {"tls.cert_file",
         [](Config* c) {
             c->tls.cert_file = "/nonexistent/cert.pem";
             c->tls.key_file = "/nonexistent/key.pem";
         }},
        {"log_level", [](Config* c) { c->log_level = "verbose"; }},
    };
    for (const Case& test_case : cases) {
        Config config = every_field_changed();
        config.tls = {};
        ASSERT_EQ(validate_error(config), "");
        test_case.breaks(&config);
        const std::string error = validate_error(config);
        EXPECT_TRUE(starts_with(error, std::string(test_case.key) + ": "))
            << "expected an error about " << test_case.key << ", got \"" << error << "\"";
    }
}

TEST(SupportConfig, PortZeroMeansEphemeralForBothPorts) {
    Config config = default_config();
    config.port = 0;
    config.http_port = 0;
    EXPECT_EQ(validate_error(config), "");
}

TEST(SupportConfig, ReadableTlsFilesPassValidation) {
    const TempFile cert("jifen-support-cert.pem", "not checked here");
    const TempFile key("jifen-support-key.pem", "not checked here");
    Config config = default_config();
    config.tls.cert_file = cert.path();
    config.tls.key_file = key.path();
    EXPECT_EQ(validate_error(config), "");
}

}  // namespace
}  // namespace jifen::server
