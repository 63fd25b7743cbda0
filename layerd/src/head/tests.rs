//! Head log hardening: failed appends, records bound to their position, the
//! manifest's format, reads racing a rebase.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::log::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::seg_path;
use crate::page::{page_len, page_start};
use crate::{Layerd, LayerdConfig, LayerdError};

/// Fault and timing hooks a test head carries (`Head::hooks`).
#[derive(Default)]
pub(super) struct Hooks {
    /// The next segment write stores only this many bytes, then fails as a
    /// full disk would.
    short_write: Mutex<Option<usize>>,
    /// Sleep between finding a page and reading it.
    read_pause: AtomicBool,
}

impl Hooks {
    /// The injected short write, when one is armed.
    pub(super) fn short_write(&self, f: &File, buf: &[u8], at: u64) -> Option<std::io::Result<()>> {
        let n = self.short_write.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        Some(f.write_all_at(&buf[..n.min(buf.len())], at).and(Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "injected: disk full"))))
    }

    pub(super) fn read_pause(&self) {
        if self.read_pause.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

impl super::Head {
    fn fail_next_write_after(&self, bytes: usize) {
        *self.hooks.short_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
    }

    fn pause_reads_between_lookup_and_read(&self, on: bool) {
        self.hooks.read_pause.store(on, Ordering::Relaxed);
    }
}

/// Rewrite the `format` of the head directory's MANIFEST.
fn set_manifest_format(dir: &Path, format: u32) {
    let path = dir.join("MANIFEST");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    m["format"] = serde_json::json!(format);
    std::fs::write(&path, serde_json::to_vec(&m).expect("json")).expect("write");
}

fn pat(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 / 7) % 251) as u8).collect()
}

async fn engine() -> (tempfile::TempDir, Layerd) {
    let dir = tempfile::tempdir().expect("tempdir");
    let od = Layerd::open(LayerdConfig::new(dir.path().join("data"))).await.expect("open");
    od.create_database("db").await.expect("create");
    (dir, od)
}

async fn write_page(h: &super::Head, p: u64, seed: u64) {
    h.write(page_start(p), &pat(seed, page_len(p))).await.expect("write");
}

async fn page(h: &super::Head, p: u64) -> Vec<u8> {
    h.read(page_start(p), page_len(p)).await.expect("read")
}

/// Disk full in the middle of an append leaves a partial record behind; the
/// segments appended and fsynced after it must survive recovery.
#[tokio::test]
async fn failed_append_does_not_cost_later_synced_segments() {
    let (_d, od) = engine().await;
    let h = od.open_head("db").await.expect("head");
    write_page(&h, 1, 1).await;
    h.sync().await.expect("sync");
    h.fail_next_write_after(1000);
    let err = h.write(page_start(2), &pat(2, 2 * page_len(2))).await;
    assert!(err.is_err(), "the injected short write must fail the append");
    let _cut = h.freeze().await.expect("freeze"); // a new segment; the old one keeps its tail
    write_page(&h, 4, 4).await;
    h.sync().await.expect("sync");
    assert!(page(&h, 4).await == pat(4, page_len(4)));
    drop(h);
    let h = od.open_head("db").await.expect("reopen");
    assert!(page(&h, 1).await == pat(1, page_len(1)), "synced before the failure");
    assert!(page(&h, 4).await == pat(4, page_len(4)), "synced after the failure, in a later segment");
    assert_eq!(h.size(), page_start(5), "the failed write's size change is not replayed");
}

/// A failed append in the current segment is undone: later records follow
/// the last good one and recover, and the failed one is never replayed.
#[tokio::test]
async fn failed_append_in_current_segment_is_not_replayed() {
    let (_d, od) = engine().await;
    let h = od.open_head("db").await.expect("head");
    write_page(&h, 1, 1).await;
    h.fail_next_write_after(RECORD_HEADER_LEN as usize + page_len(2) + 10);
    assert!(h.write(page_start(2), &pat(2, 2 * page_len(2))).await.is_err());
    write_page(&h, 5, 5).await;
    h.sync().await.expect("sync");
    drop(h);
    let h = od.open_head("db").await.expect("reopen");
    assert!(page(&h, 1).await == pat(1, page_len(1)));
    assert!(page(&h, 5).await == pat(5, page_len(5)));
    assert!(page(&h, 2).await == vec![0u8; page_len(2)], "the failed write is not replayed");
}

