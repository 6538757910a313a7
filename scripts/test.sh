#!/usr/bin/env bash
# Installs what is missing, builds, runs every test, then fuzzes each
# libFuzzer target for FUZZ_SECONDS (default 60; 0 skips) in a clang
# ASan+UBSan build (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${TEST_JOBS:-$(( $(nproc) * 2 ))}" --timeout 600)
fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then scripts/fuzz.sh "$fuzz_seconds"; fi
