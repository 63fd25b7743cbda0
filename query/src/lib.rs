//! Build probe (temporary): compiles DuckDB once for the query service.
pub fn duckdb_version() -> String {
    duckdb::Connection::open_in_memory().and_then(|c| c.query_row("SELECT version()", [], |r| r.get(0))).unwrap_or_default()
}
