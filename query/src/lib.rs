//! query: OpenDuck's gRPC query service (`Execute`/`Fetch`, Arrow IPC) over
//! stock DuckDB workers that open the mounted snapshot files, and the
//! all-in-one `openduck serve`. The protocol and the Rust client live in
//! `openduck-proto` (re-exported here).

pub use openduck_proto::{client, ids, ipc, pb};

pub mod admission;
pub mod auth;
pub mod engine;
pub mod gateway;
pub mod error;
pub mod ingest;
pub mod ingest_scan;
pub mod local;
pub mod metrics;
pub mod prepared;
pub mod registration;
pub mod results;
pub mod sandbox;
pub mod service;
pub mod shape;
pub mod snapshots_fn;
pub mod statement;
pub mod storage;
pub mod writer;

pub use client::{Client, ClientError};
pub use engine::Engine;
pub use error::QueryError;
