// Transaction id text form and generation.
#include "client/txn_id.hpp"

namespace jifen::client {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex64(std::string* out, uint64_t value) {
    for (int shift = 60; shift >= 0; shift -= 4) {
        out->push_back(hex_digits[(value >> shift) & 0xFu]);
    }
}

std::optional<uint64_t> parse_hex64(std::string_view text) noexcept {
    uint64_t value = 0;
    for (const char c : text) {
        uint64_t digit = 0;
        if (c >= '0' && c <= '9') {
            digit = static_cast<uint64_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<uint64_t>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = static_cast<uint64_t>(c - 'A' + 10);
        } else {
            return std::nullopt;
        }
        value = (value << 4) | digit;
    }
    return value;
}

}  // namespace

std::string to_hex(TxnId txn_id) {
    std::string out;
    out.reserve(txn_id_hex_digits);
    append_hex64(&out, txn_id.hi);
    append_hex64(&out, txn_id.lo);
    return out;
}

std::optional<TxnId> parse_txn_id(std::string_view text) noexcept {
    if (text.size() != txn_id_hex_digits) {
        return std::nullopt;
    }
    const auto hi = parse_hex64(text.substr(0, 16));
    const auto lo = parse_hex64(text.substr(16, 16));
    if (!hi || !lo) {
        return std::nullopt;
    }
    return TxnId{*lo, *hi};
}

TxnIdGenerator::TxnIdGenerator() {
    // Two 32-bit draws: random_device yields unsigned int, and the state should not start from
    // only 32 bits of entropy.
    std::random_device device;
    const uint64_t seed = (uint64_t{device()} << 32) ^ uint64_t { device() };
    engine_.seed(seed);
}

TxnId TxnIdGenerator::next() noexcept {
    TxnId txn_id;
    do {
        txn_id = {engine_(), engine_()};
    } while (txn_id.is_zero());
    return txn_id;
}

}  // namespace jifen::client
