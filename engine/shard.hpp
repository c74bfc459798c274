// A shard: the members one thread owns and the pure state machine that changes them.
// No I/O, no threads, no clock reads: time arrives inside each Command (time_us), so applying the
// same commands to the same state always gives the same outcomes and the same digest.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/checkpoint_bytes.hpp"
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

// Sums over a shard (or, added up, over the ledger). Conservation, exact on every shard:
//   available + held + pending == earned - redeemed - expired - reversed
//                                 + transfer_in - transfer_out + adjusted_in - adjusted_out
// where transfer_in/out count completed legs; a debit leg whose credit is still in flight shows
// in transfer_out of the sender's shard and not yet in transfer_in of the receiver's (a refund
// takes it back out of transfer_out). Definitions:
//   earned    points of applied earns (gross: a reversal does not lower it);
//   redeemed  net points spent by redeem and capture (reversing one lowers it again);
//   expired   points removed by expiry;
//   reversed  points clawed back by reversing earns (what was actually taken, so a shortfall
//             is not counted; with reverse_allows_negative it is the whole earn).
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
    Points transfers_in_flight = 0;  // Debited here, credit not yet confirmed (informational).

    Totals& operator+=(const Totals& other) noexcept;
    bool conserves() const noexcept;
};

struct AuditReport {
    bool ok = true;
    // Members below zero: debts a reverse made while reverse_allows_negative was on (they stay
    // when it is turned off). Informational: ok does not depend on it.
    uint64_t negative_balances = 0;
    uint64_t bad_members = 0;  // Members whose lots do not add up to their balances.
    Totals totals;
};

class Shard {
public:
    // index/count: this shard's position; index may be null in single-shard tests, then the
    // shard keeps idempotency to itself. The shard claims in txn_index under its shard_index
    // as claimer (see TxnIndex). Sizes every table from config at construction (zeroed mapped
    // memory, so untouched table pages cost nothing); throws std::bad_alloc only here. The
    // transaction table then doubles when full. Resident cost: 128 bytes per member (120-byte
    // record with three lots inline, 8 of index), 88 bytes per transaction plus a
    // 16-byte-per-txns_per_shard_max index, 24 per pooled lot.
    Shard(uint32_t shard_index, uint32_t shard_count, const Config& config, TxnIndex* txn_index);
    ~Shard();
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    // Applies one command whose time_us is set. Never throws, never allocates once tables are
    // sized but to double the transaction table when it is full (txn_limit when that fails).
    // Result::ok with replayed == false means the state changed and the command must be logged as a
    // Record. A replayed outcome (the txn id was applied before) changed nothing and must not be
    // logged. Any other result changed nothing at all.
    //
    // Rules, per op (request-shape checks come first, then the txn id, then the ledger):
    // - Every op but tick needs txn_id != 0 (txn_id_zero) and member_id != 0 (member_id_zero);
    //   flags other than adjust_debit on adjust, and reserved0, must be 0 (reserved_not_zero);
    //   time_us and until_us must be below time_us_max (engine/calendar.hpp).
    // - A txn id seen before on this shard: same op, member and content (every field but time_us
    //   and until_us; internal legs: op, member, counterparty and points) returns the original
    //   outcome with replayed = true; anything else is id_conflict. A txn id owned by a member of
    //   another shard (TxnIndex) is id_conflict.
    // - enroll: points 0, status active/frozen, birthday 0 or a valid YYYYMMDD
    //   (field_out_of_range). A member that exists with the same tier, status and birthday is ok
    //   and replayed (nothing changes, the id is not recorded); different ones: member_exists.
    // - A hold takes points oldest month first and keeps their months; a capture spends the
    //   oldest of them. What a hold gives back (the rest of a capture, a release, a timeout)
    //   rejoins the months it was earned in; points whose month expired meanwhile expire then
    //   (capture and release: Outcome::shortfall, and a derived Op::expire naming the hold).
    //   Points given back by a redeem/capture reversal or a transfer refund rejoin the newest
    //   month the original transaction took points from (Config::points_keep_months), but
    //   never one that has already expired. A hold needs a free lot
    //   per month it takes (lot_limit).
    // - earn with until_us > time_us: pending until until_us, then a lot of until_us's month.
    //   Pending earns released at the same time share one pending lot; a member has at most
    //   pending_lots_per_member_max of them (member_lot_limit; lots released by time_us do not
    //   count).
    // - hold: until_us 0 = time_us + hold_timeout_us_default; otherwise time_us < until_us <=
    //   time_us + hold_timeout_us_max (field_out_of_range). A hold is due at until_us. A
    //   member holds at most holds_per_member_max open at once (member_hold_limit; holds due
    //   at time_us do not count), a shard holds_per_shard_max (hold_limit).
    // - capture: points 0 = the whole hold. release and reverse: points must be 0.
    // - reverse: undoes a whole earn, redeem or capture of the same member (txn_not_found when
    //   ref_txn_id names none of this member's transactions).
    // - Frozen members cannot earn, redeem, hold, transfer or receive a transfer; capture,
    //   release, reverse, adjust and update_member still work.
    // - Balance cap: available + held + pending may not pass points_balance_max (balance_limit),
    //   except through a transfer_refund, which must never be refused.
    // - tick: points = budget (>= 0): due holds first (earliest until_us first), then members
    //   from a round-robin cursor; each unit settles one member. Outcome::points = units used.
    //   The sweep is skipped while the shard knows no member can have anything due, so a tick
    //   with Outcome::points == 0 changed nothing and need not be logged.
    // Before anything is applied to a member, its due events (timed-out holds, pending points,
    // expired lots) are settled at time_us; a refused command only previews them, so results
    // never depend on tick timing and refusals change nothing.
    Outcome apply(const Command& command) noexcept;

