// jifend when its log cannot grow: writes are refused with storage_full while reads, history and
// the metrics keep answering, the refusals are logged once, and a restart with a larger
// wal.map_bytes_max takes writes again.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/server/core_test_server.hpp"

namespace jifen::server::testing {
namespace {

using protocol::Opcode;
using protocol::Operation;

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

// Captures what the server logs while it runs: added before it starts, removed after it stops
// (the logger's list of sinks is not safe to change while other threads log).
class LogCapture {
public:
    LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1024)) {
        spdlog::default_logger()->sinks().push_back(sink_);
    }
    ~LogCapture() {
        auto& sinks = spdlog::default_logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    size_t count(std::string_view text) const {
        const std::vector<std::string> lines = sink_->last_formatted();
        return static_cast<size_t>(std::count_if(lines.begin(), lines.end(), [&](const auto& line) {
            return line.find(text) != std::string::npos;
        }));
    }

private:
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

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

}  // namespace
}  // namespace jifen::server::testing
