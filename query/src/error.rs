//! The query service's error type and its one mapping to gRPC status codes.

pub type QueryResult<T> = Result<T, QueryError>;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("unknown database '{0}' (create it with `openduck db create {0}`, or start the server with `openduck serve --db {0}`)")]
    UnknownDatabase(String),
    #[error("unknown snapshot {snapshot} of database '{db}' (list them with `openduck snapshots {db}`)")]
    UnknownSnapshot { db: String, snapshot: i64 },
    #[error("database '{0}' is empty: it has no snapshot yet (create a table first)")]
    EmptyDatabase(String),
    #[error("unknown or expired result handle '{0}' (a handle can be fetched once, within 60 s)")]
    UnknownHandle(String),
    #[error("snapshot {0} is read-only: writes go to the latest state (attach without ?snapshot=)")]
    WriteToSnapshot(i64),
    #[error("this token is read-only: {0} statements need a token with write access")]
    ReadOnlyToken(&'static str),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("refused by the server's sandbox: {0}")]
    Sandbox(String),
    #[error("{0}")]
    Sql(String),
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("statement too complex: {0}")]
    TooComplex(String),
    #[error("{0} (the transaction was rolled back: run it again)")]
    Conflict(String),
    #[error("the transaction of session '{0}' no longer exists: it was rolled back (idle too long, or the server restarted); run the transaction again")]
    SessionGone(String),
    #[error("database '{db}' is written by another OpenDuck server sharing this metadata store, so this server only reads its sealed snapshots; send writes to that server{}", if why.is_empty() { String::new() } else { format!(" ({why})") })]
    NotWriter { db: String, why: String },
    #[error("busy: {0}; retry")]
    Busy(String),
    #[error("{0}")]
    Overloaded(String),
    #[error("this server could not renew its writer lease of database '{0}' lately (metadata store unreachable, or the process was paused), so it may no longer be the writer: the write was not run; retry shortly")]
    LeaseUncertain(String),
    #[error("the checkpoint is durable on the server, but sealing it into a snapshot failed: {0}; it is retried automatically (run CHECKPOINT again to learn the snapshot)")]
    SealFailed(String),
    #[error("the statement ran longer than its timeout and was stopped: narrow it, or raise the timeout (the server's --statement-timeout; a client may only lower it)")]
    Timeout,
    #[error("storage: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// Classify a DuckDB error by its error type prefix.
    pub fn from_duckdb(e: duckdb::Error) -> Self {
        Self::from_duckdb_message(e.to_string())
    }

    /// Classify a DuckDB error message by its error type prefix.
    pub fn from_duckdb_message(msg: String) -> Self {
        if msg.contains("configuration has been locked") || msg.contains("configuration is locked") {
            return QueryError::Sandbox(msg);
        }
        let kind = msg.split(" Error:").next().unwrap_or("");
        if kind.starts_with("TransactionContext") || (kind == "Transaction" && msg.contains("onflict")) {
            return QueryError::Conflict(msg);
        }
        match kind {
            "Permission" => QueryError::Sandbox(msg),
            "Out of Memory" => QueryError::OutOfMemory(msg),
            "Parser" | "Binder" | "Catalog" | "Conversion" | "Constraint" | "Invalid Input" | "Not implemented" | "Dependency"
            | "Transaction" | "Invalid" => QueryError::Sql(msg),
            _ => QueryError::Sql(msg),
        }
    }

    pub fn status(&self) -> tonic::Status {
        use tonic::Status;
        let m = self.to_string();
        match self {
            QueryError::UnknownDatabase(_) | QueryError::UnknownSnapshot { .. } | QueryError::UnknownHandle(_) => Status::not_found(m),
            QueryError::EmptyDatabase(_) | QueryError::WriteToSnapshot(_) => Status::failed_precondition(m),
            QueryError::Invalid(_) | QueryError::Sql(_) | QueryError::TooComplex(_) => Status::invalid_argument(m),
            QueryError::Sandbox(_) | QueryError::ReadOnlyToken(_) => Status::permission_denied(m),
            QueryError::OutOfMemory(_) | QueryError::TooLarge(_) | QueryError::Overloaded(_) => Status::resource_exhausted(m),
            QueryError::Conflict(_) | QueryError::SessionGone(_) => Status::aborted(m),
            QueryError::NotWriter { .. } | QueryError::SealFailed(_) | QueryError::LeaseUncertain(_) | QueryError::Busy(_) => Status::unavailable(m),
            QueryError::Timeout => Status::deadline_exceeded(m),
            QueryError::Storage(_) | QueryError::Internal(_) => Status::internal(m),
        }
    }
}

impl From<layerd::LayerdError> for QueryError {
    fn from(e: layerd::LayerdError) -> Self {
        match e {
            layerd::LayerdError::UnknownDatabase(db) => QueryError::UnknownDatabase(db),
            layerd::LayerdError::UnknownSnapshot { db, snapshot } => QueryError::UnknownSnapshot { db, snapshot },
            layerd::LayerdError::InvalidDatabaseName(n) => QueryError::Invalid(format!("invalid database name '{n}'")),
            e => QueryError::Storage(e.to_string()),
        }
    }
}

impl From<openduck_proto::ipc::IpcError> for QueryError {
    fn from(e: openduck_proto::ipc::IpcError) -> Self {
        QueryError::Invalid(e.to_string())
    }
}

impl From<tokio::task::JoinError> for QueryError {
    fn from(e: tokio::task::JoinError) -> Self {
        QueryError::Internal(format!("worker task failed: {e}"))
    }
}
