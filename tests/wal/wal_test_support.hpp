// Helpers for the log tests: fresh temporary directories, the seed, a durability waiter, and a
// random ledger driver that applies commands to real shards and logs the ones that changed state.
#pragma once

#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/command.hpp"
#include "engine/config.hpp"
#include "engine/shard.hpp"
#include "engine/txn_index.hpp"
#include "wal/log.hpp"

namespace jifen::wal::testing {

// A directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "jifen-wal-XXXXXX").string();
        const char* made = ::mkdtemp(pattern.data());
        if (made == nullptr) {
            std::abort();
        }
        path_ = made;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// JIFEN_SEED when set, else a fresh random seed; tests print it on failure.
inline uint64_t test_seed() {
    if (const char* text = std::getenv("JIFEN_SEED")) {
        return std::strtoull(text, nullptr, 10);
    }
    return std::random_device{}() * 0x9E3779B97F4A7C15ull ^ std::random_device{}();
}

// Collects on_durable calls; wait_for() blocks until a shard is durable up to a sequence.
class DurableWaiter {
public:
    std::function<void(uint32_t, uint64_t)> callback() {
        return [this](uint32_t shard, uint64_t seq) {
            {
                std::lock_guard lock(mutex_);
                if (durable_.size() <= shard) {
                    durable_.resize(shard + 1, 0);
                }
                durable_[shard] = seq;
                ++calls_;
            }
            changed_.notify_all();
        };
    }
    void wait_for(uint32_t shard, uint64_t seq) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return durable_.size() > shard && durable_[shard] >= seq; });
    }
    uint64_t calls() {
        std::lock_guard lock(mutex_);
        return calls_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<uint64_t> durable_;
    uint64_t calls_ = 0;
};

inline engine::Config small_config() {
    engine::Config config;
    config.expiry_months = 1;
    config.members_per_shard_max = 1u << 12;
    config.holds_per_shard_max = 1u << 12;
    config.txns_per_shard_max = 1u << 17;
    return config;
}

// Shards sharing one TxnIndex, as the server builds them.
struct Ledger {
    explicit Ledger(uint32_t shard_count, const engine::Config& engine = small_config())
        : config(engine), txn_index(1u << 19) {
        for (uint32_t i = 0; i < shard_count; ++i) {
            shards.push_back(std::make_unique<engine::Shard>(i, shard_count, config, &txn_index));
            pointers.push_back(shards.back().get());
        }
    }
    uint64_t digest() const {
        uint64_t sum = 0;
        for (const auto& shard : shards) {
            sum = sum * 1'000'003 + shard->digest();
        }
        return sum;
    }
    bool audit_ok() const {
        engine::Totals totals;
        for (const auto& shard : shards) {
            const engine::AuditReport report = shard->audit();
            if (!report.ok) {
                return false;
            }
            totals += report.totals;
        }
        return totals.conserves();
    }

    engine::Config config = small_config();
    engine::TxnIndex txn_index;
    std::vector<std::unique_ptr<engine::Shard>> shards;
    std::vector<engine::Shard*> pointers;
};

// Generates random commands over a small member population (so most of them apply), applies
// them to a Ledger and turns every state change into a Record.
class Driver {
public:
    // txn_hi distinguishes the ids of separate runs over one directory.
    // Like the server, it logs the derived records before the command that made them.
    Driver(Ledger& ledger, uint64_t seed, uint64_t txn_hi, engine::TimeUs start_us)
        : ledger_(ledger), random_(seed), txn_hi_(txn_hi), time_us_(start_us) {
        for (const auto& shard : ledger_.shards) {
            shard->record_derived(true);
        }
    }

    struct Applied {
        uint32_t shard = 0;
        engine::Record record;
        bool logged = false;  // Changed state (ok, not a replay): must be appended to the log.
        // Derived records, which go to the log just before `record` (append_applied).
        std::vector<engine::Record> derived;
    };

    Applied step() {
        const engine::Command command = next_command();
        const uint32_t shard = command.op == engine::Op::tick
                                   ? tick_shard_
                                   : engine::Shard::shard_of(command.member_id, shard_count());
        const engine::Outcome outcome = ledger_.shards[shard]->apply(command);
        Applied applied;
        applied.shard = shard;
        applied.record = ledger_.shards[shard]->record_of(command, outcome);
        applied.logged = outcome.result == Result::ok && !outcome.replayed;
        if (applied.logged) {
            remember(command);
            const std::span<const engine::Record> derived =
                ledger_.shards[shard]->derived_of(outcome);
            applied.derived.assign(derived.begin(), derived.end());
        }
        return applied;
    }

