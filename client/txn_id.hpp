// 128-bit transaction ids on the client side: text form, parsing, and fresh random ids.
// The text form is 32 lowercase hex digits, the high 64 bits first, then the low 64 bits.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "protocol/wire.hpp"

namespace jifen::client {

struct TxnId {
    uint64_t lo = 0;
    uint64_t hi = 0;

    constexpr bool is_zero() const noexcept { return lo == 0 && hi == 0; }
    friend constexpr bool operator==(const TxnId&, const TxnId&) noexcept = default;
};

inline constexpr size_t txn_id_hex_digits = 32;

// 32 lowercase hex digits: hi then lo, each zero-padded to 16 digits.
std::string to_hex(TxnId txn_id);

// Parses exactly 32 hex digits (either case). nullopt for any other length or character.
std::optional<TxnId> parse_txn_id(std::string_view text) noexcept;

inline TxnId txn_id_of(const protocol::Operation& operation) noexcept {
    return {operation.txn_id_lo, operation.txn_id_hi};
}
inline TxnId ref_txn_id_of(const protocol::Operation& operation) noexcept {
    return {operation.ref_txn_id_lo, operation.ref_txn_id_hi};
}
inline void set_txn_id(protocol::Operation* operation, TxnId txn_id) noexcept {
    operation->txn_id_lo = txn_id.lo;
    operation->txn_id_hi = txn_id.hi;
}
inline void set_ref_txn_id(protocol::Operation* operation, TxnId txn_id) noexcept {
    operation->ref_txn_id_lo = txn_id.lo;
    operation->ref_txn_id_hi = txn_id.hi;
}

// Fresh non-zero ids from a 64-bit generator seeded by std::random_device. Two clients collide
// with probability about n^2 / 2^129, so ids need no coordination. Not thread-safe: one per thread
// or per client.
class TxnIdGenerator {
public:
    TxnIdGenerator();
    explicit TxnIdGenerator(uint64_t seed) : engine_(seed) {}

    TxnId next() noexcept;

private:
    std::mt19937_64 engine_;
};

}  // namespace jifen::client
