// Tests of wal::Log on its own: durability reporting, restart positions, history paging and its
// chains across restarts and heads flushes, refusal of foreign, old-format or mismatched
// directories, queue limits and map growth/full handling.
#include "wal/log.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/shard.hpp"
#include "tests/wal/wal_test_support.hpp"
#include "wal/format.hpp"
#include "wal/limits.hpp"
#include "wal/record_ring.hpp"

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

// End to end: with commits of at most 5 records, every durable position the writer reports (each
// commit's end, per shard) is the end of a chain, including chains longer than 5, which a commit
// then takes whole.
TEST_P(LogInBothMetaSyncModes, CommitsEndOnlyAtTheEndOfAChainOfDerivedRecords) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.meta_sync = GetParam();
    options.commit_records_max = 5;
    auto log = Log::open(options);
    std::mutex mutex;
    std::vector<uint64_t> reported;
    log->start([&](uint32_t, uint64_t seq) {
        std::lock_guard lock(mutex);
        reported.push_back(seq);
    });
    std::mt19937_64 random(testing::test_seed());
    std::set<uint64_t> chain_ends;
    uint64_t txn = 0;
    for (int chain = 0; chain < 400; ++chain) {
        std::vector<engine::Record> records(random() % 8);  // Up to 7 derived, then the command.
        for (engine::Record& derived : records) {
            derived.command.op =
                random() % 2 == 0 ? engine::Op::expire : engine::Op::transfer_received;
            derived.command.member_id = 1;
            derived.command.points = 1;
            derived.applied_points = 1;
        }
        records.push_back(earn_record(1, ++txn, 1));
        while (!log->append(0, records)) {
            std::this_thread::yield();
        }
        chain_ends.insert(log->appended_seq(0));
    }
    const uint64_t last = log->appended_seq(0);
    log->stop();
    ASSERT_EQ(log->durable_seq(0), last);
    std::lock_guard lock(mutex);
    EXPECT_GT(reported.size(), 100u);
    for (const uint64_t seq : reported) {
        EXPECT_EQ(chain_ends.count(seq), 1u) << "a commit ended at shard seq " << seq;
    }
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

// What each member's history must show, by the filing rule of docs/wal.md: a record is filed
// under its member, and a transfer applied as one command also under its counterparty. Keeps the
// transaction numbers in log order per member.
class HistoryModel {
public:
    explicit HistoryModel(uint32_t shard_count) : shard_count_(shard_count) {}

    void add(const engine::Record& record) {
        const engine::Command& command = record.command;
        if (command.op == engine::Op::tick || command.member_id == 0) {
            return;
        }
        txns_[command.member_id].push_back(command.txn_id.lo);
        if (command.op == engine::Op::transfer && command.counterparty_id != 0 &&
            engine::Shard::shard_of(command.counterparty_id, shard_count_) == record.shard_index) {
            txns_[command.counterparty_id].push_back(command.txn_id.lo);
        }
    }

    // Newest first, as history() returns them.
    std::vector<uint64_t> newest_first(engine::MemberId member_id) const {
        const auto found = txns_.find(member_id);
        if (found == txns_.end()) {
            return {};
        }
        return std::vector<uint64_t>(found->second.rbegin(), found->second.rend());
    }

private:
    uint32_t shard_count_;
    std::map<engine::MemberId, std::vector<uint64_t>> txns_;
};

// Reads a member's whole history page by page, checking each page's shape; returns the
// transaction numbers, newest first.
std::vector<uint64_t> read_history(const Log& log, engine::MemberId member_id, uint32_t limit) {
    std::vector<uint64_t> txns;
    uint64_t before_seq = 0;
    for (;;) {
        const HistoryPage page = log.history(member_id, before_seq, limit);
        EXPECT_EQ(page.result, Result::ok);
        uint64_t previous_seq = before_seq == 0 ? UINT64_MAX : before_seq;
        for (const auto& [seq, record] : page.entries) {
            EXPECT_LT(seq, previous_seq);
            previous_seq = seq;
            EXPECT_TRUE(record.command.member_id == member_id ||
                        record.command.counterparty_id == member_id);
            txns.push_back(record.command.txn_id.lo);
        }
        if (page.next_before_seq == 0 || page.result != Result::ok) {
            return txns;
        }
        EXPECT_EQ(page.entries.size(), limit);
        EXPECT_EQ(page.next_before_seq, page.entries.back().first);
        before_seq = page.next_before_seq;
    }
}

