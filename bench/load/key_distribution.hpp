// Which member each operation touches: uniform, Zipf (a few members are very popular), or a hot
// set (a fixed fraction of members gets a fixed share of the traffic).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bench/load/random.hpp"

namespace jifen::bench {

enum class KeyLaw : uint8_t { uniform, zipf, hotset };

std::string_view to_string(KeyLaw law) noexcept;
std::optional<KeyLaw> parse_key_law(std::string_view text) noexcept;

// Zipf over ranks 1..n: P(k) proportional to 1 / k^s, for any s > 0 (s = 1 included). Sampled by
// rejection-inversion (W. Hormann, G. Derflinger, "Rejection-inversion to generate variates from
// monotone discrete distributions", 1996): O(1) memory and time per draw whatever n is, so a
// 100-million-member keyspace costs nothing to set up, unlike a precomputed CDF.
class ZipfSampler {
public:
    ZipfSampler(uint64_t n, double s);

    // A rank in [1, n]; rank 1 is the most popular.
    uint64_t sample(Rng& rng) const noexcept;

    // The exact probability of rank k, computed by summing the law (O(n)): for tests only.
    double probability(uint64_t k) const;

    uint64_t n() const noexcept { return n_; }
    double s() const noexcept { return s_; }

private:
    double h(double x) const noexcept;           // x^-s
    double h_integral(double x) const noexcept;  // An antiderivative of h.
    double h_integral_inverse(double x) const noexcept;

    uint64_t n_;
    double s_;
    double h_integral_x1_;  // h_integral(1.5) - 1
    double h_integral_n_;   // h_integral(n + 0.5)
    double squeeze_;        // Accept without the second test when k - x <= squeeze_.
};

struct KeyDistributionConfig {
    KeyLaw law = KeyLaw::uniform;
    uint64_t members = 1;        // Member ids are 1..members.
    double zipf_s = 0.99;        // Zipf exponent (YCSB's default skew).
    double hot_fraction = 0.01;  // hotset: this fraction of the members ...
    double hot_share = 0.9;      // ... receives this share of the operations.
};

// Draws member ids in [1, members]. One per thread: it holds no lock.
class KeyDistribution {
public:
    explicit KeyDistribution(const KeyDistributionConfig& config);

    uint64_t next(Rng& rng) const noexcept;

    // A member other than `member_id` (for transfers), from the same law. Needs members >= 2.
    uint64_t next_other_than(Rng& rng, uint64_t member_id) const noexcept;

    const KeyDistributionConfig& config() const noexcept { return config_; }
    uint64_t hot_members() const noexcept { return hot_members_; }

private:
    KeyDistributionConfig config_;
    std::optional<ZipfSampler> zipf_;
    uint64_t hot_members_ = 0;
};

}  // namespace jifen::bench
