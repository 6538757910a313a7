#!/usr/bin/env bash
# Installs the Debian 12 packages Dray needs to build, test and run.
# Idempotent: runs apt-get update and install only when something is missing.
set -euo pipefail

packages=(
  g++ clang-14 cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev   # Asio/Beast networking, Boost.JSON
  libsqlite3-dev sqlite3                   # the embedded store
  libpq-dev postgresql-15                  # the PostgreSQL store, and its tests' own server
  libssl-dev
  libcli11-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev                          # workflows written in YAML (dray workflow submit)
  libcctz-dev tzdata                       # cron schedules in IANA time zones
  libgtest-dev libgmock-dev libbenchmark-dev
  curl procps
  iproute2                                 # ip netns: the chaos partition test
  libclang-rt-14-dev                       # libFuzzer and the sanitizers for clang (fuzz/)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
