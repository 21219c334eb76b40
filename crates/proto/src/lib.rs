//! Generated types for Frontline's public contract (`proto/frontline/v1`).
//!
//! Everything here is produced by `build.rs`; edit the `.proto` files, not this crate.

/// `frontline.v1`: services, requests, responses and events.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("frontline.v1");
}

/// The encoded `FileDescriptorSet` of every Frontline proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/frontline_descriptor.bin"));

pub mod convert;
