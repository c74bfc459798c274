// TxnIndex under contention: threads claiming overlapping ids must see exactly one winner per id,
// also while the index grows behind a barrier. Runs under ThreadSanitizer in CI.

#include "engine/txn_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace jifen::engine {
namespace {

// wins[t][i]: 1 when thread t's claim took id i, 2 when that thread saw something impossible.
using Wins = std::vector<std::vector<uint8_t>>;

// The member (thread t claims for member t + 1) that won id i: exactly one, with no impossible
// answer anywhere; 0 after a failed assertion.
MemberId only_winner(const Wins& wins, uint64_t i) {
    uint32_t winners = 0;
    MemberId winner = 0;
    for (uint32_t t = 0; t < wins.size(); ++t) {
        EXPECT_NE(wins[t][i], 2) << "id " << i << " thread " << t;
        if (wins[t][i] == 1) {
            ++winners;
            winner = t + 1;
        }
    }
    EXPECT_EQ(winners, 1u) << "id " << i;
    return winners == 1 ? winner : 0;
}

TEST(TxnIndex, ClaimOfAnUnusedIdSucceedsOnceThenReportsTheOwner) {
    TxnIndex index(64);
    EXPECT_EQ(index.claim(TxnId{1, 2}, 10), TxnIndex::Claim::claimed);
    EXPECT_EQ(index.claim(TxnId{1, 2}, 10), TxnIndex::Claim::owned_by_same);
    EXPECT_EQ(index.claim(TxnId{1, 2}, 11), TxnIndex::Claim::owned_by_other);
    EXPECT_EQ(index.find(TxnId{1, 2}), 10u);
    EXPECT_EQ(index.find(TxnId{2, 1}), 0u);
}

TEST(TxnIndex, ClaimsBeyondCapacityAreFull) {
    TxnIndex index(16);
    uint64_t claimed = 0;
    for (uint64_t i = 1; i <= 32; ++i) {
        if (index.claim(TxnId{i, 0}, 1) == TxnIndex::Claim::claimed) {
            ++claimed;
        }
    }
    EXPECT_EQ(claimed, index.capacity());
    EXPECT_EQ(index.claim(TxnId{999, 0}, 1), TxnIndex::Claim::full);
}

TEST(TxnIndex, ConcurrentClaimsOfTheSameIdsHaveExactlyOneWinnerEach) {
    constexpr uint64_t ids = 20'000;
    constexpr uint32_t threads = 4;
    TxnIndex index(ids * 2, threads);
    Wins wins(threads, std::vector<uint8_t>(ids, 0));
    std::atomic<uint32_t> ready{0};
    std::vector<std::thread> workers;
    for (uint32_t t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::vector<uint64_t> order(ids);
            for (uint64_t i = 0; i < ids; ++i) {
                order[i] = i;
            }
            std::shuffle(order.begin(), order.end(), std::mt19937_64(t + 1));
            ready.fetch_add(1);
            while (ready.load() < threads) {
            }
            for (const uint64_t i : order) {
                const auto claim = index.claim(TxnId{i + 1, 77}, MemberId{t + 1}, 0, t);
                if (claim == TxnIndex::Claim::claimed) {
                    wins[t][i] = 1;
                } else {
                    // Every loser sees the id owned by another member.
                    if (claim != TxnIndex::Claim::owned_by_other) {
                        wins[t][i] = 2;
                    }
                }
            }
        });
    }
    for (std::thread& worker : workers) {
        worker.join();
    }
    for (uint64_t i = 0; i < ids; ++i) {
        const MemberId winner = only_winner(wins, i);
        ASSERT_NE(winner, 0u);
        ASSERT_EQ(index.find(TxnId{i + 1, 77}), winner);
    }
    EXPECT_EQ(index.used(), ids);
}

TEST(TxnIndex, GrowthIsDueAtThreeQuartersWhileClaimsGoOnToSevenEighths) {
    TxnIndex index(64);
    uint64_t next = 1;
    while (!index.growth_due()) {
        ASSERT_EQ(index.claim(TxnId{next++, 0}, 1), TxnIndex::Claim::claimed);
    }
    EXPECT_EQ(index.used(), 48u);
    // The headroom carries claims until the barrier is reached.
    while (index.used() < index.capacity()) {
        ASSERT_EQ(index.claim(TxnId{next++, 0}, 1), TxnIndex::Claim::claimed);
    }
    EXPECT_EQ(index.used(), 56u);
    EXPECT_EQ(index.claim(TxnId{next, 0}, 1), TxnIndex::Claim::full);
}

