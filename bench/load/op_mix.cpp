// Parsing and drawing from an operation mix; the table of expected results per kind.
#include "bench/load/op_mix.hpp"

#include <array>
#include <charconv>
#include <stdexcept>
#include <string>
#include <utility>

namespace jifen::bench {
namespace {

// A weight is a share out of the total, so a bound keeps the total far from overflowing.
constexpr uint32_t weight_max = 1'000'000;

std::string_view trim(std::string_view text) noexcept {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

std::string scope_text(uint32_t scope) {
    std::string text;
    for (const auto& [bit, name] :
         {std::pair{protocol::scope_read, "read"}, std::pair{protocol::scope_pos, "pos"},
          std::pair{protocol::scope_admin, "admin"}}) {
        if ((scope & bit) != 0) {
            text += text.empty() ? "" : "+";
            text += name;
        }
    }
    return text.empty() ? "none" : text;
}

}  // namespace

std::vector<protocol::Opcode> opcodes_of(OpKind kind) {
    using protocol::Opcode;
    switch (kind) {
        case OpKind::earn:
        case OpKind::purchase:
            return {Opcode::earn};
        case OpKind::redeem:
            return {Opcode::redeem};
        case OpKind::hold:
            return {Opcode::hold, Opcode::capture};
        case OpKind::balance:
            return {Opcode::balance};
        case OpKind::transfer:
            return {Opcode::transfer};
        case OpKind::capture:
            return {Opcode::capture};
    }
    return {};
}

std::string scope_problem(const OpMix& mix, uint32_t scope) {
    std::string refused;
    for (const OpKind kind : op_kinds_mixable) {
        if (mix.weight(kind) == 0) {
            continue;
        }
        for (const protocol::Opcode opcode : opcodes_of(kind)) {
            if ((protocol::scope_required(opcode) & scope) == 0) {
                refused += refused.empty() ? "" : ", ";
                refused += to_string(kind);
                break;
            }
        }
    }
    if (refused.empty()) {
        return {};
    }
    return "the key's scope (" + scope_text(scope) + ") does not allow " + refused +
           " of --mix: use a key whose scope does (pos for earn, purchase, redeem and hold; "
           "admin for transfer) or change --mix";
}

std::string_view to_string(OpKind kind) noexcept {
    switch (kind) {
        case OpKind::earn:
            return "earn";
        case OpKind::redeem:
            return "redeem";
        case OpKind::hold:
            return "hold";
        case OpKind::balance:
            return "balance";
        case OpKind::transfer:
            return "transfer";
        case OpKind::purchase:
            return "purchase";
        case OpKind::capture:
            return "capture";
    }
    return "unknown";
}

std::optional<OpKind> parse_op_kind(std::string_view text) noexcept {
    for (size_t index = 0; index < op_kind_count; ++index) {
        const auto kind = static_cast<OpKind>(index);
        if (text == to_string(kind)) {
            return kind;
        }
    }
    return std::nullopt;
}

bool is_expected(OpKind kind, Result result) noexcept {
    if (result == Result::ok) {
        return true;
    }
    switch (kind) {
        case OpKind::redeem:
        case OpKind::transfer:
            return result == Result::insufficient_points;
        case OpKind::hold:
            // A member the load keeps very hot can reach its open-hold limit too.
            return result == Result::insufficient_points || result == Result::member_hold_limit;
        case OpKind::earn:
        case OpKind::balance:
        case OpKind::purchase:
        case OpKind::capture:
            return false;
    }
    return false;
}

OpMix OpMix::parse(std::string_view text) {
    OpMix mix;
    std::array<bool, op_kind_count> given{};
    // Every comma starts another entry, the last one included: "earn=1," has an empty entry.
    for (bool more = !text.empty(); more;) {
        const size_t comma = text.find(',');
        const std::string_view part = trim(text.substr(0, comma));
        more = comma != std::string_view::npos;
        text = more ? text.substr(comma + 1) : std::string_view{};
        if (part.empty()) {
            throw std::invalid_argument("mix: an empty entry between commas");
        }
        const size_t equals = part.find('=');
        if (equals == std::string_view::npos) {
            throw std::invalid_argument("mix: expected name=weight, got '" + std::string(part) +
                                        "'");
        }
        const std::string_view name = trim(part.substr(0, equals));
        const std::string_view number = trim(part.substr(equals + 1));
        const auto kind = parse_op_kind(name);
        if (!kind || *kind == OpKind::capture) {
            throw std::invalid_argument(
                "mix: unknown operation '" + std::string(name) +
                "' (known: earn, redeem, hold, balance, transfer, purchase)");
        }
        uint32_t weight = 0;
        const auto [end, error] =
            std::from_chars(number.data(), number.data() + number.size(), weight);
        if (error != std::errc{} || end != number.data() + number.size() || weight > weight_max) {
            throw std::invalid_argument("mix: weight of '" + std::string(name) +
                                        "' must be a whole number 0.." +
                                        std::to_string(weight_max));
        }
        // A second weight for one operation is a typo, not a sum: which one was meant?
        if (given[static_cast<size_t>(*kind)]) {
            throw std::invalid_argument("mix: '" + std::string(name) + "' is given twice");
        }
        given[static_cast<size_t>(*kind)] = true;
        mix.weights_[static_cast<size_t>(*kind)] = weight;
    }
    for (const OpKind kind : op_kinds_mixable) {
        mix.weight_total_ += mix.weight(kind);
    }
    if (mix.weight_total_ == 0) {
        throw std::invalid_argument("mix: at least one operation needs a positive weight");
    }
    return mix;
}

double OpMix::share(OpKind kind) const noexcept {
    return static_cast<double>(weight(kind)) / static_cast<double>(weight_total_);
}

OpKind OpMix::next(Rng& rng) const noexcept {
    uint64_t ticket = rng.below(weight_total_);
    for (const OpKind kind : op_kinds_mixable) {
        const uint32_t kind_weight = weight(kind);
        if (ticket < kind_weight) {
            return kind;
        }
        ticket -= kind_weight;
    }
    return op_kinds_mixable.front();  // Unreachable: the weights sum to weight_total_.
}

std::string OpMix::to_string() const {
    std::string text;
    for (const OpKind kind : op_kinds_mixable) {
        if (weight(kind) == 0) {
            continue;
        }
        if (!text.empty()) {
            text += ',';
        }
        text += jifen::bench::to_string(kind);
        text += '=';
        text += std::to_string(weight(kind));
    }
    return text;
}

}  // namespace jifen::bench
