// The jifen CLI against a real jifend: every command, its exit codes, its readable and --json
// output, and input checks that never reach the server.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <regex>

#include "client/client.hpp"
#include "client/txn_id.hpp"
#include "protocol/result.hpp"
#include "protocol/wire.hpp"
#include "tests/integration/jifend_process.hpp"

namespace jifen::testing {
namespace {

class Cli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir();
        server_ = new JifendProcess(dir_->path() / "data");
        server_->start();
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    static CliResult run(const std::vector<std::string>& args, const std::string& key = "") {
        return run_cli(server_->port(), args, key);
    }

    // A refusal exits 1 naming the result, readable and as JSON (with its code).
    static void expect_refused(const std::vector<std::string>& args, Result result) {
        const CliResult refused = run(args);
        EXPECT_EQ(refused.exit_code, 1);
        EXPECT_NE(refused.err.find(to_string(result)), std::string::npos) << refused.err;
        const auto json = run_json(args, 1);
        EXPECT_EQ(text(json, "result"), to_string(result));
        EXPECT_EQ(number(json, "code"), static_cast<int64_t>(result));
    }

    // Runs with --json, expects exit 0 and exactly one JSON object; returns the parsed object.
    static simdjson::dom::object run_json(const std::vector<std::string>& args,
                                          int exit_code_expected = 0, const std::string& key = "") {
        std::vector<std::string> with_json = {"--json"};
        with_json.insert(with_json.end(), args.begin(), args.end());
        const CliResult result = run(with_json, key);
        EXPECT_EQ(result.exit_code, exit_code_expected) << result.out << result.err;
        return one_object(result);
    }

    // The output's one JSON object (a test failure when stdout is not exactly one object).
    static simdjson::dom::object one_object(const CliResult& result) {
        documents_.push_back(std::make_unique<simdjson::dom::parser>());
        simdjson::dom::element element;
        const auto error = documents_.back()->parse(result.out).get(element);
        EXPECT_EQ(error, simdjson::SUCCESS) << "not one JSON document: " << result.out;
        simdjson::dom::object object;
        EXPECT_EQ(element.get(object), simdjson::SUCCESS) << result.out;
        return object;
    }

    static int64_t number(simdjson::dom::object object, const char* key) {
        int64_t value = 0;
        EXPECT_EQ(object[key].get(value), simdjson::SUCCESS) << key;
        return value;
    }

    static std::string text(simdjson::dom::object object, const char* key) {
        std::string_view value;
        EXPECT_EQ(object[key].get(value), simdjson::SUCCESS) << key;
        return std::string(value);
    }

    static std::string fresh_member() { return std::to_string(next_member_++); }

