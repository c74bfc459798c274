// Which transfers a run sends: between two members of one shard, across shards, or either. A
// transfer across shards takes the server's two-leg path (debit, credit, confirm), so the two
// kinds cost very different amounts and are measured apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bench/load/key_distribution.hpp"
#include "bench/load/random.hpp"

namespace jifen::bench {

enum class TransferScope : uint8_t { any, same_shard, cross_shard };

std::string_view to_string(TransferScope scope) noexcept;
std::optional<TransferScope> parse_transfer_scope(std::string_view text) noexcept;

// Why no run over members 1..members on a server of shard_count shards can keep `scope` (cross
// shards with one shard, or with every member on one shard; within a shard when some member is
// alone on its shard), or empty when it can.
std::string transfer_scope_problem(TransferScope scope, uint64_t members, uint32_t shard_count);

// The member a transfer from `member_id` goes to: drawn from the key law until it is on the shard
// `scope` asks for (protocol::shard_of with shard_count), and never member_id itself. A law that
// rarely lands there (a tiny hot set) gives up after a bounded number of draws and walks the ids
// from a uniform start instead, so `scope` always holds when transfer_scope_problem() is empty.
uint64_t next_counterparty(const KeyDistribution& keys, Rng& rng, uint64_t member_id,
                           TransferScope scope, uint32_t shard_count) noexcept;

}  // namespace jifen::bench