// Random earns, same-shard transfers, cross-shard transfer legs and ticks over `members`
// members, appended to the log and to the model. Transaction numbers continue from *txn_lo.
void append_random(Log& log, HistoryModel& model, std::mt19937_64& random, uint32_t shard_count,
                   uint64_t members, uint64_t count, uint64_t* txn_lo) {
    for (uint64_t i = 0; i < count; ++i) {
        engine::Record record = earn_record(1 + random() % members, ++*txn_lo, shard_count);
        const uint64_t roll = random() % 100;
        if (roll < 15) {
            record.command.op = engine::Op::transfer;
            record.command.counterparty_id = 1 + random() % members;
            if (record.command.counterparty_id == record.command.member_id) {
                record.command.counterparty_id = 0;  // Not filed twice under one member.
                record.command.op = engine::Op::earn;
            }
        } else if (roll < 20) {
            record.command.op = engine::Op::tick;
            record.command.member_id = 0;
            record.shard_index = static_cast<uint32_t>(random() % shard_count);
        }
        testing::append_one(log, record.shard_index, record);
        model.add(record);
    }
}

void expect_histories(const Log& log, const HistoryModel& model, uint64_t members) {
    for (engine::MemberId member = 1; member <= members + 1; ++member) {
        SCOPED_TRACE("member " + std::to_string(member));
        const std::vector<uint64_t> expected = model.newest_first(member);
        for (const uint32_t limit : {1u, 7u, 256u, 1'000u}) {
            ASSERT_EQ(read_history(log, member, limit), expected) << "page limit " << limit;
        }
    }
}

TEST(Log, HistoryPagesAcrossManyValuesAndMembers) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    std::mt19937_64 random(seed);
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 3));
    log->start(nullptr);
    HistoryModel model(3);
    uint64_t txn_lo = 0;
    // ~300 records per member spread over ~50 values of 256 records.
    append_random(*log, model, random, 3, 40, 12'000, &txn_lo);
    log->stop();
    expect_histories(*log, model, 40);
}

// Writes, restarts and writes again with the given heads_map_members per run, checking every
// member's history after each step: the heads come from the map rebuilt from the log tail, from
// the heads table, or both.
void check_history_across_restarts(std::initializer_list<uint32_t> heads_map_members_by_run) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    std::mt19937_64 random(seed);
    TempDir dir;
    constexpr uint64_t members = 60;
    HistoryModel model(2);
    uint64_t txn_lo = 0;
    for (const uint32_t heads_map_members : heads_map_members_by_run) {
        SCOPED_TRACE("run with heads_map_members " + std::to_string(heads_map_members));
        Options options = testing::options_for(dir.path(), 2);
        options.heads_map_members = heads_map_members;
        auto log = Log::open(options);
        expect_histories(*log, model, members);  // Before anything is appended in this run.
        log->start(nullptr);
        append_random(*log, model, random, 2, members, 3'000, &txn_lo);
        log->stop();
        expect_histories(*log, model, members);
    }
}

TEST(Log, HistoryAfterRestartChainsOnFromHeadsRebuiltFromTheLog) {
    check_history_across_restarts({1u << 19, 1u << 19, 1u << 19});  // No heads flush at all.
}

TEST(Log, HistoryAfterRestartChainsOnFromFlushedHeads) {
    check_history_across_restarts({8, 8, 8});  // A heads flush every few commits.
}

TEST(Log, HistoryAfterRestartWithADifferentHeadsMapSize) {
    check_history_across_restarts({1u << 19, 4, 1u << 19, 1});
}

