#!/usr/bin/env bash
# Installs the peer job servers the benchmarks compare Dray with, from
# Debian's packages and the npm registry, and stops any system service the
# packages start: bench/peers/run.sh starts its own instances on 127.0.0.1.
#
#   bench/peers/install.sh        (as root; idempotent)
set -euo pipefail
cd "$(dirname "$0")"
missing=()
for pkg in beanstalkd redis-server postgresql; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node.js: whatever provides `node` and `npm` already (Debian's packages or
# another build of it); Debian's only if neither is there.
command -v node > /dev/null && command -v npm > /dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Packages may start system-wide servers; the benchmarks run their own.
for svc in beanstalkd redis-server postgresql; do
  service "$svc" stop > /dev/null 2>&1 || true
done
pkill -x beanstalkd 2> /dev/null || true
pkill -x redis-server 2> /dev/null || true
cd node
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
