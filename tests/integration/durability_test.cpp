// jifend restarts: SIGTERM keeps every balance and every transaction id; kill -9 in the middle of
// a stream of earns loses none that was acknowledged (sync durability); kill -9 at random moments
// of a stream of transfers, most across shards (with frequent checkpoints), leaves each applied
// once with both legs; a reconnecting AsyncClient streams through restarts and every earn is
// applied exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "client/async_client.hpp"
#include "client/client.hpp"
#include "tests/integration/jifend_process.hpp"

namespace jifen::testing {
namespace {

using client::Client;
using protocol::Opcode;

// Enrols members 1..members through a connection of its own.
void enroll_members(const JifendProcess& server, uint64_t members) {
    Client client(server.options());
    client.connect();
    for (uint64_t member = 1; member <= members; ++member) {
        ASSERT_EQ(client.enroll(client::make_enroll(member)).result, 0u);
    }
}

// The points of the earns, summed per member: index = member id, 1..members.
std::vector<int64_t> points_per_member(const std::vector<protocol::Operation>& earns,
                                       uint64_t members) {
    std::vector<int64_t> points(members + 1, 0);
    for (const protocol::Operation& earn : earns) {
        points[earn.member_id] += earn.points;
    }
    return points;
}

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
    ASSERT_NO_FATAL_FAILURE(enroll_members(server, members));

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
    const std::vector<int64_t> acknowledged_points = points_per_member(acknowledged, members);
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

// Kill cycles of the transfer crash test; JIFEN_CRASH_CYCLES sets more (as
// tests/wal/crash_test.cpp).
uint64_t crash_cycles() {
    if (const char* text = std::getenv("JIFEN_CRASH_CYCLES")) {
        return std::strtoull(text, nullptr, 10);
    }
    return 20;
}

// JIFEN_SEED replays a run: it picks the operations and the kill moments.
uint64_t crash_seed() {
    if (const char* text = std::getenv("JIFEN_SEED")) {
        return std::strtoull(text, nullptr, 10);
    }
    return std::random_device{}();
}

// Every operation the transfer crash test ever submitted. None can be refused by the ledger (the
// members are enrolled and rich), so once the test resends those it never heard back about,
// each was applied exactly once and every balance is known.
class TransferStream {
public:
    enum class Heard : uint8_t { nothing, ok, refused };
    struct Sent {
        Opcode opcode;
        protocol::Operation operation;
        Heard heard = Heard::nothing;
    };

    static constexpr uint64_t members = 16;
    static constexpr int64_t opening_points = 1'000'000;

    // acknowledged_survive: sync durability, where every acknowledged operation must be found
    // again after a crash; async may lose the last ones (docs/wal.md), but never half a transfer.
    TransferStream(uint64_t seed, bool acknowledged_survive)
        : random_(seed), acknowledged_survive_(acknowledged_survive) {
        for (uint64_t member = 1; member <= members; ++member) {
            on_shard_[protocol::shard_of(member, 2)].push_back(member);
        }
    }

    // Runs on its own thread until the server is gone: pipelined earns, same-shard transfers and
    // (most) cross-shard transfers. acknowledged counts the ok replies.
    void run(const client::Options& server_options, std::atomic<size_t>* acknowledged) {
        boost::asio::io_context io;
        client::AsyncOptions options;
        static_cast<client::Options&>(options) = server_options;
        options.batch_ops_max = 32;
        options.frames_in_flight_max = 8;
        client::AsyncClient pipelined(io, options);
        bool server_gone = false;
        std::function<void()> submit_more = [&] {
            while (!server_gone) {
                const size_t index = next_operation(pipelined.new_txn_id());
                const bool queued = pipelined.submit(
                    sent_[index].opcode, sent_[index].operation,
                    [&, index](const client::Status& status,
                               const protocol::OperationReply& reply) {
                        if (!status.ok()) {
                            server_gone = true;
                            return;
                        }
                        sent_[index].heard = reply.result == 0 ? Heard::ok : Heard::refused;
                        *acknowledged += reply.result == 0;
                        submit_more();
                    });
                if (!queued) {
                    sent_.pop_back();  // Never left: as if never drawn.
                    return;
                }
            }
        };
        pipelined.async_connect([&](const client::Status& status) {
            if (status.ok()) {
                submit_more();
            }
        });
        io.run();
    }

