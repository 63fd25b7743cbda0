//! GC never deletes an object that a seal, import or compaction in flight will
//! commit, whatever the timing: in-flight writes hold claims on their layer
//! ids, and gc deletes an object only under a tombstone claim of its own.

mod common;

use common::{env, pattern, Backend};
use layerd::catalog::NewSnapshot;
use layerd::page::page_len;
use layerd::seal::{Candidate, DeltaBuilder};
use layerd::{GcOptions, Layerd};

/// Pages 0..n with bytes from `seed`, as a plain file would hold them.
fn pages(n: u64, seed: u64) -> Vec<Vec<u8>> {
    (0..n).map(|p| pattern(seed ^ (p << 20), page_len(p))).collect()
}

/// The first half of an import: layer objects stored, nothing committed.
async fn put_layers(od: &Layerd, content: &[Vec<u8>]) -> Vec<layerd::catalog::NewLayer> {
    let mut delta = DeltaBuilder::new(od.store(), od.catalog(), od.owner());
    let candidates = (0..content.len() as u64).map(|page| Candidate { page, hash: None }).collect();
    delta.add_pages(candidates, |_, _| false, |p| Ok(content[p as usize].clone()), |_| {}).await.unwrap();
    delta.finish().await.unwrap().0
}

async fn commit_import(
    od: &Layerd,
    db: &str,
    content: &[Vec<u8>],
    new_layers: Vec<layerd::catalog::NewLayer>,
) -> layerd::Result<layerd::SnapshotInfo> {
    let size = content.iter().map(|p| p.len() as u64).sum();
    od.catalog()
        .commit_snapshot(NewSnapshot {
            db: db.to_string(),
            parent: None,
            size,
            layers: new_layers.iter().map(|l| l.id).collect(),
            new_layers,
            head_ref: None,
            create_database: true,
            lease: None,
        })
        .await
}

async fn assert_reads(od: &Layerd, db: &str, content: &[Vec<u8>]) {
    od.store().clear_memory_cache();
    let view = od.open_snapshot(db, None).await.unwrap();
    let want: Vec<u8> = content.concat();
    let got = view.read(0, want.len()).await.unwrap_or_else(|e| panic!("reading the committed snapshot: {e}"));
    assert!(got == want, "the committed snapshot reads back different bytes");
}

#[tokio::test]
async fn gc_never_deletes_the_objects_of_a_seal_still_running() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    let content = pages(5, 7);
    let layers = put_layers(&od, &content).await;
    // A gc that started after the seal outlived its grace (here: grace 0).
    let r = od.gc(&GcOptions { grace_ms: 0, ..Default::default() }).await.unwrap();
    assert_eq!(r.orphans_deleted, 0, "gc deleted the object of a seal in flight");
    commit_import(&od, "db", &content, layers).await.unwrap();
    assert_reads(&od, "db", &content).await;
}

/// A gc that has forgotten a layer and holds its tombstone, but has not yet
/// deleted the object: the moment a byte-identical re-seal used to lose.
async fn condemned_and_tombstoned(od: &Layerd, content: &[Vec<u8>]) -> layerd::layer::LayerId {
    let layers = put_layers(od, content).await;
    let first = commit_import(od, "a", content, layers).await.unwrap();
    // Rewrite every page: the imported layer is unused once snapshot 1 goes.
    let h = od.open_head("a").await.unwrap();
    for (p, bytes) in pages(content.len() as u64, 99).iter().enumerate() {
        h.write(layerd::page::page_start(p as u64), bytes).await.unwrap();
    }
    od.seal(&h).await.unwrap().unwrap();
    od.refresh_pins().await.unwrap(); // the head's view of snapshot 1 is gone
    od.gc(&GcOptions { keep_last: Some(1), ..Default::default() }).await.unwrap();
    let old = first.layers[0];
    assert!(od.catalog().tombstone_condemned(&old, i64::MAX, "a stalled gc").await.unwrap());
    old
}

