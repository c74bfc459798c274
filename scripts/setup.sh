#!/usr/bin/env bash
# Installs whatever Debian 12 packages jifen needs and are missing, then configures and builds.
# Usage: scripts/setup.sh [build-dir] [extra cmake args...]   (default build dir: build)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config libboost1.81-dev liblmdb-dev libsimdjson-dev
          libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libcli11-dev libspdlog-dev
          libfmt-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "jifen: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_dir=${1:-build}
shift || true
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