TEST(TxnIndex, GrowthKeepsEveryClaimItsOwnerAndItsLocalIndex) {
    TxnIndex index(16);
    constexpr uint64_t ids = 5'000;
    for (uint64_t i = 1; i <= ids; ++i) {
        ASSERT_EQ(index.claim(TxnId{i, i * 3}, 100 + i % 7, static_cast<uint32_t>(i)),
                  TxnIndex::Claim::claimed);
        if (index.growth_due()) {
            ASSERT_TRUE(index.grow());
            EXPECT_FALSE(index.growth_due());
        }
    }
    EXPECT_EQ(index.used(), ids);
    EXPECT_GE(index.slot_count(), ids * 4 / 3);
    for (uint64_t i = 1; i <= ids; ++i) {
        uint32_t local_index = 0;
        ASSERT_EQ(index.find(TxnId{i, i * 3}, &local_index), 100 + i % 7);
        ASSERT_EQ(local_index, i);
    }
    EXPECT_EQ(index.find(TxnId{ids + 1, 0}), 0u);
}

TEST(TxnIndex, ClaimsAfterGrowthSeeTheIdsClaimedBefore) {
    TxnIndex index(16);
    for (uint64_t i = 1; i <= 10; ++i) {
        ASSERT_EQ(index.claim(TxnId{i, 5}, i), TxnIndex::Claim::claimed);
    }
    ASSERT_TRUE(index.reserve(40));
    EXPECT_GE(index.slot_count(), 64u);  // Moved: every id below goes through the rehash.
    for (uint64_t i = 1; i <= 10; ++i) {
        EXPECT_EQ(index.claim(TxnId{i, 5}, i), TxnIndex::Claim::owned_by_same);
        EXPECT_EQ(index.claim(TxnId{i, 5}, i + 1), TxnIndex::Claim::owned_by_other);
    }
    EXPECT_EQ(index.claim(TxnId{11, 5}, 11), TxnIndex::Claim::claimed);
    EXPECT_EQ(index.used(), 11u);
}

