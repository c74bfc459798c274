// Recovery tests on the real engine: a restart rebuilds the exact shard state (digest), from the
// log alone or from a checkpoint plus the log after it, and transaction ids stay idempotent.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/calendar.hpp"
#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "tests/wal/wal_test_support.hpp"
#include "wal/format.hpp"
#include "wal/limits.hpp"
#include "wal/log.hpp"

namespace jifen::wal {
namespace {

using testing::Driver;
using testing::Ledger;
using testing::TempDir;

constexpr engine::TimeUs start_us = 1'750'000'000'000'000;

struct RunResult {
    uint64_t digest = 0;
    uint64_t logged = 0;
    uint64_t derived = 0;  // Derived records logged beside them (never replayed).
    uint64_t ticks = 0;
    std::vector<engine::Command> applied;  // Logged commands with a transaction id.
};

// Applies `steps` random commands to a fresh ledger, logging each state change; with
// checkpoint_every set, hands checkpoints to the log when it asks for them.
RunResult run_ledger(const Options& options, uint64_t seed, int steps) {
    Ledger ledger(options.shard_count);
    auto log = Log::open(options);
    log->recover(ledger.pointers);
    log->start(nullptr);
    Driver driver(ledger, seed, 1, start_us);
    RunResult result;
    std::vector<uint64_t> handed_seq(options.shard_count, 0);  // 0: none handed in this run.
    const auto hand_checkpoint = [&](uint32_t shard) {
        std::vector<std::byte> state;
        ledger.shards[shard]->save(&state);
        handed_seq[shard] = log->appended_seq(shard);
        log->checkpoint(shard, handed_seq[shard], std::move(state));
    };
    for (int i = 0; i < steps; ++i) {
        const Driver::Applied applied = driver.step();
        if (!applied.logged) {
            continue;
        }
        testing::append_applied(*log, applied);
        ++result.logged;
        result.derived += applied.derived.size();
        result.ticks += applied.record.command.op == engine::Op::tick ? 1 : 0;
        if (!applied.record.command.txn_id.is_zero()) {
            result.applied.push_back(applied.record.command);
        }
        if (log->checkpoint_due(applied.shard)) {
            hand_checkpoint(applied.shard);
        }
    }
    // A checkpoint is due only once the one before is on disk, and these steps outrun the
    // writer (its commits wait for the disk): as a server's shard would, take the one due at the
    // end once the writer has caught up, or the checkpoints would cover only the first records.
    for (uint32_t shard = 0; shard < options.shard_count; ++shard) {
        if (handed_seq[shard] == 0 ||
            log->appended_seq(shard) - handed_seq[shard] < options.checkpoint_every_records) {
            continue;
        }
        for (int i = 0; i < 10'000 && !log->checkpoint_due(shard); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_TRUE(log->checkpoint_due(shard));
        hand_checkpoint(shard);
    }
    log->stop();
    EXPECT_FALSE(log->failed());
    EXPECT_TRUE(ledger.audit_ok());
    result.digest = ledger.digest();
    return result;
}

TEST(Recovery, RestartRecoversTheExactStateFromTheLog) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 3);
    const RunResult before = run_ledger(options, seed, 20'000);
    ASSERT_GT(before.logged, 5'000u);
    ASSERT_GT(before.derived, 100u);  // Holds timed out, points released and expired.

    Ledger ledger(3);
    auto log = Log::open(options);
    // What the server reserves transaction ids for: the records that are neither.
    EXPECT_EQ(log->stats().records_without_ids, before.ticks + before.derived);
    EXPECT_EQ(log->stats().last_seq, before.logged + before.derived);
    const RecoveryStats stats = log->recover(ledger.pointers);
    EXPECT_EQ(stats.records_replayed, before.logged);
    EXPECT_EQ(stats.checkpoint_seq, 0u);
    EXPECT_EQ(ledger.digest(), before.digest);
    EXPECT_TRUE(ledger.audit_ok());
}

// Opens the log again into fresh shards: recovery must rebuild the state with `digest`, and the
// audit must pass.
void expect_recovers_to(const Options& options, uint32_t shard_count, uint64_t digest) {
    Ledger ledger(shard_count);
    auto log = Log::open(options);
    log->recover(ledger.pointers);
    EXPECT_EQ(ledger.digest(), digest);
    EXPECT_TRUE(ledger.audit_ok());
}

// Runs `steps` commands with checkpoints, restarts, and expects the exact state with only the
// log after the checkpoints replayed: recovery seeks past the older log.
void expect_restart_from_checkpoints(const Options& options, int steps) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    const RunResult before = run_ledger(options, seed, steps);
    Ledger ledger(options.shard_count);
    auto log = Log::open(options);
    const RecoveryStats stats = log->recover(ledger.pointers);
    EXPECT_GT(stats.checkpoint_seq, 0u);
    EXPECT_LT(stats.records_replayed, before.logged / 2);
    EXPECT_EQ(ledger.digest(), before.digest);
    EXPECT_TRUE(ledger.audit_ok());
}

// Applies one command on shard 0 of a one-shard ledger and logs it when it changed the state,
// as the server does.
engine::Outcome apply_logged(Ledger& ledger, Log& log, const engine::Command& command) {
    const engine::Outcome outcome = ledger.shards[0]->apply(command);
    if (outcome.result == Result::ok && !outcome.replayed) {
        engine::Record record;
        record.command = command;
        record.applied_points = outcome.points;
        record.available_after = outcome.available;
        testing::append_one(log, 0, record);
    }
    return outcome;
}

engine::Command command_of(engine::Op op, uint64_t txn, engine::MemberId member,
                           engine::Points points, engine::TimeUs time_us, engine::TxnId ref = {}) {
    engine::Command command;
    command.op = op;
    command.txn_id = engine::TxnId{txn, 77};
    command.member_id = member;
    command.points = points;
    command.ref_txn_id = ref;
    command.time_us = time_us;
    return command;
}

engine::Outcome apply_logged(Ledger& ledger, Log& log, engine::Op op, uint64_t txn,
                             engine::MemberId member, engine::Points points, engine::TimeUs time_us,
                             engine::TxnId ref = {}) {
    return apply_logged(ledger, log, command_of(op, txn, member, points, time_us, ref));
}

// Member 1 enrolled, earns 100 (txn 10), spends 80, and the earn is reversed: a debt of 80, which
// only reverse_allows_negative allows.
void apply_debt(Ledger& ledger, Log& log) {
    ASSERT_EQ(apply_logged(ledger, log, engine::Op::enroll, 1, 1, 0, start_us).result, Result::ok);
    ASSERT_EQ(apply_logged(ledger, log, engine::Op::earn, 10, 1, 100, start_us).result, Result::ok);
    ASSERT_EQ(apply_logged(ledger, log, engine::Op::redeem, 11, 1, 80, start_us).result,
              Result::ok);
    const engine::Outcome debt =
        apply_logged(ledger, log, engine::Op::reverse, 12, 1, 0, start_us, engine::TxnId{10, 77});
    ASSERT_EQ(debt.result, Result::ok);
    ASSERT_EQ(debt.available, -80);
}

// The programme rules may change between restarts: each record replays under the rules it was
// applied with (a debt a reverse made while allowed stays, a hold keeps the timeout it got), the
// new rules act from the restart on, and a table size configured lower keeps the size the
// directory ran with. Before the log recorded the rules, each of these refused to start.
TEST(Recovery, EngineRulesChangedBetweenRestartsReplayUnderTheRulesOfTheirTime) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    engine::Config first = testing::small_config();
    first.reverse_allows_negative = true;
    first.hold_timeout_us_default = 2'000'000;
    first.holds_per_shard_max = 2;
    options.engine = first;
    uint64_t digest = 0;
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        log->recover(ledger.pointers);
        log->start(nullptr);
        apply_debt(ledger, *log);  // Allowed by the first rules.
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::enroll, 2, 2, 0, start_us).result,
                  Result::ok);
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::earn, 20, 2, 100, start_us).result,
                  Result::ok);
        // Two holds open at once: the whole holds table.
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::hold, 21, 2, 10, start_us).result,
                  Result::ok);
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::hold, 22, 2, 10, start_us).result,
                  Result::ok);
        // Past the first rules' 2 s default timeout: both holds are back.
        const engine::Outcome settled =
            apply_logged(ledger, *log, engine::Op::earn, 23, 2, 1, start_us + 3'000'000);
        ASSERT_EQ(settled.result, Result::ok);
        ASSERT_EQ(settled.held, 0);
        log->stop();
        digest = ledger.digest();
    }

    engine::Config second = first;
    second.reverse_allows_negative = false;
    second.hold_timeout_us_default = 15ull * 60 * 1'000'000;
    second.holds_per_shard_max = 1;
    options.engine = second;
    {
        auto log = Log::open(options);
        EXPECT_EQ(log->engine_config().holds_per_shard_max, 2u);  // Never below what it had.
        EXPECT_EQ(log->engine_config().hold_timeout_us_default, second.hold_timeout_us_default);
        Ledger ledger(1, log->engine_config());
        log->recover(ledger.pointers);
        EXPECT_EQ(ledger.digest(), digest);
        EXPECT_TRUE(ledger.audit_ok());  // The debt made while allowed does not fail it.
        EXPECT_EQ(ledger.shards[0]->audit().negative_balances, 1u);
        log->start(nullptr);
        // The new rules from here on: a reverse takes what is there and reports the rest.
        ASSERT_EQ(
            apply_logged(ledger, *log, engine::Op::earn, 30, 2, 50, start_us + 4'000'000).result,
            Result::ok);
        ASSERT_EQ(
            apply_logged(ledger, *log, engine::Op::redeem, 31, 2, 120, start_us + 4'000'000).result,
            Result::ok);
        const engine::Outcome clawed = apply_logged(ledger, *log, engine::Op::reverse, 32, 2, 0,
                                                    start_us + 4'000'000, engine::TxnId{30, 77});
        ASSERT_EQ(clawed.result, Result::ok);
        EXPECT_EQ(clawed.available, 0);
        EXPECT_EQ(clawed.shortfall, 19);
        // And a hold gets the new default timeout: still held 3 s later.
        ASSERT_EQ(
            apply_logged(ledger, *log, engine::Op::earn, 33, 2, 10, start_us + 4'000'000).result,
            Result::ok);
        ASSERT_EQ(
            apply_logged(ledger, *log, engine::Op::hold, 34, 2, 10, start_us + 4'000'000).result,
            Result::ok);
        const engine::Outcome later =
            apply_logged(ledger, *log, engine::Op::earn, 35, 2, 1, start_us + 7'000'000);
        ASSERT_EQ(later.result, Result::ok);
        EXPECT_EQ(later.held, 10);
        log->stop();
        digest = ledger.digest();
    }
    // A third start with the same settings replays both stretches, each under its own rules.
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        log->recover(ledger.pointers);
        EXPECT_EQ(ledger.digest(), digest);
        EXPECT_TRUE(ledger.audit_ok());
    }
}

