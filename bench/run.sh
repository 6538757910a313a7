#!/usr/bin/env bash
# Runs named workloads against a fresh `dray server` (its own temp data dir,
# 127.0.0.1 only) and, for `peers`, against the peer job servers of
# bench/peers/, and prints one table: median, min and max over RUNS runs, with
# the conditions of the run.
#
#   bench/run.sh [WORKLOAD...] [RUNS]
#
# WORKLOAD: w1-single | w1-batch | w2 | w3 | floor | w4 | overload | peers
#           all  = w1-single w1-batch w2 w3 floor           (a few minutes)
#           full = all w4 overload peers                    (most of an hour)
# RUNS: runs per figure (default 3).
#
# Environment: BUILD_DIR (default build), PORT (default 7390),
#   W4_SIZES (default "10000 100000 1000000 10000000"): backlog sizes for w4,
#   PEERS (default "beanstalkd bullmq graphile-worker pg-boss"),
#   PEER_MODES (default "durable default"), W3_SECONDS (default 20),
#   SERVER_ARGS: more flags for `dray server` (e.g. "--io-threads 1"),
#   OVERLOAD_SECONDS (default 8): how long the overload workload floods,
#   STORE: sqlite (default) | postgres: where Dray stores; postgres starts one
#   PostgreSQL 15 for the whole run (fsync=on, synchronous_commit=on, as for
#   the PostgreSQL peers) and gives each server a new database,
#   BENCH_SMOKE=1: tiny sizes (2,000 tasks, W3 for 1 s, W4 at 1,000) to check
#   that the harness and the generators work, as ctest does; not a measurement.
#   PORT=0 lets the server pick a free port.
#
# w4 fills the queue with each size, reads the server's RSS, restarts it on
# the same data (W5: time from exec to serving), then drains 100k tasks
# (or all, if fewer) with the SDK worker (dispatch rate at that backlog).
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
runs=3
if [ ${#args[@]} -gt 0 ] && [[ ${args[-1]} =~ ^[0-9]+$ ]]; then runs=${args[-1]}; unset 'args[-1]'; fi
[ ${#args[@]} -gt 0 ] || args=(all)
build=${BUILD_DIR:-build}
requested_port=${PORT:-7390}
port=$requested_port
w3_seconds=${W3_SECONDS:-20}
overload_seconds=${OVERLOAD_SECONDS:-8}
w1s_tasks=50000 w1b_tasks=100000 w2_tasks=100000 floor_tasks=100000
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
  w1s_tasks=2000 w1b_tasks=2000 w2_tasks=2000 floor_tasks=2000 w3_seconds=1 overload_seconds=1
  W4_SIZES=${W4_SIZES:-1000}
fi
dray="$build/bin/dray"
bench="$build/bench"
for bin in "$dray" "$bench/dray_submit_load" "$bench/dray_drain_load" "$bench/dray_latency_load" \
           "$bench/dray_store_floor"; do
  [ -x "$bin" ] || { echo "missing $bin: build first (scripts/build.sh)" >&2; exit 2; }
done

names=()
for a in "${args[@]}"; do
  case $a in
    all) names+=(w1-single w1-batch w2 w3 floor) ;;
    full) names+=(w1-single w1-batch w2 w3 floor w4 overload peers) ;;
    w1-single|w1-batch|w2|w3|floor|w4|overload|peers) names+=("$a") ;;
    *) echo "unknown workload $a" >&2; exit 2 ;;
  esac
done

