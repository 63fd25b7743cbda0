//! OpenDuck's wire protocol and its Rust client: the gRPC service
//! definition (`openduck/v1/execution.proto`, see `proto/README.md`), Arrow
//! IPC framing of results and uploads, and a small async client. Everything
//! a client needs and nothing of the server, so the DuckDB extension links
//! only this.

pub mod client;
pub mod ids;
pub mod ipc;

pub mod pb {
    tonic::include_proto!("openduck.v1");
}

pub use client::{Client, ClientError};

/// The protocol version this crate speaks (sent with every request).
pub const PROTOCOL_VERSION: u32 = 2;
/// The request header that carries it.
pub const PROTOCOL_HEADER: &str = "x-openduck-protocol";
