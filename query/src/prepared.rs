//! Statements on one worker connection, through DuckDB's C API: a statement
//! text is parsed, bound and planned once per connection (the plan is
//! cached by the text), and that one plan both tells what kind of
//! statement it is ([`crate::statement`]) and runs, its rows streamed as
//! Arrow record batches.
//!
//! Before, the kind came from a plan on a separate connection and the run
//! planned the text again: two plans for every new statement text (e.g.
//! every `INSERT ... VALUES (<literals>)`).

use std::ffi::{c_char, CStr, CString};
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::StructArray;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow::record_batch::RecordBatch;
use duckdb::ffi;
use lru::LruCache;

use crate::error::{QueryError, QueryResult};
use crate::statement::{self, Kind};

/// Plans kept per connection.
const PLANS: NonZeroUsize = NonZeroUsize::new(64).expect("non-zero");

fn cstring(s: &str) -> QueryResult<CString> {
    CString::new(s).map_err(|_| QueryError::Invalid("a NUL byte in the statement".into()))
}

/// A DuckDB error message (owned copy of a C string; empty if none).
unsafe fn message(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: DuckDB hands out NUL-terminated strings valid for the call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `duckdb_error_data` to a result (destroying it).
unsafe fn check(mut e: ffi::duckdb_error_data) -> QueryResult<()> {
    // SAFETY: `e` came from DuckDB and is destroyed once, here.
    unsafe {
        let out = if ffi::duckdb_error_data_has_error(e) { Err(QueryError::from_duckdb_message(message(ffi::duckdb_error_data_message(e)))) } else { Ok(()) };
        ffi::duckdb_destroy_error_data(&mut e);
        out
    }
}

/// One plan: a prepared statement.
struct Plan {
    ptr: ffi::duckdb_prepared_statement,
}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: prepared by duckdb_prepare_extracted_statement, destroyed once.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.ptr) };
    }
}

/// A connection with its plans. Fields drop in order: plans, then the
/// connection.
pub struct Connection {
    plans: LruCache<String, (Kind, Option<Plan>)>,
    con: ffi::duckdb_connection,
}

// SAFETY: a DuckDB connection (and its prepared statements) may be used
// from any thread, one at a time; `&mut self` on every use ensures that.
unsafe impl Send for Connection {}

impl Drop for Connection {
    fn drop(&mut self) {
        self.plans.clear();
        // SAFETY: opened by duckdb_connect, closed once.
        unsafe { ffi::duckdb_disconnect(&mut self.con) };
    }
}

impl Connection {
    /// A new connection to `db` (an open database handle).
    pub fn connect(db: ffi::duckdb_database) -> QueryResult<Connection> {
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: `db` is open; on failure nothing was allocated.
        if unsafe { ffi::duckdb_connect(db, &mut con) } != ffi::DuckDBSuccess {
            return Err(QueryError::Internal("cannot open a DuckDB connection".into()));
        }
        Ok(Connection { plans: LruCache::new(PLANS), con })
    }

    /// Run `sql` (one or more statements) and drop what it returns (BEGIN,
    /// COMMIT, CHECKPOINT: statements the server issues itself).
    pub fn execute_batch(&mut self, sql: &str) -> QueryResult<()> {
        let c_sql = cstring(sql)?;
        // SAFETY: the result is destroyed on every path.
        unsafe {
            let mut result: ffi::duckdb_result = std::mem::zeroed();
            let rc = ffi::duckdb_query(self.con, c_sql.as_ptr(), &mut result);
            let out = if rc == ffi::DuckDBSuccess { Ok(()) } else { Err(QueryError::from_duckdb_message(message(ffi::duckdb_result_error(&mut result)))) };
            ffi::duckdb_destroy_result(&mut result);
            out
        }
    }

    /// The kind of `sql` (exactly one statement), planning it on this
    /// connection unless it was planned here before.
    pub fn kind(&mut self, sql: &str) -> QueryResult<Kind> {
        if let Some((kind, _)) = self.plans.get(sql) {
            return Ok(*kind);
        }
        let (kind, plan) = self.plan(sql)?;
        if let Ok(plan) = plan {
            // Not when it did not plan: it may plan later (a table created meanwhile).
            self.plans.put(sql.to_string(), (kind, Some(plan)));
        }
        Ok(kind)
    }

    /// Run `sql` (after [`Connection::kind`] said it may run): its rows.
    pub fn run(&mut self, sql: &str) -> QueryResult<Rows> {
        if !matches!(self.plans.get(sql), Some((_, Some(_)))) {
            let (kind, plan) = self.plan(sql)?;
            let plan = plan.map_err(QueryError::from_duckdb_message)?;
            self.plans.put(sql.to_string(), (kind, Some(plan)));
        }
        let Some((_, Some(plan))) = self.plans.get(sql) else { return Err(QueryError::Internal("a plan vanished from its cache".into())) };
        // SAFETY: the plan is alive while `self` is borrowed; the result
        // is owned (and destroyed) by `Rows`.
        unsafe { Rows::start(plan.ptr) }
    }

