//! `openduck serve`: the all-in-one server on embedded defaults. It mounts
//! the databases (difffs) under the data dir, runs stock DuckDB workers on the
//! mounted files, and serves the gRPC Execute/Fetch protocol plus
//! `GET /health` on one port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use query::local::{LocalServer, LocalServerConfig};
use query::sandbox::WorkerLimits;
use query::writer::CheckpointPolicy;

use crate::mount::{MountTuning, Stop};
use crate::storage::StorageOpts;

/// Where a server listens and who may call it.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// Address for gRPC, /health and /metrics.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Clients must send this token (`authorization: Bearer <token>`).
    #[arg(long, env = "OPENDUCK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// More tokens, each with its rights: one per line,
    /// `<token> <read|write> <db>[,<db>...]|*` (`#` comments). `--token`, if
    /// given too, stays a token with every right.
    #[arg(long, env = "OPENDUCK_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Run without a token (only allowed when listening on loopback).
    #[arg(long)]
    pub insecure_no_token: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ListenArgs {
    /// The tokens clients may send (checked against `--insecure-no-token`) and TLS.
    pub fn access(&self) -> Result<query::service::Access> {
        let mut tokens = match self.token.clone().filter(|t| !t.is_empty()) {
            Some(t) => query::auth::Tokens::single(t),
            None => query::auth::Tokens::default(),
        };
        if let Some(path) = &self.tokens_file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading --tokens-file {}", path.display()))?;
            tokens.add_file(&text, &path.display().to_string()).map_err(|e| anyhow::anyhow!("--tokens-file {e}"))?;
        }
        match (tokens.is_empty(), self.insecure_no_token) {
            (true, false) => bail!(
                "refusing to start without a token: pass --token or set OPENDUCK_TOKEN, or --tokens-file (or --insecure-no-token on a loopback address)"
            ),
            (true, true) if !self.listen.ip().is_loopback() => bail!("--insecure-no-token is only allowed on a loopback address, not {}", self.listen),
            (true, true) => Ok(query::service::Access { tokens: None, tls: self.tls.load()? }),
            (false, _) => Ok(query::service::Access { tokens: Some(tokens), tls: self.tls.load()? }),
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub net: ListenArgs,
    /// Where to mount the databases [default: <data dir>/mnt].
    #[arg(long)]
    pub mountpoint: Option<PathBuf>,
    /// Create these databases if they do not exist yet (repeatable).
    #[arg(long = "db", short = 'd')]
    pub dbs: Vec<String>,
    /// DuckDB memory limit per worker database.
    #[arg(long, default_value = "2GB")]
    pub memory_limit: String,
    /// DuckDB threads per worker database.
    #[arg(long, default_value_t = 2)]
    pub threads: i64,
    /// Checkpoint (seal a snapshot) once no commit came for this long.
    #[arg(long, default_value = "2s", value_parser = positive_duration)]
    pub checkpoint_idle: Duration,
    /// ... and at the latest this long after the first unsealed commit.
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub checkpoint_max_delay: Duration,
    /// ... or once DuckDB's WAL holds this many MiB.
    #[arg(long, default_value_t = 16)]
    pub checkpoint_wal_mib: u64,
    /// Stop a statement that runs (or streams its result) longer than this;
    /// clients may ask for less.
    #[arg(long, default_value = "15m", value_parser = positive_duration)]
    pub statement_timeout: Duration,
    /// Statements running (or streaming results) at once; more wait for a slot.
    #[arg(long, default_value_t = 32)]
    pub max_statements: usize,
    /// How long a statement waits for a slot before it is refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub admission_wait: Duration,
    /// Refuse statements with more UNION/INTERSECT/EXCEPT than this (their
    /// planning time grows quadratically and cannot be interrupted).
    #[arg(long, default_value_t = query::shape::DEFAULT_MAX_SET_OPERATIONS)]
    pub max_set_operations: usize,
    /// Roll back a transaction whose client sent nothing for this long.
    #[arg(long, default_value = "60s", value_parser = positive_duration)]
    pub transaction_timeout: Duration,
    #[command(flatten)]
    pub tuning: MountTuning,
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match crate::format::duration_ms(s)? {
        ms if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(format!("'{s}' must be longer than zero")),
    }
}

/// TLS for the gRPC port (rustls): both files, or neither.
#[derive(Args, Debug, Clone)]
pub struct TlsArgs {
    /// Certificate chain (PEM); clients then use https:// endpoints.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn load(&self) -> Result<Option<query::service::Tls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        Ok(Some(query::service::Tls { cert_pem: read(cert)?, key_pem: read(key)? }))
    }
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The URL gateways reach this worker at [default: http(s)://<--listen>;
    /// required when listening on 0.0.0.0 or ::].
    #[arg(long)]
    pub advertise: Option<String>,
}

/// `openduck worker`: `serve` that also registers itself (and heartbeats)
/// in the metadata store, so gateways route to it.
pub async fn run_worker(opts: &StorageOpts, args: WorkerArgs) -> Result<()> {
    let advertise = match args.advertise {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
        Some(url) => bail!("--advertise {url}: expected a URL such as http://worker-1:7879 (https:// with --tls-cert)"),
        None if args.serve.net.listen.ip().is_unspecified() => {
            bail!("listening on {} needs --advertise http://<this host>:{}: the URL gateways reach this worker at", args.serve.net.listen, args.serve.net.listen.port())
        }
        None => String::new(),
    };
    serve(opts, args.serve, Some(advertise)).await
}

pub async fn run(opts: &StorageOpts, args: ServeArgs) -> Result<()> {
    serve(opts, args, None).await
}

async fn serve(opts: &StorageOpts, args: ServeArgs, advertise: Option<String>) -> Result<()> {
    let access = args.net.access()?;
    let od = Arc::new(opts.open().await?);
    for db in &args.dbs {
        match od.create_database(db).await {
            Ok(_) => eprintln!("created database '{db}'"),
            Err(layerd::LayerdError::DatabaseExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut stop = Stop::new()?;
    let cfg = LocalServerConfig {
        listen: args.net.listen,
        access,
        mountpoint: args.mountpoint.clone().unwrap_or_else(|| od.data_dir().join("mnt")),
        fuse_threads: args.tuning.fuse_threads,
        hydrate_bytes: args.tuning.hydrate_mib << 20,
        limits: WorkerLimits {
            memory_limit: args.memory_limit,
            threads: args.threads,
            statement_timeout: args.statement_timeout,
            max_statements: args.max_statements,
            admission_wait: args.admission_wait,
            max_set_operations: args.max_set_operations,
            ..WorkerLimits::new(od.data_dir().join("tmp").join("query"))
        },
        policy: CheckpointPolicy {
            idle: args.checkpoint_idle,
            max_delay: args.checkpoint_max_delay,
            wal_bytes: args.checkpoint_wal_mib.max(1) << 20,
            session_idle: args.transaction_timeout,
        },
        advertise,
    };
    let data_dir = od.data_dir().to_path_buf();
    crate::guard::wait_for_previous(&data_dir)?;
    let server = LocalServer::start(od, cfg).await?;
    let guard = crate::guard::spawn(&data_dir, server.mountpoint())?;
    let endpoint = server.endpoint();
    eprintln!("openduck serve: gRPC on {endpoint} (health: curl {endpoint}/health), databases mounted at {}", server.mountpoint().display());
    stop.recv().await;
    eprintln!("shutting down ...");
    guard.dismiss();
    tokio::select! {
        r = server.shutdown() => r?,
        _ = stop.recv() => bail!("stopped before every open file was closed"),
    }
    Ok(())
}
