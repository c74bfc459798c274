// jifend's session rules over a real socket: HELLO and keys (anything but a good HELLO first:
// error frame, then close), framing errors (error frame, then close), shape errors after HELLO
// (error frame, connection stays), scopes and the connection limit.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "tests/server/core_test_server.hpp"
#include "tests/server/log_capture.hpp"

namespace jifen::server::testing {
namespace {

using protocol::FrameHeader;
using protocol::Opcode;
using test::LogCapture;

class CoreProtocol : public ::testing::Test {
protected:
    CoreProtocol() : server_(test_config(dir_.path(), 2)) {}

    TempDir dir_;
    RunningServer server_;
};

// Sends one empty-bodied frame on a new connection that has not authenticated: the server must
// answer it with an error frame carrying `expected`, then close the connection.
void expect_error_then_close(uint16_t port, Opcode opcode, uint64_t request_id, Result expected) {
    RawClient client(port);
    client.send_frame(opcode, request_id, 1, {});
    const auto frame = client.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(Opcode::error));
    EXPECT_EQ(frame->header.request_id, request_id);
    EXPECT_EQ(frame->error_result(), expected);
    EXPECT_TRUE(client.closed_by_server());
}

TEST_F(CoreProtocol, HelloWithAValidKeyIsAcceptedAndReportsTheKeysScope) {
    RawClient client(server_.port());
    ASSERT_TRUE(client.connected());
    const auto reply = client.hello(admin_key);
    EXPECT_EQ(static_cast<Result>(reply.result), Result::ok);
    EXPECT_EQ(reply.scope, protocol::scope_admin | protocol::scope_pos | protocol::scope_read);
    EXPECT_EQ(reply.shard_count, 2u);
    EXPECT_EQ(reply.batch_ops_max, protocol::batch_ops_max);
    EXPECT_EQ(std::string(reply.server_name), "jifend");
}

TEST_F(CoreProtocol, HelloWithAWrongKeyGetsAuthFailedAndTheConnectionCloses) {
    RawClient client(server_.port());
    const auto reply = client.hello("not-a-key");
    EXPECT_EQ(static_cast<Result>(reply.result), Result::auth_failed);
    EXPECT_TRUE(client.closed_by_server());
}

TEST_F(CoreProtocol, HelloWithAnEmptyKeyGetsAuthFailed) {
    RawClient client(server_.port());
    EXPECT_EQ(static_cast<Result>(client.hello("").result), Result::auth_failed);
    EXPECT_TRUE(client.closed_by_server());
}

TEST(CoreProtocolLog, RefusedKeysAreLoggedAtMostOnceASecondAndNeverTheKey) {
    LogCapture log_lines;  // Before the server starts (log_capture.hpp).
    const auto started = std::chrono::steady_clock::now();
    {
        TempDir dir;
        RunningServer server(test_config(dir.path(), 1));
        for (int attempt = 0; attempt < 20; ++attempt) {
            RawClient client(server.port());
            EXPECT_EQ(static_cast<Result>(client.hello("guessed-secret-1234").result),
                      Result::auth_failed);
        }
    }
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
            .count();
    // One shard: one line, then at most one a second (the others counted into the next).
    EXPECT_GE(log_lines.count("authentication failed from 127.0.0.1"), 1u);
    EXPECT_LE(log_lines.count("authentication failed"), static_cast<size_t>(1 + seconds));
    EXPECT_EQ(log_lines.count("guessed-secret-1234"), 0u);
}

TEST_F(CoreProtocol, AFrameBeforeHelloGetsNotAuthenticatedAndTheConnectionCloses) {
    expect_error_then_close(server_.port(), Opcode::ping, 5, Result::not_authenticated);
}

TEST_F(CoreProtocol, AnUnknownOpcodeBeforeHelloGetsNotAuthenticatedAndTheConnectionCloses) {
    expect_error_then_close(server_.port(), static_cast<Opcode>(77), 6, Result::not_authenticated);
}

TEST_F(CoreProtocol, AMalformedHelloGetsItsShapeErrorAndTheConnectionCloses) {
    // No HelloRequest body.
    expect_error_then_close(server_.port(), Opcode::hello, 7, Result::bad_body_length);
}

TEST_F(CoreProtocol, PingIsAnsweredWithTheServerTime) {
    RawClient client(server_.port());
    client.hello(read_key);
    client.send_frame(Opcode::ping, 9, 1, {});
    const auto frame = client.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(Opcode::ping));
    EXPECT_EQ(frame->header.request_id, 9u);
    EXPECT_GT(frame->item<protocol::PingReply>().server_time_us, 0u);
}

