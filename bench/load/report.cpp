// Progress lines, the final table and the JSON line.
#include "bench/load/report.hpp"

#include <fmt/format.h>

#include <csignal>
#include <map>
#include <string>

namespace jifen::bench {
namespace {

double us(uint64_t ns) { return static_cast<double>(ns) / 1e3; }

// Every non-ok outcome of one kind (or of all kinds when kind is empty), by name.
std::map<std::string, uint64_t> errors_by_name(const RunStats& stats) {
    std::map<std::string, uint64_t> by_name;
    for (const KindStats& kind : stats.kinds) {
        for (uint32_t slot = 1; slot < result_slots; ++slot) {
            if (kind.results[slot] != 0) {
                by_name[std::string(to_string(static_cast<Result>(slot)))] += kind.results[slot];
            }
        }
        for (size_t failure = 0; failure < client_failure_count; ++failure) {
            if (kind.failures[failure] != 0) {
                by_name[std::string(to_string(static_cast<ClientFailure>(failure)))] +=
                    kind.failures[failure];
            }
        }
    }
    return by_name;
}

// "errors_by_result":{name: count, ...}
void append_errors_by_result(std::string* out, const RunStats& stats) {
    *out += "\"errors_by_result\":{";
    bool first = true;
    for (const auto& [name, count] : errors_by_name(stats)) {
        *out += first ? "" : ",";
        first = false;
        append_json_string(out, name);
        *out += fmt::format(":{}", count);
    }
    *out += "}";
}

std::string outcomes_text(const KindStats& kind) {
    std::string text;
    for (uint32_t slot = 1; slot < result_slots; ++slot) {
        if (kind.results[slot] != 0) {
            text += fmt::format("{}{}={}", text.empty() ? "" : " ",
                                to_string(static_cast<Result>(slot)), kind.results[slot]);
        }
    }
    for (size_t failure = 0; failure < client_failure_count; ++failure) {
        if (kind.failures[failure] != 0) {
            text +=
                fmt::format("{}{}={}", text.empty() ? "" : " ",
                            to_string(static_cast<ClientFailure>(failure)), kind.failures[failure]);
        }
    }
    return text.empty() ? "-" : text;
}

void append_latencies(std::string* out, const LatencyHistogram& latency) {
    *out += fmt::format(
        "\"p50_us\":{:.1f},\"p90_us\":{:.1f},\"p99_us\":{:.1f},\"p999_us\":{:.1f},"
        "\"max_us\":{:.1f},\"mean_us\":{:.1f}",
        us(latency.value_at_percentile(50)), us(latency.value_at_percentile(90)),
        us(latency.value_at_percentile(99)), us(latency.value_at_percentile(99.9)),
        us(latency.max()), latency.mean() / 1e3);
}

// "closed loop", "open loop at 1000 ops/s", with a note when bursts were asked for but cannot
// apply (a closed loop has no schedule to shape).
std::string loop_text(const BenchOptions& options) {
    if (options.rate > 0) {
        return fmt::format("open loop at {:.0f} ops/s{}", options.rate,
                           options.burst.steady() ? "" : " with bursts");
    }
    return options.burst.steady() ? "closed loop" : "closed loop (no bursts: they need --rate)";
}

// A JSON value, or null when the setting did not apply to the run.
template <typename Value>
std::string json_if(bool applies, Value value) {
    return applies ? fmt::format("{}", value) : "null";
}

// Who did not keep up with --rate, judged by how busy the busiest client thread was.
std::string unsent_cause(double client_busy) {
    const double percent = 100 * client_busy;
    if (client_busy > client_busy_limit) {
        return fmt::format(
            "a client thread was busy {:.0f}% of the run, so jifen-bench itself did not keep up "
            "with --rate; add --threads or lower --rate",
            percent);
    }
    return fmt::format(
        "the server did not keep up with --rate (the busiest client thread was busy {:.0f}% of "
        "the run); lower --rate",
        percent);
}

std::string signal_name(int signal_number) {
    switch (signal_number) {
        case SIGINT:
            return "SIGINT";
        case SIGTERM:
            return "SIGTERM";
        default:
            return "signal " + std::to_string(signal_number);
    }
}

}  // namespace

std::string format_progress(double at_s, const RunStats& interval, double interval_s) {
    const LatencyHistogram latency = interval.latency_all();
    const double rate = interval_s > 0 ? static_cast<double>(latency.count()) / interval_s : 0.0;
    // No reply in the second (a stalled server): no latency to show, rather than a healthy 0.
    const std::string p99 =
        latency.count() == 0 ? "-" : fmt::format("{:.1f}us", us(latency.value_at_percentile(99)));
    return fmt::format("{:>6.1f}s {:>10.0f} ops/s   p99 {:>11}   errors {} (unexpected {})", at_s,
                       rate, p99, interval.errors(), interval.unexpected());
}

std::string format_table(const RunSummary& summary) {
    const BenchOptions& options = *summary.options;
    const RunStats& stats = *summary.stats;
    const LatencyHistogram all = stats.latency_all();
    const double rate =
        summary.elapsed_s > 0 ? static_cast<double>(all.count()) / summary.elapsed_s : 0.0;

    std::string out;
    out += fmt::format("jifen-bench  {}:{}  scenario {}  shards {}\n", options.host, options.port,
                       to_string(options.scenario), summary.server_shards);
    out += fmt::format("  mix {}  keys {}  members {}\n", options.mix.to_string(),
                       to_string(options.keys.law), options.members);
    out += fmt::format("  {} connections{} on {} threads, pipeline {}, batch {}, {}\n",
                       options.connections, options.shard_aware ? " (shard-aware)" : "",
                       options.threads, options.pipeline, options.batch, loop_text(options));
    out += fmt::format("\n  {} operations in {:.2f} s: {:.0f} ops/s\n", all.count(),
                       summary.elapsed_s, rate);
    out += fmt::format("  errors {} (unexpected {})", stats.errors(), stats.unexpected());
    if (const uint64_t failed = stats.failed(); failed > 0) {
        out += fmt::format(
            ", {} of them failed without an answer and are not counted as operations", failed);
    }
    out += "\n";
    if (const RunStats* warmup = summary.warmup; warmup != nullptr) {
        out += fmt::format(
            "  warm-up {} s, left out of the figures: {} operations, errors {} (unexpected {})\n",
            options.warmup_s, warmup->completed(), warmup->errors(), warmup->unexpected());
        if (stats.completed() == 0 && stats.failed() == 0) {
            out += "  the run ended during the warm-up: nothing was measured\n";
        }
    }
    if (summary.stop_signal != 0) {
        out += fmt::format(
            "  INTERRUPTED by {}: sending stopped early; replies still missing {} s later are "
            "left out\n",
            signal_name(summary.stop_signal), interrupt_grace_s);
    }
    if (const uint64_t transfers = stats.of(OpKind::transfer).completed(); transfers > 0) {
        out += fmt::format("  transfers {}: {} of {} crossed shards ({:.1f}%)\n",
                           to_string(options.transfers), stats.cross_shard_transfers, transfers,
                           100.0 * static_cast<double>(stats.cross_shard_transfers) /
                               static_cast<double>(transfers));
    }
    if (const LatencyHistogram* lag = summary.send_lag_ns; lag != nullptr && lag->count() > 0) {
        out += fmt::format(
            "  sent behind the schedule by p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us (in the "
            "latencies)\n",
            us(lag->value_at_percentile(50)), us(lag->value_at_percentile(99)), us(lag->max()));
    }
    if (summary.unsent_due_ops > 0) {
        out += fmt::format(
            "  WARNING: {} operations fell due but were never sent because the window stayed "
            "full, and the latencies leave them out: {}\n",
            summary.unsent_due_ops, unsent_cause(summary.client_busy));
    }
    out += "\n";
    out += fmt::format("  {:<9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>10}  {}\n", "op", "count",
                       "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "non-ok outcomes");
    auto row = [&](std::string_view name, const LatencyHistogram& latency, std::string outcomes) {
        out += fmt::format("  {:<9} {:>11} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>10.1f}  {}\n",
                           name, latency.count(), us(latency.value_at_percentile(50)),
                           us(latency.value_at_percentile(90)), us(latency.value_at_percentile(99)),
                           us(latency.value_at_percentile(99.9)), us(latency.max()), outcomes);
    };
    for (size_t index = 0; index < op_kind_count; ++index) {
        const KindStats& kind = stats.kinds[index];
        if (kind.completed() != 0 || kind.failed() != 0) {
            row(to_string(static_cast<OpKind>(index)), kind.latency_ns, outcomes_text(kind));
        }
    }
    row("all", all, "");
    return out;
}

void append_json_string(std::string* out, std::string_view text) {
    *out += '"';
    for (const char c : text) {
        switch (c) {
            case '"':
                *out += "\\\"";
                break;
            case '\\':
                *out += "\\\\";
                break;
            case '\n':
                *out += "\\n";
                break;
            case '\r':
                *out += "\\r";
                break;
            case '\t':
                *out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    *out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    *out += c;
                }
        }
    }
    *out += '"';
}

std::string format_json(const RunSummary& summary) {
    const BenchOptions& options = *summary.options;
    const RunStats& stats = *summary.stats;
    const LatencyHistogram all = stats.latency_all();
    const double rate =
        summary.elapsed_s > 0 ? static_cast<double>(all.count()) / summary.elapsed_s : 0.0;

    std::string out = "{";
    // Microseconds: a run of a few operations lasts well under a millisecond.
    out +=
        fmt::format("\"ops\":{},\"ops_per_sec\":{:.1f},\"duration_s\":{:.6f},\"interrupted\":{},",
                    all.count(), rate, summary.elapsed_s, summary.stop_signal != 0);
    append_latencies(&out, all);
    out += fmt::format(",\"errors\":{},\"unexpected\":{},\"failed\":{},", stats.errors(),
                       stats.unexpected(), stats.failed());
    append_errors_by_result(&out, stats);
    out += ",\"send_lag_us\":";
    if (const LatencyHistogram* lag = summary.send_lag_ns; lag != nullptr && lag->count() > 0) {
        out += fmt::format("{{\"p50\":{:.1f},\"p99\":{:.1f},\"max\":{:.1f}}}",
                           us(lag->value_at_percentile(50)), us(lag->value_at_percentile(99)),
                           us(lag->max()));
    } else {
        out += "null";
    }
    out += fmt::format(",\"client_busy\":{:.3f}", summary.client_busy);
    out += fmt::format(",\"unsent_due\":{},\"cross_shard_transfers\":{},\"warmup\":",
                       summary.unsent_due_ops, stats.cross_shard_transfers);
    if (const RunStats* warmup = summary.warmup; warmup != nullptr) {
        out += fmt::format("{{\"ops\":{},\"failed\":{},\"errors\":{},\"unexpected\":{},",
                           warmup->completed(), warmup->failed(), warmup->errors(),
                           warmup->unexpected());
        append_errors_by_result(&out, *warmup);
        out += "}";
    } else {
        out += "null";
    }
    out += ",\"per_op\":{";
    bool first = true;
    for (size_t index = 0; index < op_kind_count; ++index) {
        const KindStats& kind = stats.kinds[index];
        if (kind.completed() == 0 && kind.failed() == 0) {
            continue;
        }
        out += first ? "" : ",";
        first = false;
        append_json_string(&out, to_string(static_cast<OpKind>(index)));
        out += fmt::format(":{{\"ops\":{},\"ok\":{},\"failed\":{},", kind.completed(),
                           kind.results[static_cast<size_t>(Result::ok)], kind.failed());
        append_latencies(&out, kind.latency_ns);
        out += "}";
    }
    out += "},\"config\":{\"scenario\":";
    append_json_string(&out, to_string(options.scenario));
    out += ",\"mix\":";
    append_json_string(&out, options.mix.to_string());
    out += ",\"keys\":";
    append_json_string(&out, to_string(options.keys.law));
    out += fmt::format(
        ",\"tls\":{},\"members\":{},\"connections\":{},\"threads\":{},\"pipeline\":{},"
        "\"batch\":{},\"rate\":{:.1f},\"warmup_s\":{},\"seed\":{},\"shards\":{},"
        "\"shard_aware\":{},\"members_enrolled\":{}",
        options.tls, options.members, options.connections, options.threads, options.pipeline,
        options.batch, options.rate, options.warmup_s, options.seed, summary.server_shards,
        options.shard_aware, summary.members_enrolled);
    // Settings that only shape some runs are null in the others, so that the line never claims a
    // setting the load did not have (a scenario's default bursts in a closed loop, say).
    const KeyLaw law = options.keys.law;
    const bool enrolled = summary.members_enrolled > 0;
    const bool earns =
        options.mix.weight(OpKind::earn) > 0 || options.mix.weight(OpKind::purchase) > 0;
    const bool bursts = options.rate > 0 && !options.burst.steady();
    out += ",\"transfers\":";
    if (options.mix.weight(OpKind::transfer) > 0) {
        append_json_string(&out, to_string(options.transfers));
    } else {
        out += "null";
    }
    out += fmt::format(
        ",\"initial_points\":{},\"earn_factor\":{},\"zipf_s\":{},\"hot_fraction\":{},"
        "\"hot_share\":{},\"burst_factor\":{},\"burst_ms\":{},\"burst_period_ms\":{}}}",
        json_if(enrolled, options.initial_points), json_if(earns, options.earn_factor),
        json_if(law == KeyLaw::zipf, options.zipf_s),
        json_if(law == KeyLaw::hotset, options.hot_fraction),
        json_if(law == KeyLaw::hotset, options.hot_share), json_if(bursts, options.burst.factor),
        json_if(bursts, options.burst.burst_ms), json_if(bursts, options.burst.period_ms));
    out += "}";
    return out;
}

}  // namespace jifen::bench
