// Programme settings the engine needs, and the limits that size its tables.
// The server fills this from the configuration file (docs/operations.md lists each key).
#pragma once

#include <cstdint>

#include "engine/command.hpp"

namespace jifen::engine {

// Largest points one operation may move, and largest balance a member may hold. Both far below
// INT64_MAX so that sums over 10^8 members cannot overflow a 64-bit total.
inline constexpr Points points_per_op_max = 1'000'000'000'000;       // 10^12
inline constexpr Points points_balance_max = 1'000'000'000'000'000;  // 10^15

struct Config {
    // Points expire this many whole calendar months after the end of the month they were earned
    // in (UTC). 0: points never expire.
    uint32_t expiry_months = 0;
    // A hold without an explicit until_us times out after this long.
    TimeUs hold_timeout_us_default = 15ull * 60 * 1'000'000;
    // Longest hold a client may ask for.
    TimeUs hold_timeout_us_max = 7ull * 24 * 3600 * 1'000'000;
    // When a reversed earn was already spent: false takes what is available and reports the
    // shortfall; true takes it all and lets the balance go negative.
    bool reverse_allows_negative = false;
    // Points given back keep the months they were earned in as far as the engine knows them
    // (docs/protocol.md, "Holds and expiry"): holds taken under this rule keep the months of
    // their points, and a redeem, capture or transfer debit remembers the newest month it took
    // points from, where reversing or refunding it gives them back. Not a setting: off only to
    // replay log records of builds before it, under which what a hold gave back joined the month
    // it came back in (a timeout: its until_us's month), and a reversal or refund the month the
    // redeem, capture or transfer was applied in.
    bool points_keep_months = true;
    // Most open holds one member may have; a hold past it gets member_hold_limit (0: no limit).
    // Without it one member (a single point-of-sale key suffices) could fill its shard's hold
    // table, and every other member of that shard would get hold_limit until the holds close.
    uint32_t holds_per_member_max = 1'000;
    // Most pending lots (earns locked until distinct release times) one member may have; a
    // pending earn that needs one more gets member_lot_limit (0: no limit). Pending earns
    // released at the same time share a lot. Without it one member could fill its shard's lot
    // pool, and every other member of that shard would get lot_limit.
    uint32_t pending_lots_per_member_max = 1'000;
    // Table sizes, fixed at startup (no growth on the hot path).
    uint32_t members_per_shard_max = 1u << 20;
    uint32_t holds_per_shard_max = 1u << 16;
    // The transaction table's starting size. Ids are kept forever, so it is no limit: a full
    // table doubles (amortised; the memory it maps costs nothing until used).
    uint32_t txns_per_shard_max = 1u << 22;
    // Point lots beyond the three each member keeps inline (older months, pending earns) and
    // the months of open holds' points (one lot per month a hold took) share one pool per
    // shard; an operation that would need a lot when it is empty gets lot_limit.
    uint32_t lots_per_shard_max = 1u << 22;
};

}  // namespace jifen::engine
