// A small, fast, seedable pseudo-random generator for load generation (xoshiro256**, seeded by
// splitmix64). Not for anything secret; std::mt19937_64 would do but costs more per draw.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace jifen::bench {

// GCC and Clang provide a 128-bit integer; __extension__ says we mean to use it under -Wpedantic.
__extension__ using Uint128 = unsigned __int128;

// splitmix64: turns any 64-bit seed, including 0, into well-mixed state words.
constexpr uint64_t splitmix64(uint64_t* state) noexcept {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

class Rng {
public:
    using result_type = uint64_t;

    explicit constexpr Rng(uint64_t seed) noexcept {
        for (auto& word : state_) {
            word = splitmix64(&seed);
        }
    }

    static constexpr result_type min() noexcept { return 0; }
    static constexpr result_type max() noexcept { return std::numeric_limits<uint64_t>::max(); }

    constexpr result_type operator()() noexcept {
        const uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
        const uint64_t shifted = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= shifted;
        state_[3] = std::rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 53 bits of precision.
    constexpr double next_double() noexcept {
        return static_cast<double>((*this)() >> 11) * 0x1.0p-53;
    }

    // Uniform in [0, bound) for bound > 0 (Lemire's multiply-shift; the bias is below 2^-32 for
    // every bound this tool uses, which is far under the noise of any measurement).
    constexpr uint64_t below(uint64_t bound) noexcept {
        return static_cast<uint64_t>((static_cast<Uint128>((*this)()) * bound) >> 64);
    }

private:
    uint64_t state_[4] = {};
};

}  // namespace jifen::bench
