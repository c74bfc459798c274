// Reports: the JSON line has the documented shape; the table names every kind that ran.
#include "bench/load/report.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <csignal>
#include <string>

namespace jifen::bench {
namespace {

RunStats sample_stats() {
    RunStats stats;
    for (uint64_t index = 1; index <= 1'000; ++index) {
        stats.record(OpKind::earn, Result::ok, index * 1'000);
    }
    stats.record(OpKind::redeem, Result::ok, 2'000);
    stats.record(OpKind::redeem, Result::insufficient_points, 3'000);
    stats.record(OpKind::redeem, Result::insufficient_points, 3'000);
    stats.record(OpKind::earn, Result::busy, 4'000);
    stats.record_failure(OpKind::balance, ClientFailure::timeout);
    return stats;
}

BenchOptions sample_options() {
    BenchOptions options;
    options.scenario_text = "flash-sale";
    options.mix_text = "earn=70,redeem=30";
    options.earn_factor = 2;
    options.initial_points = 500;
    options.burst = BurstShape{.factor = 3.0, .burst_ms = 200, .period_ms = 1'000};
    resolve_fields(&options);
    return options;
}

// A summary's JSON line, parsed: the parser owns what root points into.
struct ParsedJson {
    std::string json;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
};

// Formats summary's JSON line into *out and parses it; for ASSERT_TRUE.
::testing::AssertionResult parse_json_of(const RunSummary& summary, ParsedJson* out) {
    out->json = format_json(summary);
    if (out->parser.parse(out->json).get(out->root) != simdjson::SUCCESS) {
        return ::testing::AssertionFailure() << "not JSON: " << out->json;
    }
    return ::testing::AssertionSuccess();
}

// The JSON line of a 2 s run of the sample stats under options.
std::string sample_json(const BenchOptions& options, uint64_t members_enrolled) {
    const RunStats stats = sample_stats();
    return format_json({.options = &options,
                        .stats = &stats,
                        .elapsed_s = 2.0,
                        .members_enrolled = members_enrolled});
}

TEST(Report, TheJsonLineHasEveryDocumentedKeyWithTheRightType) {
    const BenchOptions options = sample_options();
    const RunStats stats = sample_stats();
    const std::string json = format_json({.options = &options,
                                          .stats = &stats,
                                          .elapsed_s = 2.0,
                                          .members_enrolled = 10,
                                          .server_shards = 2});
    EXPECT_EQ(json.find('\n'), std::string::npos) << "exactly one line";

    simdjson::dom::parser parser;
    simdjson::dom::element root;
    ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
    // The balance that timed out got no answer: an error, not an operation.
    EXPECT_EQ(uint64_t(root["ops"]), 1'004u);
    EXPECT_DOUBLE_EQ(double(root["ops_per_sec"]), 502.0);
    EXPECT_EQ(uint64_t(root["failed"]), 1u);
    for (const char* key : {"p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"}) {
        double value = -1;
        ASSERT_EQ(root[key].get(value), simdjson::SUCCESS) << key;
        EXPECT_GE(value, 0.0) << key;
    }
    EXPECT_DOUBLE_EQ(double(root["max_us"]), 1'000.0);
    // Non-ok outcomes: 2 insufficient_points + 1 busy + 1 client timeout; only the refused
    // redeems were expected.
    EXPECT_EQ(uint64_t(root["errors"]), 4u);
    EXPECT_EQ(uint64_t(root["unexpected"]), 2u);
    simdjson::dom::object by_result;
    ASSERT_EQ(root["errors_by_result"].get(by_result), simdjson::SUCCESS);
    EXPECT_EQ(uint64_t(by_result["insufficient_points"]), 2u);
    EXPECT_EQ(uint64_t(by_result["busy"]), 1u);
    EXPECT_EQ(uint64_t(by_result["client_timeout"]), 1u);
    EXPECT_EQ(by_result.size(), 3u);
    EXPECT_EQ(uint64_t(root["per_op"]["redeem"]["ops"]), 3u);
    EXPECT_EQ(uint64_t(root["per_op"]["redeem"]["ok"]), 1u);
    EXPECT_EQ(uint64_t(root["per_op"]["balance"]["ops"]), 0u);
    EXPECT_EQ(uint64_t(root["per_op"]["balance"]["failed"]), 1u);
    EXPECT_EQ(std::string_view(root["config"]["scenario"]), "flash-sale");
    EXPECT_EQ(std::string_view(root["config"]["mix"]), "earn=70,redeem=30");
    EXPECT_EQ(uint64_t(root["config"]["shards"]), 2u);
    // Every setting that shapes the load, so the line alone says what ran.
    EXPECT_EQ(int64_t(root["config"]["earn_factor"]), 2);
    EXPECT_EQ(int64_t(root["config"]["initial_points"]), 500);
    EXPECT_EQ(uint64_t(root["unsent_due"]), 0u);
}

TEST(Report, TheJsonConfigGivesEachSettingThatShapedTheLoad) {
    BenchOptions options = sample_options();
    options.rate = 1'000;
    options.keys_text = "hotset";
    resolve_fields(&options);
    const std::string json = sample_json(options, 10);
    simdjson::dom::parser parser;
    simdjson::dom::element config;
    ASSERT_EQ(parser.parse(json).at_pointer("/config").get(config), simdjson::SUCCESS) << json;
    EXPECT_DOUBLE_EQ(double(config["hot_fraction"]), options.hot_fraction);
    EXPECT_DOUBLE_EQ(double(config["hot_share"]), options.hot_share);
    EXPECT_DOUBLE_EQ(double(config["burst_factor"]), 3.0);
    EXPECT_EQ(uint64_t(config["burst_ms"]), 200u);
    EXPECT_EQ(uint64_t(config["burst_period_ms"]), 1'000u);
}

// flash-sale without --rate keeps its default bursts in the options, but a closed loop has none;
// with --no-enroll its default initial points are never credited.
TEST(Report, TheJsonConfigGivesNullForSettingsThatDidNotApply) {
    // Closed loop, uniform keys, no transfer.
    const std::string json = sample_json(sample_options(), 0);
    simdjson::dom::parser parser;
    simdjson::dom::element config;
    ASSERT_EQ(parser.parse(json).at_pointer("/config").get(config), simdjson::SUCCESS) << json;
    for (const char* key : {"burst_factor", "burst_ms", "burst_period_ms", "initial_points",
                            "zipf_s", "hot_fraction", "hot_share", "transfers"}) {
        EXPECT_TRUE(config[key].is_null()) << key << " in " << json;
    }
    EXPECT_EQ(int64_t(config["earn_factor"]), 2);  // The mix has earns.
}

TEST(Report, AnOpenLoopThatFellBehindSaysSoInTheTableAndTheJson) {
    const BenchOptions options = sample_options();
    const RunStats stats = sample_stats();
    const RunSummary summary{
        .options = &options, .stats = &stats, .elapsed_s = 2.0, .unsent_due_ops = 1'234};
    EXPECT_NE(format_table(summary).find("WARNING: 1234 operations fell due"), std::string::npos);
    ParsedJson report;
    ASSERT_TRUE(parse_json_of(summary, &report));
    const simdjson::dom::element& root = report.root;
    EXPECT_EQ(uint64_t(root["unsent_due"]), 1'234u);
}

TEST(Report, AnOpenLoopSaysHowFarBehindItsScheduleItSent) {
    const BenchOptions options = sample_options();
    const RunStats stats = sample_stats();
    LatencyHistogram lag;
    lag.record_n(2'000, 99);
    lag.record(40'000);
    const RunSummary summary{
        .options = &options, .stats = &stats, .elapsed_s = 2.0, .send_lag_ns = &lag};
    const std::string table = format_table(summary);
    EXPECT_NE(table.find("sent behind the schedule by p50 2.0 us, p99 2.0 us, max 40.0 us"),
              std::string::npos)
        << table;
    ParsedJson report;
    ASSERT_TRUE(parse_json_of(summary, &report));
    const simdjson::dom::element& root = report.root;
    EXPECT_DOUBLE_EQ(double(root["send_lag_us"]["p50"]), 2.0);
    EXPECT_DOUBLE_EQ(double(root["send_lag_us"]["max"]), 40.0);
    // A closed loop has no schedule to be behind, and a run that measured nothing no figure.
    ParsedJson closed;
    ASSERT_TRUE(parse_json_of({.options = &options, .stats = &stats}, &closed));
    EXPECT_TRUE(closed.root["send_lag_us"].is_null());
    const LatencyHistogram nothing;
    ParsedJson empty;
    ASSERT_TRUE(
        parse_json_of({.options = &options, .stats = &stats, .send_lag_ns = &nothing}, &empty));
    EXPECT_TRUE(empty.root["send_lag_us"].is_null());
}

// Operations go unsent when the window stays full: the server was slow, or the client thread
// that should read its replies and send more was busy all the time.
TEST(Report, TheUnsentWarningBlamesTheClientOnlyWhenAClientThreadWasBusyThroughout) {
    const BenchOptions options = sample_options();
    const RunStats stats = sample_stats();
    RunSummary summary{.options = &options,
                       .stats = &stats,
                       .elapsed_s = 2.0,
                       .unsent_due_ops = 10,
                       .client_busy = 0.35};
    std::string table = format_table(summary);
    EXPECT_NE(table.find("the server did not keep up with --rate (the busiest client thread was "
                         "busy 35% of the run)"),
              std::string::npos)
        << table;
    summary.client_busy = 0.97;
    table = format_table(summary);
    EXPECT_NE(table.find("a client thread was busy 97% of the run, so jifen-bench itself did not "
                         "keep up"),
              std::string::npos)
        << table;
    EXPECT_EQ(table.find("the server did not keep up"), std::string::npos) << table;
    ParsedJson report;
    ASSERT_TRUE(parse_json_of(summary, &report));
    const simdjson::dom::element& root = report.root;
    EXPECT_DOUBLE_EQ(double(root["client_busy"]), 0.97);
}

TEST(Report, TransfersSayWhichScopeWasAskedForAndHowManyCrossedShards) {
    BenchOptions options = sample_options();
    options.mix_text = "earn=70,redeem=20,transfer=10";
    options.transfers_text = "cross-shard";
    resolve_fields(&options);
    RunStats stats = sample_stats();
    RunStats more;
    for (int transfer = 0; transfer < 4; ++transfer) {
        more.record(OpKind::transfer, Result::ok, 1'000);
    }
    more.cross_shard_transfers = 3;
    stats.merge(more);
    const RunSummary summary{.options = &options, .stats = &stats, .elapsed_s = 2.0};
    const std::string table = format_table(summary);
    EXPECT_NE(table.find("transfers cross-shard: 3 of 4 crossed shards"), std::string::npos)
        << table;
    ParsedJson report;
    ASSERT_TRUE(parse_json_of(summary, &report));
    const simdjson::dom::element& root = report.root;
    EXPECT_EQ(uint64_t(root["cross_shard_transfers"]), 3u);
    EXPECT_EQ(std::string_view(root["config"]["transfers"]), "cross-shard");
}

TEST(Report, AClosedLoopSaysItHasNoBurstsWhenBurstsWereAskedFor) {
    BenchOptions options = sample_options();
    options.burst = BurstShape{.factor = 3.0, .burst_ms = 200, .period_ms = 1'000};
    const RunStats stats = sample_stats();
    const RunSummary summary{.options = &options, .stats = &stats, .elapsed_s = 2.0};
    EXPECT_NE(format_table(summary).find("closed loop (no bursts: they need --rate)"),
              std::string::npos);
    options.rate = 1'000;
    EXPECT_NE(format_table(summary).find("open loop at 1000 ops/s with bursts"), std::string::npos);
}

TEST(Report, TheWarmUpIsLeftOutOfTheFiguresButItsErrorsAreReported) {
    BenchOptions options = sample_options();
    options.warmup_s = 2;
    const RunStats stats = sample_stats();
    RunStats warmup;
    warmup.record(OpKind::earn, Result::ok, 1'000);
    warmup.record(OpKind::earn, Result::member_not_found, 1'000);
    warmup.record_failure(OpKind::earn, ClientFailure::closed);
    const RunSummary summary{
        .options = &options, .stats = &stats, .warmup = &warmup, .elapsed_s = 2.0};
    const std::string table = format_table(summary);
    EXPECT_NE(table.find("warm-up 2 s, left out of the figures: 2 operations, errors 2 "
                         "(unexpected 2)"),
              std::string::npos)
        << table;
    ParsedJson report;
    ASSERT_TRUE(parse_json_of(summary, &report));
    const simdjson::dom::element& root = report.root;
    EXPECT_EQ(uint64_t(root["ops"]), 1'004u);
    EXPECT_EQ(uint64_t(root["warmup"]["ops"]), 2u);
    EXPECT_EQ(uint64_t(root["warmup"]["failed"]), 1u);
    EXPECT_EQ(uint64_t(root["warmup"]["unexpected"]), 2u);
    EXPECT_EQ(uint64_t(root["warmup"]["errors_by_result"]["member_not_found"]), 1u);
    EXPECT_EQ(uint64_t(root["warmup"]["errors_by_result"]["client_closed"]), 1u);

    ParsedJson without;
    ASSERT_TRUE(parse_json_of({.options = &options, .stats = &stats, .elapsed_s = 2.0}, &without));
    EXPECT_TRUE(without.root["warmup"].is_null());
}

TEST(Report, ARunThatEndedDuringTheWarmUpMeasuredNothingAndSaysSo) {
    BenchOptions options = sample_options();
    options.warmup_s = 2;
    const RunStats nothing;
    RunStats warmup;
    warmup.record_n(OpKind::earn, Result::ok, 1'000, 512);
    const RunSummary summary{.options = &options, .stats = &nothing, .warmup = &warmup};
    EXPECT_NE(format_table(summary).find("the run ended during the warm-up"), std::string::npos);
    ParsedJson report;
    ASSERT_TRUE(parse_json_of(summary, &report));
    const simdjson::dom::element& root = report.root;
    EXPECT_EQ(uint64_t(root["ops"]), 0u);
    EXPECT_EQ(uint64_t(root["warmup"]["ops"]), 512u);
}

TEST(Report, JsonStringsEscapeQuotesBackslashesAndControlCharacters) {
    std::string out;
    append_json_string(&out, "a\"b\\c\nd\x01");
    EXPECT_EQ(out, R"("a\"b\\c\nd\u0001")");
}

TEST(Report, TheTableHasARowForEveryKindThatRanAndNamesItsRefusals) {
    const BenchOptions options = sample_options();
    const RunStats stats = sample_stats();
    const std::string table =
        format_table({.options = &options, .stats = &stats, .elapsed_s = 2.0});
    EXPECT_NE(table.find("earn"), std::string::npos);
    EXPECT_NE(table.find("insufficient_points=2"), std::string::npos);
    EXPECT_NE(table.find("client_timeout=1"), std::string::npos);
    EXPECT_EQ(table.find("hold "), std::string::npos) << "no hold ran";
    EXPECT_NE(table.find("1004 operations"), std::string::npos);
    EXPECT_NE(table.find("1 of them failed without an answer"), std::string::npos) << table;
}

TEST(Report, TheProgressLineShowsRateAndUnexpectedErrors) {
    const RunStats stats = sample_stats();
    const std::string line = format_progress(3.0, stats, 1.0);
    EXPECT_NE(line.find("1004 ops/s"), std::string::npos) << line;
    EXPECT_NE(line.find("unexpected 2"), std::string::npos) << line;
}

// The main thread may wake late, and the last interval of a run is usually partial.
TEST(Report, AProgressLineDividesByTheIntervalsRealLength) {
    const RunStats stats = sample_stats();  // 1,004 operations.
    const std::string late = format_progress(3.02, stats, 1.25);
    EXPECT_NE(late.find("   3.0s"), std::string::npos) << late;
    EXPECT_NE(late.find(" 803 ops/s"), std::string::npos) << late;
    const std::string last = format_progress(6.4, stats, 0.4);
    EXPECT_NE(last.find("   6.4s"), std::string::npos) << last;
    EXPECT_NE(last.find(" 2510 ops/s"), std::string::npos) << last;
}

TEST(Report, AProgressLineWithoutRepliesShowsNoLatencyRatherThanZero) {
    const std::string line = format_progress(4.0, RunStats{}, 1.0);
    EXPECT_NE(line.find("p99           -"), std::string::npos) << line;
    EXPECT_EQ(line.find("0.0us"), std::string::npos) << line;
}

TEST(Report, TheJsonDurationKeepsMicrosecondsAndSaysWhetherTheRunWasInterrupted) {
    const BenchOptions options = sample_options();
    const RunStats stats = sample_stats();
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    const std::string short_run =
        format_json({.options = &options, .stats = &stats, .elapsed_s = 0.000123});
    ASSERT_EQ(parser.parse(short_run).get(root), simdjson::SUCCESS) << short_run;
    EXPECT_DOUBLE_EQ(double(root["duration_s"]), 0.000123);
    EXPECT_FALSE(bool(root["interrupted"]));

    const RunSummary interrupted{
        .options = &options, .stats = &stats, .elapsed_s = 1.0, .stop_signal = SIGINT};
    const std::string json = format_json(interrupted);
    ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
    EXPECT_TRUE(bool(root["interrupted"]));
    EXPECT_NE(format_table(interrupted).find("INTERRUPTED by SIGINT"), std::string::npos);
    EXPECT_EQ(
        format_table({.options = &options, .stats = &stats, .elapsed_s = 1.0}).find("INTERRUPTED"),
        std::string::npos);
}

}  // namespace
}  // namespace jifen::bench
