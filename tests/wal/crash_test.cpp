// Crash test: a child process runs shards and the log, reporting every acknowledged (durable)
// transaction through a pipe; the parent SIGKILLs it at a random point, recovers, and checks that
// every acknowledged transaction is there exactly once, in the ledger and in its member's history,
// and the ledger's invariants hold. A kill leaves the page cache intact, so this covers process
// crashes; power_loss_test.cpp covers what a sync must have reached the disk.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "engine/shard.hpp"
#include "tests/wal/wal_test_support.hpp"
#include "wal/log.hpp"

namespace jifen::wal {
namespace {

using testing::Driver;
using testing::Ledger;
using testing::TempDir;

constexpr uint32_t crash_shard_count = 2;
constexpr int child_steps_max = 20'000;
constexpr uint64_t kill_after_acks_max = 3'000;
constexpr engine::TimeUs start_us = 1'760'000'000'000'000;

bool write_all(int fd, const void* data, size_t size) {
    const auto* bytes = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t written = ::write(fd, bytes, size);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            return false;
        }
        bytes += written;
        size -= static_cast<size_t>(written);
    }
    return true;
}

// The child: recover, then apply random commands until killed, acknowledging each durable one.
[[noreturn]] void run_child(const Options& options, uint64_t seed, uint64_t cycle, int ack_fd) {
    try {
        Ledger ledger(crash_shard_count);
        auto log = Log::open(options);
        log->recover(ledger.pointers);
        log->start(nullptr);
        struct Pending {
            uint64_t shard_seq;
            engine::Command command;
        };
        std::vector<std::deque<Pending>> pending(crash_shard_count);
        auto acknowledge = [&] {
            for (uint32_t shard = 0; shard < crash_shard_count; ++shard) {
                const uint64_t durable = log->durable_seq(shard);
                while (!pending[shard].empty() && pending[shard].front().shard_seq <= durable) {
                    if (!write_all(ack_fd, &pending[shard].front().command,
                                   sizeof(engine::Command))) {
                        ::_exit(3);
                    }
                    pending[shard].pop_front();
                }
            }
        };
        Driver driver(ledger, seed, cycle, start_us + cycle * 100'000'000'000);
        for (int step = 0; step < child_steps_max; ++step) {
            const Driver::Applied applied = driver.step();
            if (applied.logged) {
                testing::append_applied(*log, applied);
                if (!applied.record.command.txn_id.is_zero()) {
                    pending[applied.shard].push_back(
                        {log->appended_seq(applied.shard), applied.record.command});
                }
            }
            if (log->checkpoint_due(applied.shard)) {
                std::vector<std::byte> state;
                ledger.shards[applied.shard]->save(&state);
                log->checkpoint(applied.shard, log->appended_seq(applied.shard), std::move(state));
            }
            acknowledge();
        }
        log->stop();
        acknowledge();
        ::_exit(0);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "crash test child: %s\n", error.what());
        ::_exit(2);
    }
}

