#!/usr/bin/env bash
# Runs jifend with 1, 2, 4 and 8 shards under the same load and prints, per shard count, the
# throughput, p99 and the server's CPU time per operation (utime + stime of the jifend process
# from /proc/<pid>/stat before and after the measured run, divided by the operations). Loads, one
# row each per shard count:
#   local           earn/redeem/balance, every operation on one member's shard; connections send
#                   any member, so with S shards (S-1)/S of the operations are handed to another
#                   shard;
#   aware           the same mix with jifen-bench --shard-aware: each connection asks the server
#                   for one shard and sends only that shard's members, so nothing is handed over;
#   transfer-same   member-to-member transfers, both members on one shard (jifen-bench
#                   --transfers same-shard);
#   transfer-cross  transfers between members of two shards (--transfers cross-shard): the
#                   two-leg path. With 1 shard nothing can cross, so the row says "skipped";
#   transfer        (not run by default) transfers between any two members, both kinds mixed.
# The transfer loads are not shard-aware: as in local, (S-1)/S of them are first handed to the
# sender's shard, so transfer-same and transfer-cross differ only by the transfer's own path.
# The cross-shard column is measured: the share of completed transfers whose members were on
# different shards, as jifen-bench counted them.
#
#   bench/scaling.sh [BUILD_DIR] [--shards "1 2 4 8"] [--shard-threads T] [--runs N]
#                    [--duration S] [--members N]
#                    [--connections C] [--threads T] [--pipeline P] [--batch B]
#                    [--durability async|sync] [--local-mix MIX]
#                    [--loads "local aware transfer-same transfer-cross"] [--keep]
#
# Every run gets a fresh data directory and server; members are enrolled (with points to
# transfer) by an unmeasured jifen-bench call before the CPU counters are read. Medians over
# --runs (default 3). Default total time is about 5 minutes on 2 cores; use
# --runs 1 or --shards "1 2" for a quick look. Everything it starts is stopped on exit. jifend
# runs the shards on one thread per core (at most one per shard), so on a machine with fewer cores
# than shards they take turns on those threads. --shard-threads T passes jifend's flag: T equal to
# the largest shard count gives every shard its own thread, the cost of oversubscribing the
# cores.
set -euo pipefail

repo_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=""
shard_counts="1 2 4 8"
shard_threads=""
runs=3
duration_s=5
members=100000
connections=8
threads=1
pipeline=8
batch=16
durability=async
local_mix="earn=50,redeem=30,balance=20"
loads="local aware transfer-same transfer-cross"
keep=0
jifen_port=${JIFEN_PORT:-17390}
jifen_http_port=${JIFEN_HTTP_PORT:-17391}
initial_points=1000000

# The opening comment, up to the first line that is not one.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --shards) shard_counts=$2; shift 2 ;;
        --shard-threads) shard_threads=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --duration) duration_s=$2; shift 2 ;;
        --members) members=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --pipeline) pipeline=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --durability) durability=$2; shift 2 ;;
        --local-mix) local_mix=$2; shift 2 ;;
        --loads) loads=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "scaling: unknown flag $1" >&2; usage 2 ;;
        *) build_dir=$1; shift ;;
    esac
done
script_name=scaling
# shellcheck source=bench/lib.sh
source "$repo_dir/bench/lib.sh"

thread_flag=()
[[ -n $shard_threads ]] && thread_flag=(--shard-threads "$shard_threads")

ticks_per_s=$(getconf CLK_TCK)

# CPU time (user + system, in clock ticks) the jifend process has used, all threads included.
# Fields 14 and 15 of /proc/<pid>/stat; the command name (field 2) has no spaces here.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$jifend_pid/stat"; }