TEST_F(CoreProtocol, StatsCountShardsConnectionsOperationsAndLogCommits) {
    RawClient client(server_.port());
    client.hello(admin_key);
    ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(1, 3, 0))), Result::ok);
    client.send_frame(Opcode::stats, 21, 1, {});
    const auto frame = client.read_frame();
    ASSERT_TRUE(frame);
    const auto stats = frame->item<protocol::StatsReply>();
    EXPECT_EQ(static_cast<Result>(stats.result), Result::ok);
    EXPECT_EQ(stats.shard_count, 2u);
    EXPECT_EQ(stats.connections, 1u);
    EXPECT_EQ(stats.operations, 1u);
    EXPECT_GE(stats.log_records, 1u);  // The enroll was durable before its reply.
    EXPECT_GE(stats.log_commits, 1u);
}

TEST_F(CoreProtocol, HelloAskingForAShardIsServedThereAndTheSessionGoesOn) {
    RawClient admin(server_.port());
    admin.hello(admin_key);
    for (uint16_t shard = 0; shard < 2; ++shard) {
        RawClient client(server_.port());
        // HELLO and an enroll in one write: the enroll, read before the hand-over, moves with it.
        auto bytes = RawClient::encode_hello(admin_key, shard);
        const protocol::Operation enroll = make_operation(100 + shard, 100 + shard, 0);
        const auto frame =
            RawClient::encode(Opcode::enroll, 7, 1, std::as_bytes(std::span(&enroll, 1)));
        bytes.insert(bytes.end(), frame.begin(), frame.end());
        client.send_bytes(bytes);
        const auto hello = client.read_frame();
        ASSERT_TRUE(hello);
        const auto reply = hello->item<protocol::HelloReply>();
        EXPECT_EQ(static_cast<Result>(reply.result), Result::ok);
        EXPECT_EQ(reply.shard, shard);
        EXPECT_EQ(reply.scope, protocol::scope_admin | protocol::scope_pos | protocol::scope_read);
        const auto enrolled = client.read_frame();
        ASSERT_TRUE(enrolled);
        EXPECT_EQ(enrolled->header.request_id, 7u);
        EXPECT_EQ(static_cast<Result>(enrolled->item<protocol::OperationReply>().result),
                  Result::ok);
        // Members of both shards still work from the connection's new shard.
        for (uint64_t member = 1; member <= 8; ++member) {
            const uint64_t id = 1'000 * (shard + 1) + member;
            EXPECT_EQ(result_of(client.operation(Opcode::enroll, make_operation(id * 10, id, 0))),
                      Result::ok);
            EXPECT_EQ(result_of(client.operation(Opcode::earn,
                                                 make_operation(id * 10 + 1, id, 50 + member))),
                      Result::ok);
            EXPECT_EQ(client.balance(id).available, 50 + static_cast<int64_t>(member));
        }
        admin.send_frame(Opcode::stats, 30 + shard, 1, {});
        const auto stats = admin.read_frame();
        ASSERT_TRUE(stats);
        EXPECT_EQ(stats->item<protocol::StatsReply>().connections, 2u)
            << "a handed-over connection is counted once";
    }
}

// Members of shard 0 and of shard 1 (of 2), by the protocol's own shard_of.
std::vector<uint64_t> members_of_shard(uint32_t shard, size_t count) {
    std::vector<uint64_t> members;
    for (uint64_t member = 5'000; members.size() < count; ++member) {
        if (protocol::shard_of(member, 2) == shard) {
            members.push_back(member);
        }
    }
    return members;
}

