// jifen-bench's command line: every flag, the scenarios (named sets of defaults that any flag
// still overrides), and the checks that turn text into a runnable configuration.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "bench/load/key_distribution.hpp"
#include "bench/load/op_mix.hpp"
#include "bench/load/pacing.hpp"
#include "bench/load/transfer_scope.hpp"
#include "client/options.hpp"
#include "protocol/wire.hpp"

namespace CLI {
class App;
}

namespace jifen::bench {

enum class Scenario : uint8_t { none, flash_sale, double_points, mixed };
std::string_view to_string(Scenario scenario) noexcept;
std::optional<Scenario> parse_scenario(std::string_view text) noexcept;

struct BenchOptions {
    std::string host = "127.0.0.1";
    uint16_t port = 7300;
    std::string api_key;  // Default: env JIFEN_KEY, else the development admin key.
    bool tls = false;     // As the jifen CLI's --tls, --ca-file and --insecure.
    std::string ca_file;
    bool insecure = false;
    uint32_t connections = 4;
    uint32_t threads = 1;
    uint32_t pipeline = 8;  // Frames in flight per connection.
    uint32_t batch = 16;    // Operations per frame.
    std::string mix_text = "earn=50,redeem=30,hold=10,balance=10";
    uint64_t members = 100'000;
    bool enroll = false;
    int64_t initial_points = 0;  // With --enroll: credited to every member before the run.
    std::string keys_text = "uniform";
    double zipf_s = 0.99;
    double hot_fraction = 0.01;
    double hot_share = 0.9;
    double duration_s = 0;    // 0 with ops 0: the default duration.
    uint64_t ops = 0;         // Scheduled operations (captures come on top); 0 = run by time.
    uint32_t warmup_s = 0;    // Whole seconds run before --duration, left out of the figures.
    double rate = 0;          // Operations per second over all connections; 0 = closed loop.
    BurstShape burst;         // Open loop only.
    int64_t earn_factor = 1;  // Multiplies earn and purchase amounts (double-points: 2).
    std::string scenario_text = "none";
    // Connection i asks the server for shard i mod S and sends only members of that shard
    // (protocol::shard_of), so no operation but a transfer's credit leg crosses shards.
    bool shard_aware = false;
    // Transfers go to a member of the sender's shard, of another shard, or of any (the key law's
    // draw); the server's shard count comes from a HELLO.
    std::string transfers_text = "any";
    bool json = false;
    uint64_t seed = 1;

    // Filled by resolve().
    Scenario scenario = Scenario::none;
    OpMix mix = OpMix::parse("earn=1");
    KeyDistributionConfig keys;
    TransferScope transfers = TransferScope::any;
};

inline constexpr double duration_s_default = 10.0;

// Limits of a run's flags, each refused up front (exit 2) by a message naming the flag.
//
// The longest --duration: a year, far beyond any useful run, so that the end of the run in
// nanoseconds (and rate x duration operations) stays far inside 64 bits.
inline constexpr double duration_s_max = 365.0 * 24 * 3'600;
static_assert(duration_s_max * 1e9 * 2 < 1.8e19);
static_assert(duration_s_max * rate_per_sec_max < 1.8e19);
// The most --ops: every operation index is exact in the schedule's double arithmetic.
inline constexpr uint64_t ops_max = uint64_t{1} << 53;
// The memory the operations in flight may take. Every connection preallocates, in the client
// library, --pipeline frames plus client::async_filling_batches_max spare ones of --batch
// operations, each with its body and two handlers; and jifen-bench keeps a slot for each operation
// of its window (--pipeline x --batch). The flags' own ranges allow terabytes.
inline constexpr uint64_t window_bytes_max = uint64_t{2} << 30;
inline constexpr uint64_t client_bytes_per_op =
    sizeof(protocol::Operation) + 2 * sizeof(std::function<void()>);
inline constexpr uint64_t slot_bytes_per_op = 192;  // Checked against the slot in runner.cpp.

// Registers every flag on `app`, writing into `options`.
void add_options(CLI::App& app, BenchOptions* options);

// After parsing: applies the chosen scenario's defaults to the flags the user did not give, then
// checks and derives (mix, key law). Throws std::invalid_argument with a message for the user.
void resolve(const CLI::App& app, BenchOptions* options);

// Checks and derives without scenario handling (for callers that fill BenchOptions directly).
void resolve_fields(BenchOptions* options);

// The bytes the client library and jifen-bench allocate for the operations in flight (see
// window_bytes_max).
uint64_t window_bytes(const BenchOptions& options) noexcept;

}  // namespace jifen::bench
