// What a run measures: per operation kind, a latency histogram and a count of every outcome.
// Each worker thread fills its own RunStats; the reporter merges them.
#pragma once

#include <array>
#include <cstdint>

#include "bench/load/histogram.hpp"
#include "bench/load/op_mix.hpp"
#include "protocol/result.hpp"

namespace jifen::bench {

// Result codes are below 400 (protocol/result.hpp); a count slot each keeps recording O(1).
inline constexpr uint32_t result_slots = 400;

// Failures with no per-operation Result (the client library's Failure, except `refused`, whose
// server Result is counted as a result): the connection broke, timed out or was unparseable.
enum class ClientFailure : uint8_t { connect, timeout, closed, protocol, overloaded };
inline constexpr size_t client_failure_count = 5;
std::string_view to_string(ClientFailure failure) noexcept;

// An operation completes when the server answers it, whatever the Result: only those count as
// operations, in throughput and in latency. One that fails without an answer (its connection broke
// or timed out) is a failure, counted apart: its time to failure says nothing about the server's
// latency, and a dead server must not show a throughput.
struct KindStats {
    LatencyHistogram latency_ns;  // Every completed operation, whatever its Result.
    std::array<uint64_t, result_slots> results = {};
    std::array<uint64_t, client_failure_count> failures = {};

    uint64_t completed() const noexcept { return latency_ns.count(); }
    uint64_t failed() const noexcept;
};

struct RunStats {
    std::array<KindStats, op_kind_count> kinds;
    // Completed transfers whose two members live on different shards of the server (by its
    // HELLO's shard count): measured, whatever --transfers asked for.
    uint64_t cross_shard_transfers = 0;

    KindStats& of(OpKind kind) noexcept { return kinds[static_cast<size_t>(kind)]; }
    const KindStats& of(OpKind kind) const noexcept { return kinds[static_cast<size_t>(kind)]; }

    void record(OpKind kind, Result result, uint64_t latency_ns) noexcept {
        record_n(kind, result, latency_ns, 1);
    }
    // count operations with the same outcome and latency.
    void record_n(OpKind kind, Result result, uint64_t latency_ns, uint64_t count) noexcept;
    void record_failure(OpKind kind, ClientFailure failure) noexcept;
    void merge(const RunStats& other) noexcept;
    void clear() noexcept;

    uint64_t completed() const noexcept;
    uint64_t failed() const noexcept;
    // Operations whose outcome was not ok: refusals (expected or not) and failures.
    uint64_t errors() const noexcept;
    // Errors that is_expected() does not allow, plus every client failure: these fail the run.
    uint64_t unexpected() const noexcept;
    // All kinds' latencies in one histogram.
    LatencyHistogram latency_all() const;
};

}  // namespace jifen::bench
