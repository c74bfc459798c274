// Tests of wal::Log on its own: durability reporting, restart positions, history paging, refusal
// of foreign or mismatched directories, queue limits and map growth/full handling.
#include "wal/log.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/shard.hpp"
#include "tests/wal/wal_test_support.hpp"
#include "wal/limits.hpp"

namespace jifen::wal {
namespace {

using testing::DurableWaiter;
using testing::TempDir;

engine::Record earn_record(engine::MemberId member_id, uint64_t txn_lo, uint32_t shard_count) {
    engine::Record record;
    record.command.op = engine::Op::earn;
    record.command.txn_id = engine::TxnId{txn_lo, 7};
    record.command.member_id = member_id;
    record.command.points = static_cast<engine::Points>(txn_lo);
    record.applied_points = record.command.points;
    record.shard_index = engine::Shard::shard_of(member_id, shard_count);
    return record;
}

class LogInBothMetaSyncModes : public ::testing::TestWithParam<MetaSync> {};
INSTANTIATE_TEST_SUITE_P(Log, LogInBothMetaSyncModes,
                         ::testing::Values(MetaSync::deferred, MetaSync::each_commit),
                         [](const ::testing::TestParamInfo<MetaSync>& param_info) {
                             return std::string(param_info.param == MetaSync::deferred
                                                    ? "deferred"
                                                    : "each_commit");
                         });

TEST_P(LogInBothMetaSyncModes, AppendedRecordsBecomeDurableAndEachAdvanceIsReported) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 2);
    options.meta_sync = GetParam();
    auto log = Log::open(options);
    DurableWaiter waiter;
    log->start(waiter.callback());
    std::vector<uint64_t> appended(2, 0);
    for (uint64_t i = 1; i <= 1'000; ++i) {
        const engine::Record record = earn_record(i, i, 2);
        testing::append_one(*log, record.shard_index, record);
        appended[record.shard_index] = log->appended_seq(record.shard_index);
    }
    for (uint32_t shard = 0; shard < 2; ++shard) {
        waiter.wait_for(shard, appended[shard]);
        EXPECT_EQ(log->durable_seq(shard), appended[shard]);
    }
    EXPECT_EQ(appended[0] + appended[1], 1'000u);
    const LogStats stats = log->stats();
    EXPECT_EQ(stats.records, 1'000u);
    EXPECT_EQ(stats.last_seq, 1'000u);
    EXPECT_GE(stats.commits, 1u);
    EXPECT_GE(waiter.calls(), 2u);
    log->stop();
}

TEST_P(LogInBothMetaSyncModes, StopCommitsEverythingAppendedAndReopenContinuesTheSequences) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 3);
    options.meta_sync = GetParam();
    {
        auto log = Log::open(options);
        log->start(nullptr);
        for (uint64_t i = 1; i <= 3'000; ++i) {
            const engine::Record record = earn_record(i, i, 3);
            testing::append_one(*log, record.shard_index, record);
        }
        log->stop();
        uint64_t total = 0;
        for (uint32_t shard = 0; shard < 3; ++shard) {
            EXPECT_EQ(log->durable_seq(shard), log->appended_seq(shard));
            total += log->durable_seq(shard);
        }
        EXPECT_EQ(total, 3'000u);
        log->stop();  // Idempotent.
    }
    auto log = Log::open(testing::options_for(dir.path(), 3));
    uint64_t total = 0;
    for (uint32_t shard = 0; shard < 3; ++shard) {
        EXPECT_EQ(log->durable_seq(shard), log->appended_seq(shard));
        total += log->appended_seq(shard);
    }
    EXPECT_EQ(total, 3'000u);
    EXPECT_EQ(log->stats().last_seq, 3'000u);
}

TEST(Log, AppendRefusesWholeBatchWhenTheQueueIsFull) {
    TempDir dir;
    auto options = testing::options_for(dir.path(), 1);
    options.queue_records_per_shard = 1'024;  // Raised to append_records_max: one full call fits.
    auto log = Log::open(options);
    std::vector<engine::Record> batch(append_records_max, earn_record(1, 1, 1));
    EXPECT_TRUE(log->append(0, std::span(batch).first(append_records_max - 10)));
    EXPECT_FALSE(log->append(0, std::span(batch).first(11)));  // Not started: nothing drains.
    EXPECT_EQ(log->appended_seq(0), append_records_max - 10u);
    EXPECT_TRUE(log->append(0, std::span(batch).first(10)));
    EXPECT_EQ(log->appended_seq(0), append_records_max);
    log->start(nullptr);
    while (!log->append(0, batch)) {
        std::this_thread::yield();  // A full-size call fits once the writer drained the ring.
    }
    log->stop();
    EXPECT_EQ(log->durable_seq(0), 2u * append_records_max);
}

TEST(Log, HistoryPagesNewestFirstUntilExhausted) {
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 2));
    log->start(nullptr);
    // Members 10 and 11 interleaved: 25 records each.
    for (uint64_t i = 1; i <= 50; ++i) {
        const engine::Record record = earn_record(10 + (i % 2), i, 2);
        testing::append_one(*log, record.shard_index, record);
    }
    log->stop();
    std::vector<uint64_t> points;
    uint64_t before_seq = 0;
    for (int page_index = 0; page_index < 10; ++page_index) {
        const HistoryPage page = log->history(10, before_seq, 7);
        ASSERT_EQ(page.result, Result::ok);
        uint64_t previous_seq = before_seq == 0 ? UINT64_MAX : before_seq;
        for (const auto& [seq, record] : page.entries) {
            EXPECT_LT(seq, previous_seq);
            previous_seq = seq;
            EXPECT_EQ(record.command.member_id, 10u);
            points.push_back(static_cast<uint64_t>(record.command.points));
        }
        if (page.next_before_seq == 0) {
            break;
        }
        EXPECT_EQ(page.entries.size(), 7u);
        before_seq = page.next_before_seq;
    }
    ASSERT_EQ(points.size(), 25u);
    for (size_t i = 0; i < points.size(); ++i) {
        EXPECT_EQ(points[i], 50 - 2 * i);  // Member 10 got the even txn numbers, newest first.
    }
    EXPECT_TRUE(log->history(12, 0, 10).entries.empty());
    EXPECT_EQ(log->history(10, 0, 25).next_before_seq, 0u);
}

TEST(Log, TransferWithinOneShardIsInBothHistoriesAndTicksInNone) {
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 1));
    log->start(nullptr);
    engine::Record transfer = earn_record(5, 1, 1);
    transfer.command.op = engine::Op::transfer;
    transfer.command.counterparty_id = 6;
    engine::Record tick;
    tick.command.op = engine::Op::tick;
    tick.shard_index = 0;
    testing::append_one(*log, 0, transfer);
    testing::append_one(*log, 0, tick);
    log->stop();
    ASSERT_EQ(log->history(5, 0, 10).entries.size(), 1u);
    ASSERT_EQ(log->history(6, 0, 10).entries.size(), 1u);
    EXPECT_EQ(log->history(6, 0, 10).entries[0].first, 1u);
    EXPECT_TRUE(log->history(0, 0, 10).entries.empty());
}

