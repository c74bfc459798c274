// Micro-benchmarks of Shard::apply with no I/O: earn/redeem on one shard holding 1M members with
// three live lots each, and the resident memory those members take; the same on fewer members,
// whose records stay in the caches; and, as the baseline those are judged against, what this
// machine's memory gives a random access pattern at all.
//   build/bench/engine_bench --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "engine/calendar.hpp"
#include "engine/memory.hpp"
#include "engine/shard.hpp"
#include "engine/txn_index.hpp"

namespace {

using namespace jifen;
using namespace jifen::engine;

constexpr uint64_t members = 1'000'000;
constexpr int64_t ops_per_benchmark = 2'000'000;
// 2026-01-15T00:00:00Z.
constexpr TimeUs t0_us = 1'768'435'200ull * 1'000'000ull;

uint64_t resident_bytes() {
    std::FILE* statm = std::fopen("/proc/self/statm", "r");
    unsigned long size_pages = 0;
    unsigned long resident_pages = 0;
    if (statm == nullptr || std::fscanf(statm, "%lu %lu", &size_pages, &resident_pages) != 2) {
        resident_pages = 0;
    }
    if (statm != nullptr) {
        std::fclose(statm);
    }
    return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

Command make(Op op, uint64_t txn, MemberId member_id, Points points, TimeUs time_us) {
    Command command;
    command.op = op;
    command.txn_id = TxnId{txn, 1};
    command.member_id = member_id;
    command.points = points;
    command.time_us = time_us;
    return command;
}

// One shard with 1M members, each enrolled and given three lots (three earns in three months),
// built once for all benchmarks. Memory is measured while building it.
struct Ledger {
    Ledger() {
        Config config;
        config.expiry_months = 12;
        config.members_per_shard_max = 1u << 20;
        config.txns_per_shard_max = 11'000'000;
        config.lots_per_shard_max = 1u << 20;
        // As in the server, the shard claims every id in a ledger-wide TxnIndex (prefaulted, so
        // it is resident before the measurement starts).
        // 16 M slots, about 14 M ids by the end of all benchmarks: below the 7/8 at which claims
        // stop succeeding, as nothing here grows the index. (A 1 GiB index made the batched
        // applies 10% slower: keep it the same size when comparing figures.)
        index = std::make_unique<TxnIndex>(uint64_t{1} << 24, 1);  // One shard claims.
        index->prefault();
        const uint64_t before = resident_bytes();
        shard = std::make_unique<Shard>(0, 1, config, index.get());
        const uint64_t constructed = resident_bytes();
        for (uint64_t member = 1; member <= members; ++member) {
            shard->apply(make(Op::enroll, next_txn++, member, 0, t0_us));
        }
        const uint64_t enrolled = resident_bytes();
        for (uint32_t month = 0; month < 3; ++month) {
            const TimeUs time_us = month_start_us(month_of(t0_us) + month + 1);
            for (uint64_t member = 1; member <= members; ++member) {
                shard->apply(make(Op::earn, next_txn++, member, 1'000, time_us));
            }
        }
        const uint64_t with_lots = resident_bytes();
        now_us = month_start_us(month_of(t0_us) + 3) + 1;
        // The three earns added transaction entries only (the lots are inline in the member
        // record), so they price one entry; enrolling cost a member and one entry. With a
        // TxnIndex the shard's own transaction index stays untouched (it keeps only credit
        // legs) and the TxnIndex was resident before the measurement.
        txn_bytes = static_cast<double>(with_lots - enrolled) / (3.0 * members);
        member_bytes = static_cast<double>(enrolled - constructed) / members - txn_bytes;
        total_bytes = static_cast<double>(with_lots - before) / members;
        construct_bytes = static_cast<double>(constructed - before);
    }

    std::unique_ptr<TxnIndex> index;
    std::unique_ptr<Shard> shard;
    uint64_t next_txn = 1;
    TimeUs now_us = 0;
    double txn_bytes = 0;
    double member_bytes = 0;
    double total_bytes = 0;
    double construct_bytes = 0;
};

Ledger& ledger() {
    static Ledger instance;
    return instance;
}

// Alternating earn and redeem on members spread over the whole table (every apply misses cache).
void BM_EarnRedeemRandomMembers(benchmark::State& state) {
    Ledger& book = ledger();
    uint64_t i = 0;
    for (auto _ : state) {
        const MemberId member = 1 + (i * 0x9E3779B97F4A7C15ull >> 20) % members;
        const Op op = (i & 1) == 0 ? Op::earn : Op::redeem;
        const Outcome outcome =
            book.shard->apply(make(op, book.next_txn++, member, 10, book.now_us));
        benchmark::DoNotOptimize(outcome);
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["member_bytes"] = book.member_bytes;
    state.counters["txn_bytes"] = book.txn_bytes;
    state.counters["bytes_per_member_3_lots_4_txns"] = book.total_bytes;
}
BENCHMARK(BM_EarnRedeemRandomMembers)->Iterations(ops_per_benchmark)->Unit(benchmark::kNanosecond);

// As above, but like a shard thread applying a batch: prefetch the tables for the command
// sixteen ahead so the memory misses of consecutive commands overlap.
void BM_EarnRedeemRandomMembersPrefetched(benchmark::State& state) {
    Ledger& book = ledger();
    constexpr uint64_t ahead = 16;
    const auto command_at = [&](uint64_t i) {
        const MemberId member = 1 + (i * 0x9E3779B97F4A7C15ull >> 20) % members;
        const Op op = (i & 1) == 0 ? Op::earn : Op::redeem;
        return make(op, book.next_txn + i, member, 10, book.now_us);
    };
    uint64_t i = 0;
    for (auto _ : state) {
        book.shard->prefetch(command_at(i + ahead));
        const Outcome outcome = book.shard->apply(command_at(i));
        benchmark::DoNotOptimize(outcome);
        ++i;
    }
    book.next_txn += i + ahead;
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EarnRedeemRandomMembersPrefetched)
    ->Iterations(ops_per_benchmark)
    ->Unit(benchmark::kNanosecond);

// Earn/redeem alternating through Shard::apply_batch on frames of 8,192 commands, as the server
// receives them (building each frame is not timed), on members drawn at random from the first
// `pool` of the ledger. Every operation must succeed: a refused one would be measured as cheap.
void apply_frames(benchmark::State& state, uint64_t pool) {
    Ledger& book = ledger();
    constexpr size_t frame_ops = 8'192;
    std::vector<Command> commands(frame_ops);
    std::vector<Outcome> outcomes(frame_ops);
    uint64_t i = 0;
    uint64_t refused = 0;
    const auto count_refused = [&] {
        for (const Outcome& outcome : outcomes) {
            refused += outcome.result != Result::ok ? 1 : 0;
        }
    };
    for (auto _ : state) {
        state.PauseTiming();
        count_refused();  // The previous frame's (outcomes start as ok).
        for (Command& command : commands) {
            const MemberId member = 1 + (i * 0x9E3779B97F4A7C15ull >> 20) % pool;
            const Op op = (i & 1) == 0 ? Op::earn : Op::redeem;
            command = make(op, book.next_txn++, member, 10, book.now_us);
            ++i;
        }
        state.ResumeTiming();
        book.shard->apply_batch(commands, outcomes);
        benchmark::DoNotOptimize(outcomes.data());
    }
    count_refused();
    if (refused != 0) {
        state.SkipWithError("operations were refused");
    }
    state.SetItemsProcessed(static_cast<int64_t>(i));
}

// Members spread over the whole table: the engine's figure for issue #4 (1 M members).
void BM_EarnRedeemRandomMembersBatch(benchmark::State& state) { apply_frames(state, members); }
BENCHMARK(BM_EarnRedeemRandomMembersBatch)
    ->Iterations(ops_per_benchmark / 8'192)
    ->Unit(benchmark::kMicrosecond);

// The same on fewer members (the argument), whose records stay in the caches up to a few tens of
// thousands (120 bytes each): what the member records' memory costs, against the same
// transaction index traffic.
void BM_EarnRedeemBatchMemberPool(benchmark::State& state) {
    apply_frames(state, static_cast<uint64_t>(state.range(0)));
}
BENCHMARK(BM_EarnRedeemBatchMemberPool)
    ->Arg(1'000)
    ->Arg(30'000)
    ->Arg(100'000)
    ->Arg(300'000)
    ->Iterations(ops_per_benchmark / 4 / 8'192)
    ->Unit(benchmark::kMicrosecond);

// The same on 1,000 members that stay in cache: the cost of the logic itself.
void BM_EarnRedeemHotMembers(benchmark::State& state) {
    Ledger& book = ledger();
    uint64_t i = 0;
    for (auto _ : state) {
        const MemberId member = 1 + (i >> 1) % 1'000;
        const Op op = (i & 1) == 0 ? Op::earn : Op::redeem;
        const Outcome outcome =
            book.shard->apply(make(op, book.next_txn++, member, 10, book.now_us));
        benchmark::DoNotOptimize(outcome);
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EarnRedeemHotMembers)->Iterations(ops_per_benchmark)->Unit(benchmark::kNanosecond);

// One busy member (a house account, a B2B buyer) with many open holds or pending lots: a hold
// and its release, or a pending earn and a redeem, on it, against the same on a member with
// none. Each apply should cost the same whatever the member keeps open. Args: 0 = open holds,
// 1 = pending lots; how many. A shard of its own, built per run.
void BM_BusyMember(benchmark::State& state) {
    const bool pending = state.range(0) != 0;
    const auto open = static_cast<uint64_t>(state.range(1));
    Config config;
    config.members_per_shard_max = 1u << 10;
    config.holds_per_shard_max = 1u << 17;
    // A member with tens of thousands of holds or pending lots: no limits.
    config.holds_per_member_max = 0;
    config.pending_lots_per_member_max = 0;
    config.lots_per_shard_max = 1u << 19;
    config.txns_per_shard_max = 1u << 20;
    Shard shard(0, 1, config, nullptr);
    const TimeUs later_us = t0_us + 24ull * 3'600 * 1'000'000;  // Nothing falls due meanwhile.
    uint64_t txn = 1;
    TimeUs now_us = t0_us;
    shard.apply(make(Op::enroll, txn++, 1, 0, now_us));
    shard.apply(make(Op::earn, txn++, 1, 1'000'000'000, now_us));
    const auto keep_open = [&](uint64_t id, TimeUs until_us) {
        Command command = make(pending ? Op::earn : Op::hold, id, 1, 1, ++now_us);
        command.until_us = until_us;
        return shard.apply(command).result;
    };
    for (uint64_t i = 0; i < open; ++i) {
        if (keep_open(txn++, later_us + i) != Result::ok) {
            state.SkipWithError("setting up the open holds or pending lots failed");
            return;
        }
    }
    Result worst = Result::ok;
    for (auto _ : state) {
        const uint64_t taken = txn++;
        // Due after everything open: a pending lot of its own each time (no merging), appended.
        const Result kept = keep_open(taken, later_us + open + taken);
        Command back = pending ? make(Op::redeem, txn++, 1, 1, ++now_us)
                               : make(Op::release, txn++, 1, 0, ++now_us);
        if (!pending) {
            back.ref_txn_id = TxnId{taken, 1};
        }
        const Result returned = shard.apply(back).result;
        worst = std::max({worst, kept, returned});
    }
    if (worst != Result::ok) {
        state.SkipWithError("an apply was refused");
    }
    state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(BM_BusyMember)
    ->Args({0, 0})
    ->Args({0, 50'000})
    ->Args({1, 0})
    ->Args({1, 50'000})
    ->Iterations(100'000)
    ->Unit(benchmark::kNanosecond);

// The baseline: independent loads of random cache lines in a table as big as the transaction
// index of the benchmarks above (512 MiB, on transparent huge pages like the index's first
// mapping, all resident), each prefetched 8 loads ahead as apply_batch() prefetches its commands.
// A batched earn makes two such random accesses that nothing can avoid (its new id's index slot,
// its member's record) besides cheaper ones, so this bounds the engine from below on this
// machine: an earn cannot cost less than about two of these. Args: 1 = huge pages, 0 = 4 KiB
// pages; table MiB. The 4 MiB row is the same loop on a table that stays in the caches. The 1 GiB
// rows are a TxnIndex of about 20 M ids, whose segments (1 MiB each) are blocks of shared huge
// pages: on 4 KiB pages of their own, as before HugePageBlocks, each probe would cost the second.
void BM_RandomLineLoads(benchmark::State& state) {
    const bool huge = state.range(0) != 0;
    const size_t table_bytes = state.range(1) << 20;
    void* memory = huge ? engine::detail::map_huge_zeroed(table_bytes)
                        : engine::detail::map_zeroed(table_bytes);
    if (memory == nullptr || !engine::detail::prefault_zeroed(memory, table_bytes)) {
        state.SkipWithError("no memory for the table");
        return;
    }
    const auto* lines = static_cast<const uint64_t*>(memory);
    const uint64_t line_mask = table_bytes / 64 - 1;
    const auto line_at = [&](uint64_t i) {
        return lines + ((i * 0x9E3779B97F4A7C15ull >> 17) & line_mask) * 8;
    };
    constexpr uint64_t ahead = 8;
    uint64_t sum = 0;
    uint64_t i = 0;
    for (auto _ : state) {
        __builtin_prefetch(line_at(i + ahead));
        sum += *line_at(i);
        ++i;
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.iterations());
    if (huge) {
        engine::detail::unmap_huge_zeroed(memory, table_bytes);
    } else {
        engine::detail::unmap_zeroed(memory, table_bytes);
    }
}
BENCHMARK(BM_RandomLineLoads)
    ->Args({1, 512})
    ->Args({0, 512})
    ->Args({1, 4})
    ->Args({1, 1024})
    ->Args({0, 1024})
    ->Iterations(ops_per_benchmark * 4)
    ->Unit(benchmark::kNanosecond);

}  // namespace

BENCHMARK_MAIN();
