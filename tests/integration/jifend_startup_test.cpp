// jifend's own command line and start-up refusals: exit code 2 for a wrong command line, 1 for a
// server that cannot start, and a port already served by another jifend refused rather than
// shared (docs/operations.md, "Signals, shutdown and exit codes").
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/jifend_process.hpp"

namespace jifen::testing {
namespace {

TEST(JifendStartup, ASecondServerOnTheSamePortIsRefusedNotJoined) {
    TempDir first_dir;
    JifendProcess first(first_dir.path() / "data", 2);
    first.start();
    TempDir second_dir;
    // The shards' listeners use SO_REUSEPORT; without the check the second process would join
    // the port and take some of the first one's connections.
    const CliResult second = run_jifend({"--data-dir", (second_dir.path() / "data").string(),
                                         "--port", std::to_string(first.port()), "--http-port",
                                         std::to_string(free_port()), "--log-level", "warn"});
    EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
    EXPECT_NE((second.out + second.err)
                  .find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << second.out << second.err;
    EXPECT_FALSE(std::filesystem::exists(second_dir.path() / "data" / "jifen.lmdb"));
    EXPECT_TRUE(first.running());
}

TEST(JifendStartup, ATakenHttpPortIsRefusedBeforeTheDataDirectoryIsCreated) {
    TempDir first_dir;
    JifendProcess first(first_dir.path() / "data", 2);
    first.start();
    TempDir second_dir;
    const CliResult second = run_jifend({"--data-dir", (second_dir.path() / "data").string(),
                                         "--port", std::to_string(free_port()), "--http-port",
                                         std::to_string(first.http_port()), "--log-level", "warn"});
    EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
    EXPECT_NE((second.out + second.err)
                  .find("cannot listen on 127.0.0.1:" + std::to_string(first.http_port())),
              std::string::npos)
        << second.out << second.err;
    EXPECT_FALSE(std::filesystem::exists(second_dir.path() / "data" / "jifen.lmdb"));
    EXPECT_TRUE(first.running());
}

TEST(JifendStartup, SighupIsIgnoredWithAWarningAndTheServerGoesOnServing) {
    TempDir dir;
    JifendProcess server(dir.path() / "data", 1);
    server.start();
    server.send_signal(SIGHUP);
    // The warning is logged once the signal is handled; the server answers meanwhile.
    for (int attempt = 0; attempt < 100 && server.log().find("SIGHUP ignored") == std::string::npos;
         ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(server.log().find("SIGHUP ignored"), std::string::npos) << server.log();
    const CliResult ping = run_cli(server.port(), {"ping"});
    EXPECT_EQ(ping.exit_code, 0) << ping.out << ping.err;
    const int status = server.stop(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(JifendStartup, AWrongCommandLineExitsTwoNamingTheFlag) {
    for (const auto& [args, named] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--port", "70000"}, "--port"},
             {{"--durability", "bogus"}, "--durability"},
             {{"--shards", "abc"}, "--shards"},
             // Empty: CLI11 alone would read 0 (a random port, one shard per core).
             {{"--port", ""}, "--port"},
             {{"--http-port", ""}, "--http-port"},
             {{"--shards", ""}, "--shards"},
             {{"--shard-threads", ""}, "--shard-threads"},
             {{"--no-such-flag"}, "--no-such-flag"},
             {{"--hash-key", ""}, "--hash-key"},
             {{"--hash-key", std::string(65, 'a')}, "--hash-key"}}) {
        const CliResult run = run_jifend(args);
        EXPECT_EQ(run.exit_code, 2) << args[0] << ": " << run.out << run.err;
        EXPECT_NE(run.err.find(named), std::string::npos) << run.err;
    }
}

TEST(JifendStartup, AStartThatFailsSaysWhyOnStderrWhateverTheLogLevel) {
    TempDir dir;
    std::filesystem::create_directories(dir.path() / "data");
    {
        std::ofstream foreign(dir.path() / "data" / "jifen.lmdb");
        foreign << "not a ledger";
    }
    const CliResult run = run_jifend({"--data-dir", (dir.path() / "data").string(), "--port",
                                      std::to_string(free_port()), "--http-port",
                                      std::to_string(free_port()), "--log-level", "off"});
    EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
    EXPECT_NE(run.err.find("cannot open the data directory"), std::string::npos) << run.err;
}

TEST(JifendStartup, HashKeyPrintsTheSecretsSha256AndExits) {
    const CliResult run = run_jifend({"--hash-key", "abc"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
}

TEST(JifendStartup, HelpExitsZero) {
    const CliResult run = run_jifend({"--help"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find("--hash-key"), std::string::npos);
}

}  // namespace
}  // namespace jifen::testing
