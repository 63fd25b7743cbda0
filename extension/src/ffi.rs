//! The C API of `include/openduck_client.h`: a table of function pointers
//! handed to the C++ half at load time. No panic crosses the boundary.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::Ordering;

use arrow::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};

use crate::error::{ErrorCode, ExtensionError, ExtensionResult};
use crate::session::{Outcome, Session};
use openduck_proto::client::Statement;

pub const API_VERSION: u32 = 3;

#[repr(C)]
pub struct OpenDuckError {
    code: i32,
    message: *mut c_char,
}

#[repr(C)]
pub struct OpenDuckResult {
    snapshot_id: i64,
    is_write: i32,
    rows_affected: i64,
    catalog_version: u64,
}

#[repr(C)]
pub struct OpenDuckTxn {
    id: *const c_char,
    start: i32,
}

#[repr(C)]
pub struct OpenDuckStats {
    requests: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

/// Opaque to C: `openduck_session`.
pub struct OpenDuckSession(Session);

#[repr(C)]
pub struct ClientApi {
    version: u32,
    connect: unsafe extern "C" fn(*const c_char, *const c_char, *const c_char, *mut OpenDuckError) -> *mut OpenDuckSession,
    query: unsafe extern "C" fn(
        *mut OpenDuckSession,
        *const c_char,
        i64,
        *const OpenDuckTxn,
        *mut FFI_ArrowArrayStream,
        *mut OpenDuckResult,
        *mut OpenDuckError,
    ) -> i32,
    execute: unsafe extern "C" fn(*mut OpenDuckSession, *const c_char, *const OpenDuckTxn, *mut OpenDuckResult, *mut OpenDuckError) -> i32,
    execute_ingest: unsafe extern "C" fn(
        *mut OpenDuckSession,
        *const c_char,
        *const c_char,
        *const OpenDuckTxn,
        *mut FFI_ArrowArrayStream,
        *mut OpenDuckResult,
        *mut OpenDuckError,
    ) -> i32,
    new_txn_id: unsafe extern "C" fn(*mut c_char),
    stats: unsafe extern "C" fn(*mut OpenDuckSession, *mut OpenDuckStats),
    free_session: unsafe extern "C" fn(*mut OpenDuckSession),
    free_error: unsafe extern "C" fn(*mut OpenDuckError),
}

pub static API: ClientApi =
    ClientApi { version: API_VERSION, connect, query, execute, execute_ingest, new_txn_id, stats, free_session, free_error };

/// Run `f`, turning errors and panics into a code plus `*error`.
fn guarded(error: *mut OpenDuckError, f: impl FnOnce() -> ExtensionResult<()>) -> i32 {
    let outcome = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(ExtensionError::Internal(what))
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            let code = e.code();
            set_error(error, code, &e.message());
            code as i32
        }
    }
}

fn set_error(error: *mut OpenDuckError, code: ErrorCode, message: &str) {
    if error.is_null() {
        return;
    }
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the caller passes a valid, writable openduck_error.
    unsafe { error.write(OpenDuckError { code: code as i32, message: message.into_raw() }) };
}

/// # Safety
/// `s` is null or a NUL-terminated string valid for the call.
unsafe fn text<'a>(s: *const c_char, what: &str) -> ExtensionResult<&'a str> {
    if s.is_null() {
        return Err(ExtensionError::InvalidInput(format!("{what} is NULL")));
    }
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|_| ExtensionError::InvalidInput(format!("{what} is not valid UTF-8")))
}

/// # Safety
/// `s` is null or a valid session created by `connect`.
unsafe fn session<'a>(s: *mut OpenDuckSession) -> ExtensionResult<&'a Session> {
    unsafe { s.as_ref() }.map(|s| &s.0).ok_or_else(|| ExtensionError::InvalidInput("session is NULL".into()))
}

fn snapshot_arg(snapshot: i64) -> Option<i64> {
    (snapshot >= 0).then_some(snapshot)
}

/// `stmt` inside the transaction `txn` (null: autocommit).
///
/// # Safety
/// `txn` is null or points to a valid openduck_txn whose id is a valid string.
unsafe fn with_txn(stmt: Statement, txn: *const OpenDuckTxn) -> ExtensionResult<Statement> {
    match unsafe { txn.as_ref() } {
        None => Ok(stmt),
        Some(t) => {
            let id = unsafe { text(t.id, "transaction id") }?;
            Ok(stmt.in_session(id, t.start != 0))
        }
    }
}

fn write_result(result: *mut OpenDuckResult, o: Outcome) {
    if !result.is_null() {
        let r = OpenDuckResult {
            snapshot_id: o.snapshot_id,
            is_write: o.is_write as i32,
            rows_affected: o.rows_affected,
            catalog_version: o.catalog_version,
        };
        // SAFETY: the caller passes a valid, writable openduck_result.
        unsafe { result.write(r) };
    }
}

