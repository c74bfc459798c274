// The one seed of a randomised bench test: env JIFEN_SEED if set, else a fixed default, so a
// failure printed with its seed is replayed by `JIFEN_SEED=<seed> bench_tests`.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace jifen::bench::testing {

inline uint64_t test_seed() {
    const char* text = std::getenv("JIFEN_SEED");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : 20261123;
}

inline std::string seed_note(uint64_t seed) { return "JIFEN_SEED=" + std::to_string(seed); }

}  // namespace jifen::bench::testing