TEST_F(CoreProtocol, AShardAwareClientIsNeverHandedBetweenShardsAndOthersAre) {
    const int64_t forwarded_before = server_.metric("jifen_operations_forwarded_total");
    ASSERT_GE(forwarded_before, 0);
    uint64_t txn = 50'000;
    for (uint16_t shard = 0; shard < 2; ++shard) {
        RawClient client(server_.port());
        ASSERT_EQ(client.hello(admin_key, shard).shard, shard);
        for (const uint64_t member : members_of_shard(shard, 20)) {
            ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(++txn, member, 0))),
                      Result::ok);
            ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(++txn, member, 5))),
                      Result::ok);
        }
    }
    EXPECT_EQ(server_.metric("jifen_operations_forwarded_total"), forwarded_before);
    // The same operations on the other shard's connection are each handed over.
    RawClient client(server_.port());
    ASSERT_EQ(client.hello(admin_key, 0).shard, 0u);
    for (const uint64_t member : members_of_shard(1, 20)) {
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(++txn, member, 5))),
                  Result::ok);
    }
    EXPECT_EQ(server_.metric("jifen_operations_forwarded_total"), forwarded_before + 20);
    // /stats carries the same total as /metrics.
    EXPECT_NE(server_.stats_json().find(
                  "\"operations_forwarded\":" + std::to_string(forwarded_before + 20) + ","),
              std::string::npos)
        << server_.stats_json();
    EXPECT_NE(server_.stats_json().find(
                  "\"busy_refusals\":" +
                  std::to_string(server_.metric("jifen_busy_refusals_total")) + ","),
              std::string::npos)
        << server_.stats_json();
}

// Per shard, since one full shard refuses its members while the totals look fine: open holds
// and lot nodes in use, against their tables' sizes.
TEST_F(CoreProtocol, MetricsShowEachShardsOpenHoldsAndLotNodesAgainstTheirLimits) {
    const engine::Config engine = test_config(dir_.path(), 2).engine;
    EXPECT_EQ(server_.metric("jifen_shard_holds_max"), engine.holds_per_shard_max);
    EXPECT_EQ(server_.metric("jifen_shard_lot_nodes_max"), engine.lots_per_shard_max);
    const auto per_shard = [this](std::string_view name, uint32_t shard) {
        return server_.metric(std::string(name) + "{shard=\"" + std::to_string(shard) + "\"}");
    };
    RawClient client(server_.port());
    client.hello(admin_key);
    uint64_t txn = 90'000;
    constexpr uint64_t member = 41;
    ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(++txn, member, 0))),
              Result::ok);
    ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(++txn, member, 50))),
              Result::ok);
    const uint32_t shard = protocol::shard_of(member, 2);
    const int64_t holds_before = per_shard("jifen_shard_holds_open", shard);
    const int64_t lots_before = per_shard("jifen_shard_lot_nodes", shard);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(result_of(client.operation(Opcode::hold, make_operation(++txn, member, 5))),
                  Result::ok);
    }
    protocol::Operation pending = make_operation(++txn, member, 7);
    pending.duration_us = 3'600'000'000;
    ASSERT_EQ(result_of(client.operation(Opcode::earn, pending)), Result::ok);
    EXPECT_EQ(per_shard("jifen_shard_holds_open", shard), holds_before + 3);
    // One node for the pending points, one per hold for the month its points came from.
    EXPECT_EQ(per_shard("jifen_shard_lot_nodes", shard), lots_before + 4);
    EXPECT_GE(per_shard("jifen_shard_holds_open", 1 - shard), 0);  // -1: no such line.
    EXPECT_GE(per_shard("jifen_shard_lot_nodes", 1 - shard), 0);
    EXPECT_NE(server_.stats_json().find("\"holds_open\":"), std::string::npos);
}

TEST_F(CoreProtocol, MetricsCountMembersAndTheTransactionsKeptAndTheMemory) {
    EXPECT_EQ(server_.metric("jifen_members"), 0);
    EXPECT_EQ(server_.metric("jifen_transactions"), 0);
    EXPECT_EQ(server_.metric("jifen_members_max"),
              static_cast<int64_t>(test_config(dir_.path(), 2).engine.members_per_shard_max) * 2);
    EXPECT_GT(server_.metric("process_resident_memory_bytes"), 0);
    RawClient client(server_.port());
    client.hello(admin_key);
    uint64_t txn = 70'000;
    for (uint64_t member = 1; member <= 30; ++member) {
        ASSERT_EQ(result_of(client.operation(Opcode::enroll, make_operation(++txn, member, 0))),
                  Result::ok);
        ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(++txn, member, 5))),
                  Result::ok);
    }
    // A refusal and a repeat keep nothing.
    ASSERT_EQ(result_of(client.operation(Opcode::redeem, make_operation(++txn, 1, 500))),
              Result::insufficient_points);
    ASSERT_EQ(result_of(client.operation(Opcode::earn, make_operation(txn - 1, 30, 5))),
              Result::ok);
    EXPECT_EQ(server_.metric("jifen_members"), 30);
    EXPECT_EQ(server_.metric("jifen_transactions"), 60);
    const std::string stats = server_.stats_json();
    EXPECT_NE(stats.find("\"members\":30,"), std::string::npos) << stats;
    EXPECT_NE(stats.find("\"transactions\":60,"), std::string::npos) << stats;
    EXPECT_NE(stats.find("\"resident_bytes\":"), std::string::npos) << stats;
}

