// Input checks and output formatting for the jifen CLI, apart from main() so tests can call them.
// Every parse_* returns the value or throws UsageError with a message naming the argument.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "client/txn_id.hpp"

namespace jifen::cli {

// Exit codes of the jifen command.
inline constexpr int exit_ok = 0;
inline constexpr int exit_refused = 1;     // The server answered with a Result other than ok.
inline constexpr int exit_usage = 2;       // Bad command line; nothing was sent.
inline constexpr int exit_connection = 3;  // Could not connect, timed out, or the link broke.

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A member id: decimal, 1..2^64-1.
uint64_t parse_member(std::string_view what, std::string_view text);
// Points: decimal, 1..10^12 (the server's points_per_op_max).
int64_t parse_points(std::string_view what, std::string_view text);
// A non-negative decimal that fits uint64 (sequence numbers, seconds, ids).
uint64_t parse_unsigned(std::string_view what, std::string_view text, uint64_t max);
// YYYY-MM-DD, a real calendar date from 1900 on; returns YYYYMMDD.
uint32_t parse_date(std::string_view what, std::string_view text);
// A date as parse_date, no later than today (YYYYMMDD).
uint32_t parse_birthday(std::string_view what, std::string_view text, uint32_t today);
// 32 hex digits.
client::TxnId parse_txn(std::string_view what, std::string_view text);

// YYYYMMDD -> "YYYY-MM-DD"; 0 -> "".
std::string format_date(uint32_t yyyymmdd);

// The engine's op names for history entries (docs/protocol.md, "History entry op numbers").
std::string_view op_name(uint16_t op);

// A flat JSON object built in insertion order.
class JsonObject {
public:
    JsonObject& add(std::string_view key, std::string_view text);
    JsonObject& add(std::string_view key, const char* text) {
        return add(key, std::string_view(text));
    }
    JsonObject& add(std::string_view key, int64_t number);
    JsonObject& add(std::string_view key, uint64_t number);
    JsonObject& add(std::string_view key, uint32_t number) { return add(key, uint64_t{number}); }
    JsonObject& add(std::string_view key, bool value);
    // Appends already-encoded JSON (an array or object).
    JsonObject& add_raw(std::string_view key, std::string_view json);
    std::string str() const { return "{" + body_ + "}"; }

private:
    void key(std::string_view key);
    std::string body_;
};

std::string json_escape(std::string_view text);

// The one object --json prints for an outcome without a reply to print. `result` names it the way
// a reply's `result` would ("usage", a server Result such as "auth_failed", or a client failure
// such as "connect_failed"); `error` is the kind, which the exit code follows ("usage" 2,
// "refused" 1, "connection" 3); `message` is the text also written to stderr. `code` (the Result
// number) is left out when there is none; `txn_id` too (a mutation's id, which a retry must reuse).
std::string error_json(std::string_view result, std::string_view error, std::string_view message,
                       std::optional<uint32_t> code = std::nullopt, std::string_view txn_id = {});

// Whether the command line asks for --json. For a command line that did not parse, where the
// parser's own flag is not set; arguments after "--" are operands, not options.
bool asks_for_json(int argc, const char* const* argv);

}  // namespace jifen::cli
