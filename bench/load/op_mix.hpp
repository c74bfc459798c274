// The operation mix: which kinds of operation a run sends and in what proportions, and what each
// kind may legitimately answer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load/random.hpp"
#include "protocol/result.hpp"
#include "protocol/wire.hpp"

namespace jifen::bench {

// What the scheduler chooses between. `hold` stands for a hold followed, once the hold succeeds,
// by a capture of the whole hold (the checkout flow); the capture is reported as its own kind.
// `purchase` is an earn that carries a purchase's order, store and merchant references.
enum class OpKind : uint8_t { earn, redeem, hold, balance, transfer, purchase, capture };
inline constexpr size_t op_kind_count = 7;
// The kinds a --mix names; capture only follows a hold.
inline constexpr std::array<OpKind, 6> op_kinds_mixable = {
    OpKind::earn, OpKind::redeem, OpKind::hold, OpKind::balance, OpKind::transfer, OpKind::purchase,
};

std::string_view to_string(OpKind kind) noexcept;
std::optional<OpKind> parse_op_kind(std::string_view text) noexcept;

// Whether `result` is a legitimate answer to `kind` under load, so it is counted but not treated
// as a failure: an earn always succeeds; a redeem, hold or transfer may meet a balance too low
// (insufficient_points) because the mix spends points the keys have not earned, and a hold may
// meet its member's open-hold limit (member_hold_limit) on a member the load keeps very hot; a
// capture of a hold this client just made always succeeds. Everything else, including busy,
// member_not_found (members not enrolled: run with --enroll) and every other limit, is
// unexpected.
bool is_expected(OpKind kind, Result result) noexcept;

// The opcodes a kind sends: a hold also captures, a purchase is an earn.
std::vector<protocol::Opcode> opcodes_of(OpKind kind);

class OpMix;

// Why an API key with `scope` (protocol::Scope bits, from the HELLO reply) cannot run `mix`, naming
// the scope and the kinds it does not allow; empty when it can. Checked before any load, since
// every such operation would only be refused as forbidden.
std::string scope_problem(const OpMix& mix, uint32_t scope);

class OpMix {
public:
    // Parses "earn=50,redeem=30,hold=10,balance=10". Names not given weigh 0; at least one weight
    // must be positive. Throws std::invalid_argument naming the bad part.
    static OpMix parse(std::string_view text);

    uint32_t weight(OpKind kind) const noexcept { return weights_[static_cast<size_t>(kind)]; }
    uint32_t weight_total() const noexcept { return weight_total_; }
    double share(OpKind kind) const noexcept;

    // Draws the next kind with probability weight / total. Never returns capture.
    OpKind next(Rng& rng) const noexcept;

    // The canonical text, e.g. "earn=50,redeem=30,hold=10,balance=10" (zero weights left out).
    std::string to_string() const;

private:
    std::array<uint32_t, op_kind_count> weights_ = {};
    uint32_t weight_total_ = 0;
};

}  // namespace jifen::bench
