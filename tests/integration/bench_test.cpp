// jifen-bench against a real jifend: the operations it reports are exactly those it was asked
// for, each outcome is counted under its result code, and a server it cannot reach fails the run.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/jifend_process.hpp"
#include "tests/self_signed.hpp"

namespace jifen::testing {
namespace {

struct BenchRun {
    int exit_code = -1;
    std::string json;  // The last line of stdout: the --json report.
};

// stderr (progress lines, the table) goes to `stderr_path`.
BenchRun run_bench(uint16_t port, const std::string& args,
                   const std::filesystem::path& stderr_path = "/dev/null") {
    const std::string command = std::string(JIFEN_BENCH_PATH) + " --port " + std::to_string(port) +
                                " --json " + args + " 2>" + stderr_path.string();
    BenchRun run;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return run;
    }
    std::string out;
    char buffer[4096];
    while (const size_t read = std::fread(buffer, 1, sizeof(buffer), pipe)) {
        out.append(buffer, read);
    }
    const int status = pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    while (!out.empty() && out.back() == '\n') {
        out.pop_back();
    }
    run.json = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    return run;
}

// run_bench on another thread, for a test that acts on the server while the load runs.
std::future<BenchRun> start_bench(uint16_t port, const std::string& args) {
    return std::async(std::launch::async, [port, args] { return run_bench(port, args); });
}

int64_t number_at(const simdjson::dom::element& report, std::string_view pointer) {
    int64_t value = -1;
    EXPECT_EQ(report.at_pointer(pointer).get(value), simdjson::SUCCESS) << pointer;
    return value;
}

class Bench : public ::testing::Test {
protected:
    void SetUp() override { server_.start(); }

    simdjson::dom::element report(const BenchRun& run) {
        simdjson::dom::element element;
        EXPECT_EQ(parser_.parse(run.json).get(element), simdjson::SUCCESS) << run.json;
        return element;
    }