    static inline TempDir* dir_ = nullptr;
    static inline JifendProcess* server_ = nullptr;
    static inline uint64_t next_member_ = 5'000;
    static inline std::vector<std::unique_ptr<simdjson::dom::parser>> documents_;
};

TEST_F(Cli, EveryCommandWorksAndBalanceJsonHasTheDocumentedFields) {
    const std::string alice = fresh_member();
    const std::string bob = fresh_member();
    EXPECT_EQ(
        text(run_json({"enroll", alice, "--birthday", "1990-07-15", "--tier", "2"}), "result"),
        "ok");
    EXPECT_EQ(run({"enroll", bob}).exit_code, 0);

    const auto earned = run_json({"earn", alice, "1000", "--store", "3", "--order", "99"});
    EXPECT_EQ(number(earned, "available"), 1'000);
    const std::string earn_txn = text(earned, "txn_id");
    EXPECT_TRUE(client::parse_txn_id(earn_txn).has_value()) << earn_txn;

    EXPECT_EQ(number(run_json({"earn", alice, "40", "--pending-seconds", "3600"}), "pending"), 40);
    EXPECT_EQ(number(run_json({"redeem", alice, "100"}), "available"), 900);

    const auto held = run_json({"hold", alice, "300", "--ttl", "600"});
    const std::string hold_id = text(held, "hold_id");
    EXPECT_EQ(hold_id, text(held, "txn_id"));
    EXPECT_EQ(number(held, "held"), 300);
    EXPECT_EQ(number(run_json({"capture", hold_id, "100"}), "points"), 100);

    const auto second_hold = run_json({"hold", alice, "50"});
    EXPECT_EQ(number(run_json({"release", text(second_hold, "hold_id")}), "held"), 0);

    EXPECT_EQ(number(run_json({"transfer", alice, bob, "200"}), "available"), 600);
    EXPECT_EQ(run({"adjust", bob, "10"}).exit_code, 0);
    EXPECT_EQ(run({"adjust", bob, "5", "--debit"}).exit_code, 0);

    const auto reversed = run_json({"reverse", earn_txn});
    EXPECT_EQ(number(reversed, "points") + number(reversed, "shortfall"), 1'000);

    const auto balance = run_json({"balance", bob});
    EXPECT_EQ(text(balance, "result"), "ok");
    EXPECT_EQ(number(balance, "member"), std::stoll(bob));
    EXPECT_EQ(number(balance, "available"), 205);
    EXPECT_EQ(number(balance, "held"), 0);
    EXPECT_EQ(number(balance, "pending"), 0);
    EXPECT_EQ(number(balance, "tier"), 0);
    EXPECT_GE(number(balance, "lifetime_earned"), 0);
    EXPECT_EQ(number(balance, "lifetime_redeemed"), 0);

    const auto alice_balance = run_json({"balance", alice});
    EXPECT_EQ(number(alice_balance, "tier"), 2);
    EXPECT_EQ(text(alice_balance, "birthday"), "1990-07-15");
    EXPECT_EQ(number(alice_balance, "pending"), 40);

    EXPECT_EQ(text(run_json({"freeze", alice}), "result"), "ok");
    EXPECT_EQ(text(run_json({"balance", alice}), "status"), "frozen");
    EXPECT_EQ(number(run_json({"balance", alice}), "tier"), 2) << "freeze keeps the tier";
    const CliResult frozen = run({"earn", alice, "1"});
    EXPECT_EQ(frozen.exit_code, 1);
    EXPECT_NE(frozen.err.find("member_frozen"), std::string::npos) << frozen.err;
    EXPECT_EQ(run({"unfreeze", alice}).exit_code, 0);
    EXPECT_EQ(run({"earn", alice, "1"}).exit_code, 0);

    const auto history = run_json({"history", alice, "--limit", "3"});
    simdjson::dom::array entries;
    ASSERT_EQ(history["entries"].get(entries), simdjson::SUCCESS);
    EXPECT_EQ(entries.size(), 3u);
    EXPECT_GT(number(history, "next_before_seq"), 0);
    const auto older = run_json(
        {"history", alice, "--before", std::to_string(number(history, "next_before_seq"))});
    simdjson::dom::array older_entries;
    ASSERT_EQ(older["entries"].get(older_entries), simdjson::SUCCESS);
    EXPECT_GT(older_entries.size(), 3u);

    bool audit_ok = false;
    EXPECT_EQ(run_json({"audit"})["ok"].get(audit_ok), simdjson::SUCCESS);
    EXPECT_TRUE(audit_ok);
    EXPECT_EQ(number(run_json({"stats"}), "shard_count"), 2);
    EXPECT_GT(number(run_json({"ping"}), "server_time_us"), 0);
}

TEST_F(Cli, ReadableOutputPrintsTheTxnIdForSafeRetries) {
    const std::string member = fresh_member();
    ASSERT_EQ(run({"enroll", member}).exit_code, 0);
    const CliResult earned = run({"earn", member, "25"});
    ASSERT_EQ(earned.exit_code, 0) << earned.err;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(earned.out, match, std::regex("txn ([0-9a-f]{32})")))
        << earned.out;
    const std::string txn = match[1];
    const CliResult retried = run({"earn", member, "25", "--txn", txn});
    EXPECT_EQ(retried.exit_code, 0);
    EXPECT_NE(retried.out.find("replayed"), std::string::npos) << retried.out;
    const CliResult balance = run({"balance", member});
    EXPECT_NE(balance.out.find("available 25\n"), std::string::npos) << balance.out;
    const CliResult conflict = run({"earn", member, "26", "--txn", txn});
    EXPECT_EQ(conflict.exit_code, 1);
    EXPECT_NE(conflict.err.find("id_conflict"), std::string::npos) << conflict.err;
}

TEST_F(Cli, ARefusedOperationExitsOneAndNamesTheResult) {
    const std::string member = fresh_member();
    ASSERT_EQ(run({"enroll", member}).exit_code, 0);
    expect_refused({"redeem", member, "5"}, Result::insufficient_points);
    const CliResult missing = run({"balance", "999999999"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("member_not_found"), std::string::npos) << missing.err;
    const auto missing_json = run_json({"balance", "999999999"}, 1);
    EXPECT_EQ(text(missing_json, "result"), "member_not_found");
    EXPECT_EQ(missing_json["status"].error(), simdjson::NO_SUCH_FIELD)
        << "no member, so no status to report";
}

TEST_F(Cli, AHoldPastTheMembersOpenHoldLimitNamesMemberHoldLimit) {
    const std::string member = fresh_member();
    ASSERT_EQ(run({"enroll", member}).exit_code, 0);
    ASSERT_EQ(run({"earn", member, "5000"}).exit_code, 0);
    // The embedded default's 1000 open holds, through the library in one frame.
    client::Client library(server_->options());
    library.connect();
    std::vector<protocol::Operation> holds(1'000, client::make_hold(std::stoull(member), 1));
    for (const auto& reply : library.submit(protocol::Opcode::hold, holds)) {
        ASSERT_EQ(static_cast<Result>(reply.result), Result::ok);
    }
    expect_refused({"hold", member, "1"}, Result::member_hold_limit);
}

TEST_F(Cli, APendingEarnPastTheMembersPendingLotLimitNamesMemberLotLimit) {
    const std::string member = fresh_member();
    ASSERT_EQ(run({"enroll", member}).exit_code, 0);
    // The embedded default's 1000 pending lots (each its own release time), through the library
    // in one frame; pending for over an hour, so none comes due on a slow machine (the server's
    // clock is the wall clock).
    client::Client library(server_->options());
    library.connect();
    std::vector<protocol::Operation> earns;
    for (uint64_t i = 1; i <= 1'000; ++i) {
        earns.push_back(client::make_earn(std::stoull(member), 1, (3'600 + i) * 1'000'000));
    }
    for (const auto& reply : library.submit(protocol::Opcode::earn, earns)) {
        ASSERT_EQ(static_cast<Result>(reply.result), Result::ok);
    }
    expect_refused({"earn", member, "1", "--pending-seconds", "5000"}, Result::member_lot_limit);
}

TEST_F(Cli, ATransferRefusedOnTheReceiversShardSaysItsIdIsUsed) {
    const std::string sender = fresh_member();
    std::string receiver = fresh_member();
    while (protocol::shard_of(std::stoull(receiver), 2) ==
           protocol::shard_of(std::stoull(sender), 2)) {
        receiver = fresh_member();
    }
    ASSERT_EQ(run({"enroll", sender}).exit_code, 0);
    ASSERT_EQ(run({"earn", sender, "10"}).exit_code, 0);
    ASSERT_EQ(run({"enroll", receiver}).exit_code, 0);
    ASSERT_EQ(run({"freeze", receiver}).exit_code, 0);
    // Debited on the sender's shard, refused on the receiver's, refunded: the id is used.
    const CliResult refused = run({"transfer", sender, receiver, "3"});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("member_frozen"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("this txn id is used"), std::string::npos) << refused.err;
}

TEST_F(Cli, APosKeyFromTheEnvironmentIsForbiddenToReverse) {
    const std::string member = fresh_member();
    ASSERT_EQ(run({"enroll", member}).exit_code, 0);
    const CliResult earned = run({"--json", "earn", member, "5"}, "dev-pos-key");
    ASSERT_EQ(earned.exit_code, 0) << earned.err;
    const CliResult reversed = run({"reverse", "0123456789abcdef0123456789abcdef"}, "dev-pos-key");
    EXPECT_EQ(reversed.exit_code, 1);
    EXPECT_NE(reversed.err.find("forbidden"), std::string::npos) << reversed.err;
    const CliResult wrong_key = run({"ping"}, "no-such-key");
    EXPECT_EQ(wrong_key.exit_code, 1);
    EXPECT_NE(wrong_key.err.find("auth_failed"), std::string::npos) << wrong_key.err;
}

TEST_F(Cli, BadInputExitsTwoWithAClearMessage) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"earn", "alice", "10"}, "MEMBER"},
        {{"earn", "12", "-10"}, "positive"},
        {{"earn", "12", "ten"}, "POINTS"},
        {{"earn", "0", "10"}, "MEMBER"},
        {{"enroll", "12", "--birthday", "1990-02-30"}, "calendar"},
        {{"enroll", "12", "--birthday", "15/07/1990"}, "YYYY-MM-DD"},
        {{"enroll", "12", "--birthday", "1899-12-31"}, "before 1900-01-01"},
        {{"--timeout-ms", "0", "ping"}, "--timeout-ms"},
        {{"capture", "not-hex"}, "32 hex digits"},
        {{"earn", "12", "10", "--txn", "abc"}, "32 hex digits"},
        {{"transfer", "12", "12", "5"}, "different"},
        {{"history", "12", "--limit", "5000"}, "--limit"},
        {{"frobnicate"}, ""},
        {{}, ""},
    };
    for (const auto& [args, message] : cases) {
        const CliResult result = run(args);
        EXPECT_EQ(result.exit_code, 2) << args.size() << " " << result.err;
        EXPECT_NE(result.err.find(message), std::string::npos) << result.err;
        EXPECT_TRUE(result.out.empty()) << result.out;
    }
}

TEST_F(Cli, WithJsonBadInputPrintsOneUsageObjectAndExitsTwo) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--json", "earn", "42", "0"}, "at least 1"},
        {{"--json", "transfer", "42", "42", "50"}, "different"},
        {{"earn", "alice", "10", "--json"}, "MEMBER"},
        {{"--json", "enroll", "12", "--birthday", "1990-02-30"}, "calendar"},
        {{"--json", "capture", "not-hex"}, "32 hex digits"},
        {{"--json", "history", "12", "--limit", "5000"}, "--limit"},
        {{"--json", "--key", std::string(65, 'k'), "ping"}, "64 bytes"},
        {{"--json", "frobnicate"}, "subcommand"},
        {{"--json", "earn", "12"}, "POINTS"},
        {{"--json"}, "subcommand"},
        // Unsigned options: CLI11 alone would wrap these around.
        {{"--json", "earn", "12", "5", "--order", "-1"}, "non-negative whole number"},
        {{"--json", "earn", "12", "5", "--order", "18446744073709551616"}, "at most"},
        {{"--json", "history", "12", "--before", "-1"}, "non-negative whole number"},
        {{"--json", "hold", "12", "5", "--ttl", "-1"}, "non-negative whole number"},
        {{"--json", "earn", "12", "5", "--pending-seconds", "-1"}, "non-negative whole number"},
    };
    for (const auto& [args, message] : cases) {
        const CliResult result = run(args);
        EXPECT_EQ(result.exit_code, 2) << args[1] << " " << result.err;
        const auto object = one_object(result);
        EXPECT_EQ(text(object, "result"), "usage") << result.out;
        EXPECT_EQ(text(object, "error"), "usage") << result.out;
        EXPECT_NE(text(object, "message").find(message), std::string::npos) << result.out;
        EXPECT_NE(result.err.find(message), std::string::npos) << result.err;
    }
}

TEST_F(Cli, WithJsonHelpIsOneObjectToo) {
    const auto help = run_json({"--help"});
    EXPECT_EQ(text(help, "result"), "help");
    EXPECT_NE(text(help, "help").find("transfer"), std::string::npos);
    const auto earn_help = run_json({"earn", "--help"});
    EXPECT_NE(text(earn_help, "help").find("--pending-seconds"), std::string::npos);
}

TEST_F(Cli, WithJsonARefusedFrameOrKeyIsOneObjectNamingTheResult) {
    const auto forbidden =
        run_json({"reverse", "0123456789abcdef0123456789abcdef"}, 1, "dev-pos-key");
    EXPECT_EQ(text(forbidden, "result"), "forbidden");
    EXPECT_EQ(number(forbidden, "code"), static_cast<int64_t>(Result::forbidden));
    EXPECT_EQ(text(forbidden, "error"), "refused");
    const auto wrong_key = run_json({"ping"}, 1, "no-such-key");
    EXPECT_EQ(text(wrong_key, "result"), "auth_failed");
    EXPECT_NE(text(wrong_key, "message").find("auth_failed"), std::string::npos);
}

TEST(CliWithoutServer, AConnectionFailureExitsThree) {
    const CliResult result = run_cli(free_port(), {"ping"});
    EXPECT_EQ(result.exit_code, 3);
    EXPECT_NE(result.err.find("connect"), std::string::npos) << result.err;
}

TEST(CliWithoutServer, WithJsonAConnectionFailureIsOneObjectAndExitsThree) {
    const CliResult result = run_cli(free_port(), {"--json", "earn", "42", "10"});
    EXPECT_EQ(result.exit_code, 3) << result.err;
    simdjson::dom::parser parser;
    simdjson::dom::object object;
    ASSERT_EQ(parser.parse(result.out).get(object), simdjson::SUCCESS) << result.out;
    std::string_view value;
    ASSERT_EQ(object["result"].get(value), simdjson::SUCCESS) << result.out;
    EXPECT_EQ(value, "connect_failed");
    ASSERT_EQ(object["error"].get(value), simdjson::SUCCESS) << result.out;
    EXPECT_EQ(value, "connection");
    ASSERT_EQ(object["message"].get(value), simdjson::SUCCESS) << result.out;
    EXPECT_NE(value.find("connect"), std::string::npos) << result.out;
    // The mutation's id, which a retry must reuse, on stdout and stderr alike.
    ASSERT_EQ(object["txn_id"].get(value), simdjson::SUCCESS) << result.out;
    EXPECT_EQ(value.size(), 32u);
    EXPECT_NE(result.err.find("--txn " + std::string(value)), std::string::npos) << result.err;
}

TEST(CliWithoutServer, AGivenTxnIsTheOneToRetryWith) {
    const std::string txn = "0123456789abcdeffedcba9876543210";
    const CliResult result = run_cli(free_port(), {"redeem", "42", "10", "--txn", txn});
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_NE(result.err.find("rerun the same command with --txn " + txn), std::string::npos)
        << result.err;
}

}  // namespace
}  // namespace jifen::testing
