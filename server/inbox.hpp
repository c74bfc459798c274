// A bounded lock-free multi-producer single-consumer ring: how shard threads hand each other work.
// Producers reserve a run of cells with one compare-and-swap; the owning shard thread pops.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>

namespace jifen::server {

// Dmitry Vyukov's bounded queue, each cell carrying a sequence number that says whose turn it is,
// specialised for one consumer. Because the single consumer frees cells strictly in order, a
// producer that finds the LAST cell of a run free knows the whole run is free, so a batch of n
// values costs one CAS on the tail instead of n. No allocation after construction, no mutex.
template <typename T>
class Inbox {
    static_assert(std::is_trivially_copyable_v<T>, "values are copied into shared cells");

public:
    explicit Inbox(uint32_t capacity)
        : mask_(std::bit_ceil(capacity < 2 ? 2u : capacity) - 1),
          cells_(std::make_unique<Cell[]>(size_t{mask_} + 1)) {
        for (uint64_t position = 0; position <= mask_; ++position) {
            cells_[position].sequence.store(position, std::memory_order_relaxed);
        }
    }
    Inbox(const Inbox&) = delete;
    Inbox& operator=(const Inbox&) = delete;

    // Any thread. Pushes all values or none: false when the ring lacks room for all of them.
    bool try_push(std::span<const T> values) noexcept {
        const uint64_t count = values.size();
        if (count == 0) {
            return true;
        }
        if (count > uint64_t{mask_} + 1) {
            return false;
        }
        uint64_t tail = tail_.load(std::memory_order_relaxed);
        for (;;) {
            const uint64_t last = tail + count - 1;
            const uint64_t sequence = cells_[last & mask_].sequence.load(std::memory_order_acquire);
            if (sequence == last) {
                if (tail_.compare_exchange_weak(tail, tail + count, std::memory_order_relaxed)) {
                    break;
                }
            } else if (sequence < last) {
                return false;  // The consumer has not freed that cell yet: not enough room.
            } else {
                tail = tail_.load(std::memory_order_relaxed);  // Another producer moved on.
            }
        }
        for (uint64_t i = 0; i < count; ++i) {
            Cell& cell = cells_[(tail + i) & mask_];
            cell.value = values[i];
            cell.sequence.store(tail + i + 1, std::memory_order_release);
        }
        return true;
    }

    bool try_push(const T& value) noexcept { return try_push(std::span<const T>(&value, 1)); }

    // Consumer thread only. False when the next cell is empty or still being written.
    bool try_pop(T* out) noexcept {
        Cell& cell = cells_[head_ & mask_];
        if (cell.sequence.load(std::memory_order_acquire) != head_ + 1) {
            return false;
        }
        *out = cell.value;
        cell.sequence.store(head_ + mask_ + 1, std::memory_order_release);
        ++head_;
        return true;
    }

    // Consumer thread only: true when nothing is published or being written.
    bool empty() const noexcept { return tail_.load(std::memory_order_acquire) == head_; }

    uint32_t capacity() const noexcept { return mask_ + 1; }

private:
    struct Cell {
        std::atomic<uint64_t> sequence{0};
        T value{};
    };

    const uint32_t mask_;
    std::unique_ptr<Cell[]> cells_;
    // Producers and the consumer touch different cache lines.
    alignas(64) std::atomic<uint64_t> tail_{0};
    alignas(64) uint64_t head_ = 0;
};

}  // namespace jifen::server
