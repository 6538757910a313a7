#!/usr/bin/env bash
# Configures (once) and builds Dray into ./build. Extra arguments go to cmake
# at configure time, e.g. scripts/build.sh -DDRAY_SANITIZE=address,undefined
# TARGETS (space-separated) builds only those targets, e.g. TARGETS=dray for
# the binary alone (scripts/start.sh); the default builds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@"
fi
targets=()
for t in ${TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" "${targets[@]}"
