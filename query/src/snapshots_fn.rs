//! `openduck_snapshots()`: a table function in every worker database that
//! lists the snapshots of the database the worker serves (oldest first), so
//! clients discover time-travel targets with ordinary SQL (and the
//! extension's `openduck_snapshots('<attachment>')` is a pushed-down query of
//! it). It only ever sees its own database's metadata.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::{BindInfo, InitInfo, TableFunctionInfo, VTab};
use duckdb::Connection;
use layerd::{Layerd, SnapshotInfo};

use crate::error::{QueryError, QueryResult};

pub const FUNCTION_NAME: &str = "openduck_snapshots";

/// Where the function reads the snapshot list: one database's metadata.
#[derive(Clone)]
pub struct SnapshotSource {
    pub od: Arc<Layerd>,
    pub rt: tokio::runtime::Handle,
    pub db: String,
}

/// Register `openduck_snapshots()` on a worker database.
pub fn register(conn: &Connection, source: &SnapshotSource) -> QueryResult<()> {
    conn.register_table_function_with_extra_info::<SnapshotsVTab, _>(FUNCTION_NAME, source).map_err(QueryError::from_duckdb)
}

pub struct SnapshotsVTab;

pub struct Bound {
    rows: Vec<SnapshotInfo>,
}

pub struct Cursor {
    next: AtomicUsize,
}

const COLUMNS: [(&str, LogicalTypeId); 6] = [
    ("id", LogicalTypeId::Bigint),
    ("parent", LogicalTypeId::Bigint),
    ("created_at", LogicalTypeId::Timestamp),
    ("size", LogicalTypeId::Bigint),
    ("stored_bytes", LogicalTypeId::Bigint),
    ("pinned", LogicalTypeId::Boolean),
];

impl VTab for SnapshotsVTab {
    type InitData = Cursor;
    type BindData = Bound;

    fn bind(bind: &BindInfo) -> Result<Bound, Box<dyn Error>> {
        for (name, ty) in COLUMNS {
            bind.add_result_column(name, LogicalTypeHandle::from(ty));
        }
        // SAFETY: registered with a SnapshotSource as extra info (see `register`).
        let source = unsafe { &*bind.get_extra_info::<SnapshotSource>() };
        // Bind runs on a worker's blocking thread, never on a runtime thread.
        let rows = source.rt.block_on(source.od.snapshots(&source.db))?;
        Ok(Bound { rows })
    }

    fn init(_: &InitInfo) -> Result<Cursor, Box<dyn Error>> {
        Ok(Cursor { next: AtomicUsize::new(0) })
    }

    fn func(func: &TableFunctionInfo<Self>, output: &mut DataChunkHandle) -> Result<(), Box<dyn Error>> {
        let rows = &func.get_bind_data().rows;
        let capacity = output.flat_vector(0).capacity();
        let start = func.get_init_data().next.fetch_add(capacity, Ordering::SeqCst).min(rows.len());
        let chunk = &rows[start..(start + capacity).min(rows.len())];
        let (mut id, mut parent, mut created, mut size, mut stored, mut pinned) =
            (output.flat_vector(0), output.flat_vector(1), output.flat_vector(2), output.flat_vector(3), output.flat_vector(4), output.flat_vector(5));
        for (i, s) in chunk.iter().enumerate() {
            // SAFETY: each vector has `capacity` slots of its column's physical type.
            unsafe {
                id.as_mut_slice::<i64>()[i] = s.id;
                parent.as_mut_slice::<i64>()[i] = s.parent.unwrap_or(0);
                created.as_mut_slice::<i64>()[i] = s.created_at.saturating_mul(1000); // ms -> µs
                size.as_mut_slice::<i64>()[i] = s.size as i64;
                stored.as_mut_slice::<i64>()[i] = s.stored_bytes as i64;
                pinned.as_mut_slice::<bool>()[i] = s.pinned;
            }
            if s.parent.is_none() {
                parent.set_null(i);
            }
        }
        output.set_len(chunk.len());
        Ok(())
    }
}