TEST(Log, HistoryAfterRestartWithATailTooLargeForTheHeadsMapFlushesAtOpen) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    // More members than a map for one member can take (it has room for one commit on top).
    const uint64_t members = 2 * records_per_commit_max + 1'000;
    {
        auto log = Log::open(options);
        log->start(nullptr);
        for (uint64_t i = 1; i <= members + 10; ++i) {
            testing::append_one(*log, 0, earn_record(1 + (i - 1) % members, i, 1));
        }
        log->stop();
    }
    options.heads_map_members = 1;
    auto log = Log::open(options);
    log->start(nullptr);
    testing::append_one(*log, 0, earn_record(members, members + 11, 1));
    log->stop();
    for (engine::MemberId member = 1; member <= members; member += 997) {
        const uint64_t expected = member <= 10 ? 2 : 1;
        EXPECT_EQ(log->history(member, 0, 10).entries.size(), expected) << member;
    }
    EXPECT_EQ(read_history(*log, members, 1), (std::vector<uint64_t>{members + 11, members}));
    EXPECT_EQ(read_history(*log, 1, 1), (std::vector<uint64_t>{members + 1, 1}));
}

TEST(Log, TransferAppliedOnOneShardChainsBothMembersHistories) {
    for (const uint32_t heads_map_members : {1u, 1u << 19}) {
        SCOPED_TRACE("heads_map_members " + std::to_string(heads_map_members));
        TempDir dir;
        Options options = testing::options_for(dir.path(), 2);
        options.heads_map_members = heads_map_members;
        // Members 5 and 6 on one shard, 7 on the other.
        engine::MemberId sender = 1;
        while (engine::Shard::shard_of(sender, 2) != 0) {
            ++sender;
        }
        engine::MemberId receiver = sender + 1;
        while (engine::Shard::shard_of(receiver, 2) != 0) {
            ++receiver;
        }
        engine::MemberId remote = 1;
        while (engine::Shard::shard_of(remote, 2) != 1) {
            ++remote;
        }
        uint64_t transfer_seq = 0;
        {
            auto log = Log::open(options);
            DurableWaiter waiter;
            log->start(waiter.callback());
            auto append = [&](engine::Record record) {
                testing::append_one(*log, record.shard_index, record);
                waiter.wait_for(record.shard_index, log->appended_seq(record.shard_index));
            };
            append(earn_record(sender, 1, 2));
            append(earn_record(receiver, 2, 2));
            engine::Record transfer = earn_record(sender, 3, 2);
            transfer.command.op = engine::Op::transfer;
            transfer.command.counterparty_id = receiver;
            append(transfer);
            transfer_seq = log->stats().last_seq;
            // The debit leg of a cross-shard transfer: filed under its sender only.
            engine::Record leg = earn_record(sender, 4, 2);
            leg.command.op = engine::Op::transfer;
            leg.command.counterparty_id = remote;
            append(leg);
            log->stop();
        }
        auto log = Log::open(options);  // The links of the later records cross the restart.
        log->start(nullptr);
        testing::append_one(*log, 0, earn_record(receiver, 5, 2));
        testing::append_one(*log, 0, earn_record(sender, 6, 2));
        log->stop();
        EXPECT_EQ(read_history(*log, sender, 1), (std::vector<uint64_t>{6, 4, 3, 1}));
        EXPECT_EQ(read_history(*log, receiver, 1), (std::vector<uint64_t>{5, 3, 2}));
        EXPECT_TRUE(log->history(remote, 0, 10).entries.empty());
        // Paging on from the transfer follows each member's own link.
        const HistoryPage below_for_receiver = log->history(receiver, transfer_seq, 10);
        ASSERT_EQ(below_for_receiver.entries.size(), 1u);
        EXPECT_EQ(below_for_receiver.entries[0].second.command.txn_id.lo, 2u);
        const HistoryPage below_for_sender = log->history(sender, transfer_seq, 10);
        ASSERT_EQ(below_for_sender.entries.size(), 1u);
        EXPECT_EQ(below_for_sender.entries[0].second.command.txn_id.lo, 1u);
    }
}

TEST(Log, BeforeSeqThatNamesNoRecordOfTheMemberPagesBelowItAsWell) {
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 1));
    log->start(nullptr);
    // Log sequence = txn number here (one shard): member 1 has the odd ones, member 2 the even.
    for (uint64_t i = 1; i <= 100; ++i) {
        testing::append_one(*log, 0, earn_record(2 - i % 2, i, 1));
    }
    log->stop();
    const HistoryPage page = log->history(1, 50, 3);  // 50 is member 2's.
    ASSERT_EQ(page.result, Result::ok);
    ASSERT_EQ(page.entries.size(), 3u);
    EXPECT_EQ(page.entries[0].first, 49u);
    EXPECT_EQ(page.entries[2].first, 45u);
    EXPECT_EQ(page.next_before_seq, 45u);
    // Past the end of the log: from the newest.
    EXPECT_EQ(log->history(1, 1'000'000, 1).entries.at(0).first, 99u);
}