// A log opened on options and a one-shard ledger recovered from it.
struct Recovered {
    explicit Recovered(const Options& options)
        : log(Log::open(options)), ledger(1, log->engine_config()) {
        log->recover(ledger.pointers);
    }
    std::unique_ptr<Log> log;
    Ledger ledger;
};

// Starts twice on the directory with options: each time the ledger replays to digest and passes
// its audit, and the next command (next(txn), a new txn each start) is refused with limit,
// changing nothing and logging nothing.
template <class Next>
void expect_replayed_then_limited(const Options& options, uint64_t digest, Result limit,
                                  Next next) {
    for (uint64_t start = 0; start < 2; ++start) {
        Recovered again(options);
        EXPECT_EQ(again.ledger.digest(), digest);
        EXPECT_TRUE(again.ledger.audit_ok());
        again.log->start(nullptr);
        EXPECT_EQ(apply_logged(again.ledger, *again.log, next(5'000 + start)).result, limit);
        again.log->stop();
        EXPECT_EQ(again.ledger.digest(), digest);
    }
}

// A member's holds taken under no per-member limit replay after the limit is lowered below them
// (each under the rules of its time); new holds meet the new limit.
TEST(Recovery, HoldsTakenBeforeALowerPerMemberLimitReplayAndLaterHoldsMeetIt) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    engine::Config rules = testing::small_config();
    rules.holds_per_member_max = 0;
    options.engine = rules;
    const auto apply = [](Recovered& at, engine::Op op, uint64_t txn, engine::Points points) {
        return apply_logged(at.ledger, *at.log, op, txn, 2, points, start_us).result;
    };
    uint64_t digest = 0;
    {
        Recovered first(options);
        first.log->start(nullptr);
        ASSERT_EQ(apply(first, engine::Op::enroll, 1, 0), Result::ok);
        ASSERT_EQ(apply(first, engine::Op::earn, 2, 100), Result::ok);
        for (uint64_t txn = 10; txn < 13; ++txn) {
            ASSERT_EQ(apply(first, engine::Op::hold, txn, 1), Result::ok);
        }
        first.log->stop();
        digest = first.ledger.digest();
    }
    rules.holds_per_member_max = 2;
    options.engine = rules;
    expect_replayed_then_limited(options, digest, Result::member_hold_limit, [](uint64_t txn) {
        return command_of(engine::Op::hold, txn, 2, 1, start_us);
    });
}

// A member's pending lots taken under no per-member limit replay after the limit is lowered below
// them (each under the rules of its time, so more than engine::Config's default too); new pending
// earns that need a lot of their own meet the new limit.
TEST(Recovery, PendingLotsTakenBeforeALowerPerMemberLimitReplayAndLaterEarnsMeetIt) {
    constexpr engine::TimeUs second_us = 1'000'000;
    const uint64_t lots = engine::Config{}.pending_lots_per_member_max + 1;
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    engine::Config rules = testing::small_config();
    rules.pending_lots_per_member_max = 0;
    options.engine = rules;
    const auto pending_earn = [](uint64_t txn, engine::TimeUs release_us) {
        engine::Command command = command_of(engine::Op::earn, txn, 2, 1, start_us);
        command.until_us = release_us;
        return command;
    };
    uint64_t digest = 0;
    {
        Recovered first(options);
        first.log->start(nullptr);
        ASSERT_EQ(
            apply_logged(first.ledger, *first.log, engine::Op::enroll, 1, 2, 0, start_us).result,
            Result::ok);
        for (uint64_t i = 0; i < lots; ++i) {
            ASSERT_EQ(apply_logged(first.ledger, *first.log,
                                   pending_earn(10 + i, start_us + (i + 1) * second_us))
                          .result,
                      Result::ok);
        }
        first.log->stop();
        digest = first.ledger.digest();
    }
    rules.pending_lots_per_member_max = 2;
    options.engine = rules;
    expect_replayed_then_limited(options, digest, Result::member_lot_limit, [&](uint64_t txn) {
        return pending_earn(txn, start_us + 5'000 * second_us);
    });
}

TEST(Recovery, ChangingExpiryMonthsOnALoggedDirectoryIsRefusedNamingTheKey) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.engine = testing::small_config();  // expiry_months 1.
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        log->recover(ledger.pointers);
        log->start(nullptr);
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::enroll, 1, 1, 0, start_us).result,
                  Result::ok);
        log->stop();
    }
    options.engine->expiry_months = 12;
    try {
        Log::open(options);
        FAIL() << "a changed expiry_months was accepted";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("engine.expiry_months is 12"), std::string::npos)
            << error.what();
    }
    options.engine->expiry_months = 1;
    EXPECT_NO_THROW(Log::open(options));
}

