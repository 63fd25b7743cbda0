//! Filesystem errors and the one place that turns them into errnos.

use layerd::LayerdError;

pub type FsResult<T> = Result<T, FsError>;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("read-only: snapshots are immutable (write to <db>/head.duckdb)")]
    ReadOnly,
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    #[error("already exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("bad file handle")]
    BadHandle,
    #[error("the head of '{0}' is held by another process")]
    Busy(String),
    #[error(transparent)]
    Storage(#[from] LayerdError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FsError {
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::BadHandle => libc::EBADF,
            FsError::Busy(_) => libc::EBUSY,
            FsError::Storage(LayerdError::UnknownDatabase(_) | LayerdError::UnknownSnapshot { .. }) => libc::ENOENT,
            FsError::Storage(LayerdError::HeadLocked { .. } | LayerdError::LeaseHeld { .. }) => libc::EBUSY,
            FsError::Storage(LayerdError::DatabaseExists(_)) => libc::EEXIST,
            FsError::Storage(LayerdError::InvalidDatabaseName(_)) => libc::EINVAL,
            FsError::Storage(LayerdError::Io { source, .. }) => source.raw_os_error().unwrap_or(libc::EIO),
            FsError::Storage(_) => libc::EIO,
            FsError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos() {
        assert_eq!(FsError::NotFound.errno(), libc::ENOENT);
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
        assert_eq!(FsError::Storage(LayerdError::UnknownDatabase("x".into())).errno(), libc::ENOENT);
        let corrupt = LayerdError::Corrupt { object: "o".into(), detail: "d".into() };
        assert_eq!(FsError::Storage(corrupt).errno(), libc::EIO);
        assert_eq!(FsError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)).errno(), libc::ENOSPC);
    }
}
