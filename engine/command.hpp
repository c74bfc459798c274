// The engine's vocabulary: commands in, outcomes out, log records for the WAL.
// A command is the whole input of one state change; applying the same commands in the same order
// to the same state gives the same state, which is what recovery relies on.
#pragma once

#include <cstdint>
#include <type_traits>

#include "protocol/result.hpp"

namespace jifen::engine {

using MemberId = uint64_t;
using Points = int64_t;
using TimeUs = uint64_t;  // Microseconds since the Unix epoch, from the injected clock.

// Client-chosen 128-bit transaction id; zero is invalid.
struct TxnId {
    uint64_t lo = 0;
    uint64_t hi = 0;

    constexpr bool is_zero() const noexcept { return lo == 0 && hi == 0; }
    friend constexpr bool operator==(const TxnId&, const TxnId&) noexcept = default;
};

// Values are stored in the log: never renumber.
enum class Op : uint16_t {
    enroll = 1,         // Create a member, or no-op if it exists with the same attributes.
    update_member = 2,  // Set birthday, tier and status of an existing member.
    earn = 3,           // Add points; with until_us in the future they stay pending until then.
    redeem = 4,         // Spend available points, oldest lot first.
    hold = 5,           // Reserve points until captured, released or until_us passes.
    capture = 6,        // Spend all or part of a hold (ref_txn_id); the rest is released.
    release = 7,        // Return a hold's points to available.
    reverse = 8,        // Undo an earn, redeem or capture named by ref_txn_id.
    transfer = 9,       // Move points to counterparty_id; one shard applies both legs or
                        // the debit leg only (then transfer_credit follows on the other shard).
    adjust = 10,        // Admin correction: points > 0 credits, flag adjust_debit debits.
    // Internal commands: the server and recovery create these, never a client.
    transfer_credit = 32,  // Credit leg of a cross-shard transfer, applied on the target's shard.
    transfer_refund = 33,  // Returns a debit leg whose credit was refused (target missing/frozen).
    tick = 34,             // Advances the shard's time: expiry, hold timeouts, pending releases.
    transfer_confirm =
        35,  // The credit leg was applied: the sender's shard closes its in-flight leg.
    // Derived records: logged for members' histories only, never applied (the command logged
    // after them does the same again on replay, so recovery skips them); Shard::derived()
    // makes them. points = applied_points = the points moved, always positive.
    // Settlement records, what the clock did to one member: time_us = when the points fell due
    // (the latest, when several did); available_after = the member's available balance after
    // this step of its settlement.
    hold_timeout = 36,     // Open holds reached until_us: their points are available again.
                           // ref_txn_id: the hold, when exactly one timed out (else zero).
    pending_release = 37,  // Pending points reached their release time.
    expire = 38,           // Lots reached the end of their validity.
    // The receiver's side of a transfer applied within one shard (a cross-shard transfer has its
    // transfer_credit leg): txn_id, counterparty_id (the sender) and the attributes of the
    // transfer; available_after = the receiver's.
    transfer_received = 39,
};

// What the clock did to a member (Op::hold_timeout, pending_release, expire).
constexpr bool is_settlement(Op op) noexcept {
    return op == Op::hold_timeout || op == Op::pending_release || op == Op::expire;
}
// A derived record: for the history only, never applied.
constexpr bool is_derived(Op op) noexcept {
    return is_settlement(op) || op == Op::transfer_received;
}

enum class MemberStatus : uint8_t { active = 0, frozen = 1 };

// Command flags.
inline constexpr uint16_t adjust_debit = 1u << 0;  // Op::adjust takes points away.

// One state change request. Fixed size and trivially copyable: it is also the body of a log record.
struct Command {
    Op op = Op::tick;
    uint16_t flags = 0;
    uint8_t tier = 0;                            // enroll / update_member
    MemberStatus status = MemberStatus::active;  // enroll / update_member
    uint16_t reserved0 = 0;
    TxnId txn_id;                  // Idempotency key; zero only for Op::tick.
    TxnId ref_txn_id;              // capture/release: the hold; reverse: the transaction to undo.
    MemberId member_id = 0;        // The member whose shard applies this command.
    MemberId counterparty_id = 0;  // transfer: the receiving member; transfer_credit: the sender.
    Points points = 0;             // Requested points (capture: 0 means the whole hold).
    TimeUs time_us = 0;   // Stamped by the shard from its clock before apply; replay reuses it.
    TimeUs until_us = 0;  // earn: pending until; hold: expires at (0 = default hold timeout).
    uint32_t store_id = 0;
    uint32_t merchant_id = 0;
    uint32_t reason_code = 0;
    uint32_t birthday = 0;  // enroll / update_member: YYYYMMDD, 0 = unknown.
    uint64_t order_ref = 0;
};
static_assert(std::is_trivially_copyable_v<Command>);
static_assert(sizeof(Command) == 104);

// What apply() returns for one command.
struct Outcome {
    Result result = Result::ok;
    bool replayed = false;  // The txn id was applied before; this is the original outcome.
    Points points = 0;      // Points actually moved (reverse may move less than asked).
    // reverse: points that could not be clawed back; capture, release: held points that
    // expired as they came back.
    Points shortfall = 0;
    Points available = 0;  // Member balance after the command (0 when not found).
    Points held = 0;
    Points pending = 0;
    // The derived records this command made: Shard::derived()[first, first + count).
    uint32_t derived_first = 0;
    uint32_t derived_count = 0;
};

// A log record: an applied command and the facts of its outcome, 128 bytes. Only commands with
// Result::ok are logged; a refused command changes nothing and leaves no trace.
struct Record {
    Command command;
    Points applied_points = 0;   // Outcome::points.
    Points available_after = 0;  // Outcome::available, checked again on replay.
    uint32_t shard_index = 0;    // The shard that applied it (ticks name no member).
    uint32_t flags = 0;          // record_flag_*.
};

// Record flags. A transfer within one shard whose receiver has its own Op::transfer_received
// record: the log files it under the sender only (records written before that record existed
// lack the flag and are filed under both).
inline constexpr uint32_t record_flag_receiver_apart = 1u << 0;
static_assert(std::is_trivially_copyable_v<Record>);
static_assert(sizeof(Record) == 128);

}  // namespace jifen::engine