// Rewrites the rules this build wrote as an older build's: under older_key, entries of
// entry_bytes (meta["rules"]: without points_keep_months, which must then be 0).
void rewrite_rules_as(const std::filesystem::path& dir, const char* older_key, size_t entry_bytes) {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
    ASSERT_EQ(mdb_env_open(env, (dir / "jifen.lmdb").c_str(), MDB_NOSUBDIR, 0644), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi meta;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val key{sizeof(format::meta_rules_key) - 1, const_cast<char*>(format::meta_rules_key)};
    MDB_val value;
    ASSERT_EQ(mdb_get(txn, meta, &key, &value), 0);
    std::vector<format::RulesEntry> entries(value.mv_size / sizeof(format::RulesEntry));
    std::memcpy(entries.data(), value.mv_data, value.mv_size);
    std::vector<std::byte> older;
    for (const format::RulesEntry& entry : entries) {
        if (entry_bytes <= format::rules_v1_entry_bytes) {
            EXPECT_EQ(entry.points_keep_months, 0u);
        }
        const auto* bytes = reinterpret_cast<const std::byte*>(&entry);
        older.insert(older.end(), bytes, bytes + entry_bytes);
    }
    ASSERT_EQ(mdb_del(txn, meta, &key, nullptr), 0);
    MDB_val older_key_val{std::strlen(older_key), const_cast<char*>(older_key)};
    MDB_val older_value{older.size(), older.data()};
    ASSERT_EQ(mdb_put(txn, meta, &older_key_val, &older_value, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

// Holds `points` of member 1 at time_us (txn hold_txn) and releases them a minute later (txn
// hold_txn + 1), both logged.
void hold_and_release(Ledger& ledger, Log& log, uint64_t hold_txn, engine::Points points,
                      engine::TimeUs time_us) {
    ASSERT_EQ(apply_logged(ledger, log, engine::Op::hold, hold_txn, 1, points, time_us).result,
              Result::ok);
    ASSERT_EQ(apply_logged(ledger, log, engine::Op::release, hold_txn + 1, 1, 0,
                           time_us + 60'000'000, engine::TxnId{hold_txn, 77})
                  .result,
              Result::ok);
}

// Writes a one-shard ledger as a build before a rule would have: its settings `older` kept in
// meta["rules"] (kept_rules; rewrite_rules_as then makes them the first version's) or
// none kept. Member 1 is enrolled and earns 100 at start_us, then write_more(ledger, log) runs.
// Sets *digest to the ledger's digest.
template <class WriteMore>
void write_older_ledger(Options options, const engine::Config& older, bool kept_rules,
                        WriteMore write_more, uint64_t* digest) {
    options.engine.reset();
    if (kept_rules) {
        options.engine = older;
    }
    auto log = Log::open(options);
    Ledger ledger(1, older);
    log->recover(ledger.pointers);
    log->start(nullptr);
    ASSERT_EQ(apply_logged(ledger, *log, engine::Op::enroll, 1, 1, 0, start_us).result, Result::ok);
    ASSERT_EQ(apply_logged(ledger, *log, engine::Op::earn, 2, 1, 100, start_us).result, Result::ok);
    write_more(ledger, *log);
    log->stop();
    *digest = ledger.digest();
}

// Records of builds before holds kept months, where what a hold gave back joined the month it
// came back in, replay that way, whether that build kept its rules in meta["rules"] or kept none;
// holds taken after the upgrade keep their months.
TEST(Recovery, HoldsOfBuildsBeforeHoldsKeptMonthsReplayAsTheyGaveBack) {
    const engine::MonthIndex month = engine::month_of(start_us);
    const engine::TimeUs next_month_us = engine::month_start_us(month + 1);
    const engine::TimeUs two_months_us = engine::month_start_us(month + 2);
    const engine::TimeUs three_months_us = engine::month_start_us(month + 3);
    for (const bool kept_rules : {true, false}) {
        SCOPED_TRACE(kept_rules ? "meta[\"rules\"]" : "no rules");
        TempDir dir;
        Options options = testing::options_for(dir.path(), 1);
        engine::Config older = testing::small_config();  // expiry_months 1.
        older.points_keep_months = false;
        uint64_t digest = 0;
        write_older_ledger(
            options, older, kept_rules,
            [&](Ledger& ledger, Log& log) {
                hold_and_release(ledger, log, 3, 100, next_month_us);
                // The 100 came back as next month's, so they outlive this month's expiry.
                EXPECT_EQ(
                    apply_logged(ledger, log, engine::Op::earn, 5, 1, 1, two_months_us).available,
                    101);
            },
            &digest);
        if (kept_rules) {
            rewrite_rules_as(dir.path(), format::meta_rules_v1_key, format::rules_v1_entry_bytes);
        }
        options.engine = testing::small_config();
        for (int start = 0; start < 2; ++start) {
            auto log = Log::open(options);
            Ledger ledger(1, log->engine_config());
            log->recover(ledger.pointers);
            EXPECT_EQ(ledger.digest(), digest);
            EXPECT_TRUE(ledger.audit_ok());
            if (start == 1) {
                break;  // The second start replays both stretches, each under its rules.
            }
            log->start(nullptr);
            // From here on a hold keeps its points' month: next month's 100 held and released
            // two months on are still next month's, and expire with it.
            hold_and_release(ledger, *log, 6, 50, two_months_us + 1);
            EXPECT_EQ(
                apply_logged(ledger, *log, engine::Op::earn, 8, 1, 1, three_months_us).available,
                2);
            log->stop();
            digest = ledger.digest();
        }
    }
}

// Directories of builds before holds_per_member_max (no rules kept, or meta["rules"]): a member
// with more open holds than the limit configured now replays, since those builds had no limit;
// the next hold meets the limit.
TEST(Recovery, HoldsOfBuildsBeforeThePerMemberLimitReplayUnderNoLimit) {
    for (const bool kept_rules : {true, false}) {
        SCOPED_TRACE(kept_rules ? "meta[\"rules\"]" : "no rules");
        TempDir dir;
        Options options = testing::options_for(dir.path(), 1);
        engine::Config older = testing::small_config();
        older.points_keep_months = false;
        older.holds_per_member_max = 0;
        uint64_t digest = 0;
        write_older_ledger(
            options, older, kept_rules,
            [](Ledger& ledger, Log& log) {
                for (uint64_t txn = 10; txn < 14; ++txn) {
                    ASSERT_EQ(
                        apply_logged(ledger, log, engine::Op::hold, txn, 1, 1, start_us).result,
                        Result::ok);
                }
            },
            &digest);
        if (kept_rules) {
            rewrite_rules_as(dir.path(), format::meta_rules_v1_key, format::rules_v1_entry_bytes);
        }
        engine::Config now = testing::small_config();
        now.holds_per_member_max = 2;
        options.engine = now;
        expect_replayed_then_limited(options, digest, Result::member_hold_limit, [](uint64_t txn) {
            return command_of(engine::Op::hold, txn, 1, 1, start_us);
        });
    }
}

// Directories of builds before pending_lots_per_member_max (meta["rules2"], meta["rules"], or no
// rules kept): a member with more pending lots than the limit configured now replays, since those
// builds had no limit; the next pending earn that needs a lot of its own meets the limit.
TEST(Recovery, PendingLotsOfBuildsBeforeThePerMemberLimitReplayUnderNoLimit) {
    constexpr engine::TimeUs day_us = 86'400'000'000;
    const auto pending_earn = [](uint64_t txn, engine::TimeUs release_us) {
        engine::Command command = command_of(engine::Op::earn, txn, 1, 1, start_us);
        command.until_us = release_us;
        return command;
    };
    for (const char* older_key : {format::meta_rules_v2_key, format::meta_rules_v1_key, ""}) {
        SCOPED_TRACE(*older_key != '\0' ? older_key : "no rules");
        TempDir dir;
        Options options = testing::options_for(dir.path(), 1);
        engine::Config older = testing::small_config();
        older.points_keep_months = false;
        older.pending_lots_per_member_max = 0;
        uint64_t digest = 0;
        write_older_ledger(
            options, older, *older_key != '\0',
            [&](Ledger& ledger, Log& log) {
                for (uint64_t i = 0; i < 4; ++i) {
                    ASSERT_EQ(
                        apply_logged(ledger, log, pending_earn(10 + i, start_us + (i + 1) * day_us))
                            .result,
                        Result::ok);
                }
            },
            &digest);
        if (*older_key != '\0') {
            rewrite_rules_as(dir.path(), older_key,
                             older_key == format::meta_rules_v2_key ? format::rules_v2_entry_bytes
                                                                    : format::rules_v1_entry_bytes);
        }
        engine::Config now = testing::small_config();
        now.pending_lots_per_member_max = 2;
        options.engine = now;
        expect_replayed_then_limited(options, digest, Result::member_lot_limit, [&](uint64_t txn) {
            return pending_earn(txn, start_us + 10 * day_us);
        });
    }
}

// The rules a build before pending_lots_per_member_max kept (meta["rules2"]) still govern the
// records applied under them: a debt a reverse made while reverse_allows_negative was on replays
// with it turned off since, at the first start of this build (which rewrites them as
// meta["rules3"]) and the next. Read as no rules, the configured ones would be assumed for those
// records, and their replay would disagree.
TEST(Recovery, RulesKeptInMetaRules2StillGovernTheirRecordsAfterTheUpgrade) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    engine::Config older = testing::small_config();
    older.reverse_allows_negative = true;
    older.pending_lots_per_member_max = 0;
    uint64_t digest = 0;
    write_older_ledger(
        options, older, true,
        [](Ledger& ledger, Log& log) {
            ASSERT_EQ(apply_logged(ledger, log, engine::Op::redeem, 3, 1, 80, start_us).result,
                      Result::ok);
            const engine::Outcome debt = apply_logged(ledger, log, engine::Op::reverse, 4, 1, 0,
                                                      start_us, engine::TxnId{2, 77});
            ASSERT_EQ(debt.result, Result::ok);
            ASSERT_EQ(debt.available, -80);
        },
        &digest);
    rewrite_rules_as(dir.path(), format::meta_rules_v2_key, format::rules_v2_entry_bytes);
    options.engine = testing::small_config();  // reverse_allows_negative off.
    for (int start = 0; start < 2; ++start) {
        std::unique_ptr<Recovered> again;
        ASSERT_NO_THROW(again = std::make_unique<Recovered>(options)) << "start " << start;
        EXPECT_EQ(again->ledger.digest(), digest);
        EXPECT_TRUE(again->ledger.audit_ok());
    }
}

// A directory written by a build that kept no rules: a debt made under reverse_allows_negative.
void write_legacy_ledger_with_a_debt(const Options& legacy, const engine::Config& rules) {
    ASSERT_FALSE(legacy.engine.has_value());
    auto log = Log::open(legacy);
    Ledger ledger(1, rules);
    log->recover(ledger.pointers);
    log->start(nullptr);
    apply_debt(ledger, *log);
    log->stop();
}

// A start that fails leaves the directory's rules as they were: an older build's directory
// opened once with the wrong rules (replay refuses) starts again once they are put back.
TEST(Recovery, AFailedStartRecordsNoRulesSoPuttingTheSettingBackWorks) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    engine::Config rules = testing::small_config();
    rules.reverse_allows_negative = true;
    write_legacy_ledger_with_a_debt(options, rules);
    engine::Config wrong = rules;
    wrong.reverse_allows_negative = false;
    options.engine = wrong;
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        EXPECT_THROW(log->recover(ledger.pointers), StartupError);
    }
    options.engine = rules;
    auto log = Log::open(options);
    Ledger ledger(1, log->engine_config());
    EXPECT_NO_THROW(log->recover(ledger.pointers));
    EXPECT_TRUE(ledger.audit_ok());
}

// The settings taken for an older build's records can be corrected as long as nothing was
// logged under them; once something was, expiry_months is refused, saying it was taken.
TEST(Recovery, SettingsTakenForAnOlderBuildsRecordsCanBeCorrectedUntilSomethingIsLogged) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    engine::Config rules = testing::small_config();
    rules.expiry_months = 12;
    rules.reverse_allows_negative = true;
    write_legacy_ledger_with_a_debt(options, rules);
    engine::Config wrong = rules;
    wrong.expiry_months = 0;  // Nothing expired yet, so the records replay the same.
    options.engine = wrong;
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        ASSERT_NO_THROW(log->recover(ledger.pointers));
    }
    options.engine = rules;  // Corrected before anything was logged: accepted.
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        ASSERT_NO_THROW(log->recover(ledger.pointers));
        log->start(nullptr);
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::earn, 20, 1, 5, start_us).result,
                  Result::ok);
        log->stop();
    }
    options.engine = wrong;  // Now something was logged under 12.
    try {
        Log::open(options);
        FAIL() << "a changed expiry_months was accepted";
    } catch (const StartupError& error) {
        EXPECT_NE(std::string(error.what()).find("taken for the records of an older build"),
                  std::string::npos)
            << error.what();
    }
}

