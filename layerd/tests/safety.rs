//! Integrity and safety: corruption is detected, gc never removes what a
//! snapshot or a concurrent seal needs, the store grows by changed pages only,
//! identical pages are stored once across databases, one writer per head.

mod common;

use std::path::{Path, PathBuf};

use common::{available, env, pattern, Backend};
use layerd::page::{page_len, page_start};
use layerd::{GcOptions, Layerd, LayerdError};

fn layer_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(layer_files(&p));
        } else if p.extension().is_some_and(|x| x == "layer") {
            out.push(p);
        }
    }
    out
}

fn objects_bytes(od: &Layerd) -> u64 {
    layer_files(&od.data_dir().join("objects")).iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

async fn write_pages(h: &layerd::Head, pages: impl IntoIterator<Item = u64>, seed: u64) {
    for p in pages {
        h.write(page_start(p), &pattern(seed ^ (p << 20), page_len(p))).await.expect("write");
    }
}

#[tokio::test]
async fn flipped_byte_in_a_stored_page_is_a_clear_error() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let h = od.open_head("db").await.unwrap();
    write_pages(&h, 0..4, 1).await;
    od.seal(&h).await.unwrap().unwrap();
    drop(h);
    let files = layer_files(&od.data_dir().join("objects"));
    assert_eq!(files.len(), 1);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let n = bytes.len();
    bytes[n - 1000] ^= 0x40; // inside the last page's data
    std::fs::write(&files[0], &bytes).unwrap();
    let od = Layerd::open(env.cfg.clone()).await.unwrap(); // fresh caches
    let view = od.open_snapshot("db", None).await.unwrap();
    assert_eq!(view.read_page(0).await.unwrap().len(), page_len(0), "undamaged pages still read");
    match view.read_page(3).await {
        Err(LayerdError::Corrupt { object, detail }) => {
            assert!(object.ends_with(".layer"), "{object}");
            assert!(detail.contains("page 3"), "{detail}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // Damage in the index is caught when the snapshot is opened.
    bytes[40] ^= 1;
    std::fs::write(&files[0], &bytes).unwrap();
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    assert!(matches!(od.open_snapshot("db", None).await, Err(LayerdError::Corrupt { .. })));
}

#[tokio::test]
async fn two_seals_store_only_the_changed_pages() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let h = od.open_head("db").await.unwrap();
    write_pages(&h, 0..40, 1).await;
    od.seal(&h).await.unwrap().unwrap();
    let base = objects_bytes(&od);
    for round in 0..2u64 {
        let before = objects_bytes(&od);
        write_pages(&h, [5 + round, 17], 100 + round).await;
        write_pages(&h, [30], 1).await; // rewritten with identical bytes: not stored again
        let s = od.seal(&h).await.unwrap().unwrap();
        let grew = objects_bytes(&od) - before;
        let two_pages = 2 * page_len(1) as u64;
        assert!(grew >= two_pages && grew < two_pages + 8192, "round {round}: grew {grew}");
        assert_eq!(s.stored_bytes, grew);
    }
    assert!(base > 39 * page_len(1) as u64);
}

#[tokio::test]
async fn identical_pages_are_stored_once_across_databases() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    for db in ["a", "b"] {
        od.create_database(db).await.unwrap();
        let h = od.open_head(db).await.unwrap();
        write_pages(&h, 1..20, 7).await;
        let s = od.seal(&h).await.unwrap().unwrap();
        if db == "b" {
            assert!(s.stored_bytes < 4096, "second database stored {} bytes", s.stored_bytes);
        }
    }
    let a = od.open_snapshot("a", None).await.unwrap().read(0, 1 << 24).await.unwrap();
    let b = od.open_snapshot("b", None).await.unwrap().read(0, 1 << 24).await.unwrap();
    assert!(a == b && a.len() == page_start(20) as usize);
}

#[tokio::test]
async fn one_writer_per_head() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let _h = od.open_head("db").await.unwrap();
    match od.open_head("db").await {
        Err(e @ LayerdError::HeadLocked { .. }) => assert!(e.to_string().contains("in use by another process")),
        other => panic!("expected HeadLocked, got {:?}", other.map(|_| ())),
    }
}

/// A reader of a snapshot that retention drops keeps reading it, with no
/// grace at all: its open view pins the layers. Once it closes, gc takes them.
#[tokio::test]
async fn open_views_pin_their_layers_against_gc() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let h = od.open_head("db").await.unwrap();
    write_pages(&h, 0..6, 1).await;
    let first = od.seal(&h).await.unwrap().unwrap();
    let expected = h.read(0, 1 << 24).await.unwrap();
    let reader = od.open_snapshot("db", Some(first.id)).await.unwrap();
    // Rewrite every page: snapshot 1's layer becomes unreferenced once dropped.
    write_pages(&h, 0..6, 2).await;
    od.seal(&h).await.unwrap().unwrap();
    od.refresh_pins().await.unwrap();
    let r = od.gc(&GcOptions { keep_last: Some(1), grace_ms: 0, ..Default::default() }).await.unwrap();
    assert_eq!((r.snapshots_deleted, r.layers_condemned, r.layers_deleted), (1, 0, 0), "gc took a layer an open view reads");
    assert!(matches!(od.open_snapshot("db", Some(first.id)).await, Err(LayerdError::UnknownSnapshot { .. })));
    od.store().clear_memory_cache();
    assert!(reader.read(0, 1 << 24).await.unwrap() == expected, "the reader of the dropped snapshot");
    drop(reader);
    od.refresh_pins().await.unwrap();
    let r = od.gc(&GcOptions { grace_ms: 0, ..Default::default() }).await.unwrap();
    assert_eq!((r.layers_condemned, r.layers_deleted), (1, 1));
    assert_eq!(layer_files(&od.data_dir().join("objects")).len(), 1);
    let latest = od.open_snapshot("db", None).await.unwrap();
    assert!(latest.read(0, 1 << 24).await.unwrap() == h.read(0, 1 << 24).await.unwrap());
}

