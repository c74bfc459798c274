// The ledger-wide transaction id index: which member each applied transaction id belongs to.
// Shared by all shards; lock-free and insert-only while they run, grown between their batches.
//
// Why it exists: a shard knows the transactions of its own members, but a client could reuse an
// id for a member on another shard. Every shard claims an id here just before it applies a change
// (after all checks passed, so only applied transactions take a slot); a claim that finds the id
// owned by another member turns the command into Result::id_conflict. The index also lets the
// server route capture, release and reverse, which name a transaction id, to the owning shard.
//
// Growth protocol. Ids live forever, so the index must grow, and it cannot while shards claim in
// it lock-free. Whoever drives the shards (the server, recovery) checks growth_due() between
// batches; once it is true it stops every thread that claims or finds here at a barrier, one
// thread calls grow(), and all go on. growth_due() turns true at 3/4 load while claims succeed
// up to 7/8, so the 1/8 in between carries the claims made until every thread reaches the
// barrier. claim() answers Claim::full only when that headroom ran out too, or when grow() found
// no memory.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>

#include "engine/assert.hpp"
#include "engine/command.hpp"
#include "engine/memory.hpp"

namespace jifen::engine {

class TxnIndex {
public:
    enum class Claim : uint8_t {
        claimed,         // The id is now owned by this member.
        owned_by_same,   // Already owned by this member (the shard decides what that means).
        owned_by_other,  // Owned by another member: id_conflict.
        full,            // No room, and no growth in time (or no memory for it): txn_limit.
    };

    // Claimers: threads that may claim at the same time, each under its own number (a shard
    // claims under its shard index). Each counts its claims on its own cache line, so claims
    // on different shards write nothing in common but the slots themselves. The default covers
    // the server's largest shard count (wal::shard_count_max).
    static constexpr uint32_t claimers_default = 1'024;

    // slots is rounded up to a power of two (at least 16). Throws std::bad_alloc only here.
    explicit TxnIndex(uint64_t slots, uint32_t claimers = claimers_default)
        : claimers_(std::max<uint32_t>(1, claimers)),
          counters_(std::make_unique<Counter[]>(claimers_)) {
        if (!allocate(std::bit_ceil(std::max<uint64_t>(16, slots)))) {
            throw std::bad_alloc();
        }
    }
    ~TxnIndex() { detail::unmap_zeroed(slots_, bytes_of(mask_ + 1)); }
    TxnIndex(const TxnIndex&) = delete;
    TxnIndex& operator=(const TxnIndex&) = delete;

    // Linearizable insert-if-absent: of two concurrent claims of one id, exactly one is claimed.
    // local_index is the owning shard's own position for the transaction, kept beside the owner
    // so that shard needs no second table to find it (see local_index_of). claimer: below the
    // constructor's claimers, and used by one thread at a time.
    Claim claim(TxnId txn_id, MemberId member_id, uint32_t local_index = 0,
                uint32_t claimer = 0) noexcept {
        JIFEN_ASSERT(claimer < claimers_);
        Counter& counter = counters_[claimer];
        for (uint64_t probe = 0, at = home(txn_id); probe <= mask_;
             ++probe, at = (at + 1) & mask_) {
            Slot& slot = slots_[at];
            uint32_t state = state_of(slot).load(std::memory_order_acquire);
            if (state == empty) {
                if (counter.quota == 0 && !refill(counter)) {
                    return Claim::full;
                }
                if (state_of(slot).compare_exchange_strong(state, writing,
                                                           std::memory_order_acquire)) {
                    slot.key_lo = txn_id.lo;
                    slot.key_hi = txn_id.hi;
                    slot.member_id = member_id;
                    slot.local_index = local_index;
                    state_of(slot).store(ready, std::memory_order_release);
                    --counter.quota;
                    // Only this claimer writes its count: a plain increment, no locked add.
                    counter.claimed.store(counter.claimed.load(std::memory_order_relaxed) + 1,
                                          std::memory_order_relaxed);
                    return Claim::claimed;
                }
                // Lost the race for this slot: state now holds writing or ready; look again.
            }
            wait_ready(slot);
            if (slot.key_lo == txn_id.lo && slot.key_hi == txn_id.hi) {
                return slot.member_id == member_id ? Claim::owned_by_same : Claim::owned_by_other;
            }
        }
        return Claim::full;
    }