// With many segments, each is due at its own load, so growths come one segment at a time and
// each holds the claimers only for the rehash of that segment.
TEST(TxnIndex, SegmentsComeDueOneAtATimeAndEachGrowthDoublesOnlyThose) {
    constexpr uint64_t slots = uint64_t{1} << 20;
    TxnIndex index(slots, 1);
    ASSERT_EQ(index.segment_count(), slots / TxnIndex::segment_slots_min);
    const uint64_t segment_slots = TxnIndex::segment_slots_min;
    uint64_t next = 1;
    uint32_t growths = 0;
    uint64_t first_due_at = 0;
    while (index.used() < slots) {  // Until the ids have more than doubled past the first due.
        ASSERT_EQ(index.claim(TxnId{next, 42}, next % 1'000 + 1), TxnIndex::Claim::claimed);
        ++next;
        if (!index.growth_due()) {
            continue;
        }
        if (first_due_at == 0) {
            first_due_at = index.used();
        }
        const uint64_t before = index.slot_count();
        ASSERT_TRUE(index.grow());
        EXPECT_FALSE(index.growth_due());
        // A doubled segment adds its own size; evenly filled segments come due apart.
        EXPECT_LE(index.slot_count() - before, 4 * index.segment_slots_largest()) << next;
        ++growths;
    }
    // The first segment is due near 5/8 full, before the whole index is at 3/4.
    EXPECT_LT(first_due_at, slots * 7 / 10);
    EXPECT_GT(first_due_at, slots * 5 / 10);
    EXPECT_GE(growths, index.segment_count() / 2);
    EXPECT_GE(index.slot_count(), slots + growths * segment_slots);
    for (uint64_t id = 1; id < next; ++id) {
        ASSERT_EQ(index.find(TxnId{id, 42}), id % 1'000 + 1) << id;
    }
}

// Preparation maps a segment's next slots before it is due, so the growth behind the barrier
// only rehashes; one growth also takes prepared segments that are not due yet.
TEST(TxnIndex, PreparationComesBeforeGrowthAndTheGrowthUsesThePreparedSlots) {
    constexpr uint64_t slots = uint64_t{1} << 16;
    TxnIndex index(slots, 1);
    ASSERT_EQ(index.segment_count(), slots / TxnIndex::segment_slots_min);
    uint64_t next = 1;
    while (!index.preparation_due()) {
        ASSERT_EQ(index.claim(TxnId{next, 7}, next % 10 + 1), TxnIndex::Claim::claimed);
        ++next;
    }
    EXPECT_FALSE(index.growth_due());  // The prepare mark is 1/16 of a segment before due.
    EXPECT_EQ(index.segments_prepared(), 0u);
    index.prepare();
    EXPECT_EQ(index.segments_prepared(), 1u);
    const uint64_t slots_before = index.slot_count();
    // Claim on, preparing whenever asked (one segment per call), until a growth is due.
    while (!index.growth_due()) {
        ASSERT_EQ(index.claim(TxnId{next, 7}, next % 10 + 1), TxnIndex::Claim::claimed);
        ++next;
        if (index.preparation_due()) {
            index.prepare();
        }
    }
    const uint32_t prepared = index.segments_prepared();
    ASSERT_GE(prepared, 1u);
    EXPECT_EQ(index.slot_count(), slots_before);  // Prepared slots are not the index's yet.
    ASSERT_TRUE(index.grow());
    EXPECT_FALSE(index.growth_due());
    // The due segment and up to early_growths_max prepared ones doubled.
    const auto grown =
        static_cast<uint32_t>((index.slot_count() - slots_before) / TxnIndex::segment_slots_min);
    EXPECT_GE(grown, std::min(prepared, TxnIndex::early_growths_max));
    EXPECT_LE(grown, TxnIndex::early_growths_max + 1);
    EXPECT_LT(index.segments_prepared(), prepared);  // Prepared slots were taken.
    index.release_retired();
    for (uint64_t id = 1; id < next; ++id) {
        ASSERT_EQ(index.find(TxnId{id, 7}), id % 10 + 1) << id;
    }
    EXPECT_EQ(index.claim(TxnId{1, 7}, 1 % 10 + 1), TxnIndex::Claim::owned_by_same);
    EXPECT_EQ(index.claim(TxnId{next, 7}, 3), TxnIndex::Claim::claimed);
}

// Grown segments below 2 MiB share huge pages (detail::HugePageBlocks), and the first mapping's
// huge page goes back only once all its segments moved out: through several doublings, with
// preparation and release as the server does them, every claim stays findable.
TEST(TxnIndex, SegmentsMovingOutOfTheirHugePagesKeepEveryClaim) {
    constexpr uint64_t slots = uint64_t{1} << 16;  // 16 segments of 128 KiB: one huge page.
    TxnIndex index(slots, 1);
    uint64_t next = 1;
    const auto all_found = [&] {
        for (uint64_t id = 1; id < next; ++id) {
            uint32_t local_index = 0;
            if (index.find(TxnId{id, 9}, &local_index) != id % 13 + 1 || local_index != id) {
                return false;
            }
        }
        return true;
    };
    while (index.slot_count() < slots * 8) {  // Three doublings: 256 KiB, 512 KiB, 1 MiB.
        ASSERT_EQ(index.claim(TxnId{next, 9}, next % 13 + 1, static_cast<uint32_t>(next)),
                  TxnIndex::Claim::claimed);
        ++next;
        if (index.preparation_due()) {
            index.prepare();
        }
        if (index.growth_due()) {
            ASSERT_TRUE(index.grow());
            index.release_retired();
            ASSERT_TRUE(all_found()) << next;
        }
    }
    EXPECT_EQ(index.used(), next - 1);
    EXPECT_EQ(index.claim(TxnId{1, 9}, 2), TxnIndex::Claim::owned_by_same);
    EXPECT_EQ(index.claim(TxnId{1, 9}, 3), TxnIndex::Claim::owned_by_other);
}

// Segments that grew past 2 MiB take huge pages of their own: the shared ones they used on the
// way are all given back, also where later memory landed in the first mapping's released pages.
TEST(TxnIndex, SharedHugePagesAreAllGivenBackOnceSegmentsOutgrowThem) {
    TxnIndex index(uint64_t{1} << 16, 1);  // 16 segments of 128 KiB in one huge page.
    for (uint64_t id = 1; id <= 1'000; ++id) {
        ASSERT_EQ(index.claim(TxnId{id, 3}, 7), TxnIndex::Claim::claimed);
    }
    for (const uint64_t claims : {100'000, 200'000, 500'000}) {  // 512 KiB, 1 MiB, 2 MiB.
        ASSERT_TRUE(index.reserve(claims));
        for (uint64_t id = 1; id <= 1'000; ++id) {
            ASSERT_EQ(index.find(TxnId{id, 3}), 7u) << id;
        }
    }
    ASSERT_EQ(index.segment_slots_largest(), uint64_t{1} << 16);
    EXPECT_EQ(index.shared_huge_pages(), 0u);
}

TEST(TxnIndex, ReserveMakesRoomForThatManyClaimsBeforeGrowthIsDue) {
    TxnIndex index(16);
    ASSERT_EQ(index.claim(TxnId{1, 1}, 1), TxnIndex::Claim::claimed);
    ASSERT_TRUE(index.reserve(1'000));
    for (uint64_t i = 2; i <= 1'000; ++i) {
        ASSERT_EQ(index.claim(TxnId{i, 1}, 1), TxnIndex::Claim::claimed);
    }
    EXPECT_FALSE(index.growth_due());
    EXPECT_EQ(index.find(TxnId{1, 1}), 1u);
}

TEST(TxnIndex, ManyThreadsGrowingBehindABarrierKeepExactlyOneWinnerPerId) {
    // Each thread claims the same ids in its own order, in batches; between batches all meet at
    // a barrier whose completion grows the index when due, as the server's shard threads do.
    // Batches are small against the index's 1/8 headroom, which carries them past the due mark.
    constexpr uint64_t ids = 20'000;
    constexpr uint32_t threads = 4;
    constexpr uint64_t batch = 16;
    TxnIndex index(1'024, threads);
    uint32_t growths = 0;
    // As server/txn_index_growth.hpp: between batches, one thread at a time prepares or unmaps
    // what a growth replaced, while the others claim.
    std::atomic<bool> preparing{false};
    std::atomic<bool> retired_owed{false};
    std::atomic<uint32_t> preparations{0};
    std::barrier meet(threads, [&]() noexcept {
        if (index.growth_due()) {
            JIFEN_ASSERT(index.grow());
            retired_owed.store(true, std::memory_order_relaxed);
            ++growths;
        }
    });
    auto between_batches = [&] {
        if ((index.preparation_due() || retired_owed.load(std::memory_order_relaxed)) &&
            !preparing.exchange(true, std::memory_order_acquire)) {
            if (retired_owed.exchange(false, std::memory_order_relaxed)) {
                index.release_retired();
            }
            if (index.preparation_due()) {
                index.prepare();
                preparations.fetch_add(1, std::memory_order_relaxed);
            }
            preparing.store(false, std::memory_order_release);
        }
        meet.arrive_and_wait();
    };
    Wins wins(threads, std::vector<uint8_t>(ids, 0));
    std::vector<std::thread> workers;
    for (uint32_t t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::vector<uint64_t> order(ids);
            for (uint64_t i = 0; i < ids; ++i) {
                order[i] = i;
            }
            std::shuffle(order.begin(), order.end(), std::mt19937_64(t + 1));
            for (uint64_t first = 0; first < ids; first += batch) {
                for (uint64_t at = first; at < first + batch; ++at) {
                    const uint64_t i = order[at];
                    const auto claim =
                        index.claim(TxnId{i + 1, 9}, MemberId{t + 1}, static_cast<uint32_t>(i), t);
                    if (claim == TxnIndex::Claim::claimed) {
                        wins[t][i] = 1;
                    } else if (claim != TxnIndex::Claim::owned_by_other) {
                        wins[t][i] = 2;
                    }
                }
                between_batches();
            }
        });
    }
    for (std::thread& worker : workers) {
        worker.join();
    }
    EXPECT_GE(growths, 5u);
    EXPECT_GE(preparations.load(), 5u);
    for (uint64_t i = 0; i < ids; ++i) {
        const MemberId winner = only_winner(wins, i);
        ASSERT_NE(winner, 0u);
        uint32_t local_index = 0;
        ASSERT_EQ(index.find(TxnId{i + 1, 9}, &local_index), winner);
        ASSERT_EQ(local_index, i);
    }
    EXPECT_EQ(index.used(), ids);
}

}  // namespace
}  // namespace jifen::engine
