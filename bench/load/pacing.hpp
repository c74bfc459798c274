// Open-loop pacing (as wrk2 does): every operation has an intended send time fixed in advance by
// the target rate, and its latency is measured from that time, not from when it was actually
// sent. A server that stalls for a second therefore shows a second of queueing in every operation
// that should have gone out during the stall, instead of hiding it behind a client that waited
// politely (coordinated omission).
#pragma once

#include <cstdint>

namespace jifen::bench {

// Optional bursts: in every period_ms the first burst_ms run at factor x the average rate and the
// rest of the period slower, so that the average over a period is still the requested rate.
// factor 1 (or burst_ms 0) is a steady rate. Requires factor * burst_ms <= period_ms.
struct BurstShape {
    double factor = 1.0;
    uint64_t burst_ms = 0;
    uint64_t period_ms = 0;

    bool steady() const noexcept { return factor == 1.0 || burst_ms == 0 || period_ms == 0; }
};

// Throws std::invalid_argument when the shape cannot keep the average (see BurstShape).
void validate(const BurstShape& shape);

// The schedule of one sender. Operation i (0, 1, 2, ...) is due when the cumulative number of
// operations the rate allows since start_ns first exceeds i: at start_ns + i / rate for a steady
// rate.
class OpenLoopSchedule {
public:
    // rate_per_sec > 0: average operations per second for this sender. shape must be valid.
    OpenLoopSchedule(uint64_t start_ns, double rate_per_sec, BurstShape shape = {}) noexcept;

    // When operation `index` should be sent.
    uint64_t intended_ns(uint64_t index) const noexcept;

    // How many operations are due by `now_ns`: those with intended_ns <= now_ns.
    uint64_t due_count(uint64_t now_ns) const noexcept;

    uint64_t start_ns() const noexcept { return start_ns_; }

    // The average time between two operations (1 / rate).
    uint64_t interval_ns() const noexcept;

private:
    // Operations allowed in the first `elapsed_ns` (a piecewise-linear, increasing function).
    double allowed(double elapsed_ns) const noexcept;

    uint64_t start_ns_;
    bool steady_;
    double rate_per_ns_;    // Average.
    double period_ns_ = 0;  // Burst period.
    double burst_ns_ = 0;   // Burst length within a period.
    double burst_rate_per_ns_ = 0;
    double rest_rate_per_ns_ = 0;
    double ops_per_period_ = 0;
    double ops_per_burst_ = 0;
};

// At the end of an open-loop run: how many operations the schedule made due that were never sent
// because the sender fell behind (the server did not keep up). `scheduled` operations went out
// (or wait in the client's queue, timed from their due time); at most `budget` may. Only
// operations due more than `grace_ns` before `stop_ns` count, since one that fell due just before
// the stop may only be waiting for the pacing timer; and none count when `window_full` is false,
// since a sender with a free slot sends everything due whenever it wakes.
uint64_t unsent_behind(const OpenLoopSchedule& schedule, uint64_t scheduled, uint64_t budget,
                       uint64_t stop_ns, uint64_t grace_ns, bool window_full) noexcept;

// Latency of an operation that completed at `completed_ns` and was due at `intended_ns` (open
// loop) or sent at `intended_ns` (closed loop, where the two are the same).
constexpr uint64_t latency_ns(uint64_t intended_ns, uint64_t completed_ns) noexcept {
    return completed_ns > intended_ns ? completed_ns - intended_ns : 0;
}

}  // namespace jifen::bench
