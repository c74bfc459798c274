// The ledger through jifend: operations round trip, batches, pipelining, routing across shards,
// cross-shard transfers, restart with recovery, history, and many clients at once (audit).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "engine/shard.hpp"
#include "server/limits.hpp"
#include "tests/server/core_test_server.hpp"

namespace jifen::server::testing {
namespace {

using protocol::Opcode;
using protocol::Operation;

uint64_t test_seed() {
    const char* text = std::getenv("JIFEN_SEED");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : 7300;
}

// Member ids owned by each shard, found with the server's own routing function.
std::vector<std::vector<uint64_t>> members_by_shard(uint32_t shard_count, size_t per_shard) {
    std::vector<std::vector<uint64_t>> members(shard_count);
    for (uint64_t id = 1; std::any_of(members.begin(), members.end(),
                                      [&](const auto& list) { return list.size() < per_shard; });
         ++id) {
        auto& list = members[engine::Shard::shard_of(id, shard_count)];
        if (list.size() < per_shard) {
            list.push_back(id);
        }
    }
    return members;
}

void enroll(RawClient& client, uint64_t txn_id, uint64_t member_id) {
    ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(txn_id, member_id, 0))),
              Result::ok);
}

TEST(CoreLedger, EarnRedeemAndBalanceRoundTrip) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 2));
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    enroll(client, 1, 42);

    auto reply = client.operation(Opcode::earn, make_operation(2, 42, 500));
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_EQ(reply.points, 500);
    EXPECT_EQ(reply.available, 500);

    reply = client.operation(Opcode::redeem, make_operation(3, 42, 200));
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_EQ(reply.available, 300);

    reply = client.operation(Opcode::redeem, make_operation(4, 42, 301));
    EXPECT_EQ(result_of(reply), Result::insufficient_points);

    const auto balance = client.balance(42);
    EXPECT_EQ(static_cast<Result>(balance.result), Result::ok);
    EXPECT_EQ(balance.member_id, 42u);
    EXPECT_EQ(balance.available, 300);
    EXPECT_EQ(balance.lifetime_earned, 500);
    EXPECT_EQ(balance.lifetime_redeemed, 200);
}

TEST(CoreLedger, FieldErrorsArePerOperationResultsAndChangeNothing) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 2));
    RawClient client(server.port());
    client.hello(admin_key);
    enroll(client, 1, 5);
    std::vector<Operation> ops = {make_operation(2, 5, 10), make_operation(0, 5, 10),
                                  make_operation(3, 0, 10), make_operation(4, 5, 10)};
    ops[3].reserved[7] = 1;
    const auto replies = client.operations(Opcode::earn, ops);
    ASSERT_EQ(replies.size(), 4u);
    EXPECT_EQ(result_of(replies[0]), Result::ok);
    EXPECT_EQ(result_of(replies[1]), Result::txn_id_zero);
    EXPECT_EQ(result_of(replies[2]), Result::member_id_zero);
    EXPECT_EQ(result_of(replies[3]), Result::reserved_not_zero);
    EXPECT_EQ(client.balance(5).available, 10);
}

TEST(CoreLedger, ABatchAnswersEveryOperationInOrderAcrossShards) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 4));
    RawClient client(server.port());
    client.hello(admin_key);
    constexpr uint64_t members = 1000;
    std::vector<Operation> enrolls;
    std::vector<Operation> earns;
    for (uint64_t member = 1; member <= members; ++member) {
        enrolls.push_back(make_operation(member, member, 0));
        earns.push_back(make_operation(10'000 + member, member, static_cast<int64_t>(member)));
    }
    for (const auto& reply : client.operations(Opcode::enroll, enrolls)) {
        EXPECT_EQ(result_of(reply), Result::ok);
    }
    const auto replies = client.operations(Opcode::earn, earns);
    ASSERT_EQ(replies.size(), members);
    for (uint64_t i = 0; i < members; ++i) {
        EXPECT_EQ(result_of(replies[i]), Result::ok);
        EXPECT_EQ(replies[i].available, static_cast<int64_t>(i + 1)) << "reply " << i;
    }
    const auto audit = client.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.members, members);
    EXPECT_EQ(audit.available, static_cast<int64_t>(members * (members + 1) / 2));
}

