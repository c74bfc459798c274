// jifen: the command-line client. One command per run; readable output, or one JSON object with
// --json. Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 connection failure (cli/args.hpp).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli/args.hpp"
#include "client/client.hpp"

namespace jifen::cli {

namespace {

using protocol::Opcode;

struct Globals {
    std::string host = "127.0.0.1";
    uint16_t port = 7300;
    std::string key;
    bool tls = false;
    std::string ca_file;
    bool insecure = false;
    bool json = false;
    uint32_t timeout_ms = 10'000;
};

// Options every mutating command takes.
struct MutationArgs {
    std::string txn;
    uint32_t store = 0;
    uint32_t merchant = 0;
    uint64_t order = 0;
    uint32_t reason = 0;
};

// Today's date in UTC, as YYYYMMDD: a birthday after it is a typo.
uint32_t today_yyyymmdd() {
    const std::chrono::year_month_day today{
        std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())};
    return static_cast<uint32_t>(static_cast<int>(today.year())) * 10'000 +
           static_cast<unsigned>(today.month()) * 100 + static_cast<unsigned>(today.day());
}

// CLI11 reads "-1" into an unsigned option as its two's complement, and a number past the type
// as its largest value: the text is checked first.
CLI::Validator whole_number() {
    return CLI::Validator(
        [](std::string& text) {
            try {
                parse_unsigned("the value", text, std::numeric_limits<uint64_t>::max());
                return std::string();
            } catch (const UsageError& error) {
                return std::string(error.what());
            }
        },
        "UINT");
}

void add_mutation_options(CLI::App* command, MutationArgs* args) {
    command->add_option("--txn", args->txn,
                        "Transaction id, 32 hex digits; generated and printed when absent. Rerun "
                        "with the printed id to retry safely.");
    // CLI11 reads an empty value into a number as 0: CLI::Number refuses it first.
    command->add_option("--store", args->store, "Store id")->check(CLI::Number);
    command->add_option("--merchant", args->merchant, "Merchant id")->check(CLI::Number);
    command->add_option("--order", args->order, "Order reference")->check(whole_number());
    command->add_option("--reason", args->reason, "Reason code")->check(CLI::Number);
}

class Runner {
public:
    Runner(const Globals& globals) : globals_(globals), client_(make_options(globals)) {}

    client::Client& client() { return client_; }
    bool json() const { return globals_.json; }

    // Sends one mutation and prints its outcome. Returns the exit code.
    int mutate(Opcode opcode, protocol::Operation operation, const MutationArgs& args,
               const char* id_label = nullptr) {
        operation.store_id = args.store != 0 ? args.store : operation.store_id;
        operation.merchant_id = args.merchant != 0 ? args.merchant : operation.merchant_id;
        operation.order_ref = args.order != 0 ? args.order : operation.order_ref;
        operation.reason_code = args.reason != 0 ? args.reason : operation.reason_code;
        // run() chose the id before connecting when --txn was not given.
        const client::TxnId txn_id = parse_txn("--txn", args.txn);
        client::set_txn_id(&operation, txn_id);
        const auto replies = client_.submit(opcode, std::span(&operation, 1));
        const protocol::OperationReply& reply = replies.front();
        const auto result = static_cast<Result>(reply.result);
        const bool replayed = (reply.flags & protocol::reply_flag_replayed) != 0;
        const std::string txn_hex = client::to_hex(txn_id);
        if (json()) {
            JsonObject object;
            object.add("command", protocol::to_string(opcode))
                .add("result", jifen::to_string(result))
                .add("code", reply.result)
                .add("txn_id", txn_hex);
            if (id_label != nullptr && result == Result::ok) {
                object.add(id_label, txn_hex);  // A refused hold is no hold.
            }
            object.add("replayed", replayed)
                .add("points", reply.points)
                .add("shortfall", reply.shortfall)
                .add("available", reply.available)
                .add("held", reply.held)
                .add("pending", reply.pending);
            std::cout << object.str() << "\n";
        } else if (result == Result::ok) {
            std::cout << protocol::to_string(opcode) << " ok";
            if (replayed && opcode == Opcode::enroll) {
                // The server answers an enrolment of a member that exists with these details
                // the same way, without using the id.
                std::cout << " (replayed: the member is already enrolled with these details, or "
                             "this txn id was applied before; nothing changed)";
            } else if (replayed) {
                std::cout << " (replayed: this txn id was applied before; original outcome)";
            }
            std::cout << "\n";
            if (id_label != nullptr) {
                std::cout << id_label << " " << txn_hex << "\n";
            }
            std::cout << "txn " << txn_hex << "\n";
            if (opcode != Opcode::enroll && opcode != Opcode::update_member) {
                std::cout << "points " << reply.points << "\n";
            }
            if (opcode == Opcode::reverse || reply.shortfall != 0) {
                // capture, release: held points that expired as they came back.
                std::cout << "shortfall " << reply.shortfall << "\n";
            }
            std::cout << "available " << reply.available << "\nheld " << reply.held << "\npending "
                      << reply.pending << "\n";
        }
        if (result != Result::ok) {
            std::cerr << "jifen: " << protocol::to_string(opcode)
                      << " refused: " << jifen::to_string(result) << " (txn " << txn_hex
                      << (replayed ? ", replayed" : "") << ")\n";
            if (opcode == Opcode::transfer && reply.points > 0) {
                // The receiver's shard refused after the sender's was debited (protocol.md 3.1).
                std::cerr << "jifen: the " << reply.points
                          << " points were debited and refunded, and this txn id is used: send "
                             "the transfer again with a new id once the receiver can take it\n";
            }
            return exit_refused;
        }
        return exit_ok;
    }

