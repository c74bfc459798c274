// The CLI's input checks: bad members, points, dates and txn ids are named before anything is sent.
#include <gtest/gtest.h>

#include <vector>

#include "client/cli/args.hpp"

namespace jifen::cli {
namespace {

TEST(CliArgs, MemberMustBeAPositiveDecimal) {
    EXPECT_EQ(parse_member("MEMBER", "42"), 42u);
    EXPECT_EQ(parse_member("MEMBER", "18446744073709551615"), 18446744073709551615ull);
    EXPECT_THROW(parse_member("MEMBER", "0"), UsageError);
    EXPECT_THROW(parse_member("MEMBER", "abc"), UsageError);
    EXPECT_THROW(parse_member("MEMBER", "12x"), UsageError);
    EXPECT_THROW(parse_member("MEMBER", "-5"), UsageError);
    EXPECT_THROW(parse_member("MEMBER", ""), UsageError);
    EXPECT_THROW(parse_member("MEMBER", "18446744073709551616"), UsageError);
}

TEST(CliArgs, PointsMustBeFromOneToTenToTheTwelve) {
    EXPECT_EQ(parse_points("POINTS", "1"), 1);
    EXPECT_EQ(parse_points("POINTS", "1000000000000"), 1'000'000'000'000);
    EXPECT_THROW(parse_points("POINTS", "0"), UsageError);
    EXPECT_THROW(parse_points("POINTS", "1000000000001"), UsageError);
    EXPECT_THROW(parse_points("POINTS", "1.5"), UsageError);
}

TEST(CliArgs, NegativePointsAreRefusedWithAHintAboutDebit) {
    try {
        parse_points("POINTS", "-10");
        FAIL() << "negative points were accepted";
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("--debit"), std::string::npos) << error.what();
    }
}

TEST(CliArgs, DatesMustBeRealCalendarDays) {
    EXPECT_EQ(parse_date("--birthday", "1990-07-15"), 19'900'715u);
    EXPECT_EQ(parse_date("--birthday", "2000-02-29"), 20'000'229u);
    EXPECT_THROW(parse_date("--birthday", "1900-02-29"), UsageError);
    EXPECT_THROW(parse_date("--birthday", "2023-02-29"), UsageError);
    EXPECT_THROW(parse_date("--birthday", "2023-04-31"), UsageError);
    EXPECT_THROW(parse_date("--birthday", "2023-13-01"), UsageError);
    EXPECT_THROW(parse_date("--birthday", "2023-00-10"), UsageError);
    EXPECT_EQ(parse_birthday("--birthday", "2026-11-24", 20'261'124), 20'261'124u);
    EXPECT_THROW(parse_birthday("--birthday", "2026-11-25", 20'261'124), UsageError);
    EXPECT_THROW(parse_birthday("--birthday", "", 20'261'124), UsageError);
    EXPECT_THROW(parse_date("--birthday", "15/07/1990"), UsageError);
    EXPECT_THROW(parse_date("--birthday", "1990-7-15"), UsageError);
    EXPECT_THROW(parse_date("--birthday", "199a-07-15"), UsageError);
}

TEST(CliArgs, DatesFormatBackToTheirInput) {
    EXPECT_EQ(format_date(19'900'715), "1990-07-15");
    EXPECT_EQ(format_date(0), "");
}

TEST(CliArgs, TxnIdsMustBe32HexDigitsAndNonZero) {
    const auto txn_id = parse_txn("--txn", "000000000000000a000000000000000b");
    EXPECT_EQ(txn_id.hi, 10u);
    EXPECT_EQ(txn_id.lo, 11u);
    EXPECT_THROW(parse_txn("--txn", "00000000000000000000000000000000"), UsageError);
    EXPECT_THROW(parse_txn("--txn", "xyz"), UsageError);
}

TEST(CliArgs, JsonStringsAreEscaped) {
    EXPECT_EQ(json_escape("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    EXPECT_EQ(json_escape(std::string_view("\x01", 1)), "\"\\u0001\"");
    EXPECT_EQ(JsonObject().add("member", uint64_t{7}).add("ok", true).add("x", "y").str(),
              "{\"member\":7,\"ok\":true,\"x\":\"y\"}");
}

TEST(CliArgs, AnErrorObjectNamesTheResultTheKindAndTheMessage) {
    EXPECT_EQ(error_json("usage", "usage", "MEMBER must be a member id from 1, got 0"),
              "{\"result\":\"usage\",\"error\":\"usage\","
              "\"message\":\"MEMBER must be a member id from 1, got 0\"}");
    EXPECT_EQ(error_json("forbidden", "refused", "refused: forbidden (\"reverse\")", 201u),
              "{\"result\":\"forbidden\",\"code\":201,\"error\":\"refused\","
              "\"message\":\"refused: forbidden (\\\"reverse\\\")\"}");
}

TEST(CliArgs, JsonIsAskedForByTheFlagAnywhereBeforeTheOperandSeparator) {
    const auto asks = [](std::vector<const char*> args) {
        args.insert(args.begin(), "jifen");
        return asks_for_json(static_cast<int>(args.size()), args.data());
    };
    EXPECT_TRUE(asks({"--json", "earn", "42", "0"}));
    EXPECT_TRUE(asks({"earn", "42", "0", "--json"}));
    EXPECT_FALSE(asks({"earn", "42", "0"}));
    EXPECT_FALSE(asks({"earn", "--", "--json"}));
    EXPECT_FALSE(asks({"--jsonx"}));
}

}  // namespace
}  // namespace jifen::cli
