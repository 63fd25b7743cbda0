//! Storage subcommands: databases, snapshots, seal, compact, gc, import, export.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use layerd::{GcOptions, Layerd, LayerdConfig, LayerdError};

use crate::format;

/// The shortest `gc --grace` allowed without `--unsafe-short-grace`.
const MIN_GRACE_MS: i64 = 60_000;

/// Options shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct StorageOpts {
    /// Data directory (heads, caches, default metadata and objects).
    #[arg(long, global = true, env = "OPENDUCK_DATA_DIR", default_value = "./openduck-data")]
    pub data_dir: PathBuf,
    /// Metadata store: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: SQLite file in the data dir].
    #[arg(long, global = true, env = "OPENDUCK_METADATA")]
    pub metadata: Option<String>,
    /// Object store: file:///DIR, s3://BUCKET/PREFIX or memory:// [default: objects/ in the data dir].
    #[arg(long, global = true, env = "OPENDUCK_STORE")]
    pub store: Option<String>,
}

impl StorageOpts {
    pub fn config(&self) -> LayerdConfig {
        let mut cfg = LayerdConfig::new(&self.data_dir);
        cfg.metadata_url = self.metadata.clone();
        cfg.store_url = self.store.clone();
        cfg
    }

    pub async fn open(&self) -> Result<Layerd> {
        Ok(Layerd::open(self.config()).await?)
    }
}

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Create, list and clone databases.
    Db {
        #[command(subcommand)]
        cmd: DbCommand,
    },
    /// Import an existing DuckDB file as a new database with one snapshot.
    Import { db: String, file: PathBuf },
    /// Write a snapshot to a plain DuckDB file, byte-identical to what was sealed.
    Export {
        db: String,
        out: PathBuf,
        /// Snapshot id [default: latest].
        #[arg(long)]
        snapshot: Option<i64>,
    },
    /// List a database's snapshots, oldest first.
    Snapshots {
        db: String,
        /// Print a JSON array (id, parent, created_at, size, ...).
        #[arg(long)]
        json: bool,
    },
    /// Seal the database's head into a new snapshot (only changed pages are stored).
    Seal { db: String },
    /// Merge a snapshot's layer stack into one image layer (readers see the same bytes).
    Compact {
        db: String,
        /// Snapshot id [default: latest].
        #[arg(long)]
        snapshot: Option<i64>,
    },
    /// Drop old snapshots by retention, then delete objects nothing references.
    Gc {
        /// Apply retention to this database only [default: all].
        db: Option<String>,
        /// Keep the newest N snapshots of each database.
        #[arg(long)]
        keep_last: Option<usize>,
        /// Keep snapshots younger than this (e.g. 7d, 12h).
        #[arg(long, value_parser = format::duration_ms)]
        keep_within: Option<i64>,
        /// Delete an object only after it has been unreferenced this long
        /// (at least 1m). Open readers pin what they read whatever the grace;
        /// this covers a reader stalled past its pins' lifetime (2 min).
        #[arg(long, value_parser = format::duration_ms, default_value = "1h")]
        grace: i64,
        /// Allow a grace under 1m (seals, imports and open readers are
        /// protected by claims and pins whatever the grace).
        #[arg(long)]
        unsafe_short_grace: bool,
    },
    /// Pin a snapshot so that no retention ever drops it (or --unpin).
    Pin {
        db: String,
        snapshot: i64,
        #[arg(long)]
        unpin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create an empty database.
    Create { db: String },
    /// List databases.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create DST from a snapshot of SRC (metadata only; layers are shared).
    Clone {
        src: String,
        dst: String,
        /// Snapshot id of SRC [default: latest].
        #[arg(long)]
        snapshot: Option<i64>,
    },
}

/// Prints `verb: 42% (420 MiB / 1.0 GiB)` at most a few times a second.
fn progress_printer(verb: &'static str) -> impl Fn(u64, u64) + Sync {
    let last = Mutex::new(Instant::now() - Duration::from_secs(1));
    move |done, total| {
        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
        if l.elapsed() < Duration::from_millis(200) && done < total {
            return;
        }
        *l = Instant::now();
        let pct = if total == 0 { 100 } else { done * 100 / total };
        eprint!("\r{verb}: {pct}% ({} / {})", format::bytes(done), format::bytes(total));
        if done >= total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

fn snapshot_json(s: &layerd::SnapshotInfo) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "parent": s.parent,
        "created_at": format::timestamp(s.created_at),
        "created_at_ms": s.created_at,
        "size": s.size,
        "stored_bytes": s.stored_bytes,
        "pinned": s.pinned,
        "name": s.name,
    })
}

