#!/usr/bin/env bash
# Builds jifen (installing missing packages first) and starts jifend with the embedded default
# configuration: 127.0.0.1:7300 (binary protocol), 127.0.0.1:7301 (HTTP), data in ./data.
# Extra arguments go to jifend, e.g. scripts/run.sh --shards 2 --durability async
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/server/jifend --data-dir data "$@"
