// Tables for the shard: zeroed arrays and open-addressing indexes from a hash to a dense
// position. Sized at startup; only an explicit grow() or rehash() allocates after that.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "engine/assert.hpp"
#include "engine/command.hpp"
#include "engine/memory.hpp"

namespace jifen::engine::detail {

inline constexpr uint32_t none = std::numeric_limits<uint32_t>::max();

// splitmix64's finalizer: every input bit moves about half the output bits.
constexpr uint64_t mix64(uint64_t value) noexcept {
    value ^= value >> 30;
    value *= 0xBF58476D1CE4E5B9ull;
    value ^= value >> 27;
    value *= 0x94D049BB133111EBull;
    value ^= value >> 31;
    return value;
}

constexpr uint64_t hash_combine(uint64_t seed, uint64_t value) noexcept {
    return mix64(seed ^ (value + 0x9E3779B97F4A7C15ull + (seed << 6) + (seed >> 2)));
}

constexpr uint64_t hash_txn_id(TxnId txn_id) noexcept {
    return hash_combine(mix64(txn_id.lo), txn_id.hi);
}

// A zero-filled array on mapped memory (engine/memory.hpp): the memory a table reserves costs
// nothing until it is used, and grow() moves pages instead of copying entries.
template <class T>
class FixedArray {
    static_assert(std::is_trivially_copyable_v<T>);

public:
    FixedArray() = default;
    explicit FixedArray(uint64_t count)
        : data_(static_cast<T*>(map_zeroed(bytes_of(count)))), count_(count) {
        if (data_ == nullptr) {
            throw std::bad_alloc();
        }
    }
    // As above, but empty (count() == 0) when memory cannot be had.
    FixedArray(uint64_t count, std::nothrow_t) noexcept
        : data_(static_cast<T*>(map_zeroed(bytes_of(count)))),
          count_(data_ == nullptr ? 0 : count) {}
    ~FixedArray() { unmap_zeroed(data_, bytes_of(count_)); }
    FixedArray(const FixedArray&) = delete;
    FixedArray& operator=(const FixedArray&) = delete;
    FixedArray(FixedArray&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
    FixedArray& operator=(FixedArray&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(count_, other.count_);
        return *this;
    }

    T& operator[](uint64_t index) noexcept {
        JIFEN_DASSERT(index < count_);
        return data_[index];
    }
    const T& operator[](uint64_t index) const noexcept {
        JIFEN_DASSERT(index < count_);
        return data_[index];
    }
    uint64_t count() const noexcept { return count_; }
    // Asks for transparent huge pages (see advise_huge_pages): for a table of fixed size probed
    // at random. Before the table is first touched.
    void prefer_huge_pages() noexcept { advise_huge_pages(data_, bytes_of(count_)); }
    // Zeros every element and returns the pages (see clear_zeroed).
    void clear() noexcept { clear_zeroed(data_, bytes_of(count_)); }
    // Starts loading the line holding element index (which must be in range).
    [[gnu::always_inline]] void prefetch(uint64_t index) const noexcept {
        __builtin_prefetch(data_ + index);
    }

    // Makes room for count elements, keeping the present ones; new ones are zero. Returns false,
    // changing nothing, when memory cannot be had. Invalidates references into the array.
    bool grow(uint64_t count) noexcept {
        JIFEN_ASSERT(count >= count_);
        if (count > std::numeric_limits<uint64_t>::max() / sizeof(T)) {
            return false;
        }
        void* moved = remap_zeroed(data_, bytes_of(count_), bytes_of(count));
        if (moved == nullptr) {
            return false;
        }
        data_ = static_cast<T*>(moved);
        count_ = count;
        return true;
    }

private:
    static size_t bytes_of(uint64_t count) noexcept { return count * sizeof(T); }

    T* data_ = nullptr;
    uint64_t count_ = 0;
};

// Open addressing from a hash to a dense index (stored + 1; 0 = empty). Entries are never
// removed (members and transactions live forever), so linear probing needs no tombstones. At
// least twice as many slots as entries keeps probes short. A tagged index also keeps the hash's
// upper half in each slot, so a probe past another entry's slot does not read that entry: the
// transaction table is mostly asked about new ids, and each avoided read is a cache miss.
template <bool tagged>
class FlatIndex {
    using Slot = std::conditional_t<tagged, uint64_t, uint32_t>;

public:
    FlatIndex() = default;
    explicit FlatIndex(uint64_t entries_max)
        : slots_(std::bit_ceil(std::max<uint64_t>(16, entries_max * 2))),
          mask_(slots_.count() - 1) {}

    // Returns the dense index whose entry matches, or none.
    template <class Matches>
    uint32_t find(uint64_t hash, Matches matches) const noexcept {
        for (uint64_t at = hash & mask_;; at = (at + 1) & mask_) {
            const Slot slot = slots_[at];
            if (slot == 0) {
                return none;
            }
            if constexpr (tagged) {
                if ((slot >> 32) != (hash >> 32)) {
                    continue;
                }
            }
            const auto index = static_cast<uint32_t>(slot) - 1;
            if (matches(index)) {
                return index;
            }
        }
    }

    void insert(uint64_t hash, uint32_t index) noexcept {
        Slot value = index + 1;
        if constexpr (tagged) {
            value |= hash >> 32 << 32;
        }
        for (uint64_t at = hash & mask_;; at = (at + 1) & mask_) {
            if (slots_[at] == 0) {
                slots_[at] = value;
                return;
            }
        }
    }

    // The dense index in the slot a lookup of hash reads first (none when empty), unverified:
    // most likely the entry sought, which is all a prefetch needs.
    uint32_t first_candidate(uint64_t hash) const noexcept {
        const Slot slot = slots_[hash & mask_];
        return slot == 0 ? none : static_cast<uint32_t>(slot) - 1;
    }

    // Starts loading the slot a lookup of hash reads first.
    [[gnu::always_inline]] void prefetch(uint64_t hash) const noexcept {
        __builtin_prefetch(&slots_[hash & mask_]);
    }

    void clear() noexcept { slots_.clear(); }
    // See FixedArray::prefer_huge_pages; a rehash() goes back to 4 KiB pages.
    void prefer_huge_pages() noexcept { slots_.prefer_huge_pages(); }

    // Entries the index holds while probes stay short: half its slots.
    uint64_t entries_max() const noexcept { return slots_.count() / 2; }

    // Moves every entry into a new table for entries_max entries; hash_of(index) gives an
    // entry's hash again (a slot keeps at most half of it). Returns false, changing nothing,
    // when memory cannot be had. Costs time in proportion to the old table's slots.
    template <class HashOf>
    bool rehash(uint64_t entries_max, HashOf hash_of) noexcept {
        FixedArray<Slot> slots(std::bit_ceil(std::max<uint64_t>(16, entries_max * 2)),
                               std::nothrow);
        if (slots.count() == 0) {
            return false;
        }
        std::swap(slots_, slots);
        mask_ = slots_.count() - 1;
        for (uint64_t at = 0; at < slots.count(); ++at) {
            if (slots[at] != 0) {
                const auto index = static_cast<uint32_t>(slots[at]) - 1;
                insert(hash_of(index), index);
            }
        }
        return true;
    }

private:
    FixedArray<Slot> slots_;
    uint64_t mask_ = 0;
};

}  // namespace jifen::engine::detail
