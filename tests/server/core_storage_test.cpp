// jifend when its log cannot grow: writes are refused with storage_full while reads, history and
// the metrics keep answering, the refusals are logged once, and a restart with a larger
// wal.map_bytes_max takes writes again.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/core_test_server.hpp"
#include "tests/server/log_capture.hpp"

namespace jifen::server::testing {
namespace {

using protocol::Opcode;
using protocol::Operation;
using test::LogCapture;

constexpr uint64_t member_id = 42;
constexpr uint32_t earns_per_frame = 64;
// Each earn logs at least about 30 bytes packed, so this many cannot fit in a 1 MiB map.
constexpr uint64_t earns_max = 100'000;

// A 1 MiB map that starts at 256 KiB: it grows twice, then fills.
Config tiny_log_config(const std::filesystem::path& data_dir) {
    Config config = test_config(data_dir, 1);
    config.wal.map_bytes_initial = 256u << 10;
    config.wal.map_bytes_max = 1u << 20;
    return config;
}

struct NewestEntry {
    Result result = Result::ok;
    uint64_t seq = 0;
    uint64_t txn_id_lo = 0;
    int64_t available_after = 0;
};

NewestEntry newest_history_entry(RawClient& client) {
    protocol::HistoryRequest request;
    request.member_id = member_id;
    request.limit = 1;
    client.send_items(Opcode::history, 7, std::span<const protocol::HistoryRequest>(&request, 1));
    const auto frame = client.read_frame();
    NewestEntry newest;
    if (!frame) {
        ADD_FAILURE() << "no history reply";
        return newest;
    }
    const auto header = frame->item<protocol::HistoryReplyHeader>();
    newest.result = static_cast<Result>(header.result);
    if (header.count == 1) {
        protocol::HistoryEntry entry;
        std::memcpy(&entry, frame->body.data() + sizeof(header), sizeof(entry));
        newest.seq = entry.seq;
        newest.txn_id_lo = entry.txn_id_lo;
        newest.available_after = entry.available_after;
    }
    return newest;
}

// Earns one point per operation, a frame at a time, until the server refuses one with
// storage_full. Returns the balance the accepted earns left and counts the refusals.
int64_t earn_until_storage_full(RawClient& client, uint64_t* next_txn_id,
                                uint64_t* storage_full_refusals) {
    int64_t available = 0;
    std::vector<Operation> frame(earns_per_frame);
    while (*storage_full_refusals == 0 && *next_txn_id < earns_max) {
        for (Operation& op : frame) {
            op = make_operation((*next_txn_id)++, member_id, 1);
        }
        for (const protocol::OperationReply& reply : client.operations(Opcode::earn, frame)) {
            if (result_of(reply) == Result::ok) {
                available = reply.available;
            } else {
                EXPECT_EQ(result_of(reply), Result::storage_full);
                ++*storage_full_refusals;
            }
        }
    }
    return available;
}

TEST(CoreStorage, AFullLogRefusesWritesWithStorageFullAndKeepsAnsweringReads) {
    TempDir dir;
    const Config config = tiny_log_config(dir.path());
    LogCapture log_lines;
    auto server = std::make_unique<RunningServer>(config);
    RawClient client(server->port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(1, member_id, 0))),
              Result::ok);
    EXPECT_EQ(server->metric("jifen_storage_full"), 0);
    EXPECT_EQ(server->metric("jifen_storage_full_refusals_total"), 0);

    uint64_t next_txn_id = 2;
    uint64_t refusals = 0;
    const int64_t available = earn_until_storage_full(client, &next_txn_id, &refusals);
    ASSERT_GT(refusals, 0u) << "the map never filled";
    ASSERT_GT(available, 0);