    int print_balance(uint64_t member) {
        const protocol::BalanceReply reply = client_.balance(member);
        const auto result = static_cast<Result>(reply.result);
        if (json() && result != Result::ok) {
            // No member to describe: no balances and no status that could be taken for real.
            JsonObject object;
            object.add("result", jifen::to_string(result))
                .add("code", reply.result)
                .add("member", member);
            std::cout << object.str() << "\n";
        } else if (json()) {
            JsonObject object;
            object.add("result", jifen::to_string(result))
                .add("code", reply.result)
                .add("member", member)
                .add("available", reply.available)
                .add("held", reply.held)
                .add("pending", reply.pending)
                .add("tier", uint32_t{reply.tier})
                .add("status", reply.status == 0 ? "active" : "frozen")
                .add("birthday", format_date(reply.birthday))
                .add("lifetime_earned", reply.lifetime_earned)
                .add("lifetime_redeemed", reply.lifetime_redeemed)
                .add("lifetime_expired", reply.lifetime_expired)
                .add("lifetime_reversed", reply.lifetime_reversed)
                .add("growth", reply.growth);
            std::cout << object.str() << "\n";
        } else if (result == Result::ok) {
            std::cout << "member " << member << "\navailable " << reply.available << "\nheld "
                      << reply.held << "\npending " << reply.pending << "\ntier "
                      << uint32_t{reply.tier} << "\nstatus "
                      << (reply.status == 0 ? "active" : "frozen") << "\n";
            if (reply.birthday != 0) {
                std::cout << "birthday " << format_date(reply.birthday) << "\n";
            }
            std::cout << "lifetime_earned " << reply.lifetime_earned << "\nlifetime_redeemed "
                      << reply.lifetime_redeemed << "\nlifetime_expired " << reply.lifetime_expired
                      << "\nlifetime_reversed " << reply.lifetime_reversed << "\n";
        }
        if (result != Result::ok) {
            std::cerr << "jifen: balance refused: " << jifen::to_string(result) << "\n";
            return exit_refused;
        }
        return exit_ok;
    }

