// The shard state machine: members and their point lots, holds, and the transaction table that
// makes every client operation idempotent forever. Tables are sized at construction; apply()
// allocates nothing but the transaction table's amortised doubling.

#include "engine/shard.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "engine/assert.hpp"
#include "engine/calendar.hpp"
#include "engine/checkpoint_bytes.hpp"
#include "engine/tables.hpp"
#include "engine/txn_index.hpp"
#include "protocol/wire.hpp"

namespace jifen::engine {
namespace {

using detail::FixedArray;
using detail::FlatIndex;
using detail::hash_combine;
using detail::hash_txn_id;
using detail::mix64;
using detail::none;

constexpr TimeUs never_us = std::numeric_limits<TimeUs>::max();

// A lot packs its month (12 bits) above its points (52 bits). Balances stay below
// points_balance_max = 10^15 < 2^52, so one lot always fits.
constexpr int lot_points_bits = 52;
constexpr uint64_t lot_points_mask = (uint64_t{1} << lot_points_bits) - 1;
static_assert(points_balance_max + 1'000 * points_per_op_max < Points{1} << lot_points_bits);
static_assert(month_index_max < (1u << (64 - lot_points_bits)));

uint64_t make_lot(MonthIndex month, Points points) noexcept {
    JIFEN_ASSERT(points > 0 && static_cast<uint64_t>(points) <= lot_points_mask);
    return (uint64_t{month} << lot_points_bits) | static_cast<uint64_t>(points);
}
constexpr MonthIndex lot_month(uint64_t lot) noexcept {
    return static_cast<MonthIndex>(lot >> lot_points_bits);
}
constexpr Points lot_points(uint64_t lot) noexcept {
    return static_cast<Points>(lot & lot_points_mask);
}

constexpr uint32_t lots_inline_max = 3;

// Times fit 54 bits (time_us_max is in 2300), which leaves the top ten bits of the member's two
// time words for its tier, status and lot count: that is what brings a member to 120 bytes.
constexpr int time_bits = 54;
constexpr uint64_t time_mask = (uint64_t{1} << time_bits) - 1;
static_assert(time_us_max <= time_mask);

// One member, 120 bytes with up to three lots inline; older months and pending points live in the
// shard's lot pool, open holds in its hold table, all linked from here.
struct MemberRecord {
    MemberId member_id;
    Points available;  // Negative only under reverse_allows_negative; then it has no lots.
    Points held;
    Points lifetime_earned;
    Points lifetime_redeemed;
    Points lifetime_expired;
    Points lifetime_reversed;
    Points growth;
    uint64_t purchase_word;  // last_purchase_us, tier in bits 56..63.
    uint64_t activity_word;  // last_activity_us, lot count in bits 56..57, status in bit 63.
    // The oldest lots, ascending by month; the rest continue in the overflow list. Their points
    // add up to max(available, 0).
    uint64_t lots[lots_inline_max];
    uint32_t birthday;
    uint32_t overflow_head;  // LotNode list (key = month), ascending, all newer than lots[].
    uint32_t pending_head;   // LotNode list (key = release time), ascending.
    uint32_t hold_head;      // Hold list of this member's open holds, in due order (link_hold).

    TimeUs last_purchase_us() const noexcept { return purchase_word & time_mask; }
    uint8_t tier() const noexcept { return static_cast<uint8_t>(purchase_word >> 56); }
    TimeUs last_activity_us() const noexcept { return activity_word & time_mask; }
    uint32_t lot_count() const noexcept { return static_cast<uint32_t>(activity_word >> 56) & 3; }
    MemberStatus status() const noexcept { return static_cast<MemberStatus>(activity_word >> 63); }
    void set_last_purchase_us(TimeUs time_us) noexcept {
        JIFEN_ASSERT(time_us <= time_mask);
        purchase_word = (purchase_word & ~time_mask) | time_us;
    }
    void set_tier(uint8_t tier) noexcept {
        purchase_word = (purchase_word & time_mask) | uint64_t{tier} << 56;
    }
    void set_last_activity_us(TimeUs time_us) noexcept {
        JIFEN_ASSERT(time_us <= time_mask);
        activity_word = (activity_word & ~time_mask) | time_us;
    }
    void set_lot_count(uint32_t count) noexcept {
        JIFEN_DASSERT(count <= lots_inline_max);
        activity_word = (activity_word & ~(uint64_t{3} << 56)) | uint64_t{count} << 56;
    }
    void set_status(MemberStatus status) noexcept {
        activity_word = (activity_word & ~(uint64_t{1} << 63)) | static_cast<uint64_t>(status)
                                                                     << 63;
    }
};
static_assert(sizeof(MemberRecord) == 120);
static_assert(lots_inline_max <= 3);  // The lot count has two bits.

struct LotNode {
    Points points;
    uint64_t key;  // Month (overflow lot) or release time in microseconds (pending lot).
    uint32_t next;
    // The first node of a pending list: its last node (a new pending lot is usually released
    // last, and is appended without walking the others). Otherwise unused.
    uint32_t last;
};
static_assert(sizeof(LotNode) == 24);

// An open hold. Its points keep the months they were earned in: the hold takes them from the
// member's lots oldest first into a list of its own, and whatever the hold does not spend goes
// back to those months, so holding points never makes them younger.
struct Hold {
    Points points;
    TimeUs until_us;
    uint32_t txn_index;
    uint32_t member_index;
    // The member's open holds form a circle through prev (the first's prev is the last), so a
    // hold is linked and unlinked without walking the others: a member may have thousands.
    uint32_t next;  // Next open hold of the member (none after the last), or next free slot.
    uint32_t prev;
    uint32_t heap_position;
    uint32_t lots_head;  // LotNode list (key = month), ascending; its points add up to points.
    uint32_t flags;      // hold_flag_*.
    // The member's first open hold: how many open holds the member has (holds_per_member_max),
    // kept up by link_hold and unlink_hold. Otherwise unused.
    uint32_t member_holds;
};
static_assert(sizeof(Hold) == 48);

// A hold taken under the rules before holds kept months (Config::points_keep_months off, or
// loaded from a version 2 checkpoint): one lot of no month, and what it gives back joins the
// month it comes back in (a timeout: the month of its until_us).
constexpr uint32_t hold_flag_legacy = 1;

enum class TxnState : uint8_t {
    done = 0,
    reversed = 1,            // earn, redeem, capture: undone by a reverse.
    hold_open = 2,           // hold: aux is the Hold slot.
    hold_captured = 3,       // hold: closed by capture.
    hold_released = 4,       // hold: closed by release.
    hold_timed_out = 5,      // hold: closed at until_us.
    transfer_in_flight = 6,  // transfer: debit applied here, credit owed by another shard.
    transfer_refunded = 7,   // transfer: the credit was refused and the points came back.
};

// One applied transaction: what a repeat must answer, and what reverse and capture need.
struct TxnEntry {
    TxnId txn_id;
    MemberId member_id;
    uint64_t fingerprint;
    Points points;  // The original Outcome.
    Points shortfall;
    Points available;
    Points held;
    Points pending;
    // earn: release time when it was pending (else 0); transfer and transfer_credit: the other
    // member; open hold: its Hold slot.
    uint64_t aux;
    // earn: its lot's month; redeem, capture, transfer: the month a reversal or refund gives
    // back to (kept_month); others: the month applied in.
    MonthIndex month;
    Op op;
    TxnState state;
    // transfer_refunded: the Result the credit leg was refused with, which a repeat answers.
    uint8_t refusal;
};
static_assert(sizeof(TxnEntry) == 88);
static_assert(sizeof(TxnEntry) == Shard::checkpoint_bytes_per_transaction);

// The shard's transactions: a FixedArray that can tell a checkpoint being built which entries
// changed after it copied them. Every change of an entry goes through the non-const operator[]
// (so does any read from a non-const State: noted too, which only costs a second copy).
class TxnTable {
public:
    explicit TxnTable(uint64_t count) : entries_(count) {}

    const TxnEntry& operator[](uint64_t index) const noexcept { return entries_[index]; }
    TxnEntry& operator[](uint64_t index) noexcept {
        if (index < watched_) [[unlikely]] {
            (*changed_)[index >> 6] |= uint64_t{1} << (index & 63);
        }
        return entries_[index];
    }
    uint64_t count() const noexcept { return entries_.count(); }
    bool grow(uint64_t count) noexcept { return entries_.grow(count); }
    const TxnEntry* data() const noexcept { return &entries_[0]; }

    // Makes the pages of the first `entries` entries resident, populate_step entries ahead at
    // a time. New transactions write fresh pages, and a page fault for every 46 of them was
    // about a quarter of a shard thread's time under a stream of earns; one call per step costs
    // several times less. The pages stay (the table only grows, and mremap moves them).
    void populate_through(uint64_t entries) noexcept {
        if (entries <= populated_) [[likely]] {
            return;
        }
        const uint64_t end =
            std::min(entries_.count(), std::max(entries, populated_ + populate_step));
        if (end > populated_) {
            detail::populate(&entries_[populated_], (end - populated_) * sizeof(TxnEntry));
            populated_ = end;
        }
    }

    // Entries below `watched` set their bit in `changed` (one bit per entry) when accessed for
    // change; watch(0, nullptr) stops.
    void watch(uint64_t watched, std::vector<uint64_t>* changed) noexcept {
        watched_ = watched;
        changed_ = changed;
    }

private:
    static constexpr uint64_t populate_step = 4'096;  // 352 KiB.

    FixedArray<TxnEntry> entries_;
    uint64_t populated_ = 0;
    uint64_t watched_ = 0;
    std::vector<uint64_t>* changed_ = nullptr;
};

// A checkpoint built in steps (Shard::begin_checkpoint): the bytes not handed out yet, and which
// copied transactions changed since they were copied.
struct CheckpointBuild {
    bool active = false;
    CheckpointBytes bytes;  // Room is made ahead of its end: pages touched in advance.
    uint32_t txns_copied = 0;
    uint32_t txn_count_seen = 0;         // The shard's txn_count at the last step.
    std::vector<uint64_t> txns_changed;  // Bit i: entry i changed after it was copied.
};

// Running sums that totals() and audit() check against the members.
struct Counters {
    Points earned;
    Points redeemed;
    Points expired;
    Points reversed;
    Points transfer_in;
    Points transfer_out;
    Points adjusted_in;
    Points adjusted_out;
    Points transfers_in_flight;
};

bool points_in_range(Points points, Result* result) noexcept {
    if (points <= 0) {
        *result = Result::points_not_positive;
        return false;
    }
    if (points > points_per_op_max) {
        *result = Result::points_too_large;
        return false;
    }
    return true;
}

bool birthday_valid(uint32_t birthday) noexcept {
    if (birthday == 0) {
        return true;
    }
    const std::chrono::year_month_day date{std::chrono::year{static_cast<int>(birthday / 10'000)},
                                           std::chrono::month{birthday / 100 % 100},
                                           std::chrono::day{birthday % 100}};
    return birthday / 10'000 >= 1 && date.ok();
}

bool is_internal(Op op) noexcept {
    return op == Op::transfer_credit || op == Op::transfer_confirm || op == Op::transfer_refund;
}

// 64x64 -> 128-bit product folded to 64 bits: one multiply mixes two words thoroughly.
__extension__ using Uint128 = unsigned __int128;
constexpr uint64_t fold_multiply(uint64_t a, uint64_t b) noexcept {
    const Uint128 product = static_cast<Uint128>(a) * b;
    return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

// Two content words into the fingerprint. Each pair has its own keys, so swapped fields differ;
// the words themselves are added back so that a word equal to its key (a zero factor) still
// leaves the other word in the result.
constexpr uint64_t fingerprint_pair(uint64_t a, uint64_t b, uint64_t key_a,
                                    uint64_t key_b) noexcept {
    return fold_multiply(a ^ key_a, b ^ key_b) + (a ^ std::rotl(b, 29));
}

// The client-visible content of a command, without the times the server stamps. Internal legs
// hash only what transfer_credit_for() copies, so a credit resent after recovery matches. On
// every applied transaction: five multiplies (a mix64 per word was a fifth of apply's
// instructions). A new hash function needs a new checkpoint_version, as checkpoints keep it.
uint64_t fingerprint_of(const Command& command) noexcept {
    const uint64_t shape = static_cast<uint64_t>(command.op) | uint64_t{command.flags} << 16 |
                           uint64_t{command.tier} << 32 |
                           static_cast<uint64_t>(command.status) << 40;
    uint64_t hash =
        fingerprint_pair(shape, command.member_id, 0x243F6A8885A308D3ull, 0x13198A2E03707344ull) +
        fingerprint_pair(command.counterparty_id, static_cast<uint64_t>(command.points),
                         0xA4093822299F31D0ull, 0x082EFA98EC4E6C89ull);
    if (!is_internal(command.op)) {
        hash +=
            fingerprint_pair(command.ref_txn_id.lo, command.ref_txn_id.hi, 0x452821E638D01377ull,
                             0xBE5466CF34E90C6Cull) +
            fingerprint_pair(uint64_t{command.store_id} | uint64_t{command.merchant_id} << 32,
                             uint64_t{command.reason_code} | uint64_t{command.birthday} << 32,
                             0xC0AC29B7C97C50DDull, 0x3F84D5B5B5470917ull) +
            fingerprint_pair(command.order_ref, 0, 0x9216D5D98979FB1Bull, 0xD1310BA698DFB5ACull);
    }
    return mix64(hash);
}

Outcome refusal(Result result) noexcept {
    Outcome outcome;
    outcome.result = result;
    return outcome;
}

// A member's balances as settling at some time would leave them.
struct Settled {
    Points available = 0;
    Points held = 0;
    Points pending = 0;
};

// One kind of thing settling a member did (Op::hold_timeout, pending_release or expire), summed,
// and its settlement record.
struct Settlement {
    Op op;
    Points points = 0;
    TimeUs due_us = 0;  // The latest due time of what was summed.
    TxnId hold_id{};

    void add(Points more, TimeUs at_us) noexcept {
        points += more;
        due_us = std::max(due_us, at_us);
    }
    Record record(MemberId member_id, Points available_after) const noexcept {
        Record out;
        out.command.op = op;
        out.command.member_id = member_id;
        out.command.ref_txn_id = hold_id;
        out.command.points = points;
        out.command.time_us = due_us;
        out.applied_points = points;
        out.available_after = available_after;
        return out;
    }
};

Outcome refusal(Result result, const Settled& settled) noexcept {
    Outcome outcome;
    outcome.result = result;
    outcome.available = settled.available;
    outcome.held = settled.held;
    outcome.pending = settled.pending;
    return outcome;
}

// Appends and reads back the checkpoint format: fixed-size fields in host byte order, which is
// fine for a checkpoint read by the same build on the same machine class.
// Writes at `*end` (the end of the output by default) and moves it on, into one vector
// (Shard::save) or into pieces (a checkpoint built in steps, which makes room ahead of what it
// has written, so the pages a later step writes were touched by an earlier one).
void write_at(std::vector<std::byte>* out, size_t at, const void* data, size_t size) {
    if (out->size() < at + size) {
        out->resize(at + size);
    }
    std::memcpy(out->data() + at, data, size);
}
void write_at(CheckpointBytes* out, size_t at, const void* data, size_t size) {
    out->write(at, data, size);
}

template <class Out>
class Writer {
public:
    explicit Writer(Out* out) : out_(out), own_end_(out->size()), end_(&own_end_) {}
    Writer(Out* out, size_t* end) : out_(out), end_(end) {}
    template <class T>
    void put(const T& value) {
        put_array(&value, 1);
    }
    template <class T>
    void put_array(const T* values, size_t count) {
        static_assert(std::is_trivially_copyable_v<T>);
        if (count == 0) {
            return;
        }
        write_at(out_, *end_, values, count * sizeof(T));
        *end_ += count * sizeof(T);
    }

private:
    Out* out_;
    size_t own_end_ = 0;
    size_t* end_;
};

// Reads the checkpoint from its bytes in pieces (the chunks the log stores it in), so a restart
// reads it where it lies instead of first copying it into one buffer; a field may straddle two
// pieces. Empty pieces are skipped.
class Reader {
public:
    explicit Reader(std::span<const std::span<const std::byte>> pieces) : pieces_(pieces) {
        skip_empty();
    }
    template <class T>
    bool get(T* value) noexcept {
        static_assert(std::is_trivially_copyable_v<T>);
        if (!at_end() && pieces_[piece_].size() - offset_ > sizeof(T)) {
            std::memcpy(value, pieces_[piece_].data() + offset_, sizeof(T));
            offset_ += sizeof(T);
            return true;
        }
        return get_across(reinterpret_cast<std::byte*>(value), sizeof(T));
    }
    bool at_end() const noexcept { return piece_ == pieces_.size(); }

private:
    bool get_across(std::byte* out, size_t size) noexcept {
        while (size > 0) {
            if (at_end()) {
                return false;
            }
            const size_t taken = std::min(size, pieces_[piece_].size() - offset_);
            std::memcpy(out, pieces_[piece_].data() + offset_, taken);
            out += taken;
            size -= taken;
            offset_ += taken;
            if (offset_ == pieces_[piece_].size()) {
                ++piece_;
                offset_ = 0;
                skip_empty();
            }
        }
        return true;
    }
    void skip_empty() noexcept {
        while (!at_end() && pieces_[piece_].empty()) {
            ++piece_;
        }
    }

    std::span<const std::span<const std::byte>> pieces_;
    size_t piece_ = 0;
    size_t offset_ = 0;  // Within pieces_[piece_], always short of its end.
};

constexpr uint64_t checkpoint_magic = 0x31444853'4E454649ull;  // "IFENSHD1"
// 2: fingerprint_of() by fold_multiply. 3: a hold's points by month (SavedHold::lot_count
// SavedLots after it; none for a legacy hold, and every version 2 hold loads as one). 4: the
// transactions right after the shard's place, in runs, then the entries that changed while the
// checkpoint was built as patches, then the rest of the header: a checkpoint's leading pieces
// are final as soon as they are written, so the log can store them before it is finished.
//
// Version 4, in order (versions 2 and 3 put the header fields first and one count of
// transactions before them, with no runs or patches):
//   u64 magic, u32 version, u32 shard_index, u32 shard_count
//   runs of transactions: u32 count (> 0), count TxnEntry; ended by a u32 0
//   u32 patch count, then per patch: u32 entry index, TxnEntry (the entry as it is now)
//   Counters, u32 tick_cursor, TimeUs sweep_due_us, TimeUs cycle_due_us, u32 txn_count
//   the members (put_members)
constexpr uint32_t checkpoint_version = 4;
constexpr uint32_t checkpoint_version_min = 2;

struct SavedMember {
    MemberId member_id;
    Points available;
    Points held;
    Points lifetime_earned;
    Points lifetime_redeemed;
    Points lifetime_expired;
    Points lifetime_reversed;
    Points growth;
    TimeUs last_purchase_us;
    TimeUs last_activity_us;
    uint32_t birthday;
    uint8_t tier;
    MemberStatus status;
    uint16_t reserved;
    uint32_t lot_count;
    uint32_t pending_count;
    uint32_t hold_count;
    uint32_t reserved1;
};

struct SavedLot {
    uint64_t key;
    Points points;
};

struct SavedHold {
    uint32_t txn_index;
    // SavedLots (month, points) that follow, ascending; 0: a legacy hold (hold_flag_legacy).
    uint32_t lot_count;
    TimeUs until_us;
    Points points;
};

}  // namespace

Totals& Totals::operator+=(const Totals& other) noexcept {
    members += other.members;
    open_holds += other.open_holds;
    txns += other.txns;
    available += other.available;
    held += other.held;
    pending += other.pending;
    earned += other.earned;
    redeemed += other.redeemed;
    expired += other.expired;
    reversed += other.reversed;
    transfer_in += other.transfer_in;
    transfer_out += other.transfer_out;
    adjusted_in += other.adjusted_in;
    adjusted_out += other.adjusted_out;
    transfers_in_flight += other.transfers_in_flight;
    return *this;
}

bool Totals::conserves() const noexcept {
    return available + held + pending == earned - redeemed - expired - reversed + transfer_in -
                                             transfer_out + adjusted_in - adjusted_out;
}

struct Shard::State {
    State(uint32_t index, uint32_t count, const Config& config_in, TxnIndex* txn_index_in)
        : shard_index(index),
          shard_count(count),
          config(config_in),
          txn_index(txn_index_in),
          members(config_in.members_per_shard_max),
          member_slots(config_in.members_per_shard_max),
          pending_lots(config_in.members_per_shard_max),
          lot_nodes(config_in.lots_per_shard_max),
          holds(config_in.holds_per_shard_max),
          hold_heap(config_in.holds_per_shard_max),
          txns(config_in.txns_per_shard_max),
          txn_slots(config_in.txns_per_shard_max) {
        JIFEN_ASSERT(count > 0 && index < count);
        // Fixed tables that every operation probes at random: on huge pages a probe rarely
        // misses the TLB as well as the cache (about 10% more batched applies in engine_bench).
        // The growing tables keep 4 KiB pages: a huge-page fault in the middle of an apply
        // zeroes 2 MiB at once, and they measured slower on them.
        members.prefer_huge_pages();
        member_slots.prefer_huge_pages();
    }

    const uint32_t shard_index;
    const uint32_t shard_count;
    // Sizes and expiry_months are fixed for the shard's life; the other rules may change between
    // commands (set_rules).
    Config config;
    TxnIndex* const txn_index;

    FixedArray<MemberRecord> members;
    FlatIndex<false> member_slots;
    uint32_t member_count = 0;
    // By member index: the sum and count of the member's pending lots, valid while it has any
    // (the first pending lot of a member sets them). Beside the records rather than in them, so
    // members that never have pending points never touch it.
    struct PendingLots {
        Points points;
        uint32_t lots;  // Against pending_lots_per_member_max.
        uint32_t unused;
    };
    FixedArray<PendingLots> pending_lots;

    // Lot nodes: bump-allocated, then recycled through a free list. An open hold's points sit
    // in nodes of their own, one per month, so giving them back needs no free node: each
    // month's node is freed before its points join a lot (add_lot needs at most one), even when
    // settled inside a tick.
    FixedArray<LotNode> lot_nodes;
    uint32_t lot_nodes_bumped = 0;
    uint32_t lot_free_head = none;
    uint32_t lot_nodes_used = 0;

    // Hold slots (bump, then free list) and a binary min-heap of open holds by
    // (until_us, txn_id) for ticks.
    FixedArray<Hold> holds;
    uint32_t holds_bumped = 0;
    uint32_t hold_free_head = none;
    uint32_t open_holds = 0;
    FixedArray<uint32_t> hold_heap;

    // Transactions live forever, so this table grows: amortised doubling (each doubling moves
    // pages, not entries: FixedArray::grow), admitted before a claim so a full table refuses
    // with txn_limit and changes nothing. txn_slots indexes only what the TxnIndex does not know
    // (see in_local_index) and doubles when that half fills.
    TxnTable txns;
    FlatIndex<true> txn_slots;
    uint32_t txn_count = 0;
    uint32_t local_txn_count = 0;  // Entries in txn_slots.
    CheckpointBuild checkpoint;

    Counters counters{};
    // Shard::record_derived(): the derived records of the current apply call, in a list
    // reserved up front (record_derived's capacity), so recording allocates nothing.
    bool recording_derived = false;
    std::vector<Record> derived;
    void add_derived(Record record) {
        record.shard_index = shard_index;
        derived.push_back(record);
    }
    uint32_t tick_cursor = 0;  // Next member (dense index) a tick settles.
    // A lower bound on when any member next has something due (pending points, a lot expiring),
    // so that ticks on an idle ledger sweep nothing and need no log record. Creating a lot or a
    // pending lot lowers it; a completed sweep raises it to the least due time it saw.
    TimeUs sweep_due_us = never_us;
    TimeUs cycle_due_us = never_us;  // The least due time seen in the current sweep.

    // ---- Time rules -----------------------------------------------------------------------

    // Lots of months below this one have expired at time_us. With expiry off every lot is
    // month 0 and nothing expires, so a member needs one lot.
    MonthIndex expiry_limit(TimeUs time_us) const noexcept {
        if (config.expiry_months == 0) {
            return 0;
        }
        const MonthIndex month = month_of_now(time_us);
        return month > config.expiry_months ? month - config.expiry_months : 0;
    }
    MonthIndex lot_month_of(TimeUs time_us) const noexcept {
        return config.expiry_months == 0 ? 0 : month_of_now(time_us);
    }

    // Calendar arithmetic costs more than the rest of an earn; apply() works out the month of
    // its command's time once.
    TimeUs now_us = 0;
    MonthIndex now_month = 0;
    void set_now(TimeUs time_us) noexcept {
        if (time_us != now_us) {
            now_us = time_us;
            now_month = month_of(time_us);
        }
    }
    MonthIndex month_of_now(TimeUs time_us) const noexcept {
        return time_us == now_us ? now_month : month_of(time_us);
    }

    // Lots of a month expire at the start of this time.
    TimeUs expiry_start_us(MonthIndex month) const noexcept {
        const uint64_t expires = uint64_t{month} + 1 + config.expiry_months;
        return expires > month_index_max ? time_us_max
                                         : month_start_us(static_cast<MonthIndex>(expires));
    }
    void note_due(TimeUs due_us) noexcept {
        sweep_due_us = std::min(sweep_due_us, due_us);
        cycle_due_us = std::min(cycle_due_us, due_us);
    }
    void note_lot(MonthIndex month) noexcept {
        if (config.expiry_months != 0) {
            note_due(expiry_start_us(month));
        }
    }
    // When a settled member next has something due, holds aside (the heap has those).
    TimeUs next_due_us(const MemberRecord& member) const noexcept {
        TimeUs due_us = never_us;
        if (member.pending_head != none) {
            due_us = lot_nodes[member.pending_head].key;
        }
        if (config.expiry_months != 0 && member.lot_count() > 0) {
            due_us = std::min(due_us, expiry_start_us(lot_month(member.lots[0])));
        }
        return due_us;
    }

    // ---- Lookup ---------------------------------------------------------------------------

    // Prefetching for apply_batch(): hints only, they change nothing. Always inlined: GCC
    // finds a function that only prefetches free of side effects and drops calls to it.
    [[gnu::always_inline]] void prefetch_indexes(const Command& command) const noexcept {
        member_slots.prefetch(mix64(command.member_id));
        if (txn_index != nullptr) {
            txn_index->prefetch(command.txn_id);
            if (!command.ref_txn_id.is_zero()) {
                txn_index->prefetch(command.ref_txn_id);
            }
        } else {
            txn_slots.prefetch(hash_txn_id(command.txn_id));
        }
    }
    [[gnu::always_inline]] void prefetch_record(const Command& command) const noexcept {
        const uint32_t index = member_slots.first_candidate(mix64(command.member_id));
        if (index != none) {
            // 120 bytes may span three cache lines.
            const auto* bytes = reinterpret_cast<const char*>(&members[index]);
            __builtin_prefetch(bytes);
            __builtin_prefetch(bytes + 64);
            __builtin_prefetch(bytes + sizeof(MemberRecord) - 1);
        }
    }

    uint32_t find_member(MemberId member_id) const noexcept {
        return member_slots.find(mix64(member_id), [&](uint32_t index) {
            return members[index].member_id == member_id;
        });
    }
    // The transaction this shard applied under txn_id, or none. With a TxnIndex, a claimed id's
    // slot there also holds the owner's local position, so the shard's own index only keeps
    // what nobody claims (credit legs) and a new transaction costs one probe miss, not two.
    // Every id here was claimed before (a credit leg's by the sender's shard, before the credit
    // could exist), so an id the TxnIndex has never seen is new.
    bool in_local_index(Op op) const noexcept {
        return txn_index == nullptr || op == Op::transfer_credit;
    }
    uint32_t find_txn(TxnId txn_id) const noexcept {
        if (txn_index != nullptr) {
            uint32_t local = 0;
            const MemberId owner = txn_index->find(txn_id, &local);
            if (owner == 0) {
                return none;
            }
            if (local < txn_count && txns[local].txn_id == txn_id &&
                txns[local].member_id == owner && txns[local].op != Op::transfer_credit) {
                return local;
            }
            // Another shard's member owns it; this shard may hold its credit leg.
        }
        return find_local_txn(txn_id);
    }
    uint32_t find_local_txn(TxnId txn_id) const noexcept {
        return txn_slots.find(hash_txn_id(txn_id),
                              [&](uint32_t index) { return txns[index].txn_id == txn_id; });
    }

    // Makes room for txns_wanted entries in the transaction table, and for one more entry in
    // txn_slots when local is set. False, changing nothing, when memory cannot be had or the
    // table reached its ceiling (entry positions are 32 bits, none excluded).
    bool txn_room(uint64_t txns_wanted, bool local) noexcept {
        constexpr uint64_t txns_ceiling = none;
        if (txns_wanted > txns.count()) {
            if (txns_wanted > txns_ceiling) {
                return false;
            }
            const uint64_t doubled = std::max<uint64_t>(txns.count() * 2, 16);
            if (!txns.grow(std::min(std::max(doubled, txns_wanted), txns_ceiling))) {
                return false;
            }
        }
        txns.populate_through(txns_wanted);
        if (local && local_txn_count >= txn_slots.entries_max()) {
            return txn_slots.rehash(txn_slots.entries_max() * 2, [&](uint32_t index) {
                return hash_txn_id(txns[index].txn_id);
            });
        }
        return true;
    }

    // ---- Lot pool -------------------------------------------------------------------------

    uint32_t lot_nodes_free() const noexcept {
        return static_cast<uint32_t>(lot_nodes.count()) - lot_nodes_used;
    }
    uint32_t alloc_lot_node() noexcept {
        JIFEN_ASSERT(lot_nodes_used < lot_nodes.count());
        ++lot_nodes_used;
        if (lot_free_head != none) {
            const uint32_t node = lot_free_head;
            lot_free_head = lot_nodes[node].next;
            return node;
        }
        JIFEN_ASSERT(lot_nodes_bumped < lot_nodes.count());
        return lot_nodes_bumped++;
    }
    void free_lot_node(uint32_t node) noexcept {
        JIFEN_DASSERT(lot_nodes_used > 0);
        --lot_nodes_used;
        lot_nodes[node] = LotNode{0, 0, lot_free_head, 0};
        lot_free_head = node;
    }

    // ---- A member's lots: lots[] then the overflow list, ascending by month ----------------

    // Removes the oldest lot; the first overflow lot moves inline.
    void pop_front_lot(MemberRecord& member) noexcept { remove_inline_lot(member, 0); }

    void remove_inline_lot(MemberRecord& member, uint32_t position) noexcept {
        JIFEN_DASSERT(position < member.lot_count());
        for (uint32_t i = position; i + 1 < member.lot_count(); ++i) {
            member.lots[i] = member.lots[i + 1];
        }
        member.set_lot_count(member.lot_count() - 1);
        if (member.overflow_head != none) {
            const uint32_t node = member.overflow_head;
            member.set_lot_count(member.lot_count() + 1);
            member.lots[member.lot_count() - 1] =
                make_lot(static_cast<MonthIndex>(lot_nodes[node].key), lot_nodes[node].points);
            member.overflow_head = lot_nodes[node].next;
            free_lot_node(node);
        }
    }

    // Adds points to the lot of a month, creating it in order. Needs at most one free node.
    void add_lot(MemberRecord& member, MonthIndex month, Points points) noexcept {
        JIFEN_DASSERT(points > 0);
        uint32_t position = 0;
        for (; position < member.lot_count(); ++position) {
            const MonthIndex at = lot_month(member.lots[position]);
            if (at == month) {
                member.lots[position] = make_lot(month, lot_points(member.lots[position]) + points);
                return;
            }
            if (at > month) {
                break;
            }
        }
        if (position < member.lot_count() || member.lot_count() < lots_inline_max) {
            if (member.lot_count() == lots_inline_max) {
                // The newest inline lot spills to the front of the overflow list.
                const uint32_t node = alloc_lot_node();
                const uint64_t spilled = member.lots[lots_inline_max - 1];
                lot_nodes[node] =
                    LotNode{lot_points(spilled), lot_month(spilled), member.overflow_head, 0};
                member.overflow_head = node;
                member.set_lot_count(member.lot_count() - 1);
            }
            for (uint32_t i = member.lot_count(); i > position; --i) {
                member.lots[i] = member.lots[i - 1];
            }
            member.lots[position] = make_lot(month, points);
            member.set_lot_count(member.lot_count() + 1);
            note_lot(month);
            return;
        }
        uint32_t previous = none;
        uint32_t node = member.overflow_head;
        while (node != none && lot_nodes[node].key < month) {
            previous = node;
            node = lot_nodes[node].next;
        }
        if (node != none && lot_nodes[node].key == month) {
            lot_nodes[node].points += points;
            JIFEN_ASSERT(static_cast<uint64_t>(lot_nodes[node].points) <= lot_points_mask);
            return;
        }
        const uint32_t created = alloc_lot_node();
        lot_nodes[created] = LotNode{points, month, node, 0};
        note_lot(month);
        if (previous == none) {
            member.overflow_head = created;
        } else {
            lot_nodes[previous].next = created;
        }
    }

    // Takes up to amount from the oldest lots; returns what it took, and in *newest (when
    // given and anything was taken) the month of the last lot it took from.
    Points consume_oldest(MemberRecord& member, Points amount,
                          MonthIndex* newest = nullptr) noexcept {
        Points taken = 0;
        while (taken < amount && member.lot_count() > 0) {
            const Points in_lot = lot_points(member.lots[0]);
            const Points take = std::min(in_lot, amount - taken);
            taken += take;
            if (newest != nullptr) {
                *newest = lot_month(member.lots[0]);
            }
            if (take == in_lot) {
                pop_front_lot(member);
            } else {
                member.lots[0] -= static_cast<uint64_t>(take);
            }
        }
        return taken;
    }

    // Takes up to amount from the lot of one month; returns what it took.
    Points take_from_month(MemberRecord& member, MonthIndex month, Points amount) noexcept {
        for (uint32_t position = 0; position < member.lot_count(); ++position) {
            if (lot_month(member.lots[position]) == month) {
                const Points in_lot = lot_points(member.lots[position]);
                const Points take = std::min(in_lot, amount);
                if (take == in_lot) {
                    remove_inline_lot(member, position);
                } else {
                    member.lots[position] -= static_cast<uint64_t>(take);
                }
                return take;
            }
        }
        uint32_t previous = none;
        for (uint32_t node = member.overflow_head; node != none;
             previous = node, node = lot_nodes[node].next) {
            if (lot_nodes[node].key == month) {
                const Points take = std::min(lot_nodes[node].points, amount);
                lot_nodes[node].points -= take;
                if (lot_nodes[node].points == 0) {
                    const uint32_t next = lot_nodes[node].next;
                    if (previous == none) {
                        member.overflow_head = next;
                    } else {
                        lot_nodes[previous].next = next;
                    }
                    free_lot_node(node);
                }
                return take;
            }
        }
        return 0;
    }

    Points lots_sum(const MemberRecord& member) const noexcept {
        Points sum = 0;
        for (uint32_t i = 0; i < member.lot_count(); ++i) {
            sum += lot_points(member.lots[i]);
        }
        for (uint32_t node = member.overflow_head; node != none; node = lot_nodes[node].next) {
            sum += lot_nodes[node].points;
        }
        return sum;
    }

    // Gives points to available: they first pay any negative balance, the rest join a lot.
    void credit(MemberRecord& member, MonthIndex month, Points points) noexcept {
        const Points debt = member.available < 0 ? -member.available : 0;
        member.available += points;
        if (points > debt) {
            add_lot(member, month, points - debt);
        }
    }

    // At most the nodes a hold of amount taken at time_us needs, one per month it takes,
    // reckoned before settling (a refusal must come before the claim, and settling then never
    // leaves fewer free nodes: each point it gives back frees its node before joining a lot).
    // Settled, the oldest lots that make up amount are at most the unexpired lots that make it
    // up now, plus the months coming back (what a debt leaves of them, unexpired) that are
    // older than the newest of those lots: one of the same month joins its lot.
    uint32_t nodes_for_hold(const MemberRecord& member, Points amount,
                            TimeUs time_us) const noexcept {
        const MonthIndex limit = expiry_limit(time_us);
        uint32_t months = 0;
        Points sum = 0;
        MonthIndex completing = 0;  // The month of the lot that makes up amount, when one does.
        auto count = [&](MonthIndex month, Points points) {
            if (month >= limit && sum < amount) {
                sum += points;
                ++months;
                completing = month;
            }
        };
        for (uint32_t i = 0; i < member.lot_count(); ++i) {
            count(lot_month(member.lots[i]), lot_points(member.lots[i]));
        }
        for (uint32_t node = member.overflow_head; node != none && sum < amount;
             node = lot_nodes[node].next) {
            count(static_cast<MonthIndex>(lot_nodes[node].key), lot_nodes[node].points);
        }
        const bool made_up = sum >= amount;
        Points debt = member.available < 0 ? -member.available : 0;
        visit_returning(member, time_us, [&](MonthIndex month, Points points) {
            const Points paid = std::min(debt, points);
            debt -= paid;
            if (points > paid && month >= limit && (!made_up || month < completing)) {
                ++months;
            }
        });
        return months;
    }

    // Takes amount from the oldest lots (all of it must be there) into a list of its own, one
    // node per month, ascending; returns its head. Needs nodes_for_hold() free nodes.
    uint32_t take_oldest_as_list(MemberRecord& member, Points amount) noexcept {
        uint32_t head = none;
        uint32_t tail = none;
        for (Points taken = 0; taken < amount;) {
            JIFEN_ASSERT(member.lot_count() > 0);
            const MonthIndex month = lot_month(member.lots[0]);
            const Points take = std::min(lot_points(member.lots[0]), amount - taken);
            if (take == lot_points(member.lots[0])) {
                pop_front_lot(member);  // Frees a node first when an overflow lot moves inline.
            } else {
                member.lots[0] -= static_cast<uint64_t>(take);
            }
            const uint32_t node = alloc_lot_node();
            lot_nodes[node] = LotNode{take, month, none, 0};
            (tail == none ? head : lot_nodes[tail].next) = node;
            tail = node;
            taken += take;
        }
        return head;
    }

    // A legacy hold's (hold_flag_legacy) single lot, of no month.
    uint32_t take_oldest_as_one(MemberRecord& member, Points amount) noexcept {
        const Points taken = consume_oldest(member, amount);
        JIFEN_ASSERT(taken == amount);
        const uint32_t node = alloc_lot_node();
        lot_nodes[node] = LotNode{amount, 0, none, 0};
        return node;
    }

    // Points coming back to available in a month (a hold's, pending ones): a debt takes them
    // first, as credit() does; those of a month below limit (its validity ended meanwhile)
    // then expire at once, into expired, without joining a lot.
    void give_back_points(MemberRecord& member, MonthIndex month, Points points, MonthIndex limit,
                          Settlement* expired) noexcept {
        if (month >= limit) {
            credit(member, month, points);
            return;
        }
        const Points paid = std::min(points, member.available < 0 ? -member.available : 0);
        member.available += paid;
        if (points > paid) {
            count_expired(member, month, points - paid, expired);
        }
    }

    // Counts points of a month that expired into expired and the member's and the shard's
    // totals; the caller takes them out of wherever they were.
    void count_expired(MemberRecord& member, MonthIndex month, Points points,
                       Settlement* expired) noexcept {
        // The due time is for the derived record only: no calendar work without one.
        expired->add(points, recording_derived ? expiry_start_us(month) : 0);
        member.lifetime_expired += points;
        counters.expired += points;
    }

    // Gives a closed hold's points back, but for the first `spent` of them (oldest first, what
    // a capture took; *spent_month, when given, gets the month of the newest of those): each
    // month's points to that month (give_back_points), a legacy hold's to returned_month. Each
    // node is freed before its points join a lot.
    void give_back(MemberRecord& member, const Hold& closed, Points spent,
                   MonthIndex returned_month, MonthIndex limit, Settlement* expired,
                   MonthIndex* spent_month = nullptr) noexcept {
        for (uint32_t node = closed.lots_head; node != none;) {
            const LotNode lot = lot_nodes[node];
            free_lot_node(node);
            const Points spend = std::min(spent, lot.points);
            spent -= spend;
            if (spend > 0 && spent_month != nullptr) {
                *spent_month = static_cast<MonthIndex>(lot.key);
            }
            if (lot.points > spend) {
                const MonthIndex month = (closed.flags & hold_flag_legacy) != 0
                                             ? returned_month
                                             : static_cast<MonthIndex>(lot.key);
                give_back_points(member, month, lot.points - spend, limit, expired);
            }
            node = lot.next;
        }
    }

    // Expires the member's lots of months below limit (all of them oldest, as lots are
    // ascending) into expired.
    void expire_before(MemberRecord& member, MonthIndex limit, Settlement* expired) noexcept {
        while (member.lot_count() > 0 && lot_month(member.lots[0]) < limit) {
            const Points in_lot = lot_points(member.lots[0]);
            member.available -= in_lot;
            count_expired(member, lot_month(member.lots[0]), in_lot, expired);
            pop_front_lot(member);
        }
    }

    // ---- Pending lots ---------------------------------------------------------------------

    // A member's pending lots, ascending by release time, and their sum and count
    // (pending_lots), so that neither a new pending earn nor a reply walks them: a member may
    // have thousands.

    uint32_t index_of(const MemberRecord& member) const noexcept {
        return static_cast<uint32_t>(&member - &members[0]);
    }

    void add_pending(MemberRecord& member, TimeUs release_us, Points points) noexcept {
        const uint32_t first = member.pending_head;
        PendingLots& sum = pending_lots[index_of(member)];
        if (first == none) {
            sum = PendingLots{0, 0, 0};
        }
        sum.points += points;
        uint32_t previous = none;
        uint32_t node = first;
        if (first != none && lot_nodes[lot_nodes[first].last].key <= release_us) {
            previous = lot_nodes[first].last;
            node = lot_nodes[previous].key == release_us ? previous : none;
        } else {
            while (node != none && lot_nodes[node].key < release_us) {
                previous = node;
                node = lot_nodes[node].next;
            }
        }
        if (node != none && lot_nodes[node].key == release_us) {
            lot_nodes[node].points += points;
            return;
        }
        const uint32_t created = alloc_lot_node();
        lot_nodes[created] = LotNode{points, release_us, node, none};
        ++sum.lots;
        note_due(release_us);
        if (previous == none) {
            lot_nodes[created].last = first == none ? created : lot_nodes[first].last;
            member.pending_head = created;
        } else {
            lot_nodes[previous].next = created;
            if (node == none) {
                lot_nodes[first].last = created;
            }
        }
    }

    // Unlinks a pending lot (node, which follows previous, or is the first when previous is
    // none), takes its points off the sum and frees its node; returns it.
    LotNode remove_pending(MemberRecord& member, uint32_t previous, uint32_t node) noexcept {
        const LotNode removed = lot_nodes[node];
        PendingLots& sum = pending_lots[index_of(member)];
        sum.points -= removed.points;
        --sum.lots;
        const uint32_t first = member.pending_head;
        if (previous == none) {
            member.pending_head = removed.next;
            if (removed.next != none) {
                lot_nodes[removed.next].last = removed.last;
            }
        } else {
            lot_nodes[previous].next = removed.next;
            if (lot_nodes[first].last == node) {
                lot_nodes[first].last = previous;
            }
        }
        free_lot_node(node);
        return removed;
    }

    Points pending_sum(const MemberRecord& member) const noexcept {
        return member.pending_head == none ? 0 : pending_lots[index_of(member)].points;
    }

    // Whether a pending earn released at release_us (> time_us) would pass
    // pending_lots_per_member_max: the member's lots still pending at time_us are already that
    // many, and it needs a lot of its own (none is released at release_us yet). Walks no
    // further than settling the member and adding the lot would.
    bool pending_lots_full(const MemberRecord& member, TimeUs release_us,
                           TimeUs time_us) const noexcept {
        const uint32_t limit = config.pending_lots_per_member_max;
        if (limit == 0 || member.pending_head == none ||
            pending_lots[index_of(member)].lots < limit) {
            return false;  // The common case: no walk.
        }
        // Lots due by time_us are released before the earn applies: the list's first ones.
        uint32_t pending = pending_lots[index_of(member)].lots;
        uint32_t node = member.pending_head;
        for (; node != none && lot_nodes[node].key <= time_us; node = lot_nodes[node].next) {
            --pending;
        }
        if (pending < limit) {
            return false;
        }
        const TimeUs last_us = lot_nodes[lot_nodes[member.pending_head].last].key;
        if (release_us >= last_us) {
            return release_us != last_us;  // The usual order: at most the last lot to join.
        }
        for (; node != none && lot_nodes[node].key <= release_us; node = lot_nodes[node].next) {
            if (lot_nodes[node].key == release_us) {
                return false;
            }
        }
        return true;
    }

    // Takes up to amount from the pending lot released at release_us.
    Points take_pending(MemberRecord& member, TimeUs release_us, Points amount) noexcept {
        uint32_t previous = none;
        for (uint32_t node = member.pending_head; node != none;
             previous = node, node = lot_nodes[node].next) {
            if (lot_nodes[node].key == release_us) {
                const Points take = std::min(lot_nodes[node].points, amount);
                lot_nodes[node].points -= take;
                pending_lots[index_of(member)].points -= take;
                if (lot_nodes[node].points == 0) {
                    remove_pending(member, previous, node);
                }
                return take;
            }
        }
        return 0;
    }

    // ---- Hold heap: open holds by (until_us, txn_id) --------------------------------------

    bool hold_before(uint32_t left, uint32_t right) const noexcept {
        const Hold& a = holds[left];
        const Hold& b = holds[right];
        if (a.until_us != b.until_us) {
            return a.until_us < b.until_us;
        }
        const TxnId& x = txns[a.txn_index].txn_id;
        const TxnId& y = txns[b.txn_index].txn_id;
        return x.hi != y.hi ? x.hi < y.hi : x.lo < y.lo;
    }
    void heap_place(uint32_t position, uint32_t hold) noexcept {
        hold_heap[position] = hold;
        holds[hold].heap_position = position;
    }
    void heap_sift_up(uint32_t position) noexcept {
        const uint32_t hold = hold_heap[position];
        while (position > 0) {
            const uint32_t parent = (position - 1) / 2;
            if (!hold_before(hold, hold_heap[parent])) {
                break;
            }
            heap_place(position, hold_heap[parent]);
            position = parent;
        }
        heap_place(position, hold);
    }
    void heap_sift_down(uint32_t position) noexcept {
        const uint32_t hold = hold_heap[position];
        for (;;) {
            const uint32_t left = 2 * position + 1;
            if (left >= open_holds) {
                break;
            }
            const uint32_t right = left + 1;
            const uint32_t child =
                right < open_holds && hold_before(hold_heap[right], hold_heap[left]) ? right : left;
            if (!hold_before(hold_heap[child], hold)) {
                break;
            }
            heap_place(position, hold_heap[child]);
            position = child;
        }
        heap_place(position, hold);
    }
    void heap_push(uint32_t hold) noexcept {
        const uint32_t position = open_holds++;
        heap_place(position, hold);
        heap_sift_up(position);
    }
    void heap_remove(uint32_t hold) noexcept {
        const uint32_t position = holds[hold].heap_position;
        JIFEN_ASSERT(position < open_holds && hold_heap[position] == hold);
        --open_holds;
        if (position == open_holds) {
            return;
        }
        const uint32_t moved = hold_heap[open_holds];
        heap_place(position, moved);
        heap_sift_up(position);
        heap_sift_down(holds[moved].heap_position);
    }

    uint32_t alloc_hold() noexcept {
        if (hold_free_head != none) {
            const uint32_t hold = hold_free_head;
            hold_free_head = holds[hold].next;
            return hold;
        }
        JIFEN_ASSERT(holds_bumped < holds.count());
        return holds_bumped++;
    }
    // The member's holds still open at time_us (those due by then are about to time out).
    uint32_t member_open_holds(const MemberRecord& member, TimeUs time_us) const noexcept {
        if (member.hold_head == none) {
            return 0;
        }
        uint32_t open = holds[member.hold_head].member_holds;
        for (uint32_t hold = member.hold_head; hold != none && holds[hold].until_us <= time_us;
             hold = holds[hold].next) {
            --open;
        }
        return open;
    }

    bool hold_slot_free() const noexcept {
        return hold_free_head != none || holds_bumped < holds.count();
    }

    // Closes an open hold already unlinked from its member: its points leave held, the entry
    // records how it closed, the slot returns to the pool. Returns the hold as it was: the
    // caller gives back its lots (give_back), which still hold its points.
    Hold close_hold(MemberRecord& member, uint32_t hold, TxnState state) noexcept {
        const Hold closed = holds[hold];
        heap_remove(hold);
        TxnEntry& entry = txns[closed.txn_index];
        JIFEN_DASSERT(entry.state == TxnState::hold_open);
        entry.state = state;
        entry.aux = 0;
        member.held -= closed.points;
        holds[hold] = Hold{0, 0, 0, 0, hold_free_head, none, 0, none, 0, 0};
        hold_free_head = hold;
        return closed;
    }

    bool due_before(uint32_t a, uint32_t b) const noexcept {
        return holds[a].until_us != holds[b].until_us ? holds[a].until_us < holds[b].until_us
                                                      : holds[a].txn_index < holds[b].txn_index;
    }

    // Links an open hold into its member's list, which is in the order holds fall due: by
    // until_us, then by the order they were taken (txn_index), so those due at any time lead.
    // A new hold usually falls due last (holds are mostly taken with one timeout), and holds
    // loaded from a checkpoint come in due order: the walk starts from the last.
    void link_hold(MemberRecord& member, uint32_t hold) noexcept {
        const uint32_t first = member.hold_head;
        if (first == none) {
            holds[hold].next = none;
            holds[hold].prev = hold;
            holds[hold].member_holds = 1;
            member.hold_head = hold;
            return;
        }
        ++holds[first].member_holds;
        uint32_t before = holds[first].prev;  // The last.
        while (due_before(hold, before)) {
            if (before == first) {
                holds[hold].next = first;
                holds[hold].prev = holds[first].prev;
                holds[hold].member_holds = holds[first].member_holds;
                holds[first].prev = hold;
                member.hold_head = hold;
                return;
            }
            before = holds[before].prev;
            JIFEN_ASSERT(before != none);  // A broken prev chain: never walk off it.
        }
        const uint32_t after = holds[before].next;
        holds[hold].next = after;
        holds[hold].prev = before;
        holds[before].next = hold;
        holds[after == none ? first : after].prev = hold;
    }

    void unlink_hold(MemberRecord& member, uint32_t hold) noexcept {
        JIFEN_ASSERT(holds[hold].prev != none && holds[hold].member_index == index_of(member));
        const uint32_t first = member.hold_head;
        const uint32_t next = holds[hold].next;
        const uint32_t prev = holds[hold].prev;
        if (hold == first) {
            member.hold_head = next;
            if (next != none) {
                holds[next].prev = prev;  // The last.
                holds[next].member_holds = holds[hold].member_holds - 1;
            }
        } else {
            holds[prev].next = next;
            holds[next == none ? first : next].prev = prev;
            --holds[first].member_holds;
        }
        holds[hold].next = none;
        holds[hold].prev = none;
    }

    // ---- Settlement -----------------------------------------------------------------------
    //
    // At time t a member's due events are: holds with until_us <= t (their points return to the
    // months they were earned in), pending lots with release time <= t (to a lot of that
    // month), and lots of months below expiry_limit(t). Settling gives the returning points back
    // event by event in the order they fell due (holds by until_us, then in the order they were
    // taken, before pending lots due at the same time; a hold's months oldest first), a
    // negative balance taking them as they come, then expires old lots: points that come back
    // in a month that expired meanwhile expire at once. Events due later come back later,
    // whatever their months, and expiry only grows with t, so settling at t1 then t2 equals
    // settling once at t2: the state after a command never depends on when ticks ran. A
    // member's open holds are listed in that same order (link_hold), so the due ones lead.

    // Calls visit(month, points) for everything returning to the member by time_us, in the
    // order settle() gives it back.
    template <class Visit>
    void visit_returning(const MemberRecord& member, TimeUs time_us, Visit visit) const noexcept {
        uint32_t hold = member.hold_head;
        uint32_t pending = member.pending_head;
        while (true) {
            const bool pending_due = pending != none && lot_nodes[pending].key <= time_us;
            if (hold != none && holds[hold].until_us <= time_us &&
                (!pending_due || holds[hold].until_us <= lot_nodes[pending].key)) {
                if ((holds[hold].flags & hold_flag_legacy) != 0) {
                    visit(lot_month_of(holds[hold].until_us), holds[hold].points);
                } else {
                    for (uint32_t node = holds[hold].lots_head; node != none;
                         node = lot_nodes[node].next) {
                        visit(static_cast<MonthIndex>(lot_nodes[node].key), lot_nodes[node].points);
                    }
                }
                hold = holds[hold].next;
            } else if (pending_due) {
                visit(lot_month_of(lot_nodes[pending].key), lot_nodes[pending].points);
                pending = lot_nodes[pending].next;
            } else {
                return;
            }
        }
    }

    Settled preview(const MemberRecord& member, TimeUs time_us) const noexcept {
        const MonthIndex limit = expiry_limit(time_us);
        if (member.hold_head == none && member.pending_head == none &&
            (member.lot_count() == 0 || lot_month(member.lots[0]) >= limit)) {
            // The common case, as in settle(): nothing due. The overflow lots are newer than
            // lots[0], and a negative balance has no lots.
            return Settled{member.available, member.held, 0};
        }
        Settled settled;
        settled.held = member.held;
        for (uint32_t hold = member.hold_head; hold != none && holds[hold].until_us <= time_us;
             hold = holds[hold].next) {
            settled.held -= holds[hold].points;
        }
        settled.pending = pending_sum(member);
        for (uint32_t node = member.pending_head; node != none && lot_nodes[node].key <= time_us;
             node = lot_nodes[node].next) {
            settled.pending -= lot_nodes[node].points;
        }
        // Of the returning points, what a debt does not take and does not expire at once.
        Points debt = member.available < 0 ? -member.available : 0;
        Points returning_live = 0;
        visit_returning(member, time_us, [&](MonthIndex month, Points points) {
            const Points paid = std::min(debt, points);
            debt -= paid;
            if (month >= limit) {
                returning_live += points - paid;
            }
        });
        if (member.available >= 0) {
            Points expiring = 0;
            for (uint32_t i = 0; i < member.lot_count(); ++i) {
                if (lot_month(member.lots[i]) >= limit) {
                    break;
                }
                expiring += lot_points(member.lots[i]);
            }
            if (member.lot_count() == lots_inline_max) {
                for (uint32_t node = member.overflow_head;
                     node != none && lot_nodes[node].key < limit; node = lot_nodes[node].next) {
                    expiring += lot_nodes[node].points;
                }
            }
            settled.available = member.available - expiring + returning_live;
        } else {
            settled.available = debt > 0 ? -debt : returning_live;
        }
        return settled;
    }

    // Builds before Config::points_keep_months put every point coming back into a lot of its
    // month before a debt or expiry took it, and creating that lot noted the lot's expiry for
    // the ticks' sweep (note_lot). Under their rule, a settlement notes the same months, so
    // their ticks settle the members they logged (a tick's count is checked on replay). Noting a
    // month again changes nothing.
    void note_as_before(const MemberRecord& member, MonthIndex month) noexcept {
        if (config.points_keep_months) {
            return;
        }
        for (uint32_t i = 0; i < member.lot_count(); ++i) {
            if (lot_month(member.lots[i]) == month) {
                return;
            }
        }
        for (uint32_t node = member.overflow_head; node != none; node = lot_nodes[node].next) {
            if (lot_nodes[node].key == month) {
                return;
            }
        }
        note_lot(month);
    }

    // Returns true when anything was due.
    bool settle(uint32_t member_index, TimeUs time_us) noexcept {
        MemberRecord& member = members[member_index];
        const MonthIndex limit = expiry_limit(time_us);
        if (member.hold_head == none && member.pending_head == none &&
            (member.lot_count() == 0 || lot_month(member.lots[0]) >= limit)) {
            return false;  // The common case: nothing due.
        }
        Settled expected{};
        if constexpr (::jifen::detail::dasserts_enabled) {
            expected = preview(member, time_us);
        }
        const Points available_before = member.available;
        Settlement timed_out{Op::hold_timeout};
        Settlement released{Op::pending_release};
        Settlement expired{Op::expire};
        uint32_t holds_timed_out = 0;
        // As visit_returning() walks them.
        while (true) {
            const uint32_t hold = member.hold_head;
            const uint32_t pending = member.pending_head;
            const bool pending_due = pending != none && lot_nodes[pending].key <= time_us;
            if (hold != none && holds[hold].until_us <= time_us &&
                (!pending_due || holds[hold].until_us <= lot_nodes[pending].key)) {
                unlink_hold(member, hold);
                timed_out.hold_id = std::as_const(txns)[holds[hold].txn_index].txn_id;
                const Hold closed = close_hold(member, hold, TxnState::hold_timed_out);
                note_as_before(member, lot_month_of(closed.until_us));
                give_back(member, closed, 0, lot_month_of(closed.until_us), limit, &expired);
                timed_out.add(closed.points, closed.until_us);
                ++holds_timed_out;
            } else if (pending_due) {
                const LotNode lot = remove_pending(member, none, pending);
                note_as_before(member, lot_month_of(lot.key));
                give_back_points(member, lot_month_of(lot.key), lot.points, limit, &expired);
                released.add(lot.points, lot.key);
            } else {
                break;
            }
        }
        if (holds_timed_out > 1) {
            timed_out.hold_id = TxnId{};  // One record for all of them: it names none.
        }
        expire_before(member, limit, &expired);
        JIFEN_DASSERT(member.available == expected.available);
        JIFEN_DASSERT(member.held == expected.held);
        JIFEN_DASSERT(pending_sum(member) == expected.pending);
        (void)expected;
        if (recording_derived) {
            Points available = available_before;
            for (const Settlement* step : {&timed_out, &released, &expired}) {
                available += step->op == Op::expire ? -step->points : step->points;
                if (step->points > 0) {
                    add_derived(step->record(member.member_id, available));
                }
            }
            JIFEN_DASSERT(available == member.available);
        }
        return timed_out.points + released.points > 0 || expired.points > 0;
    }

    // The cheap invariants of one member, checked after every apply that touched it: its lots
    // (one per month it has points of, so a few dozen at most) and its held points. Its hold
    // and pending lists, which can be long, are checked by member_lists_consistent().
    bool member_consistent(const MemberRecord& member) const noexcept {
        if (member.available < 0) {
            // Whether a debt was allowed is decided when the reverse is applied: one made while
            // reverse_allows_negative was on stays after it is turned off (set_rules). A debt
            // only comes from reversing earns, so it never exceeds what reverses took.
            if (member.lot_count() != 0 || member.overflow_head != none ||
                -member.available > member.lifetime_reversed) {
                return false;
            }
        } else if (lots_sum(member) != member.available) {
            return false;
        }
        if (member.lot_count() > lots_inline_max ||
            (member.overflow_head != none && member.lot_count() != lots_inline_max)) {
            return false;
        }
        for (uint32_t i = 0; i < member.lot_count(); ++i) {
            if (lot_points(member.lots[i]) <= 0 ||
                (i > 0 && lot_month(member.lots[i - 1]) >= lot_month(member.lots[i]))) {
                return false;
            }
        }
        uint64_t month_before =
            member.lot_count() > 0 ? lot_month(member.lots[member.lot_count() - 1]) : 0;
        for (uint32_t node = member.overflow_head; node != none; node = lot_nodes[node].next) {
            if (lot_nodes[node].points <= 0 || lot_nodes[node].key <= month_before) {
                return false;
            }
            month_before = lot_nodes[node].key;
        }
        // The lists' ends, which appending relies on: the first pending lot names the last,
        // the first hold's prev is the last hold.
        if (member.pending_head != none &&
            (pending_lots[index_of(member)].points <= 0 ||
             lot_nodes[lot_nodes[member.pending_head].last].next != none)) {
            return false;
        }
        return member.held >= 0 && (member.held == 0) == (member.hold_head == none) &&
               (member.hold_head == none || holds[holds[member.hold_head].prev].next == none);
    }

    // A member's pending lots (ascending, positive, their sum and last node noted) and open holds
    // (in due order, linked both ways, their lots consistent, adding up to held). Walks both
    // lists: checked by audit() and on loading, and after every apply with JIFEN_DASSERTs.
    bool member_lists_consistent(const MemberRecord& member) const noexcept {
        uint64_t release_before = 0;
        Points pending = 0;
        uint32_t lots = 0;
        uint32_t last = none;
        for (uint32_t node = member.pending_head; node != none; node = lot_nodes[node].next) {
            if (lot_nodes[node].points <= 0 || lot_nodes[node].key < release_before) {
                return false;
            }
            release_before = lot_nodes[node].key + 1;
            pending += lot_nodes[node].points;
            ++lots;
            last = node;
        }
        if (last != none && (pending != pending_lots[index_of(member)].points ||
                             lots != pending_lots[index_of(member)].lots ||
                             lot_nodes[member.pending_head].last != last)) {
            return false;
        }
        Points held = 0;
        uint32_t count = 0;
        last = none;
        for (uint32_t hold = member.hold_head; hold != none; hold = holds[hold].next) {
            const uint32_t next = holds[hold].next;
            if (holds[hold].points <= 0 || !hold_lots_consistent(holds[hold]) ||
                (next != none && (!due_before(hold, next) || holds[next].prev != hold))) {
                return false;
            }
            held += holds[hold].points;
            ++count;
            last = hold;
        }
        return held == member.held &&
               (last == none || (holds[member.hold_head].prev == last &&
                                 holds[member.hold_head].member_holds == count));
    }

    bool member_fully_consistent(const MemberRecord& member) const noexcept {
        return member_consistent(member) && member_lists_consistent(member);
    }

    // A hold's lots: positive, months ascending, adding up to its points.
    bool hold_lots_consistent(const Hold& hold) const noexcept {
        Points sum = 0;
        uint64_t month_before = 0;
        for (uint32_t node = hold.lots_head; node != none; node = lot_nodes[node].next) {
            if (lot_nodes[node].points <= 0 ||
                (node != hold.lots_head && lot_nodes[node].key <= month_before)) {
                return false;
            }
            month_before = lot_nodes[node].key;
            sum += lot_nodes[node].points;
        }
        return sum == hold.points;
    }

    // ---- Transactions ---------------------------------------------------------------------

    Result claim(const Command& command) noexcept {
        if (txn_index == nullptr || command.op == Op::transfer_credit) {
            // A credit leg runs under the sender's id, which the sender's shard claimed.
            return Result::ok;
        }
        // record() puts the transaction at txn_count next.
        switch (txn_index->claim(command.txn_id, command.member_id, txn_count, shard_index)) {
            case TxnIndex::Claim::claimed:
                return Result::ok;
            case TxnIndex::Claim::owned_by_same:
                // Claimed for this member yet not found here: its local position is stale
                // (a shard reloaded into an index that outlived it). Refuse rather than apply
                // an id twice.
                return Result::id_conflict;
            case TxnIndex::Claim::owned_by_other:
                return Result::id_conflict;
            case TxnIndex::Claim::full:
                return Result::txn_limit;
        }
        return Result::txn_limit;
    }

    // Records an applied transaction. admit() made room for it.
    uint32_t record(const Command& command, const Outcome& outcome, TxnState state, uint64_t aux,
                    MonthIndex month) noexcept {
        JIFEN_ASSERT(txn_count < txns.count());
        const uint32_t index = txn_count++;
        // Every field at once: zeroing the entry first cost a tenth of record().
        txns[index] = TxnEntry{command.txn_id,
                               command.member_id,
                               fingerprint_of(command),
                               outcome.points,
                               outcome.shortfall,
                               outcome.available,
                               outcome.held,
                               outcome.pending,
                               aux,
                               month,
                               command.op,
                               state,
                               0};
        if (in_local_index(command.op)) {
            JIFEN_ASSERT(local_txn_count < txn_slots.entries_max());
            txn_slots.insert(hash_txn_id(command.txn_id), index);
            ++local_txn_count;
        }
        return index;
    }

    Outcome replay(const TxnEntry& entry) const noexcept {
        Outcome outcome;
        if (entry.state == TxnState::transfer_in_flight) {
            // The credit leg is still on its way: its outcome, and so this one's, is unknown.
            outcome.result = Result::in_progress;
            return outcome;
        }
        outcome.replayed = true;
        if (entry.state == TxnState::transfer_refunded) {
            outcome.result = static_cast<Result>(entry.refusal);
        }
        outcome.points = entry.points;
        outcome.shortfall = entry.shortfall;
        outcome.available = entry.available;
        outcome.held = entry.held;
        outcome.pending = entry.pending;
        return outcome;
    }

    Outcome balances(uint32_t member_index, Points points, Points shortfall) const noexcept {
        const MemberRecord& member = members[member_index];
        JIFEN_ASSERT(member_consistent(member));
        JIFEN_DASSERT(member_lists_consistent(member));
        Outcome outcome;
        outcome.points = points;
        outcome.shortfall = shortfall;
        outcome.available = member.available;
        outcome.held = member.held;
        outcome.pending = pending_sum(member);
        return outcome;
    }

    static bool over_cap(const Settled& settled, Points adding) noexcept {
        return settled.available + settled.held + settled.pending + adding > points_balance_max;
    }

    // Whether crediting points to a settled member fits: under the balance cap, with a lot node
    // free to hold them. Earn, transfer_credit and a credit adjust all ask the same.
    Result check_credit(const Settled& settled, Points points) const noexcept {
        if (over_cap(settled, points)) {
            return Result::balance_limit;
        }
        if (lot_nodes_free() == 0) {
            return Result::lot_limit;
        }
        return Result::ok;
    }

    // ---- Request shape --------------------------------------------------------------------

    static Result check_shape(const Command& command) noexcept {
        switch (command.op) {
            case Op::enroll:
            case Op::update_member:
            case Op::earn:
            case Op::redeem:
            case Op::hold:
            case Op::capture:
            case Op::release:
            case Op::reverse:
            case Op::transfer:
            case Op::adjust:
            case Op::transfer_credit:
            case Op::transfer_refund:
            case Op::tick:
            case Op::transfer_confirm:
                break;
            case Op::hold_timeout:  // Derived records are logged, never applied.
            case Op::pending_release:
            case Op::expire:
            case Op::transfer_received:
            default:
                return Result::unknown_opcode;
        }
        const uint16_t flags_allowed = command.op == Op::adjust ? adjust_debit : 0;
        if (command.reserved0 != 0 || (command.flags & ~flags_allowed) != 0) {
            return Result::reserved_not_zero;
        }
        if (command.time_us >= time_us_max || command.until_us >= time_us_max) {
            return Result::field_out_of_range;
        }
        if (command.op == Op::tick) {
            return command.points < 0 ? Result::points_not_positive : Result::ok;
        }
        if (command.txn_id.is_zero()) {
            return Result::txn_id_zero;
        }
        if (command.member_id == 0) {
            return Result::member_id_zero;
        }
        Result result = Result::ok;
        switch (command.op) {
            case Op::enroll:
            case Op::update_member:
                if (command.points != 0 || command.status > MemberStatus::frozen ||
                    !birthday_valid(command.birthday)) {
                    return Result::field_out_of_range;
                }
                break;
            case Op::earn:
            case Op::redeem:
            case Op::adjust:
                points_in_range(command.points, &result);
                break;
            case Op::hold:
                if (!points_in_range(command.points, &result)) {
                    break;
                }
                if (command.until_us != 0 && command.until_us <= command.time_us) {
                    return Result::field_out_of_range;
                }
                break;
            case Op::capture:
                if (command.points < 0) {
                    return Result::points_not_positive;
                }
                if (command.points > points_per_op_max) {
                    return Result::points_too_large;
                }
                break;
            case Op::release:
            case Op::reverse:
                if (command.points != 0) {
                    return Result::field_out_of_range;
                }
                break;
            case Op::transfer:
            case Op::transfer_credit:
            case Op::transfer_confirm:
            case Op::transfer_refund:
                if (!points_in_range(command.points, &result)) {
                    break;
                }
                if (command.counterparty_id == 0) {
                    return Result::member_id_zero;
                }
                if (command.counterparty_id == command.member_id) {
                    return Result::transfer_to_self;
                }
                break;
            case Op::hold_timeout:  // Derived records: check_shape refused them.
            case Op::pending_release:
            case Op::expire:
            case Op::transfer_received:
            case Op::tick:
                break;
        }
        return result;
    }

    // ---- Operations -----------------------------------------------------------------------

    Outcome apply(const Command& command) noexcept {
        const auto first = static_cast<uint32_t>(derived.size());
        Outcome outcome = apply_command(command);
        outcome.derived_first = first;
        outcome.derived_count = static_cast<uint32_t>(derived.size()) - first;
        // Derived records tell of changes, so only an applied command may have made any.
        JIFEN_DASSERT(outcome.derived_count == 0 ||
                      (outcome.result == Result::ok && !outcome.replayed));
        return outcome;
    }

    Outcome apply_command(const Command& command) noexcept {
        const Result shape = check_shape(command);
        if (shape != Result::ok) {
            return refusal(shape);
        }
        set_now(command.time_us);
        switch (command.op) {
            case Op::tick:
                return tick(command);
            case Op::transfer_confirm:
            case Op::transfer_refund:
                return close_transfer(command);
            case Op::hold_timeout:  // Derived records: check_shape refused them.
            case Op::pending_release:
            case Op::expire:
            case Op::transfer_received:
                return refusal(Result::unknown_opcode);
            case Op::enroll:
            case Op::update_member:
            case Op::earn:
            case Op::redeem:
            case Op::hold:
            case Op::capture:
            case Op::release:
            case Op::reverse:
            case Op::transfer:
            case Op::adjust:
            case Op::transfer_credit:
                break;
        }
        const uint32_t existing = find_txn(command.txn_id);
        if (existing != none) {
            const TxnEntry& entry = txns[existing];
            if (entry.op == command.op && entry.member_id == command.member_id &&
                entry.fingerprint == fingerprint_of(command)) {
                return replay(entry);
            }
            return refusal(Result::id_conflict);
        }
        switch (command.op) {
            case Op::enroll:
                return enroll(command);
            case Op::update_member:
                return update_member(command);
            case Op::earn:
                return earn(command);
            case Op::redeem:
                return redeem(command);
            case Op::hold:
                return hold(command);
            case Op::capture:
            case Op::release:
                return close_hold_command(command);
            case Op::reverse:
                return reverse(command);
            case Op::transfer:
                return transfer(command);
            case Op::adjust:
                return adjust(command);
            case Op::transfer_credit:
                return transfer_credit(command);
            case Op::transfer_confirm:
            case Op::transfer_refund:
            case Op::hold_timeout:  // Derived records: check_shape refused them.
            case Op::pending_release:
            case Op::expire:
            case Op::transfer_received:
            case Op::tick:
                break;
        }
        return refusal(Result::unknown_opcode);
    }

    // The checks every new transaction passes last, after its own: room in the txn table
    // (growing it when full), then the ledger-wide claim of the id. Nothing may be refused
    // after this. Growing moves the transaction table: callers hold no TxnEntry reference
    // across admit().
    Result admit(const Command& command) noexcept {
        if (!txn_room(uint64_t{txn_count} + 1, in_local_index(command.op))) {
            return Result::txn_limit;
        }
        return claim(command);
    }

    void touch(MemberRecord& member, TimeUs time_us) noexcept {
        member.set_last_activity_us(std::max(member.last_activity_us(), time_us));
    }

    Outcome enroll(const Command& command) noexcept {
        const uint32_t found = find_member(command.member_id);
        if (found != none) {
            const MemberRecord& member = members[found];
            if (member.tier() != command.tier || member.status() != command.status ||
                member.birthday != command.birthday) {
                return refusal(Result::member_exists, preview(member, command.time_us));
            }
            Outcome outcome = refusal(Result::ok, preview(member, command.time_us));
            outcome.replayed = true;
            return outcome;
        }
        if (member_count >= members.count()) {
            return refusal(Result::member_limit);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted);
        }
        const uint32_t index = member_count++;
        MemberRecord& member = members[index];
        member = MemberRecord{};
        member.member_id = command.member_id;
        member.birthday = command.birthday;
        member.set_tier(command.tier);
        member.set_status(command.status);
        member.overflow_head = none;
        member.pending_head = none;
        member.hold_head = none;
        member.set_last_activity_us(command.time_us);
        member_slots.insert(mix64(command.member_id), index);
        const Outcome outcome = balances(index, 0, 0);
        record(command, outcome, TxnState::done, 0, 0);
        return outcome;
    }

    Outcome update_member(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, preview(members[index], command.time_us));
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        member.set_tier(command.tier);
        member.set_status(command.status);
        member.birthday = command.birthday;
        touch(member, command.time_us);
        const Outcome outcome = balances(index, 0, 0);
        record(command, outcome, TxnState::done, 0, 0);
        return outcome;
    }

    Outcome earn(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        if (members[index].status() == MemberStatus::frozen) {
            return refusal(Result::member_frozen, settled);
        }
        if (const Result fits = check_credit(settled, command.points); fits != Result::ok) {
            return refusal(fits, settled);
        }
        const bool pending = command.until_us > command.time_us;
        if (pending && pending_lots_full(members[index], command.until_us, command.time_us)) {
            return refusal(Result::member_lot_limit, settled);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        const MonthIndex month = lot_month_of(pending ? command.until_us : command.time_us);
        if (pending) {
            add_pending(member, command.until_us, command.points);
        } else {
            credit(member, month, command.points);
        }
        member.lifetime_earned += command.points;
        member.growth += command.points;
        counters.earned += command.points;
        if (command.order_ref != 0) {
            member.set_last_purchase_us(std::max(member.last_purchase_us(), command.time_us));
        }
        touch(member, command.time_us);
        const Outcome outcome = balances(index, command.points, 0);
        record(command, outcome, TxnState::done, pending ? command.until_us : 0, month);
        return outcome;
    }

    Outcome redeem(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        if (members[index].status() == MemberStatus::frozen) {
            return refusal(Result::member_frozen, settled);
        }
        if (settled.available < command.points) {
            return refusal(Result::insufficient_points, settled);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        MonthIndex newest_taken = 0;
        const Points taken = consume_oldest(member, command.points, &newest_taken);
        JIFEN_ASSERT(taken == command.points);
        member.available -= command.points;
        member.lifetime_redeemed += command.points;
        counters.redeemed += command.points;
        touch(member, command.time_us);
        const Outcome outcome = balances(index, command.points, 0);
        record(command, outcome, TxnState::done, 0, kept_month(newest_taken, command.time_us));
        return outcome;
    }

    Outcome hold(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        const TimeUs until_us = command.until_us == 0
                                    ? command.time_us + config.hold_timeout_us_default
                                    : command.until_us;
        if (until_us - command.time_us > config.hold_timeout_us_max || until_us >= time_us_max) {
            return refusal(Result::field_out_of_range);  // A field's refusal: no balances.
        }
        if (members[index].status() == MemberStatus::frozen) {
            return refusal(Result::member_frozen, settled);
        }
        if (settled.available < command.points) {
            return refusal(Result::insufficient_points, settled);
        }
        if (!hold_slot_free()) {
            return refusal(Result::hold_limit, settled);
        }
        if (config.holds_per_member_max != 0 &&
            member_open_holds(members[index], command.time_us) >= config.holds_per_member_max) {
            return refusal(Result::member_hold_limit, settled);
        }
        const bool keeps_months = config.points_keep_months;
        if (lot_nodes_free() <
            (keeps_months ? nodes_for_hold(members[index], command.points, command.time_us) : 1)) {
            return refusal(Result::lot_limit, settled);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        const uint32_t lots_head = keeps_months ? take_oldest_as_list(member, command.points)
                                                : take_oldest_as_one(member, command.points);
        member.available -= command.points;
        member.held += command.points;
        touch(member, command.time_us);
        const uint32_t slot = alloc_hold();
        holds[slot] = Hold{command.points,
                           until_us,
                           txn_count,
                           index,
                           none,
                           none,
                           0,
                           lots_head,
                           keeps_months ? 0 : hold_flag_legacy,
                           0};
        link_hold(member, slot);
        const Outcome outcome = balances(index, command.points, 0);
        record(command, outcome, TxnState::hold_open, slot, month_of_now(command.time_us));
        heap_push(slot);
        return outcome;
    }

    // capture and release: both close a hold named by ref_txn_id.
    Outcome close_hold_command(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        const uint32_t hold_txn = find_txn(command.ref_txn_id);
        if (hold_txn == none || txns[hold_txn].op != Op::hold ||
            txns[hold_txn].member_id != command.member_id) {
            return refusal(Result::hold_not_found, settled);
        }
        const TxnEntry& hold_entry = txns[hold_txn];
        if (hold_entry.state != TxnState::hold_open) {
            return refusal(Result::hold_closed, settled);
        }
        const uint32_t slot = static_cast<uint32_t>(hold_entry.aux);
        if (holds[slot].until_us <= command.time_us) {
            return refusal(Result::hold_closed, settled);  // Timed out; settling closes it.
        }
        const Points hold_points = holds[slot].points;
        const Points captured =
            command.op == Op::capture ? (command.points == 0 ? hold_points : command.points) : 0;
        if (captured > hold_points) {
            return refusal(Result::capture_exceeds_hold, settled);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        unlink_hold(member, slot);
        const Points before = member.available;
        const Hold closed = close_hold(
            member, slot,
            command.op == Op::capture ? TxnState::hold_captured : TxnState::hold_released);
        // The capture spends the oldest of the held points; the rest go back to their months.
        // Those whose month expired while they were held expire now, and a derived record
        // says so, just before this command's.
        Settlement expired{Op::expire, 0, 0, command.ref_txn_id};
        MonthIndex newest_spent = 0;
        give_back(member, closed, captured, lot_month_of(command.time_us),
                  expiry_limit(command.time_us), &expired, &newest_spent);
        const Points expired_now = expired.points;
        if (recording_derived && expired_now > 0) {
            add_derived(expired.record(member.member_id, before));
        }
        member.lifetime_redeemed += captured;
        counters.redeemed += captured;
        touch(member, command.time_us);
        const Outcome outcome =
            balances(index, command.op == Op::capture ? captured : hold_points, expired_now);
        // A legacy hold's points have no months: its capture keeps the month it is applied in,
        // as before (and so does a release, which nothing reverses).
        const bool months_known = (closed.flags & hold_flag_legacy) == 0 && captured > 0;
        record(command, outcome, TxnState::done, 0,
               months_known ? kept_month(newest_spent, command.time_us)
                            : month_of_now(command.time_us));
        return outcome;
    }

    // The month a redeem, capture or transfer debit keeps (TxnEntry::month) for a reversal or
    // refund to give its points back to: the newest month it took them from, so giving back
    // never makes points younger than the youngest of them (Config::points_keep_months; before
    // it, the month it was applied in).
    MonthIndex kept_month(MonthIndex newest_taken, TimeUs time_us) const noexcept {
        return config.points_keep_months ? newest_taken : month_of_now(time_us);
    }

    // The month points given back join: the original one unless it has expired by now.
    MonthIndex giveback_month(MonthIndex original, TimeUs time_us) const noexcept {
        if (config.expiry_months == 0) {
            return 0;
        }
        return std::max(original, expiry_limit(time_us));
    }

    Outcome reverse(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        const uint32_t target = find_txn(command.ref_txn_id);
        if (target == none || txns[target].member_id != command.member_id ||
            txns[target].op == Op::transfer_credit) {
            return refusal(Result::txn_not_found, settled);
        }
        const TxnEntry& original = txns[target];
        if (original.op != Op::earn && original.op != Op::redeem && original.op != Op::capture) {
            return refusal(Result::txn_not_reversible, settled);
        }
        if (original.state == TxnState::reversed) {
            return refusal(Result::already_reversed, settled);
        }
        const bool gives_back = original.op != Op::earn;
        if (gives_back) {
            if (over_cap(settled, original.points)) {
                return refusal(Result::balance_limit, settled);
            }
            if (lot_nodes_free() == 0) {
                return refusal(Result::lot_limit, settled);
            }
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        TxnEntry& entry = txns[target];
        entry.state = TxnState::reversed;
        Points moved = 0;
        Points shortfall = 0;
        if (gives_back) {
            moved = entry.points;
            credit(member, giveback_month(entry.month, command.time_us), moved);
            member.lifetime_redeemed -= moved;
            counters.redeemed -= moved;
        } else {
            // Claw the earn back: from its pending lot, then its own lot, then oldest first.
            Points wanted = entry.points;
            if (entry.aux != 0) {
                const Points from_pending = take_pending(member, entry.aux, wanted);
                wanted -= from_pending;
                moved += from_pending;
            }
            if (wanted > 0 && member.available > 0) {
                Points from_lots = take_from_month(member, entry.month, wanted);
                from_lots += consume_oldest(member, wanted - from_lots);
                member.available -= from_lots;
                wanted -= from_lots;
                moved += from_lots;
            }
            if (wanted > 0) {
                if (config.reverse_allows_negative) {
                    member.available -= wanted;
                    moved += wanted;
                } else {
                    shortfall = wanted;
                }
            }
            member.lifetime_reversed += moved;
            member.growth -= entry.points;
            counters.reversed += moved;
        }
        touch(member, command.time_us);
        const Outcome outcome = balances(index, moved, shortfall);
        record(command, outcome, TxnState::done, 0, month_of_now(command.time_us));
        return outcome;
    }

    Outcome transfer(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        if (members[index].status() == MemberStatus::frozen) {
            return refusal(Result::member_frozen, settled);
        }
        const bool local = Shard::shard_of(command.counterparty_id, shard_count) == shard_index;
        uint32_t receiver = none;
        if (local) {
            receiver = find_member(command.counterparty_id);
            if (receiver == none) {
                return refusal(Result::member_not_found, settled);
            }
            if (members[receiver].status() == MemberStatus::frozen) {
                return refusal(Result::member_frozen, settled);
            }
        }
        if (settled.available < command.points) {
            return refusal(Result::insufficient_points, settled);
        }
        if (local) {
            if (over_cap(preview(members[receiver], command.time_us), command.points)) {
                return refusal(Result::balance_limit, settled);
            }
            if (lot_nodes_free() == 0) {
                return refusal(Result::lot_limit, settled);
            }
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& sender = members[index];
        MonthIndex newest_taken = 0;
        const Points taken = consume_oldest(sender, command.points, &newest_taken);
        JIFEN_ASSERT(taken == command.points);
        sender.available -= command.points;
        counters.transfer_out += command.points;
        touch(sender, command.time_us);
        TxnState state = TxnState::done;
        if (local) {
            settle(receiver, command.time_us);
            MemberRecord& target = members[receiver];
            credit(target, lot_month_of(command.time_us), command.points);
            counters.transfer_in += command.points;
            touch(target, command.time_us);
            JIFEN_ASSERT(member_consistent(target));
            JIFEN_DASSERT(member_lists_consistent(target));
            if (recording_derived) {
                add_derived(Shard::transfer_received_for(command, target.available));
            }
        } else {
            state = TxnState::transfer_in_flight;
            counters.transfers_in_flight += command.points;
        }
        const Outcome outcome = balances(index, command.points, 0);
        record(command, outcome, state, command.counterparty_id,
               kept_month(newest_taken, command.time_us));
        return outcome;
    }

    Outcome transfer_credit(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        if (members[index].status() == MemberStatus::frozen) {
            return refusal(Result::member_frozen, settled);
        }
        if (const Result fits = check_credit(settled, command.points); fits != Result::ok) {
            return refusal(fits, settled);
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        credit(member, lot_month_of(command.time_us), command.points);
        counters.transfer_in += command.points;
        touch(member, command.time_us);
        const Outcome outcome = balances(index, command.points, 0);
        record(command, outcome, TxnState::done, command.counterparty_id,
               month_of_now(command.time_us));
        return outcome;
    }

    // transfer_confirm and transfer_refund close the sender's in-flight debit leg. They reuse
    // the transfer's id; repeating one after it applied replays, the other is id_conflict.
    Outcome close_transfer(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        const uint32_t target = find_txn(command.txn_id);
        if (target == none || txns[target].op != Op::transfer ||
            txns[target].member_id != command.member_id ||
            txns[target].aux != command.counterparty_id || txns[target].points != command.points) {
            return refusal(Result::txn_not_found, settled);
        }
        const bool refund = command.op == Op::transfer_refund;
        const TxnState closed = refund ? TxnState::transfer_refunded : TxnState::done;
        if (txns[target].state != TxnState::transfer_in_flight) {
            if (txns[target].state == closed &&
                Shard::shard_of(command.counterparty_id, shard_count) != shard_index) {
                Outcome outcome = refusal(Result::ok, settled);
                outcome.replayed = true;
                outcome.points = command.points;
                return outcome;
            }
            return refusal(Result::id_conflict, settled);
        }
        TxnEntry& entry = txns[target];
        entry.state = closed;
        counters.transfers_in_flight -= entry.points;
        if (!refund) {
            Outcome outcome = refusal(Result::ok, settled);
            outcome.points = entry.points;
            return outcome;
        }
        // A refund is never refused: the points must come back (past the balance cap too).
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        credit(member, giveback_month(entry.month, command.time_us), entry.points);
        counters.transfer_out -= entry.points;
        touch(member, command.time_us);
        const Outcome outcome = balances(index, entry.points, 0);
        // A repeat of the transfer now answers what its client heard: the credit's refusal with
        // the balances after the refund.
        entry.refusal = static_cast<uint8_t>(command.reason_code);
        entry.available = outcome.available;
        entry.held = outcome.held;
        entry.pending = outcome.pending;
        return outcome;
    }

    Outcome adjust(const Command& command) noexcept {
        const uint32_t index = find_member(command.member_id);
        if (index == none) {
            return refusal(Result::member_not_found);
        }
        const Settled settled = preview(members[index], command.time_us);
        const bool debit = (command.flags & adjust_debit) != 0;
        if (debit) {
            if (settled.available < command.points) {
                return refusal(Result::insufficient_points, settled);
            }
        } else {
            if (const Result fits = check_credit(settled, command.points); fits != Result::ok) {
                return refusal(fits, settled);
            }
        }
        const Result admitted = admit(command);
        if (admitted != Result::ok) {
            return refusal(admitted, settled);
        }
        settle(index, command.time_us);
        MemberRecord& member = members[index];
        if (debit) {
            const Points taken = consume_oldest(member, command.points);
            JIFEN_ASSERT(taken == command.points);
            member.available -= command.points;
            counters.adjusted_out += command.points;
        } else {
            credit(member, lot_month_of(command.time_us), command.points);
            counters.adjusted_in += command.points;
        }
        touch(member, command.time_us);
        const Outcome outcome = balances(index, command.points, 0);
        record(command, outcome, TxnState::done, 0, month_of_now(command.time_us));
        return outcome;
    }

    // Due holds first (they have an exact time), then a round-robin sweep for pending points
    // and expiry, skipped while nothing can be due. Each unit of budget settles one member.
    Outcome tick(const Command& command) noexcept {
        const uint64_t budget = static_cast<uint64_t>(command.points);
        uint64_t used = 0;
        while (used < budget && open_holds > 0 && holds[hold_heap[0]].until_us <= command.time_us) {
            const uint32_t member_index = holds[hold_heap[0]].member_index;
            settle(member_index, command.time_us);
            JIFEN_ASSERT(member_consistent(members[member_index]));
            JIFEN_DASSERT(member_lists_consistent(members[member_index]));
            ++used;
        }
        if (command.time_us >= sweep_due_us) {
            for (uint32_t swept = 0; used < budget && swept < member_count; ++swept) {
                if (tick_cursor >= member_count) {
                    tick_cursor = 0;
                }
                if (tick_cursor == 0) {
                    // A new sweep visits every member after any due time noted so far.
                    cycle_due_us = never_us;
                }
                const MemberRecord& member = members[tick_cursor];
                settle(tick_cursor, command.time_us);
                JIFEN_ASSERT(member_consistent(member));
                JIFEN_DASSERT(member_lists_consistent(member));
                cycle_due_us = std::min(cycle_due_us, next_due_us(member));
                ++tick_cursor;
                ++used;
                if (tick_cursor >= member_count) {
                    // Every member was seen since the last wrap, so nothing is due before this.
                    sweep_due_us = cycle_due_us;
                    cycle_due_us = never_us;
                }
            }
        }
        Outcome outcome;
        outcome.points = static_cast<Points>(used);
        return outcome;
    }

    // ---- Views ----------------------------------------------------------------------------

    void view_of(const MemberRecord& member, MemberView* view) const noexcept {
        view->member_id = member.member_id;
        view->available = member.available;
        view->held = member.held;
        view->pending = pending_sum(member);
        view->lifetime_earned = member.lifetime_earned;
        view->lifetime_redeemed = member.lifetime_redeemed;
        view->lifetime_expired = member.lifetime_expired;
        view->lifetime_reversed = member.lifetime_reversed;
        view->growth = member.growth;
        view->tier = member.tier();
        view->status = member.status();
        view->birthday = member.birthday;
        view->last_purchase_us = member.last_purchase_us();
        view->last_activity_us = member.last_activity_us();
    }

    uint64_t member_hash(const MemberRecord& member) const noexcept {
        uint64_t hash = hash_combine(1, member.member_id);
        const Points fields[] = {member.available,        member.held,
                                 member.lifetime_earned,  member.lifetime_redeemed,
                                 member.lifetime_expired, member.lifetime_reversed,
                                 member.growth,           0};
        for (const Points field : fields) {
            hash = hash_combine(hash, static_cast<uint64_t>(field));
        }
        hash = hash_combine(hash, member.last_purchase_us());
        hash = hash_combine(hash, member.last_activity_us());
        hash = hash_combine(hash, member.birthday);
        hash = hash_combine(hash, member.tier());
        hash = hash_combine(hash, static_cast<uint64_t>(member.status()));
        for (uint32_t i = 0; i < member.lot_count(); ++i) {
            hash = hash_combine(hash, member.lots[i]);
        }
        for (uint32_t node = member.overflow_head; node != none; node = lot_nodes[node].next) {
            hash = hash_combine(hash, make_lot(static_cast<MonthIndex>(lot_nodes[node].key),
                                               lot_nodes[node].points));
        }
        hash = hash_combine(hash, 0xA11CE);  // Lots end; pending lots follow.
        for (uint32_t node = member.pending_head; node != none; node = lot_nodes[node].next) {
            hash = hash_combine(hash, lot_nodes[node].key);
            hash = hash_combine(hash, static_cast<uint64_t>(lot_nodes[node].points));
        }
        return hash;
    }

    uint64_t txn_hash(const TxnEntry& entry) const noexcept {
        uint64_t hash = hash_combine(2, entry.txn_id.lo);
        hash = hash_combine(hash, entry.txn_id.hi);
        hash = hash_combine(hash, entry.member_id);
        hash = hash_combine(hash, entry.fingerprint);
        const Points fields[] = {entry.points, entry.shortfall, entry.available, entry.held,
                                 entry.pending};
        for (const Points field : fields) {
            hash = hash_combine(hash, static_cast<uint64_t>(field));
        }
        // An open hold's aux is its slot, which depends on layout: hash the hold instead.
        if (entry.state == TxnState::hold_open) {
            const Hold& open = holds[entry.aux];
            hash = hash_combine(hash, open.until_us);
            hash = hash_combine(hash, static_cast<uint64_t>(open.points));
            hash = hash_combine(hash, members[open.member_index].member_id);
            hash = hash_combine(hash, open.flags);
            for (uint32_t node = open.lots_head; node != none; node = lot_nodes[node].next) {
                hash = hash_combine(hash, lot_nodes[node].key);
                hash = hash_combine(hash, static_cast<uint64_t>(lot_nodes[node].points));
            }
        } else {
            hash = hash_combine(hash, entry.aux);
        }
        hash = hash_combine(hash, entry.month);
        hash = hash_combine(hash, static_cast<uint64_t>(entry.op));
        hash = hash_combine(hash, static_cast<uint64_t>(entry.state));
        return hash;
    }

    void reset() noexcept {
        members.clear();
        member_slots.clear();
        member_count = 0;
        lot_nodes_bumped = 0;
        lot_free_head = none;
        lot_nodes_used = 0;
        holds_bumped = 0;
        hold_free_head = none;
        open_holds = 0;
        txn_slots.clear();
        txn_count = 0;
        local_txn_count = 0;
        counters = Counters{};
        tick_cursor = 0;
        sweep_due_us = never_us;
        cycle_due_us = never_us;
    }

    bool load(std::span<const std::span<const std::byte>> pieces) noexcept;
    // Reads a saved hold's lots into a list of their own (a legacy hold: one lot of no month);
    // false unless they are ascending, positive and add up to the hold's points.
    bool load_hold_lots(Reader& reader, const SavedHold& saved, uint32_t* head) noexcept;
    // Fills the member index from the loaded member records; false when an id comes twice.
    bool index_members() noexcept;

    // Reads runs of transactions, then patches (version 4).
    bool load_txns(Reader& reader, uint32_t count) noexcept;
    bool load_patches(Reader& reader) noexcept;

    // Checkpoint pieces (Shard::save and the stepwise build share them).
    template <class Out>
    void put_place(Writer<Out>& writer) const;
    template <class Out>
    void put_state(Writer<Out>& writer) const;
    template <class Out>
    void put_run(Writer<Out>& writer, uint32_t first, uint32_t count) const;
    template <class Out>
    void put_members(Writer<Out>& writer) const;
    size_t checkpoint_bytes_estimate() const noexcept;
};

bool Shard::State::load(std::span<const std::span<const std::byte>> pieces) noexcept {
    Reader reader(pieces);
    uint64_t magic = 0;
    uint32_t version = 0;
    uint32_t saved_index = 0;
    uint32_t saved_count = 0;
    uint32_t saved_members = 0;
    uint32_t saved_txns = 0;
    uint32_t cursor = 0;
    Counters saved_counters{};
    TimeUs saved_sweep_due_us = 0;
    TimeUs saved_cycle_due_us = 0;
    if (!reader.get(&magic) || magic != checkpoint_magic || !reader.get(&version) ||
        version < checkpoint_version_min || version > checkpoint_version ||
        !reader.get(&saved_index) || saved_index != shard_index || !reader.get(&saved_count) ||
        saved_count != shard_count) {
        return false;
    }
    const auto get_state = [&] {
        return reader.get(&saved_counters) && reader.get(&cursor) &&
               reader.get(&saved_sweep_due_us) && reader.get(&saved_cycle_due_us) &&
               reader.get(&saved_txns);
    };
    // Transactions before members, so holds can point at their entries.
    if (version < 4) {
        if (!get_state() || !load_txns(reader, saved_txns)) {
            return false;
        }
    } else {
        uint32_t run = 0;
        while (reader.get(&run) && run > 0) {
            if (!load_txns(reader, run)) {
                return false;
            }
        }
        if (run != 0 || !load_patches(reader) || !get_state() || saved_txns != txn_count) {
            return false;
        }
    }
    if (!reader.get(&saved_members) || saved_members > members.count()) {
        return false;
    }
    for (uint32_t index = 0; index < saved_members; ++index) {
        SavedMember saved{};
        if (!reader.get(&saved) || saved.member_id == 0 || saved.last_purchase_us > time_mask ||
            saved.last_activity_us > time_mask || saved.status > MemberStatus::frozen) {
            return false;
        }
        MemberRecord& member = members[index];
        member = MemberRecord{};
        member.member_id = saved.member_id;
        member.available = saved.available;
        member.lifetime_earned = saved.lifetime_earned;
        member.lifetime_redeemed = saved.lifetime_redeemed;
        member.lifetime_expired = saved.lifetime_expired;
        member.lifetime_reversed = saved.lifetime_reversed;
        member.growth = saved.growth;
        member.set_last_purchase_us(saved.last_purchase_us);
        member.set_last_activity_us(saved.last_activity_us);
        member.birthday = saved.birthday;
        member.set_tier(saved.tier);
        member.set_status(saved.status);
        member.overflow_head = none;
        member.pending_head = none;
        member.hold_head = none;
        member_count = index + 1;
        for (uint32_t i = 0; i < saved.lot_count; ++i) {
            SavedLot lot{};
            if (!reader.get(&lot) || lot.points <= 0 || lot.key > month_index_max ||
                static_cast<uint64_t>(lot.points) > lot_points_mask ||
                (member.lot_count() == lots_inline_max && lot_nodes_free() == 0)) {
                return false;
            }
            add_lot(member, static_cast<MonthIndex>(lot.key), lot.points);
        }
        for (uint32_t i = 0; i < saved.pending_count; ++i) {
            SavedLot lot{};
            if (!reader.get(&lot) || lot.points <= 0 || lot.points > points_balance_max ||
                lot_nodes_free() == 0) {
                return false;
            }
            add_pending(member, lot.key, lot.points);
        }
        for (uint32_t i = 0; i < saved.hold_count; ++i) {
            SavedHold saved_hold{};
            if (!reader.get(&saved_hold) || saved_hold.txn_index >= txn_count ||
                saved_hold.points <= 0 || !hold_slot_free() ||
                (version < 3 && saved_hold.lot_count != 0) ||
                lot_nodes_free() < std::max<uint32_t>(saved_hold.lot_count, 1)) {
                return false;
            }
            TxnEntry& entry = txns[saved_hold.txn_index];
            if (entry.op != Op::hold || entry.state != TxnState::hold_open ||
                entry.member_id != member.member_id) {
                return false;
            }
            const uint32_t slot = alloc_hold();
            const uint32_t flags = saved_hold.lot_count == 0 ? hold_flag_legacy : 0;
            holds[slot] = Hold{saved_hold.points,
                               saved_hold.until_us,
                               saved_hold.txn_index,
                               index,
                               none,
                               none,
                               0,
                               none,
                               flags,
                               0};
            if (!load_hold_lots(reader, saved_hold, &holds[slot].lots_head)) {
                return false;
            }
            link_hold(member, slot);
            entry.aux = slot;
            member.held += saved_hold.points;
            heap_push(slot);
        }
        if (member.held != saved.held || !member_fully_consistent(member)) {
            return false;
        }
    }
    if (!reader.at_end() || (saved_members > 0 && cursor > saved_members) || !index_members()) {
        return false;
    }
    for (uint32_t i = 0; i < txn_count; ++i) {
        if (txns[i].op == Op::hold && txns[i].state == TxnState::hold_open &&
            (txns[i].aux >= holds.count() || holds[txns[i].aux].txn_index != i)) {
            return false;  // An open hold without its hold record.
        }
    }
    counters = saved_counters;
    tick_cursor = cursor;
    sweep_due_us = saved_sweep_due_us;
    cycle_due_us = saved_cycle_due_us;
    if (txn_index != nullptr) {
        // Each claim lands on a random slot: start loading a few claims ahead so their misses
        // overlap (restart time is mostly these claims).
        constexpr uint32_t claims_ahead = 16;
        for (uint32_t i = 0; i < std::min(txn_count, claims_ahead); ++i) {
            txn_index->prefetch(std::as_const(txns)[i].txn_id);
        }
        for (uint32_t i = 0; i < txn_count; ++i) {
            if (i + claims_ahead < txn_count) {
                txn_index->prefetch(std::as_const(txns)[i + claims_ahead].txn_id);
            }
            if (txns[i].op == Op::transfer_credit) {
                continue;
            }
            // A second entry with the same id finds the first one's claim and position.
            const TxnIndex::Claim claimed =
                txn_index->claim(txns[i].txn_id, txns[i].member_id, i, shard_index);
            uint32_t local = 0;
            if (claimed == TxnIndex::Claim::owned_by_other || claimed == TxnIndex::Claim::full ||
                (claimed == TxnIndex::Claim::owned_by_same &&
                 (txn_index->find(txns[i].txn_id, &local) == 0 || local != i))) {
                return false;
            }
        }
    }
    return true;
}

bool Shard::State::load_txns(Reader& reader, uint32_t count) noexcept {
    if (count > none - txn_count || !txn_room(uint64_t{txn_count} + count, false)) {
        return false;
    }
    for (const uint32_t end = txn_count + count; txn_count < end; ++txn_count) {
        TxnEntry entry{};
        if (!reader.get(&entry) || entry.txn_id.is_zero()) {
            return false;
        }
        if (in_local_index(entry.op)) {
            if (find_local_txn(entry.txn_id) != none || !txn_room(txn_count + 1, true)) {
                return false;
            }
            txn_slots.insert(hash_txn_id(entry.txn_id), txn_count);
            ++local_txn_count;
        }
        txns[txn_count] = entry;
    }
    return true;
}

bool Shard::State::load_patches(Reader& reader) noexcept {
    uint32_t count = 0;
    if (!reader.get(&count)) {
        return false;
    }
    for (uint32_t i = 0; i < count; ++i) {
        uint32_t index = 0;
        TxnEntry entry{};
        if (!reader.get(&index) || !reader.get(&entry) || index >= txn_count) {
            return false;
        }
        // A patch changes what an entry's transaction did next, never which transaction it is.
        const TxnEntry& loaded = std::as_const(txns)[index];
        if (entry.txn_id != loaded.txn_id || entry.member_id != loaded.member_id ||
            entry.op != loaded.op || entry.fingerprint != loaded.fingerprint) {
            return false;
        }
        txns[index] = entry;
    }
    return true;
}

bool Shard::State::load_hold_lots(Reader& reader, const SavedHold& saved, uint32_t* head) noexcept {
    Points sum = 0;
    uint32_t tail = none;
    const uint32_t count = std::max<uint32_t>(saved.lot_count, 1);
    for (uint32_t i = 0; i < count; ++i) {
        SavedLot lot{0, saved.points};
        if ((saved.lot_count > 0 && !reader.get(&lot)) || lot.points <= 0 ||
            lot.key > month_index_max || lot.points > saved.points - sum ||
            static_cast<uint64_t>(lot.points) > lot_points_mask ||
            (tail != none && lot.key <= lot_nodes[tail].key)) {
            return false;
        }
        const uint32_t node = alloc_lot_node();
        lot_nodes[node] = LotNode{lot.points, lot.key, none, 0};
        (tail == none ? *head : lot_nodes[tail].next) = node;
        tail = node;
        sum += lot.points;
    }
    return sum == saved.points;
}

bool Shard::State::index_members() noexcept {
    // Each member lands on a random slot: start loading the slots a few members ahead so their
    // misses overlap (inserted one by one while loading, they were a quarter of a restart).
    constexpr uint32_t members_ahead = 16;
    for (uint32_t index = 0; index < member_count; ++index) {
        if (index + members_ahead < member_count) {
            member_slots.prefetch(mix64(members[index + members_ahead].member_id));
        }
        const MemberId member_id = members[index].member_id;
        if (find_member(member_id) != none) {
            return false;
        }
        member_slots.insert(mix64(member_id), index);
    }
    return true;
}

Shard::Shard(uint32_t shard_index, uint32_t shard_count, const Config& config, TxnIndex* txn_index)
    : state_(std::make_unique<State>(shard_index, shard_count, config, txn_index)) {}

Shard::~Shard() = default;

Outcome Shard::apply(const Command& command) noexcept {
    state_->derived.clear();
    return state_->apply(command);
}

void Shard::record_derived(bool on, size_t capacity) {
    state_->recording_derived = on;
    state_->derived.clear();
    state_->derived.reserve(on ? capacity : 0);
}

std::span<const Record> Shard::derived() const noexcept { return state_->derived; }

std::span<const Record> Shard::derived_of(const Outcome& outcome) const noexcept {
    return derived().subspan(outcome.derived_first, outcome.derived_count);
}

Record Shard::record_of(const Command& command, const Outcome& outcome) const noexcept {
    Record record;
    record.command = command;
    record.applied_points = outcome.points;
    record.available_after = outcome.available;
    record.shard_index = state_->shard_index;
    for (const Record& derived : derived_of(outcome)) {
        if (derived.command.op == Op::transfer_received) {
            record.flags |= record_flag_receiver_apart;
        }
    }
    return record;
}

void Shard::apply_batch(std::span<const Command> commands, std::span<Outcome> outcomes) noexcept {
    JIFEN_ASSERT(commands.size() == outcomes.size());
    State& state = *state_;
    state.derived.clear();
    // Two stages: far ahead, the member's index slot and the transaction's TxnIndex slot; nearer,
    // the member record that index slot (loaded by then) points at. A random command waits on
    // three or four misses; overlapping a few commands' misses is what makes a batch faster.
    constexpr size_t index_ahead = 8;
    constexpr size_t record_ahead = 4;
    const size_t count = commands.size();
    for (size_t i = 0; i < std::min(count, index_ahead); ++i) {
        state.prefetch_indexes(commands[i]);
    }
    for (size_t i = 0; i < std::min(count, record_ahead); ++i) {
        state.prefetch_record(commands[i]);
    }
    for (size_t i = 0; i < count; ++i) {
        if (i + index_ahead < count) {
            state.prefetch_indexes(commands[i + index_ahead]);
        }
        if (i + record_ahead < count) {
            state.prefetch_record(commands[i + record_ahead]);
        }
        outcomes[i] = state.apply(commands[i]);
    }
}

void Shard::prefetch(const Command& command) const noexcept {
    state_->member_slots.prefetch(mix64(command.member_id));
    if (state_->txn_index != nullptr) {
        state_->txn_index->prefetch(command.txn_id);  // A new id is looked up only there.
    } else {
        state_->txn_slots.prefetch(hash_txn_id(command.txn_id));
    }
}

void Shard::prefetch_member(MemberId member_id) const noexcept {
    state_->member_slots.prefetch(mix64(member_id));
}

bool Shard::find(MemberId member_id, MemberView* view) const noexcept {
    const uint32_t index = state_->find_member(member_id);
    if (index == none) {
        return false;
    }
    state_->view_of(state_->members[index], view);
    return true;
}

bool Shard::find_at(MemberId member_id, TimeUs time_us, MemberView* view) const noexcept {
    const uint32_t index = state_->find_member(member_id);
    if (index == none) {
        return false;
    }
    const MemberRecord& member = state_->members[index];
    state_->view_of(member, view);
    const Settled settled = state_->preview(member, time_us);
    // What settling would expire is whatever leaves the balances without going anywhere else.
    view->lifetime_expired += (member.available + member.held + view->pending) -
                              (settled.available + settled.held + settled.pending);
    view->available = settled.available;
    view->held = settled.held;
    view->pending = settled.pending;
    return true;
}

Totals Shard::totals() const noexcept {
    const State& state = *state_;
    Totals totals;
    totals.members = state.member_count;
    totals.open_holds = state.open_holds;
    totals.txns = state.txn_count;
    for (uint32_t i = 0; i < state.member_count; ++i) {
        const MemberRecord& member = state.members[i];
        totals.available += member.available;
        totals.held += member.held;
        totals.pending += state.pending_sum(member);
    }
    totals.earned = state.counters.earned;
    totals.redeemed = state.counters.redeemed;
    totals.expired = state.counters.expired;
    totals.reversed = state.counters.reversed;
    totals.transfer_in = state.counters.transfer_in;
    totals.transfer_out = state.counters.transfer_out;
    totals.adjusted_in = state.counters.adjusted_in;
    totals.adjusted_out = state.counters.adjusted_out;
    totals.transfers_in_flight = state.counters.transfers_in_flight;
    return totals;
}

AuditReport Shard::audit() const noexcept {
    const State& state = *state_;
    AuditReport report;
    report.totals = totals();
    Points earned = 0;
    Points redeemed = 0;
    Points expired = 0;
    Points reversed = 0;
    Points held_in_holds = 0;
    for (uint32_t i = 0; i < state.member_count; ++i) {
        const MemberRecord& member = state.members[i];
        if (member.available < 0) {
            ++report.negative_balances;
        }
        if (!state.member_fully_consistent(member) || state.find_member(member.member_id) != i) {
            ++report.bad_members;
        }
        earned += member.lifetime_earned;
        redeemed += member.lifetime_redeemed;
        expired += member.lifetime_expired;
        reversed += member.lifetime_reversed;
    }
    uint64_t open_holds = 0;
    Points in_flight = 0;
    for (uint32_t i = 0; i < state.txn_count; ++i) {
        const TxnEntry& entry = state.txns[i];
        if (entry.op == Op::hold && entry.state == TxnState::hold_open) {
            ++open_holds;
            held_in_holds += state.holds[entry.aux].points;
        }
        if (entry.op == Op::transfer && entry.state == TxnState::transfer_in_flight) {
            in_flight += entry.points;
        }
    }
    report.ok = report.bad_members == 0 && report.totals.conserves() &&
                earned == report.totals.earned && redeemed == report.totals.redeemed &&
                expired == report.totals.expired && reversed == report.totals.reversed &&
                open_holds == state.open_holds && held_in_holds == report.totals.held &&
                in_flight == report.totals.transfers_in_flight;
    return report;
}

uint64_t Shard::digest() const noexcept {
    const State& state = *state_;
    // Wrapping sums of per-item hashes: the same items in any order give the same digest.
    uint64_t members = 0;
    for (uint32_t i = 0; i < state.member_count; ++i) {
        members += state.member_hash(state.members[i]);
    }
    uint64_t txns = 0;
    for (uint32_t i = 0; i < state.txn_count; ++i) {
        txns += state.txn_hash(state.txns[i]);
    }
    uint64_t hash = hash_combine(members, txns);
    const Counters& counters = state.counters;
    const Points sums[] = {
        counters.earned,      counters.redeemed,     counters.expired,
        counters.reversed,    counters.transfer_in,  counters.transfer_out,
        counters.adjusted_in, counters.adjusted_out, counters.transfers_in_flight};
    for (const Points sum : sums) {
        hash = hash_combine(hash, static_cast<uint64_t>(sum));
    }
    hash = hash_combine(hash, state.tick_cursor);
    hash = hash_combine(hash, state.sweep_due_us);
    hash = hash_combine(hash, state.cycle_due_us);
    return hash_combine(hash, state.member_count);
}

namespace {

// What a checkpoint holds besides its transactions and members: the place and the state, the
// end of the runs, a patch count, and one run's count.
constexpr size_t checkpoint_header_bytes =
    sizeof(checkpoint_magic) + sizeof(checkpoint_version) + 2 * sizeof(uint32_t) +
    sizeof(Counters) + 2 * sizeof(uint32_t) + 2 * sizeof(TimeUs) + 3 * sizeof(uint32_t);

}  // namespace

// What the checkpoint is and which shard it belongs to: known when a build begins.
template <class Out>
void Shard::State::put_place(Writer<Out>& writer) const {
    writer.put(checkpoint_magic);
    writer.put(checkpoint_version);
    writer.put(shard_index);
    writer.put(shard_count);
}

// A run of transactions: entries [first, first + count); none when count is 0 (a count of 0
// ends the runs).
template <class Out>
void Shard::State::put_run(Writer<Out>& writer, uint32_t first, uint32_t count) const {
    if (count > 0) {
        writer.put(count);
        writer.put_array(txns.data() + first, count);
    }
}

// The shard's own state: taken when a build finishes.
template <class Out>
void Shard::State::put_state(Writer<Out>& writer) const {
    writer.put(counters);
    writer.put(tick_cursor);
    writer.put(sweep_due_us);
    writer.put(cycle_due_us);
    writer.put(txn_count);
}

template <class Out>
void Shard::State::put_members(Writer<Out>& writer) const {
    const State& state = *this;
    writer.put(state.member_count);
    for (uint32_t index = 0; index < state.member_count; ++index) {
        const MemberRecord& member = state.members[index];
        // A list broken in a release build (whose per-apply check covers only their ends) must
        // not reach a checkpoint: a restart would refuse it.
        JIFEN_ASSERT(state.member_lists_consistent(member));
        SavedMember saved{};
        saved.member_id = member.member_id;
        saved.available = member.available;
        saved.held = member.held;
        saved.lifetime_earned = member.lifetime_earned;
        saved.lifetime_redeemed = member.lifetime_redeemed;
        saved.lifetime_expired = member.lifetime_expired;
        saved.lifetime_reversed = member.lifetime_reversed;
        saved.growth = member.growth;
        saved.last_purchase_us = member.last_purchase_us();
        saved.last_activity_us = member.last_activity_us();
        saved.birthday = member.birthday;
        saved.tier = member.tier();
        saved.status = member.status();
        saved.lot_count = member.lot_count();
        for (uint32_t node = member.overflow_head; node != none;
             node = state.lot_nodes[node].next) {
            ++saved.lot_count;
        }
        for (uint32_t node = member.pending_head; node != none; node = state.lot_nodes[node].next) {
            ++saved.pending_count;
        }
        for (uint32_t hold = member.hold_head; hold != none; hold = state.holds[hold].next) {
            ++saved.hold_count;
        }
        writer.put(saved);
        for (uint32_t i = 0; i < member.lot_count(); ++i) {
            writer.put(SavedLot{lot_month(member.lots[i]), lot_points(member.lots[i])});
        }
        for (uint32_t node = member.overflow_head; node != none;
             node = state.lot_nodes[node].next) {
            writer.put(SavedLot{state.lot_nodes[node].key, state.lot_nodes[node].points});
        }
        for (uint32_t node = member.pending_head; node != none; node = state.lot_nodes[node].next) {
            writer.put(SavedLot{state.lot_nodes[node].key, state.lot_nodes[node].points});
        }
        for (uint32_t hold = member.hold_head; hold != none; hold = state.holds[hold].next) {
            const Hold& open = state.holds[hold];
            // A legacy hold saves no lots: its one lot has no month.
            const uint32_t lots_head = (open.flags & hold_flag_legacy) != 0 ? none : open.lots_head;
            uint32_t lot_count = 0;
            for (uint32_t node = lots_head; node != none; node = state.lot_nodes[node].next) {
                ++lot_count;
            }
            writer.put(SavedHold{open.txn_index, lot_count, open.until_us, open.points});
            for (uint32_t node = lots_head; node != none; node = state.lot_nodes[node].next) {
                writer.put(SavedLot{state.lot_nodes[node].key, state.lot_nodes[node].points});
            }
        }
    }
}

size_t Shard::State::checkpoint_bytes_estimate() const noexcept {
    return Shard::checkpoint_bytes_estimate(member_count, txn_count);
}

size_t Shard::checkpoint_bytes_estimate(uint64_t member_count,
                                        uint64_t transaction_count) noexcept {
    // Members usually carry a few lots; a larger ledger grows the buffer only near the end.
    return checkpoint_header_bytes + transaction_count * sizeof(TxnEntry) +
           member_count * (sizeof(SavedMember) + 4 * sizeof(SavedLot));
}

void Shard::save(std::vector<std::byte>* out) const {
    const State& state = *state_;
    out->clear();
    // Sized once: growing a vector of gigabytes copies it over and over, with the shard waiting.
    out->reserve(state.checkpoint_bytes_estimate());
    Writer writer(out);
    state.put_place(writer);
    state.put_run(writer, 0, state.txn_count);
    writer.put(uint32_t{0});  // The end of the runs.
    writer.put(uint32_t{0});  // No patches.
    state.put_state(writer);
    state.put_members(writer);
}

void Shard::begin_checkpoint() {
    State& state = *state_;
    CheckpointBuild& build = state.checkpoint;
    build.bytes = CheckpointBytes();
    Writer writer(&build.bytes);
    state.put_place(writer);
    build.txns_copied = 0;
    build.txn_count_seen = state.txn_count;
    build.txns_changed.clear();
    build.active = true;
    state.txns.watch(0, nullptr);
}

uint64_t Shard::continue_checkpoint(uint32_t entries, uint32_t entries_max) {
    State& state = *state_;
    CheckpointBuild& build = state.checkpoint;
    JIFEN_ASSERT(build.active);
    // At least twice what was applied since the last step, so a build under any load ends.
    const uint64_t wanted = std::min<uint64_t>(
        std::max<uint64_t>(entries, 2 * uint64_t{state.txn_count - build.txn_count_seen}),
        entries_max);
    build.txn_count_seen = state.txn_count;
    const auto copy =
        static_cast<uint32_t>(std::min<uint64_t>(wanted, state.txn_count - build.txns_copied));
    Writer writer(&build.bytes);
    state.put_run(writer, build.txns_copied, copy);
    build.txns_copied += copy;
    // Make room for twice a step's bytes past what is written: the members, written at the end
    // while the shard waits, then land on pages that are already there. (A step that copies
    // more, catching up, makes no more room: the room is memory held until the build ends.)
    build.bytes.make_room(build.bytes.size() +
                          2 * size_t{std::min(copy, entries)} * sizeof(TxnEntry));
    build.txns_changed.resize((size_t{build.txns_copied} + 63) / 64, 0);
    state.txns.watch(build.txns_copied, &build.txns_changed);
    return state.txn_count - build.txns_copied;
}

void Shard::finish_checkpoint(CheckpointBytes* out) {
    State& state = *state_;
    CheckpointBuild& build = state.checkpoint;
    JIFEN_ASSERT(build.active);
    state.txns.watch(0, nullptr);
    Writer writer(&build.bytes);
    state.put_run(writer, build.txns_copied, state.txn_count - build.txns_copied);
    writer.put(uint32_t{0});  // The end of the runs.
    // Copied entries that changed since: their pieces may be on disk already, so they follow
    // as patches.
    uint32_t patches = 0;
    for (const uint64_t word : build.txns_changed) {
        patches += static_cast<uint32_t>(std::popcount(word));
    }
    writer.put(patches);
    for (size_t word = 0; word < build.txns_changed.size(); ++word) {
        for (uint64_t bits = build.txns_changed[word]; bits != 0; bits &= bits - 1) {
            const auto index = static_cast<uint32_t>(word * 64 + std::countr_zero(bits));
            writer.put(index);
            writer.put(std::as_const(state.txns)[index]);
        }
    }
    state.put_state(writer);
    state.put_members(writer);
    *out = std::move(build.bytes);
    build = CheckpointBuild{};
}

CheckpointBytes Shard::take_checkpoint_part() {
    CheckpointBuild& build = state_->checkpoint;
    JIFEN_ASSERT(build.active);
    return build.bytes.take_whole_pieces();
}

bool Shard::checkpoint_building() const noexcept { return state_->checkpoint.active; }

bool Shard::load(std::span<const std::byte> bytes) {
    const std::span<const std::byte> pieces[] = {bytes};
    return load(pieces);
}

bool Shard::load(std::span<const std::span<const std::byte>> pieces) {
    state_->reset();
    if (!state_->load(pieces) || !audit().ok) {
        state_->reset();
        return false;
    }
    return true;
}

std::vector<Command> Shard::transfers_in_flight() const {
    const State& state = *state_;
    std::vector<Command> commands;
    for (uint32_t i = 0; i < state.txn_count; ++i) {
        const TxnEntry& entry = state.txns[i];
        if (entry.op == Op::transfer && entry.state == TxnState::transfer_in_flight) {
            Command transfer;
            transfer.op = Op::transfer;
            transfer.txn_id = entry.txn_id;
            transfer.member_id = entry.member_id;
            transfer.counterparty_id = entry.aux;
            transfer.points = entry.points;
            commands.push_back(transfer_credit_for(transfer));
        }
    }
    return commands;
}

Command Shard::transfer_credit_for(const Command& transfer) noexcept {
    Command credit;
    credit.op = Op::transfer_credit;
    credit.txn_id = transfer.txn_id;
    credit.member_id = transfer.counterparty_id;
    credit.counterparty_id = transfer.member_id;
    credit.points = transfer.points;
    return credit;
}

Record Shard::transfer_received_for(const Command& transfer, Points available_after) noexcept {
    Record received;
    received.command = transfer_credit_for(transfer);
    received.command.op = Op::transfer_received;
    received.command.time_us = transfer.time_us;
    received.command.order_ref = transfer.order_ref;
    received.command.store_id = transfer.store_id;
    received.command.merchant_id = transfer.merchant_id;
    received.command.reason_code = transfer.reason_code;
    received.applied_points = transfer.points;
    received.available_after = available_after;
    return received;
}

Command Shard::transfer_confirm_for(const Command& credit) noexcept {
    Command confirm;
    confirm.op = Op::transfer_confirm;
    confirm.txn_id = credit.txn_id;
    confirm.member_id = credit.counterparty_id;
    confirm.counterparty_id = credit.member_id;
    confirm.points = credit.points;
    return confirm;
}

Command Shard::transfer_refund_for(const Command& credit, Result refusal) noexcept {
    Command refund = transfer_confirm_for(credit);
    refund.op = Op::transfer_refund;
    refund.reason_code = static_cast<uint32_t>(refusal);
    return refund;
}

uint32_t Shard::shard_index() const noexcept { return state_->shard_index; }

void Shard::set_rules(const Config& rules) noexcept {
    Config& config = state_->config;
    JIFEN_ASSERT(rules.expiry_months == config.expiry_months);
    config.hold_timeout_us_default = rules.hold_timeout_us_default;
    config.hold_timeout_us_max = rules.hold_timeout_us_max;
    config.reverse_allows_negative = rules.reverse_allows_negative;
    config.points_keep_months = rules.points_keep_months;
    config.holds_per_member_max = rules.holds_per_member_max;
    config.pending_lots_per_member_max = rules.pending_lots_per_member_max;
}

uint64_t Shard::member_count() const noexcept { return state_->member_count; }

uint64_t Shard::transaction_count() const noexcept { return state_->txn_count; }

uint64_t Shard::open_hold_count() const noexcept { return state_->open_holds; }

uint64_t Shard::lot_nodes_in_use() const noexcept { return state_->lot_nodes_used; }

uint32_t Shard::shard_of(MemberId member_id, uint32_t shard_count) noexcept {
    // The high half of the mix picks the shard; member tables index by the low half, so the
    // members of one shard still spread over its whole table.
    return protocol::shard_of(member_id, shard_count);
}

}  // namespace jifen::engine
