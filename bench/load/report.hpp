// How a run is reported: one progress line per second, a readable table at the end, and with
// --json exactly one JSON line that scripts (bench/compare-redis.sh, bench/scaling.sh) read.
#pragma once

#include <cstdint>
#include <string>

#include "bench/load/options.hpp"
#include "bench/load/stats.hpp"

namespace jifen::bench {

// After SIGINT or SIGTERM: how long replies already in flight are waited for before they are left
// out of the results.
inline constexpr uint64_t interrupt_grace_s = 2;

// A client thread busy for more than this share of the run (RunResult::client_busy) is taken to
// have set the pace itself: when operations went unsent, the report blames the client, not the
// server.
inline constexpr double client_busy_limit = 0.9;

struct RunSummary {
    const BenchOptions* options = nullptr;
    const RunStats* stats = nullptr;
    // With --warmup: what completed or failed during it. Not in the figures, but its errors are
    // reported, and its unexpected ones fail the run as any other.
    const RunStats* warmup = nullptr;
    double elapsed_s = 0;  // The measured part of the run (RunResult::elapsed_s).
    uint64_t members_enrolled = 0;
    uint64_t server_shards = 0;   // From the server's HELLO.
    uint64_t unsent_due_ops = 0;  // Open loop: due but never sent (see RunResult).
    const LatencyHistogram* send_lag_ns = nullptr;  // Open loop (see RunResult), else null.
    double client_busy = 0;                         // See RunResult.
    int stop_signal = 0;  // SIGINT or SIGTERM when the run was interrupted, else 0.
};

// "   3.0s     412345 ops/s   p99     812.3us   errors 12 (unexpected 0)": the interval that
// ended `at_s` seconds into the run and lasted `interval_s`, the rate over that length.
std::string format_progress(double at_s, const RunStats& interval, double interval_s);

// The end-of-run table: totals, then one row per operation kind with its latencies and outcomes.
std::string format_table(const RunSummary& summary);

// One line of JSON, no newline. Keys: ops, ops_per_sec, duration_s, interrupted, p50_us, p90_us,
// p99_us, p999_us, max_us, mean_us (ops and latencies: operations the server answered), errors
// (non-ok outcomes, expected refusals and failures included), unexpected (the errors that fail the
// run), failed (no answer: client_closed, client_timeout...), errors_by_result {name: count},
// warmup (null without --warmup, else {ops, failed, errors, unexpected, errors_by_result} of the
// warm-up), send_lag_us (open loop: {p50, p99, max} of how late after its due time the pacing
// took each operation up; null in a closed loop or when nothing was measured), client_busy (the
// busiest client thread's share of the run on the CPU, not polling), unsent_due (open loop: due,
// never sent because the window stayed full), cross_shard_transfers (completed transfers between
// two shards), per_op {kind: {...}}, and the configuration (scenario, mix, keys, transfers,
// members, connections, threads, pipeline, batch, rate, seed, shards).
std::string format_json(const RunSummary& summary);

// Appends `text` to `out` as a JSON string literal, escaping as RFC 8259 requires.
void append_json_string(std::string* out, std::string_view text);

}  // namespace jifen::bench
