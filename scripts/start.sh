#!/usr/bin/env bash
# Installs what is missing, builds the dray binary (not the tests: that is
# scripts/test.sh), and starts Dray on its embedded SQLite store (data in
# ./dray-data) with a built-in command worker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
TARGETS=dray scripts/build.sh
exec "${BUILD_DIR:-build}"/bin/dray server --data ./dray-data --worker "$@"
