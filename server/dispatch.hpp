// The one place where wire structs (protocol/) and engine types meet: operations become commands,
// outcomes and views become replies, log records become history entries. Field by field.
#pragma once

#include <cstdint>
#include <optional>

#include "engine/command.hpp"
#include "engine/shard.hpp"
#include "protocol/wire.hpp"

namespace jifen::server {

// The engine operation a mutating opcode names; nullopt for opcodes that are not mutations.
std::optional<engine::Op> op_of(protocol::Opcode opcode) noexcept;

// Checks what the engine cannot see: reserved bytes, flag bits and enumerations of the wire
// struct. ok, reserved_not_zero or field_out_of_range; the operation is then not applied.
Result check_operation(protocol::Opcode opcode, const protocol::Operation& operation) noexcept;

// A HELLO's fields, in the order the server answers them: bad_version (then the connection is
// closed), reserved_not_zero for unknown flags, field_out_of_range for a shard at or past
// shard_count; ok leaves the key to check.
Result check_hello(const protocol::HelloRequest& hello, uint32_t shard_count) noexcept;

// A history request's fields: reserved_not_zero, member_id_zero, or field_out_of_range for a
// limit outside 1..history_entries_max.
Result check_history(const protocol::HistoryRequest& request) noexcept;

// The command for a checked operation. time_us and until_us are left 0: the applying shard stamps
// them from its clock (stamp()), because only it knows when the command really applies.
engine::Command to_command(engine::Op op, const protocol::Operation& operation) noexcept;

// Stamps the time and turns a relative duration into the absolute until_us the engine expects
// (earn: pending until; hold: timeout; 0 stays 0, meaning "available now" / "default timeout").
// field_out_of_range when time_us + duration_us does not fit. Other opcodes ignore duration_us.
Result stamp(engine::Command* command, engine::TimeUs time_us, uint64_t duration_us) noexcept;

protocol::OperationReply to_reply(const engine::Outcome& outcome) noexcept;
protocol::OperationReply refusal(Result result) noexcept;
protocol::BalanceReply to_balance_reply(const engine::MemberView& view) noexcept;
protocol::BalanceReply balance_refusal(engine::MemberId member_id, Result result) noexcept;
protocol::HistoryEntry to_history_entry(uint64_t seq, const engine::Record& record) noexcept;

// Adds one shard's audit to a running ledger-wide sum.
void merge_audit(engine::AuditReport* sum, const engine::AuditReport& shard_report) noexcept;
// The wire form of a ledger-wide sum; ok only if every shard was ok and the sum conserves.
protocol::AuditReply to_audit_reply(const engine::AuditReport& sum) noexcept;

// Wire size of one reply item for a request opcode (OperationReply, BalanceReply or AuditReply).
size_t reply_item_bytes(protocol::Opcode opcode) noexcept;

}  // namespace jifen::server
