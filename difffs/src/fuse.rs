//! Thin adapter from fuser's callbacks to [`DiffFs`]: no logic here beyond
//! converting types and errors.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

use crate::error::FsError;
use crate::fs::{Attr, DiffFs, Kind};

/// Largest read/write request we ask the kernel for (FACTS §2).
const MAX_IO: u32 = 1 << 20;

pub struct FuseAdapter {
    pub fs: Arc<DiffFs>,
    /// Whether the kernel agreed to FUSE passthrough.
    passthrough: bool,
    /// How each inode is open right now. The kernel refuses to mix cached
    /// and passthrough opens of one inode (every open without passthrough
    /// counts as cached, with or without FOPEN_KEEP_CACHE), and all
    /// passthrough opens of one inode must share one backing id: the first
    /// open decides until the last one is released.
    io_modes: Mutex<HashMap<u64, IoMode>>,
    /// The daemon's user and group: every file is reported as theirs, and
    /// the kernel checks access against them (`default_permissions`).
    uid: u32,
    gid: u32,
}

enum IoMode {
    Cached(u32),
    Passthrough(u32, Arc<BackingId>),
}

impl FuseAdapter {
    pub fn new(fs: Arc<DiffFs>) -> Self {
        // SAFETY: geteuid/getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        FuseAdapter { fs, passthrough: false, io_modes: Mutex::default(), uid, gid }
    }

    fn attr(&self, a: &Attr) -> FileAttr {
        file_attr(a, self.uid, self.gid)
    }

    fn modes(&self) -> std::sync::MutexGuard<'_, HashMap<u64, IoMode>> {
        self.io_modes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decide how a new open of `ino` is served and count it until its
    /// release: `Some(id)` by kernel passthrough from `backing` (registered
    /// with `open_backing` on the inode's first open), `None` through the
    /// daemon (no backing, passthrough off or refused, or the inode is open
    /// through the daemon already).
    fn start_io(&self, ino: u64, backing: Option<&Arc<File>>, open_backing: impl FnOnce(&File) -> std::io::Result<BackingId>) -> Option<Arc<BackingId>> {
        let mut modes = self.modes();
        match modes.get_mut(&ino) {
            Some(IoMode::Passthrough(n, id)) => {
                *n += 1;
                return Some(id.clone());
            }
            Some(IoMode::Cached(n)) => {
                *n += 1;
                return None;
            }
            None => {}
        }
        let id = backing.filter(|_| self.passthrough).and_then(|f| match open_backing(f) {
            Ok(id) => {
                tracing::info!(ino, "serving by kernel passthrough");
                Some(Arc::new(id))
            }
            Err(e) => {
                tracing::debug!(ino, error = %e, "passthrough refused; serving through the daemon");
                None
            }
        });
        modes.insert(ino, id.clone().map_or(IoMode::Cached(1), |id| IoMode::Passthrough(1, id)));
        id
    }

    /// One open of `ino` is released: the last one ends its mode (and drops
    /// the backing id, closing it in the kernel).
    fn end_io(&self, ino: u64) {
        let mut modes = self.modes();
        let last = match modes.get_mut(&ino) {
            Some(IoMode::Cached(n)) | Some(IoMode::Passthrough(n, _)) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if last {
            modes.remove(&ino);
        }
    }
}

fn errno(e: &FsError) -> Errno {
    if matches!(e, FsError::Storage(_) | FsError::Io(_) | FsError::Busy(_)) {
        tracing::warn!(error = %e, "filesystem request failed");
    }
    Errno::from_i32(e.errno())
}

fn file_attr(a: &Attr, uid: u32, gid: u32) -> FileAttr {
    let kind = match a.kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    };
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind,
        perm: a.perm,
        nlink: if a.kind == Kind::Dir { 2 } else { 1 },
        uid,
        gid,
        rdev: 0,
        blksize: 262_144,
        flags: 0,
    }
}

fn open_flags(keep_cache: bool) -> FopenFlags {
    if keep_cache {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        // Passthrough: hydrated snapshots are read, and side files (the WAL)
        // read and written, by the kernel directly.
        self.passthrough = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok() && config.set_max_stack_depth(2).is_ok();
        self.fs.set_kernel_passthrough(self.passthrough);
        tracing::info!(passthrough = self.passthrough, "FUSE session initialised");
        Ok(())
    }

    fn destroy(&mut self) {
        self.fs.settle();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.fs.lookup(parent.0, name) {
            Ok(a) => reply.entry(&a.ttl, &self.attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok(a) => reply.attr(&a.ttl, &self.attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = match size {
            Some(size) => self.fs.set_size(ino.0, size),
            None => self.fs.getattr(ino.0),
        };
        match r {
            Ok(a) => reply.attr(&a.ttl, &self.attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        match self.fs.mkdir(parent.0, name) {
            Ok(a) => reply.entry(&a.ttl, &self.attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.fs.rename(parent.0, name, newparent.0, newname) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let o = match self.fs.open(ino.0, flags.0) {
            Ok(o) => o,
            Err(e) => return reply.error(errno(&e)),
        };
        match self.start_io(ino.0, o.backing.as_ref(), |f| reply.open_backing(f)) {
            // Passthrough opens must not ask for the page cache (the kernel
            // answers EIO), so no FOPEN_KEEP_CACHE here.
            Some(id) => reply.opened_passthrough(FileHandle(o.fh), FopenFlags::empty(), &id),
            None => reply.opened(FileHandle(o.fh), open_flags(o.keep_cache)),
        }
    }

    fn create(&self, _req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, flags: i32, reply: ReplyCreate) {
        let (a, o) = match self.fs.create(parent.0, name, flags) {
            Ok(r) => r,
            Err(e) => return reply.error(errno(&e)),
        };
        match self.start_io(a.ino, o.backing.as_ref(), |f| reply.open_backing(f)) {
            Some(id) => reply.created_passthrough(&a.ttl, &self.attr(&a), Generation(0), FileHandle(o.fh), FopenFlags::empty(), &id),
            None => reply.created(&a.ttl, &self.attr(&a), Generation(0), FileHandle(o.fh), open_flags(o.keep_cache)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.fs.read(fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.fs.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        self.end_io(ino.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.fs.fsync(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.fs.readdir(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        let dots = [(ino.0, FileType::Directory, ".".to_string()), (ino.0, FileType::Directory, "..".to_string())];
        let all = dots.into_iter().chain(entries.into_iter().map(|e| {
            let kind = match e.kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
                Kind::Symlink => FileType::Symlink,
            };
            (e.ino, kind, e.name)
        }));
        for (i, (ino, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    // Answered without logging: the kernel then stops asking (FACTS §2).
    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    /// The space of the disk behind the data directory (heads, side files).
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: fuser::ReplyStatfs) {
        match self.fs.statfs() {
            Ok(s) => reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