    // Refused again, however often it is asked; the refusals are counted, the state unchanged.
    const NewestEntry newest = newest_history_entry(client);
    for (int attempt = 0; attempt < 3; ++attempt) {
        EXPECT_EQ(result_of(client.operation(Opcode::earn,
                                             make_operation(next_txn_id++, member_id, 1'000))),
                  Result::storage_full);
        ++refusals;
    }
    EXPECT_EQ(server->metric("jifen_storage_full"), 1);
    EXPECT_EQ(server->metric("jifen_storage_full_refusals_total"), static_cast<int64_t>(refusals));
    EXPECT_NE(server->stats_json().find("\"storage_full\":true"), std::string::npos)
        << server->stats_json();

    const protocol::BalanceReply balance = client.balance(member_id);
    EXPECT_EQ(static_cast<Result>(balance.result), Result::ok);
    EXPECT_EQ(balance.available, available);
    const NewestEntry newest_after = newest_history_entry(client);
    EXPECT_EQ(newest_after.result, Result::ok);
    EXPECT_EQ(newest_after.seq, newest.seq);
    EXPECT_EQ(newest_after.txn_id_lo, newest.txn_id_lo);
    EXPECT_EQ(newest_after.available_after, available);

    // One warning for all of these refusals, naming the limit.
    EXPECT_EQ(log_lines.count("log storage full"), 1u);
    EXPECT_EQ(log_lines.count("wal.map_bytes_max 1048576 bytes"), 1u);
    EXPECT_EQ(log_lines.count("writes are accepted again"), 0u);
}

TEST(CoreStorage, ARestartWithALargerMapLimitTakesWritesAgain) {
    TempDir dir;
    Config config = tiny_log_config(dir.path());
    int64_t available = 0;
    uint64_t next_txn_id = 2;
    {
        RunningServer server(config);
        RawClient client(server.port());
        ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
        ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(1, member_id, 0))),
                  Result::ok);
        uint64_t refusals = 0;
        available = earn_until_storage_full(client, &next_txn_id, &refusals);
        ASSERT_GT(refusals, 0u) << "the map never filled";
    }
    config.wal.map_bytes_max = 4u << 20;
    RunningServer server(config);
    EXPECT_EQ(server.metric("jifen_storage_full"), 0);
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    EXPECT_EQ(client.balance(member_id).available, available);
    const protocol::OperationReply earned =
        client.operation(Opcode::earn, make_operation(next_txn_id, member_id, 5));
    EXPECT_EQ(result_of(earned), Result::ok);
    EXPECT_EQ(earned.available, available + 5);
}

// The first member id from `from` on that shard.
uint64_t member_on_shard(uint32_t shard, uint32_t shard_count, uint64_t from) {
    while (engine::Shard::shard_of(from, shard_count) != shard) {
        ++from;
    }
    return from;
}