// Every answer other than ok is counted by its result, whichever way it went out: per operation
// (also one forwarded to another shard), a refused HELLO, a frame refused as a whole. ok is not
// counted, and a result shows once it was answered.
TEST_F(CoreProtocol, MetricsCountRefusalsByResult) {
    const auto refusals = [&](std::string_view result) {
        return server_.metric("jifen_refusals_total{result=\"" + std::string(result) + "\"}");
    };
    EXPECT_EQ(refusals("insufficient_points"), -1);
    const std::string none = server_.stats_json();  // Still valid JSON: an empty object.
    EXPECT_NE(none.find("\"refusals\":{},\"shards\":["), std::string::npos) << none;
    RawClient admin(server_.port());
    ASSERT_EQ(static_cast<Result>(admin.hello(admin_key).result), Result::ok);
    std::vector<protocol::Operation> redeems;
    for (uint64_t member = 1; member <= 8; ++member) {  // Members of both shards.
        ASSERT_EQ(result_of(admin.operation(Opcode::enroll, make_operation(member, member, 0))),
                  Result::ok);
        redeems.push_back(make_operation(100 + member, member, 5));
    }
    for (const protocol::OperationReply& reply : admin.operations(Opcode::redeem, redeems)) {
        ASSERT_EQ(result_of(reply), Result::insufficient_points);
    }
    EXPECT_EQ(static_cast<Result>(admin.balance(99).result), Result::member_not_found);

    RawClient stranger(server_.port());
    EXPECT_EQ(static_cast<Result>(stranger.hello("not-a-key").result), Result::auth_failed);
    RawClient reader(server_.port());
    ASSERT_EQ(static_cast<Result>(reader.hello(read_key).result), Result::ok);
    const protocol::Operation earn = make_operation(200, 1, 10);
    reader.send_items(Opcode::earn, 11, std::span<const protocol::Operation>(&earn, 1));
    const auto forbidden = reader.read_frame();
    ASSERT_TRUE(forbidden);
    EXPECT_EQ(forbidden->error_result(), Result::forbidden);

    EXPECT_EQ(refusals("insufficient_points"), 8);
    EXPECT_EQ(refusals("member_not_found"), 1);
    EXPECT_EQ(refusals("auth_failed"), 1);
    EXPECT_EQ(refusals("forbidden"), 1);
    EXPECT_EQ(refusals("ok"), -1);
    EXPECT_EQ(refusals("id_conflict"), -1);
    const std::string stats = server_.stats_json();
    EXPECT_NE(stats.find("\"refusals\":{\"member_not_found\":1,\"insufficient_points\":8,"
                         "\"auth_failed\":1,\"forbidden\":1}"),
              std::string::npos)
        << stats;
}

TEST_F(CoreProtocol, HelloAskingForAShardOutOfRangeIsRefusedAndHelloStillWorksAfter) {
    RawClient client(server_.port());
    const auto refused = client.hello(admin_key, 2);
    EXPECT_EQ(static_cast<Result>(refused.result), Result::field_out_of_range);
    EXPECT_EQ(refused.scope, 0u);
    const auto reply = client.hello(admin_key, 1);
    EXPECT_EQ(static_cast<Result>(reply.result), Result::ok);
    EXPECT_EQ(reply.shard, 1u);
    client.send_frame(Opcode::ping, 9, 1, {});
    const auto ping = client.read_frame();
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->header.request_id, 9u);
}

TEST_F(CoreProtocol, HelloWithUnknownFlagsGetsReservedNotZero) {
    RawClient client(server_.port());
    protocol::HelloRequest request;
    std::memcpy(request.api_key, admin_key.data(), admin_key.size());
    request.flags = 0x8000;
    client.send_items(Opcode::hello, 1, std::span<const protocol::HelloRequest>(&request, 1));
    const auto frame = client.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(static_cast<Result>(frame->item<protocol::HelloReply>().result),
              Result::reserved_not_zero);
}

