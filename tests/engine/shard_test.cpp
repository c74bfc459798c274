// One test per behaviour of engine::Shard: each operation's ok path, each refusal changing
// nothing, the clock-driven rules (expiry, pending, hold timeout), idempotency and checkpoints.

#include "engine/shard.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "engine/calendar.hpp"
#include "engine/memory.hpp"
#include "engine/txn_index.hpp"
#include "tests/engine/commands.hpp"

namespace jifen::engine {
namespace {

using namespace jifen::engine::test;

Config small_config() {
    Config config;
    config.expiry_months = 12;
    config.members_per_shard_max = 1024;
    config.holds_per_shard_max = 256;
    config.txns_per_shard_max = 4096;
    config.lots_per_shard_max = 4096;
    return config;
}

// Points earned in January 2026 expire as February 2027 starts (expiry_months = 12).
const TimeUs january_expiry_us = month_start_us(month_of(t0_us) + 13);

class ShardTest : public ::testing::Test {
protected:
    explicit ShardTest(Config config = small_config()) : shard_(0, 1, config, nullptr) {}

    Outcome apply(const Command& command) { return shard_.apply(command); }

    void enroll_with(MemberId member_id, Points points) {
        ASSERT_EQ(apply(enroll(next_txn_++, member_id)).result, Result::ok);
        if (points > 0) {
            ASSERT_EQ(apply(earn(next_txn_++, member_id, points)).result, Result::ok);
        }
    }

    // A shard built with config from a checkpoint of shard_, in the same state.
    std::unique_ptr<Shard> saved_and_loaded(const Config& config) {
        std::vector<std::byte> bytes;
        shard_.save(&bytes);
        auto loaded = std::make_unique<Shard>(0, 1, config, nullptr);
        EXPECT_TRUE(loaded->load(bytes));
        EXPECT_EQ(loaded->digest(), shard_.digest());
        return loaded;
    }

    MemberView view(MemberId member_id) {
        MemberView member;
        EXPECT_TRUE(shard_.find(member_id, &member));
        return member;
    }

    // Member 42 with January 2026's 100 and February's 50, and hold 11 of 120 of them taken a
    // minute before January's expire: all of January's and 20 of February's, held across it.
    void hold_across_january_expiry() {
        enroll_with(42, 100);
        ASSERT_EQ(apply(earn(10, 42, 50, month_start_us(month_of(t0_us) + 1))).result, Result::ok);
        ASSERT_EQ(
            apply(hold(11, 42, 120, january_expiry_us - minute_us, january_expiry_us + day_us))
                .result,
            Result::ok);
    }

    // A refusal must leave the whole state as it was.
    void expect_refused(const Command& command, Result expected) {
        const uint64_t before = shard_.digest();
        const Outcome outcome = apply(command);
        EXPECT_EQ(outcome.result, expected) << to_string(outcome.result);
        EXPECT_FALSE(outcome.replayed);
        EXPECT_EQ(shard_.digest(), before);
        EXPECT_TRUE(shard_.audit().ok);
    }

    void expect_sound() {
        const AuditReport report = shard_.audit();
        EXPECT_TRUE(report.ok);
        EXPECT_TRUE(report.totals.conserves());
    }

    Shard shard_;
    uint64_t next_txn_ = 1'000'000;
};

TEST_F(ShardTest, EnrollCreatesAnEmptyActiveMember) {
    const Outcome outcome = apply(enroll(1, 42));
    EXPECT_EQ(outcome.result, Result::ok);
    const MemberView member = view(42);
    EXPECT_EQ(member.available, 0);
    EXPECT_EQ(member.status, MemberStatus::active);
    EXPECT_EQ(shard_.totals().members, 1u);
    expect_sound();
}

TEST_F(ShardTest, EnrollAgainWithSameAttributesIsReplayedAndChangesNothing) {
    apply(enroll(1, 42));
    const uint64_t before = shard_.digest();
    const Outcome outcome = apply(enroll(2, 42));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_TRUE(outcome.replayed);
    EXPECT_EQ(shard_.digest(), before);
}

TEST_F(ShardTest, EnrollAgainWithDifferentAttributesIsMemberExists) {
    apply(enroll(1, 42));
    Command again = enroll(2, 42);
    again.tier = 3;
    expect_refused(again, Result::member_exists);
}

TEST_F(ShardTest, EnrollBeyondMemberLimitIsRefused) {
    Config config = small_config();
    config.members_per_shard_max = 2;
    Shard shard(0, 1, config, nullptr);
    EXPECT_EQ(shard.apply(enroll(1, 1)).result, Result::ok);
    EXPECT_EQ(shard.apply(enroll(2, 2)).result, Result::ok);
    EXPECT_EQ(shard.apply(enroll(3, 3)).result, Result::member_limit);
}

TEST_F(ShardTest, EnrollWithBadBirthdayIsFieldOutOfRange) {
    Command command = enroll(1, 42);
    command.birthday = 20250230;
    expect_refused(command, Result::field_out_of_range);
    command.birthday = 19810229;  // Not a leap year.
    expect_refused(command, Result::field_out_of_range);
    command.birthday = 19840229;
    EXPECT_EQ(apply(command).result, Result::ok);
}

TEST_F(ShardTest, EarnAddsToAvailableAndLifetimeAndGrowth) {
    enroll_with(42, 0);
    Command command = earn(10, 42, 500);
    command.order_ref = 77;
    const Outcome outcome = apply(command);
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.points, 500);
    EXPECT_EQ(outcome.available, 500);
    const MemberView member = view(42);
    EXPECT_EQ(member.available, 500);
    EXPECT_EQ(member.lifetime_earned, 500);
    EXPECT_EQ(member.growth, 500);
    EXPECT_EQ(member.last_purchase_us, t0_us);
    expect_sound();
}

TEST_F(ShardTest, EarnForUnknownMemberIsMemberNotFound) {
    expect_refused(earn(10, 99, 5), Result::member_not_found);
}

TEST_F(ShardTest, EarnOfZeroOrTooManyPointsIsRefused) {
    enroll_with(42, 0);
    expect_refused(earn(10, 42, 0), Result::points_not_positive);
    expect_refused(earn(11, 42, -3), Result::points_not_positive);
    expect_refused(earn(12, 42, points_per_op_max + 1), Result::points_too_large);
}

TEST_F(ShardTest, EarnWithoutTxnIdOrMemberIsRefused) {
    enroll_with(42, 0);
    Command command = earn(10, 42, 5);
    command.txn_id = TxnId{};
    expect_refused(command, Result::txn_id_zero);
    expect_refused(earn(10, 0, 5), Result::member_id_zero);
}

TEST_F(ShardTest, EarnWithUnknownFlagIsReservedNotZero) {
    enroll_with(42, 0);
    Command command = earn(10, 42, 5);
    command.flags = 1;
    expect_refused(command, Result::reserved_not_zero);
}

TEST_F(ShardTest, EarnPastBalanceCapIsBalanceLimit) {
    enroll_with(42, 0);
    for (uint64_t i = 0; i < 1000; ++i) {
        ASSERT_EQ(apply(earn(100 + i, 42, points_per_op_max)).result, Result::ok);
    }
    expect_refused(earn(5000, 42, 1), Result::balance_limit);
}

TEST_F(ShardTest, FrozenMemberCannotEarnRedeemHoldTransferOrReceive) {
    enroll_with(42, 100);
    enroll_with(43, 0);
    ASSERT_EQ(apply(update(5, 42, MemberStatus::frozen, 0, 0)).result, Result::ok);
    expect_refused(earn(10, 42, 5), Result::member_frozen);
    expect_refused(redeem(11, 42, 5), Result::member_frozen);
    expect_refused(hold(12, 42, 5), Result::member_frozen);
    expect_refused(transfer(13, 42, 43, 5), Result::member_frozen);
    expect_refused(transfer(14, 43, 42, 1), Result::member_frozen);  // Nor receive.
}

TEST_F(ShardTest, UnfreezeLetsTheMemberEarnAgain) {
    enroll_with(42, 0);
    apply(update(5, 42, MemberStatus::frozen, 2, 19900101));
    apply(update(6, 42, MemberStatus::active, 2, 19900101));
    EXPECT_EQ(apply(earn(10, 42, 5)).result, Result::ok);
    const MemberView member = view(42);
    EXPECT_EQ(member.tier, 2);
    EXPECT_EQ(member.birthday, 19900101u);
}

TEST_F(ShardTest, RedeemTakesFromAvailable) {
    enroll_with(42, 100);
    const Outcome outcome = apply(redeem(10, 42, 30));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.available, 70);
    EXPECT_EQ(view(42).lifetime_redeemed, 30);
    expect_sound();
}

TEST_F(ShardTest, RedeemAboveBalanceIsRefusedAndChangesNothing) {
    enroll_with(42, 100);
    expect_refused(redeem(10, 42, 101), Result::insufficient_points);
    EXPECT_EQ(view(42).available, 100);
}

TEST_F(ShardTest, RepeatedTxnReturnsTheOriginalOutcomeAndChangesNothing) {
    enroll_with(42, 100);
    const Outcome first = apply(redeem(10, 42, 30));
    apply(earn(11, 42, 5));
    const uint64_t before = shard_.digest();
    const Outcome again = apply(redeem(10, 42, 30));
    EXPECT_EQ(again.result, Result::ok);
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(again.available, first.available);
    EXPECT_EQ(again.points, 30);
    EXPECT_EQ(shard_.digest(), before);
}

TEST_F(ShardTest, ReusedTxnIdWithDifferentContentIsIdConflict) {
    enroll_with(42, 100);
    apply(redeem(10, 42, 30));
    expect_refused(redeem(10, 42, 31), Result::id_conflict);
    expect_refused(earn(10, 42, 30), Result::id_conflict);
}

TEST_F(ShardTest, RepeatIgnoresTheStampedTimes) {
    enroll_with(42, 100);
    apply(redeem(10, 42, 30));
    const Outcome again = apply(redeem(10, 42, 30, t0_us + day_us));
    EXPECT_TRUE(again.replayed);
}

TEST_F(ShardTest, RefusedTxnIdCanBeUsedLater) {
    enroll_with(42, 10);
    expect_refused(redeem(10, 42, 30), Result::insufficient_points);
    apply(earn(11, 42, 30));
    EXPECT_EQ(apply(redeem(10, 42, 30)).result, Result::ok);
}

TEST_F(ShardTest, RedeemConsumesOldestLotFirst) {
    // Expiry 12 months: points of 2026-01 expire at 2027-02-01; those of 2026-03 at 2027-04-01.
    enroll_with(42, 0);
    const TimeUs march = month_start_us(month_of(t0_us) + 2);
    apply(earn(10, 42, 100, t0_us));
    apply(earn(11, 42, 100, march));
    apply(redeem(12, 42, 150, march));
    // 50 left, all from March: nothing expires in February 2027.
    const Outcome later = apply(earn(13, 42, 1, month_start_us(month_of(t0_us) + 13) + 1));
    EXPECT_EQ(later.available, 51);
    EXPECT_EQ(view(42).lifetime_expired, 0);
}

TEST_F(ShardTest, PointsExpireOldestFirstWhenTimeAdvances) {
    enroll_with(42, 0);
    const MonthIndex january = month_of(t0_us);
    apply(earn(10, 42, 100, t0_us));
    apply(earn(11, 42, 40, month_start_us(january + 1)));
    // The January lot lives through January 2027 and is gone on 2027-02-01.
    EXPECT_EQ(apply(earn(12, 42, 1, month_start_us(january + 13) - 1)).available, 141);
    const Outcome after = apply(earn(13, 42, 1, month_start_us(january + 13)));
    EXPECT_EQ(after.available, 42);
    EXPECT_EQ(view(42).lifetime_expired, 100);
    const Outcome last = apply(earn(14, 42, 1, month_start_us(january + 14)));
    EXPECT_EQ(last.available, 3);  // The February lot too; March's two single points remain.
    EXPECT_EQ(view(42).lifetime_expired, 140);
    expect_sound();
}

