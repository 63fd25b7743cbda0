//! `openduck`: the command-line entry point of OpenDuck.

mod format;
mod gateway;
mod guard;
mod mount;
mod serve;
mod sql;
mod storage;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "openduck", version, about = "OpenDuck: open distributed DuckDB with differential storage")]
struct Cli {
    #[command(flatten)]
    opts: storage::StorageOpts,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// All in one: mount the databases and serve them over gRPC (Execute/Fetch).
    Serve(serve::ServeArgs),
    /// Serve as one of several workers behind `openduck gateway`: `serve`,
    /// plus registering (and heartbeating) in the shared metadata store.
    Worker(serve::WorkerArgs),
    /// Route clients to the workers registered in the metadata store (same
    /// two RPCs as `serve`).
    Gateway(gateway::GatewayArgs),
    /// List the live workers of the registry and the databases they write.
    Workers(gateway::WorkersArgs),
    /// Run one SQL statement on a server and print the result.
    Sql(sql::SqlArgs),
    /// Mount every database: snapshots as read-only DuckDB files, plus a writable head.
    Mount(mount::MountArgs),
    #[command(flatten)]
    Storage(storage::StorageCommand),
    /// (internal) Clean up the mount of a daemon that was killed.
    #[command(hide = true)]
    MountGuard(guard::GuardArgs),
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENDUCK_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    if let Command::MountGuard(args) = cli.cmd {
        return match guard::run(args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", error_chain(&e));
                std::process::ExitCode::FAILURE
            }
        };
    }
    // At least 4 runtime threads even on small machines: the mount's
    // handlers, seals and the gRPC service share them.
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get().max(4));
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.cmd {
            Command::Serve(args) => serve::run(&cli.opts, args).await,
            Command::Worker(args) => serve::run_worker(&cli.opts, args).await,
            Command::Gateway(args) => gateway::run(&cli.opts, args).await,
            Command::Workers(args) => gateway::list(&cli.opts, args).await,
            Command::Mount(args) => mount::run(&cli.opts, args).await,
            Command::Sql(args) => sql::run(args).await,
            Command::Storage(cmd) => storage::run(&cli.opts, cmd).await,
            Command::MountGuard(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping causes whose text is already shown.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
    }
    out
}
