// jifen-bench flags: scenarios set defaults, explicit flags still win, bad combinations are
// refused.
#include "bench/load/options.hpp"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
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
    EXPECT_NO_THROW(parse({"--rate", "1000", "--burst-factor", "2", "--burst-ms", "100",
                           "--burst-period-ms", "1000"}));
}

// The message of the refusal of `args`, or "" when they are accepted.
std::string refusal(std::vector<std::string> args) {
    try {
        parse(std::move(args));
    } catch (const std::exception& error) {
        return error.what();
    }
    return {};
}

TEST(Options, RatesBeyondOnePerNanosecondAreRefusedLikeNanAndZero) {
    for (const char* rate : {"inf", "1e300", "1e25", "1000000001", "nan", "-5"}) {
        const std::string message = refusal({"--rate", rate});
        EXPECT_NE(message.find("--rate"), std::string::npos) << rate << ": " << message;
        EXPECT_NE(message.find("1e9"), std::string::npos) << rate << ": " << message;
    }
    EXPECT_EQ(parse({"--rate", "1e9"}).rate, rate_per_sec_max);
}

TEST(Options, ARateBelowOnePerSecondPerConnectionIsRefusedNamingConnections) {
    EXPECT_NE(refusal({"--rate", "3", "-c", "4"}).find("at least --connections"),
              std::string::npos);
    EXPECT_EQ(refusal({"--rate", "4", "-c", "4"}), "");
}

TEST(Options, OpCountsOutsideOneToTwoToThe53AreRefused) {
    for (const char* ops :
         {"-5", "0", "18446744073709551616", "18446744073709551615", "9007199254740993"}) {
        const std::string message = refusal({"-n", ops});
        EXPECT_NE(message.find("--ops"), std::string::npos) << ops << ": " << message;
        EXPECT_NE(message.find("9007199254740992"), std::string::npos) << ops << ": " << message;
    }
    EXPECT_EQ(parse({"-n", "9007199254740992"}).ops, ops_max);
    EXPECT_EQ(parse({"-n", "1"}).ops, 1u);
}

TEST(Options, DurationsBeyondAYearAreRefusedSoTheEndNeverOverflows) {
    for (const char* duration : {"inf", "1e10", "31536001", "nan", "-1", "0"}) {
        const std::string message = refusal({"-d", duration});
        EXPECT_NE(message.find("--duration"), std::string::npos) << duration << ": " << message;
        EXPECT_NE(message.find("31536000"), std::string::npos) << duration << ": " << message;
    }
    EXPECT_DOUBLE_EQ(parse({"-d", "31536000"}).duration_s, duration_s_max);
    EXPECT_NE(refusal({"--warmup", "-1"}).find("--warmup"), std::string::npos);
    EXPECT_NE(refusal({"--warmup", "3601"}).find("--warmup"), std::string::npos);
}

TEST(Options, AWindowBeyondTheMemoryBudgetIsRefusedNamingTheFlags) {
    const std::string message = refusal({"-c", "4096", "--pipeline", "4096", "--batch", "8192"});
    for (const char* flag : {"--connections", "--pipeline", "--batch", "2048 MiB"}) {
        EXPECT_NE(message.find(flag), std::string::npos) << flag << ": " << message;
    }
    EXPECT_NE(refusal({"--pipeline", "1024", "--batch", "8192"}), "");
    // The shapes docs/performance.md measures fit.
    EXPECT_EQ(refusal({"-c", "1", "--pipeline", "8", "--batch", "8192"}), "");
    EXPECT_EQ(refusal({"-c", "8", "--pipeline", "16", "--batch", "64"}), "");
    EXPECT_EQ(refusal({"-c", "4096"}), "");
    const BenchOptions largest = parse({"-c", "1", "--pipeline", "600", "--batch", "8192"});
    EXPECT_LE(window_bytes(largest), window_bytes_max);
}

