// Recording and merging run statistics.
#include "bench/load/stats.hpp"

#include <algorithm>

namespace jifen::bench {

std::string_view to_string(ClientFailure failure) noexcept {
    switch (failure) {
        case ClientFailure::connect:
            return "client_connect";
        case ClientFailure::timeout:
            return "client_timeout";
        case ClientFailure::closed:
            return "client_closed";
        case ClientFailure::protocol:
            return "client_protocol";
        case ClientFailure::overloaded:
            return "client_overloaded";
    }
    return "client_unknown";
}

void RunStats::record_n(OpKind kind, Result result, uint64_t latency_ns, uint64_t count) noexcept {
    KindStats& stats = of(kind);
    stats.latency_ns.record_n(latency_ns, count);
    const auto slot = std::min<uint32_t>(static_cast<uint32_t>(result), result_slots - 1);
    stats.results[slot] += count;
}

uint64_t KindStats::failed() const noexcept {
    uint64_t total = 0;
    for (const uint64_t count : failures) {
        total += count;
    }
    return total;
}

void RunStats::record_failure(OpKind kind, ClientFailure failure) noexcept {
    ++of(kind).failures[static_cast<size_t>(failure)];
}

void RunStats::merge(const RunStats& other) noexcept {
    for (size_t kind = 0; kind < op_kind_count; ++kind) {
        kinds[kind].latency_ns.merge(other.kinds[kind].latency_ns);
        for (size_t slot = 0; slot < result_slots; ++slot) {
            kinds[kind].results[slot] += other.kinds[kind].results[slot];
        }
        for (size_t failure = 0; failure < client_failure_count; ++failure) {
            kinds[kind].failures[failure] += other.kinds[kind].failures[failure];
        }
    }
    cross_shard_transfers += other.cross_shard_transfers;
}

void RunStats::clear() noexcept {
    for (KindStats& stats : kinds) {
        stats.latency_ns.clear();
        stats.results.fill(0);
        stats.failures.fill(0);
    }
    cross_shard_transfers = 0;
}

uint64_t RunStats::completed() const noexcept {
    uint64_t total = 0;
    for (const KindStats& stats : kinds) {
        total += stats.completed();
    }
    return total;
}

uint64_t RunStats::failed() const noexcept {
    uint64_t total = 0;
    for (const KindStats& stats : kinds) {
        total += stats.failed();
    }
    return total;
}

uint64_t RunStats::errors() const noexcept {
    uint64_t total = 0;
    for (const KindStats& stats : kinds) {
        total +=
            stats.completed() - stats.results[static_cast<size_t>(Result::ok)] + stats.failed();
    }
    return total;
}

uint64_t RunStats::unexpected() const noexcept {
    uint64_t total = 0;
    for (size_t kind = 0; kind < op_kind_count; ++kind) {
        const KindStats& stats = kinds[kind];
        for (uint32_t slot = 0; slot < result_slots; ++slot) {
            if (stats.results[slot] != 0 &&
                !is_expected(static_cast<OpKind>(kind), static_cast<Result>(slot))) {
                total += stats.results[slot];
            }
        }
        total += stats.failed();
    }
    return total;
}

LatencyHistogram RunStats::latency_all() const {
    LatencyHistogram all;
    for (const KindStats& stats : kinds) {
        all.merge(stats.latency_ns);
    }
    return all;
}

}  // namespace jifen::bench
