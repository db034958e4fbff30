# shellcheck shell=bash
# What scripts/postgres.sh and scripts/s3.sh share: a free loopback port, and `start` / `stop
# [URL]` over the temp directories (named "$PREFIX…", each with a `port` file) of the servers the
# script started. The sourcing script defines PREFIX, log, start and stop_dir, then calls
# `throwaway_main "$@"`.

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if port_is_free "$port"; then
      echo "$port"
      return
    fi
  done
  log "no free port found"
  exit 1
}

# Stops the server listening on URL's port, or every one this script started.
stop() {
  local url=${1:-} port dir
  if [[ -n "$url" ]]; then
    port=$(sed -E 's#^[a-z]+://([^@/]*@)?[^:/]*:([0-9]+).*#\2#' <<<"$url")
    for dir in "$PREFIX"*; do
      if [[ -f "$dir/port" && "$(cat "$dir/port")" == "$port" ]]; then
        stop_dir "$dir"
        return
      fi
    done
    log "nothing this script started listens on port $port"
    exit 1
  fi
  for dir in "$PREFIX"*; do
    if [[ -d "$dir" ]]; then
      stop_dir "$dir"
    fi
  done
}

throwaway_main() {
  case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *)
      echo "usage: $0 start | stop [URL]" >&2
      exit 2
      ;;
  esac
}
