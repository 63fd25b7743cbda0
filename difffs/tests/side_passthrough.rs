//! DuckDB's side files (the WAL) on a real kernel mount (root only, skipped
//! elsewhere) are served by FUSE passthrough: reads and writes go straight
//! to the local side file, never through the daemon, while fsync, size,
//! truncate, rename and unlink keep working.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;

use difffs::fs::SideIo;

mod common;

use common::{can_mount, start};

fn read_at(f: &std::fs::File, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = f.read_at(&mut buf, 0).expect("read through the mount");
    buf.truncate(n);
    buf
}

#[test]
fn wal_is_read_and_written_by_kernel_passthrough() {
    if !can_mount() {
        return;
    }
    let env = start(|fs, opts| difffs::mount(fs, opts).expect("mount"));
    let fs = &env.fs;
    assert!(
        fs.kernel_passthrough(),
        "the kernel refused FUSE passthrough (needs Linux >= 6.9 with CONFIG_FUSE_PASSTHROUGH=y): \
         side files are served through the daemon here, which this test is meant to rule out"
    );
    let wal = env.mnt.join("db/head.duckdb.wal");
    let local_wal = fs.side_file("db", "head.duckdb.wal");

    // Created and written through the mount, as DuckDB writes its WAL.
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&wal).expect("create the WAL");
    f.write_all_at(b"commit-1", 0).expect("write");
    // fsync still goes to the daemon, which syncs the local file.
    f.sync_data().expect("fsync a passthrough file");
    assert_eq!(std::fs::read(&local_wal).expect("read the local side file"), b"commit-1", "the bytes are in the local side file");
    assert_eq!(f.metadata().expect("fstat").len(), 8, "fstat through the mount sees the written size");
    assert_eq!(std::fs::metadata(&wal).expect("stat").len(), 8, "stat through the mount sees the written size");

    // Written behind the mount's back: an open mount descriptor reads it
    // at once (no daemon, no stale page cache in between).
    let local = OpenOptions::new().write(true).open(&local_wal).expect("open the local side file");
    local.write_all_at(b"-direct", 8).expect("write the local file");
    assert_eq!(read_at(&f, 64), b"commit-1-direct", "a local write is not seen through the open mount descriptor: reads are not passthrough");

    // A second open of the same inode shares its backing (append mode).
    let mut g = OpenOptions::new().append(true).open(&wal).expect("reopen for append");
    g.write_all(b"+append").expect("append");
    g.sync_all().expect("fsync");
    assert_eq!(std::fs::read(&local_wal).expect("read"), b"commit-1-direct+append");
    assert_eq!(f.metadata().expect("fstat").len(), 22, "size after an append through another descriptor");

    // ftruncate through the mount.
    f.set_len(6).expect("ftruncate");
    assert_eq!(std::fs::metadata(&local_wal).expect("stat").len(), 6);
    assert_eq!(f.metadata().expect("fstat").len(), 6);
    assert_eq!(read_at(&f, 64), b"commit");
    drop((f, g, local));

    // A checkpoint: DuckDB writes `.wal.checkpoint` and renames it over the WAL.
    let ck = env.mnt.join("db/head.duckdb.wal.checkpoint");
    std::fs::write(&ck, b"after-checkpoint").expect("write the checkpoint WAL");
    std::fs::rename(&ck, &wal).expect("rename over the WAL");
    assert!(!fs.side_file("db", "head.duckdb.wal.checkpoint").exists());
    assert_eq!(std::fs::read(&local_wal).expect("read"), b"after-checkpoint");
    assert_eq!(std::fs::read(&wal).expect("read through the mount"), b"after-checkpoint");
    let f = OpenOptions::new().read(true).write(true).open(&wal).expect("reopen the renamed WAL");
    f.write_all_at(b"AFTER", 0).expect("write");
    assert_eq!(std::fs::read(&local_wal).expect("read"), b"AFTER-checkpoint");
    drop(f);

    std::fs::remove_file(&wal).expect("unlink through the mount");
    assert!(!local_wal.exists(), "unlink removed the local side file");

    // None of the above was served by the daemon.
    assert_eq!(fs.side_io_served(), SideIo::default(), "side-file reads/writes reached the daemon: passthrough was not used");
}