// Each framing error: one ErrorReply naming it, then the server closes; another client is fine.
struct BrokenFrame {
    const char* name;
    Result expected;
    void (*mutate)(std::vector<std::byte>* bytes);
};

void set_header(std::vector<std::byte>* bytes, const FrameHeader& header) {
    std::memcpy(bytes->data(), &header, sizeof(header));
}

FrameHeader header_of(const std::vector<std::byte>& bytes) {
    FrameHeader header;
    std::memcpy(&header, bytes.data(), sizeof(header));
    return header;
}

const BrokenFrame broken_frames[] = {
    {"bad_magic", Result::bad_magic,
     [](std::vector<std::byte>* bytes) {
         FrameHeader header = header_of(*bytes);
         header.magic = 0x12345678;
         header.header_crc32c = protocol::header_checksum(header);
         set_header(bytes, header);
     }},
    {"bad_version", Result::bad_version,
     [](std::vector<std::byte>* bytes) {
         FrameHeader header = header_of(*bytes);
         header.version = 2;
         header.header_crc32c = protocol::header_checksum(header);
         set_header(bytes, header);
     }},
    {"bad_header_checksum", Result::bad_header_checksum,
     [](std::vector<std::byte>* bytes) {
         FrameHeader header = header_of(*bytes);
         header.header_crc32c ^= 1;
         set_header(bytes, header);
     }},
    {"bad_body_checksum", Result::bad_body_checksum,
     [](std::vector<std::byte>* bytes) { (*bytes)[sizeof(FrameHeader) + 3] ^= std::byte{1}; }},
    {"frame_too_large", Result::frame_too_large,
     [](std::vector<std::byte>* bytes) {
         FrameHeader header = header_of(*bytes);
         header.body_bytes = protocol::body_bytes_max + 1;
         header.header_crc32c = protocol::header_checksum(header);
         set_header(bytes, header);
     }},
};

TEST_F(CoreProtocol, EveryFramingErrorGetsItsNamedErrorFrameThenCloseAndOthersAreUnaffected) {
    for (const BrokenFrame& broken : broken_frames) {
        SCOPED_TRACE(broken.name);
        RawClient client(server_.port());
        ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
        const protocol::BalanceRequest request{7};
        auto bytes = RawClient::encode(
            Opcode::balance, 77, 1,
            std::as_bytes(std::span<const protocol::BalanceRequest>(&request, 1)));
        broken.mutate(&bytes);
        client.send_bytes(bytes);
        const auto frame = client.read_frame();
        ASSERT_TRUE(frame);
        EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(Opcode::error));
        EXPECT_EQ(frame->error_result(), broken.expected);
        EXPECT_FALSE(frame->error_message().empty());
        EXPECT_TRUE(client.closed_by_server());

        RawClient other(server_.port());
        ASSERT_EQ(static_cast<Result>(other.hello(read_key).result), Result::ok);
        EXPECT_EQ(static_cast<Result>(other.balance(7).result), Result::member_not_found);
    }
}

TEST_F(CoreProtocol, ShapeErrorsGetAnErrorFrameAndTheConnectionStaysOpen) {
    RawClient client(server_.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    const protocol::Operation op = make_operation(1, 1, 10);
    const auto op_bytes = std::as_bytes(std::span<const protocol::Operation>(&op, 1));

    // unknown opcode
    client.send_frame(static_cast<Opcode>(77), 1, 1, {});
    // count says 2, body holds 1
    client.send_frame(Opcode::earn, 2, 2, op_bytes);
    // reserved header flag
    auto flagged = RawClient::encode(Opcode::earn, 3, 1, op_bytes);
    FrameHeader header = header_of(flagged);
    header.flags = 0x8000;
    header.header_crc32c = protocol::header_checksum(header);
    set_header(&flagged, header);
    client.send_bytes(flagged);
    // more operations than batch_ops_max (a consistent body would be frame_too_large instead)
    client.send_frame(Opcode::earn, 4, protocol::batch_ops_max + 1, op_bytes);

    const Result expected[] = {Result::unknown_opcode, Result::bad_body_length,
                               Result::reserved_not_zero, Result::batch_too_large};
    for (uint64_t request_id = 1; request_id <= 4; ++request_id) {
        const auto frame = client.read_frame();
        ASSERT_TRUE(frame);
        EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(Opcode::error));
        EXPECT_EQ(frame->header.request_id, request_id);
        EXPECT_EQ(frame->error_result(), expected[request_id - 1]);
    }
    // Still open, still served, and nothing was applied.
    EXPECT_EQ(static_cast<Result>(client.balance(1).result), Result::member_not_found);
}