// Waits (up to 10 s) until the metric has the value; false when it never did.
bool metric_becomes(const RunningServer& server, std::string_view name, int64_t value) {
    for (int attempt = 0; attempt < 1'000; ++attempt) {
        if (server.metric(name) == value) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// A 2-shard server whose commits fail with fault_ (an errno) while it is not 0, and three members
// with 100 points each: `waiting` on shard 0 (the tests leave an earn of it in a failed commit),
// one beside it and one on shard 1. earns_: their earns of 100, as sent.
class DiskFull : public ::testing::Test {
protected:
    DiskFull() : server_(config_of(dir_.path(), &fault_)), client_(server_.port()) {}

    void SetUp() override {
        ASSERT_EQ(static_cast<Result>(client_.hello(admin_key).result), Result::ok);
        for (const uint64_t member : {waiting, idle_same_shard, idle_other_shard}) {
            ASSERT_EQ(
                result_of(client_.operation(Opcode::enroll, make_operation(txn_id_++, member, 0))),
                Result::ok);
            earns_.push_back(make_operation(txn_id_++, member, 100));
            ASSERT_EQ(result_of(client_.operation(Opcode::earn, earns_.back())), Result::ok);
        }
    }

    static Config config_of(const std::filesystem::path& data_dir, std::atomic<int>* fault) {
        Config config = test_config(data_dir, 2);
        config.wal.commit_fault = [fault] { return fault->load(); };
        return config;
    }

    const uint64_t waiting = member_on_shard(0, 2, 100);
    const uint64_t idle_same_shard = member_on_shard(0, 2, waiting + 1);
    const uint64_t idle_other_shard = member_on_shard(1, 2, 100);
    TempDir dir_;
    std::atomic<int> fault_{0};
    RunningServer server_;
    RawClient client_;
    uint64_t txn_id_ = 1;
    std::vector<Operation> earns_;
};

// A disk that fills under a commit (ENOSPC, injected): in sync durability the operations that
// commit carried wait for the disk, and nothing else does. (The real disk must have the log's
// 256 MiB reserve free, as for every test here.) New writes are refused at once,
// balances of members with nothing waiting are answered, audit says storage_full; once a commit
// succeeds again the waiting replies arrive and writes are taken.
TEST_F(DiskFull, ACommitFailingForSpaceHoldsOnlyWhatItCarried) {
    fault_ = ENOSPC;
    const Operation held_earn = make_operation(txn_id_++, waiting, 50);
    client_.send_items(Opcode::earn, 7, std::span<const Operation>(&held_earn, 1));
    ASSERT_TRUE(metric_becomes(server_, "jifen_storage_full", 1));

    EXPECT_EQ(
        result_of(client_.operation(Opcode::earn, make_operation(txn_id_++, idle_same_shard, 5))),
        Result::storage_full);
    EXPECT_EQ(
        result_of(client_.operation(Opcode::earn, make_operation(txn_id_++, idle_other_shard, 5))),
        Result::storage_full);
    for (const uint64_t member : {idle_same_shard, idle_other_shard}) {
        const protocol::BalanceReply balance = client_.balance(member);
        EXPECT_EQ(static_cast<Result>(balance.result), Result::ok) << member;
        EXPECT_EQ(balance.available, 100) << member;
    }
    EXPECT_EQ(static_cast<Result>(client_.audit().result), Result::storage_full);
    EXPECT_EQ(server_.metric("jifen_log_failed"), 0);

    // The waiting member's balance would show the earn not yet durable: it waits with it, and a
    // balance asked after it overtakes it.
    const protocol::BalanceRequest query{waiting};
    client_.send_items(Opcode::balance, 9, std::span<const protocol::BalanceRequest>(&query, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const protocol::BalanceRequest idle_query{idle_same_shard};
    client_.send_items(Opcode::balance, 10,
                       std::span<const protocol::BalanceRequest>(&idle_query, 1));
    const std::optional<Frame> overtaking = client_.read_frame();
    ASSERT_TRUE(overtaking.has_value());
    EXPECT_EQ(overtaking->header.request_id, 10u);
    fault_ = 0;  // Space again: the writer's next retry commits.
    for (int reply = 0; reply < 2; ++reply) {
        const std::optional<Frame> frame = client_.read_frame();
        ASSERT_TRUE(frame.has_value());
        if (frame->header.request_id == 7) {
            const auto earned = frame->item<protocol::OperationReply>();
            EXPECT_EQ(result_of(earned), Result::ok);
            EXPECT_EQ(earned.available, 150);
        } else {
            EXPECT_EQ(frame->header.request_id, 9u);
            EXPECT_EQ(frame->item<protocol::BalanceReply>().available, 150);
        }
    }
    ASSERT_TRUE(metric_becomes(server_, "jifen_storage_full", 0));
    EXPECT_EQ(
        result_of(client_.operation(Opcode::earn, make_operation(txn_id_++, idle_same_shard, 5))),
        Result::ok);
    const protocol::AuditReply audit = client_.audit();
    EXPECT_EQ(static_cast<Result>(audit.result), Result::ok);
    EXPECT_EQ(audit.ok, 1u);
}

// A client that got no answer retries, also while the disk is full, and must learn what became
// of its operation: a repeat of a transaction whose record is durable is answered at once with
// its original outcome, flagged replayed (id_conflict with other content), on either shard,
// rather than storage_full (which a client takes for "not applied"). New ids are refused, and so
// are repeats on a member with a record still waiting for the disk, until it is durable.
TEST_F(DiskFull, RetriesOfDurableTransactionsAreStillAnswered) {
    fault_ = ENOSPC;
    const Operation held_earn = make_operation(txn_id_++, waiting, 50);
    client_.send_items(Opcode::earn, 7, std::span<const Operation>(&held_earn, 1));
    ASSERT_TRUE(metric_becomes(server_, "jifen_storage_full", 1));

    for (size_t i = 1; i < earns_.size(); ++i) {
        const protocol::OperationReply reply = client_.operation(Opcode::earn, earns_[i]);
        EXPECT_EQ(result_of(reply), Result::ok) << i;
        EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u) << i;
        EXPECT_EQ(reply.available, 100) << i;
        Operation changed = earns_[i];
        changed.points = 7;
        EXPECT_EQ(result_of(client_.operation(Opcode::earn, changed)), Result::id_conflict) << i;
    }
    EXPECT_EQ(
        result_of(client_.operation(Opcode::earn, make_operation(txn_id_++, idle_same_shard, 5))),
        Result::storage_full);
    // A member with a record waiting for the disk may be answered only once it is durable: its
    // repeats are refused for now, the durable earn's and the held one's alike.
    EXPECT_EQ(result_of(client_.operation(Opcode::earn, earns_[0])), Result::storage_full);
    EXPECT_EQ(result_of(client_.operation(Opcode::earn, held_earn)), Result::storage_full);
    fault_ = 0;  // Space again: the writer's next retry commits, and the held earn is answered.
    const std::optional<Frame> frame = client_.read_frame();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->header.request_id, 7u);
    EXPECT_EQ(result_of(frame->item<protocol::OperationReply>()), Result::ok);
    EXPECT_EQ(frame->item<protocol::OperationReply>().available, 150);
    const protocol::OperationReply retried = client_.operation(Opcode::earn, held_earn);
    EXPECT_EQ(result_of(retried), Result::ok);
    EXPECT_NE(retried.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(retried.available, 150);
    ASSERT_TRUE(metric_becomes(server_, "jifen_storage_full", 0));
    const protocol::AuditReply audit = client_.audit();
    EXPECT_EQ(static_cast<Result>(audit.result), Result::ok);
    EXPECT_EQ(audit.ok, 1u);
}

// A frame mixing retries with refusals is answered at once while the disk is full: a repeat of a
// durable transaction (on either shard), a new id and a repeat on the member with a record
// waiting leave together, none waiting for the log. So is a repeat of a transfer between shards
// whose confirmation is durable: replayed, the receiver's leg applied once.
TEST_F(DiskFull, AFrameOfRetriesAndRefusalsLeavesWithoutWaitingForTheLog) {
    Operation transfer = make_operation(txn_id_++, idle_same_shard, 10);
    transfer.counterparty_id = idle_other_shard;
    ASSERT_EQ(result_of(client_.operation(Opcode::transfer, transfer)), Result::ok);

    fault_ = ENOSPC;
    const Operation held_earn = make_operation(txn_id_++, waiting, 50);
    client_.send_items(Opcode::earn, 7, std::span<const Operation>(&held_earn, 1));
    ASSERT_TRUE(metric_becomes(server_, "jifen_storage_full", 1));

    const std::vector<Operation> frame{earns_[1], make_operation(txn_id_++, idle_same_shard, 5),
                                       earns_[2], earns_[0]};
    const std::vector<protocol::OperationReply> replies =
        client_.operations(Opcode::earn, std::span<const Operation>(frame));
    ASSERT_EQ(replies.size(), 4u);
    for (const size_t i : {size_t{0}, size_t{2}}) {
        EXPECT_EQ(result_of(replies[i]), Result::ok) << i;
        EXPECT_NE(replies[i].flags & protocol::reply_flag_replayed, 0u) << i;
        EXPECT_EQ(replies[i].available, 100) << i;
    }
    EXPECT_EQ(result_of(replies[1]), Result::storage_full);
    EXPECT_EQ(result_of(replies[3]), Result::storage_full);

    const protocol::OperationReply repeated = client_.operation(Opcode::transfer, transfer);
    EXPECT_EQ(result_of(repeated), Result::ok);
    EXPECT_NE(repeated.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(repeated.available, 90);
    EXPECT_EQ(client_.balance(idle_other_shard).available, 110);

    fault_ = 0;
    const std::optional<Frame> held = client_.read_frame();
    ASSERT_TRUE(held.has_value());
    EXPECT_EQ(held->header.request_id, 7u);
    EXPECT_EQ(result_of(held->item<protocol::OperationReply>()), Result::ok);
    ASSERT_TRUE(metric_becomes(server_, "jifen_storage_full", 0));
    const protocol::AuditReply audit = client_.audit();
    EXPECT_EQ(static_cast<Result>(audit.result), Result::ok);
    EXPECT_EQ(audit.ok, 1u);
}

// Any other commit failure (EIO with space left: a failing disk) stops the log for good: writes
// get storage_error, the failure shows in the metrics, durable state stays readable.
TEST(CoreStorage, AFailedLogRefusesWritesWithStorageErrorAndSaysSo) {
    TempDir dir;
    std::atomic<int> fault{0};
    Config config = test_config(dir.path(), 1);
    config.wal.commit_fault = [&fault] { return fault.load(); };
    LogCapture log_lines;
    RunningServer server(config);
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(1, member_id, 0))),
              Result::ok);
    fault = EIO;
    const Operation lost = make_operation(2, member_id, 10);
    client.send_items(Opcode::earn, 7, std::span<const Operation>(&lost, 1));
    ASSERT_TRUE(metric_becomes(server, "jifen_log_failed", 1));
    EXPECT_EQ(result_of(client.operation(Opcode::earn, make_operation(3, member_id, 5))),
              Result::storage_error);
    EXPECT_EQ(static_cast<Result>(client.audit().result), Result::storage_error);
    fault = 0;  // A failed log stays failed: nothing it could not write is written later.
    EXPECT_EQ(result_of(client.operation(Opcode::earn, make_operation(4, member_id, 5))),
              Result::storage_error);
    EXPECT_EQ(server.metric("jifen_log_failed"), 1);
    EXPECT_NE(server.stats_json().find("\"log_failed\":true"), std::string::npos);
    for (int attempt = 0; attempt < 500 && log_lines.count("the log stopped writing") == 0;
         ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(log_lines.count("the log stopped writing"), 1u);
    EXPECT_EQ(log_lines.count("writes are accepted again"), 0u);
}

// Memory at its budget (memory_max_bytes of 1 byte: over it from the first sample): writes are
// refused with txn_limit, said once in the log, while balances and the metrics answer.
TEST(CoreStorage, MemoryAtItsBudgetRefusesWritesWithTxnLimitAndKeepsAnsweringReads) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.memory_max_bytes = 1;
    LogCapture log_lines;
    RunningServer server(config);
    EXPECT_EQ(server.metric("jifen_memory_full"), 1);
    EXPECT_EQ(server.metric("jifen_memory_budget_bytes"), 1);
    EXPECT_GT(server.metric("process_anonymous_memory_bytes"), 0);
    EXPECT_NE(server.stats_json().find("\"memory_full\":true"), std::string::npos)
        << server.stats_json();
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    for (uint64_t txn = 1; txn <= 3; ++txn) {
        EXPECT_EQ(result_of(client.operation(Opcode::enroll, make_operation(txn, member_id, 0))),
                  Result::txn_limit);
    }
    EXPECT_EQ(static_cast<Result>(client.balance(member_id).result), Result::member_not_found);
    EXPECT_EQ(server.metric("jifen_members"), 0);
    EXPECT_EQ(server.metric("jifen_transactions"), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * config.tick_interval_ms));
    EXPECT_EQ(log_lines.count("memory is over its budget"), 1u);  // At startup; not again.
    EXPECT_EQ(log_lines.count("memory at its budget"), 0u);
}

