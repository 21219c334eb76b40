# syntax=docker/dockerfile:1
# One image with every Frontline binary (frontline-intake, -conversation, -routing,
# -analytics and the `frontline` CLI); a Deployment picks one with `command`.
#
# Build: docker build -t frontline:dev .
# Dependencies compile in a layer of their own (cargo-chef), so a change to the
# code rebuilds only the workspace crates. Protos compile with protox (pure Rust):
# no protoc. Migrations are embedded in the binaries.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependency recipe: changes only when Cargo.toml / Cargo.lock do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# The same command CI runs (make release).
RUN cargo build --release --locked --bins \
        -p frontline-intake -p frontline-conversation -p frontline-routing \
        -p frontline-analytics -p frontline-cli

# Distroless: glibc and CA certificates, no shell, no package manager; runs as
# the unprivileged `nonroot` user (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder \
    /src/target/release/frontline-intake \
    /src/target/release/frontline-conversation \
    /src/target/release/frontline-routing \
    /src/target/release/frontline-analytics \
    /src/target/release/frontline \
    /usr/local/bin/
USER 65532:65532
# gRPC (50051–50054 by service) and Prometheus metrics.
EXPOSE 50051 50052 50053 50054 9090
ENTRYPOINT ["/usr/local/bin/frontline-intake"]
