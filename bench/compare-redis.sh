#!/usr/bin/env bash
# Compares jifend with Redis on equivalent workloads, same machine, same members, same client
# connections, threads and pipeline depth, and prints one table of medians with the ratio.
#
#   bench/compare-redis.sh [BUILD_DIR] [--runs N] [--duration S] [--members N] [--connections C]
#                          [--threads T] [--pipeline P] [--batch B] [--modes "async sync"]
#                          [--workloads "earn redeem"] [--shards N] [--keep]
#
# Workloads (each on a fresh server, so every run starts from the same state):
#   earn    Redis: INCRBY member:<rand> 100.  jifen: earn (idempotent by transaction id, logged).
#   redeem  Redis: EVALSHA bench/redis/redeem.lua (checks the balance, DECRBY, RPUSH a history
#           entry).  jifen: redeem (checked, oldest lot first, idempotent, logged with history).
#           Both start every member with 1,000,000 points, so no redeem is refused.
# Durability modes:
#   async   Redis appendonly yes + appendfsync everysec.  jifend --durability async.
#   sync    Redis appendonly yes + appendfsync always.    jifend --durability sync.
#
# The Redis load comes from redis-benchmark (-c, -P, --threads, -r keyspace): a C client that loads
# Redis harder than any client we would write, so Redis is not handicapped by its driver. Its run
# length is set by an operation count; a short calibration run per mode, workload and shape (not
# reported) picks the count that lasts --duration seconds. jifen's load comes from jifen-bench
# --shard-aware (one connection per shard group, each sending its shard's members). Two shapes,
# each with the same operations in flight per connection on both sides:
#   single   one operation per request: Redis -P P, jifen --pipeline P --batch 1;
#   batched  Redis -P P*B (P*B commands written back to back), jifen --pipeline P --batch B
#            (P frames of B operations). --batch 1 skips this shape.
#
# Default total time is about 7 minutes (2 modes x 2 workloads x 2 shapes x 3 runs x 2 servers
# x 5 s plus start-up and enrolment). Everything it starts is stopped on exit.
set -euo pipefail

repo_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=""
runs=3
duration_s=5
members=100000
connections=8
threads=1
pipeline=16
batch=64
modes="async sync"
workloads="earn redeem"
shards=""
keep=0
redis_port=${REDIS_PORT:-17379}
jifen_port=${JIFEN_PORT:-17380}
jifen_http_port=${JIFEN_HTTP_PORT:-17381}
initial_points=1000000

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --duration) duration_s=$2; shift 2 ;;
        --members) members=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --pipeline) pipeline=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --modes) modes=$2; shift 2 ;;
        --workloads) workloads=$2; shift 2 ;;
        --shards) shards=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "compare-redis: unknown flag $1" >&2; usage 2 ;;
        *) build_dir=$1; shift ;;
    esac
done
script_name=compare-redis
# shellcheck source=bench/lib.sh
source "$repo_dir/bench/lib.sh"
for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || {
        echo "compare-redis: $tool not found: apt-get install redis-server redis-tools" >&2; exit 2; }
done

redis_pid=""
stop_redis() {
    if [[ -n $redis_pid ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
    fi
}
extra_cleanup=stop_redis

wait_for() {  # wait_for DESCRIPTION COMMAND...: up to 10 s.
    local what=$1; shift
    for _ in $(seq 1 200); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "compare-redis: $what did not come up" >&2
    exit 2
}

start_redis() {  # start_redis MODE
    local fsync=everysec
    [[ $1 == sync ]] && fsync=always
    rm -rf "$work_dir/redis"; mkdir -p "$work_dir/redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work_dir/redis" --save '' \
        --appendonly yes --appendfsync "$fsync" --logfile "$work_dir/redis/redis.log" &
    redis_pid=$!
    wait_for redis-server redis-cli -p "$redis_port" ping
}

start_jifend_in() {  # start_jifend_in MODE
    local shard_flag=()
    [[ -n $shards ]] && shard_flag=(--shards "$shards")
    start_jifend --durability "$1" "${shard_flag[@]}"
}

# Sets every balance key member:<12 digits> for 0..members-1, the keys redis-benchmark's
# __rand_int__ draws with -r members.
preload_redis() {
    awk -v m="$members" -v p="$initial_points" 'BEGIN {
        for (i = 0; i < m; i++) {
            k = sprintf("member:%012d", i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(p), p
        }
    }' | redis-cli -p "$redis_port" --pipe >/dev/null
}

redis_command() {  # redis_command WORKLOAD: the command line redis-benchmark repeats.
    case "$1" in
        earn) echo "INCRBY member:__rand_int__ 100" ;;
        redeem)
            local sha
            sha=$(redis-cli -p "$redis_port" SCRIPT LOAD "$(cat "$repo_dir/bench/redis/redeem.lua")")
            echo "EVALSHA $sha 1 member:__rand_int__ 100 __rand_int__" ;;
    esac
}

# redis_run WORKLOAD COUNT DEPTH: prints "ops_per_sec p99_us" from redis-benchmark's CSV line.
redis_run() {
    local command
    command=$(redis_command "$1")
    # shellcheck disable=SC2086  # The command is split into words on purpose.
    redis-benchmark -p "$redis_port" -c "$connections" -P "$3" --threads "$threads" \
        -r "$members" -n "$2" --csv $command |
        awk -F'","' 'NR == 2 { gsub(/"/, "", $0); split($0, f, ","); printf "%s %.1f\n", f[2], f[7] * 1000 }'
}

