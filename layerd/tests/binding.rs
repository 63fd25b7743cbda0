//! A metadata store and an object store belong together: the metadata names
//! layers that only its own object store holds. Opening one with another's
//! partner is refused at once, with both named, instead of failing reads
//! later (or gc deleting the other's objects as orphans).

mod common;

use common::{env, pattern, Backend};
use layerd::page::{page_len, page_start};
use layerd::{Layerd, LayerdConfig, LayerdError};

async fn one_snapshot(cfg: &LayerdConfig) {
    let od = Layerd::open(cfg.clone()).await.unwrap();
    od.create_database("db").await.unwrap();
    let h = od.open_head("db").await.unwrap();
    h.write(page_start(1), &pattern(1, page_len(1))).await.unwrap();
    od.seal(&h).await.unwrap().unwrap();
}

fn store_of(dir: &std::path::Path) -> String {
    url::Url::from_directory_path(dir).unwrap().to_string()
}

#[tokio::test]
async fn metadata_opened_with_another_object_store_is_refused() {
    let env = env(Backend::SqliteLocal).await;
    let mut cfg = env.cfg.clone();
    cfg.store_url = Some(store_of(&env.dir.path().join("store-a")));
    one_snapshot(&cfg).await;
    // The same metadata, another (empty) object store: its snapshots would be unreadable.
    let mut other = cfg.clone();
    other.store_url = Some(store_of(&env.dir.path().join("store-b")));
    match Layerd::open(other).await {
        Err(e @ LayerdError::StoreMismatch { .. }) => {
            let m = e.to_string();
            assert!(m.contains("store-a") && m.contains("store-b"), "{m}");
        }
        Err(e) => panic!("expected StoreMismatch, got {e}"),
        Ok(_) => panic!("opened metadata with an object store that does not hold its layers"),
    }
    // The right pair still opens and reads.
    let od = Layerd::open(cfg).await.unwrap();
    od.open_snapshot("db", None).await.unwrap().read(0, 4096).await.unwrap();
}

#[tokio::test]
async fn object_store_opened_with_another_metadata_store_is_refused() {
    let env = env(Backend::SqliteLocal).await;
    let mut cfg = env.cfg.clone();
    cfg.store_url = Some(store_of(&env.dir.path().join("store")));
    one_snapshot(&cfg).await;
    // A fresh metadata store on the same objects: its gc would see every
    // object as an orphan.
    let mut other = cfg.clone();
    other.metadata_url = Some(format!("sqlite://{}?mode=rwc", env.dir.path().join("other.sqlite").display()));
    match Layerd::open(other).await {
        Err(LayerdError::StoreMismatch { .. }) => {}
        Err(e) => panic!("expected StoreMismatch, got {e}"),
        Ok(_) => panic!("opened an object store that belongs to another metadata store"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_binding_a_new_pair_together_agree() {
    let env = env(Backend::SqliteLocal).await;
    let mut cfg = env.cfg.clone();
    cfg.store_url = Some(store_of(&env.dir.path().join("store")));
    cfg.metadata_url = Some(format!("sqlite://{}?mode=rwc", env.dir.path().join("shared.sqlite").display()));
    let opens: Vec<_> = (0..6)
        .map(|i| {
            let mut c = cfg.clone();
            c.data_dir = env.dir.path().join(format!("node{i}"));
            tokio::spawn(async move { Layerd::open(c).await.map(|_| ()) })
        })
        .collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_refused_fresh_metadata_store_stays_unbound() {
    let env = env(Backend::SqliteLocal).await;
    let mut cfg = env.cfg.clone();
    cfg.store_url = Some(store_of(&env.dir.path().join("store-a")));
    one_snapshot(&cfg).await;
    let mut fresh = cfg.clone();
    fresh.metadata_url = Some(format!("sqlite://{}?mode=rwc", env.dir.path().join("fresh.sqlite").display()));
    assert!(Layerd::open(fresh.clone()).await.is_err());
    // Pointed at a store of its own, the fresh metadata binds to it.
    fresh.store_url = Some(store_of(&env.dir.path().join("store-b")));
    Layerd::open(fresh).await.unwrap();
}
