#!/usr/bin/env bash
# Builds the frame decoder's libFuzzer target with clang and fuzzes it for a while, growing the
# checked-in corpus with what it finds. Usage: tests/fuzz/run.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
clang=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$clang" ] || { echo "tests/fuzz/run.sh: needs clang (apt-get install clang-14 libclang-rt-14-dev)"; exit 2; }
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER="$clang" -DJIFEN_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j2 --target frame_fuzzer
found=$(mktemp -d)
trap 'rm -rf "$found"' EXIT
build-fuzz/tests/fuzz/frame_fuzzer -max_total_time="$seconds" -max_len=4096 "$found" tests/fuzz/corpus
build-fuzz/tests/fuzz/frame_fuzzer -merge=1 tests/fuzz/corpus "$found" >/dev/null 2>&1
echo "corpus: $(ls tests/fuzz/corpus | wc -l) inputs"