TEST_F(ShardTest, ExpiryOffKeepsPointsForever) {
    Config config = small_config();
    config.expiry_months = 0;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    shard.apply(earn(2, 42, 100, t0_us));
    EXPECT_EQ(shard.apply(earn(3, 42, 1, t0_us + 3650 * day_us)).available, 101);
}

TEST_F(ShardTest, TickExpiresDueLotsWithoutTouchingTheMember) {
    enroll_with(42, 100);
    const TimeUs later = month_start_us(month_of(t0_us) + 13);
    const Outcome outcome = apply(tick(10, later));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.points, 1);
    EXPECT_EQ(view(42).available, 0);
    EXPECT_EQ(shard_.totals().expired, 100);
    expect_sound();
}

TEST_F(ShardTest, TickBudgetBoundsTheMembersSettled) {
    for (MemberId member = 1; member <= 5; ++member) {
        enroll_with(member, 10);
    }
    const TimeUs later = month_start_us(month_of(t0_us) + 13);
    EXPECT_EQ(apply(tick(2, later)).points, 2);
    EXPECT_EQ(shard_.totals().expired, 20);
    EXPECT_EQ(apply(tick(100, later)).points, 5);  // One sweep at most.
    EXPECT_EQ(shard_.totals().expired, 50);
}

TEST_F(ShardTest, TickOnAnIdleLedgerSweepsNothing) {
    enroll_with(42, 100);
    enroll_with(43, 100);
    // The lots expire in February 2027; until then a tick has nothing to do (and the server
    // need not log it).
    EXPECT_EQ(apply(tick(10, t0_us + day_us)).points, 0);
    EXPECT_EQ(apply(tick(10, month_start_us(month_of(t0_us) + 13) - 1)).points, 0);
    EXPECT_EQ(apply(tick(10, month_start_us(month_of(t0_us) + 13))).points, 2);
    EXPECT_EQ(shard_.totals().expired, 200);
    EXPECT_EQ(apply(tick(10, month_start_us(month_of(t0_us) + 14))).points, 0);
}

TEST_F(ShardTest, TickSweepsAgainWhenPendingPointsComeDue) {
    enroll_with(42, 0);
    apply(earn_pending(10, 42, 80, t0_us, t0_us + day_us));
    EXPECT_EQ(apply(tick(10, t0_us + day_us - 1)).points, 0);
    EXPECT_EQ(apply(tick(10, t0_us + day_us)).points, 1);
    EXPECT_EQ(view(42).available, 80);
}

TEST_F(ShardTest, FindAtShowsTheSettledBalanceWithoutChangingState) {
    enroll_with(42, 100);
    const uint64_t before = shard_.digest();
    MemberView member;
    ASSERT_TRUE(shard_.find_at(42, month_start_us(month_of(t0_us) + 13), &member));
    EXPECT_EQ(member.available, 0);
    EXPECT_EQ(member.lifetime_expired, 100);
    EXPECT_EQ(shard_.digest(), before);
}

TEST_F(ShardTest, PendingEarnBecomesAvailableAtItsTime) {
    enroll_with(42, 0);
    const Outcome earned = apply(earn_pending(10, 42, 80, t0_us, t0_us + 14 * day_us));
    EXPECT_EQ(earned.available, 0);
    EXPECT_EQ(earned.pending, 80);
    expect_refused(redeem(11, 42, 1, t0_us + 14 * day_us - 1), Result::insufficient_points);
    const Outcome spent = apply(redeem(12, 42, 80, t0_us + 14 * day_us));
    EXPECT_EQ(spent.result, Result::ok);
    EXPECT_EQ(spent.pending, 0);
    expect_sound();
}

TEST_F(ShardTest, TickReleasesPendingPoints) {
    enroll_with(42, 0);
    apply(earn_pending(10, 42, 80, t0_us, t0_us + day_us));
    apply(tick(10, t0_us + day_us));
    EXPECT_EQ(view(42).available, 80);
    EXPECT_EQ(view(42).pending, 0);
}

TEST_F(ShardTest, HoldMovesPointsFromAvailableToHeld) {
    enroll_with(42, 100);
    const Outcome outcome = apply(hold(10, 42, 60));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.available, 40);
    EXPECT_EQ(outcome.held, 60);
    EXPECT_EQ(shard_.totals().open_holds, 1u);
    expect_sound();
}

TEST_F(ShardTest, HoldAboveAvailableIsInsufficientPoints) {
    enroll_with(42, 100);
    expect_refused(hold(10, 42, 101), Result::insufficient_points);
}

TEST_F(ShardTest, HoldLongerThanTheMaximumIsFieldOutOfRange) {
    enroll_with(42, 100);
    const Config config = small_config();
    expect_refused(hold(10, 42, 1, t0_us, t0_us + config.hold_timeout_us_max + 1),
                   Result::field_out_of_range);
    expect_refused(hold(11, 42, 1, t0_us, t0_us), Result::field_out_of_range);
    // A refused field answers no balances (docs/protocol.md, 3.1), unlike a refusal on the state.
    const Outcome outcome = apply(hold(12, 42, 1, t0_us, t0_us + config.hold_timeout_us_max + 1));
    EXPECT_EQ(outcome.available, 0);
    EXPECT_EQ(apply(hold(13, 42, 101)).available, 100);  // insufficient_points: the balance.
}

TEST_F(ShardTest, HoldBeyondHoldLimitIsRefused) {
    Config config = small_config();
    config.holds_per_shard_max = 2;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    shard.apply(earn(2, 42, 100));
    EXPECT_EQ(shard.apply(hold(3, 42, 1)).result, Result::ok);
    EXPECT_EQ(shard.apply(hold(4, 42, 1)).result, Result::ok);
    EXPECT_EQ(shard.apply(hold(5, 42, 1)).result, Result::hold_limit);
    EXPECT_EQ(shard.apply(release(6, 42, 3)).result, Result::ok);
    EXPECT_EQ(shard.apply(hold(5, 42, 1)).result, Result::ok);
}

// Three open holds per member: member 42 takes them at minute 0, 1 and 2 (each for 10 minutes).
class MemberHoldLimitTest : public ShardTest {
protected:
    static Config limited() {
        Config config = small_config();
        config.holds_per_member_max = 3;
        return config;
    }
    MemberHoldLimitTest() : ShardTest(limited()) {}

    void take_three_holds() {
        enroll_with(42, 100);
        enroll_with(43, 100);
        for (uint64_t i = 0; i < 3; ++i) {
            const TimeUs at_us = t0_us + i * minute_us;
            ASSERT_EQ(apply(hold(10 + i, 42, 1, at_us, at_us + 10 * minute_us)).result, Result::ok);
        }
    }
};

