// The wire <-> engine conversions (server/dispatch.cpp): every field lands where it belongs.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "server/dispatch.hpp"

namespace jifen::server {
namespace {

using protocol::Opcode;

TEST(Dispatch, AnOperationBecomesACommandFieldByField) {
    protocol::Operation op;
    op.txn_id_lo = 1;
    op.txn_id_hi = 2;
    op.ref_txn_id_lo = 3;
    op.ref_txn_id_hi = 4;
    op.member_id = 5;
    op.counterparty_id = 6;
    op.points = 7;
    op.order_ref = 8;
    op.store_id = 9;
    op.merchant_id = 10;
    op.reason_code = 11;
    op.birthday = 20260101;
    op.tier = 3;
    op.status = 1;
    op.flags = engine::adjust_debit;
    ASSERT_EQ(check_operation(Opcode::adjust, op), Result::ok);
    const engine::Command command = to_command(engine::Op::adjust, op);
    EXPECT_EQ(command.op, engine::Op::adjust);
    EXPECT_EQ(command.txn_id, (engine::TxnId{1, 2}));
    EXPECT_EQ(command.ref_txn_id, (engine::TxnId{3, 4}));
    EXPECT_EQ(command.member_id, 5u);
    EXPECT_EQ(command.counterparty_id, 6u);
    EXPECT_EQ(command.points, 7);
    EXPECT_EQ(command.order_ref, 8u);
    EXPECT_EQ(command.store_id, 9u);
    EXPECT_EQ(command.merchant_id, 10u);
    EXPECT_EQ(command.reason_code, 11u);
    EXPECT_EQ(command.birthday, 20260101u);
    EXPECT_EQ(command.tier, 3);
    EXPECT_EQ(command.status, engine::MemberStatus::frozen);
    EXPECT_EQ(command.flags, engine::adjust_debit);
    EXPECT_EQ(command.time_us, 0u);  // Stamped later, by the applying shard.
}

TEST(Dispatch, ReservedBytesFlagsOutsideAdjustAndUnknownStatusAreRefused) {
    protocol::Operation op;
    op.reserved[31] = 1;
    EXPECT_EQ(check_operation(Opcode::earn, op), Result::reserved_not_zero);
    op = protocol::Operation{};
    op.reserved0 = 1;
    EXPECT_EQ(check_operation(Opcode::earn, op), Result::reserved_not_zero);
    op = protocol::Operation{};
    op.flags = engine::adjust_debit;
    EXPECT_EQ(check_operation(Opcode::earn, op), Result::reserved_not_zero);
    op = protocol::Operation{};
    op.status = 2;
    EXPECT_EQ(check_operation(Opcode::enroll, op), Result::field_out_of_range);
}

TEST(Dispatch, StampingTurnsADurationIntoAnAbsoluteTimeAndRefusesOverflow) {
    engine::Command command;
    command.op = engine::Op::hold;
    EXPECT_EQ(stamp(&command, 1'000, 0), Result::ok);
    EXPECT_EQ(command.time_us, 1'000u);
    EXPECT_EQ(command.until_us, 0u);  // 0 keeps its meaning: available now / default timeout.
    EXPECT_EQ(stamp(&command, 1'000, 500), Result::ok);
    EXPECT_EQ(command.until_us, 1'500u);
    EXPECT_EQ(stamp(&command, 1'000, std::numeric_limits<uint64_t>::max()),
              Result::field_out_of_range);
    // Only earn and hold read duration_us; on any other opcode it is neither used nor checked.
    command.op = engine::Op::redeem;
    EXPECT_EQ(stamp(&command, 1'000, std::numeric_limits<uint64_t>::max()), Result::ok);
    EXPECT_EQ(command.until_us, 0u);
}

TEST(Dispatch, AnOutcomeBecomesAReplyWithTheReplayedFlag) {
    engine::Outcome outcome;
    outcome.result = Result::ok;
    outcome.replayed = true;
    outcome.points = 5;
    outcome.shortfall = 1;
    outcome.available = 10;
    outcome.held = 2;
    outcome.pending = 3;
    const protocol::OperationReply reply = to_reply(outcome);
    EXPECT_EQ(reply.result, 0u);
    EXPECT_EQ(reply.flags, protocol::reply_flag_replayed);
    EXPECT_EQ(reply.points, 5);
    EXPECT_EQ(reply.shortfall, 1);
    EXPECT_EQ(reply.available, 10);
    EXPECT_EQ(reply.held, 2);
    EXPECT_EQ(reply.pending, 3);
}

TEST(Dispatch, AuditSumsShardsAndIsOkOnlyWhenEveryShardIs) {
    engine::AuditReport sum;
    engine::AuditReport shard;
    shard.totals.members = 2;
    shard.totals.earned = 100;
    shard.totals.available = 100;
    merge_audit(&sum, shard);
    merge_audit(&sum, shard);
    protocol::AuditReply reply = to_audit_reply(sum);
    EXPECT_EQ(reply.ok, 1u);
    EXPECT_EQ(reply.members, 4u);
    EXPECT_EQ(reply.available, 200);
    shard.ok = false;
    merge_audit(&sum, shard);
    EXPECT_EQ(to_audit_reply(sum).ok, 0u);
}

}  // namespace
}  // namespace jifen::server
