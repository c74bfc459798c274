// The heads changed since the last heads flush: each member's newest log sequence, in memory.
// The log writer owns it; history readers on other threads look members up in it without a lock
// on the writer's side (docs/wal.md, "History").
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "engine/assert.hpp"
#include "engine/command.hpp"
#include "engine/memory.hpp"

namespace jifen::wal {

// A fixed-size open-addressing table (linear probing, never rehashed, never more than half
// full), so a reader can probe it while the writer inserts: every field a reader looks at is an
// atomic, and a slot's key is published (release) only after its head. Entries are removed all
// at once by clear(), which the caller must keep apart from readers (LmdbLog holds its
// shared_mutex exclusively for it).
//
// Each slot has two heads: `head`, the newest record that is committed (what readers see), and
// `pending`, the writer's own, which also counts the commit being written. publish() makes the
// pending heads visible once their commit is done; revert() forgets them when it failed, and
// removes the members the failed attempt added. Removing the newest insertions cannot break the
// probe chain of an older entry (its chain had no empty slot when it was inserted, so it passes
// none of the newer slots), so revert() needs no lock either: a reader either still finds such a
// member, with the head the heads table holds too, or goes to the heads table.
class HeadsMap {
public:
    // members_max: entries the map may hold; the table has at least twice as many slots.
    explicit HeadsMap(uint32_t members_max)
        : mask_(std::bit_ceil(2 * uint64_t{members_max}) - 1),
          shift_(64 - std::countr_zero(mask_ + 1)),
          members_max_(members_max),
          slots_(allocate_slots(mask_ + 1)) {
        JIFEN_ASSERT(members_max > 0);
        occupied_.reserve(members_max);
        touched_.reserve(members_max);
        sorted_.reserve(members_max);
    }

    uint32_t size() const noexcept { return static_cast<uint32_t>(occupied_.size()); }
    uint32_t members_max() const noexcept { return members_max_; }

    // Any thread: the member's committed head, 0 when the map does not know the member (then
    // the heads table does, or the member has no history).
    uint64_t head_of(engine::MemberId member_id) const noexcept {
        for (uint64_t index = home(member_id);; index = (index + 1) & mask_) {
            const Slot& slot = slots_[index];
            const uint64_t key = slot.member_id.load(std::memory_order_acquire);
            if (key == member_id) {
                const uint64_t head = slot.head.load(std::memory_order_acquire);
                // A slot revert() emptied and insert() reused between the two loads holds
                // another member's head: the key, read again after it, says so.
                if (slot.member_id.load(std::memory_order_relaxed) == member_id) {
                    return head;
                }
                index = home(member_id) - 1;  // Probe again from the start.
                continue;
            }
            if (key == 0) {
                return 0;
            }
        }
    }

    static constexpr uint32_t none = UINT32_MAX;

    // Any thread: a hint that the member's slot is about to be looked up.
    void prefetch(engine::MemberId member_id) const noexcept {
        __builtin_prefetch(&slots_[home(member_id)]);
    }
    // Starts loading slot index (none: nothing), for an advance() soon.
    void prefetch_slot(uint32_t index) const noexcept {
        if (index != none) {
            __builtin_prefetch(&slots_[index]);
        }
    }

    // Writer only: the member's slot, or none when the map does not hold the member (the caller
    // then asks the heads table and calls insert()).
    uint32_t find(engine::MemberId member_id) const noexcept {
        for (uint64_t index = home(member_id);; index = (index + 1) & mask_) {
            const uint64_t key = slots_[index].member_id.load(std::memory_order_relaxed);
            if (key == member_id) {
                return static_cast<uint32_t>(index);
            }
            if (key == 0) {
                return none;
            }
        }
    }

    // Writer only. Adds a member whose committed head is `head` (from the heads table; 0 for
    // none) and returns its slot. Readers see it at once, which is safe because that head is
    // committed already. Precondition: size() < members_max() and the member is not in the map.
    uint32_t insert(engine::MemberId member_id, uint64_t head) noexcept {
        JIFEN_ASSERT(member_id != 0 && occupied_.size() < members_max_);
        uint64_t index = home(member_id);
        while (slots_[index].member_id.load(std::memory_order_relaxed) != 0) {
            JIFEN_DASSERT(slots_[index].member_id.load(std::memory_order_relaxed) != member_id);
            index = (index + 1) & mask_;
        }
        Slot& slot = slots_[index];
        slot.head.store(head, std::memory_order_release);  // Release: see head_of().
        slot.pending = head;
        slot.member_id.store(member_id, std::memory_order_release);
        occupied_.push_back(static_cast<uint32_t>(index));
        return static_cast<uint32_t>(index);
    }

    // Writer only, for a slot insert()ed with head 0 before the heads table was read: the
    // member's committed head is `head` after all. Until this store readers see 0 and ask the
    // heads table, which says the same.
    void set_stored_head(uint32_t index, uint64_t head) noexcept {
        Slot& slot = slots_[index];
        JIFEN_ASSERT(slot.pending == slot.head.load(std::memory_order_relaxed));
        slot.head.store(head, std::memory_order_release);
        slot.pending = head;
    }