TEST(Log, BeforeSeqFarBelowAMembersNewestRecordsAndNamingNoneIsRefused) {
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 1));
    log->start(nullptr);
    testing::append_one(*log, 0, earn_record(1, 1, 1));
    testing::append_one(*log, 0, earn_record(2, 2, 1));
    for (uint64_t i = 3; i < 3 + history_skip_records_max + 10; ++i) {
        testing::append_one(*log, 0, earn_record(1, i, 1));
    }
    log->stop();
    const HistoryPage refused = log->history(1, 2, 10);
    EXPECT_EQ(refused.result, Result::field_out_of_range);
    EXPECT_TRUE(refused.entries.empty());
    // The same page reached by paging is cheap and fine.
    const HistoryPage paged = log->history(1, 3, 10);
    ASSERT_EQ(paged.result, Result::ok);
    ASSERT_EQ(paged.entries.size(), 1u);
    EXPECT_EQ(paged.entries[0].first, 1u);
}

TEST(Log, HistoryKeepsRecordsOlderThanEveryCheckpoint) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.checkpoint_every_records = 100;
    {
        auto log = Log::open(options);
        log->start(nullptr);
        const std::vector<std::byte> state(100, std::byte{1});
        for (uint64_t i = 1; i <= 1'000; ++i) {
            testing::append_one(*log, 0, earn_record(1 + i % 2, i, 1));
            if (log->checkpoint_due(0)) {
                log->checkpoint(0, log->appended_seq(0), state);
            }
        }
        log->stop();
        EXPECT_EQ(log->history(1, 0, 1'000).entries.size(), 500u);
    }
    auto log = Log::open(options);
    const HistoryPage page = log->history(2, 0, 1'000);
    ASSERT_EQ(page.entries.size(), 500u);
    EXPECT_EQ(page.entries.back().first, 1u);  // The very first record is still there.
}

TEST(Log, HistoryReadersSeeEveryCommittedRecordWhileHeadsAreFlushed) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.heads_map_members = 2;  // A flush, and a map emptied under the readers, per commit.
    auto log = Log::open(options);
    log->start(nullptr);
    constexpr uint64_t members = 10;
    std::atomic<bool> done{false};
    std::atomic<uint64_t> bad_pages{0};
    std::atomic<uint64_t> reads{0};
    std::thread reader([&] {
        std::vector<size_t> seen(members + 1, 0);
        while (!done.load()) {
            for (engine::MemberId member = 1; member <= members; ++member) {
                const HistoryPage page = log->history(member, 0, 100'000);
                uint64_t previous_seq = UINT64_MAX;
                for (const auto& [seq, record] : page.entries) {
                    if (seq >= previous_seq || record.command.member_id != member) {
                        bad_pages.fetch_add(1);
                    }
                    previous_seq = seq;
                }
                // A member's history only grows: a stale or missing head would shrink it.
                if (page.result != Result::ok || page.entries.size() < seen[member]) {
                    bad_pages.fetch_add(1);
                }
                seen[member] = page.entries.size();
                reads.fetch_add(1);
            }
        }
    });
    for (uint64_t i = 1; i <= 20'000; ++i) {
        testing::append_one(*log, 0, earn_record(1 + i % members, i, 1));
    }
    log->stop();
    done.store(true);
    reader.join();
    EXPECT_EQ(bad_pages.load(), 0u);
    EXPECT_GT(reads.load(), 0u);
    for (engine::MemberId member = 1; member <= members; ++member) {
        EXPECT_EQ(log->history(member, 0, 100'000).entries.size(), 2'000u);
    }
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
        waiter.wait_for(0, log->appended_seq(0));  // One commit per record: each one checks.
    }
    EXPECT_TRUE(log->checkpoint_due(1));
    log->checkpoint(1, log->appended_seq(1), state);
    EXPECT_FALSE(log->checkpoint_due(1));
    log->stop();
}

TEST(Log, ReplacingTheOnlyCheckpointInTheTableCommits) {
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 2));
    DurableWaiter waiter;
    log->start(waiter.callback());
    engine::MemberId member = 1;
    while (engine::Shard::shard_of(member, 2) != 0) {
        ++member;
    }
    const std::vector<std::byte> state(100, std::byte{1});
    for (uint64_t i = 1; i <= 6; i += 2) {
        testing::append_one(*log, 0, earn_record(member, i, 2));
        log->checkpoint(0, log->appended_seq(0), state);
        // The writer takes a checkpoint before it gathers records: this one is committed by the
        // time the next record is durable, so each checkpoint replaces the one before it (and
        // deleting its chunks empties the table: shard 1 has none).
        testing::append_one(*log, 0, earn_record(member, i + 1, 2));
        waiter.wait_for(0, log->appended_seq(0));
    }
    log->stop();
    EXPECT_FALSE(log->failed());
    EXPECT_EQ(log->durable_seq(0), 6u);
}

