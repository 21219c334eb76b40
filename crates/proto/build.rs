//! Compiles `proto/frontline/v1/*.proto` with protox (pure Rust, no system `protoc`)
//! and writes the file descriptor set that the services serve for reflection.
//!
//! Messages get `prost::Name` (so event type names come from the contract, not from
//! hand-written strings), and every gRPC service uses [`crate::grpc_codec`], which
//! answers malformed requests with INVALID_ARGUMENT instead of INTERNAL.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const FILES: &[&str] = &[
    "frontline/v1/common.proto",
    "frontline/v1/events.proto",
    "frontline/v1/intake.proto",
    "frontline/v1/conversation.proto",
    "frontline/v1/routing.proto",
    "frontline/v1/analytics.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }

    let fds = protox::compile(FILES, [&root])?;
    fs::write(out.join("frontline_descriptor.bin"), fds.encode_to_vec())?;

    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::grpc_codec::StrictCodec")
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