TEST(Log, QuietShardIsAskedForACheckpointOnceItHoldsTheLogBack) {
    TempDir dir;
    auto options = testing::options_for(dir.path(), 2);
    options.checkpoint_every_records = 100;
    auto log = Log::open(options);
    DurableWaiter waiter;
    log->start(waiter.callback());
    engine::MemberId quiet_member = 1;
    while (engine::Shard::shard_of(quiet_member, 2) != 1) {
        ++quiet_member;
    }
    engine::MemberId busy_member = 1;
    while (engine::Shard::shard_of(busy_member, 2) != 0) {
        ++busy_member;
    }
    testing::append_one(*log, 1, earn_record(quiet_member, 1, 2));
    EXPECT_FALSE(log->checkpoint_due(1));
    const std::vector<std::byte> state(1'000, std::byte{1});
    for (uint64_t i = 2; i <= 1'000 && !log->checkpoint_due(1); ++i) {
        testing::append_one(*log, 0, earn_record(busy_member, i, 2));
        if (log->checkpoint_due(0)) {
            log->checkpoint(0, log->appended_seq(0), state);
        }
        waiter.wait_for(0, log->appended_seq(0));  // One commit per record: truncation runs.
    }
    EXPECT_TRUE(log->checkpoint_due(1));
    log->checkpoint(1, log->appended_seq(1), state);
    EXPECT_FALSE(log->checkpoint_due(1));
    log->stop();
}

TEST(Log, FileThatIsNotLmdbIsRefusedAtOpen) {
    TempDir dir;
    std::ofstream(dir.path() / "jifen.lmdb") << std::string(64 * 1024, 'x');
    EXPECT_THROW(Log::open(testing::options_for(dir.path(), 1)), StartupError);
}

TEST(Log, LmdbFileOfAnotherApplicationIsRefusedAtOpen) {
    TempDir dir;
    {
        MDB_env* env = nullptr;
        ASSERT_EQ(mdb_env_create(&env), 0);
        const std::string path = (dir.path() / "jifen.lmdb").string();
        ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0644), 0);
        MDB_txn* txn = nullptr;
        ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
        MDB_dbi dbi;
        ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
        char key_text[] = "someone";
        char value_text[] = "else";
        MDB_val key{sizeof(key_text), key_text};
        MDB_val value{sizeof(value_text), value_text};
        ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
        ASSERT_EQ(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
    }
    try {
        Log::open(testing::options_for(dir.path(), 1));
        FAIL() << "opened a foreign LMDB file";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("not a jifen log"), std::string::npos)
            << error.what();
    }
}