async fn concurrent_seal_and_gc(backend: Backend) {
    let env = env(backend).await;
    let od = std::sync::Arc::new(Layerd::open(env.cfg.clone()).await.unwrap());
    od.create_database("db").await.unwrap();
    let writer = {
        let od = od.clone();
        tokio::spawn(async move {
            let h = od.open_head("db").await.unwrap();
            let mut sealed = Vec::new();
            for round in 0..25u64 {
                write_pages(&h, [round % 7, 3 + round % 5], round).await;
                if let Some(s) = od.seal(&h).await.unwrap() {
                    sealed.push((s.id, h.read(0, 1 << 24).await.unwrap()));
                }
            }
            sealed
        })
    };
    let collector = {
        let od = od.clone();
        tokio::spawn(async move {
            let mut runs = 0;
            while runs < 40 {
                od.gc(&GcOptions { keep_last: Some(3), grace_ms: 2_000, ..Default::default() }).await.unwrap();
                runs += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    let sealed = writer.await.unwrap();
    collector.await.unwrap();
    let retained: Vec<i64> = od.snapshots("db").await.unwrap().iter().map(|s| s.id).collect();
    assert!(retained.len() >= 3);
    for (id, content) in sealed.iter().filter(|(id, _)| retained.contains(id)) {
        let v = od.open_snapshot("db", Some(*id)).await.unwrap();
        assert!(v.read(0, 1 << 24).await.unwrap() == *content, "snapshot {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_seal_and_gc_sqlite() {
    concurrent_seal_and_gc(Backend::SqliteLocal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_seal_and_gc_postgres() {
    if available(Backend::PostgresLocal) {
        concurrent_seal_and_gc(Backend::PostgresLocal).await;
    }
}

#[tokio::test]
async fn s3_store_is_really_used() {
    if !available(Backend::SqliteS3) {
        return;
    }
    let env = env(Backend::SqliteS3).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let h = od.open_head("db").await.unwrap();
    write_pages(&h, 0..3, 5).await;
    od.seal(&h).await.unwrap().unwrap();
    assert!(!od.data_dir().join("objects").exists(), "objects went to local disk");
    assert_eq!(od.store().list_layers().await.unwrap().len(), 1);
    // A fresh instance (empty memory cache) reads through S3, then the disk cache.
    let od2 = Layerd::open(env.cfg.clone()).await.unwrap();
    drop(h);
    let expected = od.open_snapshot("db", None).await.unwrap().read(0, 1 << 22).await.unwrap();
    let got = od2.open_snapshot("db", None).await.unwrap().read(0, 1 << 22).await.unwrap();
    assert!(got == expected && got.len() == page_start(3) as usize);
    assert!(std::fs::read_dir(od2.data_dir().join("cache")).unwrap().count() > 0, "disk cache filled");
}

/// A seal that committed but failed before it could rebase the head (the
/// metadata store's answer lost, a crash of the seal task) is adopted when
/// the same cut is sealed again, in process: no conflict, no duplicate
/// snapshot, and the head goes on from it.
#[tokio::test]
async fn a_seal_retried_after_its_commit_adopts_the_snapshot() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let h = od.open_head("db").await.unwrap();
    write_pages(&h, 0..4, 1).await;
    let first = od.seal(&h).await.unwrap().unwrap();
    write_pages(&h, [2], 2).await;
    let cut = h.freeze().await.unwrap();
    let failed = od.seal_cut(&h, &cut, Some(layerd::seal::SealStep::AfterCommit)).await;
    assert!(failed.is_err());
    // Written after the cut: must survive the adoption.
    write_pages(&h, [3], 3).await;
    let adopted = od.seal_cut(&h, &cut, None).await.unwrap().unwrap();
    assert_eq!(adopted.parent, Some(first.id));
    assert_eq!(od.snapshots("db").await.unwrap().len(), 2, "adopted, not committed twice");
    let next = od.seal(&h).await.unwrap().unwrap();
    assert_eq!(next.parent, Some(adopted.id));
    let view = od.open_snapshot("db", Some(next.id)).await.unwrap();
    assert_eq!(view.read(page_start(3), page_len(3)).await.unwrap(), pattern(3 ^ (3 << 20), page_len(3)));
    assert_eq!(view.read(page_start(2), page_len(2)).await.unwrap(), pattern(2 ^ (2 << 20), page_len(2)));
}
