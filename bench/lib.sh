# Shared by the bench scripts (compare-redis.sh, scaling.sh, targets.sh): finding the binaries,
# starting and stopping one jifend in a scratch directory, cleaning up on exit, and the median of a
# column. Source it after parsing the flags, with script_name (for messages), repo_dir,
# build_dir (empty: the repository's build/), jifen_port, jifen_http_port and keep set.

build_dir=${build_dir:-$repo_dir/build}
jifend=$build_dir/server/jifend
bench=$build_dir/bench/load/jifen-bench
for tool in "$jifend" "$bench"; do
    [[ -x $tool ]] || { echo "$script_name: $tool not found: build it first" >&2; exit 2; }
done

work_dir=$(mktemp -d "/tmp/jifen-$script_name.XXXXXX")
jifend_pid=""
extra_cleanup=""  # A function the sourcing script wants run on exit too (e.g. stop_redis).

stop_jifend() {
    if [[ -n $jifend_pid ]]; then
        kill "$jifend_pid" 2>/dev/null || true
        wait "$jifend_pid" 2>/dev/null || true
        jifend_pid=""
    fi
}
cleanup() {
    [[ -n $extra_cleanup ]] && "$extra_cleanup"
    stop_jifend
    if [[ $keep -eq 0 ]]; then rm -rf "$work_dir"; else echo "kept $work_dir" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_jifend FLAGS...: a fresh data directory and server; waits up to 10 s for its port.
start_jifend() {
    rm -rf "$work_dir/jifend"; mkdir -p "$work_dir/jifend"
    "$jifend" --data-dir "$work_dir/jifend/data" --port "$jifen_port" --http-port "$jifen_http_port" \
        --log-level warn "$@" >"$work_dir/jifend/jifend.log" 2>&1 &
    jifend_pid=$!
    for _ in $(seq 1 200); do
        port_open "$jifen_port" && return 0
        kill -0 "$jifend_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "$script_name: jifend did not come up:" >&2
    tail -5 "$work_dir/jifend/jifend.log" >&2
    exit 2
}

# json_number NAME: the first number field NAME of the JSON line on stdin.
json_number() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The first line of every report: the machine and how loaded it was when the run began.
machine_line() {
    echo "$script_name: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg); $*" >&2
}