    // Writer only: the pending head of the member in slot `index` becomes log_seq (a record of
    // the commit being written); returns the previous pending head, the record's link.
    uint64_t advance(uint32_t index, uint64_t log_seq) noexcept {
        Slot& slot = slots_[index];
        JIFEN_ASSERT(log_seq > slot.pending);
        const uint64_t previous = slot.pending;
        if (previous == slot.head.load(std::memory_order_relaxed)) {
            touched_.push_back(index);  // The first change to this member in this commit.
        }
        slot.pending = log_seq;
        return previous;
    }

    // Writer only, before any reader exists (open() rebuilding the map from the log): the
    // member's committed head becomes log_seq.
    void restore(engine::MemberId member_id, uint64_t log_seq) noexcept {
        const uint32_t index = find(member_id);
        if (index == none) {
            insert(member_id, log_seq);
            return;
        }
        slots_[index].head.store(log_seq, std::memory_order_relaxed);
        slots_[index].pending = log_seq;
    }

    // Writer only, after the commit holding the pending heads: readers see them from now on.
    void publish() noexcept {
        for (const uint32_t index : touched_) {
            slots_[index].head.store(slots_[index].pending, std::memory_order_release);
        }
        touched_.clear();
    }

    // Writer only, after a failed commit: back to the committed heads, and to the members the
    // map held when the attempt began (size_before: size() then). The next attempt starts from
    // the same map as the failed one did.
    void revert(uint32_t size_before) noexcept {
        for (const uint32_t index : touched_) {
            slots_[index].pending = slots_[index].head.load(std::memory_order_relaxed);
        }
        touched_.clear();
        JIFEN_ASSERT(size_before <= occupied_.size());
        for (size_t position = size_before; position < occupied_.size(); ++position) {
            Slot& slot = slots_[occupied_[position]];
            slot.member_id.store(0, std::memory_order_relaxed);
            slot.head.store(0, std::memory_order_relaxed);
            slot.pending = 0;
        }
        occupied_.resize(size_before);
    }

    // Writer only: every member's pending head, in member order, for a heads flush.
    template <typename Visit>
    int for_each_sorted(Visit&& visit) {
        // Copied out first: sorting slot indices would compare through random loads of a table
        // far larger than the cache (seconds for half a million members), sorting the pairs
        // themselves takes tens of milliseconds. occupied_ keeps insertion order for revert().
        sorted_.clear();
        for (const uint32_t index : occupied_) {
            sorted_.push_back(
                {slots_[index].member_id.load(std::memory_order_relaxed), slots_[index].pending});
        }
        std::sort(sorted_.begin(), sorted_.end(),
                  [](const Head& a, const Head& b) { return a.member_id < b.member_id; });
        for (const Head& head : sorted_) {
            const int rc = visit(head.member_id, head.log_seq);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    }

    // Writer only, with no reader probing (see the class comment): empties the map after a
    // heads flush has stored every pending head.
    void clear() noexcept {
        for (const uint32_t index : occupied_) {
            slots_[index].member_id.store(0, std::memory_order_relaxed);
            slots_[index].head.store(0, std::memory_order_relaxed);
            slots_[index].pending = 0;
        }
        occupied_.clear();
        touched_.clear();
    }

private:
    struct Slot {
        std::atomic<uint64_t> member_id{0};  // 0: empty (member id 0 is never filed).
        std::atomic<uint64_t> head{0};
        uint64_t pending = 0;  // Writer only.
    };

    // The table is probed at random and tens of MiB large: on huge pages a probe rarely misses
    // the TLB as well as the cache (5% of the writer's time per record in wal_bench).
    struct SlotsRelease {
        uint64_t count;
        void operator()(Slot* slots) const noexcept {
            engine::detail::unmap_huge_zeroed(slots, count * sizeof(Slot));
        }
    };
    using Slots = std::unique_ptr<Slot[], SlotsRelease>;
    static Slots allocate_slots(uint64_t count) {
        void* memory = engine::detail::map_huge_zeroed(count * sizeof(Slot));
        if (memory == nullptr) {
            throw std::bad_alloc();
        }
        static_assert(std::is_trivially_destructible_v<Slot>);
        auto* slots = static_cast<Slot*>(memory);
        std::uninitialized_value_construct_n(slots, count);
        return Slots(slots, SlotsRelease{count});
    }

    uint64_t home(engine::MemberId member_id) const noexcept {
        // Fibonacci hashing: member ids are often consecutive, the top bits of the product are
        // spread over the table.
        return (member_id * 0x9E3779B97F4A7C15ull) >> shift_;
    }

    const uint64_t mask_;
    const int shift_;
    const uint32_t members_max_;
    Slots slots_;
    std::vector<uint32_t> occupied_;  // Writer only: the slots in use, in insertion order.
    std::vector<uint32_t> touched_;   // Writer only: slots whose pending head is not published.
    struct Head {
        engine::MemberId member_id;
        uint64_t log_seq;
    };
    std::vector<Head> sorted_;  // Writer only: scratch for for_each_sorted().
};

}  // namespace jifen::wal