/// A valid record copied to another place, or segments swapped, is detected
/// on recovery instead of being replayed as if it belonged there.
#[tokio::test]
async fn replayed_or_reordered_records_are_detected() {
    // (a) record 1 of segment 1 copied over record 3 (same length).
    let (_d, od) = engine().await;
    let h = od.open_head("db").await.expect("head");
    write_page(&h, 1, 1).await;
    h.sync().await.expect("sync");
    write_page(&h, 1, 2).await;
    h.sync().await.expect("sync");
    let _cut = h.freeze().await.expect("freeze");
    write_page(&h, 5, 5).await;
    h.sync().await.expect("sync");
    let dir = h.dir.clone();
    drop(h);
    let seg1 = seg_path(&dir, 1);
    let mut bytes = std::fs::read(&seg1).expect("read seg");
    let rec = (RECORD_HEADER_LEN as usize) + page_len(1);
    let first = SEGMENT_HEADER_LEN as usize;
    // [W p1][Truncate][Sync] then [W p1][Sync]: overwrite the second W p1.
    let third = first + rec + 2 * RECORD_HEADER_LEN as usize;
    let copy = bytes[first..first + rec].to_vec();
    bytes[third..third + rec].copy_from_slice(&copy);
    std::fs::write(&seg1, &bytes).expect("write seg");
    match od.open_head("db").await {
        Err(LayerdError::Corrupt { object, .. }) => assert!(object.contains("seg-"), "{object}"),
        Err(e) => panic!("expected a corruption error, got {e}"),
        Ok(h) => panic!("a record replayed from the wrong place was accepted: page 1 reads seed {}", if page(&h, 1).await == pat(1, page_len(1)) { 1 } else { 2 }),
    }

    // (b) two segments swapped.
    let (_d, od) = engine().await;
    let h = od.open_head("db").await.expect("head");
    write_page(&h, 1, 1).await;
    let _c1 = h.freeze().await.expect("freeze");
    write_page(&h, 1, 2).await;
    let _c2 = h.freeze().await.expect("freeze");
    write_page(&h, 2, 3).await;
    h.sync().await.expect("sync");
    let dir = h.dir.clone();
    drop(h);
    let (s1, s2, tmp) = (seg_path(&dir, 1), seg_path(&dir, 2), dir.join("swap"));
    std::fs::rename(&s1, &tmp).expect("rename");
    std::fs::rename(&s2, &s1).expect("rename");
    std::fs::rename(&tmp, &s2).expect("rename");
    match od.open_head("db").await {
        Err(LayerdError::Corrupt { .. }) => {}
        Err(e) => panic!("expected a corruption error, got {e}"),
        Ok(_) => panic!("swapped segments were replayed in the wrong order"),
    }
}

/// A head directory written by a newer (or unknown) format is refused with a
/// clear error instead of being misread.
#[tokio::test]
async fn unknown_manifest_format_is_refused() {
    let (_d, od) = engine().await;
    let h = od.open_head("db").await.expect("head");
    write_page(&h, 1, 1).await;
    h.sync().await.expect("sync");
    let dir = h.dir.clone();
    drop(h);
    set_manifest_format(&dir, 99);
    match od.open_head("db").await {
        Err(e @ LayerdError::UnsupportedVersion { .. }) => assert!(e.to_string().contains("99"), "{e}"),
        Err(e) => panic!("expected UnsupportedVersion, got {e}"),
        Ok(_) => panic!("a head of format 99 was opened"),
    }
    // A head of the older format (no chained records) is named as such.
    set_manifest_format(&dir, 1);
    match od.open_head("db").await {
        Err(e @ LayerdError::OldHeadFormat { .. }) => assert!(e.to_string().contains("older OpenDuck"), "{e}"),
        Err(e) => panic!("expected OldHeadFormat, got {e}"),
        Ok(_) => panic!("a head of format 1 with unsealed records was opened"),
    }
}

/// A format-1 head without unsealed records (the usual state after a seal)
/// is upgraded in place instead of refused.
#[tokio::test]
async fn clean_format_1_head_is_upgraded() {
    let (_d, od) = engine().await;
    let h = od.open_head("db").await.expect("head");
    write_page(&h, 1, 1).await;
    od.seal(&h).await.expect("seal").expect("a snapshot");
    let dir = h.dir.clone();
    drop(h);
    // Make it look like a clean head written by the format-1 build.
    set_manifest_format(&dir, 1);
    for e in std::fs::read_dir(&dir).expect("dir").flatten() {
        if e.file_name().to_string_lossy().starts_with("seg-") {
            let mut v1 = super::log::segment_header(&[0; 16], Default::default());
            v1[8..12].copy_from_slice(&1u32.to_le_bytes());
            std::fs::write(e.path(), &v1[..32]).expect("write v1 segment");
        }
    }
    let h = od.open_head("db").await.expect("a clean format-1 head opens");
    assert!(page(&h, 1).await == pat(1, page_len(1)), "the sealed page reads from the base");
    write_page(&h, 2, 2).await;
    h.sync().await.expect("sync");
    drop(h);
    let h = od.open_head("db").await.expect("reopen");
    assert!(page(&h, 2).await == pat(2, page_len(2)));
}

/// Reads of pages whose log segment a concurrent seal drops never fail.
#[test]
fn reads_racing_rebase_never_fail() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let (_d, od) = rt.block_on(engine());
    let h = Arc::new(rt.block_on(od.open_head("db")).expect("head"));
    h.pause_reads_between_lookup_and_read(true); // widen the race window
    const PAGES: u64 = 4;
    for p in 0..PAGES {
        rt.block_on(write_page(&h, p, p));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (h, stop, reads, handle) = (h.clone(), stop.clone(), reads.clone(), rt.handle().clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut p = t;
                while !stop.load(Ordering::Relaxed) {
                    p = (p + 1) % PAGES;
                    let got = handle.block_on(h.read(page_start(p), page_len(p))).map_err(|e| format!("read of page {p}: {e}"))?;
                    if got.len() != page_len(p) || got[..16] != pat(p, 16)[..] {
                        return Err(format!("page {p}: wrong bytes"));
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for i in 0..60u64 {
        // Rewrite a page with the same leading bytes: reads go to the log,
        // then the seal drops the segment they were in.
        let p = i % PAGES;
        let mut data = pat(p, page_len(p));
        let n = data.len();
        data[n - 1] = i as u8;
        rt.block_on(h.write(page_start(p), &data)).expect("write");
        rt.block_on(od.seal(&h)).expect("seal");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader thread").expect("reads never fail");
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
}
