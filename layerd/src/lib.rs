//! layerd: OpenDuck's differential storage.
//!
//! A database is one logical DuckDB file cut into pages on DuckDB's own grid
//! ([`page`]). Snapshots are stacks of immutable, content-addressed [`layer`]s
//! kept in an object store ([`store`]); metadata lives in SQLite or Postgres
//! ([`catalog`]). Writes go to a local, crash-safe [`head`]; [`Layerd::seal`]
//! turns the head into a new snapshot holding only the changed pages.
//! See `docs/architecture.md` for the whole picture.

pub mod binding;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod gc;
pub mod head;
pub mod layer;
pub mod page;
pub mod paths;
pub mod pins;
pub mod seal;
pub mod snapshot;
pub mod store;
pub mod writer_lease;

pub use catalog::{DatabaseInfo, SnapshotInfo};
pub use config::LayerdConfig;
pub use engine::{CompactReport, Layerd};
pub use error::{LayerdError, Result};
pub use gc::{GcOptions, GcReport};
pub use head::Head;
pub use snapshot::SnapshotView;
