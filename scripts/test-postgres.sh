#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: ctest starts it once before
# the tests that need it and stops it after them (a fixture, see
# tests/CMakeLists.txt).
#
#   scripts/test-postgres.sh start STATE_DIR   # initdb + start; writes STATE_DIR/conninfo
#   scripts/test-postgres.sh stop STATE_DIR    # stops it and removes its files
#   scripts/test-postgres.sh kill STATE_DIR    # kill -9 of the server (a crash)
#   scripts/test-postgres.sh restart STATE_DIR # starts it again, same data and port
#
# The cluster lives in a temp dir, listens on 127.0.0.1 on a free port and on
# a private socket dir, and runs as an unprivileged user (initdb refuses
# root: as root it runs as 'postgres', the user Debian's package creates).
# fsync is off: the tests kill Dray, not the machine, and PostgreSQL's WAL
# in the page cache survives a killed process; the benchmarks run with
# fsync on. Without a PostgreSQL server installed, start writes no conninfo
# and the PostgreSQL tests skip, saying so.
set -euo pipefail
action=${1:?start or stop}
state=${2:?state dir}
mkdir -p "$state"

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
as_user=()
if [ "$(id -u)" -eq 0 ]; then as_user=(runuser -u postgres --); fi

# pg_start DIR PORT: the server of DIR on 127.0.0.1:PORT, waiting until it
# accepts connections.
pg_start() {
  "${as_user[@]}" "$bindir/pg_ctl" -D "$1/data" -w -t 60 -l "$1/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $2 -c unix_socket_directories=$1 \
        -c fsync=off -c full_page_writes=off -c max_connections=300 \
        -c shared_buffers=128MB" start > /dev/null
}

case "$action" in
  kill)
    dir=$(cat "$state/dir")
    pid=$(head -1 "$dir/data/postmaster.pid")
    # The postmaster and every backend at once, as a crash of the machine's
    # database service would; the restart then runs crash recovery.
    kill -9 "$pid" $(pgrep -P "$pid") 2> /dev/null || true
    ;;
  restart)
    dir=$(cat "$state/dir")
    port=$(cat "$state/port")
    for _ in $(seq 1 100); do
      pg_start "$dir" "$port" && exit 0
      sleep 0.2
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
  start)
    rm -f "$state/conninfo"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
      echo "test-postgres: no PostgreSQL server installed (scripts/install-deps.sh installs it); PostgreSQL tests will skip"
      exit 0
    fi
    dir=$(mktemp -d /tmp/dray-pgtest-XXXXXX)
    chmod 755 "$dir"
    if [ ${#as_user[@]} -gt 0 ]; then chown postgres "$dir"; fi
    "${as_user[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U dray -E UTF8 --locale=C.UTF-8 \
      --no-sync > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
    echo "$dir" > "$state/dir"
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      port=$(( 20000 + RANDOM % 30000 ))
      if pg_start "$dir" "$port"; then
        echo "$port" > "$state/port"
        echo "host=127.0.0.1 port=$port user=dray dbname=postgres" > "$state/conninfo"
        echo "test-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2
    echo "test-postgres: could not start PostgreSQL on a free port" >&2
    exit 1
    ;;
  stop)
    rm -f "$state/conninfo"
    [ -f "$state/dir" ] || exit 0
    dir=$(cat "$state/dir")
    if [ -d "$dir/data" ]; then
      "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop > /dev/null 2>&1 || true
    fi
    rm -rf "$dir" "$state/dir" "$state/port"
    ;;
  *) echo "usage: $0 start|stop|kill|restart STATE_DIR" >&2; exit 2 ;;
esac
