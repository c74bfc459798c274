// A bounded single-producer single-consumer ring of log records: a shard thread appends, the
// log writer drains. Lock-free; the only shared writes are the two position counters.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>

#include "engine/assert.hpp"
#include "engine/command.hpp"

namespace jifen::wal {

// Positions are absolute record counts, never wrapped: the record at position p has shard
// sequence p + 1, so the ring itself numbers the records of its shard.
class RecordRing {
public:
    // capacity: a power of two. last_seq: the last shard sequence already written, so the next
    // record pushed gets last_seq + 1.
    RecordRing(uint32_t capacity, uint64_t last_seq)
        : mask_(capacity - 1), slots_(std::make_unique<engine::Record[]>(capacity)) {
        JIFEN_ASSERT(std::has_single_bit(capacity));
        head_.store(last_seq, std::memory_order_relaxed);
        tail_.store(last_seq, std::memory_order_relaxed);
        head_cached_ = last_seq;
    }

    uint32_t capacity() const noexcept { return static_cast<uint32_t>(mask_ + 1); }

    // Producer only. All or nothing: false when the ring lacks room for every record.
    bool push(std::span<const engine::Record> records) noexcept {
        const uint64_t tail = tail_.load(std::memory_order_relaxed);
        const uint64_t count = records.size();
        if (tail + count - head_cached_ > mask_ + 1) {
            head_cached_ = head_.load(std::memory_order_acquire);
            if (tail + count - head_cached_ > mask_ + 1) {
                return false;
            }
        }
        // At most two copies: up to the end of the array, then from its start.
        const uint64_t at = tail & mask_;
        const uint64_t first = std::min<uint64_t>(count, mask_ + 1 - at);
        std::memcpy(&slots_[at], records.data(), first * sizeof(engine::Record));
        std::memcpy(&slots_[0], records.data() + first, (count - first) * sizeof(engine::Record));
        tail_.store(tail + count, std::memory_order_release);
        return true;
    }

    // Producer only, for tail() - capacity() <= position < tail(): the record it pushed there,
    // released or not (only the producer writes slots, so nothing changes one while it reads).
    const engine::Record& peek(uint64_t position) const noexcept {
        return slots_[position & mask_];
    }

    // Any thread: the position after the last record pushed (the last shard sequence given).
    uint64_t tail() const noexcept { return tail_.load(std::memory_order_acquire); }

    // Consumer only: the first record not yet released.
    uint64_t head() const noexcept { return head_.load(std::memory_order_relaxed); }

    // Consumer only, for head() <= position < tail(): the record with shard seq position + 1.
    const engine::Record& at(uint64_t position) const noexcept { return slots_[position & mask_]; }

    // Consumer only: copies the records in [from, from + count) to out (handles the wrap).
    void copy_out(uint64_t from, uint64_t count, void* out) const noexcept {
        const uint64_t at_index = from & mask_;
        const uint64_t first = std::min<uint64_t>(count, mask_ + 1 - at_index);
        auto* bytes = static_cast<unsigned char*>(out);
        std::memcpy(bytes, &slots_[at_index], first * sizeof(engine::Record));
        std::memcpy(bytes + first * sizeof(engine::Record), &slots_[0],
                    (count - first) * sizeof(engine::Record));
    }

    // Consumer only: the records before position are written; their slots may be reused.
    void release(uint64_t position) noexcept {
        JIFEN_DASSERT(position <= tail());
        head_.store(position, std::memory_order_release);
    }

private:
    static constexpr size_t line_bytes = 64;

    // Producer's line: its position and its stale copy of the consumer's.
    alignas(line_bytes) std::atomic<uint64_t> tail_{0};
    uint64_t head_cached_ = 0;
    // Consumer's line.
    alignas(line_bytes) std::atomic<uint64_t> head_{0};
    alignas(line_bytes) const uint64_t mask_;
    std::unique_ptr<engine::Record[]> slots_;
};

// How many of the `queued` records from `from` a commit takes when `wanted` would do: never a
// derived record without the record it comes before (engine::Shard::derived()), so a crash
// never keeps what settling or a transfer did while losing the command or tick that did it. The
// shards append whole chains, so the queue's end is never inside one. may_exceed: when not even one
// chain fits, take the first one whole (at most a tick's derived records and the tick, far
// below records_per_commit_max) rather than nothing; only for a commit that has nothing yet, so
// a commit passes its budget by one chain at most, and only when the budget is below a chain.
inline uint64_t whole_chains(const RecordRing& ring, uint64_t from, uint64_t queued,
                             uint64_t wanted, bool may_exceed) noexcept {
    if (wanted == queued || wanted == 0) {
        return wanted;
    }
    uint64_t end = from + wanted;
    while (end > from && engine::is_derived(ring.at(end - 1).command.op)) {
        --end;  // Back to the end of the last whole chain...
    }
    if (end == from && may_exceed) {  // ...or, when none fits, forward to the end of the first.
        end = from + wanted;
        while (end < from + queued && engine::is_derived(ring.at(end - 1).command.op)) {
            ++end;
        }
    }
    return end - from;
}

}  // namespace jifen::wal
