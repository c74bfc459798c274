// The jifen binary protocol, version 1: frame header, opcodes, bodies and limits.
// This header is the one definition of the wire; docs/protocol.md is its prose twin and says
// the same thing byte for byte. Server and client both include it; nothing else defines a byte.
//
// Every integer is little-endian. Every struct here is exactly its wire image (no padding, checked
// by static_assert), so a frame is read by memcpy into these structs on little-endian machines.
//
// A frame is a 32-byte FrameHeader followed by body_bytes of body. Requests carry `count`
// operations of one opcode (a batch); the reply frame echoes opcode and request_id, sets
// flag_response, and carries `count` replies in the same order. Replies on one connection may come
// back in any order; match them by request_id.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "protocol/crc32c.hpp"
#include "protocol/result.hpp"

namespace jifen::protocol {

static_assert(std::endian::native == std::endian::little,
              "the wire structs are memcpy'd: port the codec before building on big-endian");

inline constexpr uint32_t frame_magic = 0x4E46494Au;  // The bytes "JIFN".
inline constexpr uint16_t protocol_version = 1;

// ---------------------------------------------------------------------------------------------
// Limits. The HELLO reply repeats them so clients need not hard-code them.

// Operations in one request frame. The reply to a full batch must fit in one frame too.
inline constexpr uint32_t batch_ops_max = 8'192;
// Largest body in either direction; a larger body_bytes closes the connection (frame_too_large).
inline constexpr uint32_t body_bytes_max = 1u << 20;
// History entries one request may ask for.
inline constexpr uint32_t history_entries_max = 1'000;

// ---------------------------------------------------------------------------------------------
// Frame header.

inline constexpr uint16_t flag_response = 1u << 0;  // Set by the server on every frame it sends.
inline constexpr uint16_t flags_known = flag_response;

struct FrameHeader {
    uint32_t magic = frame_magic;
    uint16_t version = protocol_version;
    uint16_t opcode = 0;
    uint64_t request_id = 0;  // Chosen by the client, echoed in the reply.
    uint32_t body_bytes = 0;
    uint16_t count = 0;  // Operations (requests) or replies in the body.
    uint16_t flags = 0;
    uint32_t body_crc32c = 0;    // CRC32C of the body bytes (0 for an empty body).
    uint32_t header_crc32c = 0;  // CRC32C of the 28 header bytes before this field.
};
static_assert(sizeof(FrameHeader) == 32);
static_assert(std::has_unique_object_representations_v<FrameHeader>);
inline constexpr size_t frame_header_bytes = sizeof(FrameHeader);
inline constexpr size_t frame_bytes_max = frame_header_bytes + body_bytes_max;

// ---------------------------------------------------------------------------------------------
// Opcodes. Numbers are wire-stable.

enum class Opcode : uint16_t {
    hello = 1,  // HelloRequest -> HelloReply. Must be the first frame; count = 1.
    ping = 2,   // empty -> PingReply. count = 1.
    // Mutating operations: body = count x Operation, reply = count x OperationReply.
    enroll = 10,
    update_member = 11,
    earn = 12,
    redeem = 13,
    hold = 14,
    capture = 15,
    release = 16,
    reverse = 17,
    transfer = 18,
    adjust = 19,
    // Queries.
    balance = 30,  // count x BalanceRequest -> count x BalanceReply.
    history = 31,  // HistoryRequest (count = 1) -> HistoryReplyHeader + n x HistoryEntry.
    // Administration.
    audit = 40,      // empty (count = 1) -> AuditReply.
    stats = 41,      // empty (count = 1) -> StatsReply.
    error = 0xFFFF,  // Server only: ErrorReply; the request could not be handled as a whole.
};

constexpr bool is_mutation(Opcode opcode) noexcept {
    const auto value = static_cast<uint16_t>(opcode);
    return value >= 10 && value <= 19;
}

constexpr std::string_view to_string(Opcode opcode) noexcept {
    switch (opcode) {
        case Opcode::hello:
            return "hello";
        case Opcode::ping:
            return "ping";
        case Opcode::enroll:
            return "enroll";
        case Opcode::update_member:
            return "update_member";
        case Opcode::earn:
            return "earn";
        case Opcode::redeem:
            return "redeem";
        case Opcode::hold:
            return "hold";
        case Opcode::capture:
            return "capture";
        case Opcode::release:
            return "release";
        case Opcode::reverse:
            return "reverse";
        case Opcode::transfer:
            return "transfer";
        case Opcode::adjust:
            return "adjust";
        case Opcode::balance:
            return "balance";
        case Opcode::history:
            return "history";
        case Opcode::audit:
            return "audit";
        case Opcode::stats:
            return "stats";
        case Opcode::error:
            return "error";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Scopes: what an API key may do. A key's scope is a set of these bits.

enum Scope : uint32_t {
    scope_read = 1u << 0,   // ping, balance, history
    scope_pos = 1u << 1,    // earn, redeem, hold, capture, release
    scope_admin = 1u << 2,  // everything: enroll, update_member, reverse, transfer, adjust,
                            // audit, stats and the admin HTTP API
};

// The scope bit an opcode requires. hello needs none.
constexpr uint32_t scope_required(Opcode opcode) noexcept {
    switch (opcode) {
        case Opcode::hello:
            return 0;
        case Opcode::ping:
        case Opcode::balance:
        case Opcode::history:
            return scope_read | scope_pos | scope_admin;
        case Opcode::earn:
        case Opcode::redeem:
        case Opcode::hold:
        case Opcode::capture:
        case Opcode::release:
            return scope_pos | scope_admin;
        case Opcode::enroll:
        case Opcode::update_member:
        case Opcode::reverse:
        case Opcode::transfer:
        case Opcode::adjust:
        case Opcode::audit:
        case Opcode::stats:
        case Opcode::error:
            return scope_admin;
    }
    return scope_admin;
}

// ---------------------------------------------------------------------------------------------
// Bodies.

// HelloRequest::flags: serve this connection on HelloRequest::shard (see shard_of).
inline constexpr uint16_t hello_flag_shard = 1u << 0;
inline constexpr uint16_t hello_flags_known = hello_flag_shard;

struct HelloRequest {
    uint32_t protocol_version = jifen::protocol::protocol_version;
    uint16_t flags = 0;
    uint16_t shard = 0;         // With hello_flag_shard: the shard wanted; below shard_count.
    char client_name[32] = {};  // UTF-8, NUL-padded; for logs and stats.
    char api_key[64] = {};      // The secret, NUL-padded. Never logged.
};
static_assert(sizeof(HelloRequest) == 104);

struct HelloReply {
    uint32_t result = 0;  // Result::ok, or auth_failed / bad_version (then the server closes).
    uint32_t protocol_version = jifen::protocol::protocol_version;
    uint32_t scope = 0;  // The key's Scope bits.
    uint32_t shard_count = 0;
    uint32_t batch_ops_max = jifen::protocol::batch_ops_max;
    uint32_t body_bytes_max = jifen::protocol::body_bytes_max;
    uint64_t server_time_us = 0;
    uint32_t shard = 0;  // The shard serving this connection.
    char server_name[28] = {};
};
static_assert(sizeof(HelloReply) == 64);

// The shard that owns a member, of shard_count: splitmix64's finalizer of the id, then its high
// 32 bits scaled to the count. A client that sends each member's operations on a connection
// served by that member's shard (hello_flag_shard) saves the server a hand-off between threads.
constexpr uint32_t shard_of(uint64_t member_id, uint32_t shard_count) noexcept {
    uint64_t mixed = member_id;
    mixed ^= mixed >> 30;
    mixed *= 0xBF58476D1CE4E5B9ull;
    mixed ^= mixed >> 27;
    mixed *= 0x94D049BB133111EBull;
    mixed ^= mixed >> 31;
    return static_cast<uint32_t>(((mixed >> 32) * shard_count) >> 32);
}

struct PingReply {
    uint64_t server_time_us = 0;
};
static_assert(sizeof(PingReply) == 8);

// One mutating operation. Which fields matter depends on the opcode (docs/protocol.md has the
// table); unused fields and every reserved byte must be zero.
struct Operation {
    uint64_t txn_id_lo = 0;  // 128-bit transaction id, non-zero: the idempotency key.
    uint64_t txn_id_hi = 0;
    uint64_t ref_txn_id_lo = 0;  // capture/release: the hold's txn id; reverse: the txn to undo.
    uint64_t ref_txn_id_hi = 0;
    uint64_t member_id = 0;        // Non-zero. capture/release/reverse: 0 lets the server find it.
    uint64_t counterparty_id = 0;  // transfer: the receiving member.
    int64_t points = 0;            // 1..10^12. capture: 0 = the whole hold. enroll/update: 0.
    uint64_t duration_us = 0;      // earn: pending this long; hold: timeout (0 = default).
    uint64_t order_ref = 0;
    uint32_t store_id = 0;
    uint32_t merchant_id = 0;
    uint32_t reason_code = 0;
    uint32_t birthday = 0;  // enroll/update_member: YYYYMMDD or 0.
    uint8_t tier = 0;       // enroll/update_member.
    uint8_t status = 0;     // enroll/update_member: 0 active, 1 frozen.
    uint16_t flags = 0;     // adjust: bit 0 = debit.
    uint32_t reserved0 = 0;
    uint8_t reserved[32] = {};
};
static_assert(sizeof(Operation) == 128);
static_assert(std::has_unique_object_representations_v<Operation>);

inline constexpr uint32_t reply_flag_replayed = 1u << 0;  // Txn id seen before: original result.

struct OperationReply {
    uint32_t result = 0;  // Result
    uint32_t flags = 0;   // reply_flag_*
    int64_t points = 0;   // Points moved (hold/capture: amount; reverse: clawed back).
    // reverse: points that could not be clawed back; capture, release: held points that
    // expired as they came back (their month's validity ended while they were held).
    int64_t shortfall = 0;
    int64_t available = 0;  // Balances after the operation.
    int64_t held = 0;
    int64_t pending = 0;
};
static_assert(sizeof(OperationReply) == 48);

struct BalanceRequest {
    uint64_t member_id = 0;
};
static_assert(sizeof(BalanceRequest) == 8);

struct BalanceReply {
    uint32_t result = 0;  // ok or member_not_found
    uint8_t tier = 0;
    uint8_t status = 0;
    uint16_t reserved0 = 0;
    uint64_t member_id = 0;
    int64_t available = 0;
    int64_t held = 0;
    int64_t pending = 0;
    int64_t lifetime_earned = 0;
    int64_t lifetime_redeemed = 0;
    int64_t lifetime_expired = 0;
    int64_t lifetime_reversed = 0;
    int64_t growth = 0;
    uint64_t last_purchase_us = 0;
    uint64_t last_activity_us = 0;
    uint32_t birthday = 0;
    uint32_t reserved1 = 0;
};
static_assert(sizeof(BalanceReply) == 104);

struct HistoryRequest {
    uint64_t member_id = 0;
    uint64_t before_seq = 0;  // Entries with seq < before_seq; 0 = from the newest.
    uint32_t limit = 0;       // 1..history_entries_max.
    uint32_t reserved = 0;
};
static_assert(sizeof(HistoryRequest) == 24);

struct HistoryReplyHeader {
    uint32_t result = 0;           // ok or member_not_found
    uint32_t count = 0;            // HistoryEntry records that follow, newest first.
    uint64_t next_before_seq = 0;  // Pass as before_seq for the next page; 0 = no more.
};
static_assert(sizeof(HistoryReplyHeader) == 16);

struct HistoryEntry {
    uint64_t seq = 0;  // Ledger-wide log sequence: increases with time.
    uint64_t time_us = 0;
    uint64_t txn_id_lo = 0;
    uint64_t txn_id_hi = 0;
    uint64_t ref_txn_id_lo = 0;
    uint64_t ref_txn_id_hi = 0;
    uint64_t counterparty_id = 0;
    int64_t points = 0;          // Requested.
    int64_t applied_points = 0;  // Actually moved.
    int64_t available_after = 0;
    uint64_t order_ref = 0;
    uint32_t store_id = 0;
    uint32_t merchant_id = 0;
    uint32_t reason_code = 0;
    uint16_t op = 0;  // engine Op number (docs/protocol.md lists them).
    uint16_t reserved = 0;
};
static_assert(sizeof(HistoryEntry) == 104);

struct AuditReply {
    uint32_t result = 0;
    uint32_t ok = 0;  // 1 when every invariant holds.
    uint64_t members = 0;
    uint64_t open_holds = 0;
    uint64_t negative_balances = 0;
    int64_t available = 0;
    int64_t held = 0;
    int64_t pending = 0;
    int64_t earned = 0;
    int64_t redeemed = 0;
    int64_t expired = 0;
    int64_t reversed = 0;
    int64_t adjusted_in = 0;
    int64_t adjusted_out = 0;
    int64_t transfers_in_flight = 0;
};
static_assert(sizeof(AuditReply) == 112);

struct StatsReply {
    uint32_t result = 0;
    uint32_t shard_count = 0;
    uint64_t uptime_us = 0;
    uint64_t connections = 0;
    uint64_t operations = 0;  // Operations handled since start.
    uint64_t operations_refused = 0;
    uint64_t log_records = 0;    // Durable log records written since start.
    uint64_t log_commits = 0;    // Group commits since start.
    uint64_t log_bytes = 0;      // Bytes of the LMDB map in use.
    uint64_t log_map_bytes = 0;  // Current map size.
};
static_assert(sizeof(StatsReply) == 72);

struct ErrorReply {
    uint32_t result = 0;         // Why the frame as a whole was refused.
    uint32_t message_bytes = 0;  // UTF-8 text that follows (no NUL), at most 200 bytes.
};
static_assert(sizeof(ErrorReply) == 8);
inline constexpr uint32_t error_message_bytes_max = 200;

// The reply to a full batch of the largest reply type fits a body.
static_assert(batch_ops_max * sizeof(Operation) <= body_bytes_max);
static_assert(batch_ops_max * sizeof(BalanceReply) <= body_bytes_max);
static_assert(sizeof(HistoryReplyHeader) + history_entries_max * sizeof(HistoryEntry) <=
              body_bytes_max);

// ---------------------------------------------------------------------------------------------
// Codec helpers.

inline uint32_t header_checksum(const FrameHeader& header) noexcept {
    return crc32c(&header, offsetof(FrameHeader, header_crc32c));
}

// Fills in the checksums of a header whose other fields are set.
inline void seal(FrameHeader* header, std::span<const std::byte> body) noexcept {
    header->body_bytes = static_cast<uint32_t>(body.size());
    header->body_crc32c = body.empty() ? 0 : crc32c(body.data(), body.size());
    header->header_crc32c = header_checksum(*header);
}

// Checks a received header before its body is read. Result::ok or the framing error to report.
inline Result check_header(const FrameHeader& header) noexcept {
    if (header.magic != frame_magic) {
        return Result::bad_magic;
    }
    if (header.header_crc32c != header_checksum(header)) {
        return Result::bad_header_checksum;
    }
    if (header.version != protocol_version) {
        return Result::bad_version;
    }
    if (header.body_bytes > body_bytes_max) {
        return Result::frame_too_large;
    }
    return Result::ok;
}

inline Result check_body(const FrameHeader& header, std::span<const std::byte> body) noexcept {
    const uint32_t crc = body.empty() ? 0 : crc32c(body.data(), body.size());
    return crc == header.body_crc32c ? Result::ok : Result::bad_body_checksum;
}

// The fixed size of one request item for an opcode, or nullopt for an unknown opcode.
// hello, history: one fixed struct; ping, audit, stats: empty body.
inline std::optional<size_t> request_item_bytes(uint16_t opcode) noexcept {
    switch (static_cast<Opcode>(opcode)) {
        case Opcode::hello:
            return sizeof(HelloRequest);
        case Opcode::ping:
        case Opcode::audit:
        case Opcode::stats:
            return 0;
        case Opcode::enroll:
        case Opcode::update_member:
        case Opcode::earn:
        case Opcode::redeem:
        case Opcode::hold:
        case Opcode::capture:
        case Opcode::release:
        case Opcode::reverse:
        case Opcode::transfer:
        case Opcode::adjust:
            return sizeof(Operation);
        case Opcode::balance:
            return sizeof(BalanceRequest);
        case Opcode::history:
            return sizeof(HistoryRequest);
        case Opcode::error:
            return std::nullopt;
    }
    return std::nullopt;
}

// Checks that a request's count and body length agree with its opcode. Result::ok, or
// unknown_opcode / batch_too_large / bad_body_length (answered with an error frame; the
// connection stays open because the framing itself was sound).
inline Result check_request_shape(const FrameHeader& header) noexcept {
    const auto item_bytes = request_item_bytes(header.opcode);
    if (!item_bytes) {
        return Result::unknown_opcode;
    }
    if ((header.flags & ~flags_known) != 0 || (header.flags & flag_response) != 0) {
        return Result::reserved_not_zero;
    }
    const auto opcode = static_cast<Opcode>(header.opcode);
    const bool batchable = is_mutation(opcode) || opcode == Opcode::balance;
    if (header.count == 0 || (!batchable && header.count != 1)) {
        return Result::bad_body_length;
    }
    if (header.count > batch_ops_max) {
        return Result::batch_too_large;
    }
    if (uint64_t{header.body_bytes} != uint64_t{header.count} * *item_bytes) {
        return Result::bad_body_length;
    }
    return Result::ok;
}

}  // namespace jifen::protocol
