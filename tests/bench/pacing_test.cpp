// Open-loop schedule: intended send times, due counts, bursts that keep the average rate.
#include "bench/load/pacing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "bench/load/random.hpp"
#include "tests/bench/seed.hpp"

namespace jifen::bench {
namespace {

constexpr uint64_t start_ns = 5'000'000'000;
constexpr uint64_t ms_ns = 1'000'000;

TEST(OpenLoopSchedule, ASteadyRateSpacesOperationsEvenlyFromTheStart) {
    const OpenLoopSchedule schedule(start_ns, 1'000.0);
    EXPECT_EQ(schedule.intended_ns(0), start_ns);
    EXPECT_EQ(schedule.intended_ns(1), start_ns + ms_ns);
    EXPECT_EQ(schedule.intended_ns(1'000), start_ns + 1'000 * ms_ns);
    EXPECT_EQ(schedule.intended_ns(3'600'000), start_ns + 3'600'000 * ms_ns);
}

TEST(OpenLoopSchedule, NothingIsDueBeforeTheStartAndOneOperationAtIt) {
    const OpenLoopSchedule schedule(start_ns, 1'000.0);
    EXPECT_EQ(schedule.due_count(0), 0u);
    EXPECT_EQ(schedule.due_count(start_ns - 1), 0u);
    EXPECT_EQ(schedule.due_count(start_ns), 1u);
    EXPECT_EQ(schedule.due_count(start_ns + ms_ns - 1), 1u);
    EXPECT_EQ(schedule.due_count(start_ns + ms_ns), 2u);
    EXPECT_EQ(schedule.due_count(start_ns + 1'000 * ms_ns - 1), 1'000u);
}

TEST(OpenLoopSchedule, DueCountsAgreeExactlyWithIntendedTimes) {
    const uint64_t seed = testing::test_seed();
    Rng rng(seed);
    const BurstShape bursty{.factor = 3.0, .burst_ms = 200, .period_ms = 1'000};
    for (const double rate : {1.0, 333.3, 10'000.0, 1'234'567.0}) {
        for (const BurstShape shape : {BurstShape{}, bursty}) {
            const OpenLoopSchedule schedule(start_ns, rate, shape);
            for (int probe = 0; probe < 2'000; ++probe) {
                const uint64_t now_ns = start_ns + rng.below(20'000 * ms_ns);
                const uint64_t due = schedule.due_count(now_ns);
                ASSERT_GE(due, 1u);
                ASSERT_LE(schedule.intended_ns(due - 1), now_ns)
                    << "rate " << rate << ", " << testing::seed_note(seed);
                ASSERT_GT(schedule.intended_ns(due), now_ns)
                    << "rate " << rate << ", " << testing::seed_note(seed);
            }
        }
    }
}

// Every intended send time of the senders sharing one schedule, over its first `window_ns`.
std::vector<uint64_t> shared_times(double rate, BurstShape shape, uint64_t senders,
                                   uint64_t window_ns) {
    std::vector<uint64_t> times;
    for (uint64_t sender = 0; sender < senders; ++sender) {
        const OpenLoopSchedule schedule(start_ns, rate, shape, {.index = sender, .count = senders});
        for (uint64_t index = 0; schedule.intended_ns(index) < start_ns + window_ns; ++index) {
            times.push_back(schedule.intended_ns(index));
        }
    }
    std::sort(times.begin(), times.end());
    return times;
}

TEST(OpenLoopSchedule, SendersSharingAScheduleSendOneOperationEveryIntervalNotAllAtOnce) {
    // 64 connections at 1,000 operations/s in total: one operation every millisecond, not 64
    // together every 64 ms; and 2,000 of them in 2 s, not 64 x 32 = 2,048.
    const std::vector<uint64_t> times = shared_times(1'000.0, {}, 64, 2'000 * ms_ns);
    ASSERT_EQ(times.size(), 2'000u);
    for (size_t index = 0; index < times.size(); ++index) {
        ASSERT_EQ(times[index], start_ns + index * ms_ns) << index;
    }
}

TEST(OpenLoopSchedule, SharedSchedulesKeepTheBurstsOfTheWholeSchedule) {
    const BurstShape bursty{.factor = 3.0, .burst_ms = 200, .period_ms = 1'000};
    const OpenLoopSchedule whole(start_ns, 10'000.0, bursty);
    const std::vector<uint64_t> times = shared_times(10'000.0, bursty, 7, 3'000 * ms_ns);
    ASSERT_EQ(times.size(), 30'000u);
    for (size_t index = 0; index < times.size(); ++index) {
        ASSERT_EQ(times[index], whole.intended_ns(index)) << index;
    }
}

TEST(OpenLoopSchedule, ASendersDueCountAgreesWithItsShareOfTheSchedule) {
    const uint64_t seed = testing::test_seed();
    Rng rng(seed);
    const BurstShape bursty{.factor = 2.0, .burst_ms = 100, .period_ms = 400};
    for (const BurstShape shape : {BurstShape{}, bursty}) {
        for (const uint64_t sender : {0u, 1u, 4u}) {
            const OpenLoopSchedule schedule(start_ns, 3'333.0, shape,
                                            {.index = sender, .count = 5});
            EXPECT_EQ(schedule.interval_ns(), 1'500'151u);  // 5 / 3,333 s = 1,500,150.02 ns.
            for (int probe = 0; probe < 1'000; ++probe) {
                const uint64_t now_ns = start_ns + rng.below(5'000 * ms_ns);
                const uint64_t due = schedule.due_count(now_ns);
                if (due > 0) {
                    ASSERT_LE(schedule.intended_ns(due - 1), now_ns) << testing::seed_note(seed);
                }
                ASSERT_GT(schedule.intended_ns(due), now_ns) << testing::seed_note(seed);
            }
        }
    }
}

TEST(OpenLoopSchedule, IntendedTimesNeverGoBackwards) {
    const OpenLoopSchedule schedule(start_ns, 7'777.0,
                                    BurstShape{.factor = 4.0, .burst_ms = 100, .period_ms = 500});
    for (uint64_t index = 1; index < 100'000; ++index) {
        ASSERT_GE(schedule.intended_ns(index), schedule.intended_ns(index - 1)) << index;
    }
}

TEST(OpenLoopSchedule, BurstsRunFasterButKeepTheAverageRateOverEachPeriod) {
    const double rate = 10'000.0;
    const OpenLoopSchedule schedule(start_ns, rate,
                                    BurstShape{.factor = 3.0, .burst_ms = 200, .period_ms = 1'000});
    // The first 200 ms carry 3 x 10'000 x 0.2 = 6'000 operations, the remaining 800 ms 4'000.
    EXPECT_NEAR(static_cast<double>(schedule.due_count(start_ns + 200 * ms_ns - 1)), 6'000.0, 1.0);
    EXPECT_NEAR(static_cast<double>(schedule.due_count(start_ns + 1'000 * ms_ns - 1)), 10'000.0,
                1.0);
    EXPECT_NEAR(static_cast<double>(schedule.due_count(start_ns + 7'000 * ms_ns - 1)), 70'000.0,
                1.0);
    EXPECT_NEAR(static_cast<double>(schedule.due_count(start_ns + 7'200 * ms_ns - 1)), 76'000.0,
                1.0);
}

TEST(BurstShape, HalfAShapeIsRefusedInsteadOfRunningSteady) {
    EXPECT_THROW(validate(BurstShape{.factor = 3.0}), std::invalid_argument);
    EXPECT_THROW(validate(BurstShape{.factor = 3.0, .burst_ms = 100}), std::invalid_argument);
    EXPECT_THROW(validate(BurstShape{.burst_ms = 100, .period_ms = 1'000}), std::invalid_argument);
    EXPECT_THROW(validate(BurstShape{.factor = 2.0, .burst_ms = 100, .period_ms = 0}),
                 std::invalid_argument);
}

TEST(BurstShape, ShapesThatCannotKeepTheAverageAreRefused) {
    EXPECT_NO_THROW(validate(BurstShape{}));
    EXPECT_NO_THROW(validate(BurstShape{.factor = 5.0, .burst_ms = 200, .period_ms = 1'000}));
    EXPECT_THROW(validate(BurstShape{.factor = 6.0, .burst_ms = 200, .period_ms = 1'000}),
                 std::invalid_argument);
    EXPECT_THROW(validate(BurstShape{.factor = 0.5, .burst_ms = 200, .period_ms = 1'000}),
                 std::invalid_argument);
    EXPECT_THROW(validate(BurstShape{.factor = 1.5, .burst_ms = 1'000, .period_ms = 1'000}),
                 std::invalid_argument);
}

TEST(OpenLoopSchedule, TheIntervalIsTheTimeBetweenTwoOperationsAtTheAverageRate) {
    EXPECT_EQ(OpenLoopSchedule(start_ns, 1'000.0).interval_ns(), ms_ns);
    EXPECT_EQ(OpenLoopSchedule(start_ns, 500.0).interval_ns(), 2 * ms_ns);
}

TEST(UnsentBehind, AnOperationDueAtTheStopInstantIsNotASignOfFallingBehind) {
    // 500 operations/s: every one due before the stop went out, but the one due exactly at the
    // stop lost the race between the deadline and the pacing timer.
    const OpenLoopSchedule schedule(start_ns, 500.0);
    const uint64_t stop_ns = start_ns + 10'000 * ms_ns;
    const uint64_t sent = schedule.due_count(stop_ns) - 1;
    ASSERT_EQ(schedule.intended_ns(sent), stop_ns);
    EXPECT_EQ(unsent_behind(schedule, sent, UINT64_MAX, stop_ns, schedule.interval_ns(), true), 0u);
}

TEST(UnsentBehind, OperationsOverdueByMoreThanTheGraceWithAFullWindowAreCounted) {
    // 1,000 operations/s for 10 s; only the first 9,000 went out. 10,000 were due by 1 ms before
    // the stop (operations 0..9,999), so 1,000 were held back by the full window.
    const OpenLoopSchedule schedule(start_ns, 1'000.0);
    const uint64_t stop_ns = start_ns + 10'000 * ms_ns;
    EXPECT_EQ(unsent_behind(schedule, 9'000, UINT64_MAX, stop_ns, ms_ns, true), 1'000u);
    // A budget of 9,500 operations leaves only 500 of them unsent.
    EXPECT_EQ(unsent_behind(schedule, 9'000, 9'500, stop_ns, ms_ns, true), 500u);
}

TEST(UnsentBehind, ASenderWithAFreeSlotHasNotFallenBehind) {
    // A free slot at the stop means the last wake-up sent everything then due; what is due since
    // waits for the pacing timer, not for the server.
    const OpenLoopSchedule schedule(start_ns, 1'000.0);
    const uint64_t stop_ns = start_ns + 10'000 * ms_ns;
    EXPECT_EQ(unsent_behind(schedule, 9'000, UINT64_MAX, stop_ns, ms_ns, false), 0u);
}

TEST(Latency, IsMeasuredFromTheIntendedSendTimeSoQueueingCounts) {
    // An operation due at t=1 ms that could only be sent at t=5 ms and completed at t=6 ms took
    // 5 ms from the user's point of view, not 1 ms.
    EXPECT_EQ(latency_ns(1 * ms_ns, 6 * ms_ns), 5 * ms_ns);
    EXPECT_EQ(latency_ns(6 * ms_ns, 6 * ms_ns), 0u);
    EXPECT_EQ(latency_ns(7 * ms_ns, 6 * ms_ns), 0u);
}

constexpr uint64_t us_ns = 1'000;

// At 20,000 operations a second the next is 50 us away: the timer, firing some 30 us late on the
// VM (and at least 50 us later before), would have sent it late, and that lateness counted as the
// server's latency.
TEST(PaceWait, AnOperationDueWithinTheLeadIsPolledForNotSleptFor) {
    const uint64_t now = start_ns;
    const PaceWait wait = pace_wait(now, now + 50 * us_ns, 80 * us_ns);
    EXPECT_EQ(wait.step, PaceStep::poll);
    EXPECT_EQ(pace_wait(now, now + 1 * us_ns, 80 * us_ns).step, PaceStep::poll);
}

TEST(PaceWait, WhatIsDueGoesOutAtOnce) {
    EXPECT_EQ(pace_wait(start_ns, start_ns, 80 * us_ns).step, PaceStep::send);
    EXPECT_EQ(pace_wait(start_ns, start_ns - ms_ns, 80 * us_ns).step, PaceStep::send);
}

TEST(PaceWait, AFarOperationIsSleptForUntilTheLeadBeforeIt) {
    const PaceWait wait = pace_wait(start_ns, start_ns + 300 * us_ns, 80 * us_ns);
    EXPECT_EQ(wait.step, PaceStep::sleep);
    EXPECT_EQ(wait.wake_ns, start_ns + 220 * us_ns);
    // Never longer than pace_wait_ns_max, so a slot freed meanwhile is noticed.
    EXPECT_EQ(pace_wait(start_ns, start_ns + 10 * ms_ns, 80 * us_ns).wake_ns,
              start_ns + pace_wait_ns_max);
}

TEST(PaceWait, WithEveryWindowFullItLooksAgainAfterTheLongestWait) {
    const PaceWait wait = pace_wait(start_ns, UINT64_MAX, 80 * us_ns);
    EXPECT_EQ(wait.step, PaceStep::sleep);
    EXPECT_EQ(wait.wake_ns, start_ns + pace_wait_ns_max);
}

TEST(TimerLateness, TheLeadSettlesAboveNearlyAllMeasuredWakeUps) {
    TimerLateness lateness;
    EXPECT_EQ(lateness.lead_ns(), pace_lead_ns_initial);
    // Wake-ups 20 to 40 us late, as on the VM: the lead settles above nearly all of them.
    for (int wake = 0; wake < 1'000; ++wake) {
        lateness.observe((20 + (wake * 7) % 21) * us_ns);
    }
    EXPECT_GT(lateness.lead_ns(), 40 * us_ns);
    EXPECT_LT(lateness.lead_ns(), 80 * us_ns);
}

TEST(TimerLateness, APreemptedWakeUpRaisesTheLeadOnlyBriefly) {
    TimerLateness lateness;
    for (int wake = 0; wake < 100; ++wake) {
        lateness.observe(10 * us_ns);
    }
    const uint64_t settled = lateness.lead_ns();
    lateness.observe(50 * ms_ns);  // Preempted: no lead could have helped.
    EXPECT_LE(lateness.lead_ns(), pace_lead_ns_max);
    for (int wake = 0; wake < 50; ++wake) {
        lateness.observe(10 * us_ns);
    }
    EXPECT_LE(lateness.lead_ns(), settled + 2 * us_ns);
}

TEST(TimerLateness, TheLeadStaysWithinItsBounds) {
    TimerLateness punctual;
    for (int wake = 0; wake < 100; ++wake) {
        punctual.observe(0);
    }
    EXPECT_EQ(punctual.lead_ns(), pace_lead_ns_min);
    TimerLateness sluggish;
    for (int wake = 0; wake < 100; ++wake) {
        sluggish.observe(10 * ms_ns);
    }
    EXPECT_EQ(sluggish.lead_ns(), pace_lead_ns_max);
}

TEST(MeasuredSpan, AnOpenLoopLastsToTheEndOfItsScheduleWhenItsTailIsQuiet) {
    // --rate 5000 -d 4 with bursts that send a period's operations in its first half: the last
    // completes at 3.0 s, but the run lasted 4 s, so 20,000 operations make 5,000/s, not 6,667.
    const uint64_t second_ns = 1'000 * ms_ns;
    EXPECT_EQ(measured_span_ns(0, 3 * second_ns, 4 * second_ns), 4 * second_ns);
    // Replies still coming after the schedule's end count until the last one.
    EXPECT_EQ(measured_span_ns(0, 4 * second_ns + ms_ns, 4 * second_ns), 4 * second_ns + ms_ns);
    // A closed loop (no schedule end) lasts to its last completion; after a warm-up, from its end.
    EXPECT_EQ(measured_span_ns(second_ns, 3 * second_ns, 0), 2 * second_ns);
    // Nothing completed after the warm-up: nothing measured.
    EXPECT_EQ(measured_span_ns(2 * second_ns, 0, second_ns), 0u);
}

}  // namespace
}  // namespace jifen::bench
