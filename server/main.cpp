// jifend: the jifen ledger server. Merges the configuration (embedded default <- --config file <-
// flags), starts the server, and stops it cleanly on SIGINT/SIGTERM (SIGHUP is ignored).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <system_error>

#include "protocol/wire.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/server.hpp"
#include "server/tls.hpp"
#include "wal/log.hpp"

namespace {

using jifen::server::Config;
using jifen::server::ConfigError;

// Exit codes: 0 clean stop, 1 the server could not start (data directory, port, TLS),
// 2 the configuration is wrong.
constexpr int exit_startup_failed = 1;
constexpr int exit_bad_config = 2;

struct Flags {
    std::string data_dir;
    std::string bind;
    uint16_t port = 0;
    uint16_t http_port = 0;
    uint32_t shards = 0;
    uint32_t shard_threads = 0;
    std::string durability;
    std::string config_file;
    std::string tls_cert;
    std::string tls_key;
    std::string log_level;
    std::string hash_key;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"jifend: the jifen loyalty-points ledger server (binary protocol + HTTP admin)."};
    Flags flags;
    bool print_default_config = false;
    auto* data_dir = app.add_option("--data-dir", flags.data_dir,
                                    "Data directory (created when missing). Default: ./data");
    auto* bind = app.add_option("--bind", flags.bind, "Address to listen on. Default: 127.0.0.1");
    // CLI11 reads an empty value into a number as 0 (a unit file's unset ${PORT} would start a
    // server on a random port): CLI::Number refuses it first.
    auto* port = app.add_option("--port", flags.port, "Binary protocol port. Default: 7300")
                     ->check(CLI::Number);
    auto* http_port =
        app.add_option("--http-port", flags.http_port, "HTTP admin port. Default: 7301")
            ->check(CLI::Number);
    auto* shards = app.add_option("--shards", flags.shards,
                                  "Shards; fixed per data directory. Default: one per core")
                       ->check(CLI::Number);
    auto* shard_threads =
        app.add_option("--shard-threads", flags.shard_threads,
                       "Threads the shards run on. Default: one per core, at most one per shard")
            ->check(CLI::Number);
    auto* durability =
        app.add_option("--durability", flags.durability,
                       "sync: reply after the log commit (default); async: reply at once, a "
                       "crash may lose the last group commit")
            ->check(CLI::IsMember({"sync", "async"}));
    app.add_option("--config", flags.config_file, "JSON configuration file (docs/operations.md)");
    auto* tls_cert = app.add_option("--tls-cert", flags.tls_cert, "PEM certificate: enables TLS");
    auto* tls_key = app.add_option("--tls-key", flags.tls_key, "PEM private key for --tls-cert");
    auto* log_level =
        app.add_option("--log-level", flags.log_level,
                       "trace, debug, info, warn, error, critical or off. Default: info");
    app.add_flag("--print-default-config", print_default_config,
                 "Print the embedded default configuration as JSON and exit");
    auto* hash_key =
        app.add_option("--hash-key", flags.hash_key,
                       "Print the SHA-256 of SECRET (for api_keys in a config file) and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        // --help is a ParseError too (exit 0); every other one is a wrong command line.
        return app.exit(error) == 0 ? 0 : exit_bad_config;
    }

    if (*hash_key) {
        // A client sends the secret in HELLO's 64-byte api_key field, NUL-padded.
        if (flags.hash_key.empty() ||
            flags.hash_key.size() > sizeof(jifen::protocol::HelloRequest::api_key)) {
            std::fprintf(stderr, "jifend: --hash-key: a secret is 1 to %zu bytes\n",
                         sizeof(jifen::protocol::HelloRequest::api_key));
            return exit_bad_config;
        }
        std::cout << jifen::server::sha256_hex(flags.hash_key) << '\n';
        return 0;
    }
    if (print_default_config) {
        std::cout << jifen::server::to_json(jifen::server::default_config()) << '\n';
        return 0;
    }

