//! A mount guard: a small separate process that outlives a daemon killed
//! with SIGKILL and cleans up after it.
//!
//! A process that serves a FUSE mount and also uses files on it (the query
//! workers' DuckDBs) cannot always die: when it is killed while one of its
//! threads waits on a FUSE request, or while exiting closes a file on the
//! mount (a FUSE flush), that wait is for an answer from itself, and it
//! never comes. The process stays a zombie with a live thread, keeping its
//! sockets (the port), its open files and the mount. The guard watches the
//! daemon's process; once its main thread is gone it aborts the FUSE
//! connection (pending requests fail, the stuck threads finish) and
//! detaches the mount, so the machine is clean for a restart.
//!
//! The kernel reuses FUSE connection numbers (and mount ids), so a guard
//! could mistake the mount of a daemon started right after for the one it
//! guards. A guard therefore holds a lock (`<data>/run/mount-guard.lock`)
//! for its whole life, and a daemon waits for that lock before it mounts:
//! the previous guard has finished by then.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the guard looks at the daemon's process.
const POLL: Duration = Duration::from_millis(100);
/// Where the kernel lists FUSE connections (the fusectl filesystem).
const CONNECTIONS: &str = "/sys/fs/fuse/connections";

/// The FUSE connection number of the mount at `mountpoint` (its device
/// minor): call it in the daemon's process while the mount is served.
pub fn connection_of(mountpoint: &Path) -> std::io::Result<u32> {
    let dev = std::fs::metadata(mountpoint)?.dev();
    Ok(libc::minor(dev))
}

/// Whether process `pid`'s main thread has exited (or the process is gone).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ..." where comm may hold spaces or parentheses.
        Ok(stat) => stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).is_none_or(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

/// Make sure the fusectl filesystem is mounted (best effort: needs root).
fn ensure_fusectl() {
    let mounted = std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| m.lines().any(|l| l.contains(CONNECTIONS)));
    if !mounted {
        let _ = std::process::Command::new("mount").args(["-t", "fusectl", "none", CONNECTIONS]).status();
    }
}

/// Abort FUSE connection `connection` and detach `mountpoint`.
pub fn abort(connection: u32, mountpoint: &Path) {
    ensure_fusectl();
    let abort = Path::new(CONNECTIONS).join(connection.to_string()).join("abort");
    if let Err(e) = std::fs::write(&abort, "1") {
        tracing::warn!(path = %abort.display(), error = %e, "cannot abort the FUSE connection");
    }
    if let Ok(c) = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes()) {
        // SAFETY: c is a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Whether the mount at `mountpoint` is still FUSE connection `connection`
/// (a number the kernel reuses once that mount is gone).
fn still_mounted(connection: u32, mountpoint: &Path) -> bool {
    let want = mountpoint.to_string_lossy();
    let dev = format!("0:{connection}");
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines().any(|line| {
            let mut fields = line.split(' ');
            fields.nth(2) == Some(dev.as_str()) && fields.nth(1).is_some_and(|m| m.replace("\\040", " ") == want)
        })
    })
}

/// The lock a data dir's guard holds while it lives.
pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("mount-guard.lock")
}

fn open_lock(lock: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock)
}

/// Before mounting: wait (up to `timeout`) until no guard of an earlier
/// daemon of this data dir is still at work.
pub fn wait_for_previous(lock: &Path, timeout: Duration) -> std::io::Result<()> {
    let file = open_lock(lock)?;
    let deadline = Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()), // released when `file` closes
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(POLL),
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(format!(
                    "the mount guard of an earlier daemon still holds {} after {} s (is another openduck process using this data dir?)",
                    lock.display(),
                    timeout.as_secs()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// The guard's whole life: hold `lock`, wait until `pid` exits; if its
/// mount (FUSE connection `connection` at `mountpoint`) is still there,
/// abort and detach it. Returns at once if the daemon unmounts first (a
/// daemon that stops cleanly also stops its guard before unmounting).
pub fn watch(pid: u32, connection: u32, mountpoint: &Path, lock: &Path) -> std::io::Result<()> {
    let held = open_lock(lock)?;
    held.lock()?;
    loop {
        if !still_mounted(connection, mountpoint) {
            return Ok(());
        }
        if exited(pid) {
            tracing::warn!(pid, mountpoint = %mountpoint.display(), "the daemon died with its mount still up: aborting the mount");
            abort(connection, mountpoint);
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_reads_process_states() {
        assert!(!exited(std::process::id()));
        assert!(exited(u32::MAX - 1));
    }

    #[test]
    fn a_daemon_waits_for_the_previous_guard() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_path(dir.path());
        wait_for_previous(&lock, Duration::from_millis(10)).unwrap(); // no guard: at once
        let guard = open_lock(&lock).unwrap();
        guard.lock().unwrap();
        let err = wait_for_previous(&lock, Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("mount guard of an earlier daemon"), "{err}");
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(guard);
        });
        wait_for_previous(&lock, Duration::from_secs(5)).unwrap();
        released.join().unwrap();
    }

    #[test]
    fn still_mounted_reads_mountinfo() {
        assert!(!still_mounted(123_456, Path::new("/no/such/mount")));
        // The root file system is mounted at "/" with some device.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = info.lines().find(|l| l.split(' ').nth(4) == Some("/")).unwrap();
        let dev = root.split(' ').nth(2).unwrap();
        if let Some(minor) = dev.strip_prefix("0:") {
            assert!(still_mounted(minor.parse().unwrap(), Path::new("/")));
        }
    }
}
