#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks (no docker).
#
#   scripts/postgres.sh start        # prints postgres://postgres@127.0.0.1:PORT/postgres on stdout
#   scripts/postgres.sh stop URL     # stops that cluster and deletes its files
#   scripts/postgres.sh stop         # stops every cluster this script started
#
# Installs Debian's `postgresql` package when its binaries are missing (needs root), runs initdb in
# a temp dir, listens on 127.0.0.1 on a free port with trust auth, and runs the server as the
# `postgres` user when invoked as root (PostgreSQL refuses to run as root).
set -euo pipefail

readonly PREFIX="${TMPDIR:-/tmp}/tandem-pg."

log() { echo "postgres.sh: $*" >&2; }

pg_bin_dir() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then
    echo "$dir"
  fi
}

ensure_installed() {
  if [[ -n "$(pg_bin_dir)" ]]; then
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "PostgreSQL is not installed and installing it needs root"
    exit 1
  fi
  log "installing Debian's postgresql package"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  if [[ -z "$(pg_bin_dir)" ]]; then
    log "no PostgreSQL binaries under /usr/lib/postgresql/*/bin after installing"
    exit 1
  fi
}

# Runs a command as the postgres user when we are root, else as ourselves.
as_db_user() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  ensure_installed
  local bin dir port
  bin=$(pg_bin_dir)
  dir=$(mktemp -d "${PREFIX}XXXXXX")
  chmod 755 "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$dir"
  fi
  as_db_user "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  port=$(free_port)
  echo "$port" >"$dir/port"
  # Loopback only; the socket lives in the temp dir so nothing system-wide is touched.
  as_db_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  log "cluster in $dir"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop_dir() {
  local dir=$1 bin
  bin=$(pg_bin_dir)
  if [[ -n "$bin" && -f "$dir/data/postmaster.pid" ]]; then
    as_db_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  rm -rf -- "$dir"
}

# shellcheck source-path=SCRIPTDIR source=lib/throwaway.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/throwaway.sh"
throwaway_main "$@"