// A table size no logged record ran with (a start that failed, say for memory) is not a floor.
TEST(Recovery, ATableSizeNothingRanWithCanBeLoweredAgain) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    const engine::Config normal = testing::small_config();
    options.engine = normal;
    {
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        log->recover(ledger.pointers);
        log->start(nullptr);
        ASSERT_EQ(apply_logged(ledger, *log, engine::Op::enroll, 1, 1, 0, start_us).result,
                  Result::ok);
        log->stop();
    }
    engine::Config typo = normal;
    typo.members_per_shard_max = 1u << 30;
    options.engine = typo;
    {
        auto log = Log::open(options);  // The server would fail to build the tables here.
        EXPECT_EQ(log->engine_config().members_per_shard_max, typo.members_per_shard_max);
    }
    {
        // Started and recovered, then stopped with nothing logged under a bigger size: not a
        // floor either.
        typo.members_per_shard_max = 1u << 14;
        options.engine = typo;
        auto log = Log::open(options);
        Ledger ledger(1, log->engine_config());
        log->recover(ledger.pointers);
    }
    options.engine = normal;
    auto log = Log::open(options);
    EXPECT_EQ(log->engine_config().members_per_shard_max, normal.members_per_shard_max);
}

TEST(Recovery, RestartAfterCheckpointsRecoversTheExactStateReplayingOnlyTheLogAfterThem) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 2);
    options.checkpoint_every_records = 1'000;
    expect_restart_from_checkpoints(options, 20'000);
}

