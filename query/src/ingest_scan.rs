//! How a statement reads the rows its client uploaded with it: a
//! replacement scan turns the request's ingest table name into a call of the
//! `openduck_ingest()` table function, which streams the spooled Arrow
//! IPC straight into the statement. No temp table is created, filled or
//! dropped (three statements less per write), and a bulk upload is read
//! once, batch by batch, from the spool.
//!
//! Which upload a name means is known only to the connection running the
//! statement: each connection has an [`IngestSlot`], filled by
//! [`IngestScope`] for the time of one statement, and the scope also
//! publishes the slot in a thread-local, where the replacement scan and the
//! table function's bind (both run on the calling thread) find it. The scan
//! reads the slot when it starts, not when it is bound, so a prepared
//! statement cached on the connection reads each new upload (after checking
//! it has the columns the statement was bound with). `openduck_ingest()`
//! named in SQL reads nothing but the statement's own upload.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use duckdb::core::DataChunkHandle;
use duckdb::ffi;
use duckdb::vtab::arrow::{record_batch_to_duckdb_data_chunk, to_duckdb_logical_type_for_field};
use duckdb::vtab::{BindInfo, InitInfo, TableFunctionInfo, VTab};
use duckdb::Connection;

use crate::error::{QueryError, QueryResult};
use crate::ingest::Ingest;

/// The table function the replacement scan calls.
pub const FUNCTION: &str = "openduck_ingest";

/// The upload of the statement a connection is running, if any.
pub type IngestSlot = Arc<Mutex<Option<Arc<Ingest>>>>;

thread_local! {
    /// (ingest table name, slot) of the statement this thread runs.
    static CURRENT: RefCell<Option<(String, IngestSlot)>> = const { RefCell::new(None) };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// While alive, the ingest table name of `ingest` resolves to its rows in
/// the statements this thread runs on the connection owning `slot`.
pub struct IngestScope {
    slot: IngestSlot,
}

impl IngestScope {
    pub fn enter(slot: &IngestSlot, ingest: &Arc<Ingest>) -> IngestScope {
        *lock(slot) = Some(ingest.clone());
        CURRENT.with(|c| *c.borrow_mut() = Some((ingest.table.clone(), slot.clone())));
        IngestScope { slot: slot.clone() }
    }
}

impl Drop for IngestScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
        lock(&self.slot).take();
    }
}

/// Install the replacement scan and the table function on a writer database.
///
/// # Safety
/// `db` is a valid, open database handle.
pub unsafe fn install(db: ffi::duckdb_database, root: &Connection) -> QueryResult<()> {
    root.register_table_function::<IngestVTab>(FUNCTION).map_err(QueryError::from_duckdb)?;
    // SAFETY: `replace` touches only its arguments and the thread-local; no extra data.
    unsafe { ffi::duckdb_add_replacement_scan(db, Some(replace), std::ptr::null_mut(), None) };
    Ok(())
}

/// DuckDB asks for a table it does not know: the current upload, if that
/// is its name.
unsafe extern "C" fn replace(info: ffi::duckdb_replacement_scan_info, table_name: *const c_char, _data: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if table_name.is_null() {
            return;
        }
        // SAFETY: DuckDB passes a NUL-terminated name valid for the call.
        let name = unsafe { CStr::from_ptr(table_name) }.to_string_lossy();
        if !CURRENT.with(|c| c.borrow().as_ref().is_some_and(|(t, _)| t.eq_ignore_ascii_case(&name))) {
            return;
        }
        let Ok(function) = CString::new(FUNCTION) else { return };
        // SAFETY: valid info for the call.
        unsafe { ffi::duckdb_replacement_scan_set_function_name(info, function.as_ptr()) };
    }));
}

fn bad_ipc(e: impl std::fmt::Display) -> Box<dyn std::error::Error> {
    format!("bad Arrow IPC data to ingest: {e}").into()
}

type BatchReader = StreamReader<Box<dyn std::io::Read + Send>>;

/// `openduck_ingest()`: the rows uploaded with the running statement.
struct IngestVTab;

struct IngestBind {
    slot: IngestSlot,
    schema: SchemaRef,
}

/// One scan's position: the reader, and the batch being emitted.
struct IngestInit {
    cursor: Mutex<Cursor>,
}

struct Cursor {
    reader: BatchReader,
    batch: Option<RecordBatch>,
    offset: usize,
}

const NO_UPLOAD: &str = "openduck_ingest() reads the rows uploaded with the statement, and this statement came without any";

impl VTab for IngestVTab {
    type BindData = IngestBind;
    type InitData = IngestInit;

    fn bind(bind: &BindInfo) -> Result<Self::BindData, Box<dyn std::error::Error>> {
        let slot = CURRENT.with(|c| c.borrow().as_ref().map(|(_, slot)| slot.clone())).ok_or(NO_UPLOAD)?;
        let schema = lock(&slot).as_ref().ok_or(NO_UPLOAD)?.schema.clone();
        for field in schema.fields() {
            bind.add_result_column(field.name(), to_duckdb_logical_type_for_field(field)?);
        }
        Ok(IngestBind { slot, schema })
    }

    fn init(init: &InitInfo) -> Result<Self::InitData, Box<dyn std::error::Error>> {
        init.set_max_threads(1);
        // SAFETY: DuckDB hands init the bind data this function's bind made.
        let bind = unsafe { &*init.get_bind_data::<IngestBind>() };
        let ingest = lock(&bind.slot).clone().ok_or(NO_UPLOAD)?;
        // A statement prepared for one upload runs again on the next (its
        // cache key holds the upload's fingerprint): the vectors must fit.
        if ingest.schema.fields() != bind.schema.fields() {
            return Err("the uploaded rows do not have the columns the statement was prepared for: send them with their own statement text".into());
        }
        let reader = StreamReader::try_new(ingest.spool.open()?, None).map_err(bad_ipc)?;
        Ok(IngestInit { cursor: Mutex::new(Cursor { reader, batch: None, offset: 0 }) })
    }

    fn func(func: &TableFunctionInfo<Self>, output: &mut DataChunkHandle) -> Result<(), Box<dyn std::error::Error>> {
        let init = func.get_init_data();
        let mut cursor = init.cursor.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: a plain FFI call without arguments.
        let vector = unsafe { ffi::duckdb_vector_size() } as usize;
        loop {
            if let Some(batch) = &cursor.batch {
                if cursor.offset < batch.num_rows() {
                    let len = (batch.num_rows() - cursor.offset).min(vector);
                    let slice = batch.slice(cursor.offset, len);
                    cursor.offset += len;
                    return record_batch_to_duckdb_data_chunk(&slice, output);
                }
            }
            match cursor.reader.next() {
                Some(batch) => {
                    cursor.batch = Some(batch.map_err(bad_ipc)?);
                    cursor.offset = 0;
                }
                None => {
                    output.set_len(0);
                    return Ok(());
                }
            }
        }
    }

    fn parameters() -> Option<Vec<duckdb::core::LogicalTypeHandle>> {
        Some(vec![])
    }
}