    // Applies commands[i] into outcomes[i] (the spans have the same size), in order, exactly
    // as apply() one at a time would: same outcomes, same state. It is faster on a large ledger
    // because it starts loading the table slots of the commands a few places ahead (member
    // index, then member record, TxnIndex slot), so their memory misses overlap with the work
    // on the current command. Hand it whole frames (up to 8,192 commands); small batches gain
    // little. Never throws, never allocates (as apply()).
    void apply_batch(std::span<const Command> commands, std::span<Outcome> outcomes) noexcept;

    // Derived records (engine::is_derived): what applying commands did that their own log
    // records do not show, for the members' histories. Settling a member makes at most one
    // record of each kind (Op::hold_timeout, pending_release, expire, in that order), a capture
    // or release whose held points expired as they came back one Op::expire naming the hold
    // (after its member's settlement records), a transfer within the shard one
    // Op::transfer_received for the receiver. Off by default: recovery
    // re-derives the state from the commands and needs none. When on, each apply() or
    // apply_batch() call starts the list afresh, and an outcome names its command's records
    // (derived_first, derived_count), which belong before the command's own record in the log.
    // capacity: the list is reserved for that many (see derived_records_max), so applying never
    // allocates; record_derived itself may throw std::bad_alloc.
    void record_derived(bool on, size_t capacity = 0);
    std::span<const Record> derived() const noexcept;
    // The derived records of one outcome of the last apply call, and the record to log after
    // them for its command (only for an applied command: ok, not replayed).
    std::span<const Record> derived_of(const Outcome& outcome) const noexcept;
    Record record_of(const Command& command, const Outcome& outcome) const noexcept;
    // The most derived records one command makes: a transfer within one shard settles two
    // members and credits one (a capture or release: one settlement and one expire for held
    // points, fewer). A tick makes settlement_records_per_member per unit of budget.
    static constexpr uint32_t settlement_records_per_member = 3;
    static constexpr uint32_t derived_records_per_command_max =
        2 * settlement_records_per_member + 1;
    static constexpr size_t derived_records_max(size_t commands, uint64_t tick_budget) noexcept {
        return std::max<size_t>(commands * derived_records_per_command_max,
                                tick_budget * settlement_records_per_member);
    }

    // Starts loading the table slots apply(command) will read first. Member and transaction
    // tables are far larger than the caches, so each apply waits on a few memory misses; a caller
    // holding a batch prefetches a few commands ahead and lets those misses overlap. Optional:
    // it changes no state and no outcome.
    void prefetch(const Command& command) const noexcept;
    // The same for find_at(member_id, ...).
    void prefetch_member(MemberId member_id) const noexcept;

    // Read-only queries. find() shows the member as last settled; find_at() shows it as it would
    // be after settling at time_us (what a balance query should show), without changing it.
    bool find(MemberId member_id, MemberView* view) const noexcept;
    bool find_at(MemberId member_id, TimeUs time_us, MemberView* view) const noexcept;
    Totals totals() const noexcept;
    AuditReport audit() const noexcept;

    // A digest of the whole state (members, lots, holds, txns) independent of table layout:
    // equal states give equal digests. Used to prove recovery rebuilds the exact state.
    uint64_t digest() const noexcept;

