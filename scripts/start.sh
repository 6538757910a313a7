#!/usr/bin/env bash
# Installs what is missing, builds, and starts Dray on its embedded SQLite
# store (data in ./dray-data) with a built-in command worker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/bin/dray server --data ./dray-data --worker "$@"