TEST(CoreLedger, PipelinedFramesAreAllAnsweredAndMatchedByRequestId) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 4));
    RawClient client(server.port());
    client.hello(admin_key);
    constexpr uint64_t frames = 200;
    for (uint64_t i = 0; i < frames; ++i) {
        const Operation enroll_op = make_operation(i + 1, i + 1, 0);
        client.send_items(Opcode::enroll, 1000 + i, std::span<const Operation>(&enroll_op, 1));
    }
    std::set<uint64_t> answered;
    for (uint64_t i = 0; i < frames; ++i) {
        const auto frame = client.read_frame();
        ASSERT_TRUE(frame);
        EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(Opcode::enroll));
        EXPECT_EQ(result_of(frame->item<protocol::OperationReply>()), Result::ok);
        answered.insert(frame->header.request_id);
    }
    EXPECT_EQ(answered.size(), frames);
    EXPECT_EQ(*answered.begin(), 1000u);
    EXPECT_EQ(*answered.rbegin(), 1000 + frames - 1);
}

TEST(CoreLedger, CrossShardTransferMovesThePointsAndARefusedCreditIsRefunded) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 4));
    RawClient client(server.port());
    client.hello(admin_key);
    const auto members = members_by_shard(4, 1);
    const uint64_t sender = members[0][0];
    const uint64_t receiver = members[3][0];
    enroll(client, 1, sender);
    enroll(client, 2, receiver);
    ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(3, sender, 1000))),
              Result::ok);

    Operation transfer = make_operation(4, sender, 300);
    transfer.counterparty_id = receiver;
    auto reply = client.operation(Opcode::transfer, transfer);
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_EQ(reply.available, 700);
    EXPECT_EQ(client.balance(sender).available, 700);
    EXPECT_EQ(client.balance(receiver).available, 300);

    // A repeat is replayed, not applied again.
    reply = client.operation(Opcode::transfer, transfer);
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(client.balance(receiver).available, 300);

    // To a member that does not exist (on another shard): debited, then refunded.
    Operation to_nobody = make_operation(5, sender, 100);
    to_nobody.counterparty_id = members_by_shard(4, 2)[2][1];
    reply = client.operation(Opcode::transfer, to_nobody);
    EXPECT_EQ(result_of(reply), Result::member_not_found);
    EXPECT_EQ(reply.available, 700);
    EXPECT_EQ(client.balance(sender).available, 700);
    // Its repeat answers the same refusal, not the debit that was refunded.
    reply = client.operation(Opcode::transfer, to_nobody);
    EXPECT_EQ(result_of(reply), Result::member_not_found);
    EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(reply.available, 700);
    EXPECT_EQ(client.balance(sender).available, 700);

    const auto audit = client.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.transfers_in_flight, 0);
    EXPECT_EQ(audit.available, 1000);
}

TEST(CoreLedger, CaptureWithoutAMemberIdIsRoutedThroughTheTransactionIndex) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 4));
    RawClient client(server.port());
    client.hello(admin_key);
    const uint64_t member = members_by_shard(4, 1)[2][0];
    enroll(client, 1, member);
    ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(2, member, 500))),
              Result::ok);
    auto reply = client.operation(Opcode::hold, make_operation(3, member, 200));
    ASSERT_EQ(result_of(reply), Result::ok);
    EXPECT_EQ(reply.held, 200);

    Operation capture = make_operation(4, 0, 150);
    capture.ref_txn_id_lo = 3;
    reply = client.operation(Opcode::capture, capture);
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_EQ(reply.available, 350);
    EXPECT_EQ(reply.held, 0);

    Operation unknown = make_operation(5, 0, 0);
    unknown.ref_txn_id_lo = 999;
    EXPECT_EQ(result_of(client.operation(Opcode::release, unknown)), Result::hold_not_found);
    EXPECT_EQ(result_of(client.operation(Opcode::reverse, unknown)), Result::txn_not_found);
}