    // The member owning txn_id, or 0 when the id was never applied.
    MemberId find(TxnId txn_id) const noexcept {
        uint32_t local_index = 0;
        return find(txn_id, &local_index);
    }

    // The member owning txn_id (0 when never applied) and the local_index its claim stored.
    MemberId find(TxnId txn_id, uint32_t* local_index) const noexcept {
        for (uint64_t probe = 0, at = home(txn_id); probe <= mask_;
             ++probe, at = (at + 1) & mask_) {
            const Slot& slot = slots_[at];
            if (state_of(slot).load(std::memory_order_acquire) == empty) {
                return 0;
            }
            wait_ready(slot);
            if (slot.key_lo == txn_id.lo && slot.key_hi == txn_id.hi) {
                *local_index = slot.local_index;
                return slot.member_id;
            }
        }
        return 0;
    }

    // Starts loading the slot claim() and find() read first for txn_id (see Shard::prefetch).
    [[gnu::always_inline]] void prefetch(TxnId txn_id) const noexcept {
        __builtin_prefetch(&slots_[home(txn_id)]);
    }

    // True once the index should grow: load at 3/4 (counting claims that claimers have room
    // for). Cheap enough to ask after every batch: it reads one word written once per few
    // hundred claims.
    bool growth_due() const noexcept {
        return reserved_.load(std::memory_order_relaxed) >= grow_at_;
    }

    // Rehashes every claim, with its owner and local_index, into twice the slots. Call only
    // while no thread claims or finds (behind a barrier all of them wait at); the barrier
    // orders this against their claims before and after. Returns false, changing nothing, when
    // memory cannot be had: claims then go on until Claim::full. The barrier is held for the
    // whole rehash: measured 0.17 to 0.6 s at 3.1 M claims (2^22 slots) and 0.6 to 0.8 s at
    // 12.6 M (2^24), on a loaded 2-core virtual machine; each growth doubles the time to the
    // next.
    bool grow() noexcept { return resize((mask_ + 1) * 2); }

    // Grows until claims more claims fit before growth_due(); for a single-threaded caller such
    // as recovery, which knows how many ids it will replay. Same rules as grow().
    bool reserve(uint64_t claims) noexcept {
        const uint64_t wanted = used() + claims;
        uint64_t slots = mask_ + 1;
        while (slots / 4 * 3 <= wanted) {
            if (slots > (uint64_t{1} << 62)) {
                return false;
            }
            slots *= 2;
        }
        return slots == mask_ + 1 || resize(slots);
    }

    // Makes every slot page resident now, so claims take no page faults later (the slots are
    // otherwise mapped as claims first touch them). Only while no thread claims or finds.
    // False when the kernel has no memory for them.
    bool prefault() noexcept { return detail::prefault_zeroed(slots_, bytes_of(mask_ + 1)); }

    // Ids claimed. Exact while no one claims; a moment's snapshot otherwise.
    uint64_t used() const noexcept {
        uint64_t sum = 0;
        for (uint32_t claimer = 0; claimer < claimers_; ++claimer) {
            sum += counters_[claimer].claimed.load(std::memory_order_relaxed);
        }
        return sum;
    }
    // Claims the present slots take before Claim::full (7/8 of them).
    uint64_t capacity() const noexcept { return used_max_; }
    uint64_t slot_count() const noexcept { return mask_ + 1; }

private:
    static constexpr uint32_t empty = 0;
    static constexpr uint32_t writing = 1;  // Claimed; key and member are being written.
    static constexpr uint32_t ready = 2;

    // Plain data, so the slot array is zeroed mapped memory that costs nothing until touched;
    // state is only ever accessed atomically (state_of).
    struct Slot {
        uint32_t state;
        uint32_t local_index;  // Fills what would be padding: a slot stays 32 bytes.
        uint64_t key_lo;
        uint64_t key_hi;
        MemberId member_id;
    };
    static_assert(sizeof(Slot) == 32 && std::is_trivially_copyable_v<Slot>);
    static_assert(std::atomic_ref<uint32_t>::required_alignment <= alignof(Slot));