    int print_history(uint64_t member, uint64_t before, uint32_t limit) {
        const client::HistoryPage page = client_.history(member, before, limit);
        const auto result = static_cast<Result>(page.header.result);
        if (json()) {
            std::string entries = "[";
            for (const protocol::HistoryEntry& entry : page.entries) {
                if (entries.size() > 1) {
                    entries += ',';
                }
                JsonObject object;
                object.add("seq", entry.seq)
                    .add("time_us", entry.time_us)
                    .add("op", op_name(entry.op))
                    .add("txn_id", client::to_hex({entry.txn_id_lo, entry.txn_id_hi}))
                    .add("ref_txn_id", client::to_hex({entry.ref_txn_id_lo, entry.ref_txn_id_hi}))
                    .add("counterparty", entry.counterparty_id)
                    .add("points", entry.points)
                    .add("applied_points", entry.applied_points)
                    .add("available_after", entry.available_after)
                    .add("order", entry.order_ref)
                    .add("store", entry.store_id)
                    .add("merchant", entry.merchant_id)
                    .add("reason", entry.reason_code);
                entries += object.str();
            }
            entries += "]";
            JsonObject object;
            object.add("result", jifen::to_string(result))
                .add("code", page.header.result)
                .add("member", member)
                .add("next_before_seq", page.header.next_before_seq)
                .add_raw("entries", entries);
            std::cout << object.str() << "\n";
        } else if (result == Result::ok) {
            // "-" for a zero id or member: a settlement has no transaction of its own, most
            // entries no ref and no counterparty.
            const auto id_text = [](uint64_t lo, uint64_t hi) {
                return lo == 0 && hi == 0 ? std::string("-") : client::to_hex({lo, hi});
            };
            std::cout << "seq time_us op points applied available_after txn ref counterparty\n";
            for (const protocol::HistoryEntry& entry : page.entries) {
                std::cout << entry.seq << " " << entry.time_us << " " << op_name(entry.op) << " "
                          << entry.points << " " << entry.applied_points << " "
                          << entry.available_after << " "
                          << id_text(entry.txn_id_lo, entry.txn_id_hi) << " "
                          << id_text(entry.ref_txn_id_lo, entry.ref_txn_id_hi) << " "
                          << (entry.counterparty_id == 0 ? std::string("-")
                                                         : std::to_string(entry.counterparty_id))
                          << "\n";
            }
            if (page.header.next_before_seq != 0) {
                std::cout << "more: --before " << page.header.next_before_seq << "\n";
            }
        }
        if (result != Result::ok) {
            std::cerr << "jifen: history refused: " << jifen::to_string(result) << "\n";
            return exit_refused;
        }
        return exit_ok;
    }

    // freeze/unfreeze: update_member sets every attribute, so keep birthday and tier as they are.
    int set_frozen(uint64_t member, bool frozen, const MutationArgs& args) {
        const protocol::BalanceReply current = client_.balance(member);
        if (static_cast<Result>(current.result) != Result::ok) {
            const auto result = static_cast<Result>(current.result);
            if (json()) {
                // The shape of a refused mutation, though nothing was sent: the member was read
                // first (to keep its birthday and tier), and it is missing.
                std::cout << JsonObject()
                                 .add("command", "update_member")
                                 .add("result", jifen::to_string(result))
                                 .add("code", current.result)
                                 .add("txn_id", args.txn)
                                 .add("replayed", false)
                                 .add("points", int64_t{0})
                                 .add("shortfall", int64_t{0})
                                 .add("available", int64_t{0})
                                 .add("held", int64_t{0})
                                 .add("pending", int64_t{0})
                                 .str()
                          << "\n";
            }
            std::cerr << "jifen: " << (frozen ? "freeze" : "unfreeze")
                      << " refused: " << jifen::to_string(result) << " (txn " << args.txn
                      << " not sent)\n";
            return exit_refused;
        }
        return mutate(Opcode::update_member,
                      client::make_update_member(member, current.birthday, current.tier, frozen),
                      args);
    }

    int print_audit() {
        const protocol::AuditReply reply = client_.audit();
        const auto result = static_cast<Result>(reply.result);
        JsonObject object;
        object.add("result", jifen::to_string(result))
            .add("ok", reply.ok != 0)
            .add("members", reply.members)
            .add("open_holds", reply.open_holds)
            .add("negative_balances", reply.negative_balances)
            .add("available", reply.available)
            .add("held", reply.held)
            .add("pending", reply.pending)
            .add("earned", reply.earned)
            .add("redeemed", reply.redeemed)
            .add("expired", reply.expired)
            .add("reversed", reply.reversed)
            .add("adjusted_in", reply.adjusted_in)
            .add("adjusted_out", reply.adjusted_out)
            .add("transfers_in_flight", reply.transfers_in_flight);
        print_flat(object);
        if (result != Result::ok) {
            std::cerr << "jifen: audit refused: " << jifen::to_string(result) << "\n";
            return exit_refused;
        }
        if (reply.ok == 0) {
            std::cerr << "jifen: audit found a broken invariant\n";
            return exit_refused;
        }
        return exit_ok;
    }

