#!/usr/bin/env bash
# A throwaway Supabase Auth (GoTrue) server, built from the tarball vendored in vendor/gotrue/.
#
#   scripts/gotrue.sh build              # builds (or reuses) the binary; prints its path on stdout
#   scripts/gotrue.sh start PG_URL       # prints http://127.0.0.1:PORT on stdout
#   scripts/gotrue.sh stop URL           # stops that server and deletes its files
#   scripts/gotrue.sh stop               # stops every server this script started
#
# `build` unpacks vendor/gotrue/supabase-auth-$VERSION.tar.xz and runs `go build` (Go from the
# machine; its modules from the Go module proxy) into ~/.cache/tandem/gotrue/$VERSION/auth
# (TANDEM_GOTRUE_CACHE changes the directory), reused when present. The first build takes
# minutes; later calls return at once.
#
# `start` creates a database of its own (gotrue_PORT) on the PostgreSQL server of PG_URL (e.g.
# from scripts/postgres.sh, whose user may create databases), with GoTrue's schema `auth`, and
# runs GoTrue on a free loopback port: it applies its own migrations, then serves (its routes at
# the root: /signup, /token, /logout, /user, /health; hosted Supabase puts them under
# /auth/v1). Sign-up needs no email (GOTRUE_MAILER_AUTOCONFIRM=true). The HS256 secret is
# GOTRUE_JWT_SECRET from the environment when set, else a generated one; either way it is kept
# owner-only in the server's directory, `secret-file URL` prints that file's path. Any other
# GOTRUE_* variable of the environment reaches GoTrue too (e.g. GOTRUE_JWT_EXP=20 for tokens
# that expire quickly, GOTRUE_PASSWORD_MIN_LENGTH).
set -euo pipefail

readonly VERSION="v2.196.0"
readonly PREFIX="${TMPDIR:-/tmp}/tandem-gotrue."
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly TARBALL="$ROOT/vendor/gotrue/supabase-auth-$VERSION.tar.xz"
readonly CACHE="${TANDEM_GOTRUE_CACHE:-$HOME/.cache/tandem/gotrue}/$VERSION"

log() { echo "gotrue.sh: $*" >&2; }

