//! OpenDuck's DuckDB extension (`openduck.duckdb_extension`).
//!
//! The DuckDB side (catalog, scan, insert) is C++ in `cpp/` (built by
//! `build.rs` against the headers of the DuckDB that `libduckdb-sys` builds,
//! with that DuckDB linked in statically). The gRPC side is Rust: a C API
//! (`include/openduck_client.h`, [`ffi`]) over `openduck_proto::client::Client`.
//!
//! DuckDB calls the one exported symbol, `openduck_duckdb_cpp_init`, which
//! hands the C API table to the C++ init function.

mod batch_reader;
mod error;
mod ffi;
mod ingest;
mod runtime;
mod session;

use std::ffi::c_void;

// Keep the DuckDB library in the link (the C++ half needs its symbols).
use libduckdb_sys as _;

extern "C-unwind" {
    /// `cpp/openduck_extension.cpp`: registers the storage extension.
    fn openduck_cpp_init(loader: *mut c_void, api: *const ffi::ClientApi);
}

/// DuckDB's C++ extension entry point (`<name>_duckdb_cpp_init`, called
/// with a `duckdb::ExtensionLoader &`). C++ exceptions unwind through it to
/// DuckDB, which reports them as the LOAD error.
///
/// # Safety
/// Called by DuckDB's extension loader with a valid loader.
#[no_mangle]
pub unsafe extern "C-unwind" fn openduck_duckdb_cpp_init(loader: *mut c_void) {
    unsafe { openduck_cpp_init(loader, &ffi::API) }
}
