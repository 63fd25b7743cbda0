//! Storage benchmark: every number is a ratio against a baseline measured in
//! the same run on the same machine. Run with `scripts/bench storage`.
//!
//! 1. seal after changing 1% of a database vs `cp` of the file;
//! 2. bytes stored for 100 snapshots each changing 1% vs the database size;
//! 3. full read of a snapshot through layerd vs reading the plain file, cold
//!    (OS caches dropped, layerd caches empty) and warm.
//!
//! The database is synthetic: incompressible pages on DuckDB's grid, so no
//! dedupe or compression flatters the numbers.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use layerd::page::{page_count, page_len, page_start};
use layerd::{Layerd, LayerdConfig};

fn pattern(seed: u64, buf: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn drop_os_caches() -> bool {
    // Needs root; without it the "cold" numbers are warm and say so.
    unsafe_sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn unsafe_sync() {
    let _ = std::process::Command::new("sync").status();
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            total += if m.is_dir() { dir_bytes(&e.path()) } else { m.len() };
        }
    }
    total
}

fn read_plain(path: &Path) -> Duration {
    let f = std::fs::File::open(path).expect("open");
    let size = f.metadata().expect("meta").len();
    let mut buf = vec![0u8; 1 << 20];
    let t = Instant::now();
    let mut off = 0;
    while off < size {
        let n = f.read_at(&mut buf, off).expect("read");
        off += n as u64;
    }
    t.elapsed()
}

/// Read the whole snapshot into a buffer, 1 MiB at a time, 8 reads in flight
/// (the caller gets copies, like a reader of the plain file does).
async fn read_snapshot(od: &Layerd, db: &str) -> Duration {
    const CHUNK: u64 = 1 << 20;
    let t = Instant::now();
    let view = od.open_snapshot(db, None).await.expect("open snapshot");
    let view = &view;
    let chunks = view.size().div_ceil(CHUNK);
    let mut s = futures::stream::iter(0..chunks).map(|c| async move { view.read(c * CHUNK, CHUNK as usize).await }).buffered(8);
    while let Some(r) = s.next().await {
        r.expect("read");
    }
    t.elapsed()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let size_mib: u64 = std::env::var("BENCH_DB_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let snapshots: usize = std::env::var("BENCH_SNAPSHOTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let work = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp/openduck-bench".into());
    let work = Path::new(&work);
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).expect("bench dir");
    let size = page_start(page_count(size_mib << 20));
    let db_file = work.join("db.duckdb");
    {
        let f = std::fs::File::create(&db_file).expect("create");
        let mut p = 0;
        while page_start(p) < size {
            let mut buf = vec![0u8; page_len(p)];
            pattern(p + 1, &mut buf);
            f.write_all_at(&buf, page_start(p)).expect("write");
            p += 1;
        }
        f.sync_all().expect("sync");
    }
    let pages = page_count(size);
    let changed_per_snapshot = pages.div_ceil(100);
    println!("storage benchmark: database {} MiB ({pages} pages), {changed_per_snapshot} pages changed per snapshot ({:.2}%)", size >> 20, changed_per_snapshot as f64 * 100.0 / pages as f64);

    // Baseline: cp of the file (page cache warm, as for the seal).
    let t = Instant::now();
    std::fs::copy(&db_file, work.join("copy.duckdb")).expect("cp");
    let cp = t.elapsed();
    let _ = std::fs::remove_file(work.join("copy.duckdb"));

    let mut cfg = LayerdConfig::new(work.join("data"));
    cfg.page_cache_bytes = (size as usize) + (64 << 20);
    let od = Layerd::open(cfg.clone()).await.expect("open layerd");
    let t = Instant::now();
    od.import("bench", &db_file, &|_, _| {}).await.expect("import");
    let import = t.elapsed();
    let objects = work.join("data").join("objects");
    let after_import = dir_bytes(&objects);

    let head = od.open_head("bench").await.expect("head");
    let mut seal_times = Vec::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for s in 0..snapshots {
        for _ in 0..changed_per_snapshot {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let p = 1 + rng % (pages - 1);
            let mut buf = vec![0u8; page_len(p)];
            pattern(rng ^ (s as u64) << 32, &mut buf);
            head.write(page_start(p), &buf).await.expect("write");
        }
        let t = Instant::now();
        od.seal(&head).await.expect("seal").expect("snapshot");
        seal_times.push(t.elapsed());
    }
    seal_times.sort();
    let seal_p50 = seal_times[seal_times.len() / 2];
    let stored = dir_bytes(&objects);

    // Reads: plain file vs layerd, cold and warm.
    let cold_ok = drop_os_caches();
    let plain_cold = read_plain(&db_file);
    let plain_warm = read_plain(&db_file);
    drop(head);
    drop(od);
    drop_os_caches();
    let od = Layerd::open(cfg).await.expect("reopen");
    let snap_cold = read_snapshot(&od, "bench").await;
    let snap_warm = read_snapshot(&od, "bench").await;
    let gib = size as f64 / (1u64 << 30) as f64;

    println!();
    println!("| metric | baseline | openduck | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!("| seal after 1% change (p50 of {snapshots}) vs `cp` of the file | {:.3} s | {:.3} s | {:.3}x | <= 0.05x |", secs(cp), secs(seal_p50), secs(seal_p50) / secs(cp));
    println!(
        "| bytes stored, 1 import + {snapshots} snapshots of 1% each, vs database size | {:.2} GiB | {:.2} GiB | {:.3}x | <= 2x |",
        gib,
        stored as f64 / (1u64 << 30) as f64,
        stored as f64 / size as f64
    );
    println!("| import vs `cp` | {:.3} s | {:.3} s | {:.2}x | - |", secs(cp), secs(import), secs(import) / secs(cp));
    println!(
        "| full snapshot read, cold{} | {:.0} MiB/s | {:.0} MiB/s | {:.2}x | - |",
        if cold_ok { "" } else { " (caches NOT dropped: not root)" },
        gib * 1024.0 / secs(plain_cold),
        gib * 1024.0 / secs(snap_cold),
        secs(plain_cold) / secs(snap_cold)
    );
    println!(
        "| full snapshot read, warm | {:.0} MiB/s | {:.0} MiB/s | {:.2}x | - |",
        gib * 1024.0 / secs(plain_warm),
        gib * 1024.0 / secs(snap_warm),
        secs(plain_warm) / secs(snap_warm)
    );
    println!();
    println!("(read ratios are throughput openduck / plain file: higher is better; after import the store held {:.2} GiB)", after_import as f64 / (1u64 << 30) as f64);
    let _ = std::fs::remove_dir_all(work);
}
