//! `openduck gateway`: one endpoint in front of the workers registered in a
//! shared metadata store; `openduck workers`: that registry as a table.


use anyhow::{Context, Result};
use clap::Args;
use layerd::catalog::Catalog;
use query::gateway::registry::Registry;
use query::registration::STALE_AFTER;

use crate::mount::Stop;
use crate::storage::StorageOpts;

#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub net: crate::serve::ListenArgs,
    /// The token the workers expect [default: --token].
    #[arg(long, env = "OPENDUCK_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
}

async fn catalog(opts: &StorageOpts) -> Result<Catalog> {
    let url = opts.config().resolved_metadata_url()?;
    Catalog::connect(&url).await.with_context(|| "connecting to the metadata store (the worker registry)".to_string())
}

pub async fn run(opts: &StorageOpts, args: GatewayArgs) -> Result<()> {
    let access = args.net.access()?;
    let worker_token = args.worker_token.filter(|t| !t.is_empty()).or_else(|| args.net.token.clone().filter(|t| !t.is_empty()));
    let registry = Registry::start(catalog(opts).await?, worker_token).await;
    let listen = args.net.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let workers = registry.view().workers.len();
    let scheme = if access.tls.is_some() { "https" } else { "http" };
    eprintln!("openduck gateway: gRPC on {scheme}://{addr} in front of {workers} live worker(s) (workers: curl {scheme}://{addr}/health)");
    let mut stop = Stop::new()?;
    query::gateway::serve(registry, access, listener, async move { stop.recv().await }).await?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct WorkersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The live workers of the registry.
pub async fn list(opts: &StorageOpts, args: WorkersArgs) -> Result<()> {
    let catalog = catalog(opts).await?;
    let workers = catalog.live_workers(STALE_AFTER.as_millis() as i64).await?;
    let writers = catalog.current_writers().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "workers": workers, "writers": writers }))?);
        return Ok(());
    }
    let now = layerd::catalog::now_ms();
    println!("{:<32} {:>9} {:>9}  {:<20} id", "endpoint", "heartbeat", "in flight", "writer of");
    for w in &workers {
        let mut dbs: Vec<&str> = writers.iter().filter(|(_, owner)| *owner == &w.id).map(|(db, _)| db.as_str()).collect();
        dbs.sort();
        println!("{:<32} {:>7}ms {:>9}  {:<20} {}", w.endpoint, now - w.heartbeat_at, w.in_flight, dbs.join(","), w.id);
    }
    if workers.is_empty() {
        println!("(no live workers: start `openduck worker` against this metadata store)");
    }
    Ok(())
}
