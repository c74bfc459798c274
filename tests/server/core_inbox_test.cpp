// The shard inbox: a bounded MPSC ring with all-or-nothing batch pushes (server/inbox.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "server/inbox.hpp"

namespace jifen::server {
namespace {

struct Message {
    uint32_t producer = 0;
    uint32_t sequence = 0;
};

uint64_t test_seed() {
    const char* text = std::getenv("JIFEN_SEED");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : 20261123;
}

TEST(Inbox, ValuesComeOutInTheOrderTheyWerePushed) {
    Inbox<Message> inbox(8);
    const std::vector<Message> batch = {{0, 1}, {0, 2}, {0, 3}};
    ASSERT_TRUE(inbox.try_push(std::span<const Message>(batch)));
    ASSERT_TRUE(inbox.try_push(Message{0, 4}));
    Message message;
    for (uint32_t expected = 1; expected <= 4; ++expected) {
        ASSERT_TRUE(inbox.try_pop(&message));
        EXPECT_EQ(message.sequence, expected);
    }
    EXPECT_FALSE(inbox.try_pop(&message));
    EXPECT_TRUE(inbox.empty());
}

TEST(Inbox, BatchLargerThanTheRoomLeftPushesNothing) {
    Inbox<Message> inbox(8);
    std::vector<Message> six(6);
    ASSERT_TRUE(inbox.try_push(std::span<const Message>(six)));
    std::vector<Message> three(3, Message{1, 9});
    EXPECT_FALSE(inbox.try_push(std::span<const Message>(three)));
    Message message;
    int popped = 0;
    while (inbox.try_pop(&message)) {
        EXPECT_EQ(message.producer, 0u);
        ++popped;
    }
    EXPECT_EQ(popped, 6);
    // Room again after the consumer freed the cells, across the wrap-around.
    EXPECT_TRUE(inbox.try_push(std::span<const Message>(three)));
}

TEST(Inbox, ConcurrentProducersLoseNothingDuplicateNothingAndKeepEachProducersOrder) {
    const uint64_t seed = test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    constexpr uint32_t producers = 4;
    constexpr uint32_t per_producer = 50'000;
    Inbox<Message> inbox(256);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (uint32_t producer = 0; producer < producers; ++producer) {
        threads.emplace_back([&, producer] {
            std::mt19937_64 random(seed + producer);
            while (!go.load()) {
            }
            uint32_t next = 0;
            std::vector<Message> batch;
            while (next < per_producer) {
                const uint32_t size = std::min<uint32_t>(per_producer - next,
                                                         1 + static_cast<uint32_t>(random() % 16));
                batch.clear();
                for (uint32_t i = 0; i < size; ++i) {
                    batch.push_back({producer, next + i});
                }
                if (inbox.try_push(std::span<const Message>(batch))) {
                    next += size;
                } else {
                    std::this_thread::yield();
                }
            }
        });
    }
    go.store(true);
    std::vector<uint32_t> expected(producers, 0);
    uint64_t received = 0;
    Message message;
    while (received < uint64_t{producers} * per_producer) {
        if (!inbox.try_pop(&message)) {
            std::this_thread::yield();
            continue;
        }
        ASSERT_LT(message.producer, producers);
        ASSERT_EQ(message.sequence, expected[message.producer]) << "producer " << message.producer;
        ++expected[message.producer];
        ++received;
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_FALSE(inbox.try_pop(&message));
}

}  // namespace
}  // namespace jifen::server
