//! Frontline's public contract (`proto/frontline/v1`) and everything that encodes it.
//!
//! - [`v1`]: generated messages, services and clients (edit the `.proto` files, not this).
//! - [`events`]: every event's encoding on the log, and the envelope.
//! - [`convert`]: the one place where wire and domain enums and views meet.
//! - [`grpc_codec`]: the gRPC codec (malformed requests are INVALID_ARGUMENT).

/// `frontline.v1`: services, requests, responses and events.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("frontline.v1");
}

/// The encoded `FileDescriptorSet` of every Frontline proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/frontline_descriptor.bin"));

pub mod convert;
pub mod events;
pub mod grpc_codec;
