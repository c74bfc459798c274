// Grows the ledger-wide TxnIndex while every shard thread waits at a barrier: the server's half
// of the growth protocol in engine/txn_index.hpp. Transaction ids are kept forever, so the index
// must grow while the server runs, and it cannot while shards claim in it lock-free.
//
// Every shard thread calls between_batches() at the end of each round of work. The first thread
// that sees TxnIndex::growth_due() raises the request and rings every other shard's doorbell, so
// an idle shard wakes up and arrives too; each thread that sees the request waits at the barrier;
// the last to arrive grows the index (the barrier's completion), then all go on. Nothing is held
// across the wait: the shards hold no slot of the index between rounds. A shard thread that ends
// leaves the barrier (leave()), so a stopping server never waits for it.
//
// The slots a growth needs are prepared before it, outside the barrier: the first shard thread
// to see TxnIndex::preparation_due() maps them while the others go on working, and the first
// thread to come by after the barrier unmaps the slots the growth replaced. The barrier then only
// covers the rehash (measured: docs/performance.md, "Pauses").
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <span>

#include "engine/txn_index.hpp"
#include "server/doorbell.hpp"

namespace jifen::server {

class TxnIndexGrowth {
public:
    TxnIndexGrowth(engine::TxnIndex& index, uint32_t shard_threads)
        : index_(index), barrier_(shard_threads, Completion{this}) {}

    // Shard thread, between rounds of work. doorbells: every shard's, rung once per request.
    void between_batches(std::span<Doorbell* const> doorbells) {
        // One thread at a time prepares or unmaps, and never while the index grows: a growth
        // needs every shard thread at the barrier, this one included.
        if ((index_.preparation_due() || retired_owed_.load(std::memory_order_relaxed)) &&
            !preparing_.exchange(true, std::memory_order_acquire)) {
            if (retired_owed_.exchange(false, std::memory_order_relaxed)) {
                index_.release_retired();
            }
            if (index_.preparation_due()) {
                index_.prepare();
            }
            preparing_.store(false, std::memory_order_release);
        }
        if (!given_up_.load(std::memory_order_relaxed) && index_.growth_due() &&
            !requested_.exchange(true, std::memory_order_acq_rel)) {
            for (Doorbell* doorbell : doorbells) {
                doorbell->ring();
            }
        }
        if (requested_.load(std::memory_order_acquire)) {
            barrier_.arrive_and_wait();
        }
    }

    // True from the moment the index wants to grow until it has: a shard takes on no new work
    // that claims ids (frames, requests) meanwhile, which bounds the claims made after
    // growth_due() to what each shard already started (one frame, at most batch_ops_max).
    bool pending() const noexcept {
        return requested_.load(std::memory_order_relaxed) ||
               (!given_up_.load(std::memory_order_relaxed) && index_.growth_due());
    }

    // Shard thread, once, when it stops running rounds: later growths do not wait for it.
    void leave() { barrier_.arrive_and_drop(); }

private:
    struct Completion {
        TxnIndexGrowth* self;
        // Runs on the last thread to arrive, while all others wait. Also runs when the last
        // threads leave at shutdown; then there is nothing requested and nothing to do.
        void operator()() noexcept { self->grow_if_requested(); }
    };

    void grow_if_requested() noexcept {
        if (!requested_.load(std::memory_order_relaxed)) {
            return;
        }
        const auto started = std::chrono::steady_clock::now();
        const uint64_t slots_before = index_.slot_count();
        if (index_.grow()) {
            const auto took = std::chrono::steady_clock::now() - started;
            const uint64_t slots = index_.slot_count();
            const auto took_us =
                std::chrono::duration_cast<std::chrono::microseconds>(took).count();
            spdlog::debug("transaction index grown from {} to {} slots ({} ids) in {} us",
                          slots_before, slots, index_.used(), took_us);
            // Segments grow one at a time: say so once per doubling of the whole index.
            if (slots >= 2 * slots_logged_) {
                slots_logged_ = slots;
                spdlog::info(
                    "transaction index now {} slots in {} segments ({} ids); the last "
                    "segment growth held the shards {} us",
                    slots, index_.segment_count(), index_.used(), took_us);
            }
        } else {
            // No memory: claims go on in the headroom until Claim::full (txn_limit).
            given_up_.store(true, std::memory_order_relaxed);
            spdlog::error(
                "transaction index: no memory to grow past {} slots; writes will get "
                "txn_limit once the rest is used",
                slots_before);
        }
        retired_owed_.store(true, std::memory_order_relaxed);
        requested_.store(false, std::memory_order_release);
    }

    engine::TxnIndex& index_;
    uint64_t slots_logged_ = index_.slot_count();  // Only the barrier's completion writes it.
    std::atomic<bool> requested_{false};
    std::atomic<bool> given_up_{false};
    std::atomic<bool> preparing_{false};  // Held by the thread in prepare() or release_retired().
    std::atomic<bool> retired_owed_{false};  // A growth replaced slots not yet unmapped.
    std::barrier<Completion> barrier_;
};

}  // namespace jifen::server
