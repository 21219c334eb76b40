#!/usr/bin/env bash
# Offline check of deploy/: `make deploy-check`.
#   1. every kustomization (deploy/base, deploy/overlays/*) renders with
#      `kubectl kustomize`, and its output validates with
#      `kubernetes-validate --strict` against Kubernetes $K8S_VERSION (built-in kinds);
#   2. the rendered objects keep the rules deploy/ is built on (no Secret values,
#      gRPC health probes on the service's own name, the hardened securityContext,
#      every secretKeyRef to the operator's `frontline-secrets`);
#   3. deploy/postgres/cluster.yaml (CloudNativePG CRDs: no schema offline) and
#      deploy/nats/values.yaml (Helm values) parse as YAML and say what they must;
#   4. deploy/nats/values.yaml renders with `helm template` only when the NATS
#      chart is at hand (NATS_CHART=<chart dir or .tgz>): it is on no registry
#      this machine reaches, so by default that step is skipped, saying so.
# Tools: scripts/install-kube-tools.sh (pinned; idempotent).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
K8S_VERSION="${K8S_VERSION:-1.33.0}"
BIN="$ROOT/.tools/bin"

scripts/install-kube-tools.sh
export PYTHONPATH="$ROOT/.tools/kubernetes-validate${PYTHONPATH:+:$PYTHONPATH}"   # PyYAML comes with it

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Checks of a rendered file beyond the schema; prints the object count.
check_rendered() {
    python3 - "$1" <<'PY'
import sys, yaml
path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
health = {
    "frontline-intake": ("frontline.v1.IntakeService", 50051),
    "frontline-conversation": ("frontline.v1.ConversationService", 50052),
    "frontline-routing": ("frontline.v1.RoutingService", 50053),
    "frontline-analytics": ("frontline.v1.AnalyticsService", 50054),
}
config = {}
for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("frontline-config"):
        config = d.get("data", {})
if config.get("FRONTLINE_HEALTH_LISTEN") != "0.0.0.0:8086":
    errors.append("frontline-config: FRONTLINE_HEALTH_LISTEN must be 0.0.0.0:8086 (the probes' port)")
kinds = {}
for d in docs:
    kind, name = d["kind"], d["metadata"]["name"]
    kinds.setdefault(kind, set()).add(name)
    where = f"{kind}/{name}"
    if kind == "Secret":
        errors.append(f"{where}: Secrets are created by the operator, never committed")
    if kind != "Deployment":
        continue
    pod = d["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        errors.append(f"{where}: automountServiceAccountToken must be false")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errors.append(f"{where}: pod securityContext needs runAsNonRoot and seccomp RuntimeDefault")
    if name not in health:
        errors.append(f"{where}: unknown service")
        continue
    svc, port = health[name]
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if not (sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                and sc.get("capabilities", {}).get("drop") == ["ALL"]):
            errors.append(f"{where}: container {c['name']} needs readOnlyRootFilesystem, no privilege escalation, drop ALL")
        if c.get("command") != [f"/usr/local/bin/{name}"]:
            errors.append(f"{where}: command must run /usr/local/bin/{name}")
        # Probes ask the plaintext health-only port (the gRPC port may speak TLS).
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            g = c.get(probe, {}).get("grpc")
            if g != {"port": 8086, "service": svc}:
                errors.append(f"{where}: {probe} must be grpc on the health port 8086 for {svc}, is {g}")
        ports = {p["containerPort"] for p in c.get("ports", [])}
        if not {port, 8086} <= ports:
            errors.append(f"{where}: container must expose gRPC {port} and health 8086, has {sorted(ports)}")
        if not any(p.get("name") == "metrics" for p in c.get("ports", [])):
            errors.append(f"{where}: no `metrics` port")
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["name"] != "frontline-secrets":
                errors.append(f"{where}: {e['name']} refers to Secret {ref['name']}")
            if "value" in e and e["name"] in ("FRONTLINE_KEK", "FRONTLINE_JWT_SECRET", "DATABASE_URL", "FRONTLINE_KEK_PREVIOUS"):
                errors.append(f"{where}: {e['name']} must come from the Secret")
for k in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
    missing = set(health) - kinds.get(k, set())
    if missing:
        errors.append(f"no {k} for {sorted(missing)}")
for k in ("NetworkPolicy", "ConfigMap", "ServiceAccount"):
    if k not in kinds:
        errors.append(f"no {k}")
if errors:
    print("\n".join(f"ERROR {path}: {e}" for e in errors), file=sys.stderr)
    sys.exit(1)
print(len(docs), " ".join(f"{k}={len(v)}" for k, v in sorted(kinds.items())))
PY
}

failed=0
for dir in deploy/base deploy/overlays/*/; do
    dir="${dir%/}"
    out="$TMP/$(echo "$dir" | tr / _).yaml"
    if ! "$BIN/kubectl" kustomize "$dir" >"$out"; then
        echo "FAIL $dir: kubectl kustomize" >&2; failed=1; continue
    fi
    if ! "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$out" >"$TMP/validate.log" 2>&1 ||
        grep -q '^ERROR' "$TMP/validate.log"; then
        grep -v '^WARN' "$TMP/validate.log" | grep -v '^ ' >&2 || true
        echo "FAIL $dir: kubernetes-validate --strict (Kubernetes $K8S_VERSION)" >&2; failed=1; continue
    fi
    if ! summary="$(check_rendered "$out")"; then
        echo "FAIL $dir: deploy rules" >&2; failed=1; continue
    fi
    echo "ok   $dir: ${summary%% *} objects valid against Kubernetes $K8S_VERSION (strict): ${summary#* }"
done

# CloudNativePG: CRDs, so no schema here; parse and check the essentials.
if python3 - deploy/postgres/cluster.yaml <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
clusters = [d for d in docs if d.get("kind") == "Cluster"]
assert all(d.get("apiVersion") == "postgresql.cnpg.io/v1" for d in docs), "apiVersion must be postgresql.cnpg.io/v1"
assert len(clusters) == 1, "one Cluster"
c = clusters[0]["spec"]
assert c["instances"] == 3, "3 instances"
assert c["storage"]["size"], "storage size"
init = c["bootstrap"]["initdb"]
assert init["database"] and init["owner"], "bootstrap database and owner"
for d in docs:
    if d["kind"] == "Database":
        assert d["spec"]["cluster"]["name"] == clusters[0]["metadata"]["name"], "Database on the Cluster"
        assert d["spec"]["owner"] == init["owner"], "Database owned by the bootstrap owner"
    elif d["kind"] != "Cluster":
        raise AssertionError(f"unexpected kind {d['kind']}")
print(f"ok   deploy/postgres/cluster.yaml: {len(docs)} CloudNativePG objects parse (CRDs: not schema-validated)")
PY
then :; else echo "FAIL deploy/postgres/cluster.yaml" >&2; failed=1; fi

# NATS values: parse and check the settings the services rely on.
if python3 - deploy/nats/values.yaml <<'PY'
import sys, yaml
v = yaml.safe_load(open(sys.argv[1]))
cfg = v["config"]
assert cfg["cluster"]["enabled"] is True and cfg["cluster"]["replicas"] == 3, "3-node cluster"
js = cfg["jetstream"]
assert js["enabled"] is True and js["fileStore"]["enabled"] is True, "JetStream on file storage"
assert js["fileStore"]["pvc"]["enabled"] is True, "file storage on a PVC"
assert js["merge"]["sync_interval"] == "always", "sync_interval: always"
print("ok   deploy/nats/values.yaml: parses; 3-node JetStream cluster, file storage on a PVC, sync_interval always")
PY
then :; else echo "FAIL deploy/nats/values.yaml" >&2; failed=1; fi

if [[ -n "${NATS_CHART:-}" ]]; then
    out="$TMP/nats.yaml"
    if "$BIN/helm" template nats "$NATS_CHART" -n frontline -f deploy/nats/values.yaml >"$out" &&
        "$BIN/kubernetes-validate" --quiet -k "$K8S_VERSION" "$out"; then
        echo "ok   deploy/nats/values.yaml: helm template $NATS_CHART renders and validates"
    else
        echo "FAIL deploy/nats/values.yaml: helm template $NATS_CHART" >&2; failed=1
    fi
else
    echo "skip helm template of deploy/nats/values.yaml: the NATS chart is not available offline (set NATS_CHART=<chart dir or .tgz>)"
fi

# Grafana dashboards: valid JSON, every panel querying Prometheus (`expr`) or
# PostgreSQL (`rawSql`; tests/tests/grafana.rs runs those against the schema).
for dash in deploy/grafana/*.json; do
    if python3 - "$dash" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
panels = d["panels"]
def query(p, t):
    kind = (t.get("datasource") or p.get("datasource") or {}).get("type", "")
    return t.get("rawSql") if "postgres" in kind else t.get("expr")
bad = [p.get("title") for p in panels if not p.get("targets") or not all(query(p, t) for t in p["targets"])]
assert panels and not bad, f"panels without a query: {bad}"
print(f"ok   {sys.argv[1]}: {len(panels)} panels")
PY
    then :; else echo "FAIL $dash" >&2; failed=1; fi
done

if [[ $failed -ne 0 ]]; then
    echo "deploy-check: FAILED" >&2
    exit 1
fi
echo "deploy-check: ok"