    Config config;
    try {
        config = jifen::server::default_config();
        if (!flags.config_file.empty()) {
            jifen::server::apply_file(&config, flags.config_file);
        }
        if (*data_dir) {
            config.data_dir = flags.data_dir;
        }
        if (*bind) {
            config.bind_address = flags.bind;
        }
        if (*port) {
            config.port = flags.port;
        }
        if (*http_port) {
            config.http_port = flags.http_port;
        }
        if (*shards) {
            config.shard_count = flags.shards;
        }
        if (*shard_threads) {
            config.shard_threads = flags.shard_threads;
        }
        if (*durability) {
            config.durability = flags.durability == "async" ? jifen::wal::Durability::async
                                                            : jifen::wal::Durability::sync;
        }
        if (*tls_cert) {
            config.tls.cert_file = flags.tls_cert;
        }
        if (*tls_key) {
            config.tls.key_file = flags.tls_key;
        }
        if (*log_level) {
            config.log_level = flags.log_level;
        }
        try {
            jifen::server::validate(config);
        } catch (const ConfigError& error) {
            if (flags.config_file.empty()) {
                throw;
            }
            // The value may come from the file, a default it left alone, or a flag.
            throw ConfigError(
                fmt::format("{} (with the command line): {}", flags.config_file, error.what()));
        }
        if (config.default_keys && !jifen::server::is_loopback_address(config.bind_address)) {
            throw ConfigError(
                "api_keys: the embedded development keys are only allowed on a "
                "loopback bind address; configure your own keys");
        }
    } catch (const ConfigError& error) {
        std::fprintf(stderr, "jifend: configuration error: %s\n", error.what());
        return exit_bad_config;
    }

    spdlog::set_level(spdlog::level::from_str(config.log_level));
    if (config.default_keys) {
        spdlog::warn(
            "using the embedded development API keys (dev-admin-key, dev-pos-key, dev-read-key); "
            "loopback only: configure api_keys before exposing jifend");
    } else {
        for (const auto& key : config.api_keys) {
            if (jifen::server::is_development_key(key.sha256_hex)) {
                spdlog::warn(
                    "api key {} is a well-known development key (its secret is in the docs); "
                    "loopback only: replace it before exposing jifend",
                    key.name);
            }
        }
    }
    for (const std::string& warning : jifen::server::deployment_warnings(config)) {
        spdlog::warn("{}", warning);
    }

    // Signals are caught by this thread's io_context (installed before any thread starts).
    boost::asio::io_context signals_io(1);
    boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM, SIGHUP);
    std::signal(SIGPIPE, SIG_IGN);

    jifen::server::Server server(config);
    jifen::server::StartupReport report;
    try {
        // The log creates the data directory, after the TLS files loaded: a start refused for
        // its configuration leaves nothing behind.
        report = server.start();
    } catch (const jifen::wal::StartupError& error) {
        // On stderr whatever the log level, as configuration errors are: the reason a start
        // failed must never be filtered out.
        std::fprintf(stderr, "jifend: cannot open the data directory %s: %s\n",
                     config.data_dir.c_str(), error.what());
        return exit_startup_failed;
    } catch (const ConfigError& error) {
        std::fprintf(stderr, "jifend: configuration error: %s\n", error.what());
        return exit_bad_config;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "jifend: cannot start: %s\n", error.what());
        return exit_startup_failed;
    }
    spdlog::info(
        "data directory {}: {} shards on {} threads, {} records replayed in {} ms{}; new "
        "transactions stop {} (memory_max_bytes)",
        config.data_dir.string(), report.shard_count, report.shard_threads, report.records_replayed,
        report.replay_us / 1000,
        report.transfers_resumed > 0
            ? fmt::format(", {} transfers resumed", report.transfers_resumed)
            : std::string(),
        report.memory_budget_bytes == std::numeric_limits<uint64_t>::max()
            ? std::string("at no memory limit: the machine's memory could not be read")
            : fmt::format("at {} MiB of memory", report.memory_budget_bytes >> 20));
    spdlog::info("listening on {}:{} (binary protocol{}, {} durability)", config.bind_address,
                 report.port, config.tls.enabled() ? ", TLS" : "",
                 config.durability == jifen::wal::Durability::sync ? "sync" : "async");
    spdlog::info("listening on {}:{} ({})", config.bind_address, report.http_port,
                 config.tls.enabled() ? "https" : "http");

    // SIGHUP often means "reload" elsewhere: say what it does here rather than die of it.
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& error, int signal_number) {
            if (error) {
                return;
            }
            if (signal_number == SIGHUP) {
                spdlog::warn(
                    "SIGHUP ignored: the configuration is read at startup only; restart jifend "
                    "(SIGTERM, then start it again) to change it");
                signals.async_wait(on_signal);
                return;
            }
            spdlog::info("signal {}: stopping (finishing in-flight requests)", signal_number);
        };
    signals.async_wait(on_signal);
    signals_io.run();
    server.stop();
    spdlog::info("stopped");
    return 0;
}
