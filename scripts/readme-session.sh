#!/usr/bin/env bash
# Runs the README's examples exactly as written against a fresh local stack
# (`scripts/run-local.sh`, what `make run` starts), so the README cannot drift from
# what the services do. Every ```sh block of README.md runs, in order, in one shell
# from the repository root — except a block right after a line
# `<!-- not run: <why> -->`. A command that fails stops the run with its README
# line; a `timeout` that expires (exit 124) is how the examples end live streams,
# so it counts as done.
#
# Needs the release binaries (`make release`), grpcurl (`make contract-tools`),
# jq, and the tools of `make tools`. Env: README (default README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
README="${README:-README.md}"
command -v jq >/dev/null || { echo "error: jq is missing (apt-get install jq)" >&2; exit 1; }

WORK="$(mktemp -d -t frontline-readme-XXXXXX)"
STACK=""
stop_stack() {
    if [[ -n "$STACK" ]] && kill -0 "$STACK" 2>/dev/null; then
        # TERM: a background job of a script ignores INT.
        kill -TERM "$STACK" 2>/dev/null || true
        wait "$STACK" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop_stack EXIT

# The examples, README lines kept at their line numbers (everything else blank),
# so an error names the README's own line.
python3 - "$README" >"$WORK/session.sh" <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
out, inside, run, previous = [], False, False, ""
for line in lines:
    if not inside and re.match(r"^```sh\s*$", line):
        inside, run = True, not previous.startswith("<!-- not run")
        out.append("")
    elif inside and line.startswith("```"):
        inside = False
        out.append("")
    else:
        out.append(line if inside and run else "")
    if line.strip():
        previous = line.strip()
print("\n".join(out))
PY
blocks=$(grep -cE '^```sh[[:space:]]*$' "$README" || true)
skipped=$(grep -c '^<!-- not run' "$README" || true)
[[ $blocks -gt 0 ]] || { echo "error: no \`\`\`sh blocks in $README" >&2; exit 1; }
echo "README session: $blocks sh blocks, $skipped marked not run"

echo "starting the local stack (scripts/run-local.sh; log $WORK/stack.log)..."
scripts/run-local.sh >"$WORK/stack.log" 2>&1 &
STACK=$!
for _ in $(seq 600); do
    grep -q '^ready:' "$WORK/stack.log" && break
    if ! kill -0 "$STACK" 2>/dev/null; then
        echo "error: the local stack stopped while starting:" >&2
        tail -n 40 "$WORK/stack.log" >&2
        exit 1
    fi
    sleep 0.2
done
grep -q '^ready:' "$WORK/stack.log" || { echo "error: the stack was not ready after 120 s" >&2; tail -n 40 "$WORK/stack.log" >&2; exit 1; }
echo "stack ready; running the README's examples"

export PATH="$ROOT/.tools/bin:$ROOT/target/release:$PATH"
# Through a pipe: examples that `tee /dev/stderr` would reopen a log file given
# as stderr and write over it from the start.
set +e
bash --noprofile --norc -E -c '
    set -uo pipefail
    trap '\''rc=$?; if [[ $rc -ne 124 ]]; then echo "README.md:$LINENO: exit $rc: $BASH_COMMAND" >&2; exit "$rc"; fi'\'' ERR
    source "$1"' session "$WORK/session.sh" 2>&1 | cat
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
    echo "README session FAILED (exit $status); the stack's last log lines:" >&2
    tail -n 30 "$WORK/stack.log" >&2
    exit "$status"
fi
echo "README session: every example ran"