    // After a restart: resends what was submitted since the last check, one batch per opcode.
    // An acknowledged operation must come back replayed; the others are applied now if they
    // were not before.
    void resend_unchecked(Client& client) {
        for (const Opcode opcode : {Opcode::earn, Opcode::transfer}) {
            std::vector<size_t> indexes;
            std::vector<protocol::Operation> operations;
            for (size_t index = checked_; index < sent_.size(); ++index) {
                if (sent_[index].opcode == opcode) {
                    indexes.push_back(index);
                    operations.push_back(sent_[index].operation);
                }
            }
            const auto replies = client.submit(opcode, operations);
            ASSERT_EQ(replies.size(), operations.size());
            for (size_t i = 0; i < replies.size(); ++i) {
                Sent& sent = sent_[indexes[i]];
                ASSERT_EQ(replies[i].result, 0u) << "resending operation " << indexes[i];
                if (sent.heard == Heard::ok && acknowledged_survive_) {
                    EXPECT_NE(replies[i].flags & protocol::reply_flag_replayed, 0u)
                        << protocol::to_string(opcode) << " " << indexes[i]
                        << " was acknowledged before the kill but is not in the ledger";
                }
                sent.heard = Heard::ok;
            }
        }
        // In async a resent operation may be answered before it is durable, and lost by the
        // next kill: then it must be sent again after that one too.
        if (acknowledged_survive_) {
            checked_ = sent_.size();
        }
    }

    // Every operation applied once: each balance is its opening earn plus what moved.
    std::map<uint64_t, int64_t> expected_balances() const {
        std::map<uint64_t, int64_t> balances;
        for (const Sent& sent : sent_) {
            const protocol::Operation& op = sent.operation;
            balances[op.member_id] += sent.opcode == Opcode::earn ? op.points : -op.points;
            if (sent.opcode == Opcode::transfer) {
                balances[op.counterparty_id] += op.points;
            }
        }
        return balances;
    }

    void enroll_all(Client& client) {
        for (uint64_t member = 1; member <= members; ++member) {
            ASSERT_EQ(client.enroll(client::make_enroll(member)).result, 0u);
            sent_.push_back({Opcode::earn, client::make_earn(member, opening_points), Heard::ok});
            client::set_txn_id(&sent_.back().operation, client.new_txn_id());
            ASSERT_EQ(client.earn(sent_.back().operation).result, 0u);
        }
        checked_ = sent_.size();
    }

    size_t sent_count() const { return sent_.size(); }

private:
    size_t next_operation(client::TxnId txn_id) {
        const uint64_t from = 1 + random_() % members;
        const uint32_t from_shard = protocol::shard_of(from, 2);
        const int64_t points = 1 + static_cast<int64_t>(random_() % 3);
        const uint64_t roll = random_() % 10;
        Sent sent{Opcode::earn, client::make_earn(from, points)};
        if (roll >= 2) {
            // 2 in 10 stay on the sender's shard, 6 cross to the other one.
            const auto& receivers = on_shard_[roll < 4 ? from_shard : 1 - from_shard];
            uint64_t to = receivers[random_() % receivers.size()];
            if (to == from) {
                to = receivers[(std::find(receivers.begin(), receivers.end(), from) -
                                receivers.begin() + 1) %
                               receivers.size()];
            }
            sent = Sent{Opcode::transfer, client::make_transfer(from, to, points)};
        }
        client::set_txn_id(&sent.operation, txn_id);
        sent_.push_back(sent);
        return sent_.size() - 1;
    }