    int print_stats() {
        const protocol::StatsReply reply = client_.stats();
        const auto result = static_cast<Result>(reply.result);
        JsonObject object;
        object.add("result", jifen::to_string(result))
            .add("shard_count", reply.shard_count)
            .add("uptime_us", reply.uptime_us)
            .add("connections", reply.connections)
            .add("operations", reply.operations)
            .add("operations_refused", reply.operations_refused)
            .add("log_records", reply.log_records)
            .add("log_commits", reply.log_commits)
            .add("log_bytes", reply.log_bytes)
            .add("log_map_bytes", reply.log_map_bytes);
        print_flat(object);
        if (result != Result::ok) {
            std::cerr << "jifen: stats refused: " << jifen::to_string(result) << "\n";
            return exit_refused;
        }
        return exit_ok;
    }

    int print_ping() {
        const auto started = std::chrono::steady_clock::now();
        const protocol::PingReply reply = client_.ping();
        const auto round_trip_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::steady_clock::now() - started)
                                       .count();
        JsonObject object;
        object.add("result", "ok")
            .add("server_time_us", reply.server_time_us)
            .add("round_trip_us", static_cast<int64_t>(round_trip_us));
        print_flat(object);
        return exit_ok;
    }

private:
    static client::Options make_options(const Globals& globals) {
        client::Options options;
        options.host = globals.host;
        options.port = globals.port;
        options.api_key = globals.key;
        options.client_name = "jifen-cli";
        options.tls = globals.tls;
        options.tls_ca_file = globals.ca_file;
        options.tls_insecure_skip_verify = globals.insecure;
        options.connect_timeout = std::chrono::milliseconds(globals.timeout_ms);
        options.request_timeout = std::chrono::milliseconds(globals.timeout_ms);
        options.reconnect_attempts = 2;
        options.frames_in_flight_max = 1;
        return options;
    }

    // JSON mode: the object; readable mode: one "key value" line per field.
    void print_flat(const JsonObject& object) {
        if (json()) {
            std::cout << object.str() << "\n";
            return;
        }
        // Reformat the flat object: keys and values never contain ',' or ':' except in strings,
        // and these objects hold only numbers, booleans and plain words.
        std::string text = object.str();
        text = text.substr(1, text.size() - 2);
        size_t start = 0;
        while (start < text.size()) {
            size_t end = text.find(',', start);
            if (end == std::string::npos) {
                end = text.size();
            }
            std::string field = text.substr(start, end - start);
            const size_t colon = field.find(':');
            std::string name = field.substr(0, colon);
            std::string value = field.substr(colon + 1);
            const auto strip = [](std::string* s) {
                if (s->size() >= 2 && s->front() == '"') {
                    *s = s->substr(1, s->size() - 2);
                }
            };
            strip(&name);
            strip(&value);
            std::cout << name << " " << value << "\n";
            start = end + 1;
        }
    }

    Globals globals_;
    client::Client client_;
};

// A usage error: the message on stderr and, with --json, as the one JSON object on stdout.
int report_usage(bool json, std::string_view message) {
    if (json) {
        std::cout << error_json("usage", "usage", message) << "\n";
    }
    std::cerr << "jifen: " << message << "\n";
    return exit_usage;
}

