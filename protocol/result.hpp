// Result codes: every outcome of every request, business refusals and protocol errors alike.
// The numbers are part of the wire format (docs/protocol.md): never renumber, never reuse.
#pragma once

#include <cstdint>
#include <string_view>

namespace jifen {

// One precise value per reason. A refused operation is a business outcome, not an error: it
// changes nothing and the client decides what to do (docs/protocol.md says, per code, whether a
// retry with the same transaction id can succeed).
enum class Result : uint32_t {
    ok = 0,

    // Request shape (1-99): the request itself is wrong; retrying it unchanged fails the same way.
    txn_id_zero = 1,          // A mutating operation needs a non-zero 128-bit transaction id.
    member_id_zero = 2,       // Member id 0 is reserved.
    points_not_positive = 3,  // Points must be > 0.
    points_too_large = 4,     // Points above points_per_op_max.
    field_out_of_range = 5,   // Another field is outside its documented range.
    transfer_to_self = 6,     // Transfer source and target are the same member.
    unknown_opcode = 7,       // Opcode not defined in this protocol version.
    bad_body_length = 8,      // Body length does not match the opcode's layout and count.
    batch_too_large = 9,      // More operations in one frame than batch_ops_max.
    reserved_not_zero = 10,   // A reserved field or flag bit is set.

    // Business outcomes (100-199): depend on ledger state; may succeed later.
    member_not_found = 100,
    member_exists = 101,         // Enroll of a member that exists with different attributes.
    member_frozen = 102,         // Frozen members cannot earn, redeem, hold or transfer.
    insufficient_points = 103,   // Available balance is lower than requested; nothing changed.
    id_conflict = 104,           // Transaction id already used for a different operation.
    hold_not_found = 105,        // No hold with that transaction id.
    hold_closed = 106,           // Hold was already captured, released or timed out.
    capture_exceeds_hold = 107,  // Capture asks for more points than the hold reserves.
    txn_not_found = 108,         // Reverse names a transaction id the ledger never applied.
    txn_not_reversible = 109,    // Only earn, redeem and capture can be reversed.
    already_reversed = 110,      // That transaction was reversed before.
    balance_limit = 111,         // Result would exceed points_balance_max.
    member_limit = 112,          // Shard member table is full (members_per_shard_max).
    hold_limit = 113,            // Shard hold table is full (holds_per_shard_max).
    txn_limit = 114,             // No memory for another transaction id (memory_max_bytes).
    lot_limit = 115,             // Shard point-lot pool is full (lots_per_shard_max).
    member_hold_limit = 116,     // The member has holds_per_member_max open holds.
    member_lot_limit = 117,      // The member has pending_lots_per_member_max pending lots.

    // Session and server (200-299): about the connection or the server, not the ledger.
    not_authenticated = 200,  // First frame must be HELLO.
    auth_failed = 201,        // Unknown API key; the connection is closed.
    forbidden = 202,          // The key's scope does not allow this operation.
    busy = 203,               // A queue is full; retry later with the same transaction id.
    storage_full = 204,       // The log cannot grow; writes are refused, reads still work.
    shutting_down = 205,      // The server is stopping; retry elsewhere or later.
    internal_error = 206,     // A bug; reported, nothing applied.
    storage_error = 207,      // The log write failed; nothing applied, retry later.
    in_progress = 208,        // That transaction id is still being applied (a transfer across
                              // shards); retry later with the same id for its final outcome.

    // Framing (300-399): the byte stream cannot be trusted; the server closes the connection.
    bad_magic = 300,
    bad_version = 301,
    bad_header_checksum = 302,
    bad_body_checksum = 303,
    frame_too_large = 304,
};

constexpr std::string_view to_string(Result result) noexcept {
    switch (result) {
        case Result::ok:
            return "ok";
        case Result::txn_id_zero:
            return "txn_id_zero";
        case Result::member_id_zero:
            return "member_id_zero";
        case Result::points_not_positive:
            return "points_not_positive";
        case Result::points_too_large:
            return "points_too_large";
        case Result::field_out_of_range:
            return "field_out_of_range";
        case Result::transfer_to_self:
            return "transfer_to_self";
        case Result::unknown_opcode:
            return "unknown_opcode";
        case Result::bad_body_length:
            return "bad_body_length";
        case Result::batch_too_large:
            return "batch_too_large";
        case Result::reserved_not_zero:
            return "reserved_not_zero";
        case Result::member_not_found:
            return "member_not_found";
        case Result::member_exists:
            return "member_exists";
        case Result::member_frozen:
            return "member_frozen";
        case Result::insufficient_points:
            return "insufficient_points";
        case Result::id_conflict:
            return "id_conflict";
        case Result::hold_not_found:
            return "hold_not_found";
        case Result::hold_closed:
            return "hold_closed";
        case Result::capture_exceeds_hold:
            return "capture_exceeds_hold";
        case Result::txn_not_found:
            return "txn_not_found";
        case Result::txn_not_reversible:
            return "txn_not_reversible";
        case Result::already_reversed:
            return "already_reversed";
        case Result::balance_limit:
            return "balance_limit";
        case Result::member_limit:
            return "member_limit";
        case Result::hold_limit:
            return "hold_limit";
        case Result::txn_limit:
            return "txn_limit";
        case Result::lot_limit:
            return "lot_limit";
        case Result::member_hold_limit:
            return "member_hold_limit";
        case Result::member_lot_limit:
            return "member_lot_limit";
        case Result::not_authenticated:
            return "not_authenticated";
        case Result::auth_failed:
            return "auth_failed";
        case Result::forbidden:
            return "forbidden";
        case Result::busy:
            return "busy";
        case Result::storage_full:
            return "storage_full";
        case Result::shutting_down:
            return "shutting_down";
        case Result::internal_error:
            return "internal_error";
        case Result::storage_error:
            return "storage_error";
        case Result::in_progress:
            return "in_progress";
        case Result::bad_magic:
            return "bad_magic";
        case Result::bad_version:
            return "bad_version";
        case Result::bad_header_checksum:
            return "bad_header_checksum";
        case Result::bad_body_checksum:
            return "bad_body_checksum";
        case Result::frame_too_large:
            return "frame_too_large";
    }
    return "unknown_result";
}

// True for codes after which the server closes the connection.
constexpr bool is_framing_error(Result result) noexcept {
    return static_cast<uint32_t>(result) >= 300 || result == Result::auth_failed;
}

}  // namespace jifen
