#!/usr/bin/env bash
# Measures the protocol and server targets of docs/performance.md on this machine, one server
# shard and one client thread over loopback, and prints one table of medians:
#
#   batched      earn, --batch 8192 frames pipelined, sync durability: throughput
#   pipelined    earn, one operation per frame, --pipeline 256, async and sync: throughput
#   light load   redeem, one operation per frame, open loop at --rate (default 500/s), async and
#                sync: p50/p99 latency from each operation's intended send time
#   fsync        the disk's own fdatasync latency (fio, 4 KiB writes each followed by an
#                fdatasync, in the data directory's file system): the yardstick for sync latency
#
#   bench/targets.sh [BUILD_DIR] [--runs N] [--duration S] [--members N] [--rate R] [--keep]
#
# Every run gets a fresh data directory and server. Medians over --runs (default 3). About 4
# minutes with the defaults. Needs fio (apt-get install fio) for the fsync row.
set -euo pipefail

repo_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=""
runs=3
duration_s=5
members=100000
rate=500
keep=0
jifen_port=${JIFEN_PORT:-17395}
jifen_http_port=${JIFEN_HTTP_PORT:-17396}

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --duration) duration_s=$2; shift 2 ;;
        --members) members=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "targets: unknown flag $1" >&2; usage 2 ;;
        *) build_dir=$1; shift ;;
    esac
done
script_name=targets
# shellcheck source=bench/lib.sh
source "$repo_dir/bench/lib.sh"
command -v fio >/dev/null || { echo "targets: fio not found: apt-get install fio" >&2; exit 2; }


# fsync_latency: prints "p50_us p99_us" of fdatasync after 4 KiB writes, 10 s, in work_dir.
fsync_latency() {
    fio --name=fsync --directory="$work_dir" --rw=write --bs=4k --size=16m --fdatasync=1 \
        --runtime=10 --time_based --output-format=json 2>/dev/null |
        python3 -c 'import json, sys
p = json.load(sys.stdin)["jobs"][0]["sync"]["lat_ns"]["percentile"]
print("%.1f %.1f" % (p["50.000000"] / 1000, p["99.000000"] / 1000))'
}

# run DURABILITY BENCH_FLAGS...: a fresh server, enrolled members, one measured run; prints
# "ops_per_sec p50_us p99_us".
run() {
    local durability=$1; shift
    start_jifend --shards 1 --durability "$durability"
    "$bench" --port "$jifen_port" --members "$members" --enroll --initial-points 1000000 \
        --mix balance=1 -n 1 >/dev/null 2>"$work_dir/setup.err" || {
        echo "targets: enrolment failed:" >&2; tail -5 "$work_dir/setup.err" >&2; exit 1; }
    local json
    if ! json=$("$bench" --port "$jifen_port" --members "$members" -c 1 -t 1 -d "$duration_s" \
            --json "$@" 2>"$work_dir/bench.err"); then
        echo "targets: jifen-bench failed:" >&2; tail -5 "$work_dir/bench.err" >&2; exit 1
    fi
    stop_jifend
    echo "$(json_number ops_per_sec <<<"$json") $(json_number p50_us <<<"$json") $(json_number p99_us <<<"$json")"
}

machine_line "$runs runs of ${duration_s} s; 1 shard, 1 connection, 1 client thread; members $members"

results=$work_dir/results.tsv
: >"$results"
declare -A flags=(
    [batched]="--mix earn=1 --batch 8192 --pipeline 8"
    [pipelined]="--mix earn=1 --batch 1 --pipeline 256"
    [light]="--mix redeem=1 --batch 1 --pipeline 16 --rate $rate --warmup 1"
)
for run_index in $(seq 1 "$runs"); do
    read -r p50 p99 < <(fsync_latency)
    printf 'fsync\t-\t%s\t-\t%s\t%s\n' "$run_index" "$p50" "$p99" >>"$results"
    echo "  run $run_index: fsync p50 $p50 us p99 $p99 us" >&2
    for row in "batched sync" "pipelined async" "pipelined sync" "light async" "light sync"; do
        read -r load durability <<<"$row"
        # shellcheck disable=SC2086  # The flags are split into words on purpose.
        read -r rate_done p50 p99 < <(run "$durability" ${flags[$load]})
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$load" "$durability" "$run_index" "$rate_done" "$p50" "$p99" >>"$results"
        echo "  run $run_index: $load $durability: $rate_done ops/s p50 $p50 us p99 $p99 us" >&2
    done
done

pick() {  # pick LOAD DURABILITY COLUMN
    awk -F'\t' -v l="$1" -v d="$2" -v c="$3" '$1 == l && $2 == d { print $c }' "$results" | median
}

echo
printf '%-10s %-6s %14s %10s %10s\n' load mode "ops/s" "p50 us" "p99 us"
printf '%-10s %-6s %14s %10.0f %10.0f\n' fsync - - "$(pick fsync - 5)" "$(pick fsync - 6)"
for row in "batched sync" "pipelined async" "pipelined sync" "light async" "light sync"; do
    read -r load durability <<<"$row"
    printf '%-10s %-6s %14.0f %10.0f %10.0f\n' "$load" "$durability" "$(pick "$load" "$durability" 4)" \
        "$(pick "$load" "$durability" 5)" "$(pick "$load" "$durability" 6)"
done
fsync_p99=$(pick fsync - 6)
echo "(medians of $runs runs; light load: $rate redeems/s, open loop; sync light-load p99 /" \
     "fsync p99 = $(awk -v a="$(pick light sync 6)" -v b="$fsync_p99" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'))"
