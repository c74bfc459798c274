// Flag definitions and scenario defaults for jifen-bench.
#include "bench/load/options.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <vector>

namespace jifen::bench {
namespace {

// A scenario default: applied only when the user gave none of its flags. The burst flags go as
// one, since half a burst shape is refused.
struct ScenarioDefault {
    std::vector<const char*> flags;
    std::function<void(BenchOptions*)> apply;
};

std::vector<ScenarioDefault> scenario_defaults(Scenario scenario) {
    switch (scenario) {
        case Scenario::none:
            return {};
        case Scenario::flash_sale:
            // A sale opens: a few popular members (zipf 1.1) check out in waves: holds captured
            // at the till, redemptions, balance look-ups. Members start with points to spend.
            // The waves are bursts of an open-loop schedule, so they need --rate: a closed loop
            // sends as fast as replies come back and has no bursts.
            return {
                {{"--mix"},
                 [](BenchOptions* o) { o->mix_text = "redeem=40,hold=30,balance=20,earn=10"; }},
                {{"--keys"}, [](BenchOptions* o) { o->keys_text = "zipf"; }},
                {{"--zipf-s"}, [](BenchOptions* o) { o->zipf_s = 1.1; }},
                {{"--enroll"}, [](BenchOptions* o) { o->enroll = true; }},
                {{"--initial-points"}, [](BenchOptions* o) { o->initial_points = 20'000; }},
                {{"--burst-factor", "--burst-ms", "--burst-period-ms"},
                 [](BenchOptions* o) {
                     o->burst = {.factor = 3.0, .burst_ms = 200, .period_ms = 1'000};
                 }},
            };
        case Scenario::double_points:
            // A double-points weekend: mostly purchases and earns at twice the usual amounts,
            // spread over the whole membership.
            return {
                {{"--mix"},
                 [](BenchOptions* o) { o->mix_text = "earn=55,purchase=35,balance=10"; }},
                {{"--keys"}, [](BenchOptions* o) { o->keys_text = "uniform"; }},
                {{"--enroll"}, [](BenchOptions* o) { o->enroll = true; }},
                {{"--earn-factor"}, [](BenchOptions* o) { o->earn_factor = 2; }},
            };
        case Scenario::mixed:
            // An ordinary day: every kind of operation, a loyal 5% of members doing half of it.
            return {
                {{"--mix"},
                 [](BenchOptions* o) {
                     o->mix_text = "earn=30,purchase=15,redeem=15,hold=10,balance=25,transfer=5";
                 }},
                {{"--keys"}, [](BenchOptions* o) { o->keys_text = "hotset"; }},
                {{"--hot-fraction"}, [](BenchOptions* o) { o->hot_fraction = 0.05; }},
                {{"--hot-share"}, [](BenchOptions* o) { o->hot_share = 0.5; }},
                {{"--enroll"}, [](BenchOptions* o) { o->enroll = true; }},
                {{"--initial-points"}, [](BenchOptions* o) { o->initial_points = 2'000; }},
            };
    }
    return {};
}

constexpr const char* duration_range_message =
    "--duration must be more than 0 and at most 31536000 seconds (a year)";
constexpr const char* rate_range_message =
    "--rate must be more than 0 and at most 1e9 operations per second (leave it out for a closed "
    "loop)";

// Flags that only matter in one mode would be silently ignored in another: refused instead, by
// name. Only flags given explicitly count, so a scenario's defaults never trip this. After
// resolve_fields(), which parses the mix and the key law.
void refuse_flags_of_other_modes(const CLI::App& app, const BenchOptions& options) {
    struct FlagNeed {
        const char* flag;
        const char* needs;
        bool met;
    };
    const bool zipf = options.keys.law == KeyLaw::zipf;
    const bool hotset = options.keys.law == KeyLaw::hotset;
    const bool transfers = options.mix.weight(OpKind::transfer) > 0;
    const bool earns =
        options.mix.weight(OpKind::earn) > 0 || options.mix.weight(OpKind::purchase) > 0;
    for (const FlagNeed& need : {
             FlagNeed{"--zipf-s", "--keys zipf", zipf},
             FlagNeed{"--hot-fraction", "--keys hotset", hotset},
             FlagNeed{"--hot-share", "--keys hotset", hotset},
             FlagNeed{"--initial-points", "--enroll", options.enroll},
             FlagNeed{"--ca-file", "--tls", options.tls},
             FlagNeed{"--insecure", "--tls", options.tls},
             FlagNeed{"--transfers", "transfer in --mix", transfers},
             FlagNeed{"--earn-factor", "earn or purchase in --mix", earns},
         }) {
        if (!need.met && app.count(need.flag) > 0) {
            throw std::invalid_argument(std::string(need.flag) + " needs " + need.needs +
                                        " (without it the flag would be ignored)");
        }
    }
}

}  // namespace

std::string_view to_string(Scenario scenario) noexcept {
    switch (scenario) {
        case Scenario::none:
            return "none";
        case Scenario::flash_sale:
            return "flash-sale";
        case Scenario::double_points:
            return "double-points";
        case Scenario::mixed:
            return "mixed";
    }
    return "unknown";
}

std::optional<Scenario> parse_scenario(std::string_view text) noexcept {
    for (const Scenario scenario :
         {Scenario::none, Scenario::flash_sale, Scenario::double_points, Scenario::mixed}) {
        if (text == to_string(scenario)) {
            return scenario;
        }
    }
    return std::nullopt;
}

void add_options(CLI::App& app, BenchOptions* options) {
    const char* key_from_env = std::getenv("JIFEN_KEY");
    options->api_key = key_from_env != nullptr ? key_from_env : "dev-admin-key";

    app.add_option("--host", options->host, "Server address")->capture_default_str();
    // CLI11 reads an empty value into a number as 0: CLI::Number refuses it first.
    app.add_option("--port", options->port, "Server binary-protocol port")
        ->capture_default_str()
        ->check(CLI::Number);
    app.add_option("--key", options->api_key,
                   "API key (default: env JIFEN_KEY, else the development admin key)");
    app.add_flag("--tls", options->tls, "Connect with TLS (a server started with --tls-cert)");
    app.add_option("--ca-file", options->ca_file, "CA certificates (PEM) to verify the server")
        ->check(CLI::ExistingFile);
    app.add_flag("--insecure", options->insecure, "TLS without certificate checks (tests only)");
    app.add_option("-c,--connections", options->connections, "Connections in total")
        ->capture_default_str()
        ->check(CLI::Range(1u, 4'096u));
    app.add_option("-t,--threads", options->threads, "Client threads (connections are spread)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 256u));
    app.add_option("--pipeline", options->pipeline, "Frames in flight per connection")
        ->capture_default_str()
        ->check(CLI::Range(1u, 4'096u));
    app.add_option("--batch", options->batch, "Operations per frame")
        ->capture_default_str()
        ->check(CLI::Range(1u, 8'192u));
    app.add_option("--mix", options->mix_text,
                   "Operation weights: earn, redeem, hold (= hold then capture), balance, "
                   "transfer, purchase")
        ->capture_default_str();
    app.add_option("--members", options->members, "Member ids 1..N are used")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
    app.add_flag("--enroll,!--no-enroll", options->enroll,
                 "Enrol members 1..N (batched) before the run");
    app.add_option("--initial-points", options->initial_points,
                   "With --enroll: points credited to every member before the run")
        ->capture_default_str()
        ->check(CLI::Number)
        ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000}));
    app.add_option("--keys", options->keys_text, "Key law: uniform, zipf or hotset")
        ->capture_default_str();
    app.add_option("--zipf-s", options->zipf_s, "Zipf exponent (> 0)")
        ->capture_default_str()
        ->check(CLI::Number);
    app.add_option("--hot-fraction", options->hot_fraction,
                   "hotset: fraction of members that is hot")
        ->capture_default_str()
        ->check(CLI::Number);
    app.add_option("--hot-share", options->hot_share, "hotset: share of operations on hot members")
        ->capture_default_str()
        ->check(CLI::Number);
    app.add_option("-d,--duration", options->duration_s,
                   "Seconds to run (default 10, at most 31536000: a year)")
        ->check(CLI::Number);
    app.add_option("-n,--ops", options->ops, "Operations to schedule instead of a duration")
        ->check(CLI::Range(uint64_t{1}, ops_max));
    app.add_option("--warmup", options->warmup_s,
                   "Whole seconds to run first and leave out of the latency and throughput "
                   "figures; its unexpected failures still fail the run (with --duration)")
        ->check(CLI::Number)
        ->check(CLI::Range(0u, 3'600u));
    app.add_option("--rate", options->rate,
                   "Open loop: target operations per second over all connections, at most 1e9; "
                   "at least one per connection (-c); latency is measured from each "
                   "operation's intended send time (absent: closed loop)");
    app.add_option("--burst-factor", options->burst.factor,
                   "With --rate, --burst-ms and --burst-period-ms: rate multiplier during bursts "
                   "(average rate unchanged); a closed loop has no bursts");
    app.add_option("--burst-ms", options->burst.burst_ms,
                   "With --rate and the other two --burst-* flags: burst length");
    app.add_option("--burst-period-ms", options->burst.period_ms,
                   "With --rate and the other two --burst-* flags: burst period");
    app.add_option("--earn-factor", options->earn_factor,
                   "Multiplies earn and purchase amounts (needs earn or purchase in --mix)")
        ->check(CLI::Range(int64_t{1}, int64_t{1'000}));
    app.add_option("--scenario", options->scenario_text,
                   "flash-sale, double-points or mixed: sets defaults, flags still override. "
                   "flash-sale's bursts (3x for 200 ms every second) apply only with --rate: a "
                   "closed loop has none")
        ->capture_default_str();
    app.add_flag("--shard-aware", options->shard_aware,
                 "Connection i is served by shard i mod S and sends only that shard's members "
                 "(needs --connections >= the server's shards)");
    app.add_option("--transfers", options->transfers_text,
                   "any, same-shard or cross-shard: a transfer goes to a member of any shard, of "
                   "the sender's shard, or of another shard (asks the server's shard count; "
                   "cross-shard needs 2 or more shards; needs transfer in --mix)")
        ->capture_default_str();
    app.add_flag("--json", options->json, "Print one JSON line with the results on stdout");
    app.add_option("--seed", options->seed, "Seed for keys, mix and amounts")
        ->capture_default_str()
        ->check(CLI::Number);
}

void resolve(const CLI::App& app, BenchOptions* options) {
    const auto scenario = parse_scenario(options->scenario_text);
    if (!scenario) {
        throw std::invalid_argument("--scenario must be flash-sale, double-points or mixed");
    }
    for (const ScenarioDefault& entry : scenario_defaults(*scenario)) {
        if (std::none_of(entry.flags.begin(), entry.flags.end(),
                         [&app](const char* flag) { return app.count(flag) > 0; })) {
            entry.apply(options);
        }
    }
    // Asked for by name, bursts without --rate would be silently ignored (a scenario's own
    // bursts are only a default, noted in the report).
    const bool bursts_asked =
        app.count("--burst-factor") + app.count("--burst-ms") + app.count("--burst-period-ms") > 0;
    if (bursts_asked && options->rate <= 0) {
        throw std::invalid_argument(
            "--burst-factor, --burst-ms and --burst-period-ms need --rate: a closed loop sends "
            "as fast as replies come back and has no bursts");
    }
    // Given explicitly, 0 would silently mean the default duration or a closed loop.
    if (app.count("--duration") > 0 && !(options->duration_s > 0)) {
        throw std::invalid_argument(duration_range_message);
    }
    if (app.count("--rate") > 0 && !(options->rate > 0)) {
        throw std::invalid_argument(rate_range_message);
    }
    resolve_fields(options);
    refuse_flags_of_other_modes(app, *options);
}

void resolve_fields(BenchOptions* options) {
    const auto scenario = parse_scenario(options->scenario_text);
    if (!scenario) {
        throw std::invalid_argument("--scenario must be flash-sale, double-points or mixed");
    }
    options->scenario = *scenario;
    options->mix = OpMix::parse(options->mix_text);
    const auto law = parse_key_law(options->keys_text);
    if (!law) {
        throw std::invalid_argument("--keys must be uniform, zipf or hotset");
    }
    options->keys = KeyDistributionConfig{
        .law = *law,
        .members = options->members,
        .zipf_s = options->zipf_s,
        .hot_fraction = options->hot_fraction,
        .hot_share = options->hot_share,
    };
    KeyDistribution{options->keys};  // Throws on a bad law parameter.
    const auto transfers = parse_transfer_scope(options->transfers_text);
    if (!transfers) {
        throw std::invalid_argument("--transfers must be any, same-shard or cross-shard");
    }
    options->transfers = *transfers;
    validate(options->burst);
    if (options->threads > options->connections) {
        options->threads = options->connections;  // A thread with no connection would idle.
    }
    if (options->mix.weight(OpKind::transfer) > 0 && options->members < 2) {
        throw std::invalid_argument("--mix with transfer needs --members of at least 2");
    }
    // Negated comparisons, so that NaN is refused too.
    if (!(options->duration_s >= 0 && options->duration_s <= duration_s_max)) {
        throw std::invalid_argument(duration_range_message);
    }
    if (!(options->rate >= 0 && options->rate <= rate_per_sec_max)) {
        throw std::invalid_argument(rate_range_message);
    }
    if (options->ops > ops_max) {
        throw std::invalid_argument("--ops must be at most " + std::to_string(ops_max));
    }
    if (const uint64_t bytes = window_bytes(*options); bytes > window_bytes_max) {
        throw std::invalid_argument(fmt::format(
            "-c {} x --pipeline {} x --batch {} operations in flight need about {} MiB of "
            "buffers, more than the {} MiB jifen-bench allows: lower --connections, --pipeline "
            "or --batch",
            options->connections, options->pipeline, options->batch, bytes >> 20,
            window_bytes_max >> 20));
    }
    if (options->duration_s == 0 && options->ops == 0) {
        options->duration_s = duration_s_default;
    }
    if (options->warmup_s > 0 && options->ops > 0) {
        throw std::invalid_argument("--warmup works with --duration, not with --ops");
    }
    if (options->duration_s > 0 && options->ops > 0) {
        throw std::invalid_argument("give either --duration or --ops, not both");
    }
    if (options->rate > 0 && options->rate < options->connections) {
        // Fewer would leave a connection more than a second between two of its operations, and
        // in a short run with none at all: an idle connection measures nothing.
        throw std::invalid_argument(
            "--rate must be at least --connections: one operation per second per connection");
    }
    if (options->api_key.size() > 64) {
        throw std::invalid_argument("--key is longer than 64 bytes");
    }
}

uint64_t window_bytes(const BenchOptions& options) noexcept {
    const uint64_t ops_per_frame = options.batch;
    const uint64_t frames_in_flight = options.pipeline;
    const uint64_t bytes_per_connection =
        ops_per_frame *
        ((frames_in_flight + client::async_filling_batches_max) * client_bytes_per_op +
         frames_in_flight * slot_bytes_per_op);
    return options.connections * bytes_per_connection;
}

}  // namespace jifen::bench
