// Conversions between the wire and the engine, field by field (see dispatch.hpp).
#include "server/dispatch.hpp"

#include <algorithm>
#include <limits>

namespace jifen::server {

using protocol::Opcode;

std::optional<engine::Op> op_of(Opcode opcode) noexcept {
    switch (opcode) {
        case Opcode::enroll:
            return engine::Op::enroll;
        case Opcode::update_member:
            return engine::Op::update_member;
        case Opcode::earn:
            return engine::Op::earn;
        case Opcode::redeem:
            return engine::Op::redeem;
        case Opcode::hold:
            return engine::Op::hold;
        case Opcode::capture:
            return engine::Op::capture;
        case Opcode::release:
            return engine::Op::release;
        case Opcode::reverse:
            return engine::Op::reverse;
        case Opcode::transfer:
            return engine::Op::transfer;
        case Opcode::adjust:
            return engine::Op::adjust;
        case Opcode::hello:
        case Opcode::ping:
        case Opcode::balance:
        case Opcode::history:
        case Opcode::audit:
        case Opcode::stats:
        case Opcode::error:
            return std::nullopt;
    }
    return std::nullopt;
}

Result check_hello(const protocol::HelloRequest& hello, uint32_t shard_count) noexcept {
    if (hello.protocol_version != protocol::protocol_version) {
        return Result::bad_version;
    }
    if ((hello.flags & ~protocol::hello_flags_known) != 0) {
        return Result::reserved_not_zero;
    }
    if ((hello.flags & protocol::hello_flag_shard) != 0 && hello.shard >= shard_count) {
        return Result::field_out_of_range;
    }
    return Result::ok;
}

Result check_history(const protocol::HistoryRequest& request) noexcept {
    if (request.reserved != 0) {
        return Result::reserved_not_zero;
    }
    if (request.member_id == 0) {
        return Result::member_id_zero;
    }
    if (request.limit == 0 || request.limit > protocol::history_entries_max) {
        return Result::field_out_of_range;
    }
    return Result::ok;
}

Result check_operation(Opcode opcode, const protocol::Operation& operation) noexcept {
    if (operation.reserved0 != 0 ||
        std::any_of(std::begin(operation.reserved), std::end(operation.reserved),
                    [](uint8_t byte) { return byte != 0; })) {
        return Result::reserved_not_zero;
    }
    const uint16_t flags_allowed = opcode == Opcode::adjust ? engine::adjust_debit : 0;
    if ((operation.flags & ~flags_allowed) != 0) {
        return Result::reserved_not_zero;
    }
    if (operation.status > static_cast<uint8_t>(engine::MemberStatus::frozen)) {
        return Result::field_out_of_range;
    }
    return Result::ok;
}

engine::Command to_command(engine::Op op, const protocol::Operation& operation) noexcept {
    engine::Command command;
    command.op = op;
    command.flags = operation.flags;
    command.tier = operation.tier;
    command.status = static_cast<engine::MemberStatus>(operation.status);
    command.txn_id = {operation.txn_id_lo, operation.txn_id_hi};
    command.ref_txn_id = {operation.ref_txn_id_lo, operation.ref_txn_id_hi};
    command.member_id = operation.member_id;
    command.counterparty_id = operation.counterparty_id;
    command.points = operation.points;
    command.store_id = operation.store_id;
    command.merchant_id = operation.merchant_id;
    command.reason_code = operation.reason_code;
    command.birthday = operation.birthday;
    command.order_ref = operation.order_ref;
    return command;
}

Result stamp(engine::Command* command, engine::TimeUs time_us, uint64_t duration_us) noexcept {
    command->time_us = time_us;
    command->until_us = 0;
    const bool timed = command->op == engine::Op::earn || command->op == engine::Op::hold;
    if (duration_us == 0 || !timed) {  // Unused elsewhere, so never checked (docs/protocol.md).
        return Result::ok;
    }
    if (duration_us > std::numeric_limits<engine::TimeUs>::max() - time_us) {
        return Result::field_out_of_range;
    }
    command->until_us = time_us + duration_us;
    return Result::ok;
}

protocol::OperationReply to_reply(const engine::Outcome& outcome) noexcept {
    protocol::OperationReply reply;
    reply.result = static_cast<uint32_t>(outcome.result);
    reply.flags = outcome.replayed ? protocol::reply_flag_replayed : 0;
    reply.points = outcome.points;
    reply.shortfall = outcome.shortfall;
    reply.available = outcome.available;
    reply.held = outcome.held;
    reply.pending = outcome.pending;
    return reply;
}

protocol::OperationReply refusal(Result result) noexcept {
    protocol::OperationReply reply;
    reply.result = static_cast<uint32_t>(result);
    return reply;
}

protocol::BalanceReply to_balance_reply(const engine::MemberView& view) noexcept {
    protocol::BalanceReply reply;
    reply.result = static_cast<uint32_t>(Result::ok);
    reply.tier = view.tier;
    reply.status = static_cast<uint8_t>(view.status);
    reply.member_id = view.member_id;
    reply.available = view.available;
    reply.held = view.held;
    reply.pending = view.pending;
    reply.lifetime_earned = view.lifetime_earned;
    reply.lifetime_redeemed = view.lifetime_redeemed;
    reply.lifetime_expired = view.lifetime_expired;
    reply.lifetime_reversed = view.lifetime_reversed;
    reply.growth = view.growth;
    reply.last_purchase_us = view.last_purchase_us;
    reply.last_activity_us = view.last_activity_us;
    reply.birthday = view.birthday;
    return reply;
}

protocol::BalanceReply balance_refusal(engine::MemberId member_id, Result result) noexcept {
    protocol::BalanceReply reply;
    reply.result = static_cast<uint32_t>(result);
    reply.member_id = member_id;
    return reply;
}

protocol::HistoryEntry to_history_entry(uint64_t seq, const engine::Record& record) noexcept {
    const engine::Command& command = record.command;
    protocol::HistoryEntry entry;
    entry.seq = seq;
    entry.time_us = command.time_us;
    entry.txn_id_lo = command.txn_id.lo;
    entry.txn_id_hi = command.txn_id.hi;
    entry.ref_txn_id_lo = command.ref_txn_id.lo;
    entry.ref_txn_id_hi = command.ref_txn_id.hi;
    entry.counterparty_id = command.counterparty_id;
    entry.points = command.points;
    entry.applied_points = record.applied_points;
    entry.available_after = record.available_after;
    entry.order_ref = command.order_ref;
    entry.store_id = command.store_id;
    entry.merchant_id = command.merchant_id;
    entry.reason_code = command.reason_code;
    // The receiver of a transfer within one shard reads as the credit leg of one across shards.
    entry.op = static_cast<uint16_t>(
        command.op == engine::Op::transfer_received ? engine::Op::transfer_credit : command.op);
    return entry;
}

void merge_audit(engine::AuditReport* sum, const engine::AuditReport& shard_report) noexcept {
    sum->ok = sum->ok && shard_report.ok;
    sum->negative_balances += shard_report.negative_balances;
    sum->bad_members += shard_report.bad_members;
    sum->totals += shard_report.totals;
}

protocol::AuditReply to_audit_reply(const engine::AuditReport& sum) noexcept {
    const engine::Totals& totals = sum.totals;
    protocol::AuditReply reply;
    reply.result = static_cast<uint32_t>(Result::ok);
    reply.ok = sum.ok && sum.bad_members == 0 && totals.conserves() ? 1 : 0;
    reply.members = totals.members;
    reply.open_holds = totals.open_holds;
    reply.negative_balances = sum.negative_balances;
    reply.available = totals.available;
    reply.held = totals.held;
    reply.pending = totals.pending;
    reply.earned = totals.earned;
    reply.redeemed = totals.redeemed;
    reply.expired = totals.expired;
    reply.reversed = totals.reversed;
    reply.adjusted_in = totals.adjusted_in;
    reply.adjusted_out = totals.adjusted_out;
    reply.transfers_in_flight = totals.transfer_out - totals.transfer_in;
    return reply;
}

size_t reply_item_bytes(Opcode opcode) noexcept {
    if (opcode == Opcode::balance) {
        return sizeof(protocol::BalanceReply);
    }
    if (opcode == Opcode::audit) {
        return sizeof(protocol::AuditReply);
    }
    return sizeof(protocol::OperationReply);
}

}  // namespace jifen::server
