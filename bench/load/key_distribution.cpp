// Member-id laws for the load generator; see key_distribution.hpp for the choice of sampler.
#include "bench/load/key_distribution.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace jifen::bench {
namespace {

// log(1 + x) / x, accurate near 0 where the quotient is 0/0.
double log1p_over_x(double x) noexcept {
    if (std::abs(x) > 1e-8) {
        return std::log1p(x) / x;
    }
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

// (exp(x) - 1) / x, accurate near 0.
double expm1_over_x(double x) noexcept {
    if (std::abs(x) > 1e-8) {
        return std::expm1(x) / x;
    }
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

}  // namespace

std::string_view to_string(KeyLaw law) noexcept {
    switch (law) {
        case KeyLaw::uniform:
            return "uniform";
        case KeyLaw::zipf:
            return "zipf";
        case KeyLaw::hotset:
            return "hotset";
    }
    return "unknown";
}

std::optional<KeyLaw> parse_key_law(std::string_view text) noexcept {
    for (const KeyLaw law : {KeyLaw::uniform, KeyLaw::zipf, KeyLaw::hotset}) {
        if (text == to_string(law)) {
            return law;
        }
    }
    return std::nullopt;
}

ZipfSampler::ZipfSampler(uint64_t n, double s) : n_(n), s_(s) {
    if (n == 0) {
        throw std::invalid_argument("zipf: the keyspace must hold at least one member");
    }
    if (!(s > 0.0) || !std::isfinite(s)) {
        throw std::invalid_argument("zipf: the exponent s must be a positive number");
    }
    h_integral_x1_ = h_integral(1.5) - 1.0;
    h_integral_n_ = h_integral(static_cast<double>(n) + 0.5);
    squeeze_ = 2.0 - h_integral_inverse(h_integral(2.5) - h(2.0));
}

double ZipfSampler::h(double x) const noexcept { return std::exp(-s_ * std::log(x)); }

// For s != 1 this is (x^(1-s) - 1) / (1 - s); for s = 1 it is log(x). One formula covers both.
double ZipfSampler::h_integral(double x) const noexcept {
    const double log_x = std::log(x);
    return expm1_over_x((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::h_integral_inverse(double x) const noexcept {
    // Rounding can push t just below -1 where log1p is undefined; the true value is >= -1.
    const double t = std::max(x * (1.0 - s_), -1.0);
    return std::exp(log1p_over_x(t) * x);
}

uint64_t ZipfSampler::sample(Rng& rng) const noexcept {
    // Draw x from the continuous hat density by inversion, round it to the nearest rank k, and
    // accept k when the hat's area over [k - 1/2, k + 1/2] fits under h(k). The acceptance rate
    // is above 90% for every s, so this loop runs about once.
    for (;;) {
        const double u = h_integral_n_ + rng.next_double() * (h_integral_x1_ - h_integral_n_);
        const double x = h_integral_inverse(u);
        double rounded = std::floor(x + 0.5);
        rounded = std::clamp(rounded, 1.0, static_cast<double>(n_));
        const auto k = static_cast<uint64_t>(rounded);
        if (rounded - x <= squeeze_ || u >= h_integral(rounded + 0.5) - h(rounded)) {
            return k;
        }
    }
}

double ZipfSampler::probability(uint64_t k) const {
    double normaliser = 0;
    for (uint64_t rank = n_; rank >= 1; --rank) {  // Smallest terms first: less rounding.
        normaliser += h(static_cast<double>(rank));
    }
    return h(static_cast<double>(k)) / normaliser;
}

KeyDistribution::KeyDistribution(const KeyDistributionConfig& config) : config_(config) {
    if (config.members == 0) {
        throw std::invalid_argument("keys: --members must be at least 1");
    }
    switch (config.law) {
        case KeyLaw::uniform:
            break;
        case KeyLaw::zipf:
            zipf_.emplace(config.members, config.zipf_s);
            break;
        case KeyLaw::hotset: {
            if (!(config.hot_fraction > 0.0 && config.hot_fraction <= 1.0)) {
                throw std::invalid_argument("keys: --hot-fraction must be in (0, 1]");
            }
            if (!(config.hot_share >= 0.0 && config.hot_share <= 1.0)) {
                throw std::invalid_argument("keys: --hot-share must be in [0, 1]");
            }
            const auto hot = static_cast<uint64_t>(
                std::llround(config.hot_fraction * static_cast<double>(config.members)));
            hot_members_ = std::clamp<uint64_t>(hot, 1, config.members);
            break;
        }
    }
}

uint64_t KeyDistribution::next(Rng& rng) const noexcept {
    switch (config_.law) {
        case KeyLaw::uniform:
            return 1 + rng.below(config_.members);
        case KeyLaw::zipf:
            return zipf_->sample(rng);
        case KeyLaw::hotset: {
            const uint64_t cold_members = config_.members - hot_members_;
            if (cold_members == 0 || rng.next_double() < config_.hot_share) {
                return 1 + rng.below(hot_members_);
            }
            return hot_members_ + 1 + rng.below(cold_members);
        }
    }
    return 1;
}

uint64_t KeyDistribution::next_other_than(Rng& rng, uint64_t member_id) const noexcept {
    // Redraw a few times to keep the law; a skewed law with a single dominant member could repeat
    // it often, so fall back to the neighbour after a bounded number of tries.
    constexpr int redraws_max = 8;
    for (int attempt = 0; attempt < redraws_max; ++attempt) {
        const uint64_t other = next(rng);
        if (other != member_id) {
            return other;
        }
    }
    return member_id % config_.members + 1;
}

}  // namespace jifen::bench
