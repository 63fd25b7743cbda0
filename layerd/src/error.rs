//! The one error type of `layerd`. Every message says what went wrong and, where
//! there is one, how to fix it.

use std::path::PathBuf;

pub type Result<T, E = LayerdError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LayerdError {
    #[error("unknown database '{0}' (list them with `openduck db list`, create one with `openduck db create {0}`)")]
    UnknownDatabase(String),

    #[error("database '{0}' already exists")]
    DatabaseExists(String),

    #[error("invalid database name '{0}': use 1-63 characters from [A-Za-z0-9_-], starting with a letter or digit")]
    InvalidDatabaseName(String),

    #[error("unknown snapshot {snapshot} of database '{db}' (list them with `openduck snapshots {db}`)")]
    UnknownSnapshot { db: String, snapshot: i64 },

    #[error("database '{0}' has no snapshot yet (write to its head and run `openduck seal {0}`)")]
    NoSnapshot(String),

    #[error("invalid {what} URL '{url}': {reason}")]
    BadUrl { what: &'static str, url: String, reason: String },

    #[error("metadata store error: {0} (check --metadata / OPENDUCK_METADATA and that the server is reachable)")]
    Metadata(#[from] sqlx::Error),

    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),

    #[error("corrupt object '{object}': {detail}")]
    Corrupt { object: String, detail: String },

    #[error("unsupported {what} format version {found} in '{object}' (this build reads version {supported}; upgrade openduck)")]
    UnsupportedVersion { what: &'static str, object: String, found: u32, supported: u32 },

    #[error("the head in '{dir}' was written by an older OpenDuck (head format {found}, this build reads {supported}): seal it with that version first (`openduck seal <db>`), or move the directory aside to drop its unsealed writes")]
    OldHeadFormat { dir: PathBuf, found: u32, supported: u32 },

    #[error("the head of database '{db}' is in use by another process ({lock}); stop that process (e.g. `openduck serve`/`openduck mount`) or run the command through it")]
    HeadLocked { db: String, lock: PathBuf },

    #[error("database '{db}' is written by another OpenDuck process ({owner}, lease valid for {remaining_ms} ms more); only one writer per database shares a metadata store: send writes there, or wait until that process is gone")]
    LeaseHeld { db: String, owner: String, remaining_ms: i64 },

    #[error("this process lost the writer lease of database '{db}' (another process took it over): its unsealed writes cannot be committed")]
    Fenced { db: String },

    #[error("concurrent change to database '{db}': expected latest snapshot {expected:?}, found {found:?}; retry")]
    Conflict { db: String, expected: Option<i64>, found: Option<i64> },

    #[error("layer {layer} was claimed for garbage collection before its snapshot committed (the write stalled longer than the claim's lifetime); retry")]
    ClaimLost { layer: String },

    #[error("the metadata store {metadata} and the object store {store} do not belong together: {detail}. Point --metadata and --store at the pair that was used together (see `openduck db list` on each)")]
    StoreMismatch { metadata: String, store: String, detail: String },

    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{0}")]
    Invalid(String),

    #[error("simulated crash at {0} (test hook)")]
    SimulatedCrash(&'static str),
}

impl LayerdError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LayerdError::Io { path: path.into(), source }
    }
}

/// Attach a path to `std::io::Error`s.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| LayerdError::io(path, e))
    }
}