    /// Parse `sql` (exactly one statement) and plan it; DuckDB's error when
    /// it cannot plan it on its own (its kind then comes from its keyword).
    fn plan(&mut self, sql: &str) -> QueryResult<(Kind, Result<Plan, String>)> {
        let c_sql = cstring(sql)?;
        // SAFETY: the extracted statements are destroyed on every path; a
        // prepared statement is destroyed or handed to a `Plan`.
        unsafe {
            let mut extracted: ffi::duckdb_extracted_statements = ptr::null_mut();
            let n = ffi::duckdb_extract_statements(self.con, c_sql.as_ptr(), &mut extracted);
            let outcome = if n == 0 {
                let msg = message(ffi::duckdb_extract_statements_error(extracted));
                if msg.is_empty() {
                    Err(QueryError::Invalid("the request holds no SQL statement".into()))
                } else {
                    Err(QueryError::Sql(msg))
                }
            } else if n > 1 {
                Err(QueryError::Invalid(format!(
                    "a request runs exactly one SQL statement, this one holds {n}: send them one by one (in a session for one transaction)"
                )))
            } else {
                let mut stmt: ffi::duckdb_prepared_statement = ptr::null_mut();
                if ffi::duckdb_prepare_extracted_statement(self.con, extracted, 0, &mut stmt) == ffi::DuckDBSuccess {
                    let plan = Plan { ptr: stmt };
                    Ok((statement::kind_of(Some(ffi::duckdb_prepared_statement_type(plan.ptr)), sql), Ok(plan)))
                } else {
                    let msg = message(ffi::duckdb_prepare_error(stmt));
                    ffi::duckdb_destroy_prepare(&mut stmt);
                    Ok((statement::kind_of(None, sql), Err(if msg.is_empty() { "the statement could not be prepared".into() } else { msg })))
                }
            };
            ffi::duckdb_destroy_extracted(&mut extracted);
            outcome
        }
    }
}

/// Stops the statement a connection runs, from any thread (a client that
/// went away, a timeout). Armed only while one statement runs, so a late
/// stop never reaches the connection's next statement.
#[derive(Clone, Default)]
pub struct Stopper(Arc<StopperState>);

#[derive(Default)]
struct StopperState {
    running_on: Mutex<Option<RawCon>>,
    stopped: AtomicBool,
    timed_out: AtomicBool,
    /// When [`InFlight::expire`] times the statement out.
    deadline: Option<Instant>,
    /// The statement's admission slot, freed when it is done.
    _admitted: Option<tokio::sync::OwnedSemaphorePermit>,
}

struct RawCon(ffi::duckdb_connection);

// SAFETY: only `duckdb_interrupt` is called through it, which DuckDB allows
// from any thread, and only while the connection is armed (alive).
unsafe impl Send for RawCon {}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stopper {
    /// Stop the statement (now if it runs, else as soon as it starts).
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        if let Some(con) = lock(&self.0.running_on).as_ref() {
            // SAFETY: armed, so the connection is alive (disarming takes this lock).
            unsafe { ffi::duckdb_interrupt(con.0) };
        }
    }

    /// Stop it because it ran too long.
    pub fn time_out(&self) {
        self.0.timed_out.store(true, Ordering::SeqCst);
        self.stop();
    }

    pub fn stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    pub fn timed_out(&self) -> bool {
        self.0.timed_out.load(Ordering::SeqCst)
    }

    /// Point the stopper at `conn` until the returned guard drops.
    pub fn arm<'a>(&'a self, conn: &Connection) -> Armed<'a> {
        *lock(&self.0.running_on) = Some(RawCon(conn.con));
        Armed(self)
    }
}

/// The stoppers of the statements in flight: one watchdog times them out
/// ([`InFlight::expire`]), and a closing server stops them all.
#[derive(Default)]
pub struct InFlight(Mutex<Vec<std::sync::Weak<StopperState>>>);

impl InFlight {
    /// A stopper for a new statement that may run for `timeout`, known to
    /// this registry; it holds the statement's admission slot, if any.
    pub fn stopper(&self, timeout: Duration, admitted: Option<tokio::sync::OwnedSemaphorePermit>) -> Stopper {
        let stop = Stopper(Arc::new(StopperState { deadline: Instant::now().checked_add(timeout), _admitted: admitted, ..Default::default() }));
        let mut all = lock(&self.0);
        if all.len() >= 64 {
            all.retain(|w| w.strong_count() > 0);
        }
        all.push(Arc::downgrade(&stop.0));
        stop
    }

