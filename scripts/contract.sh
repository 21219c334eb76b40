#!/usr/bin/env bash
# The API contract: `buf lint` over proto/, and `buf breaking` against the protos
# of the last landed commit (proto/LANDED_COMMIT), so a client of an internal
# system never breaks silently. CONTRACT_AGAINST overrides what to compare with
# (any buf input, e.g. '.git#branch=main,subdir=proto').
#
# After a release lands, record its commit: `git rev-parse HEAD > proto/LANDED_COMMIT`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUF="$ROOT/.tools/bin/buf"

"$BUF" lint
echo "buf lint: clean"

if [[ -n "${CONTRACT_AGAINST:-}" ]]; then
    against="$CONTRACT_AGAINST"
else
    landed="$(tr -d '[:space:]' <proto/LANDED_COMMIT)"
    if ! git cat-file -e "$landed^{commit}" 2>/dev/null; then
        echo "error: the landed commit $landed (proto/LANDED_COMMIT) is not in this clone;" \
            "fetch the full history (not a shallow clone) or set CONTRACT_AGAINST" >&2
        exit 1
    fi
    against=".git#ref=$landed,subdir=proto"
fi
"$BUF" breaking --against "$against"
echo "buf breaking: no breaking change against $against"
