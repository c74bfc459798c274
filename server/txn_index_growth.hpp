// Grows the ledger-wide TxnIndex once every shard has stopped claiming in it: the server's half
// of the growth protocol in engine/txn_index.hpp. Transaction ids are kept forever, so the index
// must grow while the server runs, and it cannot while shards claim in it lock-free.
//
// Every shard calls between_batches() at the end of each round of work. The first to see
// TxnIndex::growth_due() raises the request and rings every shard's doorbell, so an idle shard
// wakes up and arrives too. A shard that sees the request arrives: from then on it takes on no
// work that claims or finds ids (pending() is true) until the growth is done, but its thread is
// not held, so the other shards it shares the thread with go on and arrive too (several shards
// may run on one core thread: server/core_thread.hpp). The last shard to arrive grows the index
// and rings every doorbell, and all go on. Nothing is held across the wait: the shards hold no
// slot of the index between rounds. A shard that stops leaves (leave()), so a stopping server
// never waits for it.
//
// The slots a growth needs are prepared before it, by a thread of its own (the preparer): a
// shard that sees TxnIndex::preparation_due() wakes it, and it maps and prefaults the slots while
// every shard goes on working; after a growth it unmaps the slots the growth replaced. The growth
// then only covers the rehash (measured: docs/performance.md, "Pauses"). Prefaulting is the
// kernel zeroing fresh memory, a fifth of a shard thread's time under a stream of new ids when
// shards did it themselves, so it stays off the shard threads. The preparer and a growth take
// turns (work_mutex_): the last shard to arrive may wait for the one segment being prepared.
#pragma once

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "engine/txn_index.hpp"
#include "server/doorbell.hpp"

namespace jifen::server {

class TxnIndexGrowth {
public:
    // Starts the preparer. The index must not be reserve()d from here on.
    TxnIndexGrowth(engine::TxnIndex& index, uint32_t shards)
        : index_(index), participants_(shards), arrived_(shards, 0) {
        preparer_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "jifen-index");
            prepare_while_running();
        });
    }
    ~TxnIndexGrowth() {
        stopping_.store(true, std::memory_order_relaxed);
        wake_preparer();
        preparer_.join();
    }
    TxnIndexGrowth(const TxnIndexGrowth&) = delete;
    TxnIndexGrowth& operator=(const TxnIndexGrowth&) = delete;

    // The shard's own thread, between rounds of work. doorbells: every shard's.
    void between_batches(uint32_t shard, std::span<Doorbell* const> doorbells) {
        if (arrived_[shard] == left) {
            return;  // Only this shard's thread writes its entry.
        }
        if (index_.preparation_due() || retired_owed_.load(std::memory_order_relaxed)) {
            wake_preparer();
        }
        if (!given_up_.load(std::memory_order_relaxed) && index_.growth_due() &&
            !requested_.exchange(true, std::memory_order_acq_rel)) {
            for (Doorbell* doorbell : doorbells) {
                doorbell->ring();
            }
        }
        if (requested_.load(std::memory_order_acquire)) {
            arrive(shard, doorbells);
        }
    }

    // True from the moment the index wants to grow until it has: a shard takes on no new work
    // that claims or finds ids (frames, requests) meanwhile, which bounds the claims made after
    // growth_due() to what each shard already started (one frame, at most batch_ops_max). The
    // acquire pairs with the growth's release: once this is false again, the grown index is
    // visible.
    bool pending() const noexcept {
        return requested_.load(std::memory_order_acquire) ||
               (!given_up_.load(std::memory_order_relaxed) && index_.growth_due());
    }

    // The shard's own thread, once, when it stops running rounds: later growths do not wait for
    // it. doorbells: as for between_batches (a growth this completes rings them).
    void leave(uint32_t shard, std::span<Doorbell* const> doorbells) {
        std::lock_guard lock(mutex_);
        if (arrived_[shard] == generation_) {
            --arrivals_;
        }
        arrived_[shard] = left;
        --participants_;
        complete_if_all_arrived(doorbells);
    }

