#!/usr/bin/env bash
# Starts a throwaway local PostgreSQL for `make run` and prints how to reach it.
#
#   eval "$(scripts/start-postgres.sh [PORT])"   # sets DATABASE_URL and POSTGRES_DIR
#   ...
#   scripts/stop-postgres.sh "$POSTGRES_DIR"     # fast shutdown, removes the directory
#
# If DATABASE_URL is already set, nothing is started: it is printed back (and
# POSTGRES_DIR is printed empty, which stop-postgres.sh accepts as "nothing to stop").
# Otherwise the pinned server from .tools/postgres (`make tools`; or POSTGRES_BIN_DIR)
# is initialised in a fresh temporary directory (trust auth, superuser `frontline`,
# fsync off: development only), started with pg_ctl on 127.0.0.1:PORT (argument, else
# POSTGRES_PORT, else an ephemeral port), and the database `frontline` is created.
# PostgreSQL refuses to run as root, so when run as root the server runs as `nobody`
# (via setpriv) in a directory under /tmp owned by it.
#
# Only the two assignments `DATABASE_URL=...` and `POSTGRES_DIR=...` go to stdout;
# progress and errors go to stderr. The server keeps running after this script exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${DATABASE_URL:-}" ]]; then
    echo "DATABASE_URL is set; not starting a local PostgreSQL" >&2
    printf 'DATABASE_URL=%q\nPOSTGRES_DIR=\n' "$DATABASE_URL"
    exit 0
fi

BIN="${POSTGRES_BIN_DIR:-$ROOT/.tools/postgres/bin}"
for exe in initdb pg_ctl postgres createdb; do
    [[ -x "$BIN/$exe" ]] || { echo "error: $BIN/$exe missing; run \`make tools\` (or scripts/install-postgres.sh)" >&2; exit 1; }
done

PORT="${1:-${POSTGRES_PORT:-}}"
if [[ -z "$PORT" ]]; then
    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" ||
        { echo "error: could not pick a free port (python3 missing?); pass a port: $0 PORT" >&2; exit 1; }
fi
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "error: port must be a number, got '$PORT'" >&2; exit 1; }

# As root, run the server as nobody: PostgreSQL refuses to run as root.
AS_PG_USER=()
if [[ "$(id -u)" == 0 ]]; then
    command -v setpriv >/dev/null 2>&1 ||
        { echo "error: running as root, but setpriv (util-linux) is missing to run PostgreSQL as nobody" >&2; exit 1; }
    PG_UID="$(id -u nobody)" && PG_GID="$(id -g nobody)" ||
        { echo "error: running as root, but there is no user 'nobody' to run PostgreSQL as" >&2; exit 1; }
    AS_PG_USER=(setpriv "--reuid=$PG_UID" "--regid=$PG_GID" --clear-groups)
    "${AS_PG_USER[@]}" "$BIN/postgres" --version >/dev/null 2>&1 ||
        { echo "error: user nobody cannot run $BIN/postgres; it and every directory above it must be readable by nobody" >&2; exit 1; }
    DIR="$(mktemp -d /tmp/frontline-pg-XXXXXX)"
    chown "$PG_UID:$PG_GID" "$DIR"
else
    DIR="$(mktemp -d -t frontline-pg-XXXXXX)"
fi
touch "$DIR/.frontline-postgres" # marker for stop-postgres.sh

STARTED=""
fail() {
    echo "error: $*" >&2
    local log="$DIR/initdb.log"
    [[ -n "$STARTED" ]] && log="$DIR/postgres.log"
    [[ -s "$log" ]] && { echo "--- last lines of $log:" >&2; tail -n 20 "$log" >&2; }
    if [[ -n "$STARTED" ]]; then "${AS_PG_USER[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$DIR"
    exit 1
}

echo "initialising PostgreSQL in $DIR" >&2
"${AS_PG_USER[@]}" "$BIN/initdb" -D "$DIR/data" -U frontline --auth=trust --encoding=UTF8 \
    --no-locale --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 ||
    fail "initdb failed"

STARTED=1
"${AS_PG_USER[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories='$DIR' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2 ||
    fail "postgres did not start on 127.0.0.1:$PORT (port taken?)"

"$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U frontline frontline >&2 ||
    fail "could not create database frontline"

echo "postgres       postgres://frontline@127.0.0.1:$PORT/frontline (data $DIR; stop: scripts/stop-postgres.sh $DIR)" >&2
printf 'DATABASE_URL=%q\nPOSTGRES_DIR=%q\n' "postgres://frontline@127.0.0.1:$PORT/frontline" "$DIR"
