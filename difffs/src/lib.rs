//! difffs: OpenDuck's FUSE daemon. Every snapshot of every database appears as
//! a plain, read-only DuckDB file; each database also has one writable head
//! file whose checkpoints become snapshots. See `namespace` for the tree,
//! `checkpoint` for the snapshot rule, `fs` for the logic and `fuse` for the
//! kernel adapter.

pub mod checkpoint;
pub mod control;
pub mod error;
pub mod fs;
pub mod fuse;
pub mod guard;
pub mod hydrate;
pub mod mount;
pub mod namespace;
pub mod statfs;

pub use fs::DiffFs;
pub use mount::{mount, mount_with_access, Daemon, MountAccess, MountOptions};
