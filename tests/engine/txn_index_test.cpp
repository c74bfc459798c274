// TxnIndex under contention: threads claiming overlapping ids must see exactly one winner per id.
// Runs under ThreadSanitizer in CI.

#include "engine/txn_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace jifen::engine {
namespace {

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
    TxnIndex index(ids * 2);
    // wins[t][i]: thread t's claim of id i was the one that took it.
    std::vector<std::vector<uint8_t>> wins(threads, std::vector<uint8_t>(ids, 0));
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
                const auto claim = index.claim(TxnId{i + 1, 77}, MemberId{t + 1});
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
        uint32_t winners = 0;
        MemberId winner = 0;
        for (uint32_t t = 0; t < threads; ++t) {
            ASSERT_NE(wins[t][i], 2) << "id " << i << " thread " << t;
            if (wins[t][i] == 1) {
                ++winners;
                winner = t + 1;
            }
        }
        ASSERT_EQ(winners, 1u) << "id " << i;
        ASSERT_EQ(index.find(TxnId{i + 1, 77}), winner);
    }
    EXPECT_EQ(index.used(), ids);
}

}  // namespace
}  // namespace jifen::engine