unsafe extern "C" fn connect(
    endpoint: *const c_char,
    token: *const c_char,
    database: *const c_char,
    error: *mut OpenDuckError,
) -> *mut OpenDuckSession {
    let mut out = ptr::null_mut();
    guarded(error, || {
        let endpoint = unsafe { text(endpoint, "endpoint") }?;
        let token = if token.is_null() { None } else { Some(unsafe { text(token, "token") }?) };
        let database = unsafe { text(database, "database") }?;
        let s = Session::connect(endpoint, token.filter(|t| !t.is_empty()), database)?;
        out = Box::into_raw(Box::new(OpenDuckSession(s)));
        Ok(())
    });
    out
}

unsafe extern "C" fn query(
    s: *mut OpenDuckSession,
    sql: *const c_char,
    snapshot: i64,
    txn: *const OpenDuckTxn,
    out: *mut FFI_ArrowArrayStream,
    result: *mut OpenDuckResult,
    error: *mut OpenDuckError,
) -> i32 {
    guarded(error, || {
        let (s, sql) = unsafe { (session(s)?, text(sql, "sql")?) };
        if out.is_null() {
            return Err(ExtensionError::InvalidInput("output stream is NULL".into()));
        }
        let stmt = Statement { snapshot: snapshot_arg(snapshot), ..s.statement(sql) };
        let (outcome, reader) = s.query(unsafe { with_txn(stmt, txn) }?)?;
        // SAFETY: `out` is valid and writable; the C++ side releases it.
        unsafe { out.write(FFI_ArrowArrayStream::new(Box::new(reader))) };
        write_result(result, outcome);
        Ok(())
    })
}

unsafe extern "C" fn execute(
    s: *mut OpenDuckSession,
    sql: *const c_char,
    txn: *const OpenDuckTxn,
    result: *mut OpenDuckResult,
    error: *mut OpenDuckError,
) -> i32 {
    guarded(error, || {
        let (s, sql) = unsafe { (session(s)?, text(sql, "sql")?) };
        let stmt = unsafe { with_txn(s.statement(sql), txn) }?;
        write_result(result, s.execute(stmt)?);
        Ok(())
    })
}

unsafe extern "C" fn execute_ingest(
    s: *mut OpenDuckSession,
    sql: *const c_char,
    table: *const c_char,
    txn: *const OpenDuckTxn,
    input: *mut FFI_ArrowArrayStream,
    result: *mut OpenDuckResult,
    error: *mut OpenDuckError,
) -> i32 {
    guarded(error, || {
        if input.is_null() {
            return Err(ExtensionError::InvalidInput("input stream is NULL".into()));
        }
        // SAFETY: `input` is a valid stream; from_raw moves it out (we own it now).
        let reader = unsafe { RecordBatchStreamReader::from_raw(input) }?;
        let (s, sql, table) = unsafe { (session(s)?, text(sql, "sql")?, text(table, "table")?) };
        let stmt = unsafe { with_txn(s.statement(sql), txn) }?;
        write_result(result, s.execute_ingest(stmt, table, reader)?);
        Ok(())
    })
}

unsafe extern "C" fn new_txn_id(out: *mut c_char) {
    if out.is_null() {
        return;
    }
    let id = openduck_proto::client::new_session_id();
    let bytes = id.as_bytes();
    let n = bytes.len().min(32);
    // SAFETY: the caller passes a buffer of 33 bytes.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), out, n);
        out.add(n).write(0);
    }
}

unsafe extern "C" fn stats(s: *mut OpenDuckSession, out: *mut OpenDuckStats) {
    // SAFETY: `s` is null or a live session; `out` is null or writable.
    let (Some(s), Some(out)) = (unsafe { s.as_ref() }, unsafe { out.as_mut() }) else { return };
    let st = s.0.stats();
    *out = OpenDuckStats {
        requests: st.requests.load(Ordering::Relaxed),
        bytes_sent: st.bytes_sent.load(Ordering::Relaxed),
        bytes_received: st.bytes_received.load(Ordering::Relaxed),
    };
}

unsafe extern "C" fn free_session(s: *mut OpenDuckSession) {
    if !s.is_null() {
        // SAFETY: created by Box::into_raw in `connect`, freed once.
        drop(unsafe { Box::from_raw(s) });
    }
}

unsafe extern "C" fn free_error(error: *mut OpenDuckError) {
    // SAFETY: the caller passes an openduck_error filled by this API (or zeroed).
    if let Some(e) = unsafe { error.as_mut() } {
        if !e.message.is_null() {
            drop(unsafe { CString::from_raw(e.message) });
            e.message = ptr::null_mut();
        }
        e.code = 0;
    }
}