TEST(CoreLedger, ARestartKeepsBalancesAndARepeatedTransactionIsReplayed) {
    TempDir dir;
    const auto members = members_by_shard(2, 1);
    {
        RunningServer server(test_config(dir.path(), 2));
        RawClient client(server.port());
        client.hello(admin_key);
        enroll(client, 1, members[0][0]);
        enroll(client, 2, members[1][0]);
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(3, members[0][0], 800))),
                  Result::ok);
        Operation transfer = make_operation(4, members[0][0], 300);
        transfer.counterparty_id = members[1][0];
        ASSERT_EQ(result_of(client.operation(Opcode::transfer, transfer)), Result::ok);
    }
    RunningServer server(test_config(dir.path(), 2));
    RawClient client(server.port());
    client.hello(admin_key);
    EXPECT_EQ(client.balance(members[0][0]).available, 500);
    EXPECT_EQ(client.balance(members[1][0]).available, 300);
    const auto reply = client.operation(Opcode::earn, make_operation(3, members[0][0], 800));
    EXPECT_EQ(result_of(reply), Result::ok);
    EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(client.balance(members[0][0]).available, 500);
    // The same id for different content is a conflict, not a second earn.
    EXPECT_EQ(result_of(client.operation(Opcode::earn, make_operation(3, members[0][0], 1))),
              Result::id_conflict);
}

// Transaction ids are kept forever, so the ledger-wide index must grow while the server runs
// (both shards wait at a barrier while one rehashes) and start big enough after a restart.
// shard_threads: the core threads the 2 shards run on (server/core_thread.hpp).
void grow_the_index_past_its_starting_size_and_across_a_restart(uint32_t shard_threads) {
    TempDir dir;
    Config config = test_config(dir.path(), 2);
    config.shard_threads = shard_threads;
    config.txn_index_slots = 16;  // The server starts at its minimum for 2 shards instead.
    config.engine.txns_per_shard_max = 16;
    const uint64_t first_slots = 2 * txn_index_slots_min_per_shard;
    const uint64_t earns = first_slots;  // Past 3/4 and 7/8 of the first size: must grow.
    const auto members = members_by_shard(2, 1);
    const auto earn_of = [&](uint64_t i) {
        return make_operation(100 + i, members[i % 2][0], static_cast<int64_t>(1 + i % 7));
    };
    int64_t expected[2] = {0, 0};
    const auto earn_all = [&](RawClient& client, uint64_t from, uint64_t to) {
        std::vector<Operation> batch;
        for (uint64_t i = from; i < to; ++i) {
            batch.push_back(earn_of(i));
            expected[i % 2] += 1 + static_cast<int64_t>(i % 7);
            if (batch.size() == protocol::batch_ops_max || i + 1 == to) {
                for (const auto& reply : client.operations(Opcode::earn, batch)) {
                    ASSERT_EQ(result_of(reply), Result::ok);
                }
                batch.clear();
            }
        }
    };
    const auto check_known = [&](RawClient& client, uint64_t step) {
        for (uint64_t i = step % 7; i < earns; i += step) {
            const auto reply = client.operation(Opcode::earn, earn_of(i));
            ASSERT_EQ(result_of(reply), Result::ok);
            EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
            EXPECT_EQ(result_of(client.operation(
                          Opcode::earn, make_operation(100 + i, members[(i + 1) % 2][0], 1))),
                      Result::id_conflict);
        }
    };
    {
        RunningServer server(config);
        RawClient client(server.port());
        client.hello(admin_key);
        enroll(client, 1, members[0][0]);
        enroll(client, 2, members[1][0]);
        earn_all(client, 0, earns);
        check_known(client, 997);  // Every id is still known after the growth.
        EXPECT_EQ(client.balance(members[0][0]).available, expected[0]);
        EXPECT_EQ(client.balance(members[1][0]).available, expected[1]);
    }
    RunningServer server(config);
    RawClient client(server.port());
    client.hello(admin_key);
    check_known(client, 1009);
    earn_all(client, earns, earns + earns / 2);  // And it keeps growing after the restart.
    EXPECT_EQ(client.balance(members[0][0]).available, expected[0]);
    EXPECT_EQ(client.balance(members[1][0]).available, expected[1]);
}

TEST(CoreLedger, TheTransactionIndexGrowsPastItsStartingSizeAndAcrossARestart) {
    grow_the_index_past_its_starting_size_and_across_a_restart(2);
}