// True when the file holds at least one PEM certificate (what --ca-file must give): a key or an
// empty file is a usage error, found before anything is sent. Any PEM certificate label counts
// (CERTIFICATE, TRUSTED CERTIFICATE, X509 CERTIFICATE), as OpenSSL reads them all.
bool holds_certificates(const std::string& path) {
    std::ifstream file(path);
    std::string line;
    while (std::getline(file, line)) {
        const size_t begin = line.find("-----BEGIN ");
        if (begin != std::string::npos &&
            line.find("CERTIFICATE-----", begin) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// --help: the text on stdout, or with --json inside the one JSON object.
int print_help(const CLI::App& app, const CLI::Error& help, bool json) {
    if (!json) {
        return app.exit(help);
    }
    std::ostringstream text;
    const int exit_code = app.exit(help, text, std::cerr);
    std::cout << JsonObject().add("result", "help").add("help", text.str()).str() << "\n";
    return exit_code;
}

int run(int argc, char** argv) {
    CLI::App app{"jifen: command-line client for the jifen loyalty-points ledger"};
    app.require_subcommand(1);
    app.fallthrough();  // Global options such as --json may also follow the command.
    Globals globals;
    const char* key_env = std::getenv("JIFEN_KEY");
    globals.key = key_env != nullptr ? key_env : client::dev_admin_key;
    app.add_option("--host", globals.host, "Server host")->capture_default_str();
    app.add_option("--port", globals.port, "Server port")
        ->capture_default_str()
        ->check(CLI::Number);
    app.add_option("--key", globals.key, "API key (default: $JIFEN_KEY, else the development key)");
    app.add_flag("--tls", globals.tls, "Use TLS");
    app.add_option("--ca-file", globals.ca_file, "CA certificates (PEM) to verify the server")
        ->check(CLI::ExistingFile);
    app.add_flag("--insecure", globals.insecure, "TLS without certificate checks (tests only)");
    app.add_flag("--json", globals.json, "Print exactly one JSON object");
    app.add_option("--timeout-ms", globals.timeout_ms,
                   "Connect and request timeout of one attempt; a command makes up to 3 "
                   "(2 reconnects), so it gives up after about 3x this")
        ->check(CLI::Range(1u, 3'600'000u))
        ->capture_default_str();

    std::string member_text;
    std::string other_text;
    std::string points_text;
    MutationArgs mutation;
    uint64_t pending_seconds = 0;
    uint64_t ttl_seconds = 0;
    bool debit = false;
    std::string birthday_text;
    uint32_t tier = 0;
    uint32_t limit = 20;
    uint64_t before = 0;

    auto* earn = app.add_subcommand("earn", "Credit points to a member");
    earn->add_option("MEMBER", member_text)->required();
    earn->add_option("POINTS", points_text)->required();
    earn->add_option("--pending-seconds", pending_seconds,
                     "Points stay pending (not spendable) this long")
        ->check(whole_number());
    add_mutation_options(earn, &mutation);

    auto* redeem = app.add_subcommand("redeem", "Spend a member's available points");
    redeem->add_option("MEMBER", member_text)->required();
    redeem->add_option("POINTS", points_text)->required();
    add_mutation_options(redeem, &mutation);

    auto* hold = app.add_subcommand("hold", "Reserve points; prints the hold id");
    hold->add_option("MEMBER", member_text)->required();
    hold->add_option("POINTS", points_text)->required();
    hold->add_option("--ttl", ttl_seconds, "Hold timeout in seconds (default: the server's)")
        ->check(whole_number());
    add_mutation_options(hold, &mutation);

    auto* capture = app.add_subcommand("capture", "Spend a hold (all of it, or POINTS of it)");
    capture->add_option("HOLD", other_text, "The hold id printed by hold")->required();
    capture->add_option("POINTS", points_text);
    add_mutation_options(capture, &mutation);

    auto* release = app.add_subcommand("release", "Return a hold's points");
    release->add_option("HOLD", other_text)->required();
    add_mutation_options(release, &mutation);

    auto* reverse = app.add_subcommand("reverse", "Undo an earn, redeem or capture");
    reverse->add_option("TXN", other_text, "The transaction id to undo")->required();
    add_mutation_options(reverse, &mutation);

    auto* transfer = app.add_subcommand("transfer", "Move points between members");
    transfer->add_option("FROM", member_text)->required();
    transfer->add_option("TO", other_text)->required();
    transfer->add_option("POINTS", points_text)->required();
    add_mutation_options(transfer, &mutation);

    auto* adjust = app.add_subcommand("adjust", "Admin correction: credit, or debit with --debit");
    adjust->add_option("MEMBER", member_text)->required();
    adjust->add_option("POINTS", points_text)->required();
    adjust->add_flag("--debit", debit, "Take the points away");
    add_mutation_options(adjust, &mutation);

    auto* balance = app.add_subcommand("balance", "Show a member's balances");
    balance->add_option("MEMBER", member_text)->required();

    auto* history = app.add_subcommand("history", "Show a member's ledger entries, newest first");
    history->add_option("MEMBER", member_text)->required();
    history->add_option("--limit", limit, "Entries (1..1000)")
        ->capture_default_str()
        ->check(CLI::Number);
    history->add_option("--before", before, "Only entries with seq below this")
        ->check(whole_number());

    auto* enroll = app.add_subcommand("enroll", "Create a member");
    enroll->add_option("MEMBER", member_text)->required();
    auto* birthday_option = enroll->add_option("--birthday", birthday_text, "YYYY-MM-DD");
    enroll->add_option("--tier", tier, "Tier 0..255")->check(CLI::Number);
    add_mutation_options(enroll, &mutation);

    auto* freeze =
        app.add_subcommand("freeze", "Freeze a member (no earn, redeem, hold, transfer)");
    freeze->add_option("MEMBER", member_text)->required();
    add_mutation_options(freeze, &mutation);
    auto* unfreeze = app.add_subcommand("unfreeze", "Unfreeze a member");
    unfreeze->add_option("MEMBER", member_text)->required();
    add_mutation_options(unfreeze, &mutation);

    auto* audit = app.add_subcommand("audit", "Check the ledger's invariants");
    auto* stats = app.add_subcommand("stats", "Server counters");
    auto* ping = app.add_subcommand("ping", "Round trip to the server");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& help) {
        return print_help(app, help, asks_for_json(argc, argv));
    } catch (const CLI::CallForAllHelp& help) {
        return print_help(app, help, asks_for_json(argc, argv));
    } catch (const CLI::ParseError& error) {
        if (globals.json || asks_for_json(argc, argv)) {
            std::cout << error_json("usage", "usage", error.what()) << "\n";
        }
        app.exit(error);  // The parser's message and hint, on stderr.
        return exit_usage;
    }

    // A mutation's id is chosen before connecting, so that whatever happens next (a timeout, a
    // lost connection) the user is told the id to retry with.
    const bool mutating = !(balance->parsed() || history->parsed() || audit->parsed() ||
                            stats->parsed() || ping->parsed());
    if (mutating && mutation.txn.empty()) {
        mutation.txn = client::to_hex(client::TxnIdGenerator().next());
    }

    // Check every argument before connecting: bad input never reaches the server.
    std::function<int(Runner&)> action;
    const auto points = [&] { return parse_points("POINTS", points_text); };
    const auto member = [&](const char* what) { return parse_member(what, member_text); };
    try {
        if (!mutation.txn.empty()) {
            parse_txn("--txn", mutation.txn);
        }
        if (earn->parsed()) {
            const auto operation = client::make_earn(
                member("MEMBER"), points(),
                parse_unsigned("--pending-seconds", std::to_string(pending_seconds),
                               uint64_t{365} * 24 * 3600) *
                    1'000'000);
            action = [=](Runner& r) { return r.mutate(Opcode::earn, operation, mutation); };
        } else if (redeem->parsed()) {
            const auto operation = client::make_redeem(member("MEMBER"), points());
            action = [=](Runner& r) { return r.mutate(Opcode::redeem, operation, mutation); };
        } else if (hold->parsed()) {
            const uint64_t ttl =
                parse_unsigned("--ttl", std::to_string(ttl_seconds), uint64_t{365} * 24 * 3600);
            const auto operation = client::make_hold(member("MEMBER"), points(), ttl * 1'000'000);
            action = [=](Runner& r) {
                return r.mutate(Opcode::hold, operation, mutation, "hold_id");
            };
        } else if (capture->parsed()) {
            const client::TxnId hold_id = parse_txn("HOLD", other_text);
            const int64_t amount = points_text.empty() ? 0 : points();
            const auto operation = client::make_capture(hold_id, amount);
            action = [=](Runner& r) { return r.mutate(Opcode::capture, operation, mutation); };
        } else if (release->parsed()) {
            const auto operation = client::make_release(parse_txn("HOLD", other_text));
            action = [=](Runner& r) { return r.mutate(Opcode::release, operation, mutation); };
        } else if (reverse->parsed()) {
            const auto operation = client::make_reverse(parse_txn("TXN", other_text));
            action = [=](Runner& r) { return r.mutate(Opcode::reverse, operation, mutation); };
        } else if (transfer->parsed()) {
            const uint64_t from = member("FROM");
            const uint64_t to = parse_member("TO", other_text);
            if (from == to) {
                throw UsageError("FROM and TO must be different members");
            }
            const auto operation = client::make_transfer(from, to, points());
            action = [=](Runner& r) { return r.mutate(Opcode::transfer, operation, mutation); };
        } else if (adjust->parsed()) {
            const auto operation = client::make_adjust(member("MEMBER"), points(), debit);
            action = [=](Runner& r) { return r.mutate(Opcode::adjust, operation, mutation); };
        } else if (balance->parsed()) {
            const uint64_t id = member("MEMBER");
            action = [=](Runner& r) { return r.print_balance(id); };
        } else if (history->parsed()) {
            const uint64_t id = member("MEMBER");
            if (limit < 1 || limit > protocol::history_entries_max) {
                throw UsageError("--limit must be 1.." +
                                 std::to_string(protocol::history_entries_max));
            }
            action = [=](Runner& r) { return r.print_history(id, before, limit); };
        } else if (enroll->parsed()) {
            const uint64_t id = member("MEMBER");
            const uint32_t birthday =
                birthday_option->count() == 0
                    ? 0
                    : parse_birthday("--birthday", birthday_text, today_yyyymmdd());
            if (tier > 255) {
                throw UsageError("--tier must be 0..255, got " + std::to_string(tier));
            }
            const auto operation = client::make_enroll(id, birthday, static_cast<uint8_t>(tier));
            action = [=](Runner& r) { return r.mutate(Opcode::enroll, operation, mutation); };
        } else if (freeze->parsed() || unfreeze->parsed()) {
            const uint64_t id = member("MEMBER");
            const bool frozen = freeze->parsed();
            action = [=](Runner& r) { return r.set_frozen(id, frozen, mutation); };
        } else if (audit->parsed()) {
            action = [](Runner& r) { return r.print_audit(); };
        } else if (stats->parsed()) {
            action = [](Runner& r) { return r.print_stats(); };
        } else if (ping->parsed()) {
            action = [](Runner& r) { return r.print_ping(); };
        }
    } catch (const UsageError& error) {
        return report_usage(globals.json, error.what());
    }
    if (globals.key.size() > sizeof(protocol::HelloRequest::api_key)) {
        const bool from_env = key_env != nullptr && app.count("--key") == 0;
        return report_usage(globals.json, from_env ? "JIFEN_KEY is longer than 64 bytes"
                                                   : "--key is longer than 64 bytes");
    }
    if (!globals.ca_file.empty() && !holds_certificates(globals.ca_file)) {
        return report_usage(globals.json,
                            "--ca-file " + globals.ca_file +
                                (std::ifstream(globals.ca_file).good() ? " holds no PEM certificate"
                                                                       : " cannot be read"));
    }

    try {
        Runner runner(globals);
        return action(runner);
    } catch (const client::Error& error) {
        const client::Status& status = error.status();
        const bool refused = status.failure == client::Failure::refused;
        const std::string txn = mutating ? mutation.txn : std::string();
        if (globals.json) {
            std::cout << error_json(refused ? jifen::to_string(status.result)
                                            : client::to_string(status.failure),
                                    refused ? "refused" : "connection", status.to_string(),
                                    static_cast<uint32_t>(status.result), txn)
                      << "\n";
        }
        std::cerr << "jifen: " << status.to_string() << " [" << globals.host << ":" << globals.port
                  << "]\n";
        if (!txn.empty() && !refused) {
            // Without a reply the operation may or may not have been applied.
            std::cerr << "jifen: txn " << txn << ": rerun the same command with --txn " << txn
                      << " to retry safely\n";
        }
        return refused ? exit_refused : exit_connection;
    }
}

}  // namespace
}  // namespace jifen::cli

int main(int argc, char** argv) { return jifen::cli::run(argc, argv); }