    // One claimer's own line. Claims take slots out of quota, which refill() takes in chunks
    // from reserved_, so the shared counter is written once per chunk, not once per claim.
    struct alignas(64) Counter {
        std::atomic<uint64_t> claimed{0};  // Written by the claimer only; read by used().
        uint64_t quota = 0;                // Claims reserved and not yet made; claimer only.
    };

    static std::atomic_ref<uint32_t> state_of(Slot& slot) noexcept {
        return std::atomic_ref<uint32_t>(slot.state);
    }
    static std::atomic_ref<uint32_t> state_of(const Slot& slot) noexcept {
        return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(slot.state));
    }
    static size_t bytes_of(uint64_t slots) noexcept { return slots * sizeof(Slot); }

    uint64_t home(TxnId txn_id) const noexcept {
        // Client ids may be sequential: mix both halves so neighbours land far apart.
        uint64_t h = txn_id.lo * 0x9E3779B97F4A7C15ull ^ std::rotl(txn_id.hi, 31);
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 32;
        return h & mask_;
    }

    // A slot in state writing becomes ready within a few stores; spin rather than sleep.
    static void wait_ready(const Slot& slot) noexcept {
        while (state_of(slot).load(std::memory_order_acquire) != ready) {
        }
    }

    // Reserves a chunk of the remaining room for one claimer; false when there is none. The
    // chunk is small against the room (at most 1/8 of it over all claimers), so room reserved
    // by idle claimers delays Claim::full only a little.
    bool refill(Counter& counter) noexcept {
        uint64_t reserved = reserved_.load(std::memory_order_relaxed);
        uint64_t chunk = 0;
        do {
            if (reserved >= used_max_) {
                return false;
            }
            chunk = std::min(chunk_, used_max_ - reserved);
        } while (!reserved_.compare_exchange_weak(reserved, reserved + chunk,
                                                  std::memory_order_relaxed));
        counter.quota = chunk;
        return true;
    }

    // Fresh zeroed slots, with the limits that go with their count; false without memory.
    bool allocate(uint64_t slots) noexcept {
        void* memory = detail::map_zeroed(bytes_of(slots));
        if (memory == nullptr) {
            return false;
        }
        slots_ = static_cast<Slot*>(memory);
        set_limits(slots);
        return true;
    }
    void set_limits(uint64_t slots) noexcept {
        mask_ = slots - 1;
        used_max_ = slots / 8 * 7;
        grow_at_ = slots / 4 * 3;
        chunk_ = std::clamp<uint64_t>(used_max_ / (uint64_t{8} * claimers_), 1, 1'024);
    }

    bool resize(uint64_t slots) noexcept {
        Slot* const old_slots = slots_;
        const uint64_t old_count = mask_ + 1;
        if (slots <= old_count || !allocate(slots)) {
            return false;
        }
        // Populating the new slots in one call first made growth 3 to 4x faster than taking a
        // fault per page; it also finds out now, not halfway, when memory is short.
        if (!prefault()) {
            detail::unmap_zeroed(slots_, bytes_of(slots));
            slots_ = old_slots;
            set_limits(old_count);
            return false;
        }
        for (uint64_t at = 0; at < old_count; ++at) {
            const Slot& slot = old_slots[at];
            JIFEN_ASSERT(slot.state == empty || slot.state == ready);  // Nobody is claiming.
            if (slot.state == ready) {
                uint64_t to = home(TxnId{slot.key_lo, slot.key_hi});
                while (slots_[to].state != empty) {
                    to = (to + 1) & mask_;
                }
                slots_[to] = slot;
            }
        }
        detail::unmap_zeroed(old_slots, bytes_of(old_count));
        // Room held by claimers returns: reservations start again from the exact count.
        for (uint32_t claimer = 0; claimer < claimers_; ++claimer) {
            counters_[claimer].quota = 0;
        }
        reserved_.store(used(), std::memory_order_relaxed);
        return true;
    }

    const uint32_t claimers_;
    const std::unique_ptr<Counter[]> counters_;
    Slot* slots_ = nullptr;
    uint64_t mask_ = 0;
    uint64_t used_max_ = 0;
    uint64_t grow_at_ = 0;
    uint64_t chunk_ = 1;
    // Claims made plus quota handed out; at most used_max_. Apart from the slots, the only
    // word claimers share, written once per chunk.
    alignas(64) std::atomic<uint64_t> reserved_{0};
};

}  // namespace jifen::engine
