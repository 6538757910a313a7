#!/usr/bin/env bash
# Runs a named workload against a fresh `dray server` (its own temp data dir,
# 127.0.0.1 only) several times and prints a table: median, min and max,
# with the conditions of the run.
#
#   bench/run.sh w1-single | w1-batch | w2 | w3 | all   [RUNS (default 3)]
#
# Environment: BUILD_DIR (default build), PORT (default 7390).
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-all}
runs=${2:-3}
build=${BUILD_DIR:-build}
port=${PORT:-7390}
dray="$build/bin/dray"
bench="$build/bench"
for bin in "$dray" "$bench/dray_submit_load" "$bench/dray_drain_load" "$bench/dray_latency_load"; do
  [ -x "$bin" ] || { echo "missing $bin: build first (scripts/build.sh)" >&2; exit 2; }
done

data=""
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
  [ -n "$data" ] && rm -rf "$data"
  data=""
}
trap stop_server EXIT
start_server() {
  data=$(mktemp -d /tmp/dray-bench-XXXXXX)
  "$dray" server --listen "127.0.0.1:$port" --data "$data" > "$data.out" 2> "$data.err" &
  server_pid=$!
  for _ in $(seq 1 100); do
    grep -q "listening on" "$data.out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "server did not start: $(cat "$data.err")" >&2
  exit 1
}

# median / min / max of the numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {printf "%s|%s|%s", a[int((NR+1)/2)], a[1], a[NR]}'; }

rate() { grep -o "rate=[0-9]*" | head -1 | cut -d= -f2; }

row() {  # name unit values...
  local name=$1 unit=$2; shift 2
  local s; s=$(printf '%s\n' "$@" | stats)
  IFS='|' read -r med min max <<< "$s"
  printf '| %-54s | %9s %-7s | %9s | %9s |\n' "$name" "$med" "$unit" "$min" "$max"
}

one() {  # workload -> one number on stdout
  start_server
  case $1 in
    w1-single) "$bench/dray_submit_load" --port "$port" --tasks 50000 --connections 64 --batch 1 | rate ;;
    w1-batch) "$bench/dray_submit_load" --port "$port" --tasks 100000 --connections 4 --batch 1000 | rate ;;
    w2)
      "$bench/dray_submit_load" --port "$port" --tasks 100000 --connections 4 --batch 1000 > /dev/null
      "$bench/dray_drain_load" --port "$port" --queue bench --workers 4 --batch 256 | rate ;;
    w3-p99) "$bench/dray_latency_load" --port "$port" --rate 1000 --seconds 20 |
              grep -o "p99=[0-9.]*" | cut -d= -f2 ;;
  esac
  stop_server
}

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "Dray $rev on $(nproc) cores, $(uname -sr); durable (SQLite WAL, synchronous=FULL, answer after fsync);"
echo "server and load generator on the same machine over 127.0.0.1; ~100-byte payloads; $runs runs each; $(date -u +%FT%TZ)"
echo
printf '| %-54s | %17s | %9s | %9s |\n' "workload" "median" "min" "max"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..56})" "$(printf -- '-%.0s' {1..19})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..11})"
case $workload in all) names="w1-single w1-batch w2 w3-p99" ;; w3) names="w3-p99" ;; *) names=$workload ;; esac
for w in $names; do
  vals=()
  for _ in $(seq 1 "$runs"); do vals+=("$(one "$w")"); done
  case $w in
    w1-single) row "W1 enqueue, 1 task/request, 64 connections" "tasks/s" "${vals[@]}" ;;
    w1-batch) row "W1 enqueue, batches of 1000, 4 connections" "tasks/s" "${vals[@]}" ;;
    w2) row "W2 drain 100k, 4 workers, lease+ack 256, no-op" "tasks/s" "${vals[@]}" ;;
    w3-p99) row "W3 submit-to-start p99 at 1000/s for 20 s, 1 worker" "ms" "${vals[@]}" ;;
  esac
done
