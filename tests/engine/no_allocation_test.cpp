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

// record_derived: as the server runs the engine, making the derived records of each command
// (settlements as months pass and lots expire, the receivers of transfers) into a list reserved
// up front.
void expect_no_allocation(bool record_derived) {
    Config config;
    config.expiry_months = 12;
    config.members_per_shard_max = 1024;
    config.txns_per_shard_max = 1 << 16;
    config.holds_per_shard_max = 1024;
    config.lots_per_shard_max = 1 << 12;
    TxnIndex index(1 << 17);
    Shard shard(0, 1, config, &index);
    shard.record_derived(record_derived, Shard::derived_records_max(64, 64));
    for (MemberId member = 1; member <= 100; ++member) {
        ASSERT_EQ(shard.apply(enroll(member, member)).result, Result::ok);
    }
    uint64_t next = 1'000;
    std::vector<Command> batch(64);
    std::vector<Outcome> batch_outcomes(batch.size());
    const uint64_t before = allocations.load();
    uint64_t ok = 0;
    uint64_t derived = 0;
    const auto count = [&](const Outcome& outcome) {
        derived += outcome.derived_count;
        return outcome.result == Result::ok ? 1 : 0;
    };
    for (int round = 0; round < 50; ++round) {
        const TimeUs now = t0_us + static_cast<TimeUs>(round) * 40 * day_us;  // New months.
        for (MemberId member = 1; member <= 100; ++member) {
            const uint64_t earned = next++;
            ok += count(shard.apply(earn(earned, member, 100, now)));
            ok += count(shard.apply(redeem(next++, member, 10, now)));
            const uint64_t held = next++;
            ok += count(shard.apply(hold(held, member, 20, now)));
            ok += count(shard.apply(capture(next++, member, held, 5, now)));
            const uint64_t released = next++;
            ok += count(shard.apply(hold(released, member, 20, now)));
            ok += count(shard.apply(release(next++, member, released, now)));
            ok += count(shard.apply(reverse(next++, member, earned, now)));
            ok += count(shard.apply(earn(next++, member, 50, now)));
            ok += count(shard.apply(transfer(next++, member, member % 100 + 1, 5, now)));
            ok += count(shard.apply(adjust(next++, member, 3, false, now)));
        }
        count(shard.apply(tick(64, now)));
        for (size_t i = 0; i < batch.size(); ++i) {
            batch[i] = i % 2 == 0 ? earn(next++, 1 + i % 100, 7, now)
                                  : redeem(next++, 1 + i % 100, 1, now);
        }
        shard.apply_batch(batch, batch_outcomes);
        for (const Outcome& outcome : batch_outcomes) {
            ok += count(outcome);
        }
    }
    const uint64_t after = allocations.load();
    EXPECT_EQ(after - before, 0u);
    EXPECT_GT(ok, 40'000u);  // The loop really applied, not refused.
    if (record_derived) {
        EXPECT_GT(derived, 5'000u);  // Transfers' receivers and expiries were recorded.
    } else {
        EXPECT_EQ(derived, 0u);
    }
}

TEST(NoAllocation, ApplyOnExistingMembersAllocatesNothing) { expect_no_allocation(false); }

TEST(NoAllocation, RecordingDerivedRecordsAllocatesNothingEither) { expect_no_allocation(true); }

}  // namespace
}  // namespace jifen::engine
