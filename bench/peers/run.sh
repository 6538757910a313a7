#!/usr/bin/env bash
# Starts one peer job server fresh (its own temp dir, 127.0.0.1 only, a free
# port), runs one workload against it, prints the driver's output (with the
# rate= or p50=/p99=/p999=/max= line bench/run.sh reads) and stops it,
# removing its files, also on error or Ctrl-C.
#
#   bench/peers/run.sh PEER MODE WORKLOAD
#
# PEER: beanstalkd | bullmq | graphile-worker | pg-boss
# MODE: durable (every acknowledged write synced) | default (the peer's own
#       default sync policy). PostgreSQL's default is durable already
#       (fsync=on, synchronous_commit=on): both modes run the same there.
# WORKLOAD: w1-single | w1-batch | w2 | w3
# Environment: TASKS (default 50000 for w1-single, 100000 otherwise),
#   W3_SECONDS (20), BUILD_DIR (build).
# Install first: bench/peers/install.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peer=${1:?peer}
mode=${2:?mode}
workload=${3:?workload}
case $workload in w1-single) tasks=${TASKS:-50000} ;; *) tasks=${TASKS:-100000} ;; esac
seconds=${W3_SECONDS:-20}
build=${BUILD_DIR:-$here/../../build}
case $mode in durable|default) ;; *) echo "mode must be durable or default" >&2; exit 2 ;; esac

dir=$(mktemp -d /tmp/dray-peer-XXXXXX)
chmod 755 "$dir"
pid=""
pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_dir" -m immediate stop > /dev/null 2>&1 || true
  fi
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port
  for _ in $(seq 1 200); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  exit 1
}
port=$(free_port)
node_run() { (cd "$here/node" && node "$@"); }

case $peer in
  beanstalkd)
    # The binlog in $dir; -f0: fsync before every answer; default: at most
    # every 50 ms.
    sync=()
    [ "$mode" = durable ] && sync=(-f 0)
    beanstalkd -l 127.0.0.1 -p "$port" -b "$dir" "${sync[@]}" &
    pid=$!
    wait_port "$port"
    echo "beanstalkd $(beanstalkd -v 2>&1 | awk '{print $2}'), binlog, $([ "$mode" = durable ] && echo 'fsync every write (-f 0)' || echo 'fsync at most every 50 ms (default)')"
    "$build/bench/dray_beanstalk_load" --port "$port" --workload "$workload" --tasks "$tasks" --seconds "$seconds"
    ;;
  bullmq)
    # AOF on; always: fsync before answering every write; everysec: once a second.
    fsync=always
    [ "$mode" = default ] && fsync=everysec
    cat > "$dir/redis.conf" <<EOF
port $port
bind 127.0.0.1
protected-mode yes
dir $dir
save ""
appendonly yes
appendfsync $fsync
EOF
    redis-server "$dir/redis.conf" > "$dir/redis.log" 2>&1 &
    pid=$!
    wait_port "$port"
    echo "bullmq $(node -p 'require("'"$here"'/node/node_modules/bullmq/package.json").version') on $(redis-server --version | awk '{print $3}'), AOF appendfsync $fsync"
    node_run bullmq.mjs --port "$port" --workload "$workload" --tasks "$tasks" --seconds "$seconds"
    ;;
  graphile-worker|pg-boss)
    pg_dir="$dir/pg"
    mkdir -p "$pg_dir"
    chown postgres "$dir" "$pg_dir"
    runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$pg_dir" -A trust -U postgres > "$dir/initdb.log" 2>&1
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_dir" -w -l "$pg_dir/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$pg_dir -c fsync=on -c synchronous_commit=on -c max_connections=200" \
      start > /dev/null
    wait_port "$port"
    echo "$peer $(node -p 'require("'"$here"'/node/node_modules/'"$peer"'/package.json").version') on PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'), fsync=on, synchronous_commit=on"
    script=graphile.mjs
    [ "$peer" = pg-boss ] && script=pgboss.mjs
    node_run "$script" --port "$port" --workload "$workload" --tasks "$tasks" --seconds "$seconds"
    ;;
  *) echo "unknown peer $peer" >&2; exit 2 ;;
esac