TEST(Options, BurstsTakeAllThreeFlagsOrNone) {
    EXPECT_NE(refusal({"--rate", "1000", "--burst-factor", "3"}).find("--burst-ms"),
              std::string::npos);
    EXPECT_NE(refusal({"--rate", "1000", "--burst-factor", "3", "--burst-ms", "100"})
                  .find("--burst-period-ms"),
              std::string::npos);
    EXPECT_NE(refusal({"--rate", "1000", "--burst-ms", "100", "--burst-period-ms", "1000"})
                  .find("--burst-factor"),
              std::string::npos);
    EXPECT_NE(refusal({"--rate", "1000", "--burst-factor", "2", "--burst-ms", "100",
                       "--burst-period-ms", "0"})
                  .find("--burst-period-ms"),
              std::string::npos);
    EXPECT_NE(refusal({"--rate", "1000", "--burst-factor", "2", "--burst-ms", "1000",
                       "--burst-period-ms", "1000"})
                  .find("shorter than --burst-period-ms"),
              std::string::npos);
}

TEST(Options, BurstFlagsReplaceAScenariosBurstsAsAWhole) {
    // Any burst flag drops flash-sale's default shape, so factor 1 turns its bursts off...
    EXPECT_TRUE(parse({"--scenario", "flash-sale", "--rate", "1000", "--burst-factor", "1"})
                    .burst.steady());
    // ... and a new factor alone is half a shape.
    EXPECT_NE(refusal({"--scenario", "flash-sale", "--rate", "1000", "--burst-factor", "4"}), "");
}

TEST(Options, FlagsOfAModeNotInUseAreRefusedNamingWhatTheyNeed) {
    EXPECT_NE(refusal({"--zipf-s", "1.2"}).find("--keys zipf"), std::string::npos);
    EXPECT_NE(refusal({"--keys", "hotset", "--zipf-s", "1.2"}).find("--keys zipf"),
              std::string::npos);
    EXPECT_NE(refusal({"--hot-fraction", "0.1"}).find("--keys hotset"), std::string::npos);
    EXPECT_NE(refusal({"--keys", "zipf", "--hot-share", "0.5"}).find("--keys hotset"),
              std::string::npos);
    EXPECT_NE(refusal({"--initial-points", "5"}).find("--enroll"), std::string::npos);
    EXPECT_NE(refusal({"--insecure"}).find("--tls"), std::string::npos);
    EXPECT_EQ(refusal({"--keys", "zipf", "--zipf-s", "1.2"}), "");
    EXPECT_EQ(refusal({"--keys", "hotset", "--hot-fraction", "0.1", "--hot-share", "0.5"}), "");
    EXPECT_EQ(refusal({"--enroll", "--initial-points", "5"}), "");
    EXPECT_EQ(refusal({"--tls", "--insecure"}), "");
    EXPECT_NE(refusal({"--transfers", "cross-shard", "--mix", "earn=1"}).find("transfer in --mix"),
              std::string::npos);
    EXPECT_NE(refusal({"--earn-factor", "2", "--mix", "redeem=1"}).find("earn or purchase"),
              std::string::npos);
    EXPECT_EQ(refusal({"--transfers", "cross-shard", "--mix", "earn=1,transfer=1"}), "");
    EXPECT_EQ(refusal({"--earn-factor", "2", "--mix", "purchase=1"}), "");
    // A scenario's defaults for another law are not the user's flags.
    EXPECT_EQ(refusal({"--scenario", "mixed", "--keys", "uniform"}), "");
    EXPECT_EQ(refusal({"--scenario", "flash-sale", "--no-enroll"}), "");
}

TEST(Options, TransfersGoToAnyShardUnlessAScopeIsGiven) {
    EXPECT_EQ(parse({}).transfers, TransferScope::any);
    EXPECT_EQ(parse({"--mix", "transfer=1", "--transfers", "same-shard"}).transfers,
              TransferScope::same_shard);
    EXPECT_EQ(parse({"--mix", "transfer=1", "--transfers", "cross-shard"}).transfers,
              TransferScope::cross_shard);
    EXPECT_THROW(parse({"--mix", "transfer=1", "--transfers", "remote"}), std::invalid_argument);
}

TEST(Options, MoreThreadsThanConnectionsAreCappedAtTheConnections) {
    const BenchOptions options = parse({"-c", "2", "-t", "8"});
    EXPECT_EQ(options.threads, 2u);
}

}  // namespace
}  // namespace jifen::bench