// Every acknowledged transaction is in its member's history exactly once: the members' chains of
// links survived the crash, whatever the writer was doing. And the member's expire records add
// up to what it has expired: no settlement is in the log without the command that did it (the
// member would settle again after the restart and show it twice).
void expect_in_history(const Log& log, const std::vector<engine::Command>& acknowledged,
                       const Ledger& ledger) {
    std::map<engine::MemberId, std::set<std::pair<uint64_t, uint64_t>>> filed;
    for (const engine::Command& acked : acknowledged) {
        filed.try_emplace(acked.member_id);
        if (acked.op == engine::Op::transfer && acked.counterparty_id != 0) {
            filed.try_emplace(acked.counterparty_id);  // Its transfer_received entry.
        }
    }
    for (auto& [member_id, txns] : filed) {
        uint64_t before_seq = 0;
        engine::Points expired = 0;
        do {
            const HistoryPage page = log.history(member_id, before_seq, 1'000);
            ASSERT_EQ(page.result, Result::ok);
            for (const auto& [seq, record] : page.entries) {
                if (engine::is_settlement(record.command.op)) {
                    expired += record.command.op == engine::Op::expire ? record.applied_points : 0;
                    continue;
                }
                const engine::TxnId id = record.command.txn_id;
                ASSERT_TRUE(txns.emplace(id.lo, id.hi).second)
                    << "member " << member_id << " shows log seq " << seq << " twice";
            }
            before_seq = page.next_before_seq;
        } while (before_seq != 0);
        engine::MemberView member;
        const uint32_t shard = engine::Shard::shard_of(member_id, crash_shard_count);
        if (ledger.shards[shard]->find(member_id, &member)) {
            EXPECT_EQ(expired, member.lifetime_expired) << "member " << member_id;
        }
    }
    for (const engine::Command& acked : acknowledged) {
        if (acked.op == engine::Op::transfer && acked.counterparty_id != 0) {
            ASSERT_EQ(filed[acked.counterparty_id].count({acked.txn_id.lo, acked.txn_id.hi}), 1u)
                << "transfer " << acked.txn_id.lo << " is not once in its receiver's history";
        }
        ASSERT_EQ(filed[acked.member_id].count({acked.txn_id.lo, acked.txn_id.hi}), 1u)
            << "acknowledged transaction " << acked.txn_id.lo << ":" << acked.txn_id.hi
            << " is missing from member " << acked.member_id << "'s history";
    }
}

uint64_t crash_cycles() {
    if (const char* text = std::getenv("JIFEN_CRASH_CYCLES")) {
        return std::strtoull(text, nullptr, 10);
    }
    return 20;
}

TEST(Crash, KilledProcessLosesNoAcknowledgedTransactionAndHalfAppliesNothing) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    std::mt19937_64 random(seed);
    TempDir dir;
    Options options = testing::options_for(dir.path(), crash_shard_count);
    options.checkpoint_every_records = 500;
    options.map_bytes_initial = 1 << 20;  // Small, so crashes also land around map growth.

    std::vector<engine::Command> acknowledged;
    for (uint64_t cycle = 1; cycle <= crash_cycles(); ++cycle) {
        SCOPED_TRACE("cycle " + std::to_string(cycle));
        // Both commit modes, alternating over one directory: the file is the same either way.
        options.meta_sync = cycle % 2 == 0 ? MetaSync::deferred : MetaSync::each_commit;
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            ::close(fds[0]);
            run_child(options, seed + cycle, cycle, fds[1]);
        }
        ::close(fds[1]);

        const uint64_t kill_after = 1 + random() % kill_after_acks_max;
        uint64_t received = 0;
        bool killed = false;
        engine::Command command;
        size_t filled = 0;
        for (;;) {
            const ssize_t got = ::read(fds[0], reinterpret_cast<char*>(&command) + filled,
                                       sizeof(command) - filled);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                break;  // The child is gone and the pipe is drained.
            }
            filled += static_cast<size_t>(got);
            if (filled < sizeof(command)) {
                continue;
            }
            filled = 0;
            acknowledged.push_back(command);
            if (++received == kill_after && !killed) {
                ASSERT_EQ(::kill(child, SIGKILL), 0);
                killed = true;
            }
        }
        ::close(fds[0]);
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        if (!killed || !WIFSIGNALED(status)) {
            ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
                << "child failed with status " << status;
        }

        Ledger ledger(crash_shard_count);
        auto log = Log::open(options);
        ASSERT_NO_THROW(log->recover(ledger.pointers));
        ASSERT_TRUE(ledger.audit_ok());
        const uint64_t digest = ledger.digest();
        for (const engine::Command& acked : acknowledged) {
            const uint32_t shard = engine::Shard::shard_of(acked.member_id, crash_shard_count);
            const engine::Outcome outcome = ledger.shards[shard]->apply(acked);
            ASSERT_EQ(outcome.result, Result::ok) << to_string(outcome.result);
            ASSERT_TRUE(outcome.replayed) << "acknowledged transaction " << acked.txn_id.lo << ":"
                                          << acked.txn_id.hi << " was lost";
        }
        ASSERT_EQ(ledger.digest(), digest);
        expect_in_history(*log, acknowledged, ledger);
    }
    EXPECT_GT(acknowledged.size(), crash_cycles());
}

}  // namespace
}  // namespace jifen::wal