#[tokio::test]
async fn resealing_content_whose_old_copy_is_being_deleted_gets_another_name() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    let content = pages(4, 3);
    let old = condemned_and_tombstoned(&od, &content).await;
    // The same content again, while the gc still has to delete the old copy.
    let layers = put_layers(&od, &content).await;
    assert_eq!(layers.len(), 1);
    assert_ne!(layers[0].id, old, "wrote the very object the gc is about to delete");
    // The stalled gc goes on: deletes the object under its tombstone.
    od.store().delete_layer(&old).await.unwrap();
    od.catalog().drop_tombstone(&old).await.unwrap();
    commit_import(&od, "b", &content, layers).await.unwrap();
    assert_reads(&od, "b", &content).await;
}

#[tokio::test]
async fn a_gc_that_stopped_after_its_tombstone_is_finished_by_the_next() {
    let env = env(Backend::SqliteLocal).await;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    let content = pages(4, 5);
    let old = condemned_and_tombstoned(&od, &content).await;
    od.gc(&GcOptions::default()).await.unwrap();
    let listed: Vec<_> = od.store().list_layers().await.unwrap().into_iter().map(|l| l.id).collect();
    assert!(!listed.contains(&old), "the tombstoned object is still stored");
    assert!(od.catalog().tombstones().await.unwrap().is_empty());
    // The name is free again: the same content is stored under it.
    let layers = put_layers(&od, &content).await;
    assert_eq!(layers[0].id, old);
    commit_import(&od, "b", &content, layers).await.unwrap();
    assert_reads(&od, "b", &content).await;
}

#[tokio::test]
async fn a_writer_whose_claim_expired_and_was_collected_cannot_commit() {
    let mut env = env(Backend::SqliteLocal).await;
    env.cfg.claim_ttl_ms = 1;
    let od = Layerd::open(env.cfg.clone()).await.unwrap();
    let content = pages(3, 11);
    let layers = put_layers(&od, &content).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    // The writer stalled past its claim: gc takes the object as an orphan.
    let r = od.gc(&GcOptions::default()).await.unwrap();
    assert_eq!(r.orphans_deleted, 1);
    match commit_import(&od, "db", &content, layers).await {
        Err(layerd::LayerdError::ClaimLost { .. }) => {}
        other => panic!("expected ClaimLost, got {other:?}"),
    }
    assert!(od.list_databases().await.unwrap().is_empty(), "nothing was committed");
}

/// Seals (every page rewritten each round, so every round's layers become
/// garbage soon) against a gc loop with no grace at all.
async fn seals_against_a_graceless_gc(backend: Backend) {
    let env = env(backend).await;
    let od = std::sync::Arc::new(Layerd::open(env.cfg.clone()).await.unwrap());
    od.create_database("db").await.unwrap();
    let writer = {
        let od = od.clone();
        tokio::spawn(async move {
            let h = od.open_head("db").await.unwrap();
            let mut last = None;
            for round in 0..30u64 {
                for (p, bytes) in pages(6, round).iter().enumerate() {
                    h.write(layerd::page::page_start(p as u64), bytes).await.unwrap();
                }
                let s = od.seal(&h).await.unwrap().unwrap();
                last = Some((s.id, pages(6, round).concat()));
            }
            last.unwrap()
        })
    };
    let collector = {
        let od = od.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                od.gc(&GcOptions { keep_last: Some(1), grace_ms: 0, ..Default::default() }).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let (id, want) = writer.await.unwrap();
    collector.await.unwrap();
    od.store().clear_memory_cache();
    let v = od.open_snapshot("db", Some(id)).await.unwrap();
    assert!(v.read(0, want.len()).await.unwrap() == want, "latest snapshot {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seals_against_a_graceless_gc_sqlite() {
    seals_against_a_graceless_gc(Backend::SqliteLocal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seals_against_a_graceless_gc_postgres() {
    if common::available(Backend::PostgresLocal) {
        seals_against_a_graceless_gc(Backend::PostgresLocal).await;
    }
}
