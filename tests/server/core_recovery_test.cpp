// Recovery seen from the server: a cross-shard transfer whose debit leg is durable but whose credit
// leg never left (a crash between the two) is finished by the next start.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "tests/server/core_test_server.hpp"
#include "wal/log.hpp"

namespace jifen::server::testing {
namespace {

using protocol::Opcode;

uint64_t now_us() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

uint64_t member_on(uint32_t shard, uint32_t shard_count) {
    for (uint64_t id = 1;; ++id) {
        if (engine::Shard::shard_of(id, shard_count) == shard) {
            return id;
        }
    }
}

// Applies a command and logs it as the server would; returns the outcome.
engine::Outcome apply_and_log(wal::Log& log, engine::Shard& shard, uint32_t shard_index,
                              engine::Command command) {
    command.time_us = now_us();
    const engine::Outcome outcome = shard.apply(command);
    EXPECT_EQ(outcome.result, Result::ok);
    engine::Record record;
    record.command = command;
    record.applied_points = outcome.points;
    record.available_after = outcome.available;
    record.shard_index = shard_index;
    EXPECT_TRUE(log.append(shard_index, std::span<const engine::Record>(&record, 1)));
    return outcome;
}

TEST(CoreRecovery, ATransferWhoseCreditNeverLeftIsFinishedByTheNextStart) {
    TempDir dir;
    const Config config = test_config(dir.path(), 2);
    const uint64_t sender = member_on(0, 2);
    const uint64_t receiver = member_on(1, 2);
    {
        // Play the part of a server that crashed right after the debit leg became durable.
        wal::Options options = config.wal;
        options.data_dir = dir.path();
        options.shard_count = 2;
        auto log = wal::Log::open(options);
        engine::TxnIndex index(config.txn_index_slots);
        engine::Shard shard0(0, 2, config.engine, &index);
        engine::Shard shard1(1, 2, config.engine, &index);
        std::vector<engine::Shard*> shards = {&shard0, &shard1};
        log->recover(shards);
        log->start([](uint32_t, uint64_t) {});
        engine::Command command;
        command.op = engine::Op::enroll;
        command.txn_id = {1, 0};
        command.member_id = sender;
        apply_and_log(*log, shard0, 0, command);
        command.txn_id = {2, 0};
        command.member_id = receiver;
        apply_and_log(*log, shard1, 1, command);
        command = engine::Command{};
        command.op = engine::Op::earn;
        command.txn_id = {3, 0};
        command.member_id = sender;
        command.points = 500;
        apply_and_log(*log, shard0, 0, command);
        command.op = engine::Op::transfer;
        command.txn_id = {4, 0};
        command.counterparty_id = receiver;
        command.points = 200;
        EXPECT_EQ(apply_and_log(*log, shard0, 0, command).available, 300);
        ASSERT_EQ(shard0.transfers_in_flight().size(), 1u);
        log->stop();
    }
    RunningServer server(config);
    EXPECT_EQ(server.report().transfers_resumed, 1u);
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    // The credit leg travels after startup: wait for it (bounded), then check the whole ledger.
    int64_t received = 0;
    for (int attempt = 0; attempt < 500 && received != 200; ++attempt) {
        received = client.balance(receiver).available;
        if (received != 200) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    EXPECT_EQ(received, 200);
    EXPECT_EQ(client.balance(sender).available, 300);
    const auto audit = client.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.transfers_in_flight, 0);
    EXPECT_EQ(audit.available, 500);
}

}  // namespace
}  // namespace jifen::server::testing
