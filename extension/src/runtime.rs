//! The one tokio runtime of the extension, shared by every attached
//! database of every DuckDB instance in the process.
//!
//! It is a current-thread runtime with no threads of its own: the DuckDB
//! thread that waits for an answer drives the gRPC connection itself
//! (`block_on`), so a statement costs no hand-offs between threads (a
//! multi-thread runtime woke a worker to write the request and woke the
//! caller again for the answer: ~0.3 ms of a ~1 ms round trip). Several
//! DuckDB threads may wait at once; one of them drives the connection for
//! all. Between statements a small idle thread drives it briefly a few
//! times a second, so an idle connection still answers the server's pings
//! and goodbyes, and a dropped client's connection really closes.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

use crate::error::{ExtensionError, ExtensionResult};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// How often the idle thread drives the runtime, and for how long.
const IDLE_EVERY: Duration = Duration::from_millis(200);
const IDLE_TURN: Duration = Duration::from_millis(1);

pub fn runtime() -> ExtensionResult<&'static Runtime> {
    let rt = RUNTIME.get_or_init(|| {
        let rt = Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        std::thread::Builder::new().name("openduck-idle".into()).spawn(idle_driver).map_err(|e| e.to_string())?;
        Ok(rt)
    });
    rt.as_ref().map_err(|e| ExtensionError::Internal(format!("cannot start the gRPC runtime: {e}")))
}

/// Drive the runtime for a moment now and then: connection housekeeping
/// (HTTP/2 pings, GOAWAY, closing connections of dropped clients) happens
/// even when no statement runs.
fn idle_driver() {
    loop {
        std::thread::sleep(IDLE_EVERY);
        if let Some(Ok(rt)) = RUNTIME.get() {
            rt.block_on(async { tokio::time::sleep(IDLE_TURN).await });
        }
    }
}

/// Run `fut` to completion on the shared runtime, driving it from this
/// (non-runtime) thread while waiting.
pub fn block_on<F: std::future::Future>(fut: F) -> ExtensionResult<F::Output> {
    Ok(runtime()?.block_on(fut))
}
