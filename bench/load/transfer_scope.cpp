// Picking a transfer's counterparty on the shard the run asks for.
#include "bench/load/transfer_scope.hpp"

#include <vector>

#include "protocol/wire.hpp"

namespace jifen::bench {
namespace {

// Draws from the key law before walking the ids. Uniform keys on 8 shards find a same-shard
// member with probability 1/8 a draw, so 64 draws fail about once in 5,000 transfers.
constexpr int law_draws_max = 64;

// transfer_scope_problem() counts every member's shard up to this many members (a few ms). Past
// it each shard (a server has at most 1,024: wal/limits.hpp) expects 4,096 or more members, so
// none holds a single one and the check is skipped.
constexpr uint64_t members_counted_max = uint64_t{1} << 22;

bool on_wanted_shard(uint64_t other, uint32_t home_shard, TransferScope scope,
                     uint32_t shard_count) noexcept {
    const bool same = protocol::shard_of(other, shard_count) == home_shard;
    return scope == TransferScope::same_shard ? same : !same;
}

}  // namespace

std::string_view to_string(TransferScope scope) noexcept {
    switch (scope) {
        case TransferScope::any:
            return "any";
        case TransferScope::same_shard:
            return "same-shard";
        case TransferScope::cross_shard:
            return "cross-shard";
    }
    return "unknown";
}

std::optional<TransferScope> parse_transfer_scope(std::string_view text) noexcept {
    for (const TransferScope scope :
         {TransferScope::any, TransferScope::same_shard, TransferScope::cross_shard}) {
        if (text == to_string(scope)) {
            return scope;
        }
    }
    return std::nullopt;
}

std::string transfer_scope_problem(TransferScope scope, uint64_t members, uint32_t shard_count) {
    if (scope == TransferScope::any) {
        return {};
    }
    if (scope == TransferScope::cross_shard && shard_count < 2) {
        return "--transfers cross-shard needs a server with 2 or more shards; this one has " +
               std::to_string(shard_count) + ", so no transfer can cross shards";
    }
    if (members > members_counted_max) {
        return {};
    }
    std::vector<uint64_t> members_on(shard_count, 0);
    for (uint64_t member_id = 1; member_id <= members; ++member_id) {
        ++members_on[protocol::shard_of(member_id, shard_count)];
    }
    const auto shard_text = [&](uint64_t shard) {
        return "shard " + std::to_string(shard) + " of " + std::to_string(shard_count);
    };
    for (uint32_t shard = 0; shard < shard_count; ++shard) {
        if (scope == TransferScope::cross_shard && members_on[shard] == members) {
            return "--transfers cross-shard: members 1.." + std::to_string(members) +
                   " all live on " + shard_text(shard) + "; use more --members";
        }
        if (scope == TransferScope::same_shard && members_on[shard] == 1) {
            return "--transfers same-shard: one of members 1.." + std::to_string(members) +
                   " is alone on " + shard_text(shard) + "; use more --members";
        }
    }
    return {};
}

uint64_t next_counterparty(const KeyDistribution& keys, Rng& rng, uint64_t member_id,
                           TransferScope scope, uint32_t shard_count) noexcept {
    if (scope == TransferScope::any || shard_count == 0) {
        return keys.next_other_than(rng, member_id);
    }
    const uint32_t home_shard = protocol::shard_of(member_id, shard_count);
    const auto fits = [&](uint64_t other) {
        return other != member_id && on_wanted_shard(other, home_shard, scope, shard_count);
    };
    for (int draw = 0; draw < law_draws_max; ++draw) {
        const uint64_t other = keys.next(rng);
        if (fits(other)) {
            return other;
        }
    }
    const uint64_t members = keys.config().members;
    uint64_t other = 1 + rng.below(members);
    for (uint64_t step = 0; step < members; ++step) {
        if (fits(other)) {
            return other;
        }
        other = other % members + 1;
    }
    return keys.next_other_than(rng, member_id);  // No member fits: see transfer_scope_problem().
}

}  // namespace jifen::bench
