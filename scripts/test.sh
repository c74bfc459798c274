#!/usr/bin/env bash
# Builds jifen (installing missing packages first) and runs the whole test suite with CTest.
# Exits non-zero on any failure. Extra arguments go to ctest, e.g. scripts/test.sh -R engine
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build -DJIFEN_WERROR=ON
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