    // Checkpoint: the whole state as bytes, and back. load() replaces the state; returns false
    // (and leaves the shard empty) when the bytes are not a checkpoint of this format. load()
    // claims every loaded transaction id in the TxnIndex again (false on a conflict).
    void save(std::vector<std::byte>* out) const;
    bool load(std::span<const std::byte> bytes);
    // The same from those bytes in pieces, in order (as the log stores a checkpoint), read where
    // they lie: a restart needs no second copy of the checkpoint in memory.
    bool load(std::span<const std::span<const std::byte>> pieces);

    // The same checkpoint, built in steps so the shard is never held for all of it. The
    // transactions (kept for ever, so most of a big checkpoint) are copied ahead a slice at a
    // time while commands go on; finish_checkpoint() then adds the new ones, the copied entries
    // that changed since (as patches), the shard's counters and the members. Loaded, it gives
    // the state the shard had when finish_checkpoint() ran, as save() at that moment would
    // (the bytes differ: save() has one run and no patches). begin_checkpoint() starts over
    // when a build is under way.
    void begin_checkpoint();
    // Copies `entries` more transactions, or twice as many as were applied since the previous
    // step when that is more (so a build ends under any load the log keeps up with), but at most
    // entries_max: the room the caller has for them (a log that stores the pieces slower than
    // the shard applies transactions bounds the build's pace anyway; copying ahead of it would
    // only hold memory). Holds at most the bytes not taken (take_checkpoint_part) and room for
    // 2 x `entries` more. Returns how many are not copied yet.
    uint64_t continue_checkpoint(uint32_t entries, uint32_t entries_max = UINT32_MAX);
    // Bytes one transaction takes in a checkpoint.
    static constexpr size_t checkpoint_bytes_per_transaction = 88;
    // The pieces of the build that are complete (CheckpointBytes::piece_bytes_default each), in
    // order, taken out of it: no later step changes them, so the log can store them while the
    // build goes on, and the build holds no copy of every transaction. The checkpoint is every
    // part taken, in order, then what finish_checkpoint() gives.
    CheckpointBytes take_checkpoint_part();
    // The rest of the checkpoint's bytes, in pieces (never moved while built).
    void finish_checkpoint(CheckpointBytes* out);
    bool checkpoint_building() const noexcept;
    // About the bytes a checkpoint of a shard with these counts takes (what save() reserves).
    static size_t checkpoint_bytes_estimate(uint64_t member_count,
                                            uint64_t transaction_count) noexcept;

    // The transfer_credit commands this shard still owes other shards: debit legs applied here
    // whose credit was neither confirmed nor refunded. After recovery the server sends each
    // again (time_us is left 0 for it to stamp); a credit applied before replays harmlessly.
    std::vector<Command> transfers_in_flight() const;

    // The legs of a cross-shard transfer. Build them only with these (the receiver recognises a
    // resent credit by its content). The credit comes from the client's transfer command once
    // its debit leg is durable; the confirm (credit ok, replayed or not) or the refund (credit
    // refused: member_not_found, member_frozen, balance_limit, lot_limit) from the credit.
    // time_us is left 0 for the applying shard to stamp.
    static Command transfer_credit_for(const Command& transfer) noexcept;
    static Command transfer_confirm_for(const Command& credit) noexcept;
    // The derived record of a transfer applied within one shard, for the receiver's history.
    static Record transfer_received_for(const Command& transfer, Points available_after) noexcept;
    // refusal: the Result the credit leg was refused with; a repeat of the transfer answers it.
    static Command transfer_refund_for(const Command& credit, Result refusal) noexcept;

    uint32_t shard_index() const noexcept;

    // Takes the programme rules that may change over a ledger's life from rules:
    // hold_timeout_us_default, hold_timeout_us_max, reverse_allows_negative, points_keep_months,
    // holds_per_member_max and pending_lots_per_member_max. They act on the
    // commands applied after the call (holds taken, reverses made), never on the state already
    // there. Table sizes and expiry_months (lots carry months only with expiry on) are fixed at
    // construction; rules.expiry_months must equal the shard's. The log records which rules
    // each stretch of it was applied under and sets them again during replay (docs/wal.md).
    void set_rules(const Config& rules) noexcept;
    uint64_t member_count() const noexcept;
    // Transactions kept for idempotency (every applied one, for ever): with member_count(), what
    // the shard's memory grows with.
    uint64_t transaction_count() const noexcept;
    // Open holds (of Config::holds_per_shard_max) and lot nodes in use (of lots_per_shard_max):
    // what fills before hold_limit and lot_limit refuse anyone.
    uint64_t open_hold_count() const noexcept;
    uint64_t lot_nodes_in_use() const noexcept;

    // Which shard owns a member: stable across restarts for the same shard count.
    static uint32_t shard_of(MemberId member_id, uint32_t shard_count) noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace jifen::engine
