#!/usr/bin/env bash
# A throwaway S3 server (moto's, from PyPI) for the attachment tests, on loopback.
#
#   scripts/s3.sh start        # prints http://127.0.0.1:PORT on stdout (bucket `tandem-test` made)
#   scripts/s3.sh stop URL     # stops that server and deletes its files
#   scripts/s3.sh stop         # stops every server this script started
#
# Installs `moto[server]` with pip when `moto_server` is missing. The tests take the URL from
# TANDEM_TEST_S3_URL and use the bucket `tandem-test` with any credentials (moto checks none).
set -euo pipefail

readonly PREFIX="${TMPDIR:-/tmp}/tandem-s3."
readonly BUCKET="tandem-test"

log() { echo "s3.sh: $*" >&2; }

ensure_installed() {
  if command -v moto_server >/dev/null 2>&1; then
    return
  fi
  log "installing moto[server] from PyPI"
  python3 -m pip install --quiet 'moto[server]' >&2 \
    || python3 -m pip install --quiet --break-system-packages 'moto[server]' >&2
  hash -r
  command -v moto_server >/dev/null 2>&1 || { log "moto_server is still missing"; exit 1; }
}

start() {
  ensure_installed
  local dir port url
  dir=$(mktemp -d "${PREFIX}XXXXXX")
  port=$(free_port)
  echo "$port" >"$dir/port"
  # setsid: its own process group, so `stop` ends it and nothing else.
  setsid moto_server -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "$url/moto-api/"; then
      break
    fi
    sleep 0.2
  done
  # moto takes unsigned requests: a plain PUT creates the bucket.
  curl -sf -X PUT -o /dev/null "$url/$BUCKET" \
    || { cat "$dir/server.log" >&2; stop_dir "$dir"; log "moto did not start"; exit 1; }
  log "moto in $dir"
  echo "$url"
}

stop_dir() {
  local dir=$1 pid
  if [[ -f "$dir/pid" ]]; then
    pid=$(cat "$dir/pid")
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  fi
  rm -rf -- "$dir"
}

# shellcheck source-path=SCRIPTDIR source=lib/throwaway.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/throwaway.sh"
throwaway_main "$@"