// Both shards on one thread: a growth waits for every shard's arrival without holding the thread
// the other shard needs to arrive (server/txn_index_growth.hpp).
TEST(CoreLedger, TheTransactionIndexGrowsWithEveryShardOnOneThread) {
    grow_the_index_past_its_starting_size_and_across_a_restart(1);
}

TEST(CoreLedger, ACheckpointDueAtShutdownIsTakenAndUsedByTheNextStart) {
    TempDir dir;
    Config config = test_config(dir.path(), 2);
    config.wal.checkpoint_every_records = 8;
    {
        RunningServer server(config);
        RawClient client(server.port());
        client.hello(admin_key);
        std::vector<Operation> enrolls;
        std::vector<Operation> earns;
        for (uint64_t member = 1; member <= 40; ++member) {
            enrolls.push_back(make_operation(member, member, 0));
            earns.push_back(make_operation(100 + member, member, 5));
        }
        client.operations(Opcode::enroll, enrolls);
        client.operations(Opcode::earn, earns);
    }
    RunningServer server(config);
    EXPECT_GT(server.report().checkpoint_seq, 0u);
    RawClient client(server.port());
    client.hello(admin_key);
    const auto audit = client.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.members, 40u);
    EXPECT_EQ(audit.available, 200);
    // Ids from before the checkpoint are still known.
    const auto reply = client.operation(Opcode::earn, make_operation(101, 1, 5));
    EXPECT_NE(reply.flags & protocol::reply_flag_replayed, 0u);
}

