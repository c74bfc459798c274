// jifend restarts: SIGTERM keeps every balance and every transaction id; kill -9 in the middle of
// a stream of earns loses none that was acknowledged (sync durability).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "client/async_client.hpp"
#include "client/client.hpp"
#include "tests/integration/jifend_process.hpp"

namespace jifen::testing {
namespace {

using client::Client;
using protocol::Opcode;

TEST(Durability, AfterSigtermAndRestartBalancesStayAndARepeatedTxnIsReplayed) {
    TempDir dir;
    JifendProcess server(dir.path() / "data");
    server.start();
    auto earn = client::make_earn(7, 300);
    auto redeem = client::make_redeem(8, 20);
    {
        Client client(server.options());
        client.connect();
        ASSERT_EQ(client.enroll(client::make_enroll(7)).result, 0u);
        ASSERT_EQ(client.enroll(client::make_enroll(8)).result, 0u);
        client::set_txn_id(&earn, client.new_txn_id());
        ASSERT_EQ(client.earn(earn).result, 0u);
        ASSERT_EQ(client.earn(client::make_earn(8, 50)).result, 0u);
        client::set_txn_id(&redeem, client.new_txn_id());
        ASSERT_EQ(client.redeem(redeem).result, 0u);
    }
    const int status = server.stop(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status)) << server.log();
    EXPECT_EQ(WEXITSTATUS(status), 0) << server.log();

    server.start();
    Client client(server.options());
    client.connect();
    EXPECT_EQ(client.balance(7).available, 300);
    EXPECT_EQ(client.balance(8).available, 30);
    const auto replayed = client.earn(earn);
    EXPECT_EQ(replayed.result, 0u);
    EXPECT_EQ(replayed.flags & protocol::reply_flag_replayed, protocol::reply_flag_replayed);
    const auto replayed_redeem = client.redeem(redeem);
    EXPECT_EQ(replayed_redeem.flags & protocol::reply_flag_replayed, protocol::reply_flag_replayed);
    EXPECT_EQ(client.balance(7).available, 300) << "the repeat was not applied again";
    EXPECT_EQ(client.balance(8).available, 30);
    EXPECT_EQ(client.audit().ok, 1u);
}

TEST(Durability, EveryAcknowledgedEarnSurvivesKillDashNine) {
    TempDir dir;
    JifendProcess server(dir.path() / "data");
    server.start();
    constexpr uint64_t members = 16;
    {
        Client client(server.options());
        client.connect();
        for (uint64_t member = 1; member <= members; ++member) {
            ASSERT_EQ(client.enroll(client::make_enroll(member)).result, 0u);
        }
    }

    // A pipelined stream of earns on its own thread; every acknowledged one is remembered.
    std::mutex mutex;
    std::vector<protocol::Operation> acknowledged;
    std::atomic<size_t> acknowledged_count = 0;
    std::atomic<bool> stream_ended = false;
    std::thread stream([&] {
        boost::asio::io_context io;
        client::AsyncOptions options;
        static_cast<client::Options&>(options) = server.options();
        options.batch_ops_max = 64;
        options.frames_in_flight_max = 8;
        client::AsyncClient pipelined(io, options);
        uint64_t sequence = 0;
        std::function<void()> submit_more = [&] {
            while (!stream_ended) {
                auto earn = client::make_earn(sequence % members + 1, 1 + int64_t(sequence % 5));
                client::set_txn_id(&earn, pipelined.new_txn_id());
                const bool queued = pipelined.submit(
                    Opcode::earn, earn,
                    [&, earn](const client::Status& status, const protocol::OperationReply& reply) {
                        if (!status.ok()) {
                            stream_ended = true;  // The server is gone.
                            return;
                        }
                        if (reply.result == 0) {
                            std::lock_guard lock(mutex);
                            acknowledged.push_back(earn);
                            ++acknowledged_count;
                        }
                        submit_more();
                    });
                if (!queued) {
                    return;
                }
                ++sequence;
            }
        };
        pipelined.async_connect([&](const client::Status& status) {
            if (!status.ok()) {
                stream_ended = true;
                return;
            }
            submit_more();
        });
        io.run();
        stream_ended = true;
    });

    // Kill once a good number of earns were acknowledged, while the stream is still running.
    constexpr size_t kill_after = 3'000;
    for (int attempt = 0; attempt < 6'000 && acknowledged_count < kill_after && !stream_ended;
         ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const bool was_streaming = !stream_ended;
    server.stop(SIGKILL);
    stream.join();
    ASSERT_TRUE(was_streaming) << "the stream stopped before the kill:\n" << server.log();
    ASSERT_GE(acknowledged.size(), kill_after);

    server.start();
    Client client(server.options());
    client.connect();
    std::vector<int64_t> acknowledged_points(members + 1, 0);
    for (const protocol::Operation& earn : acknowledged) {
        acknowledged_points[earn.member_id] += earn.points;
    }
    for (uint64_t member = 1; member <= members; ++member) {
        EXPECT_GE(client.balance(member).available, acknowledged_points[member])
            << "member " << member;
    }
    // Each acknowledged earn is in the ledger: resending it is a replay, not a new earn.
    std::vector<protocol::Operation> resend = acknowledged;
    const auto replies = client.submit(Opcode::earn, resend);
    size_t replayed = 0;
    for (const auto& reply : replies) {
        replayed += (reply.result == 0 && (reply.flags & protocol::reply_flag_replayed) != 0);
    }
    EXPECT_EQ(replayed, acknowledged.size());
    EXPECT_EQ(client.audit().ok, 1u);
}

}  // namespace
}  // namespace jifen::testing
