// RunStats: what counts as an operation, an error and an unexpected outcome.
#include "bench/load/stats.hpp"

#include <gtest/gtest.h>

namespace jifen::bench {
namespace {

TEST(RunStats, AFailureWithoutAnAnswerIsAnErrorButNeitherAnOperationNorALatency) {
    RunStats stats;
    stats.record(OpKind::earn, Result::ok, 1'000);
    stats.record(OpKind::redeem, Result::insufficient_points, 2'000);
    // The server died: what was in flight failed after 5 s, which is not the server's latency.
    stats.record_failure(OpKind::earn, ClientFailure::closed);
    stats.record_failure(OpKind::balance, ClientFailure::timeout);

    EXPECT_EQ(stats.completed(), 2u);
    EXPECT_EQ(stats.failed(), 2u);
    EXPECT_EQ(stats.of(OpKind::earn).completed(), 1u);
    EXPECT_EQ(stats.of(OpKind::earn).failed(), 1u);
    EXPECT_EQ(stats.latency_all().count(), 2u);
    EXPECT_EQ(stats.latency_all().max(), 2'000u);
    EXPECT_EQ(stats.errors(), 3u);      // The refusal and both failures.
    EXPECT_EQ(stats.unexpected(), 2u);  // A redeem may meet insufficient_points.
}

TEST(RunStats, MergingKeepsFailuresApartFromOperations) {
    RunStats one;
    one.record(OpKind::earn, Result::ok, 1'000);
    RunStats other;
    other.record_failure(OpKind::earn, ClientFailure::closed);
    one.merge(other);
    EXPECT_EQ(one.completed(), 1u);
    EXPECT_EQ(one.failed(), 1u);
    one.clear();
    EXPECT_EQ(one.failed(), 0u);
}

}  // namespace
}  // namespace jifen::bench