TEST(Log, FileThatIsNotLmdbIsRefusedAtOpen) {
    TempDir dir;
    std::ofstream(dir.path() / "jifen.lmdb") << std::string(64 * 1024, 'x');
    EXPECT_THROW(Log::open(testing::options_for(dir.path(), 1)), StartupError);
}

// An empty file is what a restore onto a full disk leaves. LMDB would take it for a new
// environment and write an empty ledger over it: open refuses it and leaves it as it is.
TEST(Log, AnEmptyLogFileIsRefusedNotReplacedByAnEmptyLedger) {
    TempDir dir;
    std::ofstream(dir.path() / "jifen.lmdb").flush();
    try {
        Log::open(testing::options_for(dir.path(), 1));
        FAIL() << "opened an empty log file";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("is empty (0 bytes)"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(std::filesystem::file_size(dir.path() / "jifen.lmdb"), 0u);
}

// A damaged second meta page is damage, not a short file: the refusal says which.
TEST(Log, ADamagedMetaPageIsRefusedAsDamageNotAsTruncation) {
    TempDir dir;
    { Log::open(testing::options_for(dir.path(), 1)); }
    const auto page_bytes = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    {
        std::fstream file(dir.path() / "jifen.lmdb",
                          std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(static_cast<std::streamoff>(page_bytes));
        const std::string garbage(page_bytes, '\xab');
        file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    try {
        Log::open(testing::options_for(dir.path(), 1));
        FAIL() << "opened a file whose second meta page is garbage";
    } catch (const StartupError& error) {
        const std::string what = error.what();
        EXPECT_NE(what.find("is damaged: LMDB rejects its meta pages"), std::string::npos) << what;
        EXPECT_EQ(what.find("truncated"), std::string::npos) << what;
    }
}

// LMDB's lock file gets its disk blocks before LMDB writes it through a mapping (on a full disk
// that write would be SIGBUS); one it cannot open is named in the refusal.
TEST(Log, LmdbsLockFileIsGivenItsBlocksAndNamedWhenItCannotBeOpened) {
    TempDir dir;
    { Log::open(testing::options_for(dir.path(), 1)); }
    struct stat status;
    ASSERT_EQ(::stat((dir.path() / "jifen.lmdb-lock").c_str(), &status), 0);
    EXPECT_GE(static_cast<uint64_t>(status.st_blocks) * 512, uint64_t{512} * 64);
    TempDir other;
    std::filesystem::create_directory(other.path() / "jifen.lmdb-lock");
    try {
        Log::open(testing::options_for(other.path(), 1));
        FAIL() << "opened with a directory for a lock file";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("lock file"), std::string::npos) << error.what();
        EXPECT_NE(std::string(error.what()).find("jifen.lmdb-lock"), std::string::npos)
            << error.what();
    }
}

// A truncated file: LMDB would map it and fault (SIGBUS, killing this binary) on the first page
// past its end. Open must refuse it, naming the file's size and the size its pages need.
struct Truncation {
    const char* name;
    // The size to cut a file of size_bytes to, pages of page_bytes.
    uint64_t (*cut_to)(uint64_t size_bytes, uint64_t page_bytes);
};

class TruncatedLog : public ::testing::TestWithParam<Truncation> {};
INSTANTIATE_TEST_SUITE_P(
    Log, TruncatedLog,
    ::testing::Values(
        Truncation{"to_one_page", [](uint64_t, uint64_t page) { return page; }},
        Truncation{"to_its_two_meta_pages", [](uint64_t, uint64_t page) { return 2 * page; }},
        Truncation{"to_half", [](uint64_t size, uint64_t) { return size / 2; }},
        Truncation{"by_three_pages", [](uint64_t size, uint64_t page) { return size - 3 * page; }}),
    [](const ::testing::TestParamInfo<Truncation>& param_info) {
        return std::string(param_info.param.name);
    });

TEST_P(TruncatedLog, IsRefusedAtOpenWithItsSizeAndTheSizeItNeeds) {
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 2);
    {
        auto log = Log::open(options);
        log->start(nullptr);
        for (uint64_t i = 1; i <= 20'000; ++i) {  // About 3 MB of log: hundreds of pages.
            const engine::Record record = earn_record(i % 500 + 1, i, 2);
            testing::append_one(*log, record.shard_index, record);
        }
        log->stop();
    }
    const std::filesystem::path file = dir.path() / "jifen.lmdb";
    const uint64_t size_bytes = std::filesystem::file_size(file);
    const auto page_bytes = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t cut_bytes = GetParam().cut_to(size_bytes, page_bytes);
    ASSERT_LT(cut_bytes, size_bytes);
    std::filesystem::resize_file(file, cut_bytes);
    try {
        Log::open(options);
        FAIL() << "opened a file cut from " << size_bytes << " to " << cut_bytes << " bytes";
    } catch (const StartupError& error) {
        const std::string what = error.what();
        EXPECT_NE(what.find("jifen.lmdb is truncated or damaged: it has " +
                            std::to_string(cut_bytes) + " bytes"),
                  std::string::npos)
            << what;
        EXPECT_NE(what.find("restore from a backup"), std::string::npos) << what;
        // A few pages short may be a crash after a commit: the message says how to tell.
        const bool few_pages_short =
            cut_bytes > 2 * page_bytes && size_bytes - cut_bytes <= 16 * page_bytes;
        EXPECT_EQ(what.find("truncate -s ") != std::string::npos, few_pages_short) << what;
    }
}

TEST(Log, ASecondLogOnTheSameDirectoryOrALinkToItsFileIsRefused) {
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 1);
    auto first = Log::open(options);
    const auto refusal = [](const Options& second) {
        try {
            Log::open(second);
        } catch (const StartupError& error) {
            return std::string(error.what());
        }
        return std::string("opened");
    };
    EXPECT_NE(refusal(options).find("in use by another process"), std::string::npos);
    // The same file under another directory (its own jifen.lock and LMDB lock table).
    TempDir other;
    std::filesystem::create_symlink(dir.path() / "jifen.lmdb", other.path() / "jifen.lmdb");
    EXPECT_NE(refusal(testing::options_for(other.path(), 1)).find("another path"),
              std::string::npos);
    TempDir hard;
    std::filesystem::create_hard_link(dir.path() / "jifen.lmdb", hard.path() / "jifen.lmdb");
    EXPECT_NE(refusal(testing::options_for(hard.path(), 1)).find("another path"),
              std::string::npos);
}

TEST(Log, TheLedgerFilesAreReadableByTheirOwnerOnly) {
    TempDir dir;
    const std::filesystem::path data = dir.path() / "data";
    Log::open(testing::options_for(data, 1));
    using std::filesystem::perms;
    EXPECT_EQ(std::filesystem::status(data).permissions() & perms::all, perms::owner_all);
    for (const char* file : {"jifen.lmdb", "jifen.lmdb-lock", "jifen.lock"}) {
        EXPECT_EQ(std::filesystem::status(data / file).permissions() & perms::all,
                  perms::owner_read | perms::owner_write)
            << file;
    }
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

TEST(Log, FormatVersion1IsRefusedAtOpenSayingSo) {
    TempDir dir;
    {
        // A version-1 directory: its format record and its tables, history among them.
        MDB_env* env = nullptr;
        ASSERT_EQ(mdb_env_create(&env), 0);
        ASSERT_EQ(mdb_env_set_maxdbs(env, 4), 0);
        const std::string path = (dir.path() / "jifen.lmdb").string();
        ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0644), 0);
        MDB_txn* txn = nullptr;
        ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
        MDB_dbi dbi;
        for (const char* table : {"log", "history", "checkpoint"}) {
            ASSERT_EQ(mdb_dbi_open(txn, table, MDB_CREATE, &dbi), 0);
        }
        ASSERT_EQ(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
        struct {
            uint64_t magic = 0x4c41574e45464a49ull;  // "JIFENWAL"
            uint32_t version = 1;
            uint32_t shard_count = 1;
        } format_v1;
        char key_text[] = "format";
        MDB_val key{sizeof(key_text) - 1, key_text};
        MDB_val value{sizeof(format_v1), &format_v1};
        ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
        ASSERT_EQ(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
    }
    try {
        Log::open(testing::options_for(dir.path(), 1));
        FAIL() << "opened a version-1 directory";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("format version 1"), std::string::npos)
            << error.what();
    }
}

TEST(Log, FormatVersion2IsRefusedAtOpenSayingSo) {
    // Version 2 had the tables of today and records stored whole: a log written now, its format
    // record set back to 2, is what such a directory looks like to open().
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 1);
    {
        auto log = Log::open(options);
        log->start(nullptr);
        testing::append_one(*log, 0, earn_record(1, 1, 1));
        log->stop();
    }
    {
        MDB_env* env = nullptr;
        ASSERT_EQ(mdb_env_create(&env), 0);
        ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
        const std::string path = (dir.path() / "jifen.lmdb").string();
        ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0644), 0);
        MDB_txn* txn = nullptr;
        ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
        MDB_dbi dbi;
        ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
        char key_text[] = "format";
        MDB_val key{sizeof(key_text) - 1, key_text};
        MDB_val value;
        ASSERT_EQ(mdb_get(txn, dbi, &key, &value), 0);
        format::MetaFormat meta;
        ASSERT_EQ(value.mv_size, sizeof(meta));
        std::memcpy(&meta, value.mv_data, sizeof(meta));
        ASSERT_EQ(meta.version, 3u);
        meta.version = 2;
        value = MDB_val{sizeof(meta), &meta};
        ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
        ASSERT_EQ(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
    }
    try {
        Log::open(options);
        FAIL() << "opened a version-2 directory";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("format version 2"), std::string::npos)
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
    for (uint64_t i = 1; i <= 100'000; ++i) {
        testing::append_one(*log, 0, earn_record(1 + i % 10, i, 1));
    }
    log->stop();
    done.store(true);
    reader.join();
    EXPECT_EQ(bad_pages.load(), 0u);
    EXPECT_GT(reads.load(), 0u);
    EXPECT_GE(log->stats().map_bytes, 4u << 20);  // Grew several times under the reader.
    EXPECT_EQ(log->history(3, 0, 20'000).entries.size(), 10'000u);
}