# measure MIX [FLAG...]: prints "ops ops_per_sec p99_us cpu_us_per_op cross_shard_percent", the
# last "-" when no transfer ran.
measure() {
    "$bench" --port "$jifen_port" --members "$members" --enroll --initial-points "$initial_points" \
        --mix balance=1 -n 1 >/dev/null 2>"$work_dir/setup.err" || {
        echo "scaling: enrolment failed:" >&2; tail -5 "$work_dir/setup.err" >&2; exit 1; }
    local before after json
    before=$(cpu_ticks)
    local mix=$1; shift
    if ! json=$("$bench" --port "$jifen_port" --members "$members" --mix "$mix" "$@" -c "$connections" \
            -t "$threads" --pipeline "$pipeline" --batch "$batch" -d "$duration_s" --json \
            2>"$work_dir/bench.err"); then
        echo "scaling: jifen-bench failed:" >&2; tail -5 "$work_dir/bench.err" >&2; exit 1
    fi
    after=$(cpu_ticks)
    local ops rate p99 cross transfers
    ops=$(json_number ops <<<"$json")
    rate=$(json_number ops_per_sec <<<"$json")
    p99=$(json_number p99_us <<<"$json")
    cross=$(json_number cross_shard_transfers <<<"$json")
    # The transfer row of per_op: {"transfer":{"ops":N,...}}.
    transfers=$(grep -o '"transfer":{"ops":[0-9]*' <<<"$json" | grep -o '[0-9]*$' || true)
    awk -v o="$ops" -v r="$rate" -v p="$p99" -v t=$((after - before)) -v hz="$ticks_per_s" \
        -v c="${cross:-0}" -v n="${transfers:-0}" 'BEGIN {
            printf "%d %.1f %.1f %.3f %s\n", o, r, p, (o > 0 ? t / hz * 1e6 / o : 0),
                (n > 0 ? sprintf("%.1f", c / n * 100) : "-") }'
}

machine_line "$runs runs of ${duration_s} s; durability $durability; shard threads ${shard_threads:-default};" \
    "members $members, connections $connections, threads $threads, pipeline $pipeline, batch $batch"

results=$work_dir/results.tsv
: >"$results"
# load_flags LOAD: sets mix and flags for one load.
load_flags() {
    mix=$local_mix
    flags=()
    case $1 in
        local) ;;
        aware) flags=(--shard-aware) ;;
        transfer) mix="transfer=1"; flags=(--transfers any) ;;
        transfer-same) mix="transfer=1"; flags=(--transfers same-shard) ;;
        transfer-cross) mix="transfer=1"; flags=(--transfers cross-shard) ;;
        *) echo "scaling: unknown load $1 (local, aware, transfer-same, transfer-cross, transfer)" >&2
           exit 2 ;;
    esac
}
for load in $loads; do load_flags "$load"; done  # Refuse an unknown load before any run.

# With one shard every transfer stays on it: jifen-bench --transfers cross-shard refuses to run.
impossible() { [[ $1 == 1 && $2 == transfer-cross ]]; }

for shard_count in $shard_counts; do
    for load in $loads; do
        if impossible "$shard_count" "$load"; then
            echo "  shards $shard_count $load: skipped, one shard has no transfer across shards" >&2
            continue
        fi
        load_flags "$load"
        for run in $(seq 1 "$runs"); do
            start_jifend --shards "$shard_count" --durability "$durability" "${thread_flag[@]}"
            read -r ops rate p99 cpu cross < <(measure "$mix" "${flags[@]}")
            stop_jifend
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shard_count" "$load" "$run" "$rate" "$p99" "$cpu" \
                "$cross" >>"$results"
            [[ $cross == - ]] || cross="$cross%"
            echo "  shards $shard_count $load run $run: $rate ops/s, p99 $p99 us, server CPU $cpu us/op" \
                "($ops ops; cross-shard $cross)" >&2
        done
    done
done

pick() {  # pick SHARDS LOAD COLUMN
    awk -F'\t' -v s="$1" -v l="$2" -v c="$3" '$1 == s && $2 == l { print $c }' "$results" | median
}
pick_percent() {  # pick_percent SHARDS LOAD: the median cross-shard share, "-" without transfers.
    local values
    values=$(awk -F'\t' -v s="$1" -v l="$2" '$1 == s && $2 == l && $7 != "-" { print $7 }' "$results")
    if [[ -z $values ]]; then echo "-"; else printf '%.1f%%' "$(median <<<"$values")"; fi
}

echo
printf '%-7s %-15s %14s %12s %16s %12s\n' shards load "ops/s" "p99 us" "server CPU us/op" "cross-shard"
for shard_count in $shard_counts; do
    for load in $loads; do
        if impossible "$shard_count" "$load"; then
            printf '%-7s %-15s %14s\n' "$shard_count" "$load" "skipped: one shard, nothing crosses"
            continue
        fi
        printf '%-7s %-15s %14.0f %12.0f %16.2f %12s\n' "$shard_count" "$load" \
            "$(pick "$shard_count" "$load" 4)" "$(pick "$shard_count" "$load" 5)" \
            "$(pick "$shard_count" "$load" 6)" "$(pick_percent "$shard_count" "$load")"
    done
done
echo "(medians of $runs runs; local mix $local_mix;"
echo " cross-shard: measured share of the completed transfers whose members live on two shards)"
