// Drives a jifen server with the configured load through the pipelined client library: optional
// enrolment, then connections spread over threads, closed or open loop, one progress line per
// second, and the merged statistics at the end.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/load/options.hpp"
#include "bench/load/stats.hpp"

namespace jifen::bench {

struct RunResult {
    RunStats stats;   // What completed (or failed) after the warm-up: the results.
    RunStats warmup;  // What completed or failed during --warmup: only its failures count.
    // The measured part: from the start (or the end of the warm-up) to the last completion, or in
    // a timed open loop to the end of its schedule when that is later (measured_span_ns).
    double elapsed_s = 0;
    uint64_t members_enrolled = 0;
    uint32_t server_shards = 0;
    // Open loop: operations that fell due (more than a pacing interval before the end) but were
    // never sent because the window stayed full: the run did not keep up with --rate (the server,
    // or the client when client_busy is near 1), the latencies leave these operations out, and
    // the run fails.
    uint64_t unsent_due_ops = 0;
    // Open loop: for each operation of the measured part, how long after its due time the pacing
    // handed it to the client library. Part of every latency, and the client's doing.
    LatencyHistogram send_lag_ns;
    // The busiest client thread's share of the run on the CPU, polling for due times left out.
    // Near 1 the client, not the server, set the pace (see client_busy_limit).
    double client_busy = 0;
    // SIGINT or SIGTERM when the run was interrupted (sending stopped, replies waited for up to
    // interrupt_grace_s), else 0.
    int stop_signal = 0;
    // Connections that broke during the run (the server died or closed them), and when the last
    // connection finished, in seconds from the start (the warm-up included).
    uint32_t connections_lost = 0;
    double ran_s = 0;
    // Non-empty when the run could not be carried out at all (server unreachable, key refused,
    // enrolment failed); the statistics are then incomplete.
    std::string fatal;
};

// Runs the whole benchmark. Progress lines go to `progress` (stderr in jifen-bench).
RunResult run_load(const BenchOptions& options, std::FILE* progress);

}  // namespace jifen::bench
