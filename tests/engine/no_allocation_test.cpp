// Proves Shard::apply allocates nothing on the hot path: this binary replaces the global
// operator new and counts calls while applying earn, redeem, hold, capture, release, reverse,
// transfer and adjust to existing members, one at a time and through apply_batch.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "tests/engine/commands.hpp"

namespace {
std::atomic<uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* memory = std::malloc(size == 0 ? 1 : size)) {
        return memory;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }

namespace jifen::engine {
namespace {

using namespace jifen::engine::test;

TEST(NoAllocation, ApplyOnExistingMembersAllocatesNothing) {
    Config config;
    config.expiry_months = 12;
    config.members_per_shard_max = 1024;
    config.txns_per_shard_max = 1 << 16;
    config.holds_per_shard_max = 1024;
    config.lots_per_shard_max = 1 << 12;
    TxnIndex index(1 << 17);
    Shard shard(0, 1, config, &index);
    for (MemberId member = 1; member <= 100; ++member) {
        ASSERT_EQ(shard.apply(enroll(member, member)).result, Result::ok);
    }
    uint64_t next = 1'000;
    std::vector<Command> batch(64);
    std::vector<Outcome> batch_outcomes(batch.size());
    const uint64_t before = allocations.load();
    uint64_t ok = 0;
    for (int round = 0; round < 50; ++round) {
        const TimeUs now = t0_us + static_cast<TimeUs>(round) * 40 * day_us;  // New months.
        for (MemberId member = 1; member <= 100; ++member) {
            const uint64_t earned = next++;
            ok += shard.apply(earn(earned, member, 100, now)).result == Result::ok;
            ok += shard.apply(redeem(next++, member, 10, now)).result == Result::ok;
            const uint64_t held = next++;
            ok += shard.apply(hold(held, member, 20, now)).result == Result::ok;
            ok += shard.apply(capture(next++, member, held, 5, now)).result == Result::ok;
            const uint64_t released = next++;
            ok += shard.apply(hold(released, member, 20, now)).result == Result::ok;
            ok += shard.apply(release(next++, member, released, now)).result == Result::ok;
            ok += shard.apply(reverse(next++, member, earned, now)).result == Result::ok;
            ok += shard.apply(earn(next++, member, 50, now)).result == Result::ok;
            ok += shard.apply(transfer(next++, member, member % 100 + 1, 5, now)).result ==
                  Result::ok;
            ok += shard.apply(adjust(next++, member, 3, false, now)).result == Result::ok;
        }
        shard.apply(tick(64, now));
        for (size_t i = 0; i < batch.size(); ++i) {
            batch[i] = i % 2 == 0 ? earn(next++, 1 + i % 100, 7, now)
                                  : redeem(next++, 1 + i % 100, 1, now);
        }
        shard.apply_batch(batch, batch_outcomes);
        for (const Outcome& outcome : batch_outcomes) {
            ok += outcome.result == Result::ok;
        }
    }
    const uint64_t after = allocations.load();
    EXPECT_EQ(after - before, 0u);
    EXPECT_GT(ok, 40'000u);  // The loop really applied, not refused.
}

}  // namespace
}  // namespace jifen::engine
