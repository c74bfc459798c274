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
// All three at their defaults is a steady rate; otherwise all three must be set (factor > 1,
// 0 < burst_ms < period_ms) and factor * burst_ms <= period_ms.
struct BurstShape {
    double factor = 1.0;
    uint64_t burst_ms = 0;
    uint64_t period_ms = 0;

    bool steady() const noexcept { return factor == 1.0 || burst_ms == 0 || period_ms == 0; }
};

// Throws std::invalid_argument, naming the --burst-* flags, when the shape is half set or cannot
// keep the average (see BurstShape).
void validate(const BurstShape& shape);

// The highest rate a schedule takes: one operation per nanosecond, the schedule's resolution.
// Above it several operations would share a due time, and the arithmetic of an "infinite" rate
// never finds the next due operation.
inline constexpr double rate_per_sec_max = 1e9;

// Several senders share one schedule: sender `index` of `count` sends the schedule's operations
// index, index + count, index + 2 x count, ... So the senders together send one operation every
// 1 / rate, evenly spaced, bursts included, instead of all count of them at the same instant
// every count / rate.
struct ScheduleShare {
    uint64_t index = 0;
    uint64_t count = 1;
};

// One sender's part of an open-loop schedule. Operation j of the whole schedule (0, 1, 2, ...) is
// due when the cumulative number of operations the rate allows since start_ns first exceeds j: at
// start_ns + j / rate for a steady rate. The sender's operation i is the schedule's operation
// share.index + i x share.count.
class OpenLoopSchedule {
public:
    // rate_per_sec in (0, rate_per_sec_max]: average operations per second of the whole schedule,
    // over all senders sharing it. shape must be valid; share.index < share.count.
    OpenLoopSchedule(uint64_t start_ns, double rate_per_sec, BurstShape shape = {},
                     ScheduleShare share = {}) noexcept;

    // When this sender's operation `index` should be sent.
    uint64_t intended_ns(uint64_t index) const noexcept;

    // How many of this sender's operations are due by `now_ns`: those with intended_ns <= now_ns.
    uint64_t due_count(uint64_t now_ns) const noexcept;

    uint64_t start_ns() const noexcept { return start_ns_; }

    // The average time between two of this sender's operations (share.count / rate).
    uint64_t interval_ns() const noexcept;

private:
    // Operations of the whole schedule allowed in the first `elapsed_ns` (a piecewise-linear,
    // increasing function), when the whole schedule's operation `index` is due, and how many of
    // them are due by `now_ns`.
    double allowed(double elapsed_ns) const noexcept;
    uint64_t schedule_intended_ns(uint64_t index) const noexcept;
    uint64_t schedule_due_count(uint64_t now_ns) const noexcept;

    uint64_t start_ns_;
    ScheduleShare share_;
    bool steady_;
    double rate_per_ns_;    // Average.
    double period_ns_ = 0;  // Burst period.
    double burst_ns_ = 0;   // Burst length within a period.
    double burst_rate_per_ns_ = 0;
    double rest_rate_per_ns_ = 0;
    double ops_per_period_ = 0;
    double ops_per_burst_ = 0;
};

// The longest sleep of a pacing thread: while every window is full it looks again this soon, in
// case a completion freed a slot without anything else happening. Also the least grace for
// unsent_behind(), since an operation that fell due within it may only be waiting for the timer.
inline constexpr uint64_t pace_wait_ns_max = 500'000;

// A sleeping thread's timer fires late: on the 2-core VM of docs/performance.md by 28 us on
// average and up to 120 us. Since latency counts from the due time, that lateness would count as
// the server's, so the pacing stops sleeping a lead before each due time and polls its event loop
// (replies are still handled) until the operation is due. The lead is learnt from the timer's own
// lateness, as TCP learns its retransmission timeout (RFC 6298): the mean plus 4 mean deviations,
// bounded below by pace_lead_ns_min and above by pace_lead_ns_max, which bounds the polling's CPU
// (at most pace_lead_ns_max per due time).
inline constexpr uint64_t pace_lead_ns_min = 2'000;
inline constexpr uint64_t pace_lead_ns_max = 200'000;
inline constexpr uint64_t pace_lead_ns_initial = 100'000;  // Before the first wake-up.
static_assert(pace_lead_ns_min <= pace_lead_ns_initial && pace_lead_ns_initial <= pace_lead_ns_max);
static_assert(pace_lead_ns_max < pace_wait_ns_max);

class TimerLateness {
public:
    // One wake-up that came `late_ns` after the time its timer was set for.
    void observe(uint64_t late_ns) noexcept;
    // How long before a due time to stop sleeping.
    uint64_t lead_ns() const noexcept;

private:
    bool observed_ = false;
    double mean_ns_ = 0;
    double deviation_ns_ = 0;  // Mean absolute deviation from mean_ns_.
};

// What a pacing thread does next, at now_ns, when its next operation is due at next_due_ns
// (UINT64_MAX: none can be sent, every window is full).
enum class PaceStep : uint8_t {
    send,   // Something is due: send it, and everything else due, now.
    poll,   // Due within the lead: run ready handlers and look again, without sleeping.
    sleep,  // Sleep on the timer until wake_ns, the lead before the due time (or sooner).
};
struct PaceWait {
    PaceStep step;
    uint64_t wake_ns;  // For sleep.
};
PaceWait pace_wait(uint64_t now_ns, uint64_t next_due_ns, uint64_t lead_ns) noexcept;

// At the end of an open-loop run: how many operations the schedule made due that were never sent
// because the sender fell behind (the server did not keep up). `scheduled` operations went out
// (or wait in the client's queue, timed from their due time); at most `budget` may. Only
// operations due more than `grace_ns` before `stop_ns` count, since one that fell due just before
// the stop may only be waiting for the pacing timer; and none count when `window_full` is false,
// since a sender with a free slot sends everything due whenever it wakes.
uint64_t unsent_behind(const OpenLoopSchedule& schedule, uint64_t scheduled, uint64_t budget,
                       uint64_t stop_ns, uint64_t grace_ns, bool window_full) noexcept;

// How long the measured part of a run lasted, from `measured_from_ns` (the start, or the end of
// the warm-up) to its last completion; in an open loop to `schedule_end_ns` when that is later
// (0 otherwise). A schedule's quiet tail, say the rest after a burst, is part of a run at the
// requested rate: ended at the last completion, the run would seem faster than --rate.
constexpr uint64_t measured_span_ns(uint64_t measured_from_ns, uint64_t last_completion_ns,
                                    uint64_t schedule_end_ns) noexcept {
    const uint64_t end_ns =
        last_completion_ns > schedule_end_ns ? last_completion_ns : schedule_end_ns;
    return end_ns > measured_from_ns ? end_ns - measured_from_ns : 0;
}

// Latency of an operation that completed at `completed_ns` and was due at `intended_ns` (open
// loop) or sent at `intended_ns` (closed loop, where the two are the same).
constexpr uint64_t latency_ns(uint64_t intended_ns, uint64_t completed_ns) noexcept {
    return completed_ns > intended_ns ? completed_ns - intended_ns : 0;
}

}  // namespace jifen::bench