TEST(Log, DifferentShardCountIsRefusedAtOpen) {
    TempDir dir;
    Log::open(testing::options_for(dir.path(), 4));
    try {
        Log::open(testing::options_for(dir.path(), 2));
        FAIL() << "opened with a different shard count";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("4 shards"), std::string::npos) << error.what();
    }
    EXPECT_NO_THROW(Log::open(testing::options_for(dir.path(), 4)));
}

TEST(Log, SecondOpenOfOneDirectoryIsRefusedWhileTheFirstIsOpen) {
    TempDir dir;
    auto first = Log::open(testing::options_for(dir.path(), 1));
    EXPECT_THROW(Log::open(testing::options_for(dir.path(), 1)), StartupError);
    first.reset();
    EXPECT_NO_THROW(Log::open(testing::options_for(dir.path(), 1)));
}

TEST(Log, MapGrowsInsteadOfFilling) {
    TempDir dir;
    auto options = testing::options_for(dir.path(), 1);
    options.map_bytes_initial = 256 << 10;
    options.map_bytes_max = 64 << 20;
    auto log = Log::open(options);
    log->start(nullptr);
    for (uint64_t i = 1; i <= 20'000; ++i) {
        testing::append_one(*log, 0, earn_record(1 + i % 100, i, 1));
    }
    log->stop();
    EXPECT_EQ(log->durable_seq(0), 20'000u);
    EXPECT_FALSE(log->storage_full());
    EXPECT_FALSE(log->failed());
    EXPECT_GT(log->stats().map_bytes, options.map_bytes_initial);
    EXPECT_EQ(log->history(1, 0, 1'000).entries.size(), 200u);
}

TEST(Log, HistoryReadersRunWhileTheMapGrows) {
    TempDir dir;
    auto options = testing::options_for(dir.path(), 1);
    options.map_bytes_initial = 256 << 10;
    options.map_bytes_max = 64 << 20;
    auto log = Log::open(options);
    log->start(nullptr);
    std::atomic<bool> done{false};
    std::atomic<uint64_t> bad_pages{0};
    std::atomic<uint64_t> reads{0};
    std::thread reader([&] {
        while (!done.load()) {
            const HistoryPage page = log->history(3, 0, 20);
            uint64_t previous_seq = UINT64_MAX;
            for (const auto& [seq, record] : page.entries) {
                if (seq >= previous_seq || record.command.member_id != 3) {
                    bad_pages.fetch_add(1);
                }
                previous_seq = seq;
            }
            if (page.result != Result::ok) {
                bad_pages.fetch_add(1);
            }
            reads.fetch_add(1);
        }
    });
    for (uint64_t i = 1; i <= 20'000; ++i) {
        testing::append_one(*log, 0, earn_record(1 + i % 10, i, 1));
    }
    log->stop();
    done.store(true);
    reader.join();
    EXPECT_EQ(bad_pages.load(), 0u);
    EXPECT_GT(reads.load(), 0u);
    EXPECT_GE(log->stats().map_bytes, 4u << 20);  // Grew several times under the reader.
    EXPECT_EQ(log->history(3, 0, 5'000).entries.size(), 2'000u);
}

TEST(Log, DamagedLogValueIsAStartupErrorNotSilentDamage) {
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 1);
    {
        auto log = Log::open(options);
        log->start(nullptr);
        for (uint64_t i = 1; i <= 100; ++i) {
            testing::append_one(*log, 0, earn_record(1, i, 1));
        }
        log->stop();
    }
    {
        // Flip one byte inside the first log value, as a bad disk sector would.
        MDB_env* env = nullptr;
        ASSERT_EQ(mdb_env_create(&env), 0);
        ASSERT_EQ(mdb_env_set_maxdbs(env, 4), 0);
        const std::string path = (dir.path() / "jifen.lmdb").string();
        ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0644), 0);
        MDB_txn* txn = nullptr;
        ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
        MDB_dbi dbi;
        ASSERT_EQ(mdb_dbi_open(txn, "log", 0, &dbi), 0);
        MDB_cursor* cursor = nullptr;
        ASSERT_EQ(mdb_cursor_open(txn, dbi, &cursor), 0);
        MDB_val key;
        MDB_val value;
        ASSERT_EQ(mdb_cursor_get(cursor, &key, &value, MDB_FIRST), 0);
        std::vector<unsigned char> bytes(
            static_cast<const unsigned char*>(value.mv_data),
            static_cast<const unsigned char*>(value.mv_data) + value.mv_size);
        bytes[bytes.size() / 2] ^= 0x10;
        MDB_val damaged{bytes.size(), bytes.data()};
        ASSERT_EQ(mdb_cursor_put(cursor, &key, &damaged, MDB_CURRENT), 0);
        mdb_cursor_close(cursor);
        ASSERT_EQ(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
    }
    auto log = Log::open(options);
    try {
        log->recover({});
        FAIL() << "recover() accepted a wrong shard list";
    } catch (const StartupError&) {
    }
    engine::Config config;
    engine::Shard shard(0, 1, config, nullptr);
    engine::Shard* shards[] = {&shard};
    try {
        log->recover(shards);
        FAIL() << "recovered from a damaged log";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("fails its checks"), std::string::npos)
            << error.what();
    }
}

TEST_P(LogInBothMetaSyncModes, FullMapSetsStorageFullKeepsReadsAndCommitsOnlyWholeRecords) {
    TempDir dir;
    auto options = testing::options_for(dir.path(), 1);
    options.meta_sync = GetParam();
    options.map_bytes_initial = 256 << 10;
    options.map_bytes_max = 1 << 20;
    uint64_t durable = 0;
    {
        auto log = Log::open(options);
        DurableWaiter waiter;
        log->start(waiter.callback());
        // Each record costs ~300 bytes (log + history): 200'000 cannot fit in 1 MiB.
        uint64_t appended = 0;
        for (uint64_t i = 1; i <= 200'000 && !log->storage_full();) {
            const engine::Record record = earn_record(1 + i % 50, i, 1);
            if (log->append(0, std::span<const engine::Record>(&record, 1))) {
                ++appended;
                ++i;
            } else {
                std::this_thread::yield();  // Queue full: the writer is committing.
            }
        }
        ASSERT_LT(appended, 200'000u);
        EXPECT_TRUE(log->storage_full());
        EXPECT_FALSE(log->failed());
        log->stop();
        durable = log->durable_seq(0);
        EXPECT_LE(durable, appended);
        EXPECT_GT(durable, 0u);
        // Reads still work.
        const HistoryPage page = log->history(2, 0, 5);
        EXPECT_EQ(page.result, Result::ok);
        EXPECT_EQ(page.entries.size(), 5u);
        EXPECT_EQ(log->stats().map_bytes, options.map_bytes_max);
    }
    // After restart the log holds exactly the durable prefix, in history too.
    auto log = Log::open(options);
    EXPECT_EQ(log->appended_seq(0), durable);
    uint64_t entries = 0;
    for (engine::MemberId member = 1; member <= 50; ++member) {
        entries += log->history(member, 0, 100'000).entries.size();
    }
    EXPECT_EQ(entries, durable);
}

}  // namespace
}  // namespace jifen::wal