TEST_F(CoreProtocol, AReadKeyIsForbiddenToEarnAndAPosKeyToEnroll) {
    RawClient reader(server_.port());
    ASSERT_EQ(static_cast<Result>(reader.hello(read_key).result), Result::ok);
    const protocol::Operation earn = make_operation(1, 1, 10);
    reader.send_items(Opcode::earn, 11, std::span<const protocol::Operation>(&earn, 1));
    auto frame = reader.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->header.opcode, static_cast<uint16_t>(Opcode::error));
    EXPECT_EQ(frame->error_result(), Result::forbidden);

    RawClient pos(server_.port());
    ASSERT_EQ(static_cast<Result>(pos.hello(pos_key).result), Result::ok);
    const protocol::Operation enroll = make_operation(2, 1, 0);
    pos.send_items(Opcode::enroll, 12, std::span<const protocol::Operation>(&enroll, 1));
    frame = pos.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->error_result(), Result::forbidden);
    // Balance is allowed for both.
    EXPECT_EQ(static_cast<Result>(reader.balance(1).result), Result::member_not_found);
}

TEST(CoreLimits, ConnectionsOverTheLimitAreRefusedWithBusyAndClosed) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.connections_max = 2;
    RunningServer server(config);
    RawClient first(server.port());
    RawClient second(server.port());
    ASSERT_EQ(static_cast<Result>(first.hello(admin_key).result), Result::ok);
    ASSERT_EQ(static_cast<Result>(second.hello(admin_key).result), Result::ok);
    RawClient third(server.port());
    const auto frame = third.read_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->error_result(), Result::busy);
    EXPECT_TRUE(third.closed_by_server());
}

TEST(CoreLimits, ClientsThatNeverSendHelloDoNotKeepConnectionSlots) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);  // One shard: closes and accepts are in order.
    config.connections_max = 2;
    RunningServer server(config);
    // More rounds of unauthenticated clients than there are slots, each client kept open on
    // its side: only the server's close frees the slot.
    std::vector<std::unique_ptr<RawClient>> unauthenticated;
    for (uint64_t round = 0; round < 2 * config.connections_max; ++round) {
        auto client = std::make_unique<RawClient>(server.port());
        client->send_frame(Opcode::ping, round, 1, {});
        const auto frame = client->read_frame();
        ASSERT_TRUE(frame);
        EXPECT_EQ(frame->error_result(), Result::not_authenticated);
        ASSERT_TRUE(client->closed_by_server());
        unauthenticated.push_back(std::move(client));
    }
    RawClient first(server.port());
    RawClient second(server.port());
    EXPECT_EQ(static_cast<Result>(first.hello(admin_key).result), Result::ok);
    EXPECT_EQ(static_cast<Result>(second.hello(read_key).result), Result::ok);
    EXPECT_EQ(static_cast<Result>(second.balance(1).result), Result::member_not_found);
}

TEST(CoreLimits, AConnectionThatKeepsFailingItsHelloIsClosedAfterTheFrameTimeout) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.frame_timeout_ms = 200;
    config.tick_interval_ms = 20;
    RunningServer server(config);
    RawClient client(server.port());
    // A HELLO asking for a shard that does not exist is refused with the connection left open
    // (the client may correct it), and each one is activity: without a deadline for
    // authenticating, repeating it would hold a connection slot for ever.
    bool closed = false;
    for (int attempt = 0; attempt < 100 && !closed; ++attempt) {
        client.send_bytes(RawClient::encode_hello(admin_key, uint16_t{7}));
        const auto frame = client.read_frame();
        if (!frame) {
            closed = true;
            break;
        }
        EXPECT_EQ(static_cast<Result>(frame->item<protocol::HelloReply>().result),
                  Result::field_out_of_range);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(closed) << "still open after 100 refused HELLOs 20 ms apart";
}

TEST(CoreLimits, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.idle_timeout_ms = 200;
    config.tick_interval_ms = 20;
    RunningServer server(config);
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    // Blocks until the server closes (the receive timeout is far longer than the idle timeout).
    EXPECT_TRUE(client.closed_by_server());
}

