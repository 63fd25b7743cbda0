//! Reference-model property test of the whole storage engine.
//!
//! Random sequences of writes, truncates, fsyncs, seals (also interrupted by a
//! simulated crash at each step of the seal), compactions, gcs with retention,
//! pins, clones and crashes with torn log tails run against layerd and against a
//! plain in-memory model. After every step the head and every retained
//! snapshot (of every database) must read back byte-identical to the model.

mod common;

use std::collections::BTreeMap;

use common::{available, env, pattern, Backend};
use layerd::seal::SealStep;
use layerd::{GcOptions, Head, Layerd};
use proptest::prelude::*;

const MAX_SIZE: u64 = 12288 + 9 * 262144;

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, len: usize, seed: u64 },
    Truncate { size: u64 },
    Sync,
    Seal,
    SealCrash(SealStep),
    Compact,
    Gc { keep_last: usize },
    Pin { pick: usize },
    Clone { pick: usize },
    Crash { torn_tail: bool },
}

fn offset_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        // Page-aligned, like DuckDB's own block writes.
        (0..9u64).prop_map(|k| if k == 0 { 0 } else { 12288 + (k - 1) * 262144 }),
        Just(4096u64),
        0..MAX_SIZE,
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (offset_strategy(), prop_oneof![Just(262144usize), Just(4096), 1..300_000usize], 0..6u64)
            .prop_map(|(offset, len, seed)| Op::Write { offset, len, seed }),
        2 => (0..MAX_SIZE).prop_map(|size| Op::Truncate { size }),
        2 => Just(Op::Sync),
        4 => Just(Op::Seal),
        1 => prop_oneof![Just(SealStep::AfterObjects), Just(SealStep::AfterCommit)].prop_map(Op::SealCrash),
        1 => Just(Op::Compact),
        1 => (1..4usize).prop_map(|keep_last| Op::Gc { keep_last }),
        1 => any::<usize>().prop_map(|pick| Op::Pin { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Clone { pick }),
        2 => any::<bool>().prop_map(|torn_tail| Op::Crash { torn_tail }),
    ]
}

/// What the storage engine must contain.
#[derive(Default)]
struct Model {
    head: Vec<u8>,
    durable: Vec<u8>,
    /// db -> snapshot id -> (content, pinned)
    snapshots: BTreeMap<String, BTreeMap<i64, (Vec<u8>, bool)>>,
}

impl Model {
    fn write(&mut self, offset: u64, data: &[u8]) {
        let end = offset as usize + data.len();
        if self.head.len() < end {
            self.head.resize(end, 0);
        }
        self.head[offset as usize..end].copy_from_slice(data);
    }
    fn main(&mut self) -> &mut BTreeMap<i64, (Vec<u8>, bool)> {
        self.snapshots.entry("m".into()).or_default()
    }
}

async fn restart(env: &common::TestEnv, od: &mut Layerd, head: &mut Option<Head>, torn_tail: bool) {
    *head = None;
    if torn_tail {
        // Garbage after the last record, as a crash mid-append leaves it.
        let dir = env.cfg.data_dir.join("heads").join("m");
        let mut segs: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect();
        segs.sort();
        if let Some(last) = segs.last() {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
            f.write_all(&pattern(99, 777)).unwrap();
        }
    }
    *od = Layerd::open(env.cfg.clone()).await.expect("reopen");
    *head = Some(od.open_head("m").await.expect("reopen head"));
}

async fn check(od: &Layerd, head: &Head, model: &Model) {
    let got = head.read(0, MAX_SIZE as usize * 2).await.expect("read head");
    assert_eq!(got.len(), model.head.len(), "head size");
    assert!(got == model.head, "head content differs from the model");
    for (db, snaps) in &model.snapshots {
        let listed: Vec<i64> = od.snapshots(db).await.expect("list").iter().map(|s| s.id).collect();
        assert_eq!(listed, snaps.keys().copied().collect::<Vec<_>>(), "retained snapshots of {db}");
        for (id, (content, pinned)) in snaps {
            let view = od.open_snapshot(db, Some(*id)).await.expect("open snapshot");
            assert_eq!(view.info.pinned, *pinned);
            let got = view.read(0, content.len() + 1).await.expect("read snapshot");
            assert!(got == *content, "snapshot {db}@{id} differs from the model ({} vs {} bytes)", got.len(), content.len());
        }
    }
}