// A checkpoint due under load is built in steps while operations go on (server/limits.hpp,
// checkpoint_slice_txns), including changes to transactions it already copied (captured
// holds); the next start loads it and replays the rest.
TEST(CoreLedger, ACheckpointBuiltInStepsUnderLoadRestoresTheExactLedger) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.wal.checkpoint_every_records = 20'000;  // Due twice or more during the load.
    constexpr uint64_t members = 10;
    constexpr uint64_t earns = 60'000;
    const auto earn_batch = [](RawClient& client, uint64_t from, uint64_t to) {
        std::vector<Operation> batch;
        for (uint64_t i = from; i < to; ++i) {
            batch.push_back(make_operation(1'000 + i, 1 + i % members, 1));
        }
        for (const auto& reply : client.operations(Opcode::earn, batch)) {
            ASSERT_EQ(result_of(reply), Result::ok);
        }
    };
    {
        RunningServer server(config);
        RawClient client(server.port());
        client.hello(admin_key);
        for (uint64_t member = 1; member <= members; ++member) {
            enroll(client, member, member);
            ASSERT_EQ(result_of(client.operation(Opcode::earn,
                                                 make_operation(10 + member, member, 1'000))),
                      Result::ok);
            ASSERT_EQ(
                result_of(client.operation(Opcode::hold, make_operation(20 + member, member, 100))),
                Result::ok);
        }
        for (uint64_t first = 0; first < earns; first += 1'000) {
            earn_batch(client, first, first + 1'000);
            if (first == 50'000) {
                for (uint64_t member = 1; member <= members; ++member) {
                    Operation capture = make_operation(40 + member, member, 0);
                    capture.ref_txn_id_lo = 20 + member;
                    ASSERT_EQ(result_of(client.operation(Opcode::capture, capture)), Result::ok);
                }
            }
        }
        // The last steps run on the shard's timer once the load stops.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        // The first checkpoint (20,000 transactions, 1.7 MiB of them) was due long before.
        EXPECT_GE(server.metric("jifen_log_checkpoints_total"), 1);
        EXPECT_GE(server.metric("jifen_log_checkpoint_bytes_total"), 20'000 * 88);
    }
    RunningServer server(config);
    EXPECT_GT(server.report().checkpoint_seq, 0u);
    RawClient client(server.port());
    client.hello(admin_key);
    const auto audit = client.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.members, members);
    for (uint64_t member = 1; member <= members; ++member) {
        const auto balance = client.balance(member);
        EXPECT_EQ(balance.available, 1'000 - 100 + static_cast<int64_t>(earns / members));
        EXPECT_EQ(balance.held, 0);
    }
    Operation capture = make_operation(41, 1, 0);
    capture.ref_txn_id_lo = 21;
    const auto replayed = client.operation(Opcode::capture, capture);
    EXPECT_EQ(result_of(replayed), Result::ok);
    EXPECT_NE(replayed.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_NE(client.operation(Opcode::earn, make_operation(1'000, 1, 1)).flags &
                  protocol::reply_flag_replayed,
              0u);
}

TEST(CoreLedger, HistoryListsAMembersDurableOperationsNewestFirst) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 2));
    RawClient client(server.port());
    client.hello(admin_key);
    enroll(client, 1, 9);
    for (uint64_t txn = 2; txn <= 6; ++txn) {
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(txn, 9, 10))),
                  Result::ok);
    }
    protocol::HistoryRequest request;
    request.member_id = 9;
    request.limit = 3;
    client.send_items(Opcode::history, 50, std::span<const protocol::HistoryRequest>(&request, 1));
    auto frame = client.read_frame();
    ASSERT_TRUE(frame);
    const auto header = frame->item<protocol::HistoryReplyHeader>();
    EXPECT_EQ(static_cast<Result>(header.result), Result::ok);
    ASSERT_EQ(header.count, 3u);
    EXPECT_NE(header.next_before_seq, 0u);
    protocol::HistoryEntry newest;
    std::memcpy(&newest, frame->body.data() + sizeof(header), sizeof(newest));
    EXPECT_EQ(newest.txn_id_lo, 6u);
    EXPECT_EQ(newest.available_after, 50);

    request.member_id = 12345;
    client.send_items(Opcode::history, 51, std::span<const protocol::HistoryRequest>(&request, 1));
    frame = client.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(static_cast<Result>(frame->item<protocol::HistoryReplyHeader>().result),
              Result::member_not_found);
}

// Reads a member's newest history entries (at most 20).
std::vector<protocol::HistoryEntry> newest_history(RawClient& client, uint64_t member_id) {
    protocol::HistoryRequest request;
    request.member_id = member_id;
    request.limit = 20;
    client.send_items(Opcode::history, 60, std::span<const protocol::HistoryRequest>(&request, 1));
    const auto frame = client.read_frame();
    EXPECT_TRUE(frame);
    if (!frame) {
        return {};
    }
    const auto header = frame->item<protocol::HistoryReplyHeader>();
    std::vector<protocol::HistoryEntry> entries(header.count);
    std::memcpy(entries.data(), frame->body.data() + sizeof(header),
                entries.size() * sizeof(protocol::HistoryEntry));
    return entries;
}

TEST(CoreLedger, HistoryShowsWhatTheClockDidAlsoAfterARestart) {
    TempDir dir;
    const Config config = test_config(dir.path(), 2);
    std::vector<protocol::HistoryEntry> before;
    {
        RunningServer server(config);
        RawClient client(server.port());
        client.hello(admin_key);
        enroll(client, 1, 9);
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(2, 9, 100))), Result::ok);
        Operation hold = make_operation(3, 9, 60);
        hold.duration_us = 150'000;
        ASSERT_EQ(result_of(client.operation(Opcode::hold, hold)), Result::ok);
        Operation pending = make_operation(4, 9, 30);
        pending.duration_us = 300'000;
        ASSERT_EQ(client.operation(Opcode::earn, pending).pending, 30);
        // The shards' ticks settle the member once each is due; nobody touches it meanwhile.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (newest_history(client, 9).size() < 6 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        before = newest_history(client, 9);
        ASSERT_EQ(before.size(), 6u);
        const auto balance = client.balance(9);
        EXPECT_EQ(balance.available, 130);
        EXPECT_EQ(balance.held, 0);
        EXPECT_EQ(balance.pending, 0);
    }
    // Newest first: the pending points arrived after the hold timed out; neither names a
    // transaction of its own, the hold's timeout names the hold.
    const protocol::HistoryEntry& released = before[0];
    EXPECT_EQ(static_cast<engine::Op>(released.op), engine::Op::pending_release);
    EXPECT_EQ(released.applied_points, 30);
    EXPECT_EQ(released.available_after, 130);
    EXPECT_EQ(released.txn_id_lo, 0u);
    const protocol::HistoryEntry& timed_out = before[1];
    EXPECT_EQ(static_cast<engine::Op>(timed_out.op), engine::Op::hold_timeout);
    EXPECT_EQ(timed_out.applied_points, 60);
    EXPECT_EQ(timed_out.available_after, 100);
    EXPECT_EQ(timed_out.ref_txn_id_lo, 3u);
    EXPECT_LT(timed_out.seq, released.seq);
    EXPECT_EQ(before[2].txn_id_lo, 4u);

    // Recovery skips the settlement records (replaying the ticks settles again), and history
    // still shows them, once.
    RunningServer server(config);
    RawClient client(server.port());
    client.hello(admin_key);
    const auto after = newest_history(client, 9);
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) {
        EXPECT_EQ(after[i].seq, before[i].seq);
        EXPECT_EQ(after[i].op, before[i].op);
    }
    EXPECT_EQ(client.balance(9).available, 130);
    EXPECT_EQ(client.audit().ok, 1u);
}

