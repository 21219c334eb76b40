#!/usr/bin/env bash
# Stops a PostgreSQL started by scripts/start-postgres.sh and removes its directory.
#
#   scripts/stop-postgres.sh "$POSTGRES_DIR"
#
# An empty argument (start-postgres.sh used an existing DATABASE_URL) does nothing.
# Refuses directories that start-postgres.sh did not create.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1-}"
if [[ -z "$DIR" ]]; then
    exit 0
fi
if [[ ! -d "$DIR" ]]; then
    echo "$DIR does not exist; nothing to stop" >&2
    exit 0
fi
[[ -f "$DIR/.frontline-postgres" ]] ||
    { echo "error: $DIR was not created by scripts/start-postgres.sh; not touching it" >&2; exit 1; }

BIN="${POSTGRES_BIN_DIR:-$ROOT/.tools/postgres/bin}"
AS_PG_USER=()
if [[ "$(id -u)" == 0 ]]; then
    AS_PG_USER=(setpriv "--reuid=$(stat -c %u "$DIR")" "--regid=$(stat -c %g "$DIR")" --clear-groups)
fi

if [[ -f "$DIR/data/postmaster.pid" ]]; then
    if ! "${AS_PG_USER[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 20 stop >&2; then
        echo "fast shutdown failed; trying immediate shutdown" >&2
        "${AS_PG_USER[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 10 stop >&2 || true
    fi
fi
rm -rf "$DIR"
echo "stopped PostgreSQL and removed $DIR" >&2
