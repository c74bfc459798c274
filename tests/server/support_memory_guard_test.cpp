// The memory budget's decision: refuse at the budget, accept again 5% below it.
#include <gtest/gtest.h>
#include <unistd.h>

#include "server/memory_guard.hpp"

namespace jifen::server {
namespace {

TEST(MemoryGuard, RefusesAtTheBudgetAndAcceptsAgainFivePercentBelowIt) {
    MemoryGuard guard(1'000);
    EXPECT_FALSE(guard.update(999));
    EXPECT_FALSE(guard.full());
    EXPECT_TRUE(guard.update(1'000));  // Changed: full.
    EXPECT_TRUE(guard.full());
    EXPECT_FALSE(guard.update(951));  // Still within 5% of the budget: stays full.
    EXPECT_TRUE(guard.full());
    EXPECT_TRUE(guard.update(949));  // Changed: below 95%.
    EXPECT_FALSE(guard.full());
    EXPECT_FALSE(guard.update(999));  // Below the budget again: accepting.
    EXPECT_FALSE(guard.full());
    EXPECT_EQ(guard.last_bytes(), 999u);
}

TEST(MemoryGuard, SamplesThisProcessAndDefaultsBelowTheMachinesMemory) {
    MemoryGuard guard(1);
    const uint64_t sampled = guard.sample_process();
    EXPECT_GT(sampled, 0u);
    EXPECT_TRUE(guard.update());
    EXPECT_TRUE(guard.full());
    EXPECT_GE(guard.last_bytes(), sampled / 2);  // Anonymous memory of a running test binary.
    const uint64_t budget = MemoryGuard::default_budget_bytes();
    EXPECT_GT(budget, sampled);
    const uint64_t machine_bytes =
        static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
    EXPECT_LE(budget, machine_bytes / 5 * 4 + 4096);  // At most four fifths of the machine.
}

}  // namespace
}  // namespace jifen::server
