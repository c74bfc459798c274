// What shard threads send each other through their inboxes: requests to the shard that owns a
// member, and replies back to the shard that owns the client connection.
#pragma once

#include <cstdint>
#include <type_traits>
#include <variant>

#include "engine/command.hpp"
#include "engine/shard.hpp"

namespace jifen::server {

// Where an answer goes: an operation slot of a connection owned by origin_shard. The generation
// tells a reply for a connection that has since closed (and whose slot was reused) to drop.
struct OpRef {
    uint32_t connection_index = 0;
    uint32_t connection_generation = 0;
    uint32_t op_position = 0;  // Position in the connection's operation ring.
    uint32_t origin_shard = 0;
};
inline constexpr uint32_t no_connection = UINT32_MAX;  // A request no client waits for.

enum class RequestKind : uint8_t {
    apply,            // A client operation for a member of the receiving shard.
    balance,          // Shard::find of command.member_id.
    audit,            // Shard::audit of the whole receiving shard.
    transfer_credit,  // The credit leg of a cross-shard transfer; answered to the sender's shard.
};

struct Request {
    RequestKind kind = RequestKind::apply;
    uint32_t transfer_slot = 0;  // transfer_credit: the sender shard's in-flight transfer slot.
    uint64_t duration_us = 0;    // apply: Operation::duration_us, made until_us when stamped.
    OpRef ref;
    engine::Command command;  // apply, transfer_credit: the command; balance: member_id only.
};
static_assert(std::is_trivially_copyable_v<Request>);

struct BalanceAnswer {
    bool found = false;
    engine::MemberView view;
};

enum class ReplyKind : uint8_t {
    outcome,        // The outcome of an apply request (payload Outcome).
    balance,        // payload BalanceAnswer.
    audit,          // payload AuditReport.
    credit_result,  // The outcome of a transfer_credit (payload Outcome), for the sender's shard.
};

struct Reply {
    ReplyKind kind = ReplyKind::outcome;
    uint32_t transfer_slot = 0;
    OpRef ref;
    std::variant<engine::Outcome, BalanceAnswer, engine::AuditReport> payload;
};
static_assert(std::is_trivially_copyable_v<Reply>);

}  // namespace jifen::server