// Flips one byte inside the first log value, as a bad disk sector would.
// at: which byte, given the value's bytes (default: the middle one).
void damage_first_log_value(
    const std::filesystem::path& dir,
    size_t (*at)(const std::vector<unsigned char>&) = [](const std::vector<unsigned char>& bytes) {
        return bytes.size() / 2;
    }) {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 4), 0);
    const std::string path = (dir / "jifen.lmdb").string();
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
    bytes[at(bytes)] ^= 0x10;
    MDB_val damaged{bytes.size(), bytes.data()};
    ASSERT_EQ(mdb_cursor_put(cursor, &key, &damaged, MDB_CURRENT), 0);
    mdb_cursor_close(cursor);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

void write_earns(const Options& options, uint64_t count) {
    auto log = Log::open(options);
    log->start(nullptr);
    for (uint64_t i = 1; i <= count; ++i) {
        testing::append_one(*log, 0, earn_record(1 + i % 3, i, 1));
    }
    log->stop();
}

TEST(Log, DamagedLogValueIsAStartupErrorNotSilentDamage) {
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 1);
    write_earns(options, 100);
    damage_first_log_value(dir.path());
    // No heads flush yet: open() reads the whole log to rebuild the member heads.
    try {
        Log::open(options);
        FAIL() << "opened a damaged log";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("fails its checks"), std::string::npos)
            << error.what();
    }
}

