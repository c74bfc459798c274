// jifen-bench: load tester for jifend. Exit status: 0 when every operation got an expected
// outcome, 1 when some failed unexpectedly (or, in an open loop, fell due and were never sent), 2
// when the run could not be carried out (bad flags, server unreachable, key refused, enrolment
// failed, out of memory), 128 + the signal number (130, 143) when SIGINT or SIGTERM cut it short.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>

#include "bench/load/options.hpp"
#include "bench/load/report.hpp"
#include "bench/load/runner.hpp"

namespace {

constexpr int exit_unexpected_failures = 1;
constexpr int exit_cannot_run = 2;
constexpr int exit_signal_base = 128;  // As a shell reports a process ended by a signal.

// A run that could not be carried out: the message on stderr and, with --json, a one-line JSON
// object on stdout too, so a script reading stdout always gets one line.
int cannot_run(const jifen::bench::BenchOptions& options, const std::string& message) {
    std::fprintf(stderr, "jifen-bench: %s\n", message.c_str());
    if (options.json) {
        std::string line = "{\"error\":";
        jifen::bench::append_json_string(&line, message);
        line += ",\"exit_code\":" + std::to_string(exit_cannot_run) + "}";
        std::fprintf(stdout, "%s\n", line.c_str());
    }
    return exit_cannot_run;
}

// One line when connections broke mid-run (the server died or closed them): the results cover
// only the part of the run before that.
void report_lost_connections(const jifen::bench::BenchOptions& options,
                             const jifen::bench::RunResult& result) {
    if (result.connections_lost == 0) {
        return;
    }
    const std::string planned =
        options.ops > 0 ? fmt::format("{} operations", options.ops)
                        : fmt::format("{:.1f} s", options.warmup_s + options.duration_s);
    fmt::print(stderr,
               "jifen-bench: lost {} of {} connections to {}:{}; the run stopped at {:.1f} s of "
               "the planned {}\n",
               result.connections_lost, options.connections, options.host, options.port,
               result.ran_s, planned);
}

int run(const jifen::bench::BenchOptions& options) {
    using namespace jifen::bench;
    const RunResult result = run_load(options, stderr);
    if (!result.fatal.empty() && result.stats.completed() == 0) {
        return cannot_run(options, result.fatal);
    }
    const RunSummary summary{.options = &options,
                             .stats = &result.stats,
                             .warmup = options.warmup_s > 0 ? &result.warmup : nullptr,
                             .elapsed_s = result.elapsed_s,
                             .members_enrolled = result.members_enrolled,
                             .server_shards = result.server_shards,
                             .unsent_due_ops = result.unsent_due_ops,
                             .send_lag_ns = options.rate > 0 ? &result.send_lag_ns : nullptr,
                             .client_busy = result.client_busy,
                             .stop_signal = result.stop_signal};
    // With --json, stdout carries exactly the one JSON line; the table goes to stderr.
    std::FILE* table_out = options.json ? stderr : stdout;
    std::fprintf(table_out, "\n%s", format_table(summary).c_str());
    if (options.json) {
        std::fprintf(stdout, "%s\n", format_json(summary).c_str());
    }
    std::fflush(stdout);
    report_lost_connections(options, result);
    if (!result.fatal.empty()) {
        std::fprintf(stderr, "jifen-bench: %s\n", result.fatal.c_str());
        return exit_cannot_run;
    }
    if (result.stop_signal != 0) {
        return exit_signal_base + result.stop_signal;
    }
    // The warm-up is left out of the figures, not out of the verdict.
    const uint64_t unexpected_in_warmup = result.warmup.unexpected();
    if (const uint64_t unexpected = result.stats.unexpected() + unexpected_in_warmup;
        unexpected > 0) {
        fmt::print(stderr, "jifen-bench: {} operations failed unexpectedly{}\n", unexpected,
                   unexpected_in_warmup > 0
                       ? fmt::format(" ({} of them during the warm-up)", unexpected_in_warmup)
                       : "");
        return exit_unexpected_failures;
    }
    // The run did not keep the rate it was asked for, so its latencies leave out the operations
    // that waited longest: not a result to compare with others.
    if (result.unsent_due_ops > 0) {
        fmt::print(stderr, "jifen-bench: {} operations fell due but were never sent\n",
                   result.unsent_due_ops);
        return exit_unexpected_failures;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace jifen::bench;
    CLI::App app{
        "jifen-bench: drives a jifen server with a configurable mix of loyalty operations"};
    BenchOptions options;
    add_options(app, &options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        // --help is a ParseError too (exit 0); every other one is a wrong command line.
        return app.exit(error) == 0 ? 0 : exit_cannot_run;
    }
    try {
        resolve(app, &options);
    } catch (const std::invalid_argument& error) {
        return cannot_run(options, error.what());
    }

    try {
        return run(options);
    } catch (const std::bad_alloc&) {
        // The window budget (window_bytes_max) should prevent this; a machine short of memory
        // still gets a message instead of an abort.
        return cannot_run(options,
                          "out of memory: lower --connections, --pipeline, --batch or --members");
    }
}