TEST(CoreLedger, ATransfersReceiverSeesTheCreditInItsHistoryWhicheverShardsTheyAreOn) {
    TempDir dir;
    const Config config = test_config(dir.path(), 2);
    RunningServer server(config);
    RawClient client(server.port());
    client.hello(admin_key);
    // The sender, a receiver on its shard and one on the other.
    const uint64_t sender = 1;
    uint64_t same_shard = sender + 1;
    while (protocol::shard_of(same_shard, 2) != protocol::shard_of(sender, 2)) {
        ++same_shard;
    }
    uint64_t other_shard = sender + 1;
    while (protocol::shard_of(other_shard, 2) == protocol::shard_of(sender, 2)) {
        ++other_shard;
    }
    uint64_t txn = 1;
    for (const uint64_t member : {sender, same_shard, other_shard}) {
        enroll(client, txn++, member);
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(txn++, member, 100))),
                  Result::ok);
    }
    for (const uint64_t receiver : {same_shard, other_shard}) {
        Operation transfer = make_operation(txn++, sender, 30);
        transfer.counterparty_id = receiver;
        transfer.order_ref = 77;
        ASSERT_EQ(result_of(client.operation(Opcode::transfer, transfer)), Result::ok);
        const auto entries = newest_history(client, receiver);
        ASSERT_GE(entries.size(), 1u);
        const protocol::HistoryEntry& credit = entries[0];
        EXPECT_EQ(static_cast<engine::Op>(credit.op), engine::Op::transfer_credit);
        EXPECT_EQ(credit.txn_id_lo, transfer.txn_id_lo);
        EXPECT_EQ(credit.counterparty_id, sender);
        EXPECT_EQ(credit.applied_points, 30);
        EXPECT_EQ(credit.available_after, 130);
        // Listed once: the sender's debit is the sender's entry.
        for (const auto& entry : entries) {
            EXPECT_NE(static_cast<engine::Op>(entry.op), engine::Op::transfer);
        }
    }
    const auto sent = newest_history(client, sender);
    ASSERT_GE(sent.size(), 1u);
    EXPECT_EQ(sent[0].available_after, 40);

    // After a restart (the heads rebuilt from the log), each history walks its own chain.
    const auto received_before = newest_history(client, same_shard);
    server.stop();
    RunningServer again(config);
    RawClient reader(again.port());
    reader.hello(admin_key);
    const auto received_after = newest_history(reader, same_shard);
    ASSERT_EQ(received_after.size(), received_before.size());
    for (size_t i = 0; i < received_after.size(); ++i) {
        EXPECT_EQ(received_after[i].seq, received_before[i].seq);
        EXPECT_EQ(received_after[i].counterparty_id, received_before[i].counterparty_id);
    }
    EXPECT_EQ(newest_history(reader, sender).size(), sent.size());
}

TEST(CoreLedger, AsyncDurabilityAnswersAndStillRecovers) {
    TempDir dir;
    Config config = test_config(dir.path(), 2);
    config.durability = wal::Durability::async;
    {
        RunningServer server(config);
        RawClient client(server.port());
        client.hello(admin_key);
        enroll(client, 1, 3);
        EXPECT_EQ(client.operation(Opcode::earn, make_operation(2, 3, 70)).available, 70);
    }
    // A clean stop commits everything, async or not.
    RunningServer server(config);
    RawClient client(server.port());
    client.hello(admin_key);
    EXPECT_EQ(client.balance(3).available, 70);
}