// A retry of a transaction applied before memory reached its budget claims no memory: it is
// answered with its original outcome, flagged replayed, as docs/protocol.md promises for ok, not
// refused with txn_limit (which a client takes for "not applied"). New ids are still refused,
// but for captures and releases, which finish holds taken before.
TEST(CoreStorage, MemoryAtItsBudgetStillAnswersRetriesAndClosesHolds) {
    TempDir dir;
    constexpr uint64_t sender = 42;
    uint64_t receiver = 43;
    while (protocol::shard_of(receiver, 2) == protocol::shard_of(sender, 2)) {
        ++receiver;  // On the other shard: the transfer crosses shards.
    }
    Operation transfer = make_operation(4, sender, 30);
    transfer.counterparty_id = receiver;
    {
        RunningServer server(test_config(dir.path(), 2));
        RawClient client(server.port());
        ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
        ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(1, sender, 0))),
                  Result::ok);
        ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(2, receiver, 0))),
                  Result::ok);
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(3, sender, 100))),
                  Result::ok);
        ASSERT_EQ(result_of(client.operation(Opcode::transfer, transfer)), Result::ok);
        for (uint64_t hold = 6; hold <= 7; ++hold) {
            ASSERT_EQ(result_of(client.operation(Opcode::hold, make_operation(hold, sender, 10))),
                      Result::ok);
        }
    }
    Config config = test_config(dir.path(), 2);
    config.memory_max_bytes = 1;
    RunningServer server(config);
    ASSERT_EQ(server.metric("jifen_memory_full"), 1);
    // The gauges are each shard's as of its last wake-up: a tick's, after a start.
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * config.tick_interval_ms));
    const int64_t transactions = server.metric("jifen_transactions");
    EXPECT_EQ(transactions, 7);  // Enrols, the earn, the transfer and its credit leg, holds.
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    protocol::OperationReply reply = client.operation(Opcode::earn, make_operation(3, sender, 100));
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
    reply = client.operation(Opcode::transfer, transfer);
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(result_of(client.operation(Opcode::earn, make_operation(5, sender, 1))),
              Result::txn_limit);
    EXPECT_EQ(result_of(client.operation(Opcode::hold, make_operation(8, sender, 1))),
              Result::txn_limit);
    EXPECT_EQ(server.metric("jifen_transactions"), transactions);
    // A checkout that took points is still finished: capture and release close their holds.
    Operation capture = make_operation(9, sender, 0);
    capture.ref_txn_id_lo = 6;
    EXPECT_EQ(result_of(client.operation(Opcode::capture, capture)), Result::ok);
    Operation release = make_operation(10, sender, 0);
    release.ref_txn_id_lo = 7;
    const protocol::OperationReply released = client.operation(Opcode::release, release);
    EXPECT_EQ(result_of(released), Result::ok);
    EXPECT_EQ(released.held, 0);
    EXPECT_EQ(released.available, 60);  // 100 earned, 30 sent, 10 captured.
}

}  // namespace
}  // namespace jifen::server::testing