TEST(Log, DamagedLogValueBeforeTheHeadsFlushIsCaughtByRecovery) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.heads_map_members = 1;  // Every commit flushes: open() reads no log at all.
    write_earns(options, 100);
    damage_first_log_value(dir.path());
    auto log = Log::open(options);
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

TEST(Log, DamagedRecordLayoutIsAStorageErrorForHistoryNotAWrongEntry) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.heads_map_members = 1;  // Every commit flushes: open() reads no log at all.
    write_earns(options, 100);
    // The first record's third byte (of the three saying which words it has) now names a word
    // past the record's last: a history read, which skips the value's checksum, must refuse it.
    // (tests/wal/log_value_test.cpp damages offsets and sizes.)
    damage_first_log_value(dir.path(), [](const std::vector<unsigned char>& bytes) {
        format::GroupHeader header;
        std::memcpy(&header, bytes.data(), sizeof(header));
        return format::records_at(header.run_count, header.record_count) + 2;
    });
    auto log = Log::open(options);
    log->start(nullptr);
    // The first earn (txn 1) went to member 2; the walk down its history reaches it.
    EXPECT_EQ(log->history(2, 0, 1'000).result, Result::storage_error);
    log->stop();
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
        // Each record costs ~150 bytes (record and links): 200'000 cannot fit in 1 MiB.
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

TEST(Log, FullMapWithManyMembersAndHeadsFlushesKeepsEveryHistoryWhole) {
    TempDir dir;
    auto options = testing::options_for(dir.path(), 1);
    options.map_bytes_initial = 256 << 10;
    options.map_bytes_max = 1 << 20;
    options.heads_map_members = 64;  // Flushes, and failed attempts that added members.
    uint64_t durable = 0;
    {
        auto log = Log::open(options);
        log->start(nullptr);
        for (uint64_t i = 1; i <= 200'000 && !log->storage_full();) {
            const engine::Record record = earn_record(i, i, 1);  // A new member each time.
            if (log->append(0, std::span<const engine::Record>(&record, 1))) {
                ++i;
            } else {
                std::this_thread::yield();
            }
        }
        log->stop();
        EXPECT_TRUE(log->storage_full());
        EXPECT_FALSE(log->failed());
        durable = log->durable_seq(0);
        ASSERT_GT(durable, 0u);
    }
    auto log = Log::open(options);
    for (engine::MemberId member = 1; member <= durable + 100; ++member) {
        const HistoryPage page = log->history(member, 0, 10);
        ASSERT_EQ(page.result, Result::ok);
        ASSERT_EQ(page.entries.size(), member <= durable ? 1u : 0u) << member;
    }
}

// A commit takes settlement records only with the record they come before: cut short of a chain,
// or, when not even one chain fits and the commit has nothing yet, the first chain whole.
TEST(LogChains, ACommitNeverEndsBetweenASettlementAndItsCommand) {
    RecordRing ring(16, 0);
    const auto record_of = [](engine::Op op) {
        engine::Record record;
        record.command.op = op;
        return record;
    };
    const engine::Record s = record_of(engine::Op::expire);
    const engine::Record c = record_of(engine::Op::earn);
    // Positions: 0 c | 1 s, 2 s, 3 c | 4 c | 5 s, 6 c
    const std::vector<engine::Record> records = {c, s, s, c, c, s, c};
    ASSERT_TRUE(ring.push(records));
    const uint64_t queued = records.size();
    EXPECT_EQ(whole_chains(ring, 0, queued, queued, false), queued);
    EXPECT_EQ(whole_chains(ring, 0, queued, 0, true), 0u);
    EXPECT_EQ(whole_chains(ring, 0, queued, 1, false), 1u);
    EXPECT_EQ(whole_chains(ring, 0, queued, 2, false), 1u);  // Not the lone settlement at 1.
    EXPECT_EQ(whole_chains(ring, 0, queued, 3, false), 1u);
    EXPECT_EQ(whole_chains(ring, 0, queued, 4, false), 4u);
    EXPECT_EQ(whole_chains(ring, 0, queued, 6, false), 5u);
    // From the chain's start: nothing fits whole; the first chain is taken only if allowed.
    EXPECT_EQ(whole_chains(ring, 1, queued - 1, 2, false), 0u);
    EXPECT_EQ(whole_chains(ring, 1, queued - 1, 2, true), 3u);
    EXPECT_EQ(whole_chains(ring, 5, queued - 5, 1, true), 2u);
}

}  // namespace
}  // namespace jifen::wal
