// jifen-bench flags: scenarios set defaults, explicit flags still win, bad combinations are
// refused.
#include "bench/load/options.hpp"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace jifen::bench {
namespace {

// Parses `args` (without the program name) as jifen-bench would.
BenchOptions parse(std::vector<std::string> args) {
    CLI::App app;
    BenchOptions options;
    add_options(app, &options);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order.
    app.parse(args);
    resolve(app, &options);
    return options;
}

TEST(Options, WithoutFlagsARunIsTenSecondsClosedLoopOnTheDefaultMix) {
    const BenchOptions options = parse({});
    EXPECT_EQ(options.scenario, Scenario::none);
    EXPECT_DOUBLE_EQ(options.duration_s, duration_s_default);
    EXPECT_EQ(options.rate, 0.0);
    EXPECT_EQ(options.mix.to_string(), "earn=50,redeem=30,hold=10,balance=10");
    EXPECT_EQ(options.keys.law, KeyLaw::uniform);
    EXPECT_FALSE(options.enroll);
}

TEST(Options, AScenarioSetsItsDefaults) {
    const BenchOptions options = parse({"--scenario", "flash-sale"});
    EXPECT_EQ(options.scenario, Scenario::flash_sale);
    EXPECT_EQ(options.keys.law, KeyLaw::zipf);
    EXPECT_DOUBLE_EQ(options.keys.zipf_s, 1.1);
    EXPECT_TRUE(options.enroll);
    EXPECT_GT(options.mix.weight(OpKind::redeem), options.mix.weight(OpKind::earn));
    EXPECT_FALSE(options.burst.steady());
}

TEST(Options, ExplicitFlagsOverrideTheScenario) {
    const BenchOptions options = parse(
        {"--scenario", "double-points", "--mix", "earn=1", "--keys", "hotset", "--no-enroll"});
    EXPECT_EQ(options.scenario, Scenario::double_points);
    EXPECT_EQ(options.mix.to_string(), "earn=1");
    EXPECT_EQ(options.keys.law, KeyLaw::hotset);
    EXPECT_FALSE(options.enroll);
    EXPECT_EQ(options.earn_factor, 2);  // Not overridden: still the scenario's.
}

TEST(Options, BadCombinationsAreRefusedWithAMessage) {
    EXPECT_THROW(parse({"--scenario", "black-friday"}), std::invalid_argument);
    EXPECT_THROW(parse({"--mix", "earn=0"}), std::invalid_argument);
    EXPECT_THROW(parse({"--keys", "pareto"}), std::invalid_argument);
    EXPECT_THROW(parse({"-d", "5", "-n", "100"}), std::invalid_argument);
    EXPECT_THROW(parse({"-n", "100", "--warmup", "2"}), std::invalid_argument);
    EXPECT_THROW(parse({"--mix", "transfer=1", "--members", "1"}), std::invalid_argument);
    EXPECT_THROW(parse({"--rate", "10", "-c", "20"}), std::invalid_argument);
    // Given explicitly, 0 would silently mean the default duration or a closed loop.
    EXPECT_THROW(parse({"-d", "0"}), std::invalid_argument);
    EXPECT_THROW(parse({"--rate", "0"}), std::invalid_argument);
    EXPECT_THROW(parse({"--rate", "1000", "--burst-factor", "9", "--burst-ms", "200",
                        "--burst-period-ms", "1000"}),
                 std::invalid_argument);
    // Bursts asked for by name in a closed loop would be ignored: refused instead.
    EXPECT_THROW(parse({"--burst-factor", "2"}), std::invalid_argument);
    EXPECT_THROW(parse({"--scenario", "flash-sale", "--burst-ms", "100"}), std::invalid_argument);
    EXPECT_NO_THROW(parse({"--scenario", "flash-sale"}));  // Its own bursts are only a default.
    EXPECT_NO_THROW(parse({"--rate", "1000", "--burst-factor", "2"}));
}

TEST(Options, TransfersGoToAnyShardUnlessAScopeIsGiven) {
    EXPECT_EQ(parse({}).transfers, TransferScope::any);
    EXPECT_EQ(parse({"--transfers", "same-shard"}).transfers, TransferScope::same_shard);
    EXPECT_EQ(parse({"--transfers", "cross-shard"}).transfers, TransferScope::cross_shard);
    EXPECT_THROW(parse({"--transfers", "remote"}), std::invalid_argument);
}

TEST(Options, MoreThreadsThanConnectionsAreCappedAtTheConnections) {
    const BenchOptions options = parse({"-c", "2", "-t", "8"});
    EXPECT_EQ(options.threads, 2u);
}

}  // namespace
}  // namespace jifen::bench