    engine::TimeUs time_us() const { return time_us_; }

private:
    uint32_t shard_count() const { return static_cast<uint32_t>(ledger_.shards.size()); }
    uint64_t below(uint64_t bound) { return random_() % bound; }
    engine::Points points() {
        // Edges first: 1 and small amounts are where lots split and balances hit zero.
        switch (below(4)) {
            case 0:
                return 1;
            case 1:
                return static_cast<engine::Points>(1 + below(10));
            default:
                return static_cast<engine::Points>(1 + below(1'000));
        }
    }
    engine::MemberId member() { return 1 + below(members_max); }
    engine::TxnId txn_id() { return engine::TxnId{++txn_lo_, txn_hi_}; }

    void remember(const engine::Command& command) {
        if (command.op == engine::Op::hold) {
            holds_.push_back(command.txn_id);
        } else if (command.op == engine::Op::earn || command.op == engine::Op::redeem) {
            reversible_.push_back(command.txn_id);
        }
        if (holds_.size() > 256) {
            holds_.erase(holds_.begin(), holds_.begin() + 128);
        }
        if (reversible_.size() > 256) {
            reversible_.erase(reversible_.begin(), reversible_.begin() + 128);
        }
        last_ = command;
    }

    engine::TxnId pick(const std::vector<engine::TxnId>& ids) {
        return ids.empty() ? engine::TxnId{1, 1} : ids[below(ids.size())];
    }

    engine::Command next_command() {
        // Up to ten minutes between commands, so points pend, holds time out and lots expire.
        time_us_ += below(600) * 1'000'000;
        engine::Command command;
        command.time_us = time_us_;
        command.txn_id = txn_id();
        command.member_id = member();
        const uint64_t roll = below(100);
        if (roll < 12) {
            command.op = engine::Op::enroll;
        } else if (roll < 40) {
            command.op = engine::Op::earn;
            command.points = points();
            if (below(5) == 0) {
                command.until_us = time_us_ + below(3'600) * 1'000'000;
            }
        } else if (roll < 55) {
            command.op = engine::Op::redeem;
            command.points = points();
        } else if (roll < 65) {
            command.op = engine::Op::hold;
            command.points = points();
        } else if (roll < 71) {
            command.op = engine::Op::capture;
            command.ref_txn_id = pick(holds_);
            command.member_id = ledger_.txn_index.find(command.ref_txn_id);
            command.points = below(2) == 0 ? 0 : points();
        } else if (roll < 75) {
            command.op = engine::Op::release;
            command.ref_txn_id = pick(holds_);
            command.member_id = ledger_.txn_index.find(command.ref_txn_id);
        } else if (roll < 79) {
            command.op = engine::Op::reverse;
            command.ref_txn_id = pick(reversible_);
            command.member_id = ledger_.txn_index.find(command.ref_txn_id);
        } else if (roll < 87) {
            // Same-shard transfers only: cross-shard legs are the server's protocol.
            command.op = engine::Op::transfer;
            command.points = points();
            const uint32_t shard = engine::Shard::shard_of(command.member_id, shard_count());
            for (int attempt = 0; attempt < 16; ++attempt) {
                const engine::MemberId other = member();
                if (other != command.member_id &&
                    engine::Shard::shard_of(other, shard_count()) == shard) {
                    command.counterparty_id = other;
                    break;
                }
            }
        } else if (roll < 91) {
            command.op = engine::Op::adjust;
            command.points = points();
            command.flags = below(2) == 0 ? engine::adjust_debit : 0;
        } else if (roll < 93) {
            command.op = engine::Op::update_member;
            command.tier = static_cast<uint8_t>(below(4));
        } else if (roll < 97) {
            command.op = engine::Op::tick;
            command.txn_id = engine::TxnId{};
            command.member_id = 0;
            tick_shard_ = static_cast<uint32_t>(below(shard_count()));
        } else {
            // A client retry: same id, same content, new time; must come back replayed.
            command = last_;
            command.time_us = time_us_;
        }
        if (command.member_id == 0 && command.op != engine::Op::tick) {
            command.member_id = member();  // A reference nobody owns: refused, never logged.
        }
        return command;
    }

    static constexpr uint64_t members_max = 200;

    Ledger& ledger_;
    std::mt19937_64 random_;
    uint64_t txn_hi_;
    uint64_t txn_lo_ = 0;
    engine::TimeUs time_us_;
    uint32_t tick_shard_ = 0;
    engine::Command last_;
    std::vector<engine::TxnId> holds_;
    std::vector<engine::TxnId> reversible_;
};

// Appends one record, letting the writer catch up when the queue is full.
inline void append_one(Log& log, uint32_t shard, const engine::Record& record) {
    while (!log.append(shard, std::span<const engine::Record>(&record, 1))) {
        std::this_thread::yield();
    }
}

// Appends an applied command's derived records and its record in one call, as the server
// does: the writer commits such a chain whole only if it is appended whole.
inline void append_applied(Log& log, const Driver::Applied& applied) {
    std::vector<engine::Record> chain = applied.derived;
    chain.push_back(applied.record);
    while (!log.append(applied.shard, chain)) {
        std::this_thread::yield();
    }
}

inline Options options_for(const std::filesystem::path& dir, uint32_t shard_count) {
    Options options;
    options.data_dir = dir;
    options.shard_count = shard_count;
    options.map_bytes_initial = 4ull << 20;
    options.map_bytes_max = 1ull << 30;
    options.queue_records_per_shard = 1u << 12;
    return options;
}

}  // namespace jifen::wal::testing
