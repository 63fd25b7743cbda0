//! What `statfs` on the mount reports: the real capacity and free space of
//! the filesystem behind the data directory, where heads and side files live
//! (so `df` and DuckDB see a full disk coming).

use std::ffi::CString;
use std::path::Path;

/// `statvfs` numbers, in the units FUSE's statfs reply takes (blocks in
/// `frsize` units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStat {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

pub fn of(path: &Path) -> std::io::Result<FsStat> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok(FsStat {
        blocks: st.f_blocks as u64,
        bfree: st.f_bfree as u64,
        bavail: st.f_bavail as u64,
        files: st.f_files as u64,
        ffree: st.f_ffree as u64,
        bsize: clamp(st.f_bsize as u64),
        namelen: clamp(st.f_namemax as u64),
        frsize: clamp(st.f_frsize as u64),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn statfs_of_a_directory_and_of_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = super::of(dir.path()).unwrap();
        assert!(s.blocks > 0 && s.bavail <= s.bfree && s.bfree <= s.blocks && s.frsize > 0, "{s:?}");
        assert!(super::of(&dir.path().join("missing")).is_err());
    }
}
