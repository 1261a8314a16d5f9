#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks: its own data
# directory, socket directory and loopback port, nothing shared with a
# system cluster.
#   scripts/postgres-cluster.sh start DIR PORT   # prints the URL of database "tracefold"
#   scripts/postgres-cluster.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server binaries not found; run scripts/install-deps.sh" >&2; exit 1; }
# initdb and postgres refuse to run as root; the Debian package's user runs them.
as_owner=()
[ "$(id -u)" -ne 0 ] || as_owner=(runuser -u postgres --)

case "$cmd" in
start)
  port=${3:?port}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log"
  fi
  # fsync off: test data need not survive a power cut, and it keeps CI fast.
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" start >/dev/null
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'tracefold'" | grep -q 1 \
    || "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -q -c "CREATE DATABASE tracefold"
  echo "postgres://postgres@127.0.0.1:$port/tracefold"
  ;;
stop)
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
*)
  echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