build() {
  local binary="$CACHE/auth" work started
  if [[ -x "$binary" ]]; then
    log "GoTrue $VERSION already built: $binary"
    echo "$binary"
    return
  fi
  command -v go >/dev/null 2>&1 || { log "GoTrue is written in Go: install Go 1.26 or newer (https://go.dev/dl/)"; exit 1; }
  [[ -f "$TARBALL" ]] || { log "missing $TARBALL"; exit 1; }
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  tar -xJf "$TARBALL" -C "$work"
  started=$(date +%s)
  log "building GoTrue $VERSION (the first time takes minutes)"
  # As its Makefile does: static, the version stamped in, no VCS stamp (a tarball has none). A Go
  # older than its go.mod asks for fetches the toolchain it names (GOTOOLCHAIN=auto, unless the
  # environment says otherwise; Debian's Go defaults to local).
  (cd "$work/supabase-auth-$VERSION" \
    && CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" go build -buildvcs=false \
      -ldflags "-X github.com/supabase/auth/internal/utilities.Version=$VERSION" \
      -o "$work/auth" .) >&2 \
    || { rm -rf -- "$work"; log "go build failed"; exit 1; }
  mv "$work/auth" "$binary"
  rm -rf -- "$work"
  log "built $binary in $(($(date +%s) - started)) s"
  echo "$binary"
}

pg_bin_dir() {
  find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1
}

start() {
  local pg_url=${1:-} binary dir port db base psql secret url
  [[ -n "$pg_url" ]] || { log "usage: $0 start POSTGRES_URL"; exit 2; }
  binary=$(build)
  psql="$(pg_bin_dir)/psql"
  [[ -x "$psql" ]] || psql=$(command -v psql) || { log "psql is missing"; exit 1; }
  dir=$(mktemp -d "${PREFIX}XXXXXX")
  chmod 700 "$dir"
  port=$(free_port)
  echo "$port" >"$dir/port"
  db="gotrue_$port"
  # The cluster's URL with another database: postgres://USER@HOST:PORT/<db>.
  base="${pg_url%%\?*}"
  base="${base%/*}"
  echo "$pg_url" >"$dir/postgres-url"
  echo "$db" >"$dir/database"
  "$psql" -q -v ON_ERROR_STOP=1 "$pg_url" -c "CREATE DATABASE $db" >&2
  "$psql" -q -v ON_ERROR_STOP=1 "$base/$db" -c "CREATE SCHEMA auth" >&2
  secret=${GOTRUE_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  (umask 077 && printf '%s' "$secret" >"$dir/jwt-secret")
  url="http://127.0.0.1:$port"
  # The binary without a command applies its migrations, then serves. setsid: its own process
  # group, so `stop` ends it and nothing else.
  GOTRUE_DB_DRIVER=postgres \
    DATABASE_URL="$base/$db?sslmode=disable&search_path=auth" \
    DB_NAMESPACE=auth \
    GOTRUE_API_HOST=127.0.0.1 \
    PORT="$port" \
    API_EXTERNAL_URL="$url" \
    GOTRUE_SITE_URL="$url" \
    GOTRUE_JWT_SECRET="$secret" \
    GOTRUE_JWT_EXP="${GOTRUE_JWT_EXP:-3600}" \
    GOTRUE_JWT_AUD=authenticated \
    GOTRUE_JWT_DEFAULT_GROUP_NAME=authenticated \
    GOTRUE_JWT_ADMIN_ROLES=service_role \
    GOTRUE_MAILER_AUTOCONFIRM=true \
    GOTRUE_EXTERNAL_EMAIL_ENABLED=true \
    GOTRUE_EXTERNAL_PHONE_ENABLED=false \
    GOTRUE_DISABLE_SIGNUP=false \
    GOTRUE_LOG_LEVEL="${GOTRUE_LOG_LEVEL:-info}" \
    setsid "$binary" >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 1 150); do
    if curl -sf -o /dev/null "$url/health"; then
      log "GoTrue $VERSION in $dir (log: $dir/server.log, secret: $dir/jwt-secret)"
      echo "$url"
      return
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  tail -n 30 "$dir/server.log" >&2
  stop_dir "$dir"
  log "GoTrue did not start"
  exit 1
}

stop_dir() {
  local dir=$1 pid pg_url db psql
  if [[ -f "$dir/pid" ]]; then
    pid=$(cat "$dir/pid")
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if [[ -f "$dir/postgres-url" && -f "$dir/database" ]]; then
    pg_url=$(cat "$dir/postgres-url")
    db=$(cat "$dir/database")
    psql="$(pg_bin_dir)/psql"
    # The cluster may be gone already (scripts/postgres.sh stop first): nothing to drop then.
    "$psql" -q "$pg_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf -- "$dir"
}

# The file holding the JWT secret of the server at URL.
secret_file() {
  local url=${1:-} port dir
  port=$(sed -E 's#^[a-z]+://[^:/]*:([0-9]+).*#\1#' <<<"$url")
  for dir in "$PREFIX"*; do
    if [[ -f "$dir/port" && "$(cat "$dir/port")" == "$port" ]]; then
      echo "$dir/jwt-secret"
      return
    fi
  done
  log "nothing this script started listens on port ${port:-?}"
  exit 1
}

# shellcheck source-path=SCRIPTDIR source=lib/throwaway.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/throwaway.sh"

case "${1:-}" in
  build) build ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  secret-file) secret_file "${2:-}" ;;
  *)
    echo "usage: $0 build | start POSTGRES_URL | stop [URL] | secret-file URL" >&2
    exit 2
    ;;
esac
