//! The one tokio runtime of the extension, shared by every attached
//! database of every DuckDB instance in the process. DuckDB's threads are
//! not runtime threads, so they may `block_on` it.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::error::{ExtensionError, ExtensionResult};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

pub fn runtime() -> ExtensionResult<&'static Runtime> {
    let rt = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("openduck-rpc")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    rt.as_ref().map_err(|e| ExtensionError::Internal(format!("cannot start the gRPC runtime: {e}")))
}

/// Run `fut` to completion on the shared runtime from a non-runtime thread.
pub fn block_on<F: std::future::Future>(fut: F) -> ExtensionResult<F::Output> {
    Ok(runtime()?.block_on(fut))
}
