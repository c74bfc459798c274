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
// thread calls grow(), and all go on. The index is split by hash into segments (up to
// segments_max, each at least segment_slots_min), and grow() doubles only the segments that are
// due, so a growth stops the shards for the rehash of one segment, not of every id ever kept.
// Each segment is due at its own load between 5/8 and 3/4 (staggered by segment number), so with
// ids spread evenly the segments come due one at a time, spread over each doubling of the ids,
// instead of all at once. Claims in a segment succeed up to 7/8 of it, so the room between its
// due mark and 7/8 carries the claims made until every thread reaches the barrier. claim()
// answers Claim::full only when that headroom ran out too, or when grow() found no memory.
//
// Preparation. Most of a growth was getting the new slots from the kernel (mapping and
// prefaulting them: two thirds of the time every shard waited). So a segment that passes its
// prepare mark, 1/16 of its slots before its due mark, asks for preparation (preparation_due());
// one thread at a time, outside the barrier, calls prepare(), which maps and prefaults the next
// slots of one such segment per call while the others go on claiming. grow() then only rehashes,
// and it also takes up to early_growths_max prepared segments that are not due yet, so one barrier
// serves several segments. The slots a growth replaced are unmapped after the barrier
// (release_retired()), not while all wait.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

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
    // claims under its shard index). Each keeps its own counts, so claims on different shards
    // write nothing in common but the slots themselves and, once per chunk of claims, a
    // segment's reservation word. Give the real number: a claimer's share of a segment's
    // headroom, the chunk it reserves at a time, shrinks as claimers are added.
    static constexpr uint32_t claimers_default = 64;
    // Segments: a growth rehashes one segment while the shards wait, so more segments mean
    // shorter waits (and more of them). At least segment_slots_min slots each, so the headroom
    // of one (1/8 of it) stays large against the claims a frame can put there.
    static constexpr uint32_t segments_max = 1'024;
    static constexpr uint64_t segment_slots_min = 4'096;
    // Prepared segments one grow() takes before they are due: fewer barriers, each a little
    // longer (a segment's rehash, not its mapping).
    static constexpr uint32_t early_growths_max = 4;

    // slots is rounded up to a power of two (at least 16). hash_key: mixed into every id's hash;
    // a server passes a random one (see hash_of). Throws std::bad_alloc only here.
    explicit TxnIndex(uint64_t slots, uint32_t claimers = claimers_default, uint64_t hash_key = 0)
        : claimers_(std::max<uint32_t>(1, claimers)),
          key_(hash_key),
          segment_count_(static_cast<uint32_t>(std::clamp<uint64_t>(
              std::bit_ceil(std::max<uint64_t>(16, slots)) / segment_slots_min, 1, segments_max))),
          quota_stride_((segment_count_ + 15) / 16 * 16),
          blocks_(size_t{4} * segment_count_),
          claimed_(std::make_unique<Claimed[]>(claimers_)),
          quotas_(static_cast<uint32_t*>(detail::map_zeroed(quota_bytes()))),
          segments_(std::make_unique<Segment[]>(segment_count_)),
          reserved_(std::make_unique<Reserved[]>(segment_count_)) {
        // All segments start side by side in one mapping, on huge pages when it is big enough
        // (see map_slots); a segment that grows moves to memory of its own.
        const uint64_t per_segment = std::bit_ceil(std::max<uint64_t>(16, slots)) / segment_count_;
        first_segment_slots_ = per_segment;
        first_bytes_ = bytes_of(per_segment * segment_count_);
        try {
            retired_.reserve(size_t{2} * segment_count_);
            first_released_ = std::make_unique<uint8_t[]>(first_bytes_ / detail::huge_page_bytes);
        } catch (const std::bad_alloc&) {
            release_all();
            throw;
        }
        first_ = static_cast<Slot*>(first_bytes_ >= detail::huge_page_bytes
                                        ? detail::map_huge_zeroed(first_bytes_)
                                        : detail::map_zeroed(first_bytes_));
        if (quotas_ == nullptr || first_ == nullptr) {
            detail::unmap_zeroed(first_, first_bytes_);  // No segment has a slice of it yet.
            release_all();
            throw std::bad_alloc();
        }
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            place(segment, first_ + segment * per_segment, per_segment);
        }
    }
    ~TxnIndex() { release_all(); }
    TxnIndex(const TxnIndex&) = delete;
    TxnIndex& operator=(const TxnIndex&) = delete;

    // Linearizable insert-if-absent: of two concurrent claims of one id, exactly one is claimed.
    // local_index is the owning shard's own position for the transaction, kept beside the owner
    // so that shard needs no second table to find it (see local_index_of). claimer: below the
    // constructor's claimers, and used by one thread at a time.
    Claim claim(TxnId txn_id, MemberId member_id, uint32_t local_index = 0,
                uint32_t claimer = 0) noexcept {
        JIFEN_ASSERT(claimer < claimers_);
        const uint64_t hash = hash_of(txn_id);
        const uint32_t segment_index = segment_of(hash);
        const Segment& segment = segments_[segment_index];
        uint32_t& quota = quotas_[size_t{claimer} * quota_stride_ + segment_index];
        for (uint64_t probe = 0, at = hash & segment.mask; probe <= segment.mask;
             ++probe, at = (at + 1) & segment.mask) {
            Slot& slot = segment.slots[at];
            uint32_t state = state_of(slot).load(std::memory_order_acquire);
            if (state == empty) {
                if (quota == 0 && !refill(segment_index, &quota)) {
                    return Claim::full;
                }
                if (state_of(slot).compare_exchange_strong(state, writing,
                                                           std::memory_order_acquire)) {
                    slot.key_lo = txn_id.lo;
                    slot.key_hi = txn_id.hi;
                    slot.member_id = member_id;
                    slot.local_index = local_index;
                    state_of(slot).store(ready, std::memory_order_release);
                    --quota;
                    // Only this claimer writes its count: a plain increment, no locked add.
                    std::atomic<uint64_t>& claimed = claimed_[claimer].value;
                    claimed.store(claimed.load(std::memory_order_relaxed) + 1,
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
        const uint64_t hash = hash_of(txn_id);
        const Segment& segment = segments_[segment_of(hash)];
        for (uint64_t probe = 0, at = hash & segment.mask; probe <= segment.mask;
             ++probe, at = (at + 1) & segment.mask) {
            const Slot& slot = segment.slots[at];
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

    // Starts loading the slots claim() and find() read first for txn_id (see Shard::prefetch):
    // the first probe's cache line and the next one. A new id probes until it finds an empty
    // slot, about 2.5 slots at half load, so with two 32-byte slots to a line it usually reads a
    // second line; prefetching only the first left that second miss to stall the apply
    // (engine_bench batched: +6%, docs/performance.md).
    [[gnu::always_inline]] void prefetch(TxnId txn_id) const noexcept {
        const uint64_t hash = hash_of(txn_id);
        const Segment& segment = segments_[segment_of(hash)];
        __builtin_prefetch(&segment.slots[hash & segment.mask]);
        __builtin_prefetch(&segment.slots[(hash + 2) & segment.mask]);
    }

    // True once some segment should grow. Cheap enough to ask after every batch: one word,
    // written when a segment comes due and when it has grown.
    bool growth_due() const noexcept { return growth_due_.load(std::memory_order_relaxed); }

    // True once some segment passed its prepare mark since the last prepare(). As cheap.
    bool preparation_due() const noexcept {
        return preparation_due_.load(std::memory_order_relaxed);
    }

    // Maps and prefaults the next slots (twice the present count) of one segment past its
    // prepare mark that has none yet, for grow() to use; preparation_due() stays true while
    // others wait (one per call, so a caller is never held for more than one segment's worth).
    // Runs while other threads claim and find (it reads only what they do not write but through
    // atomics), but never at the same time as another prepare(), grow(), reserve() or
    // release_retired(): the caller keeps them apart. Memory the kernel refuses is simply not
    // prepared; grow() then tries again itself.
    void prepare() noexcept {
        // An exchange, not a store: a refill that set the flag after crossing a mark either is
        // seen here (acquire: with its reservation) or sets the flag again after this.
        preparation_due_.exchange(false, std::memory_order_acquire);
        bool prepared_one = false;
        for (uint32_t segment_index = 0; segment_index < segment_count_; ++segment_index) {
            Segment& segment = segments_[segment_index];
            if (segment.prepared != nullptr ||
                reserved_[segment_index].value.load(std::memory_order_relaxed) <
                    segment.prepare_at) {
                continue;
            }
            if (prepared_one) {
                preparation_due_.store(true, std::memory_order_relaxed);
                return;
            }
            prepared_one = true;
            const uint64_t slots = (segment.mask + 1) * 2;
            auto* prepared = static_cast<Slot*>(map_slots(slots));
            if (prepared != nullptr && !detail::prefault_zeroed(prepared, bytes_of(slots))) {
                unmap_slots(prepared, slots);
                prepared = nullptr;
            }
            segment.prepared = prepared;
            segment.prepared_count = prepared == nullptr ? 0 : slots;
        }
    }

    // Unmaps the slots growths replaced. Like prepare(), while others claim, apart from the
    // calls named there. Until then, the replaced slots stay mapped (not used).
    void release_retired() noexcept {
        for (const Retired& retired : retired_) {
            unmap_slots(retired.slots, retired.count);
        }
        retired_.clear();
    }

    // Rehashes each segment that is due, and up to early_growths_max prepared ones that are
    // not due yet, with every claim's owner and local_index, into twice its slots. Call only
    // while no thread claims or finds (behind a barrier all of them wait at); the barrier orders
    // this against their claims before and after. The slots replaced wait for
    // release_retired(). Returns false when memory could not be had for some segment, which then
    // stays as it is: claims there go on until Claim::full.
    bool grow() noexcept {
        bool grown = true;
        uint32_t early = 0;
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            const bool grows = due(segment) || (segments_[segment].prepared != nullptr &&
                                                early++ < early_growths_max);
            if (grows && !resize(segment, (segments_[segment].mask + 1) * 2)) {
                grown = false;
            }
        }
        update_growth_due();
        return grown;
    }

    // Grows segments until `claims` more claims fit before any is due; for a single-threaded
    // caller such as recovery, which knows how many ids it will replay. Ids spread over the
    // segments by hash, so each gets its share with a margin for the spread. Same rules as
    // grow().
    bool reserve(uint64_t claims) noexcept {
        const uint64_t share = claims / segment_count_;
        const uint64_t margin = share / 8 + 64;
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            const uint64_t wanted =
                reserved_[segment].value.load(std::memory_order_relaxed) + share + margin;
            uint64_t slots = segments_[segment].mask + 1;
            while (grow_at(segment, slots) <= wanted) {
                if (slots > (uint64_t{1} << 56)) {
                    return false;
                }
                slots *= 2;
            }
            if (slots != segments_[segment].mask + 1 && !resize(segment, slots)) {
                release_retired();
                return false;
            }
        }
        release_retired();
        update_growth_due();
        return true;
    }

    // Makes every slot page resident now, so claims take no page faults later (the slots are
    // otherwise mapped as claims first touch them). Only while no thread claims or finds.
    // False when the kernel has no memory for them.
    bool prefault() noexcept {
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            if (!detail::prefault_zeroed(segments_[segment].slots,
                                         bytes_of(segments_[segment].mask + 1))) {
                return false;
            }
        }
        return true;
    }

    // Ids claimed. Exact while no one claims; a moment's snapshot otherwise.
    uint64_t used() const noexcept {
        uint64_t sum = 0;
        for (uint32_t claimer = 0; claimer < claimers_; ++claimer) {
            sum += claimed_[claimer].value.load(std::memory_order_relaxed);
        }
        return sum;
    }
    // Claims the present slots take before Claim::full (7/8 of each segment).
    uint64_t capacity() const noexcept {
        uint64_t sum = 0;
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            sum += segments_[segment].used_max;
        }
        return sum;
    }
    uint64_t slot_count() const noexcept {
        uint64_t sum = 0;
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            sum += segments_[segment].mask + 1;
        }
        return sum;
    }
    uint32_t segment_count() const noexcept { return segment_count_; }
    // Huge pages that hold grown segments below 2 MiB (HugePageBlocks). Only while no thread
    // prepares or grows.
    size_t shared_huge_pages() const noexcept { return blocks_.huge_pages(); }
    // Segments holding prepared slots. Only while no thread prepares or grows.
    uint32_t segments_prepared() const noexcept {
        uint32_t count = 0;
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            count += segments_[segment].prepared != nullptr ? 1 : 0;
        }
        return count;
    }
    // The most slots any segment has: what one growth rehashes at most, doubled.
    uint64_t segment_slots_largest() const noexcept {
        uint64_t largest = 0;
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            largest = std::max(largest, segments_[segment].mask + 1);
        }
        return largest;
    }

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

    // Read by every claim, written only by grow() and reserve() (behind the barrier), but for
    // prepared and prepared_count, which claims never read (see prepare()).
    struct Segment {
        Slot* slots = nullptr;
        uint64_t mask = 0;
        uint64_t used_max = 0;     // Claims reserved here before Claim::full: 7/8 of the slots.
        uint64_t grow_at = 0;      // Reservations that make this segment due.
        uint64_t prepare_at = 0;   // Reservations that ask for its next slots to be prepared.
        uint64_t chunk = 1;        // Claims one refill reserves for one claimer.
        Slot* prepared = nullptr;  // Zeroed, prefaulted slots for the next growth, or null.
        uint64_t prepared_count = 0;
    };
    // Slots a growth replaced, unmapped by release_retired().
    struct Retired {
        Slot* slots;
        uint64_t count;
    };
    // Claims made plus quota handed out, per segment; at most used_max. Written once per chunk.
    struct alignas(64) Reserved {
        std::atomic<uint64_t> value{0};
    };
    // One claimer's count of claims, on its own line; read by used().
    struct alignas(64) Claimed {
        std::atomic<uint64_t> value{0};
    };

    static std::atomic_ref<uint32_t> state_of(Slot& slot) noexcept {
        return std::atomic_ref<uint32_t>(slot.state);
    }
    static std::atomic_ref<uint32_t> state_of(const Slot& slot) noexcept {
        return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(slot.state));
    }
    static constexpr size_t bytes_of(uint64_t slots) noexcept { return slots * sizeof(Slot); }

    // Slots for a segment that grows, on huge pages like the first mapping: the index is
    // probed at random, and a claim then rarely misses the TLB as well as the cache (about 9%
    // more batched applies in engine_bench, whose 512 MiB index is one such mapping; 17% more
    // earns through jifend while its segments grew, when they moved to 4 KiB pages). From 2 MiB
    // a mapping of their own, below that blocks of a shared huge page (blocks_), so a segment
    // stays on huge pages as it grows. Segment sizes are powers of two from 128 KiB (or one
    // smaller segment), so a mapping on huge pages is a whole number of them. Every segment,
    // inside the first mapping or in memory of its own, is released with unmap_slots.
    void* map_slots(uint64_t slots) noexcept {
        const size_t bytes = bytes_of(slots);
        if (bytes >= detail::huge_page_bytes) {
            return detail::map_huge_zeroed(bytes);
        }
        return detail::HugePageBlocks::fits(bytes) ? blocks_.allocate(bytes)
                                                   : detail::map_zeroed(bytes);
    }
    void unmap_slots(Slot* slots, uint64_t count) noexcept {
        const size_t bytes = bytes_of(count);
        // Only a first slice has the first count (every later one is larger): memory mapped
        // later may lie where a released huge page of the first mapping was.
        if (count == first_segment_slots_ && slots >= first_ &&
            slots < first_ + first_bytes_ / sizeof(Slot)) {
            release_first(slots, bytes);
        } else if (detail::HugePageBlocks::fits(bytes)) {
            blocks_.release(slots, bytes);
        } else {
            detail::unmap_zeroed(slots, bytes);
        }
    }
    // A segment's slice of the first mapping. On huge pages, each goes back whole once every
    // segment in it has moved out: unmapping one slice would put its neighbours on 4 KiB pages.
    void release_first(Slot* slots, size_t bytes) noexcept {
        if (first_bytes_ < detail::huge_page_bytes || bytes >= detail::huge_page_bytes) {
            detail::unmap_zeroed(slots, bytes);
            return;
        }
        const size_t page =
            bytes_of(static_cast<uint64_t>(slots - first_)) / detail::huge_page_bytes;
        if (++first_released_[page] == detail::huge_page_bytes / bytes) {
            detail::unmap_zeroed(first_ + page * (detail::huge_page_bytes / sizeof(Slot)),
                                 detail::huge_page_bytes);
        }
    }
    // Leaves slots no segment uses any more to release_retired(); room for two per segment is
    // reserved at construction (a growth's old slots and a prepared set that did not fit), so
    // only a caller that grows again and again without releasing has them unmapped at once.
    void retire(Slot* slots, uint64_t count) noexcept {
        if (retired_.size() < retired_.capacity()) {
            retired_.push_back({slots, count});
        } else {
            unmap_slots(slots, count);
        }
    }
    static_assert(detail::huge_page_bytes % (segment_slots_min * 32) == 0);  // Slot: 32 bytes.
    size_t quota_bytes() const noexcept {
        return size_t{claimers_} * quota_stride_ * sizeof(uint32_t);
    }

    uint64_t hash_of(TxnId txn_id) const noexcept {
        // Client ids may be sequential: mix both halves so neighbours land far apart. With a
        // secret key (the server's is random at every start: the index lives in memory only),
        // ids a client chose cannot crowd one segment or one run of slots, which recovery's
        // reserve() relies on: it sizes every segment for its even share.
        uint64_t h = (txn_id.lo ^ key_) * 0x9E3779B97F4A7C15ull ^
                     std::rotl(txn_id.hi ^ std::rotl(key_, 17), 31);
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 32;
        return h;
    }
    // The segment takes the top bits, the slot within it the low ones: a segment never holds
    // more than 2^54 slots, so the two never overlap.
    uint32_t segment_of(uint64_t hash) const noexcept {
        return static_cast<uint32_t>(hash >> 54) & (segment_count_ - 1);
    }

    // A segment is due at a load between 5/8 and 3/4 of its slots, later for higher numbers:
    // evenly filled segments then come due one after another, not together. (A wider window
    // spaces the growths further apart but leaves the index emptier on average.)
    uint64_t grow_at(uint32_t segment, uint64_t slots) const noexcept {
        return slots / 8 * 5 + slots / 8 * (segment + 1) / segment_count_;
    }
    bool due(uint32_t segment) const noexcept {
        return reserved_[segment].value.load(std::memory_order_relaxed) >=
               segments_[segment].grow_at;
    }
    void update_growth_due() noexcept {
        bool any = false;
        for (uint32_t segment = 0; segment < segment_count_ && !any; ++segment) {
            any = due(segment);
        }
        growth_due_.store(any, std::memory_order_relaxed);
    }

    // A spin: a slot in state writing becomes ready within a few stores.
    static void wait_ready(const Slot& slot) noexcept {
        while (state_of(slot).load(std::memory_order_acquire) != ready) {
        }
    }

    // Reserves a chunk of a segment's remaining room for one claimer; false when there is
    // none. The chunk is small against the room (at most 1/8 of it over all claimers), so room
    // reserved by idle claimers delays Claim::full only a little.
    bool refill(uint32_t segment_index, uint32_t* quota) noexcept {
        const Segment& segment = segments_[segment_index];
        std::atomic<uint64_t>& reserved = reserved_[segment_index].value;
        uint64_t before = reserved.load(std::memory_order_relaxed);
        uint64_t chunk = 0;
        do {
            if (before >= segment.used_max) {
                return false;
            }
            chunk = std::min(segment.chunk, segment.used_max - before);
        } while (
            !reserved.compare_exchange_weak(before, before + chunk, std::memory_order_relaxed));
        if (before < segment.prepare_at && before + chunk >= segment.prepare_at) {
            preparation_due_.store(true, std::memory_order_release);
        }
        if (before < segment.grow_at && before + chunk >= segment.grow_at) {
            growth_due_.store(true, std::memory_order_relaxed);
        }
        *quota = static_cast<uint32_t>(chunk);
        return true;
    }

    // Fresh zeroed slots for a segment, with the limits that go with their count; false
    // without memory (the segment then keeps what it had).
    bool allocate(uint32_t segment_index, uint64_t slots) noexcept {
        void* memory = map_slots(slots);
        if (memory == nullptr) {
            return false;
        }
        place(segment_index, static_cast<Slot*>(memory), slots);
        return true;
    }

    // Makes slots (zeroed, count a power of two) the segment's, with the limits that go with it.
    void place(uint32_t segment_index, Slot* slots, uint64_t count) noexcept {
        Segment& segment = segments_[segment_index];
        segment.slots = slots;
        segment.mask = count - 1;
        segment.used_max = count / 8 * 7;
        segment.grow_at = grow_at(segment_index, count);
        segment.prepare_at = segment.grow_at - count / 16;
        segment.chunk =
            std::clamp<uint64_t>(segment.used_max / (uint64_t{8} * claimers_), 1, 1'024);
    }

    bool resize(uint32_t segment_index, uint64_t slots) noexcept {
        const Segment old = segments_[segment_index];
        const uint64_t old_count = old.mask + 1;
        if (slots <= old_count) {
            return false;
        }
        Segment& segment = segments_[segment_index];
        if (old.prepared != nullptr && old.prepared_count == slots) {
            place(segment_index, old.prepared, slots);
        } else {
            if (old.prepared != nullptr) {
                retire(old.prepared, old.prepared_count);
            }
            // Populating the new slots in one call first made growth 3 to 4x faster than
            // taking a fault per page; it also finds out now, not halfway, when memory is short.
            if (!allocate(segment_index, slots)) {
                segment = old;
                return false;
            }
            if (!detail::prefault_zeroed(segment.slots, bytes_of(slots))) {
                unmap_slots(segment.slots, slots);
                segment = old;
                return false;
            }
        }
        segment.prepared = nullptr;
        segment.prepared_count = 0;
        uint64_t kept = 0;
        for (uint64_t at = 0; at < old_count; ++at) {
            const Slot& slot = old.slots[at];
            JIFEN_ASSERT(slot.state == empty || slot.state == ready);  // Nobody is claiming.
            if (slot.state == ready) {
                uint64_t to = hash_of(TxnId{slot.key_lo, slot.key_hi}) & segment.mask;
                while (segment.slots[to].state != empty) {
                    to = (to + 1) & segment.mask;
                }
                segment.slots[to] = slot;
                ++kept;
            }
        }
        // Unmapping here would hold every waiting thread for the kernel's TLB shootdown too.
        retire(old.slots, old_count);
        // Room claimers held here returns: reservations start again from the exact count.
        for (uint32_t claimer = 0; claimer < claimers_; ++claimer) {
            quotas_[size_t{claimer} * quota_stride_ + segment_index] = 0;
        }
        reserved_[segment_index].value.store(kept, std::memory_order_relaxed);
        return true;
    }

    // Everything mapped: the segments' slots and the claimers' quotas.
    void release_all() noexcept {
        for (uint32_t segment = 0; segment < segment_count_; ++segment) {
            Segment& each = segments_[segment];
            if (each.slots != nullptr) {
                unmap_slots(each.slots, each.mask + 1);
                each.slots = nullptr;
            }
            if (each.prepared != nullptr) {
                unmap_slots(each.prepared, each.prepared_count);
                each.prepared = nullptr;
            }
        }
        release_retired();
        detail::unmap_zeroed(quotas_, quota_bytes());
    }

    const uint32_t claimers_;
    const uint64_t key_;
    const uint32_t segment_count_;  // A power of two.
    const uint32_t quota_stride_;   // Whole cache lines per claimer's row of quotas.
    // Segments' slots below 2 MiB, after a growth; only through map_slots() and unmap_slots(),
    // which prepare(), grow(), reserve(), release_retired() and release_all() call.
    detail::HugePageBlocks blocks_;
    // The mapping all segments start in, and per huge page of it, the segments that moved out.
    Slot* first_ = nullptr;
    uint64_t first_segment_slots_ = 0;
    size_t first_bytes_ = 0;
    std::unique_ptr<uint8_t[]> first_released_;
    const std::unique_ptr<Claimed[]> claimed_;
    // quotas_[claimer * quota_stride_ + segment]: claims reserved and not yet made. Each
    // claimer writes only its own row, whole cache lines of it; mapped memory, so the rows of
    // claimers that never claim cost nothing.
    uint32_t* const quotas_;
    const std::unique_ptr<Segment[]> segments_;
    const std::unique_ptr<Reserved[]> reserved_;
    // Written by grow() and reserve(), emptied by release_retired().
    std::vector<Retired> retired_;
    alignas(64) std::atomic<bool> growth_due_{false};
    std::atomic<bool> preparation_due_{false};
};

}  // namespace jifen::engine