TEST_F(MemberHoldLimitTest, AHoldPastTheMembersLimitIsRefusedAndChangesNothing) {
    take_three_holds();
    const MemberView before = view(42);
    const Outcome refused = apply(hold(20, 42, 1, t0_us + 3 * minute_us));
    EXPECT_EQ(refused.result, Result::member_hold_limit);
    EXPECT_EQ(refused.available, before.available);  // The member's balances, as other refusals.
    EXPECT_EQ(refused.held, 3);
    EXPECT_EQ(view(42).available, before.available);
    EXPECT_EQ(shard_.totals().open_holds, 3u);
    // Another member of the shard is not limited by it, and the refused id was not used.
    EXPECT_EQ(apply(hold(21, 43, 1, t0_us + 3 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(release(22, 42, 11, t0_us + 4 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(hold(20, 42, 1, t0_us + 4 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(hold(23, 42, 1, t0_us + 4 * minute_us)).result, Result::member_hold_limit);
    EXPECT_TRUE(shard_.audit().ok);
}

TEST_F(MemberHoldLimitTest, CapturedAndTimedOutHoldsLeaveRoom) {
    take_three_holds();
    // Closing the first hold (the list's head) and the last both hand the count on.
    EXPECT_EQ(apply(capture(20, 42, 10, 0, t0_us + 3 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(hold(21, 42, 1, t0_us + 3 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(release(22, 42, 21, t0_us + 3 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(hold(23, 42, 1, t0_us + 3 * minute_us)).result, Result::ok);
    EXPECT_EQ(apply(hold(24, 42, 1, t0_us + 3 * minute_us)).result, Result::member_hold_limit);
    // Hold 11 (taken at minute 1) times out at minute 11: a hold at that moment fits, without
    // any tick having closed it first.
    EXPECT_EQ(apply(hold(25, 42, 1, t0_us + 11 * minute_us - 1)).result, Result::member_hold_limit);
    EXPECT_EQ(apply(hold(25, 42, 1, t0_us + 11 * minute_us)).result, Result::ok);
    EXPECT_EQ(shard_.totals().open_holds, 3u);
    EXPECT_TRUE(shard_.audit().ok);
}

TEST_F(MemberHoldLimitTest, TheCountSurvivesACheckpointAndALowerLimitKeepsOpenHolds) {
    take_three_holds();
    Config config = limited();
    config.holds_per_member_max = 2;
    const std::unique_ptr<Shard> loaded = saved_and_loaded(config);
    EXPECT_TRUE(loaded->audit().ok);
    const TimeUs now_us = t0_us + 3 * minute_us;
    EXPECT_EQ(loaded->apply(hold(20, 42, 1, now_us)).result, Result::member_hold_limit);
    EXPECT_EQ(loaded->apply(release(21, 42, 10, now_us)).result, Result::ok);
    EXPECT_EQ(loaded->apply(hold(20, 42, 1, now_us)).result,
              Result::member_hold_limit);  // Still two open: the lowered limit.
    EXPECT_EQ(loaded->apply(release(22, 42, 11, now_us)).result, Result::ok);
    EXPECT_EQ(loaded->apply(hold(20, 42, 1, now_us)).result, Result::ok);
    config.holds_per_member_max = 0;
    loaded->set_rules(config);
    for (uint64_t i = 0; i < 10; ++i) {
        EXPECT_EQ(loaded->apply(hold(30 + i, 42, 1, now_us)).result, Result::ok);
    }
    EXPECT_TRUE(loaded->audit().ok);
}

// Three pending lots per member: member 42 earns 10 pending until day 1, 2 and 3.
class MemberLotLimitTest : public ShardTest {
protected:
    static Config limited() {
        Config config = small_config();
        config.pending_lots_per_member_max = 3;
        return config;
    }
    MemberLotLimitTest() : ShardTest(limited()) {}

    void earn_three_pending() {
        enroll_with(42, 100);
        enroll_with(43, 100);
        for (uint64_t i = 0; i < 3; ++i) {
            ASSERT_EQ(apply(earn_pending(10 + i, 42, 10, t0_us, t0_us + (i + 1) * day_us)).result,
                      Result::ok);
        }
    }
};

TEST_F(MemberLotLimitTest, APendingEarnNeedingOneLotMoreIsRefusedAndChangesNothing) {
    earn_three_pending();
    const uint64_t digest = shard_.digest();
    const Outcome refused = apply(earn_pending(20, 42, 5, t0_us, t0_us + 4 * day_us));
    EXPECT_EQ(refused.result, Result::member_lot_limit);
    EXPECT_EQ(refused.available, 100);  // The member's balances, as other refusals.
    EXPECT_EQ(refused.pending, 30);
    EXPECT_EQ(shard_.digest(), digest);
    // Joining a lot the member has takes none, nor does an earn available at once; another
    // member of the shard is not limited by it.
    EXPECT_EQ(apply(earn_pending(21, 42, 5, t0_us, t0_us + 2 * day_us)).result, Result::ok);
    EXPECT_EQ(apply(earn_pending(26, 42, 5, t0_us, t0_us + 3 * day_us)).result, Result::ok);
    EXPECT_EQ(apply(earn(22, 42, 5)).result, Result::ok);
    EXPECT_EQ(apply(earn_pending(23, 43, 5, t0_us, t0_us + 4 * day_us)).result, Result::ok);
    EXPECT_EQ(view(42).pending, 40);
    // Reversing a pending earn gives its lot back; the refused id was never used.
    EXPECT_EQ(apply(reverse(24, 42, 10)).result, Result::ok);
    EXPECT_EQ(apply(earn_pending(20, 42, 5, t0_us, t0_us + 4 * day_us)).result, Result::ok);
    EXPECT_EQ(apply(earn_pending(25, 42, 5, t0_us, t0_us + 5 * day_us)).result,
              Result::member_lot_limit);
    EXPECT_EQ(view(42).pending, 35);
    EXPECT_TRUE(shard_.audit().ok);
}

TEST_F(MemberLotLimitTest, LotsReleasedByTheEarnsTimeLeaveRoomWithoutATick) {
    earn_three_pending();
    // The first lot is released at day 1: just before, a fourth release time is refused; at that
    // moment it fits, the first lot being released first.
    EXPECT_EQ(apply(earn_pending(20, 42, 5, t0_us + day_us - 1, t0_us + 5 * day_us)).result,
              Result::member_lot_limit);
    const Outcome earned = apply(earn_pending(20, 42, 5, t0_us + day_us, t0_us + 5 * day_us));
    EXPECT_EQ(earned.result, Result::ok);
    EXPECT_EQ(earned.available, 110);
    EXPECT_EQ(earned.pending, 25);
    EXPECT_EQ(apply(earn_pending(21, 42, 5, t0_us + day_us, t0_us + 6 * day_us)).result,
              Result::member_lot_limit);
    EXPECT_TRUE(shard_.audit().ok);
}

TEST_F(MemberLotLimitTest, TheCountSurvivesACheckpointAndALowerLimitKeepsPendingLots) {
    earn_three_pending();
    Config config = limited();
    config.pending_lots_per_member_max = 2;
    const std::unique_ptr<Shard> loaded = saved_and_loaded(config);
    EXPECT_TRUE(loaded->audit().ok);
    const Command fourth = earn_pending(20, 42, 5, t0_us, t0_us + 4 * day_us);
    EXPECT_EQ(loaded->apply(fourth).result, Result::member_lot_limit);
    EXPECT_EQ(loaded->apply(reverse(21, 42, 10)).result, Result::ok);
    EXPECT_EQ(loaded->apply(fourth).result, Result::member_lot_limit);  // Two: the lowered limit.
    EXPECT_EQ(loaded->apply(reverse(22, 42, 11)).result, Result::ok);
    EXPECT_EQ(loaded->apply(fourth).result, Result::ok);
    config.pending_lots_per_member_max = 0;
    loaded->set_rules(config);
    for (uint64_t i = 0; i < 10; ++i) {
        EXPECT_EQ(
            loaded->apply(earn_pending(30 + i, 42, 1, t0_us, t0_us + (10 + i) * day_us)).result,
            Result::ok);
    }
    MemberView member;
    ASSERT_TRUE(loaded->find(42, &member));
    EXPECT_EQ(member.pending, 25);
    EXPECT_TRUE(loaded->audit().ok);
}

TEST_F(MemberLotLimitTest, AtTheLimitAnOutOfOrderReleaseTimeIsRefusedUnlessTheMemberHasIt) {
    earn_three_pending();
    // Before the first lot and between two lots: a lot of its own, refused; the first lot's
    // time joins it.
    expect_refused(earn_pending(20, 42, 5, t0_us, t0_us + day_us / 2), Result::member_lot_limit);
    expect_refused(earn_pending(20, 42, 5, t0_us, t0_us + day_us + day_us / 2),
                   Result::member_lot_limit);
    EXPECT_EQ(apply(earn_pending(21, 42, 5, t0_us, t0_us + day_us)).result, Result::ok);
    // Four lots under a limit lowered to three, the first due by the earn's time: the walk for
    // a middle lot starts past it.
    Config config = limited();
    config.pending_lots_per_member_max = 0;
    shard_.set_rules(config);
    ASSERT_EQ(apply(earn_pending(22, 42, 5, t0_us, t0_us + 4 * day_us)).result, Result::ok);
    shard_.set_rules(limited());
    const TimeUs later_us = t0_us + day_us;
    EXPECT_EQ(apply(earn_pending(23, 42, 5, later_us, t0_us + 3 * day_us)).result, Result::ok);
    expect_refused(earn_pending(24, 42, 5, later_us, t0_us + 3 * day_us + 1),
                   Result::member_lot_limit);
    EXPECT_EQ(view(42).pending, 30);
    expect_sound();
}

// Repeats are answered before the limit is looked at: a pending earn whose lot is gone (its
// reversal took it), repeated while the member is at the limit, is replayed.
TEST_F(MemberLotLimitTest, ARepeatOfAnAppliedPendingEarnAtTheLimitIsReplayed) {
    earn_three_pending();
    ASSERT_EQ(apply(reverse(20, 42, 10)).result, Result::ok);
    ASSERT_EQ(apply(earn_pending(21, 42, 5, t0_us, t0_us + 4 * day_us)).result, Result::ok);
    const uint64_t before = shard_.digest();
    const Outcome repeated = apply(earn_pending(10, 42, 10, t0_us, t0_us + day_us));
    EXPECT_EQ(repeated.result, Result::ok);
    EXPECT_TRUE(repeated.replayed);
    EXPECT_EQ(repeated.pending, 10);  // What the earn answered then.
    EXPECT_EQ(shard_.digest(), before);
    expect_refused(earn_pending(22, 42, 10, t0_us, t0_us + 5 * day_us), Result::member_lot_limit);
}

// The count is rebuilt from the checkpoint's lots alone: a shard that had members of its own
// (whose counts sit in the same slots) loads it exact.
TEST_F(MemberLotLimitTest, ACheckpointLoadedIntoAShardInUseCountsOnlyItsOwnLots) {
    earn_three_pending();
    Shard other(0, 1, limited(), nullptr);
    ASSERT_EQ(other.apply(enroll(1, 7)).result, Result::ok);
    ASSERT_EQ(other.apply(earn_pending(2, 7, 10, t0_us, t0_us + day_us)).result, Result::ok);
    std::vector<std::byte> bytes;
    other.save(&bytes);
    ASSERT_TRUE(shard_.load(bytes));  // Member 7 takes member 42's place.
    EXPECT_TRUE(shard_.audit().ok);
    EXPECT_EQ(apply(earn_pending(3, 7, 10, t0_us, t0_us + 2 * day_us)).result, Result::ok);
    EXPECT_EQ(apply(earn_pending(4, 7, 10, t0_us, t0_us + 3 * day_us)).result, Result::ok);
    expect_refused(earn_pending(5, 7, 10, t0_us, t0_us + 4 * day_us), Result::member_lot_limit);
}

// A refused pending earn claims nothing in the shards' shared TxnIndex: the same id applies once
// the member has room.
TEST(MemberLotLimitIndexed, ARefusedPendingEarnLeavesItsIdFreeForARetry) {
    Config config = small_config();
    config.pending_lots_per_member_max = 1;
    TxnIndex index(1024);
    Shard shard(0, 1, config, &index);
    ASSERT_EQ(shard.apply(enroll(1, 42)).result, Result::ok);
    ASSERT_EQ(shard.apply(earn_pending(10, 42, 10, t0_us, t0_us + day_us)).result, Result::ok);
    const Command second = earn_pending(11, 42, 10, t0_us, t0_us + 2 * day_us);
    EXPECT_EQ(shard.apply(second).result, Result::member_lot_limit);
    EXPECT_EQ(index.find(second.txn_id), MemberId{0});
    ASSERT_EQ(shard.apply(reverse(12, 42, 10)).result, Result::ok);
    const Outcome retried = shard.apply(second);
    EXPECT_EQ(retried.result, Result::ok);
    EXPECT_FALSE(retried.replayed);
    EXPECT_EQ(retried.pending, 10);
    EXPECT_TRUE(shard.audit().ok);
}

TEST_F(ShardTest, CaptureOfTheWholeHoldSpendsIt) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    const Outcome outcome = apply(capture(11, 42, 10, 0));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.points, 60);
    EXPECT_EQ(outcome.held, 0);
    EXPECT_EQ(outcome.available, 40);
    EXPECT_EQ(view(42).lifetime_redeemed, 60);
    expect_sound();
}

TEST_F(ShardTest, PartialCaptureReleasesTheRemainder) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    const Outcome outcome = apply(capture(11, 42, 10, 25));
    EXPECT_EQ(outcome.points, 25);
    EXPECT_EQ(outcome.held, 0);
    EXPECT_EQ(outcome.available, 75);
    expect_sound();
}

TEST_F(ShardTest, CaptureAboveTheHoldIsRefused) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    expect_refused(capture(11, 42, 10, 61), Result::capture_exceeds_hold);
}

TEST_F(ShardTest, CaptureOfAClosedHoldIsHoldClosed) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    apply(release(11, 42, 10));
    expect_refused(capture(12, 42, 10, 0), Result::hold_closed);
}

TEST_F(ShardTest, CaptureOfAnUnknownHoldIsHoldNotFound) {
    enroll_with(42, 100);
    apply(redeem(10, 42, 1));
    expect_refused(capture(11, 42, 99, 0), Result::hold_not_found);
    expect_refused(capture(12, 42, 10, 0), Result::hold_not_found);  // Not a hold.
}

TEST_F(ShardTest, ReleaseReturnsTheHeldPoints) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    const Outcome outcome = apply(release(11, 42, 10));
    EXPECT_EQ(outcome.points, 60);
    EXPECT_EQ(outcome.available, 100);
    EXPECT_EQ(outcome.held, 0);
    expect_sound();
}

TEST_F(ShardTest, HoldTimesOutLazilyWhenTheMemberIsTouched) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60, t0_us, t0_us + minute_us));
    const Outcome outcome = apply(earn(11, 42, 1, t0_us + minute_us));
    EXPECT_EQ(outcome.available, 101);
    EXPECT_EQ(outcome.held, 0);
    expect_refused(capture(12, 42, 10, 0, t0_us + minute_us), Result::hold_closed);
}

TEST_F(ShardTest, CaptureAtTheHoldTimeoutIsHoldClosed) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60, t0_us, t0_us + minute_us));
    expect_refused(capture(11, 42, 10, 0, t0_us + minute_us), Result::hold_closed);
    EXPECT_EQ(apply(capture(11, 42, 10, 0, t0_us + minute_us - 1)).result, Result::ok);
}

TEST_F(ShardTest, TickTimesOutDueHolds) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    const Outcome outcome = apply(tick(1, t0_us + small_config().hold_timeout_us_default));
    EXPECT_EQ(outcome.points, 1);
    EXPECT_EQ(shard_.totals().open_holds, 0u);
    EXPECT_EQ(view(42).available, 100);
    expect_sound();
}

TEST_F(ShardTest, ReverseOfAnEarnClawsItBack) {
    enroll_with(42, 0);
    apply(earn(10, 42, 100));
    const Outcome outcome = apply(reverse(11, 42, 10));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.points, 100);
    EXPECT_EQ(outcome.shortfall, 0);
    EXPECT_EQ(outcome.available, 0);
    EXPECT_EQ(view(42).lifetime_reversed, 100);
    EXPECT_EQ(view(42).growth, 0);
    expect_sound();
}

TEST_F(ShardTest, ReverseOfASpentEarnReportsTheShortfall) {
    enroll_with(42, 0);
    apply(earn(10, 42, 100));
    apply(redeem(11, 42, 70));
    const Outcome outcome = apply(reverse(12, 42, 10));
    EXPECT_EQ(outcome.points, 30);
    EXPECT_EQ(outcome.shortfall, 70);
    EXPECT_EQ(outcome.available, 0);
    expect_sound();
}

TEST_F(ShardTest, ReverseWithNegativePolicyLetsTheBalanceGoNegative) {
    Config config = small_config();
    config.reverse_allows_negative = true;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    shard.apply(earn(10, 42, 100));
    shard.apply(redeem(11, 42, 70));
    const Outcome outcome = shard.apply(reverse(12, 42, 10));
    EXPECT_EQ(outcome.points, 100);
    EXPECT_EQ(outcome.shortfall, 0);
    EXPECT_EQ(outcome.available, -70);
    EXPECT_EQ(shard.apply(redeem(13, 42, 1)).result, Result::insufficient_points);
    EXPECT_EQ(shard.apply(earn(14, 42, 100)).available, 30);
    EXPECT_TRUE(shard.audit().ok);
}