    std::mt19937_64 random_;
    const bool acknowledged_survive_;
    std::vector<uint64_t> on_shard_[2];
    // Only the stream's thread touches it while it runs; the test's thread after joining it.
    std::deque<Sent> sent_;
    size_t checked_ = 0;  // sent_[0, checked_) are known applied once.
};

// After a restart: the server resumes the credit legs recovery found in flight, then no
// transfer may be left half applied, each operation must be there exactly once, and the
// ledger's invariants must hold.
void expect_each_applied_once(const JifendProcess& server, TransferStream& stream) {
    Client client(server.options());
    client.connect();
    protocol::AuditReply audit = client.audit();
    for (int attempt = 0; attempt < 1'000 && audit.transfers_in_flight != 0; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        audit = client.audit();
    }
    ASSERT_EQ(audit.transfers_in_flight, 0) << "debit legs whose credit was not resumed";
    ASSERT_EQ(audit.ok, 1u);
    stream.resend_unchecked(client);
    for (const auto& [member, points] : stream.expected_balances()) {
        EXPECT_EQ(client.balance(member).available, points) << "member " << member;
    }
    audit = client.audit();
    EXPECT_EQ(audit.ok, 1u);
    EXPECT_EQ(audit.transfers_in_flight, 0);
}

// kill -9 at random moments of a stream of earns and transfers, most across shards; after each
// restart every transfer has both legs or neither and every operation is applied once.
void kill_transfer_streams_at_random_moments(const std::string& durability) {
    const uint64_t seed = crash_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    std::mt19937_64 random(seed);
    TempDir dir;
    // sync: a checkpoint every 256 records of a shard, so kills also land while checkpoints are
    // built in steps (started by the shard's tick) and written in pieces, and restarts load
    // them. async: the tick, a shard's own wake-up, is an hour away instead, since there a
    // credit leg waits for its debit to be durable and only the log writer's wake-up may
    // release it.
    const std::filesystem::path config = dir.path() / "jifend.json";
    std::ofstream(config) << (durability == "sync" ? R"({"wal": {"checkpoint_every_records": 256}})"
                                                   : R"({"tick_interval_ms": 3600000})");
    JifendProcess server(dir.path() / "data", 2,
                         {"--config", config.string(), "--durability", durability});
    TransferStream stream(seed + 1, durability == "sync");
    server.start();
    {
        Client client(server.options());
        client.connect();
        stream.enroll_all(client);
    }
    // A clean stop commits everything, so in async too the members and their opening points are
    // in the log before the first kill.
    server.stop(SIGTERM);
    server.start_again();
    for (uint64_t cycle = 1; cycle <= crash_cycles(); ++cycle) {
        SCOPED_TRACE("cycle " + std::to_string(cycle));
        if (cycle > 1) {
            server.start();
            expect_each_applied_once(server, stream);
            if (::testing::Test::HasFatalFailure()) {
                return;
            }
        }
        std::atomic<size_t> acknowledged = 0;
        std::thread load([&] { stream.run(server.options(), &acknowledged); });
        // Killed after a random number of acknowledgements, with frames still in flight.
        const size_t kill_after = 1 + random() % 1'500;
        for (int attempt = 0; attempt < 30'000 && acknowledged < kill_after; ++attempt) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        server.stop(SIGKILL);
        load.join();
        ASSERT_GE(acknowledged, kill_after) << server.log();
    }
    server.start();
    expect_each_applied_once(server, stream);
    EXPECT_GT(stream.sent_count(), crash_cycles() * TransferStream::members);
}

TEST(Durability, TransfersAcrossShardsKilledAtRandomMomentsAreEachAppliedOnceWithBothLegs) {
    kill_transfer_streams_at_random_moments("sync");
}

// Async acknowledges before the log commits, so a kill may lose acknowledged operations; the
// legs of a transfer still go to the other shard only once durable, so none is half applied.
TEST(Durability, AsyncTransfersKilledAtRandomMomentsKeepBothLegsOrNeither) {
    kill_transfer_streams_at_random_moments("async");
}

// An AsyncClient that reconnects by itself streams earns while jifend is killed (-9) and later
// stopped (SIGTERM) and started again on the same port: every earn's handler runs exactly once,
// with ok, and the ledger holds each earn once.
TEST(Durability, AReconnectingPipelinedStreamAppliesEveryEarnOnceAcrossRestarts) {
    TempDir dir;
    JifendProcess server(dir.path() / "data");
    server.start();
    constexpr uint64_t members = 16;
    ASSERT_NO_FATAL_FAILURE(enroll_members(server, members));

    // Owned by the stream's thread until it is joined.
    std::vector<protocol::Operation> submitted;
    std::vector<int> completions;
    std::vector<client::Status> failures;
    size_t replayed = 0;
    std::atomic<size_t> completed_count = 0;
    std::atomic<bool> stop_submitting = false;
    std::atomic<bool> stream_ended = false;
    std::thread stream([&] {
        boost::asio::io_context io;
        client::AsyncOptions options;
        static_cast<client::Options&>(options) = server.options();
        options.batch_ops_max = 64;
        options.frames_in_flight_max = 8;
        // Enough attempts to outlast a restart on a slow, shared machine (about a minute).
        options.reconnect_attempts = 40;
        options.reconnect_backoff = std::chrono::milliseconds(10);
        options.reconnect_backoff_max = std::chrono::milliseconds(2'000);
        client::AsyncClient pipelined(io, options);
        std::function<void()> submit_more = [&] {
            while (!stop_submitting) {
                const size_t index = submitted.size();
                auto earn = client::make_earn(index % members + 1, 1 + int64_t(index % 7));
                client::set_txn_id(&earn, pipelined.new_txn_id());
                const bool queued = pipelined.submit(
                    Opcode::earn, earn,
                    [&, index](const client::Status& status,
                               const protocol::OperationReply& reply) {
                        ++completions[index];
                        if (!status.ok() || reply.result != 0) {
                            failures.push_back(status.ok()
                                                   ? client::Status{client::Failure::none,
                                                                    Result(reply.result), "refused"}
                                                   : status);
                        }
                        replayed += (reply.flags & protocol::reply_flag_replayed) != 0;
                        ++completed_count;
                        if (!stop_submitting) {
                            submit_more();
                        } else if (pipelined.operations_outstanding() == 0) {
                            pipelined.close();
                        }
                    });
                if (!queued) {
                    return;
                }
                submitted.push_back(earn);
                completions.push_back(0);
            }
        };
        pipelined.async_connect([&](const client::Status& status) {
            if (status.ok()) {
                submit_more();
            }
        });
        io.run();
        stream_ended = true;
    });

    // Waits until `more` earns completed after `since`; false if the stream ended first.
    const auto wait_for_completions = [&](size_t since, size_t more) {
        for (int poll = 0; poll < 12'000 && !stream_ended; ++poll) {
            if (completed_count >= since + more) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    };
    constexpr size_t earns_between_restarts = 3'000;
    bool streamed = wait_for_completions(0, earns_between_restarts);
    const size_t before_kill = completed_count;
    server.stop(SIGKILL);
    server.start_again();
    streamed = streamed && wait_for_completions(before_kill, earns_between_restarts);
    const size_t before_term = completed_count;
    const int term_status = server.stop(SIGTERM);
    EXPECT_TRUE(WIFEXITED(term_status)) << server.log();
    server.start_again();
    streamed = streamed && wait_for_completions(before_term, earns_between_restarts);
    stop_submitting = true;
    stream.join();
    ASSERT_TRUE(streamed) << "the stream stopped early:\n" << server.log();

    // Every operation completed exactly once, and each completed with ok.
    ASSERT_EQ(completions.size(), submitted.size());
    EXPECT_EQ(std::count(completions.begin(), completions.end(), 1),
              static_cast<std::ptrdiff_t>(completions.size()));
    EXPECT_TRUE(failures.empty()) << failures.size()
                                  << " failed, the first: " << failures.front().to_string();
    std::cout << submitted.size() << " earns, " << replayed << " answered as replayed\n";

    // The ledger holds each earn once: balances are exactly the sums, and every id is recorded.
    Client client(server.options());
    client.connect();
    const std::vector<int64_t> points_submitted = points_per_member(submitted, members);
    for (uint64_t member = 1; member <= members; ++member) {
        EXPECT_EQ(client.balance(member).available, points_submitted[member])
            << "member " << member;
    }
    const auto replies = client.submit(Opcode::earn, submitted);
    const auto replays = std::count_if(replies.begin(), replies.end(), [](const auto& reply) {
        return reply.result == 0 && (reply.flags & protocol::reply_flag_replayed) != 0;
    });
    EXPECT_EQ(static_cast<size_t>(replays), submitted.size());
    EXPECT_EQ(client.audit().ok, 1u);
}

}  // namespace
}  // namespace jifen::testing