TEST(CoreLimits, AFrameLeftHalfSentIsClosedAfterTheFrameTimeout) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.frame_timeout_ms = 200;
    config.tick_interval_ms = 20;
    RunningServer server(config);
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    const auto bytes = RawClient::encode(Opcode::ping, 1, 1, {});
    client.send_bytes(std::span<const std::byte>(bytes).first(10));
    EXPECT_TRUE(client.closed_by_server());
}

// Connections open on the server, as a new admin connection's stats count them (itself too).
uint64_t open_connections(uint16_t port) {
    RawClient admin(port);
    admin.hello(admin_key);
    admin.send_frame(Opcode::stats, 1, 1, {});
    const auto frame = admin.read_frame();
    return frame ? frame->item<protocol::StatsReply>().connections : 0;
}

TEST(CoreLimits, AClientThatStopsReadingItsRepliesIsClosedAfterTheFrameTimeout) {
    TempDir dir;
    Config config = test_config(dir.path(), 1);
    config.frame_timeout_ms = 300;
    config.tick_interval_ms = 20;
    RunningServer server(config);
    RawClient client(server.port(), 4'096);
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    // 16 full frames of balances: 13 MiB of replies that nobody reads. The server stops reading
    // once its socket and its own backlog are full; then nothing it writes is taken.
    std::thread sender([&client] {
        const std::vector<protocol::BalanceRequest> requests(protocol::batch_ops_max);
        for (uint64_t frame = 0; frame < 16; ++frame) {
            client.send_items(Opcode::balance, frame,
                              std::span<const protocol::BalanceRequest>(requests));
        }
    });
    uint64_t open = 0;
    for (int look = 0; look < 100 && (open = open_connections(server.port())) != 1; ++look) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(open, 1u) << "the client that reads nothing is still connected after 5 s";
    sender.join();  // Its sends fail once the server closed the connection.
}

// Sends `count` frames of opcode with request ids 1..count and one body each, in one write,
// before reading any reply.
void send_pipelined(RawClient& client, Opcode opcode, uint64_t count,
                    std::span<const std::byte> body) {
    std::vector<std::byte> frames;
    for (uint64_t request_id = 1; request_id <= count; ++request_id) {
        const auto frame = RawClient::encode(opcode, request_id, 1, body);
        frames.insert(frames.end(), frame.begin(), frame.end());
    }
    client.send_bytes(frames);
}

TEST(CoreLimits, PipelinedHistoryRequestsAreAllAnsweredThoughFewWaitForTheReaderAtOnce) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 1));
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    // Far more than connection_history_in_flight_max, sent before reading any: the connection
    // stops reading requests while its history requests are with the reader, and goes on as
    // pages come back.
    constexpr uint64_t requests = 200;
    protocol::HistoryRequest request;
    request.member_id = 9;
    request.limit = 10;
    send_pipelined(client, Opcode::history, requests, std::as_bytes(std::span(&request, 1)));
    for (uint64_t answered = 0; answered < requests; ++answered) {
        const auto frame = client.read_frame();
        ASSERT_TRUE(frame) << "after " << answered << " answers";
        EXPECT_EQ(static_cast<Result>(frame->item<protocol::HistoryReplyHeader>().result),
                  Result::member_not_found);
    }
    EXPECT_EQ(static_cast<Result>(client.balance(9).result), Result::member_not_found);
}

// An audit holds each shard's thread while it walks it, so a connection has one at a time: the
// rest of a pipelined stream wait their turn, and each is answered.
TEST(CoreLimits, PipelinedAuditsAreAnsweredOneAfterAnother) {
    TempDir dir;
    RunningServer server(test_config(dir.path(), 2));
    RawClient client(server.port());
    ASSERT_EQ(static_cast<Result>(client.hello(admin_key).result), Result::ok);
    constexpr uint64_t audits = 20;
    send_pipelined(client, Opcode::audit, audits, {});
    for (uint64_t request_id = 1; request_id <= audits; ++request_id) {
        const auto frame = client.read_frame();
        ASSERT_TRUE(frame) << "after " << request_id - 1 << " answers";
        EXPECT_EQ(frame->header.request_id, request_id);  // One at a time: in order.
        EXPECT_EQ(frame->item<protocol::AuditReply>().ok, 1u);
    }
}

}  // namespace
}  // namespace jifen::server::testing