TEST_F(ShardTest, RulesChangedLaterActOnNewCommandsAndLeaveADebtMadeWhileAllowed) {
    Config config = small_config();
    config.reverse_allows_negative = true;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    shard.apply(earn(10, 42, 100));
    shard.apply(redeem(11, 42, 70));
    ASSERT_EQ(shard.apply(reverse(12, 42, 10)).available, -70);
    Config later = config;
    later.reverse_allows_negative = false;
    later.hold_timeout_us_default = config.hold_timeout_us_default / 2;
    shard.set_rules(later);
    // The debt stays and is sound; the audit reports it without failing.
    AuditReport report = shard.audit();
    EXPECT_TRUE(report.ok);
    EXPECT_EQ(report.negative_balances, 1u);
    EXPECT_EQ(shard.apply(earn(13, 42, 100)).available, 30);
    // A reverse now takes only what is there.
    shard.apply(earn(14, 42, 50));
    shard.apply(redeem(15, 42, 60));
    const Outcome clawed = shard.apply(reverse(16, 42, 14));
    EXPECT_EQ(clawed.available, 0);
    EXPECT_EQ(clawed.shortfall, 30);
    report = shard.audit();
    EXPECT_TRUE(report.ok);
    EXPECT_EQ(report.negative_balances, 0u);
}

TEST_F(ShardTest, ReverseOfAPendingEarnTakesThePendingPoints) {
    enroll_with(42, 50);
    apply(earn_pending(10, 42, 80, t0_us, t0_us + day_us));
    const Outcome outcome = apply(reverse(11, 42, 10));
    EXPECT_EQ(outcome.points, 80);
    EXPECT_EQ(outcome.pending, 0);
    EXPECT_EQ(outcome.available, 50);
    expect_sound();
}

TEST_F(ShardTest, ReverseOfARedeemGivesThePointsBack) {
    enroll_with(42, 100);
    apply(redeem(10, 42, 30));
    const Outcome outcome = apply(reverse(11, 42, 10));
    EXPECT_EQ(outcome.points, 30);
    EXPECT_EQ(outcome.available, 100);
    EXPECT_EQ(view(42).lifetime_redeemed, 0);
    expect_sound();
}

TEST_F(ShardTest, ReverseOfACaptureGivesThePointsBack) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60));
    apply(capture(11, 42, 10, 40));
    const Outcome outcome = apply(reverse(12, 42, 11));
    EXPECT_EQ(outcome.points, 40);
    EXPECT_EQ(outcome.available, 100);
    expect_sound();
}

TEST_F(ShardTest, ReverseTwiceIsAlreadyReversed) {
    enroll_with(42, 100);
    apply(redeem(10, 42, 30));
    apply(reverse(11, 42, 10));
    expect_refused(reverse(12, 42, 10), Result::already_reversed);
}

TEST_F(ShardTest, ReverseOfAHoldIsNotReversible) {
    enroll_with(42, 100);
    apply(hold(10, 42, 30));
    expect_refused(reverse(11, 42, 10), Result::txn_not_reversible);
}

TEST_F(ShardTest, ReverseOfAnotherMembersTxnIsTxnNotFound) {
    enroll_with(42, 100);
    enroll_with(43, 100);
    apply(redeem(10, 42, 30));
    expect_refused(reverse(11, 43, 10), Result::txn_not_found);
    expect_refused(reverse(12, 43, 999), Result::txn_not_found);
}

TEST_F(ShardTest, AdjustCreditsAndDebits) {
    enroll_with(42, 10);
    EXPECT_EQ(apply(adjust(10, 42, 5, false)).available, 15);
    EXPECT_EQ(apply(adjust(11, 42, 15, true)).available, 0);
    expect_refused(adjust(12, 42, 1, true), Result::insufficient_points);
    const Totals totals = shard_.totals();
    EXPECT_EQ(totals.adjusted_in, 5);
    EXPECT_EQ(totals.adjusted_out, 15);
    expect_sound();
}

TEST_F(ShardTest, TransferOnOneShardMovesBothLegsAtOnce) {
    enroll_with(42, 100);
    enroll_with(43, 5);
    const Outcome outcome = apply(transfer(10, 42, 43, 60));
    EXPECT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.available, 40);
    EXPECT_EQ(view(43).available, 65);
    EXPECT_TRUE(shard_.transfers_in_flight().empty());
    expect_sound();
}

TEST_F(ShardTest, TransferToSelfOrUnknownOrFrozenIsRefused) {
    enroll_with(42, 100);
    enroll_with(43, 0);
    expect_refused(transfer(10, 42, 42, 1), Result::transfer_to_self);
    expect_refused(transfer(11, 42, 44, 1), Result::member_not_found);
    apply(update(12, 43, MemberStatus::frozen, 0, 0));
    expect_refused(transfer(13, 42, 43, 1), Result::member_frozen);
    expect_refused(transfer(14, 42, 0, 1), Result::member_id_zero);
}

TEST_F(ShardTest, UpdateOfAnUnknownMemberIsMemberNotFound) {
    expect_refused(update(10, 42, MemberStatus::frozen, 0, 0), Result::member_not_found);
}

