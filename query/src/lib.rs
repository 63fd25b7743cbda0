//! query: OpenDuck's gRPC query service (`Execute`/`Fetch`, Arrow IPC) over
//! stock DuckDB workers that open the mounted snapshot files, its Rust client,
//! and the all-in-one `openduck serve`.

pub mod auth;
pub mod client;
pub mod engine;
pub mod error;
pub mod ids;
pub mod ingest;
pub mod ingest_scan;
pub mod ipc;
pub mod local;
pub mod prepared;
pub mod results;
pub mod sandbox;
pub mod service;
pub mod snapshots_fn;
pub mod statement;
pub mod storage;
pub mod writer;

pub mod pb {
    tonic::include_proto!("openduck.v1");
}

pub use client::{Client, ClientError};
pub use engine::Engine;
pub use error::QueryError;
