// Input checks and output formatting for the jifen CLI.
#include "client/cli/args.hpp"

#include <charconv>
#include <cstdio>
#include <limits>

namespace jifen::cli {

namespace {

constexpr int64_t points_max = 1'000'000'000'000;  // Server's points_per_op_max.

// Built by append: GCC 12 at -O3 reports a false -Wrestrict for "'" + std::string + "'".
std::string quoted(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('\'');
    out.append(text);
    out.push_back('\'');
    return out;
}

bool is_leap(uint32_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

}  // namespace

uint64_t parse_unsigned(std::string_view what, std::string_view text, uint64_t max) {
    uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error == std::errc::invalid_argument || end != text.data() + text.size()) {
        throw UsageError(std::string(what) + " must be a non-negative whole number, got " +
                         quoted(text));
    }
    if (error == std::errc::result_out_of_range || value > max) {
        throw UsageError(std::string(what) + " must be at most " + std::to_string(max) + ", got " +
                         quoted(text));
    }
    return value;
}

uint64_t parse_member(std::string_view what, std::string_view text) {
    const uint64_t member = parse_unsigned(what, text, std::numeric_limits<uint64_t>::max());
    if (member == 0) {
        throw UsageError(std::string(what) + " must be a member id from 1, got 0");
    }
    return member;
}

int64_t parse_points(std::string_view what, std::string_view text) {
    if (!text.empty() && text.front() == '-') {
        throw UsageError(std::string(what) + " must be positive, got " + quoted(text) +
                         " (use adjust --debit to take points away)");
    }
    const uint64_t points = parse_unsigned(what, text, static_cast<uint64_t>(points_max));
    if (points == 0) {
        throw UsageError(std::string(what) + " must be at least 1, got 0");
    }
    return static_cast<int64_t>(points);
}

uint32_t parse_date(std::string_view what, std::string_view text) {
    const auto bad = [&] {
        return UsageError(std::string(what) + " must be a date as YYYY-MM-DD, got " + quoted(text));
    };
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
        throw bad();
    }
    uint32_t year = 0;
    uint32_t month = 0;
    uint32_t day = 0;
    const auto digits = [&](std::string_view part, uint32_t* value) {
        const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), *value);
        return error == std::errc{} && end == part.data() + part.size();
    };
    if (!digits(text.substr(0, 4), &year) || !digits(text.substr(5, 2), &month) ||
        !digits(text.substr(8, 2), &day)) {
        throw bad();
    }
    constexpr uint32_t days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1) {
        throw bad();
    }
    if (year < 1900) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is before 1900-01-01");
    }
    const uint32_t month_days = days_in_month[month - 1] + (month == 2 && is_leap(year) ? 1 : 0);
    if (day > month_days) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is not a calendar date");
    }
    return year * 10'000 + month * 100 + day;
}

uint32_t parse_birthday(std::string_view what, std::string_view text, uint32_t today) {
    const uint32_t birthday = parse_date(what, text);
    if (birthday > today) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is in the future");
    }
    return birthday;
}

client::TxnId parse_txn(std::string_view what, std::string_view text) {
    const auto txn_id = client::parse_txn_id(text);
    if (!txn_id) {
        throw UsageError(std::string(what) + " must be 32 hex digits, got " + quoted(text));
    }
    if (txn_id->is_zero()) {
        throw UsageError(std::string(what) + " must not be zero");
    }
    return *txn_id;
}

std::string format_date(uint32_t yyyymmdd) {
    if (yyyymmdd == 0) {
        return "";
    }
    char text[16];
    std::snprintf(text, sizeof(text), "%04u-%02u-%02u", yyyymmdd / 10'000, yyyymmdd / 100 % 100,
                  yyyymmdd % 100);
    return text;
}

std::string_view op_name(uint16_t op) {
    switch (op) {
        case 1:
            return "enroll";
        case 2:
            return "update_member";
        case 3:
            return "earn";
        case 4:
            return "redeem";
        case 5:
            return "hold";
        case 6:
            return "capture";
        case 7:
            return "release";
        case 8:
            return "reverse";
        case 9:
            return "transfer";
        case 10:
            return "adjust";
        case 32:
            return "transfer_credit";
        case 33:
            return "transfer_refund";
        case 34:
            return "tick";
        case 35:
            return "transfer_confirm";
        case 36:
            return "hold_timeout";
        case 37:
            return "pending_release";
        case 38:
            return "expire";
        default:
            return "unknown";
    }
}

std::string json_escape(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
                    out += escaped;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
    return out;
}

void JsonObject::key(std::string_view key) {
    if (!body_.empty()) {
        body_ += ',';
    }
    body_ += json_escape(key);
    body_ += ':';
}

JsonObject& JsonObject::add(std::string_view name, std::string_view text) {
    key(name);
    body_ += json_escape(text);
    return *this;
}

JsonObject& JsonObject::add(std::string_view name, int64_t number) {
    key(name);
    body_ += std::to_string(number);
    return *this;
}

JsonObject& JsonObject::add(std::string_view name, uint64_t number) {
    key(name);
    body_ += std::to_string(number);
    return *this;
}

JsonObject& JsonObject::add(std::string_view name, bool value) {
    key(name);
    body_ += value ? "true" : "false";
    return *this;
}

JsonObject& JsonObject::add_raw(std::string_view name, std::string_view json) {
    key(name);
    body_ += json;
    return *this;
}

std::string error_json(std::string_view result, std::string_view error, std::string_view message,
                       std::optional<uint32_t> code, std::string_view txn_id) {
    JsonObject object;
    object.add("result", result);
    if (code) {
        object.add("code", *code);
    }
    object.add("error", error).add("message", message);
    if (!txn_id.empty()) {
        object.add("txn_id", txn_id);
    }
    return object.str();
}

bool asks_for_json(int argc, const char* const* argv) {
    for (int index = 1; index < argc; ++index) {
        const std::string_view arg = argv[index];
        if (arg == "--") {
            return false;
        }
        if (arg == "--json") {
            return true;
        }
    }
    return false;
}

}  // namespace jifen::cli