data=""
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
store=${STORE:-sqlite}
case $store in sqlite|postgres) ;; *) echo "STORE must be sqlite or postgres" >&2; exit 2 ;; esac
pg_dir="" pg_port="" pg_db=""
pg_as=()
[ "$(id -u)" -eq 0 ] && pg_as=(runuser -u postgres --)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
pg_stop() {
  [ -n "$pg_dir" ] && "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop > /dev/null 2>&1 || true
  [ -n "$pg_dir" ] && rm -rf "$pg_dir"
  pg_dir=""
}
# One PostgreSQL for the whole run, configured as bench/peers/run.sh
# configures it for graphile-worker and pg-boss.
pg_start() {
  [ -x "$pg_bin/initdb" ] || { echo "STORE=postgres: no PostgreSQL server (scripts/install-deps.sh)" >&2; exit 2; }
  pg_dir=$(mktemp -d /tmp/dray-bench-pg-XXXXXX)
  chmod 755 "$pg_dir"
  [ ${#pg_as[@]} -gt 0 ] && chown postgres "$pg_dir"
  "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U dray -E UTF8 > "$pg_dir/initdb.log" 2>&1
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -l "$pg_dir/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$pg_dir -c fsync=on -c synchronous_commit=on -c max_connections=200" \
    start > /dev/null
}
cleanup() { stop_server; [ -n "$data" ] && rm -rf "$data" "$data.out" "$data.err"; data=""; }
trap 'cleanup; pg_stop' EXIT

# Starts the server on $data (a new temp dir unless $1 = keep); sets
# started_ms to the milliseconds from exec to "listening" (recovery included).
started_ms=0
start_server() {
  if [ "${1:-}" != keep ]; then data=$(mktemp -d /tmp/dray-bench-XXXXXX); fi
  : > "$data.out"
  local t0; t0=$(date +%s%N)
  # shellcheck disable=SC2086  # SERVER_ARGS is a list of flags
  local where=(--data "$data")
  if [ "$store" = postgres ]; then
    # A new database per fresh server; `keep` restarts on the same one.
    # (Runs are often in a subshell: the name must not come from a counter.)
    if [ "${1:-}" != keep ]; then
      pg_db=bench_$(date +%s%N)
      psql -q "host=127.0.0.1 port=$pg_port user=dray dbname=postgres" -c "CREATE DATABASE $pg_db" > /dev/null
    fi
    where=(--store "postgresql://dray@127.0.0.1:$pg_port/$pg_db")
  fi
  "$dray" server --listen "127.0.0.1:$requested_port" "${where[@]}" ${SERVER_ARGS:-} >> "$data.out" 2> "$data.err" &
  server_pid=$!
  for _ in $(seq 1 12000); do  # up to 10 minutes (a 10M-task recovery)
    if grep -q "listening on" "$data.out" 2>/dev/null; then
      started_ms=$((($(date +%s%N) - t0) / 1000000))
      port=$(grep -m1 -o "listening on .*" "$data.out" | sed 's/.*://')
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start: $(tail -3 "$data.err")" >&2
  exit 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }

# median / min / max of the numbers on stdin
stats() { sort -g | awk '{a[NR]=$1} END {printf "%s|%s|%s", a[int((NR+1)/2)], a[1], a[NR]}'; }
median() { stats | cut -d'|' -f1; }
field() { grep -o "\b$1=[0-9.]*" | tail -1 | cut -d= -f2; }  # key -> its last value

table_head() {
  printf '| %-62s | %19s | %10s | %10s | %11s |\n' "workload" "median" "min" "max" "Dray/x"
  printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..64})" "$(printf -- '-%.0s' {1..21})" \
    "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..13})"
}
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n / 1e6; else if (n >= 1e3) printf "%gk", n / 1e3; else printf "%d", n }'; }

failed=0
row() {  # name unit ratio values...
  local name=$1 unit=$2 ratio=$3; shift 3
  local v
  for v in "$@"; do
    if [ -z "${v// /}" ]; then
      echo "no figure for: $name (a run failed; see its output above)" >&2
      failed=1
    fi
  done
  local s; s=$(printf '%s\n' "$@" | stats)
  IFS='|' read -r med min max <<< "$s"
  printf '| %-62s | %11s %-7s | %10s | %10s | %11s |\n' "$name" "$med" "$unit" "$min" "$max" "$ratio"
}
# Dray/peer: how many times better Dray is (rates: dray/peer; latencies: peer/dray).
ratio() { awk -v a="$1" -v b="$2" -v inv="${3:-0}" 'BEGIN {
  if (a == "" || b == "" || a + 0 == 0 || b + 0 == 0) { print "-"; exit }
  printf "%.2fx", inv ? b / a : a / b }'; }

declare -A dray_med  # workload -> Dray's median, for the peers' ratios

# Runs a generator; its output on stdout, or nothing (and the output on
# stderr) if it failed, so that the figure comes out empty and row() flags it.
gen() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "$out" >&2
    return 0
  fi
  echo "$out"
}

# --- Dray's workloads: each run on a fresh server; prints one line of numbers.
dray_once() {
  start_server
  case $1 in
    w1-single) gen "$bench/dray_submit_load" --port "$port" --tasks "$w1s_tasks" --connections 64 --batch 1 | field rate ;;
    w1-batch) gen "$bench/dray_submit_load" --port "$port" --tasks "$w1b_tasks" --connections 4 --batch 1000 | field rate ;;
    w2)
      "$bench/dray_submit_load" --port "$port" --tasks "$w2_tasks" --connections 4 --batch 1000 > /dev/null
      gen "$bench/dray_drain_load" --port "$port" --queue bench --workers 4 --batch 256 --limit "$w2_tasks" | field rate ;;
    w3)
      local out; out=$(gen "$bench/dray_latency_load" --port "$port" --rate 1000 --seconds "$w3_seconds")
      echo "$(field p50 <<< "$out") $(field p99 <<< "$out") $(grep -o 'p99\.9=[0-9.]*' <<< "$out" | cut -d= -f2) $(field max <<< "$out")" ;;
    overload)  # far past what one server commits; the default backlog bound refuses the rest
      local out; out=$(gen "$bench/dray_submit_load" --port "$port" --seconds "$overload_seconds" --connections 96 --batch 1000)
      echo "$(field rate <<< "$out") $(field refused_share <<< "$out") $(field p50 <<< "$out") $(field p99 <<< "$out")" ;;
  esac
  stop_server
  rm -rf "$data" "$data.out" "$data.err"; data=""
}