// A checkpoint larger than checkpoint_chunks_per_commit chunks is written over several commits
// into the other slot while records keep coming; a restart finds exactly one whole checkpoint.
TEST(Recovery, CheckpointsWrittenInPiecesRecoverTheExactState) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.checkpoint_every_records = 9'000;  // Checkpoints of 1 to 4 MiB: 2 to 4 pieces.
    options.checkpoint_chunks_per_commit = 1;
    expect_restart_from_checkpoints(options, 30'000);
}

// What a crash in the middle of a checkpoint written in pieces leaves: chunks in the slot that
// is not the shard's checkpoint, and no header there. The next start ignores them, and the next
// checkpoint, written into that slot, replaces them.
TEST(Recovery, AHalfWrittenCheckpointSlotIsIgnoredAndTheNextCheckpointReplacesIt) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.checkpoint_every_records = 2'000;
    const RunResult first = run_ledger(options, seed, 5'000);
    {
        // The first checkpoint went into slot 1, the second into slot 0, ...: put a stray chunk
        // into both slots' far end, where no checkpoint of this size reaches.
        MDB_env* env = nullptr;
        ASSERT_EQ(mdb_env_create(&env), 0);
        ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
        ASSERT_EQ(mdb_env_set_mapsize(env, options.map_bytes_max), 0);
        const std::string path = (dir.path() / format::env_file_name).string();
        ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0644), 0);
        MDB_txn* txn = nullptr;
        ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
        MDB_dbi dbi;
        ASSERT_EQ(mdb_dbi_open(txn, format::checkpoint_table, 0, &dbi), 0);
        const std::vector<std::byte> garbage(4'096, std::byte{0x5a});
        for (uint32_t slot = 0; slot < 2; ++slot) {
            format::CheckpointKey stray(0, format::checkpoint_chunk(slot, 1'000));
            MDB_val key{sizeof(stray.bytes), stray.bytes};
            MDB_val value{garbage.size(), const_cast<std::byte*>(garbage.data())};
            ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
        }
        ASSERT_EQ(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
    }
    Ledger ledger(1);
    auto log = Log::open(options);
    const RecoveryStats stats = log->recover(ledger.pointers);
    EXPECT_GT(stats.checkpoint_seq, 0u);
    EXPECT_EQ(ledger.digest(), first.digest);
    // More records and checkpoints: each slot is written again, its stray chunk deleted first.
    log->start(nullptr);
    Driver driver(ledger, seed + 1, 2, start_us + 1'000'000'000'000);
    for (int i = 0; i < 6'000; ++i) {
        const Driver::Applied applied = driver.step();
        if (applied.logged) {
            testing::append_applied(*log, applied);
        }
        if (log->checkpoint_due(0)) {
            std::vector<std::byte> state;
            ledger.shards[0]->save(&state);
            log->checkpoint(0, log->appended_seq(0), std::move(state));
        }
    }
    log->stop();
    log.reset();  // Closes the directory for the next open.
    expect_recovers_to(options, 1, ledger.digest());
}

// Applies `steps` random commands, logging those that changed something.
void drive(Driver& driver, Log& log, int steps) {
    for (int i = 0; i < steps; ++i) {
        const Driver::Applied applied = driver.step();
        if (applied.logged) {
            testing::append_applied(log, applied);
        }
    }
}

// A checkpoint handed over while the one before it is still being written in pieces waits, and
// is written once that one is finished (also when the log stops right after).
TEST(Recovery, ACheckpointHandedOverDuringAnotherOnesPiecesIsWrittenAfterIt) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.checkpoint_every_records = 1'000'000;  // Only the two handed over below.
    options.checkpoint_chunks_per_commit = 1;
    Ledger ledger(1);
    auto log = Log::open(options);
    log->recover(ledger.pointers);
    testing::DurableWaiter waiter;
    log->start(waiter.callback());
    Driver driver(ledger, seed, 1, start_us);
    drive(driver, *log, 150'000);  // A checkpoint of about 12 MiB: written over a dozen commits.
    std::vector<std::byte> first;
    ledger.shards[0]->save(&first);
    log->checkpoint(0, log->appended_seq(0), std::move(first));
    drive(driver, *log, 10);
    std::vector<std::byte> second;  // Taken now, handed over the moment the first is under way.
    ledger.shards[0]->save(&second);
    const uint64_t second_seq = log->appended_seq(0);
    waiter.wait_for(0, second_seq);  // The first checkpoint's first piece is committed by now.
    log->checkpoint(0, second_seq, std::move(second));
    log->stop();
    log.reset();
    Ledger again(1);
    auto reopened = Log::open(options);
    const RecoveryStats stats = reopened->recover(again.pointers);
    EXPECT_EQ(stats.checkpoint_seq, second_seq);  // One shard: log and shard sequences agree.
    EXPECT_EQ(stats.records_replayed, 0u);
    EXPECT_EQ(again.digest(), ledger.digest());
}

// A checkpoint whose parts were written but which was never finished (the server stopped while
// building it) is not a checkpoint: recovery loads the one before it and replays the log after.
// While one is on its way, the shard is not asked for another.
TEST(Recovery, ACheckpointStoppedHalfwayLeavesTheOneBeforeInForce) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.checkpoint_every_records = 1;  // Due after every record, unless one is on its way.
    Ledger ledger(1);
    auto log = Log::open(options);
    log->recover(ledger.pointers);
    Driver driver(ledger, seed, 1, start_us);
    drive(driver, *log, 100);
    std::vector<std::byte> first;
    ledger.shards[0]->save(&first);
    const uint64_t first_seq = log->appended_seq(0);
    log->checkpoint(0, first_seq, std::move(first));
    drive(driver, *log, 100);
    EXPECT_FALSE(log->checkpoint_due(0));  // Not started: the first is not on disk.
    testing::DurableWaiter waiter;
    log->start(waiter.callback());
    waiter.wait_for(0, log->appended_seq(0));
    for (int i = 0; i < 10'000 && log->checkpoint_bytes_waiting(0) > 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(log->checkpoint_bytes_waiting(0), 0u);
    drive(driver, *log, 150'000);  // Enough transactions for whole pieces.
    engine::Shard& shard = *ledger.shards[0];
    ASSERT_TRUE(log->checkpoint_due(0));
    shard.begin_checkpoint();
    size_t handed = 0;
    for (bool more = true; more;) {
        more = shard.continue_checkpoint(10'000) > 0;
        engine::CheckpointBytes part = shard.take_checkpoint_part();
        handed += part.size();
        log->checkpoint_part(0, std::move(part));
    }
    ASSERT_GE(handed, 2 * checkpoint_chunk_bytes);
    log->stop();  // Writes the parts; the checkpoint has no end, so no header.
    EXPECT_EQ(log->checkpoint_bytes_waiting(0), 0u);
    log.reset();
    Ledger again(1);
    auto reopened = Log::open(options);
    const RecoveryStats stats = reopened->recover(again.pointers);
    EXPECT_EQ(stats.checkpoint_seq, first_seq);
    EXPECT_EQ(again.digest(), ledger.digest());
}

TEST(Recovery, RepeatedTransactionsAfterRestartAreReplayedNotReapplied) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    Options options = testing::options_for(dir.path(), 2);
    options.checkpoint_every_records = 700;
    const RunResult before = run_ledger(options, seed, 5'000);

    Ledger ledger(2);
    auto log = Log::open(options);
    log->recover(ledger.pointers);
    for (const engine::Command& command : before.applied) {
        const uint32_t shard = engine::Shard::shard_of(command.member_id, 2);
        const engine::Outcome outcome = ledger.shards[shard]->apply(command);
        ASSERT_EQ(outcome.result, Result::ok) << to_string(outcome.result);
        ASSERT_TRUE(outcome.replayed);
    }
    EXPECT_EQ(ledger.digest(), before.digest);
}

TEST(Recovery, RecoveryContinuesAcrossSeveralRestarts) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    TempDir dir;
    Options options = testing::options_for(dir.path(), 2);
    options.checkpoint_every_records = 1'500;
    uint64_t digest = 0;
    for (uint64_t run = 1; run <= 4; ++run) {
        Ledger ledger(2);
        auto log = Log::open(options);
        log->recover(ledger.pointers);
        if (run > 1) {
            ASSERT_EQ(ledger.digest(), digest) << "run " << run;
        }
        log->start(nullptr);
        Driver driver(ledger, seed + run, run, start_us + run * 1'000'000'000'000);
        for (int i = 0; i < 3'000; ++i) {
            const Driver::Applied applied = driver.step();
            if (applied.logged) {
                testing::append_applied(*log, applied);
            }
            if (log->checkpoint_due(applied.shard)) {
                std::vector<std::byte> state;
                ledger.shards[applied.shard]->save(&state);
                log->checkpoint(applied.shard, log->appended_seq(applied.shard), std::move(state));
            }
        }
        log->stop();
        digest = ledger.digest();
    }
    expect_recovers_to(options, 2, digest);
}

// Applies a command that must succeed to one shard of a one-shard log, and logs it.
void apply_logged(engine::Shard& shard, Log& log, const engine::Command& command) {
    const engine::Outcome outcome = shard.apply(command);
    ASSERT_EQ(outcome.result, Result::ok);
    engine::Record record;
    record.command = command;
    record.applied_points = outcome.points;
    record.available_after = outcome.available;
    testing::append_one(log, 0, record);
}

// Members 1..count enrolled, each earning its own number of points: 2 transactions each.
void enroll_and_earn(engine::Shard& shard, Log& log, uint64_t count) {
    for (uint64_t member = 1; member <= count; ++member) {
        for (const engine::Op op : {engine::Op::enroll, engine::Op::earn}) {
            engine::Command command;
            command.op = op;
            command.txn_id = engine::TxnId{member, static_cast<uint64_t>(op)};
            command.member_id = member;
            command.points = op == engine::Op::earn ? static_cast<engine::Points>(member) : 0;
            command.time_us = start_us + member;
            apply_logged(shard, log, command);
        }
    }
}

// The reversal of that member's earn.
engine::Command reverse_of_earn(uint64_t member) {
    engine::Command command;
    command.op = engine::Op::reverse;
    command.txn_id = engine::TxnId{member, 100};
    command.member_id = member;
    command.ref_txn_id = engine::TxnId{member, static_cast<uint64_t>(engine::Op::earn)};
    command.time_us = start_us + 50'000;
    return command;
}

// A fresh shard recovered from the directory: all from its checkpoint, and to `digest`.
void expect_recovers_from_the_checkpoint_alone(const Options& options, const engine::Config& config,
                                               uint64_t digest) {
    engine::TxnIndex txn_index(1u << 18);
    engine::Shard shard(0, 1, config, &txn_index);
    engine::Shard* shards[] = {&shard};
    auto log = Log::open(options);
    const RecoveryStats stats = log->recover(shards);
    EXPECT_EQ(stats.records_replayed, 0u);
    EXPECT_GT(stats.checkpoint_seq, 0u);
    EXPECT_EQ(shard.digest(), digest);
}

// As the server hands it: its whole pieces while it is built, an entry changing after its piece
// went, then the rest.
TEST(Recovery, CheckpointHandedInPartsIsReassembledExactly) {
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 1);
    engine::Config config = testing::small_config();
    config.members_per_shard_max = 1u << 16;
    uint64_t digest = 0;
    {
        engine::TxnIndex txn_index(1u << 18);
        engine::Shard shard(0, 1, config, &txn_index);
        auto log = Log::open(options);
        log->start(nullptr);
        enroll_and_earn(shard, *log, 40'000);
        shard.begin_checkpoint();
        size_t handed_early = 0;
        while (shard.continue_checkpoint(10'000) > 0) {
            engine::CheckpointBytes part = shard.take_checkpoint_part();
            handed_early += part.size();
            log->checkpoint_part(0, std::move(part));
        }
        ASSERT_GE(handed_early, 2 * checkpoint_chunk_bytes);
        // Member 1's earn went out in the first part; its reversal reaches the checkpoint as a
        // patch.
        apply_logged(shard, *log, reverse_of_earn(1));
        engine::CheckpointBytes state;
        shard.finish_checkpoint(&state);
        log->checkpoint(0, log->appended_seq(0), std::move(state));
        log->stop();
        digest = shard.digest();
    }
    expect_recovers_from_the_checkpoint_alone(options, config, digest);
}

// A checkpoint's parts written while the map grows under them (MDB_MAP_FULL: the same batch
// again in a new transaction, after the attempt had moved the writer's cursor along the parts)
// and while a commit fails (ENOSPC, retried a second later): no chunk is skipped or written
// twice, and the header's size, chunk count and CRC are those of what was committed.
TEST(Recovery, CheckpointPartsWrittenAcrossMapGrowthAndAFailedCommitAreReassembledExactly) {
    TempDir dir;
    Options options = testing::options_for(dir.path(), 1);
    options.map_bytes_initial = 1 << 20;
    options.map_grow_percent = 99;  // Grown mostly by MDB_MAP_FULL, in the middle of a commit.
    options.checkpoint_chunks_per_commit = 3;
    std::atomic<bool> armed{false};
    std::atomic<uint64_t> attempts{0};
    options.commit_fault = [&]() -> int {
        if (!armed.load()) {
            return 0;
        }
        // The second commit attempt once the parts come: ENOSPC, before anything is written.
        return attempts.fetch_add(1) + 1 == 2 ? ENOSPC : 0;
    };
    engine::Config config = testing::small_config();
    config.members_per_shard_max = 1u << 16;
    uint64_t digest = 0;
    uint64_t map_bytes_before = 0;
    uint64_t map_bytes_after = 0;
    {
        engine::TxnIndex txn_index(1u << 18);
        engine::Shard shard(0, 1, config, &txn_index);
        auto log = Log::open(options);
        testing::DurableWaiter waiter;
        log->start(waiter.callback());
        enroll_and_earn(shard, *log, 40'000);
        waiter.wait_for(0, log->appended_seq(0));
        map_bytes_before = log->stats().map_bytes;
        const uint64_t commits_before = log->stats().commits;
        armed.store(true);
        shard.begin_checkpoint();
        size_t handed_early = 0;
        for (uint32_t step = 0; shard.continue_checkpoint(5'000) > 0; ++step) {
            engine::CheckpointBytes part = shard.take_checkpoint_part();
            handed_early += part.size();
            log->checkpoint_part(0, std::move(part));
            // Records keep coming between the parts, as on a server.
            engine::Command command;
            command.op = engine::Op::earn;
            command.txn_id = engine::TxnId{1, 1'000 + step};
            command.member_id = 1;
            command.points = 1;
            command.time_us = start_us + 45'000 + step;
            apply_logged(shard, *log, command);
        }
        ASSERT_GE(handed_early, 4 * checkpoint_chunk_bytes);
        // Member 2's earn went out in the first part; its reversal reaches it as a patch.
        apply_logged(shard, *log, reverse_of_earn(2));
        engine::CheckpointBytes state;
        shard.finish_checkpoint(&state);
        log->checkpoint(0, log->appended_seq(0), std::move(state));
        // A stop gives up on a full disk: wait for the writer to take the commit up again.
        waiter.wait_for(0, log->appended_seq(0));
        for (int i = 0; i < 10'000 && log->checkpoint_bytes_waiting(0) > 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        log->stop();
        EXPECT_FALSE(log->failed());
        EXPECT_EQ(log->checkpoint_bytes_waiting(0), 0u);
        const uint64_t commits = log->stats().commits - commits_before;
        map_bytes_after = log->stats().map_bytes;
        // Attempts beyond the commits and the one ENOSPC: commits retried after MDB_MAP_FULL.
        EXPECT_GT(attempts.load(), commits + 1) << "no commit was retried after MDB_MAP_FULL";
        digest = shard.digest();
    }
    EXPECT_GT(map_bytes_after, map_bytes_before);
    options.commit_fault = nullptr;
    expect_recovers_from_the_checkpoint_alone(options, config, digest);
}

TEST(Recovery, LoggedOutcomeThatReplayContradictsIsAStartupError) {
    TempDir dir;
    const Options options = testing::options_for(dir.path(), 1);
    {
        auto log = Log::open(options);
        log->start(nullptr);
        engine::Record enroll;
        enroll.command.op = engine::Op::enroll;
        enroll.command.txn_id = engine::TxnId{1, 1};
        enroll.command.member_id = 42;
        enroll.command.time_us = start_us;
        testing::append_one(*log, 0, enroll);
        engine::Record earn;
        earn.command.op = engine::Op::earn;
        earn.command.txn_id = engine::TxnId{2, 1};
        earn.command.member_id = 42;
        earn.command.points = 100;
        earn.command.time_us = start_us + 1;
        earn.applied_points = 100;
        earn.available_after = 99;  // The engine will say 100.
        testing::append_one(*log, 0, earn);
        engine::Record later = earn;  // A record the replay agrees with, in the same batch.
        later.command.txn_id = engine::TxnId{3, 1};
        later.command.time_us = start_us + 2;
        later.available_after = 200;
        testing::append_one(*log, 0, later);
        log->stop();
    }
    Ledger ledger(1);
    auto log = Log::open(options);
    try {
        log->recover(ledger.pointers);
        ADD_FAILURE() << "recover() accepted a log that replay contradicts";
    } catch (const StartupError& error) {
        // Names the record that disagrees, not its batch.
        EXPECT_NE(std::string(error.what()).find("at log seq 2 (shard 0 seq 2"), std::string::npos)
            << error.what();
    }
}

TEST(Recovery, WrongNumberOfShardsIsAStartupError) {
    TempDir dir;
    auto log = Log::open(testing::options_for(dir.path(), 2));
    Ledger ledger(1);
    EXPECT_THROW(log->recover(ledger.pointers), StartupError);
}

}  // namespace
}  // namespace jifen::wal
