//! `openduck`: the command-line entry point of OpenDuck.

mod format;
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
    /// Run one SQL statement on a server and print the result.
    Sql(sql::SqlArgs),
    /// Mount every database: snapshots as read-only DuckDB files, plus a writable head.
    Mount(mount::MountArgs),
    #[command(flatten)]
    Storage(storage::StorageCommand),
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENDUCK_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
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
            Command::Mount(args) => mount::run(&cli.opts, args).await,
            Command::Sql(args) => sql::run(args).await,
            Command::Storage(cmd) => storage::run(&cli.opts, cmd).await,
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