async fn run(backend: Backend, ops: Vec<Op>) {
    let mut env = env(backend).await;
    // Claims of seals that crashed after their puts expire at once, so the
    // final gc can reclaim their objects (nothing here runs beside a gc).
    env.cfg.claim_ttl_ms = 1;
    let mut od = Layerd::open(env.cfg.clone()).await.expect("open");
    od.create_database("m").await.expect("create");
    let mut head = Some(od.open_head("m").await.expect("head"));
    let mut model = Model::default();
    let mut clones = 0;
    for op in ops {
        let h = head.as_ref().expect("head open");
        match op {
            Op::Write { offset, len, seed } => {
                let data = pattern(seed, len);
                h.write(offset, &data).await.expect("write");
                model.write(offset, &data);
            }
            Op::Truncate { size } => {
                h.truncate(size).await.expect("truncate");
                model.head.resize(size as usize, 0);
            }
            Op::Sync => {
                h.sync().await.expect("sync");
                model.durable = model.head.clone();
            }
            Op::Seal => {
                let latest = model.main().last_key_value().map(|(_, v)| v.0.clone());
                match od.seal(h).await.expect("seal") {
                    Some(info) => {
                        assert_ne!(latest.as_ref(), Some(&model.head), "sealed without a change");
                        let content = model.head.clone();
                        model.main().insert(info.id, (content, false));
                    }
                    None => assert_eq!(latest.unwrap_or_default(), model.head, "seal skipped a change"),
                }
                model.durable = model.head.clone();
            }
            Op::SealCrash(step) => {
                let r = od.seal_with(h, Some(step)).await;
                model.durable = model.head.clone();
                restart(&env, &mut od, &mut head, false).await;
                if let Err(layerd::LayerdError::SimulatedCrash(_)) = r {
                    model.head = model.durable.clone();
                    let latest = od.snapshots("m").await.expect("list").last().map(|s| s.id);
                    let known = model.main().last_key_value().map(|(k, _)| *k);
                    if latest != known {
                        assert_eq!(step, SealStep::AfterCommit, "a snapshot appeared without a commit");
                        let content = model.head.clone();
                        model.main().insert(latest.expect("new snapshot"), (content, false));
                    }
                } else {
                    // Nothing to seal: no crash point was reached.
                    assert!(r.expect("seal").is_none());
                }
            }
            Op::Compact => {
                od.compact("m", None).await.map(|_| ()).or_else(|e| match e {
                    layerd::LayerdError::NoSnapshot(_) => Ok(()),
                    e => Err(e),
                }).expect("compact");
            }
            Op::Gc { keep_last } => {
                let r = od.gc(&GcOptions { keep_last: Some(keep_last), grace_ms: 0, ..Default::default() }).await.expect("gc");
                let _ = r;
                for snaps in model.snapshots.values_mut() {
                    let ids: Vec<i64> = snaps.keys().copied().collect();
                    let n = ids.len();
                    for (i, id) in ids.iter().enumerate() {
                        if !(snaps[id].1 || i + keep_last >= n || i + 1 == n) {
                            snaps.remove(id);
                        }
                    }
                }
            }
            Op::Pin { pick } => {
                let ids: Vec<i64> = model.main().keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[pick % ids.len()];
                    od.pin("m", id, true).await.expect("pin");
                    model.main().get_mut(&id).expect("snapshot").1 = true;
                }
            }
            Op::Clone { pick } => {
                let ids: Vec<i64> = model.main().keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[pick % ids.len()];
                    clones += 1;
                    let name = format!("c{clones}");
                    let info = od.clone_database("m", &name, Some(id)).await.expect("clone");
                    let content = model.main()[&id].0.clone();
                    model.snapshots.entry(name).or_default().insert(info.id, (content, false));
                }
            }
            Op::Crash { torn_tail } => {
                restart(&env, &mut od, &mut head, torn_tail).await;
                model.head = model.durable.clone();
            }
        }
        check(&od, head.as_ref().expect("head"), &model).await;
    }
    // Finally everything must survive a clean restart and a full gc.
    head.as_ref().expect("head").sync().await.expect("sync");
    model.durable = model.head.clone();
    restart(&env, &mut od, &mut head, false).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    od.gc(&GcOptions { grace_ms: 0, ..Default::default() }).await.expect("gc");
    check(&od, head.as_ref().expect("head"), &model).await;
    // Nothing leaks: every object left is one the metadata knows, and back.
    let listed: std::collections::HashSet<_> = od.store().list_layers().await.expect("list").into_iter().map(|l| l.id).collect();
    assert_eq!(listed, od.catalog().known_layers().await.expect("known"), "objects vs metadata after gc");
}

fn run_blocking(backend: Backend, ops: Vec<Op>) {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime").block_on(run(backend, ops));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn model_sqlite_local(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        run_blocking(Backend::SqliteLocal, ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 50, ..ProptestConfig::default() })]
    #[test]
    fn model_postgres(ops in proptest::collection::vec(op_strategy(), 1..30)) {
        if available(Backend::PostgresLocal) {
            run_blocking(Backend::PostgresLocal, ops);
        }
    }

    #[test]
    fn model_s3(ops in proptest::collection::vec(op_strategy(), 1..30)) {
        if available(Backend::SqliteS3) {
            run_blocking(Backend::SqliteS3, ops);
        }
    }
}