w3_rows() {  # label ratio-source values ("p50 p99 p999 max" per run)
  local label=$1 ref=$2; shift 2
  local i=1
  for q in p50 p99 p99.9 max; do
    local vals=()
    for v in "$@"; do vals+=("$(cut -d' ' -f$i <<< "$v")"); done
    local med; med=$(printf '%s\n' "${vals[@]}" | median)
    local r="-"
    if [ "$ref" = dray ]; then dray_med[w3-$q]=$med; else r=$(ratio "${dray_med[w3-$q]:-}" "$med" 1); fi
    row "$label submit-to-start $q" "ms" "$r" "${vals[@]}"
    i=$((i + 1))
  done
}

run_dray() {
  local w=$1 vals=()
  for _ in $(seq 1 "$runs"); do vals+=("$(dray_once "$w")"); done
  case $w in
    w1-single) dray_med[$w]=$(printf '%s\n' "${vals[@]}" | median)
               row "Dray W1 enqueue, 1 task/request, 64 connections" "tasks/s" "" "${vals[@]}" ;;
    w1-batch) dray_med[$w]=$(printf '%s\n' "${vals[@]}" | median)
              row "Dray W1 enqueue, batches of 1000, 4 connections" "tasks/s" "" "${vals[@]}" ;;
    w2) dray_med[$w]=$(printf '%s\n' "${vals[@]}" | median)
        row "Dray W2 drain $(human "$w2_tasks"), SDK worker, 4 threads, lease+ack 256" "tasks/s" "" "${vals[@]}" ;;
    w3) w3_rows "Dray W3 1000/s ${w3_seconds}s," dray "${vals[@]}" ;;
    overload) overload_rows "Dray overload ${overload_seconds}s, 96 conns x 1000," "${vals[@]}" ;;
  esac
}

