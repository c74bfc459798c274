// A shard: the members one thread owns and the pure state machine that changes them.
// No I/O, no threads, no clock reads: time arrives inside each Command (time_us), so applying the
// same commands to the same state always gives the same outcomes and the same digest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/command.hpp"
#include "engine/config.hpp"

namespace jifen::engine {

class TxnIndex;

// A member as the balance query shows it.
struct MemberView {
    MemberId member_id = 0;
    Points available = 0;
    Points held = 0;
    Points pending = 0;
    Points lifetime_earned = 0;
    Points lifetime_redeemed = 0;
    Points lifetime_expired = 0;
    Points lifetime_reversed = 0;
    Points growth = 0;  // Growth value for tiering: lifetime purchase points, never spent.
    uint8_t tier = 0;
    MemberStatus status = MemberStatus::active;
    uint32_t birthday = 0;
    TimeUs last_purchase_us = 0;
    TimeUs last_activity_us = 0;
};

// Sums over a shard (or, added up, over the ledger). Conservation:
//   available + held + pending == earned - redeemed - expired - reversed
//                                 + transfer_in - transfer_out + adjusted_in - adjusted_out
// where transfer_in/out count completed legs; a debit leg whose credit is still in flight shows
// in transfer_out of the sender's shard and not yet in transfer_in of the receiver's.
struct Totals {
    uint64_t members = 0;
    uint64_t open_holds = 0;
    uint64_t txns = 0;
    Points available = 0;
    Points held = 0;
    Points pending = 0;
    Points earned = 0;
    Points redeemed = 0;
    Points expired = 0;
    Points reversed = 0;
    Points transfer_in = 0;
    Points transfer_out = 0;
    Points adjusted_in = 0;
    Points adjusted_out = 0;

    Totals& operator+=(const Totals& other) noexcept;
    bool conserves() const noexcept;
};

struct AuditReport {
    bool ok = true;
    uint64_t negative_balances = 0;  // Members below zero without a policy that allows it.
    uint64_t bad_members = 0;        // Members whose lots do not add up to their balances.
    Totals totals;
};

class Shard {
public:
    // index/count: this shard's position; index may be null in single-shard tests, then the
    // shard keeps idempotency to itself. Sizes every table from config at construction.
    Shard(uint32_t shard_index, uint32_t shard_count, const Config& config, TxnIndex* txn_index);
    ~Shard();
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    // Applies one command whose time_us is set. Never throws, never allocates once tables are
    // sized. Result::ok means the state changed and the command must be logged as a Record.
    Outcome apply(const Command& command) noexcept;

    // Read-only queries; time only matters for settling pending/expired points in the view.
    bool find(MemberId member_id, MemberView* view) const noexcept;
    Totals totals() const noexcept;
    AuditReport audit() const noexcept;

    // A digest of the whole state (members, lots, holds, txns) independent of table layout:
    // equal states give equal digests. Used to prove recovery rebuilds the exact state.
    uint64_t digest() const noexcept;

    // Checkpoint: the whole state as bytes, and back. load() replaces the state; returns false
    // (and leaves the shard empty) when the bytes are not a checkpoint of this format.
    void save(std::vector<std::byte>* out) const;
    bool load(std::span<const std::byte> bytes);

    // Which shard owns a member: stable across restarts for the same shard count.
    static uint32_t shard_of(MemberId member_id, uint32_t shard_count) noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace jifen::engine
