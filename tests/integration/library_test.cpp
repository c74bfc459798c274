// The client library against a real jifend (two shards): every operation with exact balances,
// idempotency, scopes, garbage input, and pipelined batches.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include "client/async_client.hpp"
#include "client/client.hpp"
#include "tests/integration/jifend_process.hpp"

namespace jifen::testing {
namespace {

using client::Client;
using client::TxnId;
using protocol::Opcode;

constexpr uint64_t hour_us = 3'600'000'000;

class Library : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir();
        server_ = new JifendProcess(dir_->path() / "data");
        server_->start();
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    // Member ids unique per test so tests do not see each other's members.
    static uint64_t fresh_member() { return next_member_++; }

    static std::unique_ptr<Client> connect(const std::string& key = client::dev_admin_key) {
        auto client = std::make_unique<Client>(server_->options(key));
        client->connect();
        return client;
    }

    static void expect_ok(const protocol::OperationReply& reply, const char* what) {
        EXPECT_EQ(static_cast<Result>(reply.result), Result::ok)
            << what << ": " << to_string(static_cast<Result>(reply.result));
    }

    static inline TempDir* dir_ = nullptr;
    static inline JifendProcess* server_ = nullptr;
    static inline uint64_t next_member_ = 1'000;
};

TEST_F(Library, EveryOperationMovesExactlyTheExpectedPoints) {
    Client client(server_->options());
    client.connect();
    EXPECT_EQ(client.hello().shard_count, 2u);
    const uint64_t alice = fresh_member();
    const uint64_t bob = fresh_member();
    expect_ok(client.enroll(client::make_enroll(alice, 19'900'715, 1)), "enroll alice");
    expect_ok(client.enroll(client::make_enroll(bob)), "enroll bob");

    auto earn = client::make_earn(alice, 1'000);
    const TxnId earn_id = client.new_txn_id();
    client::set_txn_id(&earn, earn_id);
    const auto earned = client.earn(earn);
    expect_ok(earned, "earn");
    EXPECT_EQ(earned.available, 1'000);

    const auto pending = client.earn(client::make_earn(alice, 50, hour_us));
    expect_ok(pending, "pending earn");
    EXPECT_EQ(pending.pending, 50);
    EXPECT_EQ(pending.available, 1'000);

    const auto redeemed = client.redeem(client::make_redeem(alice, 100));
    expect_ok(redeemed, "redeem");
    EXPECT_EQ(redeemed.available, 900);

    auto hold = client::make_hold(alice, 300);
    const TxnId hold_id = client.new_txn_id();
    client::set_txn_id(&hold, hold_id);
    const auto held = client.hold(hold);
    expect_ok(held, "hold");
    EXPECT_EQ(held.available, 600);
    EXPECT_EQ(held.held, 300);

    const auto captured = client.capture(client::make_capture(hold_id, 200));
    expect_ok(captured, "capture");
    EXPECT_EQ(captured.points, 200);
    EXPECT_EQ(captured.held, 0) << "the rest of the hold is released";
    EXPECT_EQ(captured.available, 700);

    auto second_hold = client::make_hold(alice, 50);
    const TxnId second_hold_id = client.new_txn_id();
    client::set_txn_id(&second_hold, second_hold_id);
    expect_ok(client.hold(second_hold), "second hold");
    const auto released = client.release(client::make_release(second_hold_id));
    expect_ok(released, "release");
    EXPECT_EQ(released.available, 700);
    EXPECT_EQ(released.held, 0);

    const auto closed = client.capture(client::make_capture(second_hold_id));
    EXPECT_EQ(static_cast<Result>(closed.result), Result::hold_closed);

    const auto transferred = client.transfer(client::make_transfer(alice, bob, 200));
    expect_ok(transferred, "transfer");
    EXPECT_EQ(transferred.available, 500);

    expect_ok(client.adjust(client::make_adjust(bob, 25, false)), "adjust credit");
    expect_ok(client.adjust(client::make_adjust(bob, 5, true)), "adjust debit");

    const auto reversed = client.reverse(client::make_reverse(earn_id));
    expect_ok(reversed, "reverse");
    EXPECT_EQ(reversed.points + reversed.shortfall, 1'000);
    EXPECT_EQ(reversed.points, 500) << "only what is left can be clawed back";

    const auto alice_balance = client.balance(alice);
    EXPECT_EQ(static_cast<Result>(alice_balance.result), Result::ok);
    EXPECT_EQ(alice_balance.available, 0);
    EXPECT_EQ(alice_balance.pending, 50);
    EXPECT_EQ(alice_balance.tier, 1);
    EXPECT_EQ(alice_balance.birthday, 19'900'715u);
    const auto bob_balance = client.balance(bob);
    EXPECT_EQ(bob_balance.available, 220);

    const auto history = client.history(alice, 0, 100);
    EXPECT_EQ(static_cast<Result>(history.header.result), Result::ok);
    ASSERT_GE(history.entries.size(), 9u);
    EXPECT_EQ(history.entries.back().op, 1) << "the oldest entry is the enroll";
    for (size_t index = 1; index < history.entries.size(); ++index) {
        EXPECT_GT(history.entries[index - 1].seq, history.entries[index].seq) << "newest first";
    }

    const auto audit = client.audit();
    EXPECT_EQ(static_cast<Result>(audit.result), Result::ok);
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_GT(client.stats().operations, 10u);
    EXPECT_GT(client.ping().server_time_us, 0u);
}

// The embedded default configuration limits a member to 1000 open holds: one frame of 1001
// holds opens 1000 and refuses the last, and releasing one makes room again.
TEST_F(Library, AMemberPastItsOpenHoldLimitIsRefusedWithMemberHoldLimit) {
    constexpr size_t limit = 1'000;
    auto client = connect();
    const uint64_t member = fresh_member();
    expect_ok(client->enroll(client::make_enroll(member)), "enroll");
    expect_ok(client->earn(client::make_earn(member, 10'000)), "earn");
    std::vector<protocol::Operation> holds(limit + 1, client::make_hold(member, 1));
    const auto replies = client->submit(Opcode::hold, holds);
    ASSERT_EQ(replies.size(), limit + 1);
    for (size_t i = 0; i < limit; ++i) {
        ASSERT_EQ(static_cast<Result>(replies[i].result), Result::ok) << "hold " << i;
    }
    EXPECT_EQ(static_cast<Result>(replies[limit].result), Result::member_hold_limit);
    EXPECT_EQ(replies[limit].held, static_cast<int64_t>(limit));  // The balances, unchanged.
    EXPECT_EQ(replies[limit].available, static_cast<int64_t>(10'000 - limit));

    const uint64_t other = fresh_member();  // Another member is not limited by it.
    expect_ok(client->enroll(client::make_enroll(other)), "enroll other");
    expect_ok(client->earn(client::make_earn(other, 1)), "earn other");
    expect_ok(client->hold(client::make_hold(other, 1)), "hold of another member");

    expect_ok(client->release(client::make_release(client::txn_id_of(holds[0]))), "release");
    expect_ok(client->hold(holds[limit]), "the refused hold, retried with its id");
    EXPECT_EQ(static_cast<Result>(client->hold(client::make_hold(member, 1)).result),
              Result::member_hold_limit);
}

// The embedded default configuration limits a member to 1000 pending lots: one frame of 1001
// earns pending for an hour and 0..1000 seconds (each its own release time) credits 1000 and
// refuses the last; reversing one makes room again. None comes due while the test runs (the
// server's clock is the wall clock), so a slow machine sees the same.
TEST_F(Library, APendingEarnPastTheMembersPendingLotLimitIsRefusedWithMemberLotLimit) {
    constexpr size_t limit = 1'000;
    constexpr uint64_t second_us = 1'000'000;
    auto client = connect();
    const uint64_t member = fresh_member();
    expect_ok(client->enroll(client::make_enroll(member)), "enroll");
    std::vector<protocol::Operation> earns;
    for (size_t i = 0; i <= limit; ++i) {
        earns.push_back(client::make_earn(member, 1, hour_us + i * second_us));
    }
    const auto replies = client->submit(Opcode::earn, earns);
    ASSERT_EQ(replies.size(), limit + 1);
    for (size_t i = 0; i < limit; ++i) {
        ASSERT_EQ(static_cast<Result>(replies[i].result), Result::ok) << "earn " << i;
    }
    EXPECT_EQ(static_cast<Result>(replies[limit].result), Result::member_lot_limit);
    EXPECT_EQ(replies[limit].pending, static_cast<int64_t>(limit));  // The balances, unchanged.

    const uint64_t other = fresh_member();  // Another member is not limited by it.
    expect_ok(client->enroll(client::make_enroll(other)), "enroll other");
    expect_ok(client->earn(client::make_earn(other, 1, second_us)), "pending earn of another");
    expect_ok(client->earn(client::make_earn(member, 1)), "an earn available at once");

    expect_ok(client->reverse(client::make_reverse(client::txn_id_of(earns[limit - 1]))),
              "reverse");
    expect_ok(client->earn(earns[limit]), "the refused earn, retried with its id");
    EXPECT_EQ(
        static_cast<Result>(client->earn(client::make_earn(member, 1, 5'000 * second_us)).result),
        Result::member_lot_limit);
}

TEST_F(Library, FrozenMembersCannotEarnUntilUnfrozen) {
    const auto client_owner = connect();
    Client& client = *client_owner;
    const uint64_t member = fresh_member();
    expect_ok(client.enroll(client::make_enroll(member)), "enroll");
    expect_ok(client.update_member(client::make_update_member(member, 0, 0, true)), "freeze");
    EXPECT_EQ(static_cast<Result>(client.earn(client::make_earn(member, 1)).result),
              Result::member_frozen);
    EXPECT_EQ(client.balance(member).status, 1);
    expect_ok(client.update_member(client::make_update_member(member, 0, 0, false)), "unfreeze");
    expect_ok(client.earn(client::make_earn(member, 1)), "earn after unfreeze");
}

TEST_F(Library, ARepeatedTxnIdIsReplayedAndDifferentContentConflicts) {
    const auto client_owner = connect();
    Client& client = *client_owner;
    const uint64_t member = fresh_member();
    expect_ok(client.enroll(client::make_enroll(member)), "enroll");
    auto earn = client::make_earn(member, 70);
    client::set_txn_id(&earn, client.new_txn_id());
    const auto first = client.earn(earn);
    const auto again = client.earn(earn);
    expect_ok(again, "repeat");
    EXPECT_EQ(again.flags & protocol::reply_flag_replayed, protocol::reply_flag_replayed);
    EXPECT_EQ(again.points, first.points);
    EXPECT_EQ(client.balance(member).available, 70) << "applied once";

    auto different = earn;
    different.points = 71;
    EXPECT_EQ(static_cast<Result>(client.earn(different).result), Result::id_conflict);
    EXPECT_EQ(client.balance(member).available, 70);
}

TEST_F(Library, ARefusedOperationLeavesNoTraceSoItsRetryCanSucceed) {
    const auto client_owner = connect();
    Client& client = *client_owner;
    const uint64_t member = fresh_member();
    expect_ok(client.enroll(client::make_enroll(member)), "enroll");
    auto redeem = client::make_redeem(member, 40);
    client::set_txn_id(&redeem, client.new_txn_id());
    EXPECT_EQ(static_cast<Result>(client.redeem(redeem).result), Result::insufficient_points);
    expect_ok(client.earn(client::make_earn(member, 100)), "earn");
    const auto retried = client.redeem(redeem);
    expect_ok(retried, "retried redeem");
    EXPECT_EQ(retried.flags & protocol::reply_flag_replayed, 0u);
    EXPECT_EQ(retried.available, 60);
}

TEST_F(Library, AWrongKeyIsRefusedWithAuthFailed) {
    Client client(server_->options("not-a-key"));
    try {
        client.connect();
        FAIL() << "connected with a wrong key";
    } catch (const client::Error& error) {
        EXPECT_EQ(error.failure(), client::Failure::refused);
        EXPECT_EQ(error.result(), Result::auth_failed);
    }
    EXPECT_FALSE(client.is_connected());
}

TEST_F(Library, APosKeyMayEarnButIsForbiddenToReverse) {
    const auto admin_owner = connect();
    Client& admin = *admin_owner;
    const uint64_t member = fresh_member();
    expect_ok(admin.enroll(client::make_enroll(member)), "enroll");
    const auto pos_owner = connect("dev-pos-key");
    Client& pos = *pos_owner;
    auto earn = client::make_earn(member, 10);
    const TxnId earn_id = pos.new_txn_id();
    client::set_txn_id(&earn, earn_id);
    expect_ok(pos.earn(earn), "pos earn");
    try {
        pos.reverse(client::make_reverse(earn_id));
        FAIL() << "a pos key reversed a transaction";
    } catch (const client::Error& error) {
        EXPECT_EQ(error.failure(), client::Failure::refused);
        EXPECT_EQ(error.result(), Result::forbidden);
    }
    EXPECT_EQ(pos.balance(member).available, 10) << "the connection stays usable";
}

TEST_F(Library, GarbageBytesGetAnErrorFrameAndACloseWhileOtherClientsAreServed) {
    const auto bystander_owner = connect();
    Client& bystander = *bystander_owner;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server_->port()});
    std::string garbage(64, 'x');
    boost::asio::write(socket, boost::asio::buffer(garbage));
    protocol::FrameHeader header;
    boost::asio::read(socket, boost::asio::buffer(&header, sizeof(header)));
    EXPECT_EQ(protocol::check_header(header), Result::ok);
    EXPECT_EQ(header.opcode, static_cast<uint16_t>(Opcode::error));
    std::vector<std::byte> body(header.body_bytes);
    boost::asio::read(socket, boost::asio::buffer(body));
    protocol::ErrorReply error;
    ASSERT_GE(body.size(), sizeof(error));
    std::memcpy(&error, body.data(), sizeof(error));
    EXPECT_EQ(static_cast<Result>(error.result), Result::bad_magic);
    std::byte extra;
    boost::system::error_code read_error;
    boost::asio::read(socket, boost::asio::buffer(&extra, 1), read_error);
    EXPECT_EQ(read_error, boost::asio::error::eof) << "the server closes after a framing error";

    EXPECT_GT(bystander.ping().server_time_us, 0u);
    const auto newcomer_owner = connect();
    Client& newcomer = *newcomer_owner;
    EXPECT_GT(newcomer.ping().server_time_us, 0u);
}

TEST_F(Library, AClientAskingForAShardIsServedByThatShard) {
    for (uint16_t shard = 0; shard < 2; ++shard) {
        client::Options options = server_->options();
        options.shard = shard;
        Client client(options);
        client.connect();
        EXPECT_EQ(client.hello().shard, shard);
        // Its own shard's members and the other shard's both work.
        for (int index = 0; index < 6; ++index) {
            const uint64_t member = fresh_member();
            expect_ok(client.enroll(client::make_enroll(member)), "enroll");
            expect_ok(client.earn(client::make_earn(member, 40 + index)), "earn");
            EXPECT_EQ(client.balance(member).available, 40 + index);
        }
    }
}

TEST_F(Library, PipelinedEarnsAreAllAppliedExactlyOnce) {
    const auto admin_owner = connect();
    Client& admin = *admin_owner;
    std::vector<uint64_t> members;
    for (int index = 0; index < 50; ++index) {
        members.push_back(fresh_member());
        expect_ok(admin.enroll(client::make_enroll(members.back())), "enroll");
    }
    constexpr int earns = 20'000;
    boost::asio::io_context io;
    client::AsyncOptions options;
    static_cast<client::Options&>(options) = server_->options();
    options.batch_ops_max = 128;
    options.frames_in_flight_max = 16;
    client::AsyncClient pipelined(io, options);
    int submitted = 0;
    int acknowledged = 0;
    int failed = 0;
    std::function<void()> submit_more;
    submit_more = [&] {
        while (submitted < earns) {
            const uint64_t member = members[static_cast<size_t>(submitted) % members.size()];
            const bool queued = pipelined.submit(
                Opcode::earn, client::make_earn(member, 1),
                [&](const client::Status& status, const protocol::OperationReply& reply) {
                    if (!status.ok() || reply.result != 0) {
                        ++failed;
                    }
                    if (++acknowledged == earns) {
                        pipelined.close();
                    } else {
                        submit_more();
                    }
                });
            if (!queued) {
                return;
            }
            ++submitted;
        }
    };
    pipelined.async_connect([&](const client::Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        submit_more();
    });
    io.run();
    EXPECT_EQ(acknowledged, earns);
    EXPECT_EQ(failed, 0);
    int64_t total = 0;
    for (const auto& balance : admin.balances(members)) {
        total += balance.available;
    }
    EXPECT_EQ(total, earns);
}

}  // namespace
}  // namespace jifen::testing