TEST_F(ShardTest, TxnTableGrowsPastItsStartingSizeAndKeepsEveryTransaction) {
    // Starting at 3 entries, the table doubles many times; a shard that started large ends in
    // the same state, and every id still replays (the local index was rehashed each time).
    const auto fill = [](Shard& shard) {
        for (MemberId member = 1; member <= 50; ++member) {
            ASSERT_EQ(shard.apply(enroll(3 * member - 2, member)).result, Result::ok);
            ASSERT_EQ(shard.apply(earn(3 * member - 1, member, 100)).result, Result::ok);
            ASSERT_EQ(shard.apply(hold(3 * member, member, 30)).result, Result::ok);
        }
        for (MemberId member = 1; member <= 50; ++member) {
            ASSERT_EQ(shard.apply(capture(1'000 + member, member, 3 * member, 10)).result,
                      Result::ok);
        }
    };
    Config config = small_config();
    config.txns_per_shard_max = 3;
    Shard grown(0, 1, config, nullptr);
    Shard large(0, 1, small_config(), nullptr);
    fill(grown);
    fill(large);
    EXPECT_EQ(grown.totals().txns, 200u);
    EXPECT_TRUE(grown.audit().ok);
    EXPECT_EQ(grown.digest(), large.digest());
    for (MemberId member = 1; member <= 50; ++member) {
        EXPECT_TRUE(grown.apply(earn(3 * member - 1, member, 100)).replayed);
        EXPECT_TRUE(grown.apply(capture(1'000 + member, member, 3 * member, 10)).replayed);
    }
}

TEST_F(ShardTest, CheckpointLargerThanTheStartingTxnTableLoads) {
    enroll_with(42, 100);
    for (uint64_t id = 100; id < 140; ++id) {
        ASSERT_EQ(apply(earn(id, 42, 1)).result, Result::ok);
    }
    Config config = small_config();
    config.txns_per_shard_max = 2;
    EXPECT_TRUE(saved_and_loaded(config)->apply(earn(120, 42, 1)).replayed);
}

TEST_F(ShardTest, ReleaseOfAnotherMembersHoldIsHoldNotFound) {
    enroll_with(42, 100);
    enroll_with(43, 100);
    apply(hold(10, 42, 10));
    expect_refused(release(11, 43, 10), Result::hold_not_found);
}

TEST_F(ShardTest, ReleaseWithPointsIsFieldOutOfRange) {
    enroll_with(42, 100);
    apply(hold(10, 42, 10));
    Command command = release(11, 42, 10);
    command.points = 5;
    expect_refused(command, Result::field_out_of_range);
}

TEST_F(ShardTest, ReturnedPointsNeverJoinAnExpiredMonth) {
    // A redeem in January 2026, reversed in March 2027: the January lot would already have
    // expired, so the points join the oldest month still alive and stay spendable.
    enroll_with(42, 100);
    apply(redeem(10, 42, 100));
    const TimeUs march_2027 = month_start_us(month_of(t0_us) + 14);
    const Outcome outcome = apply(reverse(11, 42, 10, march_2027));
    EXPECT_EQ(outcome.available, 100);
    EXPECT_EQ(apply(redeem(12, 42, 100, march_2027 + 1)).result, Result::ok);
    expect_sound();
}

TEST_F(ShardTest, TimedOutHoldGivesPointsBackToTheMonthTheyWereEarnedIn) {
    enroll_with(42, 100);
    // Held in January 2027 and timed out within it: the points come back as January 2026's.
    apply(hold(10, 42, 100, january_expiry_us - 5 * day_us, january_expiry_us - 3 * day_us));
    const Outcome outcome = apply(earn(11, 42, 1, january_expiry_us));
    EXPECT_EQ(outcome.available, 1);
    EXPECT_EQ(outcome.held, 0);
    EXPECT_EQ(view(42).lifetime_expired, 100);
    expect_sound();
}

TEST_F(ShardTest, ReleasingAHoldNeverMakesItsPointsYounger) {
    // Holding points and releasing them again must not put off their expiry: otherwise a member
    // could keep points for ever with a hold and a release each month.
    enroll_with(42, 100);
    apply(hold(10, 42, 100, january_expiry_us - day_us));
    const Outcome released = apply(release(11, 42, 10, january_expiry_us - day_us + minute_us));
    ASSERT_EQ(released.result, Result::ok);
    EXPECT_EQ(released.available, 100);
    EXPECT_EQ(released.shortfall, 0);
    EXPECT_EQ(apply(earn(12, 42, 1, january_expiry_us)).available, 1);
    EXPECT_EQ(view(42).lifetime_expired, 100);
    expect_sound();
}

TEST_F(ShardTest, PointsWhoseMonthEndedWhileHeldExpireWhenTheHoldIsReleased) {
    hold_across_january_expiry();
    EXPECT_EQ(view(42).available, 30);
    const Outcome released = apply(release(12, 42, 11, january_expiry_us + minute_us));
    ASSERT_EQ(released.result, Result::ok);
    EXPECT_EQ(released.points, 120);
    EXPECT_EQ(released.shortfall, 100);  // Expired as they came back.
    EXPECT_EQ(released.available, 50);
    EXPECT_EQ(released.held, 0);
    EXPECT_EQ(view(42).lifetime_expired, 100);
    // A repeat answers the same, and changes nothing.
    const Outcome repeated = apply(release(12, 42, 11, january_expiry_us + 2 * minute_us));
    EXPECT_TRUE(repeated.replayed);
    EXPECT_EQ(repeated.shortfall, 100);
    expect_sound();
}

TEST_F(ShardTest, ACaptureSpendsTheOldestHeldPointsAndTheRestKeepTheirMonths) {
    enroll_with(42, 100);                                          // January 2026.
    apply(earn(10, 42, 50, month_start_us(month_of(t0_us) + 1)));  // February 2026.
    const TimeUs march_us = month_start_us(month_of(t0_us) + 2);
    apply(hold(11, 42, 120, march_us));  // January's 100, then 20 of February's.
    const Outcome captured = apply(capture(12, 42, 11, 30, march_us + minute_us));
    ASSERT_EQ(captured.result, Result::ok);
    EXPECT_EQ(captured.points, 30);
    EXPECT_EQ(captured.available, 120);  // 70 of January's and 20 of February's came back.
    // January's 70 expire with January; February's 50 a month later.
    EXPECT_EQ(apply(earn(13, 42, 1, january_expiry_us)).available, 51);
    EXPECT_EQ(view(42).lifetime_expired, 70);
    EXPECT_EQ(apply(earn(14, 42, 1, month_start_us(month_of(t0_us) + 14))).available, 2);
    EXPECT_EQ(view(42).lifetime_expired, 120);
    expect_sound();
}

TEST_F(ShardTest, AHoldTakenBeforeHoldsKeptMonthsGivesBackToTheMonthItComesBackIn) {
    // Log records of older builds replay under points_keep_months off (docs/wal.md): their holds
    // give back as those builds did, also once the rule is on again and across a checkpoint.
    Config old_rules = small_config();
    old_rules.points_keep_months = false;
    shard_.set_rules(old_rules);
    enroll_with(42, 100);  // January 2026.
    const TimeUs march_us = month_start_us(month_of(t0_us) + 2);
    apply(hold(10, 42, 40, march_us, march_us + day_us));
    apply(hold(11, 42, 30, march_us, march_us + 2 * day_us));
    shard_.set_rules(small_config());
    std::vector<std::byte> bytes;
    shard_.save(&bytes);
    Shard loaded(0, 1, small_config(), nullptr);
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_EQ(loaded.digest(), shard_.digest());
    for (Shard* shard : {&shard_, &loaded}) {
        // Hold 10 released in March, hold 11 timed out in March: both came back as March's.
        ASSERT_EQ(shard->apply(release(12, 42, 10, march_us + minute_us)).available, 70);
        EXPECT_EQ(shard->apply(earn(13, 42, 1, january_expiry_us)).available, 71);
        EXPECT_TRUE(shard->audit().ok);
    }
    EXPECT_EQ(loaded.digest(), shard_.digest());
}

TEST_F(ShardTest, UnderTheRulesOfOlderBuildsTicksSweepTheMembersTheySweptThen) {
    // Those builds put points coming back into a lot before a debt took them, and creating the
    // lot noted its expiry for the ticks' sweep: their logged ticks count that sweep, and replay
    // checks the count. The counts here are what the build of 8084ce6 logged.
    Config config = small_config();
    config.expiry_months = 1;
    config.reverse_allows_negative = true;
    config.points_keep_months = false;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    shard.apply(earn(2, 42, 100));
    shard.apply(redeem(3, 42, 100));
    shard.apply(earn_pending(4, 42, 50, t0_us, t0_us + 5 * day_us));
    ASSERT_EQ(shard.apply(reverse(5, 42, 2)).available, -100);
    // The pending 50 pay half the debt: no lot is left, but that build had made one.
    EXPECT_EQ(shard.apply(tick(4, t0_us + 6 * day_us)).points, 1);
    EXPECT_EQ(shard.apply(tick(4, month_start_us(month_of(t0_us) + 2) + 1'000'000)).points, 1);
}

// save()'s bytes (version 4) laid out as versions 2 and 3 had them: the shard's state and one
// count of transactions right after its place, then the transactions, no runs, no patches.
std::vector<std::byte> in_layout_before_runs(const std::vector<std::byte>& saved,
                                             uint32_t version) {
    constexpr size_t place_bytes = 8 + 3 * 4;              // Magic, version, index, count.
    constexpr size_t state_bytes = 9 * 8 + 4 + 2 * 8 + 4;  // Counters .. txn_count.
    constexpr size_t entry_bytes = 88;                     // TxnEntry.
    const auto u32_at = [&](size_t at) {
        uint32_t value = 0;
        std::memcpy(&value, saved.data() + at, sizeof(value));
        return value;
    };
    std::vector<std::byte> entries;
    size_t at = place_bytes;
    for (uint32_t run = u32_at(at); run > 0; run = u32_at(at)) {
        entries.insert(entries.end(), saved.begin() + at + 4,
                       saved.begin() + at + 4 + run * entry_bytes);
        at += 4 + run * entry_bytes;
    }
    EXPECT_EQ(u32_at(at + 4), 0u);  // save() makes no patches.
    at += 8;
    // Copied with memcpy into a vector sized once: GCC 12 at -O3 warns on vector::insert here
    // (-Warray-bounds / -Wstringop-overflow, false positives), which fails the -Werror build.
    std::vector<std::byte> old(place_bytes + state_bytes + entries.size() +
                               (saved.size() - at - state_bytes));
    size_t out = 0;
    const auto append = [&](const std::byte* from, size_t size) {
        if (size > 0) {
            std::memcpy(old.data() + out, from, size);
        }
        out += size;
    };
    append(saved.data(), place_bytes);
    std::memcpy(old.data() + 8, &version, sizeof(version));
    append(saved.data() + at, state_bytes);
    append(entries.data(), entries.size());
    append(saved.data() + at + state_bytes, saved.size() - at - state_bytes);
    return old;
}

TEST_F(ShardTest, AVersion2CheckpointsHoldsLoadAsTakenBeforeHoldsKeptMonths) {
    enroll_with(42, 100);  // January 2026.
    const TimeUs march_us = month_start_us(month_of(t0_us) + 2);
    apply(hold(10, 42, 40, march_us, march_us + day_us));
    std::vector<std::byte> saved;
    shard_.save(&saved);
    // The layout before runs loads as itself, in version 3.
    Shard as_version_3(0, 1, small_config(), nullptr);
    ASSERT_TRUE(as_version_3.load(in_layout_before_runs(saved, 3)));
    EXPECT_EQ(as_version_3.digest(), shard_.digest());
    std::vector<std::byte> bytes = in_layout_before_runs(saved, 2);
    // The hold is the last thing saved: SavedHold (24 bytes) then its one SavedLot (16).
    // Version 2 saved no lots.
    const size_t hold_at = bytes.size() - 16 - 24;
    uint32_t lot_count = 0;
    std::memcpy(&lot_count, bytes.data() + hold_at + 4, sizeof(lot_count));
    ASSERT_EQ(lot_count, 1u);
    lot_count = 0;
    std::memcpy(bytes.data() + hold_at + 4, &lot_count, sizeof(lot_count));
    bytes.resize(bytes.size() - 16);
    Shard loaded(0, 1, small_config(), nullptr);
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_TRUE(loaded.audit().ok);
    ASSERT_EQ(loaded.apply(release(11, 42, 10, march_us + minute_us)).available, 100);
    // January's other 60 expire with January; the 40 held came back as March's.
    EXPECT_EQ(loaded.apply(earn(12, 42, 1, january_expiry_us)).available, 41);
    // Version 2 had no lots after a hold: one that has them is refused.
    Shard refused(0, 1, small_config(), nullptr);
    EXPECT_FALSE(refused.load(in_layout_before_runs(saved, 2)));
}

TEST_F(ShardTest, AReversalGivesPointsBackToTheNewestMonthTheyWereTakenFrom) {
    // Not to the month of the redeem or capture: otherwise spending points and having the spend
    // reversed would make them younger.
    const TimeUs may_us = month_start_us(month_of(t0_us) + 4);
    const TimeUs february_expiry_us = month_start_us(month_of(t0_us) + 14);
    for (const Op spend : {Op::redeem, Op::capture}) {
        Shard shard(0, 1, small_config(), nullptr);
        shard.apply(enroll(1, 42));
        shard.apply(earn(2, 42, 100));                                      // January.
        shard.apply(earn(3, 42, 50, month_start_us(month_of(t0_us) + 1)));  // February.
        if (spend == Op::redeem) {
            ASSERT_EQ(shard.apply(redeem(10, 42, 120, may_us)).result, Result::ok);
        } else {
            ASSERT_EQ(shard.apply(hold(9, 42, 120, may_us)).result, Result::ok);
            ASSERT_EQ(shard.apply(capture(10, 42, 9, 0, may_us + 1)).result, Result::ok);
        }
        // January's 100 and 20 of February's, back as February's in June.
        ASSERT_EQ(shard.apply(reverse(11, 42, 10, may_us + 30 * day_us)).available, 150);
        EXPECT_EQ(shard.apply(earn(12, 42, 1, january_expiry_us)).available, 151);
        EXPECT_EQ(shard.apply(earn(13, 42, 1, february_expiry_us)).available, 2);
        EXPECT_TRUE(shard.audit().ok);
    }
}

TEST_F(ShardTest, AHoldNeedsALotNodeForEachMonthItTakes) {
    Config config = small_config();
    config.lots_per_shard_max = 2;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    for (uint32_t month = 0; month < 3; ++month) {  // Three months inline: no node used.
        ASSERT_EQ(
            shard.apply(earn(10 + month, 42, 10, month_start_us(month_of(t0_us) + month))).result,
            Result::ok);
    }
    const TimeUs now_us = month_start_us(month_of(t0_us) + 3);
    const uint64_t before = shard.digest();
    EXPECT_EQ(shard.apply(hold(20, 42, 25, now_us)).result, Result::lot_limit);  // 3 months.
    EXPECT_EQ(shard.digest(), before);
    EXPECT_EQ(shard.apply(hold(20, 42, 20, now_us)).result, Result::ok);  // 2 months.
    EXPECT_EQ(shard.apply(release(21, 42, 20, now_us + 1)).available, 30);
    EXPECT_TRUE(shard.audit().ok);
}

TEST_F(ShardTest, PointsAboutToComeBackInAMonthAlreadyHeldNeedNoLotOfTheirOwn) {
    // One node: the pending lot's. Its points come back as this month's, as the lot a hold of
    // 1 takes, so the hold needs the node the pending lot frees and no other; ticked or not.
    Config config = small_config();
    config.lots_per_shard_max = 2;
    for (const bool ticked : {false, true}) {
        Shard shard(0, 1, config, nullptr);
        shard.apply(enroll(1, 42));
        ASSERT_EQ(shard.apply(earn(2, 42, 10)).result, Result::ok);
        ASSERT_EQ(shard.apply(earn_pending(3, 42, 5, t0_us, t0_us + minute_us)).result, Result::ok);
        if (ticked) {
            shard.apply(tick(10, t0_us + 2 * minute_us));
        }
        EXPECT_EQ(shard.apply(hold(4, 42, 1, t0_us + 2 * minute_us)).result, Result::ok);
        EXPECT_TRUE(shard.audit().ok);
    }
}

TEST_F(ShardTest, DigestChangesWithState) {
    enroll_with(42, 100);
    const uint64_t before = shard_.digest();
    apply(redeem(10, 42, 1));
    EXPECT_NE(shard_.digest(), before);
}

TEST_F(ShardTest, DigestIsTheSameForTheSameStateBuiltInAnotherOrder) {
    Shard other(0, 1, small_config(), nullptr);
    apply(enroll(1, 42));
    apply(enroll(2, 43));
    other.apply(enroll(2, 43));
    other.apply(enroll(1, 42));
    EXPECT_EQ(shard_.digest(), other.digest());
}

TEST_F(ShardTest, SaveAndLoadKeepTheDigest) {
    enroll_with(42, 1000);
    enroll_with(43, 10);
    apply(earn(10, 42, 5, month_start_us(month_of(t0_us) + 1)));
    apply(earn(11, 42, 5, month_start_us(month_of(t0_us) + 2)));
    apply(earn(12, 42, 5, month_start_us(month_of(t0_us) + 3)));
    apply(earn(13, 42, 5, month_start_us(month_of(t0_us) + 4)));  // An overflow lot.
    apply(earn_pending(14, 42, 7, month_start_us(month_of(t0_us) + 4), time_us_max - 1));
    apply(hold(15, 42, 20, month_start_us(month_of(t0_us) + 4)));
    apply(hold(16, 42, 30, month_start_us(month_of(t0_us) + 4)));
    apply(redeem(17, 43, 3));
    enroll_with(44, 10);
    apply(earn(19, 44, 10, month_start_us(month_of(t0_us) + 1)));
    apply(hold(20, 44, 15, month_start_us(month_of(t0_us) + 4)));  // Two months held.
    std::vector<std::byte> bytes;
    shard_.save(&bytes);
    Shard loaded(0, 1, small_config(), nullptr);
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_EQ(loaded.digest(), shard_.digest());
    EXPECT_TRUE(loaded.audit().ok);
    // The loaded shard behaves the same from here on.
    const Command next = capture(18, 42, 16, 10, month_start_us(month_of(t0_us) + 4) + 1);
    EXPECT_EQ(loaded.apply(next).available, shard_.apply(next).available);
    EXPECT_EQ(loaded.digest(), shard_.digest());
    EXPECT_TRUE(loaded.apply(redeem(17, 43, 3)).replayed);
    // The held months came back: January's 10 expire with January, not later.
    const Command expire_january = earn(21, 44, 1, january_expiry_us);
    EXPECT_EQ(loaded.apply(expire_january).available, shard_.apply(expire_january).available);
    MemberView member;
    ASSERT_TRUE(loaded.find(44, &member));
    EXPECT_EQ(member.lifetime_expired, 10);
    EXPECT_EQ(loaded.digest(), shard_.digest());
}

// One member with hundreds of open holds and pending lots, taken with due times in no order,
// closed and reversed in no order: every view shows what an independent sum of them says, the
// audit (which walks both lists) passes at every step, and a checkpoint of it loads back equal.
TEST_F(ShardTest, AMemberWithHundredsOfHoldsAndPendingLotsKeepsThemInDueOrder) {
    constexpr Points start_points = 10'000;
    constexpr uint64_t holds = 200;
    constexpr uint64_t pendings = 200;
    Config config = small_config();
    config.holds_per_shard_max = 256;
    Shard shard(0, 1, config, nullptr);
    ASSERT_EQ(shard.apply(enroll(1, 42)).result, Result::ok);
    ASSERT_EQ(shard.apply(earn(2, 42, start_points)).result, Result::ok);
    std::mt19937_64 random(7);
    const auto due_minute = [&random] { return TimeUs{1 + random() % 1'000}; };
    struct Held {
        uint64_t txn;
        Points points;
        TimeUs until_us;
        bool closed;
    };
    struct Pending {
        uint64_t txn;
        Points points;
        TimeUs release_us;
        bool reversed;
    };
    std::vector<Held> held;
    std::vector<Pending> pending;
    uint64_t next_txn = 100;
    for (uint64_t i = 0; i < std::max(holds, pendings); ++i) {
        if (i < holds) {
            const Held taken{next_txn++, static_cast<Points>(1 + random() % 5),
                             t0_us + due_minute() * minute_us, false};
            ASSERT_EQ(shard.apply(hold(taken.txn, 42, taken.points, t0_us, taken.until_us)).result,
                      Result::ok);
            held.push_back(taken);
        }
        if (i < pendings) {
            const Pending earned{next_txn++, static_cast<Points>(1 + random() % 5),
                                 t0_us + due_minute() * minute_us, false};
            ASSERT_EQ(
                shard.apply(earn_pending(earned.txn, 42, earned.points, t0_us, earned.release_us))
                    .result,
                Result::ok);
            pending.push_back(earned);
        }
    }
    // Close a third of the holds (capturing half of those) and reverse a seventh of the pending
    // earns, in shuffled order after the last and the first due of each (the ends of the lists).
    const auto ends_first = [&random](auto& taken, auto due_of) {
        std::shuffle(taken.begin(), taken.end(), random);
        const auto by_due = [&](const auto& a, const auto& b) { return due_of(a) < due_of(b); };
        std::iter_swap(taken.begin(), std::max_element(taken.begin(), taken.end(), by_due));
        std::iter_swap(taken.begin() + 1, std::min_element(taken.begin() + 1, taken.end(), by_due));
    };
    Points captured = 0;
    ends_first(held, [](const Held& open) { return open.until_us; });
    for (uint64_t i = 0; i < holds / 3; ++i) {
        const bool capturing = i % 2 == 0;
        const Command close = capturing ? capture(next_txn++, 42, held[i].txn, 0, t0_us)
                                        : release(next_txn++, 42, held[i].txn, t0_us);
        ASSERT_EQ(shard.apply(close).result, Result::ok);
        held[i].closed = true;
        captured += capturing ? held[i].points : 0;
    }
    ends_first(pending, [](const Pending& earned) { return earned.release_us; });
    for (uint64_t i = 0; i < pendings / 7; ++i) {
        ASSERT_EQ(shard.apply(reverse(next_txn++, 42, pending[i].txn, t0_us)).result, Result::ok);
        pending[i].reversed = true;
    }
    ASSERT_TRUE(shard.audit().ok);

    std::vector<std::byte> bytes;
    shard.save(&bytes);
    Shard loaded(0, 1, config, nullptr);
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_EQ(loaded.digest(), shard.digest());

    for (TimeUs minute = 0; minute <= 1'001; minute += 13) {
        const TimeUs time_us = t0_us + minute * minute_us;
        Points held_now = 0;
        for (const Held& open : held) {
            held_now += !open.closed && open.until_us > time_us ? open.points : 0;
        }
        Points pending_now = 0;
        Points released = 0;
        for (const Pending& earned : pending) {
            if (!earned.reversed) {
                (earned.release_us > time_us ? pending_now : released) += earned.points;
            }
        }
        MemberView before;
        ASSERT_TRUE(shard.find_at(42, time_us, &before));
        ASSERT_EQ(shard.apply(tick(1'000, time_us)).result, Result::ok);
        ASSERT_EQ(loaded.apply(tick(1'000, time_us)).result, Result::ok);
        MemberView after;
        ASSERT_TRUE(shard.find(42, &after));
        for (const MemberView& member : {before, after}) {
            EXPECT_EQ(member.held, held_now) << "minute " << minute;
            EXPECT_EQ(member.pending, pending_now) << "minute " << minute;
            EXPECT_EQ(member.available, start_points - captured - held_now + released)
                << "minute " << minute;
        }
        ASSERT_TRUE(shard.audit().ok) << "minute " << minute;
        EXPECT_EQ(loaded.digest(), shard.digest()) << "minute " << minute;
    }
}

// A checkpoint of several pieces, built in steps while earns, a reverse of an entry already
// copied and new members go on, its whole pieces taken as it goes (as the log stores them),
// loads back to the state the shard had when it finished.
TEST_F(ShardTest, CheckpointBuiltInStepsLoadsTheStateItFinishedAt) {
    Config config = small_config();
    config.txns_per_shard_max = 1u << 16;
    Shard shard(0, 1, config, nullptr);
    uint64_t next_txn = 1;
    ASSERT_EQ(shard.apply(enroll(next_txn++, 42)).result, Result::ok);
    // 88 bytes each: 30,000 entries take about 2.5 pieces of 1 MiB.
    for (int i = 0; i < 30'000; ++i) {
        ASSERT_EQ(shard.apply(earn(next_txn++, 42, 1)).result, Result::ok);
    }
    std::vector<CheckpointBytes> parts;
    shard.begin_checkpoint();
    uint64_t left = shard.continue_checkpoint(1'000);
    EXPECT_EQ(left, next_txn - 1 - 1'000);
    parts.push_back(shard.take_checkpoint_part());
    EXPECT_EQ(parts.back().size(), 0u);  // Not a whole piece yet.
    const uint64_t reverse_txn = next_txn++;
    ASSERT_EQ(shard.apply(reverse(reverse_txn, 42, 5)).result, Result::ok);  // 5: copied already.
    // 300 applied since the last step: that step copies 600, more than the 1 it was asked for.
    for (int i = 0; i < 299; ++i) {
        ASSERT_EQ(shard.apply(earn(next_txn++, 42, 1)).result, Result::ok);
    }
    const uint64_t before = left + 300;
    left = shard.continue_checkpoint(1);
    EXPECT_EQ(left, before - 600);
    // With room for only 10 (the log is behind), 10 it is, and the 50 applied meanwhile are
    // not owed to the next step.
    for (int i = 0; i < 50; ++i) {
        ASSERT_EQ(shard.apply(earn(next_txn++, 42, 1)).result, Result::ok);
    }
    const uint64_t behind = left + 50;
    left = shard.continue_checkpoint(1, 10);
    EXPECT_EQ(left, behind - 10);
    EXPECT_EQ(shard.continue_checkpoint(1), left - 1);
    --left;
    for (MemberId member = 1'000; left > 100; ++member) {
        ASSERT_EQ(shard.apply(enroll(next_txn++, member)).result, Result::ok);
        left = shard.continue_checkpoint(5'000);
        parts.push_back(shard.take_checkpoint_part());
        EXPECT_EQ(parts.back().size() % CheckpointBytes::piece_bytes_default, 0u);
    }
    // Earn 6 went out in a taken piece as it was before this reverse: a patch says the rest.
    const uint64_t late_reverse_txn = next_txn++;
    ASSERT_EQ(shard.apply(reverse(late_reverse_txn, 42, 6)).result, Result::ok);
    CheckpointBytes rest;
    shard.finish_checkpoint(&rest);
    std::vector<std::span<const std::byte>> pieces;
    size_t taken_early = 0;
    for (const CheckpointBytes& part : parts) {
        taken_early += part.size();
        for (const std::span<const std::byte> piece : part.pieces()) {
            pieces.push_back(piece);
        }
    }
    ASSERT_GE(taken_early, 2 * CheckpointBytes::piece_bytes_default);
    for (const std::span<const std::byte> piece : rest.pieces()) {
        pieces.push_back(piece);
    }
    const uint64_t digest = shard.digest();
    Shard loaded(0, 1, config, nullptr);
    ASSERT_TRUE(loaded.load(pieces));
    EXPECT_EQ(loaded.digest(), digest);
    EXPECT_TRUE(loaded.apply(reverse(reverse_txn, 42, 5)).replayed);
    EXPECT_TRUE(loaded.apply(reverse(late_reverse_txn, 42, 6)).replayed);
    EXPECT_EQ(loaded.apply(reverse(next_txn, 42, 6)).result, Result::already_reversed);
    std::vector<std::byte> saved;
    shard.save(&saved);
    Shard from_save(0, 1, config, nullptr);
    ASSERT_TRUE(from_save.load(saved));
    EXPECT_EQ(from_save.digest(), digest);
}

// A patch may change what a transaction did next, never which transaction an entry is, and
// only an entry the checkpoint has.
TEST_F(ShardTest, ACheckpointPatchThatNamesAnotherTransactionIsRefused) {
    enroll_with(42, 100);
    ASSERT_EQ(apply(earn(11, 42, 7)).result, Result::ok);
    shard_.begin_checkpoint();
    ASSERT_EQ(shard_.continue_checkpoint(100), 0u);
    ASSERT_EQ(apply(reverse(12, 42, 11)).result, Result::ok);  // Entry 2: copied, then changed.
    CheckpointBytes built;
    shard_.finish_checkpoint(&built);
    std::vector<std::byte> scratch;
    const std::span<const std::byte> view = built.view(0, built.size(), &scratch);
    const std::vector<std::byte> bytes(view.begin(), view.end());
    // Place (20 bytes), a run of 3 entries, the new entry's run of 1, the end of the runs.
    const size_t patches_at = 20 + (4 + 3 * 88) + (4 + 88) + 4;
    uint32_t patches = 0;
    uint32_t index = 0;
    std::memcpy(&patches, bytes.data() + patches_at, 4);
    std::memcpy(&index, bytes.data() + patches_at + 4, 4);
    ASSERT_EQ(patches, 1u);
    ASSERT_EQ(index, 2u);
    Shard loaded(0, 1, small_config(), nullptr);
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_EQ(loaded.digest(), shard_.digest());
    std::vector<std::byte> past_the_end = bytes;
    const uint32_t count = 4;
    std::memcpy(past_the_end.data() + patches_at + 4, &count, 4);
    EXPECT_FALSE(Shard(0, 1, small_config(), nullptr).load(past_the_end));
    std::vector<std::byte> other_id = bytes;
    other_id[patches_at + 8] ^= std::byte{1};  // The patch's txn_id.
    EXPECT_FALSE(Shard(0, 1, small_config(), nullptr).load(other_id));
}

TEST_F(ShardTest, CheckpointLoadsFromPiecesCutAnywhere) {
    enroll_with(42, 100);
    enroll_with(43, 50);
    ASSERT_EQ(apply(hold(10, 42, 30)).result, Result::ok);
    ASSERT_EQ(apply(earn(11, 43, 7)).result, Result::ok);
    std::vector<std::byte> bytes;
    shard_.save(&bytes);
    const std::span<const std::byte> all(bytes);
    // Pieces of every length from 1 byte (each field straddles pieces) to the whole, with an
    // empty piece between each two, as the log's chunks could come.
    for (size_t piece_bytes :
         {size_t{1}, size_t{3}, size_t{7}, size_t{64}, size_t{1'000}, bytes.size()}) {
        std::vector<std::span<const std::byte>> pieces;
        for (size_t at = 0; at < all.size(); at += piece_bytes) {
            pieces.push_back(all.subspan(at, std::min(piece_bytes, all.size() - at)));
            pieces.push_back({});
        }
        Shard loaded(0, 1, small_config(), nullptr);
        ASSERT_TRUE(loaded.load(pieces)) << piece_bytes;
        EXPECT_EQ(loaded.digest(), shard_.digest()) << piece_bytes;
        EXPECT_TRUE(loaded.apply(earn(11, 43, 7)).replayed) << piece_bytes;
        // One byte short, however cut, is refused.
        pieces.pop_back();
        pieces.back() = pieces.back().first(pieces.back().size() - 1);
        Shard short_one(0, 1, small_config(), nullptr);
        EXPECT_FALSE(short_one.load(pieces)) << piece_bytes;
    }
}

TEST_F(ShardTest, LoadRefusesBytesThatAreNotACheckpoint) {
    enroll_with(42, 100);
    std::vector<std::byte> bytes;
    shard_.save(&bytes);
    bytes.resize(bytes.size() - 1);
    Shard loaded(0, 1, small_config(), nullptr);
    EXPECT_FALSE(loaded.load(bytes));
    EXPECT_EQ(loaded.totals().members, 0u);
    EXPECT_FALSE(loaded.load(std::vector<std::byte>(16, std::byte{1})));
}

TEST_F(ShardTest, LotPoolExhaustionIsLotLimitAndChangesNothing) {
    Config config = small_config();
    config.lots_per_shard_max = 1;
    Shard shard(0, 1, config, nullptr);
    shard.apply(enroll(1, 42));
    for (uint32_t month = 0; month < 4; ++month) {
        ASSERT_EQ(
            shard.apply(earn(10 + month, 42, 1, month_start_us(month_of(t0_us) + month))).result,
            Result::ok);
    }
    const uint64_t before = shard.digest();
    EXPECT_EQ(shard.apply(earn(20, 42, 1, month_start_us(month_of(t0_us) + 5))).result,
              Result::lot_limit);
    EXPECT_EQ(shard.digest(), before);
}

// ---- Shards sharing one TxnIndex, and cross-shard transfers ----------------------------------

class TwoShards : public ::testing::Test {
protected:
    TwoShards()
        : index_(1024), a_(0, 2, small_config(), &index_), b_(1, 2, small_config(), &index_) {}

    // The first member id from `from` that lives on shard `shard`.
    static MemberId member_on(uint32_t shard, MemberId from) {
        MemberId member = from;
        while (Shard::shard_of(member, 2) != shard) {
            ++member;
        }
        return member;
    }

    TxnIndex index_;
    Shard a_;
    Shard b_;
};

TEST_F(TwoShards, TxnIdUsedOnOneShardIsIdConflictOnTheOther) {
    const MemberId on_a = member_on(0, 1);
    const MemberId on_b = member_on(1, 1);
    ASSERT_EQ(a_.apply(enroll(1, on_a)).result, Result::ok);
    ASSERT_EQ(b_.apply(enroll(2, on_b)).result, Result::ok);
    ASSERT_EQ(a_.apply(earn(10, on_a, 5)).result, Result::ok);
    const uint64_t before = b_.digest();
    EXPECT_EQ(b_.apply(earn(10, on_b, 5)).result, Result::id_conflict);
    EXPECT_EQ(b_.digest(), before);
    EXPECT_EQ(index_.find(txn(10)), on_a);
}

TEST_F(TwoShards, CrossShardTransferCreditsTheReceiverAndConfirms) {
    const MemberId sender = member_on(0, 1);
    const MemberId receiver = member_on(1, 1);
    a_.apply(enroll(1, sender));
    a_.apply(earn(2, sender, 100));
    b_.apply(enroll(3, receiver));
    const Command debit = transfer(10, sender, receiver, 60);
    const Outcome debited = a_.apply(debit);
    ASSERT_EQ(debited.result, Result::ok);
    EXPECT_EQ(debited.available, 40);
    ASSERT_EQ(a_.transfers_in_flight().size(), 1u);
    EXPECT_EQ(a_.totals().transfers_in_flight, 60);

    Command credit = Shard::transfer_credit_for(debit);
    credit.time_us = t0_us;
    ASSERT_EQ(b_.apply(credit).result, Result::ok);
    MemberView view;
    ASSERT_TRUE(b_.find(receiver, &view));
    EXPECT_EQ(view.available, 60);
    // A resend (after recovery) replays.
    Command resent = a_.transfers_in_flight()[0];
    resent.time_us = t0_us + 1;
    EXPECT_TRUE(b_.apply(resent).replayed);

    Command confirm = Shard::transfer_confirm_for(credit);
    confirm.time_us = t0_us;
    EXPECT_EQ(a_.apply(confirm).result, Result::ok);
    EXPECT_TRUE(a_.transfers_in_flight().empty());
    EXPECT_TRUE(a_.apply(confirm).replayed);

    Totals ledger = a_.totals();
    ledger += b_.totals();
    EXPECT_TRUE(ledger.conserves());
    EXPECT_EQ(ledger.transfer_in, ledger.transfer_out);
    EXPECT_TRUE(a_.audit().ok);
    EXPECT_TRUE(b_.audit().ok);
    EXPECT_TRUE(a_.apply(debit).replayed);
}

TEST_F(TwoShards, RefusedCreditIsRefundedToTheSender) {
    const MemberId sender = member_on(0, 1);
    const MemberId missing = member_on(1, 1);
    a_.apply(enroll(1, sender));
    a_.apply(earn(2, sender, 100));
    const Command debit = transfer(10, sender, missing, 60);
    ASSERT_EQ(a_.apply(debit).result, Result::ok);
    // Repeated while the credit is on its way: the outcome is not known yet.
    const uint64_t in_flight = a_.digest();
    EXPECT_EQ(a_.apply(debit).result, Result::in_progress);
    EXPECT_EQ(a_.digest(), in_flight);
    Command credit = Shard::transfer_credit_for(debit);
    credit.time_us = t0_us;
    const uint64_t before = b_.digest();
    EXPECT_EQ(b_.apply(credit).result, Result::member_not_found);
    EXPECT_EQ(b_.digest(), before);
    Command refund = Shard::transfer_refund_for(credit, Result::member_not_found);
    refund.time_us = t0_us;
    const Outcome refunded = a_.apply(refund);
    EXPECT_EQ(refunded.result, Result::ok);
    EXPECT_EQ(refunded.available, 100);
    // Repeated after the refund: what the client heard, the credit's refusal with the balances
    // after the refund.
    const Outcome repeated = a_.apply(debit);
    EXPECT_EQ(repeated.result, Result::member_not_found);
    EXPECT_TRUE(repeated.replayed);
    EXPECT_EQ(repeated.available, 100);
    EXPECT_TRUE(a_.transfers_in_flight().empty());
    EXPECT_TRUE(a_.audit().ok);
    EXPECT_EQ(a_.totals().transfer_out, 0);
    Command confirm = Shard::transfer_confirm_for(credit);
    confirm.time_us = t0_us;
    EXPECT_EQ(a_.apply(confirm).result, Result::id_conflict);
}

TEST_F(TwoShards, CreditToAFrozenMemberIsRefusedAndRefundReplays) {
    const MemberId sender = member_on(0, 1);
    const MemberId receiver = member_on(1, 1);
    a_.apply(enroll(1, sender));
    a_.apply(earn(2, sender, 100));
    b_.apply(enroll(3, receiver));
    b_.apply(update(4, receiver, MemberStatus::frozen, 0, 0));
    const Command debit = transfer(10, sender, receiver, 60);
    ASSERT_EQ(a_.apply(debit).result, Result::ok);
    Command credit = Shard::transfer_credit_for(debit);
    credit.time_us = t0_us;
    EXPECT_EQ(b_.apply(credit).result, Result::member_frozen);
    Command refund = Shard::transfer_refund_for(credit, Result::member_frozen);
    refund.time_us = t0_us;
    EXPECT_EQ(a_.apply(refund).result, Result::ok);
    const uint64_t before = a_.digest();
    const Outcome again = a_.apply(refund);
    EXPECT_EQ(again.result, Result::ok);
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(a_.digest(), before);
    EXPECT_EQ(again.available, 100);
}

TEST_F(TwoShards, ConfirmOfAnUnknownTransferIsTxnNotFound) {
    const MemberId sender = member_on(0, 1);
    a_.apply(enroll(1, sender));
    Command confirm = transfer(10, sender, member_on(1, 1), 5);
    confirm.op = Op::transfer_confirm;
    EXPECT_EQ(a_.apply(confirm).result, Result::txn_not_found);
}

TEST_F(TwoShards, LoadClaimsTheTxnIdsAgain) {
    const MemberId on_a = member_on(0, 1);
    a_.apply(enroll(1, on_a));
    a_.apply(earn(10, on_a, 5));
    std::vector<std::byte> bytes;
    a_.save(&bytes);
    TxnIndex fresh(1024);
    Shard loaded(0, 2, small_config(), &fresh);
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_EQ(fresh.find(txn(10)), on_a);
    EXPECT_EQ(fresh.find(txn(1)), on_a);
}

TEST(TwoShardsGrowing, TxnIndexGrownBetweenCommandsKeepsIdsAndConflicts) {
    // The index starts at 16 slots and is grown whenever growth is due, as the server does
    // between batches; afterwards every id still has its owner, on both shards.
    TxnIndex index(16);
    Config config = small_config();
    config.txns_per_shard_max = 4;
    std::vector<std::unique_ptr<Shard>> shards;
    shards.push_back(std::make_unique<Shard>(0, 2, config, &index));
    shards.push_back(std::make_unique<Shard>(1, 2, config, &index));
    const auto shard_for = [&](MemberId member) -> Shard& {
        return *shards[Shard::shard_of(member, 2)];
    };
    uint32_t growths = 0;
    const auto grow_when_due = [&] {
        if (index.growth_due()) {
            ASSERT_TRUE(index.grow());
            ++growths;
        }
    };
    for (MemberId member = 1; member <= 40; ++member) {
        ASSERT_EQ(shard_for(member).apply(enroll(2 * member - 1, member)).result, Result::ok);
        ASSERT_EQ(shard_for(member).apply(earn(2 * member, member, 100)).result, Result::ok);
        grow_when_due();
    }
    EXPECT_GE(growths, 3u);
    EXPECT_EQ(index.used(), 80u);
    // A member on the other shard than `member`, to try its ids there.
    const auto stranger = [&](MemberId member) {
        MemberId other = 1;
        while (Shard::shard_of(other, 2) == Shard::shard_of(member, 2)) {
            ++other;
        }
        return other;
    };
    for (MemberId member = 1; member <= 40; ++member) {
        EXPECT_EQ(index.find(txn(2 * member)), member);
        EXPECT_TRUE(shard_for(member).apply(earn(2 * member, member, 100)).replayed);
        const MemberId other = stranger(member);
        EXPECT_EQ(shard_for(other).apply(earn(2 * member, other, 100)).result, Result::id_conflict);
        EXPECT_EQ(shard_for(member).apply(reverse(100 + member, member, 2 * member)).result,
                  Result::ok);
        grow_when_due();
    }
    EXPECT_TRUE(shards[0]->audit().ok);
    EXPECT_TRUE(shards[1]->audit().ok);
}

TEST(ShardOf, SpreadsMembersEvenlyAndStaysStable) {
    std::vector<uint32_t> counts(8, 0);
    for (MemberId member = 1; member <= 80'000; ++member) {
        ++counts[Shard::shard_of(member, 8)];
    }
    for (const uint32_t count : counts) {
        EXPECT_NEAR(count, 10'000, 500);
    }
    EXPECT_EQ(Shard::shard_of(12345, 8), Shard::shard_of(12345, 8));
}

// The transaction table populates its pages ahead of use (detail::populate), on memory that
// already holds entries: populating must never change a byte.
TEST(EngineMemory, PopulateMakesPagesResidentWithoutChangingWhatTheyHold) {
    constexpr size_t bytes = size_t{64} << 10;
    auto* memory = static_cast<unsigned char*>(detail::map_zeroed(bytes));
    ASSERT_NE(memory, nullptr);
    for (size_t i = 0; i < bytes / 2; ++i) {
        memory[i] = static_cast<unsigned char>(i * 7 + 1);
    }
    // A range that starts inside a written page and runs past the written half.
    detail::populate(memory + 1'000, bytes - 1'000);
    for (size_t i = 0; i < bytes / 2; ++i) {
        ASSERT_EQ(memory[i], static_cast<unsigned char>(i * 7 + 1)) << i;
    }
    for (size_t i = bytes / 2; i < bytes; ++i) {
        ASSERT_EQ(memory[i], 0) << i;
    }
    detail::unmap_zeroed(memory, bytes);
}

bool all_zero(const void* block, size_t bytes) {
    const auto* first = static_cast<const unsigned char*>(block);
    return std::all_of(first, first + bytes, [](unsigned char byte) { return byte == 0; });
}

// The TxnIndex's grown segments come from HugePageBlocks: every block handed out reads as zeros
// (also one given back dirty and handed out again), blocks never overlap, blocks of one size
// share a huge page, and a huge page goes back once all its blocks are released.
TEST(EngineMemory, HugePageBlocksAreZeroedDisjointAndGivenBackWithTheirLastBlock) {
    constexpr size_t small = size_t{256} << 10;  // 8 to a huge page.
    constexpr size_t large = size_t{1} << 20;    // 2 to a huge page.
    detail::HugePageBlocks blocks(4);
    std::vector<unsigned char*> smalls;
    for (int i = 0; i < 9; ++i) {
        auto* block = static_cast<unsigned char*>(blocks.allocate(small));
        ASSERT_NE(block, nullptr);
        ASSERT_TRUE(all_zero(block, small)) << i;
        std::memset(block, 0x5a, small);
        smalls.push_back(block);
    }
    EXPECT_EQ(blocks.huge_pages(), 2u);  // 8 blocks in the first, the ninth opened a second.
    auto* big = static_cast<unsigned char*>(blocks.allocate(large));
    ASSERT_NE(big, nullptr);
    EXPECT_TRUE(all_zero(big, large));
    EXPECT_EQ(blocks.huge_pages(), 3u);    // One block size per huge page.
    for (unsigned char* block : smalls) {  // Every block still holds what was written to it.
        for (size_t at = 0; at < small; at += 4'096) {
            ASSERT_EQ(block[at], 0x5a);
        }
    }
    blocks.release(smalls[3], small);
    auto* again = static_cast<unsigned char*>(blocks.allocate(small));
    EXPECT_EQ(again, smalls[3]);  // The freed block is reused, and zeroed for its new owner.
    EXPECT_TRUE(all_zero(again, small));
    blocks.release(smalls[8], small);  // The second huge page's only block: it goes back.
    EXPECT_EQ(blocks.huge_pages(), 2u);
    for (int i = 0; i < 8; ++i) {
        blocks.release(smalls[i], small);
    }
    EXPECT_EQ(blocks.huge_pages(), 1u);
    // Past huge_pages_max, blocks are plain mappings, released the same way.
    detail::HugePageBlocks one(1);
    void* first = one.allocate(large);
    void* second = one.allocate(large);
    void* plain = one.allocate(small);
    ASSERT_NE(plain, nullptr);
    EXPECT_TRUE(all_zero(plain, small));
    EXPECT_EQ(one.huge_pages(), 1u);
    one.release(plain, small);
    one.release(first, large);
    one.release(second, large);
    EXPECT_EQ(one.huge_pages(), 0u);
    blocks.release(big, large);
    EXPECT_EQ(blocks.huge_pages(), 0u);
}

// ---- Settlement records: what the clock did, for the members' histories ----------------------

class SettlementTest : public ShardTest {
protected:
    SettlementTest() { shard_.record_derived(true, 64); }

    std::vector<Record> settlements_of(const Outcome& outcome) {
        const std::span<const Record> all = shard_.derived();
        EXPECT_LE(outcome.derived_first + outcome.derived_count, all.size());
        const auto first = all.begin() + outcome.derived_first;
        return {first, first + outcome.derived_count};
    }

    static void expect_record(const Record& record, Op op, MemberId member_id, Points points,
                              TimeUs due_us, Points available_after, uint64_t hold_lo = 0) {
        EXPECT_EQ(record.command.op, op);
        EXPECT_EQ(record.command.member_id, member_id);
        EXPECT_EQ(record.command.points, points);
        EXPECT_EQ(record.applied_points, points);
        EXPECT_EQ(record.command.time_us, due_us);
        EXPECT_EQ(record.available_after, available_after);
        EXPECT_TRUE(record.command.txn_id.is_zero());  // The clock did it, not a transaction.
        EXPECT_EQ(record.command.ref_txn_id, hold_lo == 0 ? TxnId{} : txn(hold_lo));
    }

    const TimeUs expiry_of_january_us = january_expiry_us;
};

TEST_F(ShardTest, SettlingRecordsNothingUnlessAsked) {
    enroll_with(42, 100);
    const Outcome outcome = apply(earn(10, 42, 1, month_start_us(month_of(t0_us) + 13)));
    EXPECT_EQ(view(42).lifetime_expired, 100);
    EXPECT_EQ(outcome.derived_count, 0u);
    EXPECT_TRUE(shard_.derived().empty());
}

TEST_F(SettlementTest, ACommandNamesWhatSettlingItsMemberDidInOrder) {
    enroll_with(42, 100);
    apply(hold(10, 42, 60, t0_us, t0_us + minute_us));
    apply(earn_pending(11, 42, 30, t0_us, t0_us + day_us));
    const Outcome outcome = apply(earn(12, 42, 5, expiry_of_january_us));
    ASSERT_EQ(outcome.result, Result::ok);
    EXPECT_EQ(outcome.available, 5);
    const std::vector<Record> records = settlements_of(outcome);
    ASSERT_EQ(records.size(), 3u);
    // The hold's 60 come back (40 + 60), the pending 30 arrive, then January's 130 expire.
    expect_record(records[0], Op::hold_timeout, 42, 60, t0_us + minute_us, 100, 10);
    expect_record(records[1], Op::pending_release, 42, 30, t0_us + day_us, 130);
    expect_record(records[2], Op::expire, 42, 130, expiry_of_january_us, 0);
    EXPECT_EQ(view(42).lifetime_expired, 130);
    expect_sound();
}

TEST_F(SettlementTest, HeldPointsThatExpiredAreNamedJustBeforeTheRelease) {
    hold_across_january_expiry();
    const Outcome released = apply(release(12, 42, 11, expiry_of_january_us + minute_us));
    ASSERT_EQ(released.result, Result::ok);
    const std::vector<Record> records = settlements_of(released);
    ASSERT_EQ(records.size(), 1u);
    // Out of the hold, so available (30) is as it was; the release then brings back 20.
    expect_record(records[0], Op::expire, 42, 100, expiry_of_january_us, 30, 11);
    EXPECT_EQ(released.available, 50);
}

TEST_F(SettlementTest, HoldsTimingOutTogetherAreOneRecordThatNamesNone) {
    enroll_with(42, 100);
    apply(hold(10, 42, 20, t0_us, t0_us + minute_us));
    apply(hold(11, 42, 30, t0_us, t0_us + 2 * minute_us));
    const Outcome outcome = apply(earn(12, 42, 1, t0_us + 3 * minute_us));
    const std::vector<Record> records = settlements_of(outcome);
    ASSERT_EQ(records.size(), 1u);
    expect_record(records[0], Op::hold_timeout, 42, 50, t0_us + 2 * minute_us, 100);
}

TEST_F(SettlementTest, ATickRecordsEveryMemberItSettledAndARefusalNothing) {
    enroll_with(1, 10);
    enroll_with(2, 20);
    const Outcome ticked = apply(tick(10, expiry_of_january_us));
    EXPECT_EQ(ticked.points, 2);
    const std::vector<Record> records = settlements_of(ticked);
    ASSERT_EQ(records.size(), 2u);
    expect_record(records[0], Op::expire, 1, 10, expiry_of_january_us, 0);
    expect_record(records[1], Op::expire, 2, 20, expiry_of_january_us, 0);

    // A refusal only previews what settling would do: nothing changes, nothing is recorded.
    enroll_with(3, 10);
    const TimeUs later = month_start_us(month_of(t0_us) + 26);
    const Outcome refused = apply(redeem(20, 3, 5, later));
    EXPECT_EQ(refused.result, Result::insufficient_points);
    EXPECT_EQ(refused.derived_count, 0u);
    EXPECT_TRUE(shard_.derived().empty());  // Each call starts the list afresh.
    EXPECT_EQ(view(3).lifetime_expired, 0);
}

TEST_F(SettlementTest, ABatchNamesEachCommandsOwnRecords) {
    enroll_with(1, 10);
    enroll_with(3, 30);
    const std::vector<Command> commands = {earn(10, 1, 1, expiry_of_january_us),
                                           enroll(11, 4, expiry_of_january_us),
                                           earn(12, 3, 1, expiry_of_january_us)};
    std::vector<Outcome> outcomes(commands.size());
    shard_.apply_batch(commands, outcomes);
    ASSERT_EQ(shard_.derived().size(), 2u);
    EXPECT_EQ(outcomes[0].derived_first, 0u);
    EXPECT_EQ(outcomes[0].derived_count, 1u);
    EXPECT_EQ(outcomes[1].derived_count, 0u);
    EXPECT_EQ(outcomes[2].derived_first, 1u);
    EXPECT_EQ(outcomes[2].derived_count, 1u);
    expect_record(settlements_of(outcomes[0])[0], Op::expire, 1, 10, expiry_of_january_us, 0);
    expect_record(settlements_of(outcomes[2])[0], Op::expire, 3, 30, expiry_of_january_us, 0);
}

TEST_F(SettlementTest, ATransferWithinTheShardSettlesBothMembersAndTellsTheReceiver) {
    enroll_with(42, 0);
    enroll_with(43, 20);
    apply(earn_pending(10, 42, 50, t0_us, t0_us + day_us));
    apply(hold(11, 43, 10, t0_us, t0_us + minute_us));
    const Outcome outcome = apply(transfer(12, 42, 43, 50, t0_us + 2 * day_us));
    ASSERT_EQ(outcome.result, Result::ok);
    const std::vector<Record> records = settlements_of(outcome);
    ASSERT_EQ(records.size(), 3u);
    expect_record(records[0], Op::pending_release, 42, 50, t0_us + day_us, 50);
    expect_record(records[1], Op::hold_timeout, 43, 10, t0_us + minute_us, 20, 11);
    // Last, the receiver's side of the transfer, for its history: who sent what, and its balance.
    const Record& received = records[2];
    EXPECT_EQ(received.command.op, Op::transfer_received);
    EXPECT_EQ(received.command.member_id, 43u);
    EXPECT_EQ(received.command.counterparty_id, 42u);
    EXPECT_EQ(received.command.txn_id, txn(12));
    EXPECT_EQ(received.applied_points, 50);
    EXPECT_EQ(received.available_after, 70);
    EXPECT_EQ(view(43).available, 70);
}

TEST_F(SettlementTest, AnUnknownOpIsRefusedAndASettlementRecordIsNeverApplied) {
    enroll_with(42, 100);
    Command settlement = make(Op::expire, 10, 42, 100, t0_us);
    expect_refused(settlement, Result::unknown_opcode);
}

}  // namespace
}  // namespace jifen::engine
