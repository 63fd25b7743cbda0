//! The mount is not an open door: a real kernel mount (root only, skipped
//! elsewhere) checked for its options, owners, modes, free space and what
//! another local user can do.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

mod common;

use common::{can_mount, start};

fn mount_options(mnt: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let want = mnt.to_string_lossy();
    info.lines().find(|l| l.split(' ').nth(4) == Some(&*want)).map(|l| l.to_string()).unwrap_or_default()
}

/// Run `args` as user nobody; returns (success, stderr).
fn as_nobody(args: &[&str]) -> (bool, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .expect("setpriv (util-linux) must be installed");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn default_mount_is_private_with_kernel_permission_checks_and_real_statfs() {
    if !can_mount() {
        return;
    }
    let env = start(|fs, opts| difffs::mount(fs, opts).expect("mount"));
    let line = mount_options(&env.mnt);
    assert!(line.contains("default_permissions"), "kernel permission checks are on: {line}");
    assert!(!line.contains("allow_other"), "other users are not let in: {line}");

    // Owners and modes are the daemon's and the real ones.
    let head = env.mnt.join("db/head.duckdb");
    let m = std::fs::metadata(&head).expect("stat head");
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    assert_eq!(m.mode() & 0o777, 0o644);
    assert_eq!(std::fs::metadata(env.mnt.join("db/snapshots")).expect("stat").mode() & 0o777, 0o755);

    // statfs: the free space of the disk behind the data directory.
    let statvfs = |p: &Path| difffs::statfs::of(p).unwrap_or_else(|e| panic!("statvfs {}: {e}", p.display()));
    let (fuse, disk) = (statvfs(&env.mnt), statvfs(&env.data));
    assert_eq!(fuse.frsize, disk.frsize, "fragment size");
    assert_eq!(fuse.blocks, disk.blocks, "total blocks");
    let slack = (64 << 20) / u64::from(disk.frsize.max(1)); // other writers on the disk meanwhile
    assert!(fuse.bavail.abs_diff(disk.bavail) <= slack, "available: mount {} vs disk {}", fuse.bavail, disk.bavail);
    assert!(fuse.bfree.abs_diff(disk.bfree) <= slack, "free: mount {} vs disk {}", fuse.bfree, disk.bfree);

    // Another local user cannot read, let alone write, anything.
    let (ok, err) = as_nobody(&["cat", head.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("Permission denied"), "nobody reading the head: ok={ok} {err}");
    let (ok, err) = as_nobody(&["ls", env.mnt.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("Permission denied"), "nobody listing the mount: ok={ok} {err}");
}

#[test]
fn allow_other_lets_others_read_but_never_write() {
    if !can_mount() {
        return;
    }
    let access = difffs::MountAccess { allow_other: true };
    let env = start(|fs, opts| difffs::mount_with_access(fs, opts, access).expect("mount"));
    let line = mount_options(&env.mnt);
    assert!(line.contains("default_permissions") && line.contains("allow_other"), "{line}");
    let head = env.mnt.join("db/head.duckdb");
    let (ok, err) = as_nobody(&["ls", env.mnt.join("db").to_str().expect("utf-8")]);
    assert!(ok, "nobody may list the databases when allowed in: {err}");
    let (ok, err) = as_nobody(&["sh", "-c", &format!("echo x >> '{}'", head.display())]);
    assert!(!ok && err.contains("Permission denied"), "nobody writing the head: ok={ok} {err}");
    let (ok, err) = as_nobody(&["mkdir", env.mnt.join("newdb").to_str().expect("utf-8")]);
    assert!(!ok && err.contains("Permission denied"), "nobody creating a database: ok={ok} {err}");
    assert_eq!(std::fs::metadata(&head).expect("stat").len(), 0, "the head is unchanged");
}