overload_rows() {  # label values ("rate share p50 p99" per run)
  local label=$1; shift
  local i=1 what unit
  for what in "accepted:tasks/s" "refused with 429:share" "accepted p50:ms" "accepted p99:ms"; do
    unit=${what#*:}
    local vals=()
    for v in "$@"; do vals+=("$(cut -d' ' -f$i <<< "$v")"); done
    row "$label ${what%%:*}" "$unit" "" "${vals[@]}"
    i=$((i + 1))
  done
}

run_floor() {
  local tmp; tmp=$(mktemp -d /tmp/dray-floor-XXXXXX)
  local outs=()
  for _ in $(seq 1 "$runs"); do outs+=("$(gen "$bench/dray_store_floor" --tasks "$floor_tasks" --batch 1000 --dir "$tmp")"); done
  rm -rf "$tmp"
  for schema in dray minimal; do
    for phase in insert drain; do
      local vals=()
      for o in "${outs[@]}"; do vals+=("$(grep -E "^ +$schema +$phase " <<< "$o" | field rate)"); done
      local what; [ $phase = insert ] && what="inserts (W1)" || what="lease+ack (W2)"
      local r=""
      [ $phase = insert ] && r=$(ratio "${dray_med[w1-batch]:-}" "$(printf '%s\n' "${vals[@]}" | median)")
      [ $phase = drain ] && r=$(ratio "${dray_med[w2]:-}" "$(printf '%s\n' "${vals[@]}" | median)")
      [ $schema = minimal ] && r=""
      row "Floor: SQLite alone, $schema schema, $what, 1000/txn" "tasks/s" "$r" "${vals[@]}"
    done
  done
}

run_w4() {
  local payload=100
  for n in ${W4_SIZES:-10000 100000 1000000 10000000}; do
    local rss=() rec=() recrss=() disp=()
    for _ in $(seq 1 "$runs"); do
      start_server
      local base; base=$(rss_kb)
      local left=$n
      while [ "$left" -gt 0 ]; do  # in rounds, so a 10M fill stays under the live-task bound
        local chunk=$((left < 1000000 ? left : 1000000))
        "$bench/dray_submit_load" --port "$port" --tasks "$chunk" --connections 4 --batch 1000 > /dev/null
        left=$((left - chunk))
      done
      local full; full=$(rss_kb)
      rss+=("$(awk -v a="$full" -v b="$base" -v n="$n" -v p="$payload" 'BEGIN {printf "%.0f", (a - b) * 1024 / n - p}')")
      stop_server
      start_server keep
      rec+=("$started_ms")
      recrss+=("$(awk -v a="$(rss_kb)" -v n="$n" -v p="$payload" 'BEGIN {printf "%.0f", a * 1024 / n - p}')")
      local m=$((n < 100000 ? n : 100000))
      disp+=("$(gen "$bench/dray_drain_load" --port "$port" --queue bench --workers 4 --batch 256 --limit "$m" | field rate)")
      stop_server
      rm -rf "$data" "$data.out" "$data.err"; data=""
    done
    local label; label=$(human "$n")
    row "W4 $label queued: dispatch rate (SDK drain of up to 100k)" "tasks/s" "" "${disp[@]}"
    row "W4 $label queued: server memory per task beyond payload" "B" "" "${rss[@]}"
    row "W4 $label queued: same, after a restart" "B" "" "${recrss[@]}"
    row "W5 $label live: restart to serving (exec to listening)" "ms" "" "${rec[@]}"
  done
}

run_peers() {
  local peers_run=bench/peers/run.sh
  [ -x "$peers_run" ] || { echo "missing $peers_run" >&2; exit 2; }
  for peer in ${PEERS:-beanstalkd bullmq graphile-worker pg-boss}; do
    for mode in ${PEER_MODES:-durable default}; do
      case $peer in graphile-worker|pg-boss) [ "$mode" = default ] && continue ;; esac  # one PostgreSQL setting
      for w in w1-single w1-batch w2 w3; do
        local vals=()
        for _ in $(seq 1 "$runs"); do
          local out; out=$(W3_SECONDS=$w3_seconds "$peers_run" "$peer" "$mode" "$w" 2>> /tmp/dray-peers.err) ||
            { echo "peer $peer $mode $w failed (see /tmp/dray-peers.err)" >&2; continue 2; }
          if [ "$w" = w3 ]; then
            vals+=("$(field p50 <<< "$out") $(field p99 <<< "$out") $(field p999 <<< "$out") $(field max <<< "$out")")
          else
            vals+=("$(field rate <<< "$out")")
          fi
        done
        local med; [ "$w" != w3 ] && med=$(printf '%s\n' "${vals[@]}" | median)
        case $w in
          w1-single) row "$peer ($mode) W1 enqueue, 1 task/request, 64 clients" "tasks/s" "$(ratio "${dray_med[w1-single]:-}" "$med")" "${vals[@]}" ;;
          w1-batch) row "$peer ($mode) W1 enqueue, bulk of 1000" "tasks/s" "$(ratio "${dray_med[w1-batch]:-}" "$med")" "${vals[@]}" ;;
          w2) row "$peer ($mode) W2 drain 100k, no-op" "tasks/s" "$(ratio "${dray_med[w2]:-}" "$med")" "${vals[@]}" ;;
          w3) w3_rows "$peer ($mode) W3 1000/s ${w3_seconds}s," peer "${vals[@]}" ;;
        esac
      done
    done
  done
}

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && rev="$rev+local changes"
echo "Dray $rev on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr), $(free -g | awk '/Mem:/ {print $2}') GiB;"
if [ "$store" = postgres ]; then
  echo "durable: Dray on PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (fsync=on, synchronous_commit=on, defaults otherwise), every answer after COMMIT; server, database and load on one machine over 127.0.0.1;"
else
  echo "durable: SQLite WAL, synchronous=FULL, every answer after fsync; server and load on one machine over 127.0.0.1;"
fi
[ -n "${SERVER_ARGS:-}" ] && echo "server flags: $SERVER_ARGS"
echo "~100-byte JSON payloads; $runs run(s) per figure, each on a fresh server and data dir; $(date -u +%FT%TZ)."
echo "Dray/x: Dray's figure over the row's (rates: Dray/x; latencies: x/Dray), so above 1 means Dray is ahead."
echo
# Started here, in this shell, so that the EXIT trap stops it: the runs
# happen in subshells, whose own starts would outlive the script.
[ "$store" = postgres ] && pg_start
table_head
for w in "${names[@]}"; do
  case $w in
    floor) run_floor ;;
    w4) run_w4 ;;
    peers) run_peers ;;
    *) run_dray "$w" ;;
  esac
done
exit "$failed"
