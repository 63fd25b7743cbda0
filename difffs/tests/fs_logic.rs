//! The filesystem logic without a kernel: the tree, the head, side files,
//! read-only snapshots and the snapshot-per-checkpoint rule.

use std::ffi::OsStr;
use std::sync::Arc;

use difffs::fs::Kind;
use difffs::namespace::ROOT_INO;
use difffs::DiffFs;
use layerd::{Layerd, LayerdConfig};

struct Env {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    fs: DiffFs,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let od = rt.block_on(Layerd::open(LayerdConfig::new(dir.path().join("data")))).unwrap();
    rt.block_on(od.create_database("db")).unwrap();
    let fs = DiffFs::new(Arc::new(od), rt.handle().clone(), 0);
    Env { _dir: dir, rt, fs }
}

fn names(fs: &DiffFs, ino: u64) -> Vec<String> {
    let mut v: Vec<String> = fs.readdir(ino).unwrap().into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

fn errno<T: std::fmt::Debug>(r: Result<T, difffs::error::FsError>) -> i32 {
    r.expect_err("expected an error").errno()
}

/// Bytes that look like a DuckDB checkpoint: blocks first, then a header.
fn checkpoint(fs: &DiffFs, fh: u64, seed: u8, blocks: u64) {
    for b in 0..blocks {
        fs.write(fh, 12288 + b * 262144, &vec![seed.wrapping_add(b as u8); 262144]).unwrap();
    }
    fs.fsync(fh).unwrap();
    fs.write(fh, 4096, &[seed; 4096]).unwrap();
    fs.fsync(fh).unwrap();
}

#[test]
fn tree_head_and_snapshot_per_checkpoint() {
    let e = env();
    let fs = &e.fs;
    assert_eq!(names(fs, ROOT_INO), ["db"]);
    assert_eq!(errno(fs.lookup(ROOT_INO, OsStr::new("nope"))), libc::ENOENT);
    let db = fs.lookup(ROOT_INO, OsStr::new("db")).unwrap();
    assert_eq!(db.kind, Kind::Dir);
    // A new database has no head file until DuckDB creates it.
    assert_eq!(names(fs, db.ino), ["snapshots"]);
    assert_eq!(errno(fs.lookup(db.ino, OsStr::new("head.duckdb"))), libc::ENOENT);
    let (head, opened) = fs.create(db.ino, OsStr::new("head.duckdb"), libc::O_RDWR | libc::O_CREAT).unwrap();
    assert_eq!(head.size, 0);
    checkpoint(fs, opened.fh, 1, 2);
    // Writes after the checkpoint are in the head, not in its snapshot.
    fs.write(opened.fh, 12288, &[9; 262144]).unwrap();
    fs.fsync(opened.fh).unwrap();
    let h = fs.head("db").unwrap();
    e.rt.block_on(h.settle()).unwrap();
    assert_eq!(names(fs, db.ino), ["head.duckdb", "latest.duckdb", "snapshots"]);
    let snaps = fs.lookup(db.ino, OsStr::new("snapshots")).unwrap();
    assert_eq!(names(fs, snaps.ino), ["1.duckdb"]);
    let latest = fs.lookup(db.ino, OsStr::new("latest.duckdb")).unwrap();
    assert_eq!(fs.readlink(latest.ino).unwrap(), "snapshots/1.duckdb");
    let s1 = fs.lookup(snaps.ino, OsStr::new("1.duckdb")).unwrap();
    assert_eq!(s1.size, 12288 + 2 * 262144);
    let o = fs.open(s1.ino, libc::O_RDONLY).unwrap();
    assert!(o.keep_cache);
    assert_eq!(fs.read(o.fh, 12288, 4).unwrap(), [1; 4]);
    assert_eq!(fs.read(o.fh, 4096, 2).unwrap(), [1; 2]);
    assert_eq!(fs.read(opened.fh, 12288, 4).unwrap(), [9; 4], "head sees its own later write");
    // Snapshots are read-only.
    assert_eq!(errno(fs.open(s1.ino, libc::O_RDWR)), libc::EROFS);
    assert_eq!(errno(fs.write(o.fh, 0, b"x")), libc::EROFS);
    assert_eq!(errno(fs.set_size(s1.ino, 0)), libc::EROFS);
    assert_eq!(errno(fs.lookup(snaps.ino, OsStr::new("7.duckdb"))), libc::ENOENT);
    assert_eq!(errno(fs.lookup(snaps.ino, OsStr::new("x.wal"))), libc::ENOENT);
    // A second checkpoint is a second snapshot; the first keeps its content.
    checkpoint(fs, opened.fh, 2, 1);
    e.rt.block_on(h.settle()).unwrap();
    assert_eq!(names(fs, snaps.ino), ["1.duckdb", "2.duckdb"]);
    assert_eq!(fs.read(o.fh, 12288, 4).unwrap(), [1; 4]);
    let s2 = fs.lookup(snaps.ino, OsStr::new("2.duckdb")).unwrap();
    let o2 = fs.open(s2.ino, libc::O_RDONLY).unwrap();
    assert_eq!(fs.read(o2.fh, 12288, 4).unwrap(), [2; 4]);
    assert_eq!(fs.read(o2.fh, 12288 + 262144, 4).unwrap(), [2; 4], "unchanged block carried over");
    // The head file cannot be removed or renamed through the mount.
    assert_eq!(errno(fs.unlink(db.ino, OsStr::new("head.duckdb"))), libc::EPERM);
    assert_eq!(errno(fs.rename(db.ino, OsStr::new("head.duckdb"), db.ino, OsStr::new("x"))), libc::EPERM);
}

#[test]
fn side_files_behave_like_a_local_directory() {
    let e = env();
    let fs = &e.fs;
    let db = fs.lookup(ROOT_INO, OsStr::new("db")).unwrap();
    let (_, wal) = fs.create(db.ino, OsStr::new("head.duckdb.wal.checkpoint"), libc::O_RDWR | libc::O_CREAT).unwrap();
    fs.write(wal.fh, 0, b"walbytes").unwrap();
    fs.fsync(wal.fh).unwrap();
    let (_, old) = fs.create(db.ino, OsStr::new("head.duckdb.wal"), libc::O_RDWR | libc::O_CREAT).unwrap();
    fs.write(old.fh, 0, b"old").unwrap();
    fs.rename(db.ino, OsStr::new("head.duckdb.wal.checkpoint"), db.ino, OsStr::new("head.duckdb.wal")).unwrap();
    let a = fs.lookup(db.ino, OsStr::new("head.duckdb.wal")).unwrap();
    assert_eq!(a.size, 8);
    assert_eq!(fs.read(wal.fh, 0, 100).unwrap(), b"walbytes");
    assert_eq!(errno(fs.lookup(db.ino, OsStr::new("head.duckdb.wal.checkpoint"))), libc::ENOENT);
    let tmp = fs.mkdir(db.ino, OsStr::new("head.duckdb.tmp")).unwrap();
    let (_, spill) = fs.create(tmp.ino, OsStr::new("spill.block"), libc::O_RDWR | libc::O_CREAT).unwrap();
    fs.write(spill.fh, 0, &[7; 100]).unwrap();
    assert_eq!(fs.set_size(fs.lookup(tmp.ino, OsStr::new("spill.block")).unwrap().ino, 10).unwrap().size, 10);
    assert_eq!(errno(fs.rmdir(db.ino, OsStr::new("head.duckdb.tmp"))), libc::ENOTEMPTY);
    fs.unlink(tmp.ino, OsStr::new("spill.block")).unwrap();
    fs.rmdir(db.ino, OsStr::new("head.duckdb.tmp")).unwrap();
    fs.unlink(db.ino, OsStr::new("head.duckdb.wal")).unwrap();
    assert_eq!(names(fs, db.ino), ["snapshots"]);
    // Creating a database through the mount.
    let new = fs.mkdir(ROOT_INO, OsStr::new("fresh")).unwrap();
    assert_eq!(new.kind, Kind::Dir);
    assert_eq!(names(fs, ROOT_INO), ["db", "fresh"]);
    assert_eq!(errno(fs.mkdir(ROOT_INO, OsStr::new("fresh"))), libc::EEXIST);
    assert_eq!(errno(fs.mkdir(ROOT_INO, OsStr::new("bad name"))), libc::EINVAL);
}
