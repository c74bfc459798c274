// Micro-benchmarks of CRC32C (protocol/crc32c.hpp) over inputs from a small frame to a full one:
// crc32c() itself (three interleaved chains of crc32 instructions on long inputs), one chain as
// it was before the interleaving (the baseline), and the table path used without SSE4.2.
//   build/bench/crc_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "protocol/crc32c.hpp"

namespace {

using namespace jifen::protocol;

std::vector<unsigned char> random_bytes(size_t size) {
    std::mt19937_64 random(20261123);
    std::vector<unsigned char> bytes(size);
    for (auto& byte : bytes) {
        byte = static_cast<unsigned char>(random());
    }
    return bytes;
}

template <typename Checksum>
void run(benchmark::State& state, Checksum checksum) {
    const auto bytes = random_bytes(static_cast<size_t>(state.range(0)));
    uint32_t crc = 0;
    for (auto _ : state) {
        crc = checksum(bytes.data(), bytes.size());
        benchmark::DoNotOptimize(crc);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void BM_Crc32c(benchmark::State& state) {
    run(state, [](const unsigned char* data, size_t size) { return crc32c(data, size); });
}

// crc32c() as it was before the interleaving: the same dispatch, then one chain.
void BM_Crc32cOneChain(benchmark::State& state) {
    if (!detail::cpu_has_sse42()) {
        state.SkipWithError("no SSE4.2");
        return;
    }
    run(state, [](const unsigned char* data, size_t size) {
        if (detail::cpu_has_sse42()) {
            return ~detail::crc32c_hw_update_serial(~0u, data, size);
        }
        return crc32c_portable(data, size);
    });
}

void BM_Crc32cTable(benchmark::State& state) {
    run(state, [](const unsigned char* data, size_t size) { return crc32c_portable(data, size); });
}

// 64 B: a small frame body; 1 MiB: a checkpoint piece or a full batch of 8,192 operations.
void frame_sizes(benchmark::internal::Benchmark* benchmark) {
    benchmark->Arg(64)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);
}

BENCHMARK(BM_Crc32c)->Apply(frame_sizes);
BENCHMARK(BM_Crc32cOneChain)->Apply(frame_sizes);
BENCHMARK(BM_Crc32cTable)->Apply(frame_sizes);

}  // namespace

BENCHMARK_MAIN();
