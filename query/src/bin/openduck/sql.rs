//! `openduck sql DB "SQL"`: run one statement against a server and print the
//! result (a minimal client of the gRPC protocol, for scripts and demos).

use anyhow::{Context, Result};
use clap::Args;
use futures::TryStreamExt;
use query::client::Client;

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// Database name.
    pub db: String,
    /// One SQL statement.
    pub sql: String,
    /// Server URL.
    #[arg(long, env = "OPENDUCK_ENDPOINT", default_value = "http://localhost:7878")]
    pub endpoint: String,
    /// Token (the server's --token).
    #[arg(long, env = "OPENDUCK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read this snapshot instead of the latest.
    #[arg(long)]
    pub snapshot: Option<i64>,
}

pub async fn run(args: SqlArgs) -> Result<()> {
    let mut c = Client::connect(&args.endpoint, args.token.as_deref()).await?;
    let ex = c.execute(&args.db, &args.sql, args.snapshot).await?;
    let batches: Vec<_> = c.rows(&ex).await?.try_collect().await?;
    if ex.is_write {
        println!("ok: {} rows affected; snapshot {}", ex.rows_affected, ex.snapshot_id);
    } else {
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches).context("formatting the result")?);
        eprintln!("({} rows from snapshot {})", batches.iter().map(|b| b.num_rows()).sum::<usize>(), ex.snapshot_id);
    }
    Ok(())
}
