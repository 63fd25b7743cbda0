//! A Rust program on the `duckdb` crate (bundled DuckDB v2.0.0) that loads
//! the OpenDuck extension, attaches a remote database and queries it: the
//! seed's "Connecting from Rust" example. (DuckDB 2.0 refuses `SET
//! allow_unsigned_extensions` on a running database, so it is set in the
//! connection's Config instead.)
//!
//! ```sh
//! OPENDUCK_EXTENSION_PATH=$(extension/build.sh) OPENDUCK_TOKEN=secret \
//!   cargo run -p openduck-extension --example rust_client -- mydb "SELECT * FROM cloud.users LIMIT 10"
//! ```
//! The endpoint comes from OPENDUCK_ENDPOINT (default http://localhost:7878).
//! Prints each row's columns, tab-separated.

use std::error::Error;

use duckdb::types::{Value, ValueRef};
use duckdb::{Config, Connection};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(sql)) = (args.next(), args.next()) else {
        return Err("usage: rust_client <database> <sql>".into());
    };
    let ext_path = std::env::var("OPENDUCK_EXTENSION_PATH").map_err(|_| "set OPENDUCK_EXTENSION_PATH (see extension/build.sh)")?;
    let token = std::env::var("OPENDUCK_TOKEN").map_err(|_| "set OPENDUCK_TOKEN to the server's token")?;
    let endpoint = std::env::var("OPENDUCK_ENDPOINT").unwrap_or_else(|_| "http://localhost:7878".into());

    let conn = Connection::open_in_memory_with_flags(Config::default().allow_unsigned_extensions()?)?;
    conn.execute_batch(&format!(
        "LOAD '{ext_path}';
         ATTACH 'openduck:{db}?endpoint={endpoint}&token={token}' AS cloud;"
    ))?;
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let columns = row.as_ref().column_count();
        let cells: Vec<String> = (0..columns).map(|i| row.get_ref(i).map(show)).collect::<Result<_, _>>()?;
        println!("{}", cells.join("\t"));
    }
    Ok(())
}

fn show(v: ValueRef<'_>) -> String {
    match v.to_owned() {
        Value::Null => "NULL".into(),
        Value::Text(t) => t,
        Value::Boolean(b) => b.to_string(),
        Value::TinyInt(i) => i.to_string(),
        Value::SmallInt(i) => i.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::HugeInt(i) => i.to_string(),
        Value::UBigInt(i) => i.to_string(),
        Value::Double(f) => f.to_string(),
        other => format!("{other:?}"),
    }
}