// Several clients on several shards earn, redeem and transfer at once; afterwards the audit
// must balance and match what the clients were told.
// shard_threads: the core threads the 4 shards run on.
void concurrent_clients_keep_the_ledger_conserved(uint32_t shard_threads) {
    const uint64_t seed = test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    Config config = test_config(dir.path(), 4);
    config.shard_threads = shard_threads;
    RunningServer server(config);
    constexpr uint64_t members = 64;
    {
        RawClient setup(server.port());
        setup.hello(admin_key);
        std::vector<Operation> enrolls;
        for (uint64_t member = 1; member <= members; ++member) {
            enrolls.push_back(make_operation(member, member, 0));
        }
        for (const auto& reply : setup.operations(Opcode::enroll, enrolls)) {
            ASSERT_EQ(result_of(reply), Result::ok);
        }
    }
    constexpr int clients = 4;
    constexpr int rounds = 150;
    std::atomic<int64_t> earned{0};
    std::atomic<int64_t> redeemed{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            std::mt19937_64 random(seed * 31 + static_cast<uint64_t>(c));
            RawClient client(server.port());
            if (static_cast<Result>(client.hello(admin_key).result) != Result::ok) {
                ++failures;
                return;
            }
            uint64_t txn = (static_cast<uint64_t>(c) + 1) << 40;
            for (int round = 0; round < rounds; ++round) {
                std::vector<Operation> batch;
                const int size = 1 + static_cast<int>(random() % 16);
                const int kind = static_cast<int>(random() % 3);
                for (int i = 0; i < size; ++i) {
                    Operation op = make_operation(++txn, 1 + random() % members,
                                                  1 + static_cast<int64_t>(random() % 100));
                    if (kind == 2) {
                        op.counterparty_id = 1 + random() % members;
                        if (op.counterparty_id == op.member_id) {
                            op.counterparty_id = op.member_id % members + 1;
                        }
                    }
                    batch.push_back(op);
                }
                const Opcode opcode = kind == 0   ? Opcode::earn
                                      : kind == 1 ? Opcode::redeem
                                                  : Opcode::transfer;
                const auto replies = client.operations(opcode, batch);
                if (replies.size() != batch.size()) {
                    ++failures;
                    return;
                }
                for (size_t i = 0; i < replies.size(); ++i) {
                    const Result result = result_of(replies[i]);
                    if (result == Result::ok && kind == 0) {
                        earned += batch[i].points;
                    } else if (result == Result::ok && kind == 1) {
                        redeemed += batch[i].points;
                    } else if (result != Result::ok && result != Result::insufficient_points &&
                               result != Result::busy) {
                        ++failures;
                    }
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    RawClient auditor(server.port());
    auditor.hello(admin_key);
    const auto audit = auditor.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.transfers_in_flight, 0);
    EXPECT_EQ(audit.earned, earned.load());
    EXPECT_EQ(audit.redeemed, redeemed.load());
    EXPECT_EQ(audit.available + audit.held + audit.pending, earned.load() - redeemed.load());
    std::vector<protocol::BalanceRequest> queries;
    for (uint64_t member = 1; member <= members; ++member) {
        queries.push_back({member});
    }
    auditor.send_items(Opcode::balance, 9, std::span<const protocol::BalanceRequest>(queries));
    const auto frame = auditor.read_frame();
    ASSERT_TRUE(frame);
    int64_t sum = 0;
    for (size_t i = 0; i < members; ++i) {
        const auto balance = frame->item<protocol::BalanceReply>(i);
        EXPECT_EQ(balance.member_id, i + 1);
        EXPECT_GE(balance.available, 0);
        sum += balance.available;
    }
    EXPECT_EQ(sum, audit.available);
}

TEST(CoreLedger, ConcurrentClientsKeepTheLedgerConserved) {
    concurrent_clients_keep_the_ledger_conserved(4);
}

// Four shards taking turns on two threads, as on a two-core machine.
TEST(CoreLedger, ConcurrentClientsKeepTheLedgerConservedWithShardsSharingThreads) {
    concurrent_clients_keep_the_ledger_conserved(2);
}

}  // namespace
}  // namespace jifen::server::testing