# jifen_run WORKLOAD BATCH: prints "ops_per_sec p99_us" from jifen-bench's JSON line.
jifen_run() {
    local setup=(--enroll)
    [[ $1 == redeem ]] && setup+=(--initial-points "$initial_points")
    local json
    if ! json=$("$bench" --port "$jifen_port" --mix "$1=1" --members "$members" "${setup[@]}" \
            -c "$connections" -t "$threads" --pipeline "$pipeline" --batch "$2" --shard-aware \
            -d "$duration_s" --json 2>"$work_dir/jifen-bench.err"); then
        echo "compare-redis: jifen-bench failed:" >&2
        tail -5 "$work_dir/jifen-bench.err" >&2
        exit 1
    fi
    echo "$(json_number ops_per_sec <<<"$json") $(json_number p99_us <<<"$json")"
}

machine_line "$runs runs of ${duration_s} s;" \
    "members $members, connections $connections, threads $threads, pipeline $pipeline"
echo "$(redis-server --version | cut -d' ' -f1-3); jifend $(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2

shapes="single"
[[ $batch -gt 1 ]] && shapes="single batched"
batch_of() { [[ $1 == batched ]] && echo "$batch" || echo 1; }

results=$work_dir/results.tsv
: >"$results"
for mode in $modes; do
    for workload in $workloads; do
        for shape in $shapes; do
            jifen_batch=$(batch_of "$shape")
            redis_depth=$((pipeline * jifen_batch))
            # Calibrate the operation count that makes redis-benchmark last about duration_s.
            start_redis "$mode"
            [[ $workload == redeem ]] && preload_redis
            read -r calibration_rate _ < <(redis_run "$workload" $((100000 * jifen_batch)) "$redis_depth")
            stop_redis
            count=$(awk -v r="$calibration_rate" -v d="$duration_s" 'BEGIN { printf "%d", r * d }')
            for run in $(seq 1 "$runs"); do
                start_redis "$mode"
                [[ $workload == redeem ]] && preload_redis
                read -r rate p99 < <(redis_run "$workload" "$count" "$redis_depth")
                stop_redis
                printf '%s\t%s\t%s\tredis\t%s\t%s\t%s\n' "$mode" "$workload" "$shape" "$run" "$rate" "$p99" >>"$results"
                echo "  $mode $workload $shape run $run: redis -P $redis_depth $rate ops/s p99 ${p99} us" >&2

                start_jifend_in "$mode"
                read -r rate p99 < <(jifen_run "$workload" "$jifen_batch")
                stop_jifend
                printf '%s\t%s\t%s\tjifen\t%s\t%s\t%s\n' "$mode" "$workload" "$shape" "$run" "$rate" "$p99" >>"$results"
                echo "  $mode $workload $shape run $run: jifen batch $jifen_batch $rate ops/s p99 ${p99} us" >&2
            done
        done
    done
done

pick() {  # pick MODE WORKLOAD SHAPE SERVER COLUMN: the median of that column over the runs.
    awk -F'\t' -v m="$1" -v w="$2" -v h="$3" -v s="$4" -v c="$5" \
        '$1 == m && $2 == w && $3 == h && $4 == s { print $c }' "$results" | median
}

echo
printf '%-6s %-8s %-8s %14s %12s %14s %12s %12s\n' mode workload shape "redis ops/s" "redis p99us" \
    "jifen ops/s" "jifen p99us" "jifen/redis"
for mode in $modes; do
    for workload in $workloads; do
        for shape in $shapes; do
            redis_rate=$(pick "$mode" "$workload" "$shape" redis 6)
            jifen_rate=$(pick "$mode" "$workload" "$shape" jifen 6)
            printf '%-6s %-8s %-8s %14.0f %12.0f %14.0f %12.0f %11.2fx\n' "$mode" "$workload" \
                "$shape" "$redis_rate" "$(pick "$mode" "$workload" "$shape" redis 7)" \
                "$jifen_rate" "$(pick "$mode" "$workload" "$shape" jifen 7)" \
                "$(awk -v a="$jifen_rate" -v b="$redis_rate" 'BEGIN { print (b > 0 ? a / b : 0) }')"
        done
    done
done
echo "(medians of $runs runs; ratio of the median throughputs; p99 from each tool's own histogram;"
echo " single: Redis -P $pipeline, jifen --pipeline $pipeline --batch 1; batched: Redis -P $((pipeline * batch)),"
echo " jifen --pipeline $pipeline --batch $batch)"
# The earn target compares across modes: jifen acknowledging only durable earns against Redis
# fsyncing once a second.
if [[ " $modes " == *" sync "* && " $modes " == *" async "* && " $workloads " == *" earn "* ]]; then
    for shape in $shapes; do
        jifen_sync=$(pick sync earn "$shape" jifen 6)
        redis_everysec=$(pick async earn "$shape" redis 6)
        echo "earn, $shape: jifen sync / Redis appendfsync everysec = $(awk -v a="$jifen_sync" \
            -v b="$redis_everysec" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')"
    done
fi