    /// Time out every statement past its deadline (and forget finished ones).
    pub fn expire(&self) {
        let now = Instant::now();
        let mut due = Vec::new();
        lock(&self.0).retain(|w| match w.upgrade() {
            Some(state) => {
                if state.deadline.is_some_and(|d| d <= now) && !state.stopped.load(Ordering::SeqCst) {
                    due.push(state);
                }
                true
            }
            None => false,
        });
        for state in due {
            Stopper(state).time_out();
        }
    }

    /// How many statements are in flight now.
    pub fn count(&self) -> usize {
        lock(&self.0).iter().filter(|w| w.strong_count() > 0).count()
    }

    /// Stop every statement in flight.
    pub fn stop_all(&self) {
        for state in lock(&self.0).drain(..).filter_map(|w| w.upgrade()) {
            Stopper(state).stop();
        }
    }
}

/// While alive, [`Stopper::stop`] interrupts the armed connection.
pub struct Armed<'a>(&'a Stopper);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        lock(&self.0 .0.running_on).take();
    }
}

/// The rows of a running statement, pulled chunk by chunk. Dropping it
/// before the end stops the statement.
pub struct Rows {
    result: ffi::duckdb_result,
    options: ffi::duckdb_arrow_options,
    schema: SchemaRef,
    ffi_schema: FFI_ArrowSchema,
}

impl Drop for Rows {
    fn drop(&mut self) {
        // SAFETY: both were created in `start` and are destroyed once.
        unsafe {
            ffi::duckdb_destroy_arrow_options(&mut self.options);
            ffi::duckdb_destroy_result(&mut self.result);
        }
    }
}

impl Rows {
    /// Execute `plan`, streaming.
    unsafe fn start(plan: ffi::duckdb_prepared_statement) -> QueryResult<Rows> {
        // SAFETY: `plan` is a live prepared statement; `result` is
        // destroyed on the error path, else owned by `Rows`.
        unsafe {
            let mut result: ffi::duckdb_result = std::mem::zeroed();
            if ffi::duckdb_execute_prepared_streaming(plan, &mut result) != ffi::DuckDBSuccess {
                let e = QueryError::from_duckdb_message(message(ffi::duckdb_result_error(&mut result)));
                ffi::duckdb_destroy_result(&mut result);
                return Err(e);
            }
            let options = ffi::duckdb_result_get_arrow_options(&mut result);
            let mut rows = Rows { result, options, schema: Arc::new(Schema::empty()), ffi_schema: FFI_ArrowSchema::empty() };
            let n = ffi::duckdb_column_count(&mut rows.result);
            let mut types: Vec<ffi::duckdb_logical_type> = (0..n).map(|i| ffi::duckdb_column_logical_type(&mut rows.result, i)).collect();
            let mut names: Vec<*const c_char> = (0..n).map(|i| ffi::duckdb_column_name(&mut rows.result, i)).collect();
            let converted = ffi::duckdb_to_arrow_schema(rows.options, types.as_mut_ptr(), names.as_mut_ptr(), n, (&mut rows.ffi_schema as *mut FFI_ArrowSchema).cast());
            for t in &mut types {
                ffi::duckdb_destroy_logical_type(t);
            }
            check(converted)?;
            rows.schema = Arc::new(Schema::try_from(&rows.ffi_schema).map_err(|e| QueryError::Internal(format!("result schema: {e}")))?);
            Ok(rows)
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch of rows; `None` at the end (the statement finished:
    /// an autocommit one committed).
    pub fn next_batch(&mut self) -> QueryResult<Option<RecordBatch>> {
        // SAFETY: `result` is live; the chunk is destroyed after conversion,
        // and the Arrow array owns what it references (its release callback).
        unsafe {
            let mut chunk = ffi::duckdb_fetch_chunk(self.result);
            if chunk.is_null() {
                let err = ffi::duckdb_result_error(&mut self.result);
                return if err.is_null() { Ok(None) } else { Err(QueryError::from_duckdb_message(message(err))) };
            }
            let mut array = FFI_ArrowArray::empty();
            let converted = ffi::duckdb_data_chunk_to_arrow(self.options, chunk, (&mut array as *mut FFI_ArrowArray).cast());
            ffi::duckdb_destroy_data_chunk(&mut chunk);
            check(converted)?;
            let data = arrow::ffi::from_ffi(array, &self.ffi_schema).map_err(|e| QueryError::Internal(format!("result rows: {e}")))?;
            let batch = RecordBatch::from(StructArray::from(data));
            Ok(Some(batch.with_schema(self.schema.clone()).map_err(|e| QueryError::Internal(format!("result rows: {e}")))?))
        }
    }
}
