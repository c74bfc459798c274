#!/usr/bin/env bash
# Runs jifend with 1, 2, 4 and 8 shards under the same load and prints, per shard count, the
# throughput, p99 and the server's CPU time per operation (utime + stime of the jifend process
# from /proc/<pid>/stat before and after the measured run, divided by the operations). Three
# loads per shard count, on separate rows:
#   local     earn/redeem/balance, every operation on one member's shard; connections send any
#             member, so with S shards (S-1)/S of the operations are handed to another shard;
#   aware     the same mix with jifen-bench --shard-aware: each connection asks the server for
#             one shard and sends only that shard's members, so nothing is handed over;
#   transfer  member-to-member transfers; with S shards and uniform keys a fraction (S-1)/S of
#             them crosses shards and takes the two-leg path.
#
#   bench/scaling.sh [BUILD_DIR] [--shards "1 2 4 8"] [--runs N] [--duration S] [--members N]
#                    [--connections C] [--threads T] [--pipeline P] [--batch B]
#                    [--durability async|sync] [--local-mix MIX] [--loads "local aware transfer"]
#                    [--keep]
#
# Every run gets a fresh data directory and server; members are enrolled (with points to
# transfer) by an unmeasured jifen-bench call before the CPU counters are read. Medians over
# --runs (default 3). Default total time is about 5 minutes on 2 cores; use
# --runs 1 or --shards "1 2" for a quick look. Everything it starts is stopped on exit. On a
# machine with fewer cores than shards, the extra shards share cores: the table then shows the
# cost of oversubscription, not of sharding.
set -euo pipefail

repo_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=""
shard_counts="1 2 4 8"
runs=3
duration_s=5
members=100000
connections=8
threads=1
pipeline=8
batch=16
durability=async
local_mix="earn=50,redeem=30,balance=20"
loads="local aware transfer"
keep=0
jifen_port=${JIFEN_PORT:-17390}
jifen_http_port=${JIFEN_HTTP_PORT:-17391}
initial_points=1000000

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --shards) shard_counts=$2; shift 2 ;;
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

ticks_per_s=$(getconf CLK_TCK)

# CPU time (user + system, in clock ticks) the jifend process has used, all threads included.
# Fields 14 and 15 of /proc/<pid>/stat; the command name (field 2) has no spaces here.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$jifend_pid/stat"; }

# measure MIX [FLAG...]: prints "ops ops_per_sec p99_us cpu_us_per_op".
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
    local ops rate p99
    ops=$(json_number ops <<<"$json")
    rate=$(json_number ops_per_sec <<<"$json")
    p99=$(json_number p99_us <<<"$json")
    awk -v o="$ops" -v r="$rate" -v p="$p99" -v t=$((after - before)) -v hz="$ticks_per_s" \
        'BEGIN { printf "%d %.1f %.1f %.3f\n", o, r, p, (o > 0 ? t / hz * 1e6 / o : 0) }'
}

machine_line "$runs runs of ${duration_s} s; durability $durability;" \
    "members $members, connections $connections, threads $threads, pipeline $pipeline, batch $batch"

results=$work_dir/results.tsv
: >"$results"
for shard_count in $shard_counts; do
    for load in $loads; do
        mix=$local_mix
        flags=()
        [[ $load == transfer ]] && mix="transfer=1"
        [[ $load == aware ]] && flags=(--shard-aware)
        for run in $(seq 1 "$runs"); do
            start_jifend --shards "$shard_count" --durability "$durability"
            read -r ops rate p99 cpu < <(measure "$mix" "${flags[@]}")
            stop_jifend
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$shard_count" "$load" "$run" "$rate" "$p99" "$cpu" >>"$results"
            echo "  shards $shard_count $load run $run: $rate ops/s, p99 $p99 us, server CPU $cpu us/op ($ops ops)" >&2
        done
    done
done

pick() {  # pick SHARDS LOAD COLUMN
    awk -F'\t' -v s="$1" -v l="$2" -v c="$3" '$1 == s && $2 == l { print $c }' "$results" | median
}

echo
printf '%-7s %-9s %14s %12s %16s %14s\n' shards load "ops/s" "p99 us" "server CPU us/op" "cross-shard"
for shard_count in $shard_counts; do
    for load in $loads; do
        cross="-"
        [[ $load == transfer ]] && cross=$(awk -v s="$shard_count" 'BEGIN { printf "%.0f%%", (s - 1) / s * 100 }')
        printf '%-7s %-9s %14.0f %12.0f %16.2f %14s\n' "$shard_count" "$load" \
            "$(pick "$shard_count" "$load" 4)" "$(pick "$shard_count" "$load" 5)" \
            "$(pick "$shard_count" "$load" 6)" "$cross"
    done
done
echo "(medians of $runs runs; local mix $local_mix; cross-shard: expected share of transfers whose"
echo " two members live on different shards, for uniform keys)"