private:
    static constexpr uint64_t left = UINT64_MAX;

    // One wake-up per request: a shard finding one already asked for writes nothing.
    void wake_preparer() noexcept {
        if (!preparer_asked_.load(std::memory_order_relaxed) &&
            !preparer_asked_.exchange(true, std::memory_order_acq_rel)) {
            preparer_asked_.notify_one();
        }
    }

    void prepare_while_running() {
        for (;;) {
            preparer_asked_.wait(false, std::memory_order_acquire);
            if (stopping_.load(std::memory_order_relaxed)) {
                return;
            }
            // Cleared before looking, so a request made while preparing is not lost.
            preparer_asked_.store(false, std::memory_order_relaxed);
            // prepare() does one segment a call and keeps preparation_due() while more wait;
            // the lock is taken per segment, so a growth waits for one at most.
            while (!stopping_.load(std::memory_order_relaxed)) {
                std::lock_guard work(work_mutex_);
                if (retired_owed_.exchange(false, std::memory_order_relaxed)) {
                    index_.release_retired();
                } else if (index_.preparation_due()) {
                    index_.prepare();
                } else {
                    break;
                }
            }
        }
    }

    void arrive(uint32_t shard, std::span<Doorbell* const> doorbells) {
        std::lock_guard lock(mutex_);
        if (!requested_.load(std::memory_order_relaxed) || arrived_[shard] == generation_ ||
            arrived_[shard] == left) {
            return;
        }
        arrived_[shard] = generation_;
        ++arrivals_;
        complete_if_all_arrived(doorbells);
    }

    // Under mutex_: every shard still running has arrived, so none claims or finds, and the
    // mutex orders their claims before the growth.
    void complete_if_all_arrived(std::span<Doorbell* const> doorbells) {
        if (!requested_.load(std::memory_order_relaxed) || participants_ == 0 ||
            arrivals_ < participants_) {
            return;
        }
        grow();
        arrivals_ = 0;
        ++generation_;
        requested_.store(false, std::memory_order_release);
        // The shards that arrived hold frames and requests back until they look again.
        for (Doorbell* doorbell : doorbells) {
            doorbell->ring();
        }
    }

    void grow() noexcept {
        std::lock_guard work(work_mutex_);  // The preparer is not in the index now.
        const auto started = std::chrono::steady_clock::now();
        const uint64_t slots_before = index_.slot_count();
        if (index_.grow()) {
            const auto took = std::chrono::steady_clock::now() - started;
            const uint64_t slots = index_.slot_count();
            const auto took_us =
                std::chrono::duration_cast<std::chrono::microseconds>(took).count();
            spdlog::debug("transaction index grown from {} to {} slots ({} ids) in {} us",
                          slots_before, slots, index_.used(), took_us);
            // Segments grow a few at a time: say so once per doubling of the whole index.
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
        wake_preparer();  // To unmap them; it waits for work_mutex_ until this returns.
    }

    engine::TxnIndex& index_;
    std::atomic<bool> requested_{false};
    std::atomic<bool> given_up_{false};
    std::atomic<bool> retired_owed_{false};  // A growth replaced slots not yet unmapped.
    // Arrivals: taken only while a growth is requested or a shard leaves, never per operation,
    // so it is no lock on the hot path.
    std::mutex mutex_;
    uint32_t participants_;    // Shards still running rounds.
    uint32_t arrivals_ = 0;    // Of them, arrived for the pending request.
    uint64_t generation_ = 1;  // Counts growths; a shard arrived when it holds this.
    // Per shard: the generation it last arrived for, or left. Each entry is written only by its
    // shard's thread (under mutex_).
    std::vector<uint64_t> arrived_;
    uint64_t slots_logged_ = index_.slot_count();

    // The preparer: the only thread besides a growth that changes the index's memory.
    std::mutex work_mutex_;  // Held by the preparer per step, and by grow().
    std::atomic<bool> preparer_asked_{false};
    std::atomic<bool> stopping_{false};
    std::thread preparer_;  // Last: started once everything it uses exists.
};

}  // namespace jifen::server
