// Open-loop schedule arithmetic: the inverse of a piecewise-linear "operations allowed" curve.
#include "bench/load/pacing.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace jifen::bench {

void validate(const BurstShape& shape) {
    const BurstShape steady_shape;
    if (shape.factor == steady_shape.factor && shape.burst_ms == steady_shape.burst_ms &&
        shape.period_ms == steady_shape.period_ms) {
        return;
    }
    // Half a shape would be silently steady: refused so that what was asked for is what runs.
    if (!(shape.factor > 1.0) || !std::isfinite(shape.factor)) {
        throw std::invalid_argument(
            "--burst-factor must be a number above 1 when --burst-ms or --burst-period-ms is "
            "given (bursts take all three flags)");
    }
    if (shape.burst_ms == 0) {
        throw std::invalid_argument(
            "--burst-ms must be more than 0 with --burst-factor (bursts take --burst-factor, "
            "--burst-ms and --burst-period-ms together)");
    }
    if (shape.period_ms == 0) {
        throw std::invalid_argument(
            "--burst-period-ms must be more than 0 with --burst-factor (bursts take "
            "--burst-factor, --burst-ms and --burst-period-ms together)");
    }
    if (shape.burst_ms >= shape.period_ms) {
        throw std::invalid_argument("--burst-ms must be shorter than --burst-period-ms");
    }
    if (shape.factor * static_cast<double>(shape.burst_ms) > static_cast<double>(shape.period_ms)) {
        throw std::invalid_argument(
            "--burst-factor x --burst-ms exceeds --burst-period-ms, so the average rate cannot "
            "hold");
    }
}

OpenLoopSchedule::OpenLoopSchedule(uint64_t start_ns, double rate_per_sec, BurstShape shape,
                                   ScheduleShare share) noexcept
    : start_ns_(start_ns),
      share_(share),
      steady_(shape.steady()),
      rate_per_ns_(rate_per_sec / 1e9) {
    if (steady_) {
        return;
    }
    period_ns_ = static_cast<double>(shape.period_ms) * 1e6;
    burst_ns_ = static_cast<double>(shape.burst_ms) * 1e6;
    burst_rate_per_ns_ = rate_per_ns_ * shape.factor;
    ops_per_period_ = rate_per_ns_ * period_ns_;
    ops_per_burst_ = burst_rate_per_ns_ * burst_ns_;
    rest_rate_per_ns_ = (ops_per_period_ - ops_per_burst_) / (period_ns_ - burst_ns_);
}

double OpenLoopSchedule::allowed(double elapsed_ns) const noexcept {
    if (steady_) {
        return elapsed_ns * rate_per_ns_;
    }
    const double periods = std::floor(elapsed_ns / period_ns_);
    const double within_ns = elapsed_ns - periods * period_ns_;
    const double in_period = within_ns <= burst_ns_
                                 ? within_ns * burst_rate_per_ns_
                                 : ops_per_burst_ + (within_ns - burst_ns_) * rest_rate_per_ns_;
    return periods * ops_per_period_ + in_period;
}

uint64_t OpenLoopSchedule::intended_ns(uint64_t index) const noexcept {
    return schedule_intended_ns(share_.index + index * share_.count);
}

uint64_t OpenLoopSchedule::due_count(uint64_t now_ns) const noexcept {
    // This sender's operations i with share.index + i x share.count below the schedule's count.
    const uint64_t due = schedule_due_count(now_ns);
    return due > share_.index ? (due - share_.index + share_.count - 1) / share_.count : 0;
}

uint64_t OpenLoopSchedule::schedule_intended_ns(uint64_t index) const noexcept {
    const auto target = static_cast<double>(index);
    double offset_ns = 0;
    if (steady_) {
        offset_ns = target / rate_per_ns_;
    } else {
        const double periods = std::floor(target / ops_per_period_);
        const double within = target - periods * ops_per_period_;
        offset_ns = periods * period_ns_;
        if (within < ops_per_burst_) {
            offset_ns += within / burst_rate_per_ns_;
        } else if (rest_rate_per_ns_ > 0) {
            offset_ns += burst_ns_ + (within - ops_per_burst_) / rest_rate_per_ns_;
        } else {
            offset_ns += period_ns_;  // The whole period's operations went out in the burst.
        }
    }
    return start_ns_ + static_cast<uint64_t>(std::ceil(offset_ns));
}

uint64_t OpenLoopSchedule::schedule_due_count(uint64_t now_ns) const noexcept {
    if (now_ns < start_ns_) {
        return 0;
    }
    // Operation i is due once allowed() reaches i, so floor(allowed) + 1 are due; then correct the
    // floating-point guess so that due_count and intended_ns agree exactly.
    auto due =
        static_cast<uint64_t>(std::floor(allowed(static_cast<double>(now_ns - start_ns_)))) + 1;
    while (due > 0 && schedule_intended_ns(due - 1) > now_ns) {
        --due;
    }
    while (schedule_intended_ns(due) <= now_ns) {
        ++due;
    }
    return due;
}

uint64_t OpenLoopSchedule::interval_ns() const noexcept {
    return static_cast<uint64_t>(std::ceil(static_cast<double>(share_.count) / rate_per_ns_));
}

namespace {
// The gains of the lateness estimate (RFC 6298's alpha and beta) and its deviations in the lead.
constexpr double lateness_mean_gain = 1.0 / 8;
constexpr double lateness_deviation_gain = 1.0 / 4;
constexpr double lead_deviations = 4;
}  // namespace

void TimerLateness::observe(uint64_t late_ns) noexcept {
    // A wake-up later than the longest lead (the thread was preempted, say) could not have been
    // polled away; at full size it would inflate the estimate for many wake-ups to come.
    const auto late = static_cast<double>(std::min(late_ns, pace_lead_ns_max));
    if (!observed_) {
        observed_ = true;
        mean_ns_ = late;
        deviation_ns_ = late / 2;
        return;
    }
    deviation_ns_ += lateness_deviation_gain * (std::abs(late - mean_ns_) - deviation_ns_);
    mean_ns_ += lateness_mean_gain * (late - mean_ns_);
}

uint64_t TimerLateness::lead_ns() const noexcept {
    if (!observed_) {
        return pace_lead_ns_initial;
    }
    const double lead = mean_ns_ + lead_deviations * deviation_ns_;
    return std::clamp(static_cast<uint64_t>(lead), pace_lead_ns_min, pace_lead_ns_max);
}

PaceWait pace_wait(uint64_t now_ns, uint64_t next_due_ns, uint64_t lead_ns) noexcept {
    if (next_due_ns == UINT64_MAX) {
        return {PaceStep::sleep, now_ns + pace_wait_ns_max};
    }
    if (next_due_ns <= now_ns) {
        return {PaceStep::send, now_ns};
    }
    if (next_due_ns - now_ns <= lead_ns) {
        return {PaceStep::poll, next_due_ns};
    }
    return {PaceStep::sleep, std::min(next_due_ns - lead_ns, now_ns + pace_wait_ns_max)};
}

uint64_t unsent_behind(const OpenLoopSchedule& schedule, uint64_t scheduled, uint64_t budget,
                       uint64_t stop_ns, uint64_t grace_ns, bool window_full) noexcept {
    if (!window_full || stop_ns < grace_ns) {
        return 0;
    }
    const uint64_t due = std::min(schedule.due_count(stop_ns - grace_ns), budget);
    return due > scheduled ? due - scheduled : 0;
}

}  // namespace jifen::bench