pub async fn run(opts: &StorageOpts, cmd: StorageCommand) -> Result<()> {
    let od = opts.open().await?;
    match cmd {
        StorageCommand::Db { cmd: DbCommand::Create { db } } => {
            od.create_database(&db).await?;
            println!("created database '{db}'");
        }
        StorageCommand::Db { cmd: DbCommand::List { json } } => {
            let dbs = od.list_databases().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&dbs)?);
            } else {
                println!("{:<24} {:>9} {:>7}  created", "database", "snapshots", "latest");
                for d in dbs {
                    let latest = d.latest.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
                    println!("{:<24} {:>9} {:>7}  {}", d.name, d.snapshots, latest, format::timestamp(d.created_at));
                }
            }
        }
        StorageCommand::Db { cmd: DbCommand::Clone { src, dst, snapshot } } => {
            let s = od.clone_database(&src, &dst, snapshot).await?;
            println!("cloned {src} into '{dst}' (snapshot {} of {}, {})", s.id, dst, format::bytes(s.size));
        }
        StorageCommand::Import { db, file } => {
            let s = od.import(&db, &file, &progress_printer("importing")).await.with_context(|| format!("importing {}", file.display()))?;
            println!("imported {} as '{db}' snapshot {} ({} stored)", file.display(), s.id, format::bytes(s.stored_bytes));
        }
        StorageCommand::Export { db, out, snapshot } => {
            let s = od.export(&db, snapshot, &out, &progress_printer("exporting")).await?;
            println!("exported '{db}' snapshot {} to {} ({})", s.id, out.display(), format::bytes(s.size));
        }
        StorageCommand::Snapshots { db, json } => {
            let snaps = od.snapshots(&db).await?;
            if json {
                let v: Vec<_> = snaps.iter().map(snapshot_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{:>6} {:>6}  {:<24} {:>10} {:>10}  pinned", "id", "parent", "created", "size", "stored");
                for s in snaps {
                    let parent = s.parent.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
                    let pin = if s.pinned { "yes" } else { "" };
                    let created = format::timestamp(s.created_at);
                    println!("{:>6} {:>6}  {:<24} {:>10} {:>10}  {pin}", s.id, parent, created, format::bytes(s.size), format::bytes(s.stored_bytes));
                }
            }
        }
        StorageCommand::Seal { db } => {
            let head = match od.open_head(&db).await {
                Ok(h) => h,
                Err(LayerdError::HeadLocked { .. }) => return seal_through_daemon(&od, &db).await,
                Err(e) => return Err(e.into()),
            };
            match od.seal(&head).await? {
                Some(s) => println!("sealed '{db}' snapshot {} ({}, {} new)", s.id, format::bytes(s.size), format::bytes(s.stored_bytes)),
                None => println!("nothing to seal: '{db}' has no changes since its latest snapshot"),
            }
        }
        StorageCommand::Compact { db, snapshot } => match od.compact(&db, snapshot).await? {
            Some(r) => println!("compacted '{db}' snapshot {}: {} layers -> 1 image layer ({})", r.snapshot, r.layers_before, format::bytes(r.image_bytes)),
            None => println!("nothing to compact: the snapshot already has a single layer"),
        },
        StorageCommand::Gc { db, keep_last, keep_within, grace, unsafe_short_grace } => {
            if grace < MIN_GRACE_MS && !unsafe_short_grace {
                anyhow::bail!(
                    "--grace {grace}ms is shorter than 1m: a reader of a dropped snapshot that stalled longer than its pins live \
                     (2 min) could lose its layers; use --grace 1m or more, or add --unsafe-short-grace"
                );
            }
            let r = od.gc(&GcOptions { db, keep_last, keep_within_ms: keep_within, grace_ms: grace }).await?;
            println!(
                "gc: {} snapshots dropped, {} layers newly unreferenced, {} layers and {} orphan objects deleted",
                r.snapshots_deleted, r.layers_condemned, r.layers_deleted, r.orphans_deleted
            );
        }
        StorageCommand::Pin { db, snapshot, unpin } => {
            od.pin(&db, snapshot, !unpin).await?;
            println!("{} snapshot {snapshot} of '{db}'", if unpin { "unpinned" } else { "pinned" });
        }
    }
    Ok(())
}

/// The head is held by a running `openduck mount`/`serve`: ask it.
async fn seal_through_daemon(od: &Layerd, db: &str) -> Result<()> {
    let reply = difffs::control::seal_via_daemon(od.data_dir(), db)
        .await
        .with_context(|| format!("the head of '{db}' is held by another process and its daemon could not be asked"))?;
    match reply.snapshot {
        Some(id) => println!("'{db}' has a writer attached: its latest checkpoint is snapshot {id} ({})", format::bytes(reply.size)),
        None => println!("'{db}' has a writer attached that has not completed a checkpoint yet"),
    }
    if reply.pending_wal_bytes > 0 {
        println!(
            "note: {} of commits are still only in DuckDB's WAL; they become a snapshot at the writer's next CHECKPOINT",
            format::bytes(reply.pending_wal_bytes)
        );
    }
    Ok(())
}