    TempDir dir_;
    JifendProcess server_{dir_.path() / "data"};
    simdjson::dom::parser parser_;
};

TEST_F(Bench, ClosedLoopReportsExactlyTheOperationsAskedFor) {
    // An operation count that no batch or connection divides: the last frames are partial.
    const BenchRun run = run_bench(server_.port(),
                                   "--members 500 --enroll --mix earn=1 -c 3 --batch 32 "
                                   "--pipeline 4 -n 10001");
    ASSERT_EQ(run.exit_code, 0) << run.json;
    const simdjson::dom::element result = report(run);
    EXPECT_EQ(number_at(result, "/ops"), 10001);
    EXPECT_EQ(number_at(result, "/per_op/earn/ok"), 10001);
    EXPECT_EQ(number_at(result, "/errors"), 0);
}

TEST_F(Bench, EachOutcomeIsCountedUnderItsResult) {
    // No member has points: every redeem is refused with insufficient_points, which a redeem
    // may expect, so the run still succeeds.
    const BenchRun run = run_bench(server_.port(),
                                   "--members 200 --enroll --initial-points 0 --mix redeem=1 "
                                   "-c 2 --batch 16 --pipeline 4 -n 3000");
    ASSERT_EQ(run.exit_code, 0) << run.json;
    const simdjson::dom::element result = report(run);
    EXPECT_EQ(number_at(result, "/ops"), 3000);
    EXPECT_EQ(number_at(result, "/errors"), 3000);
    EXPECT_EQ(number_at(result, "/unexpected"), 0);
    EXPECT_EQ(number_at(result, "/errors_by_result/insufficient_points"), 3000);
}

TEST_F(Bench, AServerItCannotReachFailsTheRun) {
    const uint16_t port = server_.port();
    server_.stop(SIGTERM);
    const BenchRun run = run_bench(port, "--members 10 --mix earn=1 -n 10");
    EXPECT_EQ(run.exit_code, 2);
    // With --json, stdout still carries one JSON line: the error.
    simdjson::dom::parser parser;
    simdjson::dom::element report;
    ASSERT_EQ(parser.parse(run.json).get(report), simdjson::SUCCESS) << run.json;
    std::string_view error;
    EXPECT_EQ(report["error"].get(error), simdjson::SUCCESS) << run.json;
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(number_at(report, "/exit_code"), 2);
}

TEST_F(Bench, AWrongCommandLineExitsTwoBeforeTouchingTheServer) {
    // Flags CLI11 refuses and flags jifen-bench refuses itself: one exit code for both.
    for (const char* args :
         {"--members 0", "--bogus", "-c abc", "-d 0", "--rate 0", "--scenario black-friday"}) {
        EXPECT_EQ(run_bench(server_.port(), args).exit_code, 2) << args;
    }
}

TEST_F(Bench, UnexpectedFailuresDuringTheWarmUpFailTheRunButStayOutOfTheFigures) {
    ASSERT_EQ(run_bench(server_.port(), "--members 1000 --enroll --mix balance=1 -n 1").exit_code,
              0);
    // Members 1001..2000 do not exist yet: about half of the warm-up's earns are refused with
    // member_not_found, until they are enrolled a second into its three.
    auto load =
        start_bench(server_.port(), "--members 2000 --mix earn=1 --rate 500 -c 1 --warmup 3 -d 1");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ASSERT_EQ(run_bench(server_.port(), "--members 2000 --enroll --mix balance=1 -n 1").exit_code,
              0);
    const BenchRun run = load.get();
    EXPECT_EQ(run.exit_code, 1) << run.json;
    const simdjson::dom::element result = report(run);
    EXPECT_GT(number_at(result, "/warmup/unexpected"), 0);
    EXPECT_GT(number_at(result, "/warmup/errors_by_result/member_not_found"), 0);
    EXPECT_EQ(number_at(result, "/unexpected"), 0);
    // One second at 500 a second, after the warm-up; an operation due right on the warm-up's end
    // may fall on either side of it (CI saw 501 once).
    const int64_t ops = number_at(result, "/ops");
    EXPECT_GE(ops, 499);
    EXPECT_LE(ops, 501);
}

TEST_F(Bench, OperationsCutOffByALostServerAreFailuresNotOperations) {
    auto load = start_bench(server_.port(), "--members 500 --enroll --mix earn=1 -c 2 -d 10");
    std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
    server_.stop(SIGKILL);
    const BenchRun run = load.get();
    EXPECT_EQ(run.exit_code, 1) << run.json;
    const simdjson::dom::element result = report(run);
    const int64_t failed = number_at(result, "/failed");
    EXPECT_GT(failed, 0);
    EXPECT_EQ(number_at(result, "/errors_by_result/client_closed"), failed);
    EXPECT_EQ(number_at(result, "/errors"), failed);
    // Every operation counted got an answer, and every answer was ok.
    EXPECT_EQ(number_at(result, "/ops"), number_at(result, "/per_op/earn/ok"));
    EXPECT_EQ(number_at(result, "/per_op/earn/failed"), failed);
}

TEST_F(Bench, AnOpenLoopWithAQuietTailReportsTheRateOverTheWholeRun) {
    // Each second's 5,000 operations go out in its first half (2x the rate for 500 ms, then
    // nothing): the last completes near 1.5 s of a 2 s run.
    const BenchRun run = run_bench(server_.port(),
                                   "--members 500 --enroll --mix earn=1 -c 2 --rate 5000 -d 2 "
                                   "--burst-factor 2 --burst-ms 500 --burst-period-ms 1000");
    ASSERT_EQ(run.exit_code, 0) << run.json;
    const simdjson::dom::element result = report(run);
    EXPECT_EQ(number_at(result, "/ops"), 10'000);
    double duration_s = 0;
    double ops_per_sec = 0;
    ASSERT_EQ(result["duration_s"].get(duration_s), simdjson::SUCCESS);
    ASSERT_EQ(result["ops_per_sec"].get(ops_per_sec), simdjson::SUCCESS);
    EXPECT_GE(duration_s, 2.0) << run.json;
    EXPECT_LE(ops_per_sec, 5'000.0) << run.json;
}

TEST_F(Bench, TheLastPartialSecondGetsAProgressLineWithTheRateOverItsLength) {
    const std::filesystem::path err = dir_.path() / "bench.err";
    const BenchRun run = run_bench(
        server_.port(), "--members 500 --enroll --mix earn=1 -c 1 --rate 1000 -d 2.5", err);
    ASSERT_EQ(run.exit_code, 0) << run.json;
    std::ifstream lines(err);
    const std::regex progress_line(R"(^ *([0-9.]+)s +([0-9]+) ops/s .*)");
    std::vector<std::pair<double, double>> progress;  // (at s, ops/s)
    for (std::string line; std::getline(lines, line);) {
        if (std::smatch match; std::regex_match(line, match, progress_line)) {
            progress.emplace_back(std::stod(match[1]), std::stod(match[2]));
        }
    }
    ASSERT_EQ(progress.size(), 3u) << "1 s, 2 s and the last half second";
    EXPECT_GE(progress.back().first, 2.5);
    // 500 operations over about half a second, not over a whole one.
    EXPECT_GT(progress.back().second, 700.0);
    EXPECT_LT(progress.back().second, 1'100.0);
}

// One operation in flight cannot carry ten million a second: most fall due and are never sent.
// The latencies leave those out, so the run must not pass as if it had kept the rate.
TEST_F(Bench, AnOpenLoopThatCouldNotSendWhatFellDueFailsTheRun) {
    const BenchRun run = run_bench(server_.port(),
                                   "--members 500 --enroll --mix earn=1 -c 1 --pipeline 1 "
                                   "--batch 1 --rate 10000000 -d 1");
    EXPECT_EQ(run.exit_code, 1) << run.json;
    const simdjson::dom::element result = report(run);
    EXPECT_GT(number_at(result, "/unsent_due"), 1'000'000);
    EXPECT_EQ(number_at(result, "/unexpected"), 0);
}

// Over TLS, as a deployment with --tls-cert runs: the same counts, and the report says so.
TEST(BenchTls, RunsOverTlsWithTheServersCertificate) {
    TempDir dir;
    write_self_signed(dir.path());
    JifendProcess server(dir.path() / "data", 2,
                         {"--tls-cert", (dir.path() / "cert.pem").string(), "--tls-key",
                          (dir.path() / "key.pem").string()});
    server.start();
    const BenchRun run =
        run_bench(server.port(), "--tls --ca-file " + (dir.path() / "cert.pem").string() +
                                     " --members 100 --enroll --mix earn=1 -c 2 -n 500");
    ASSERT_EQ(run.exit_code, 0) << run.json;
    simdjson::dom::parser parser;
    simdjson::dom::element result;
    ASSERT_EQ(parser.parse(run.json).get(result), simdjson::SUCCESS) << run.json;
    EXPECT_EQ(number_at(result, "/ops"), 500);
    EXPECT_EQ(number_at(result, "/per_op/earn/ok"), 500);
    bool tls = false;
    EXPECT_EQ(result.at_pointer("/config/tls").get(tls), simdjson::SUCCESS);
    EXPECT_TRUE(tls);
    // Without --tls the same server is not spoken to: a clear failure, not a hang.
    EXPECT_EQ(run_bench(server.port(), "--members 10 --mix earn=1 -n 10").exit_code, 2);
}

}  // namespace
}  // namespace jifen::testing
