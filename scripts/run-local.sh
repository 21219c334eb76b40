#!/usr/bin/env bash
# Runs a local Frontline stack: nats-server (unless NATS_URL is set), PostgreSQL
# (unless DATABASE_URL is set), intake, conversation, routing and analytics from
# target/release (intake, routing and analytics share that PostgreSQL).
# Ctrl-C stops everything. Use `make run`, which installs tools and builds first.
#
# Env: NATS_URL (use an existing server), NATS_PORT (default 4333),
#      DATABASE_URL (use an existing PostgreSQL), POSTGRES_PORT (default: a free one),
#      FRONTLINE_JWT_SECRET (default dev-secret-change-me),
#      FRONTLINE_KEK (required with an external NATS_URL; otherwise a fresh one is
#      generated, as the local NATS store is new on every run too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/target/release"
NATS_PORT="${NATS_PORT:-4333}"
export FRONTLINE_JWT_SECRET="${FRONTLINE_JWT_SECRET:-dev-secret-change-me}"
export FRONTLINE_LOG_FORMAT=text

PIDS=()
STORE_DIR=""
POSTGRES_DIR=""
cleanup() {
    trap - INT TERM EXIT
    echo "stopping local stack..." >&2
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n "$STORE_DIR" ]] && rm -rf "$STORE_DIR"
    [[ -n "$POSTGRES_DIR" ]] && "$ROOT/scripts/stop-postgres.sh" "$POSTGRES_DIR"
    true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for exe in frontline-intake frontline-conversation frontline-routing frontline-analytics frontline; do
    [[ -x "$BIN/$exe" ]] || { echo "error: $BIN/$exe missing; run \`make build\` (or \`make run\`)" >&2; exit 1; }
done

if [[ -z "${FRONTLINE_KEK:-}${FRONTLINE_KEK_FILE:-}" ]]; then
    if [[ -n "${NATS_URL:-}" ]]; then
        echo "error: with an external NATS_URL, set FRONTLINE_KEK (or FRONTLINE_KEK_FILE) to the key its data was written with" >&2
        exit 1
    fi
    FRONTLINE_KEK="$("$BIN/frontline" kek)"
    export FRONTLINE_KEK
fi

if [[ -z "${NATS_URL:-}" ]]; then
    NATS="$ROOT/.tools/bin/nats-server"
    [[ -x "$NATS" ]] || { echo "error: $NATS missing; run \`make tools\`" >&2; exit 1; }
    STORE_DIR="$(mktemp -d -t frontline-nats-XXXXXX)"
    "$NATS" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$STORE_DIR" >"$STORE_DIR/nats-server.log" 2>&1 &
    PIDS+=($!)
    export NATS_URL="nats://127.0.0.1:$NATS_PORT"
    for _ in $(seq 100); do
        if ! kill -0 "${PIDS[0]}" 2>/dev/null; then
            echo "error: nats-server exited; log:" >&2; tail -n 20 "$STORE_DIR/nats-server.log" >&2; exit 1
        fi
        (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break
        sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null || { echo "error: nats-server not listening on $NATS_PORT" >&2; exit 1; }
    echo "nats-server    $NATS_URL (store $STORE_DIR)"
else
    export NATS_URL
    echo "nats-server    $NATS_URL (external)"
fi

if [[ -z "${DATABASE_URL:-}" ]]; then
    eval "$("$ROOT/scripts/start-postgres.sh")"
    echo "postgresql     $DATABASE_URL (data $POSTGRES_DIR)"
else
    echo "postgresql     (external DATABASE_URL)"
fi
export DATABASE_URL

FRONTLINE_LISTEN=0.0.0.0:50051 FRONTLINE_METRICS_LISTEN=127.0.0.1:9101 "$BIN/frontline-intake" &
PIDS+=($!)
FRONTLINE_LISTEN=0.0.0.0:50052 FRONTLINE_METRICS_LISTEN=127.0.0.1:9102 "$BIN/frontline-conversation" &
PIDS+=($!)
FRONTLINE_LISTEN=0.0.0.0:50053 FRONTLINE_METRICS_LISTEN=127.0.0.1:9103 "$BIN/frontline-routing" &
PIDS+=($!)
FRONTLINE_LISTEN=0.0.0.0:50054 FRONTLINE_METRICS_LISTEN=127.0.0.1:9104 "$BIN/frontline-analytics" &
PIDS+=($!)

# Ready means every service answers gRPC health SERVING (they wait for NATS and
# PostgreSQL and run their migrations first); a service that exits stops the stack.
GRPCURL="$ROOT/.tools/bin/grpcurl"
[[ -x "$GRPCURL" ]] || { echo "error: $GRPCURL missing; run \`make contract-tools\`" >&2; exit 1; }
for port in 50051 50052 50053 50054; do
    for attempt in $(seq 300); do
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "error: a process exited while starting (see its log above)" >&2; exit 1; }
        done
        "$GRPCURL" -plaintext -max-time 2 "127.0.0.1:$port" grpc.health.v1.Health/Check 2>/dev/null \
            | grep -q '"SERVING"' && break
        [[ $attempt -eq 300 ]] && { echo "error: nothing SERVING on :$port after 60 s" >&2; exit 1; }
        sleep 0.2
    done
done

TENANT="${FRONTLINE_DEV_TENANT:-dev}"
AGENT_TOKEN="$("$BIN/frontline" token --role agent --subject dev-agent --tenant "$TENANT")"
SHOP_TOKEN="$("$BIN/frontline" token --role customer_system --subject dev-shop --tenant "$TENANT")"
ADMIN_TOKEN="$("$BIN/frontline" token --role admin --subject dev-admin --tenant "$TENANT")"

cat <<INFO

ready: every service answers health SERVING

intake         grpc 127.0.0.1:50051  metrics http://127.0.0.1:9101/metrics
conversation   grpc 127.0.0.1:50052  metrics http://127.0.0.1:9102/metrics
routing        grpc 127.0.0.1:50053  metrics http://127.0.0.1:9103/metrics
analytics      grpc 127.0.0.1:50054  metrics http://127.0.0.1:9104/metrics

customer_system token (dev-shop, tenant $TENANT):
$SHOP_TOKEN

agent token (dev-agent, tenant $TENANT):
$AGENT_TOKEN

admin token (dev-admin, tenant $TENANT; ForgetCustomer, ExportCustomerData, analytics GetMetrics):
$ADMIN_TOKEN

example:
grpcurl -plaintext -import-path proto -proto frontline/v1/intake.proto \\
  -H "authorization: Bearer $SHOP_TOKEN" \\
  -d '{"idempotency_key":"demo-1","channel":"CHANNEL_EMAIL","customer":{"email":"ann@example.com"},"subject":"Printer jams","body":"It jams on page 2.","product_area":"printers"}' \\
  127.0.0.1:50051 frontline.v1.IntakeService/SubmitTicket

the same with the CLI (docs/cli.md):
export PATH="$BIN:\$PATH"
FRONTLINE_TOKEN=$SHOP_TOKEN frontline submit --email ann@example.com --channel email \\
  --subject "Printer jams" --body "It jams on page 2." --product-area printers
export FRONTLINE_TOKEN=$AGENT_TOKEN
frontline queue
frontline show <ticket id>      # its timeline; \`frontline watch <ticket id>\` follows it live
FRONTLINE_TOKEN=$ADMIN_TOKEN frontline top

Ctrl-C stops everything.
INFO

# Return as soon as any child exits (or on Ctrl-C); the EXIT trap stops the rest.
wait -n "${PIDS[@]}" || true
echo "a process exited; shutting down" >&2
exit 1
