// The ledger-wide transaction id index: which member each applied transaction id belongs to.
// Shared by all shards; lock-free, insert-only, sized once at startup.
//
// Why it exists: a shard knows the transactions of its own members, but a client could reuse an
// id for a member on another shard. Every shard claims an id here just before it applies a change
// (after all checks passed, so only applied transactions take a slot); a claim that finds the id
// owned by another member turns the command into Result::id_conflict. The index also lets the
// server route capture, release and reverse, which name a transaction id, to the owning shard.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "engine/command.hpp"

namespace jifen::engine {

class TxnIndex {
public:
    enum class Claim : uint8_t {
        claimed,         // The id is now owned by this member.
        owned_by_same,   // Already owned by this member (the shard decides what that means).
        owned_by_other,  // Owned by another member: id_conflict.
        full,            // Load factor limit reached: txn_limit.
    };

    // slots is rounded up to a power of two; at most 7/8 of them are ever used so probes stay
    // short.
    explicit TxnIndex(uint64_t slots)
        : mask_(std::bit_ceil(slots < 16 ? uint64_t{16} : slots) - 1),
          used_max_(((mask_ + 1) / 8) * 7),
          slots_(std::make_unique<Slot[]>(mask_ + 1)) {}

    // Linearizable insert-if-absent: of two concurrent claims of one id, exactly one is claimed.
    // local_index is the owning shard's own position for the transaction, kept beside the owner
    // so that shard needs no second table to find it (see local_index_of).
    Claim claim(TxnId txn_id, MemberId member_id, uint32_t local_index = 0) noexcept {
        for (uint64_t probe = 0, at = home(txn_id); probe <= mask_;
             ++probe, at = (at + 1) & mask_) {
            Slot& slot = slots_[at];
            uint32_t state = slot.state.load(std::memory_order_acquire);
            if (state == empty) {
                if (used_.load(std::memory_order_relaxed) >= used_max_) {
                    return Claim::full;
                }
                if (slot.state.compare_exchange_strong(state, writing, std::memory_order_acquire)) {
                    slot.key_lo = txn_id.lo;
                    slot.key_hi = txn_id.hi;
                    slot.member_id = member_id;
                    slot.local_index = local_index;
                    slot.state.store(ready, std::memory_order_release);
                    used_.fetch_add(1, std::memory_order_relaxed);
                    return Claim::claimed;
                }
                // Lost the race for this slot: state now holds writing or ready; look again.
            }
            state = wait_ready(slot);
            if (slot.key_lo == txn_id.lo && slot.key_hi == txn_id.hi) {
                return slot.member_id == member_id ? Claim::owned_by_same : Claim::owned_by_other;
            }
        }
        return Claim::full;
    }

    // The member owning txn_id, or 0 when the id was never applied.
    MemberId find(TxnId txn_id) const noexcept {
        for (uint64_t probe = 0, at = home(txn_id); probe <= mask_;
             ++probe, at = (at + 1) & mask_) {
            const Slot& slot = slots_[at];
            if (slot.state.load(std::memory_order_acquire) == empty) {
                return 0;
            }
            wait_ready(slot);
            if (slot.key_lo == txn_id.lo && slot.key_hi == txn_id.hi) {
                return slot.member_id;
            }
        }
        return 0;
    }

    // Starts loading the slot claim() and find() read first for txn_id (see Shard::prefetch).
    void prefetch(TxnId txn_id) const noexcept { __builtin_prefetch(&slots_[home(txn_id)]); }

    // The member owning txn_id (0 when never applied) and the local_index its claim stored.
    MemberId find(TxnId txn_id, uint32_t* local_index) const noexcept {
        for (uint64_t probe = 0, at = home(txn_id); probe <= mask_;
             ++probe, at = (at + 1) & mask_) {
            const Slot& slot = slots_[at];
            if (slot.state.load(std::memory_order_acquire) == empty) {
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

    uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    uint64_t capacity() const noexcept { return used_max_; }

private:
    static constexpr uint32_t empty = 0;
    static constexpr uint32_t writing = 1;  // Claimed; key and member are being written.
    static constexpr uint32_t ready = 2;

    struct Slot {
        std::atomic<uint32_t> state{empty};
        uint32_t local_index = 0;  // Fills what would be padding: a slot stays 32 bytes.
        uint64_t key_lo = 0;
        uint64_t key_hi = 0;
        MemberId member_id = 0;
    };

    uint64_t home(TxnId txn_id) const noexcept {
        // Client ids may be sequential: mix both halves so neighbours land far apart.
        uint64_t h = txn_id.lo * 0x9E3779B97F4A7C15ull ^ std::rotl(txn_id.hi, 31);
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 32;
        return h & mask_;
    }

    // A slot in state writing becomes ready within a few stores; spin rather than sleep.
    static uint32_t wait_ready(const Slot& slot) noexcept {
        uint32_t state = slot.state.load(std::memory_order_acquire);
        while (state != ready) {
            state = slot.state.load(std::memory_order_acquire);
        }
        return state;
    }

    const uint64_t mask_;
    const uint64_t used_max_;
    std::unique_ptr<Slot[]> slots_;
    std::atomic<uint64_t> used_{0};
};

}  // namespace jifen::engine
