//! `heads/<db>/MANIFEST`: the head's identity, its base snapshot and the last
//! sealed segment. Its `format` names the layout of the whole head directory
//! (manifest and segments) and is checked on open.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, LayerdError, Result};

/// The head directory format this build writes and reads. Format 1 had no
/// record sequence numbers or chained checks (see `log.rs`).
pub const HEAD_DIR_FORMAT: u32 = 2;

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Manifest {
    pub format: u32,
    pub head_id: String,
    pub base: Option<i64>,
    pub sealed_through: u64,
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

pub(super) fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let tmp = dir.join("MANIFEST.tmp");
    let body = serde_json::to_vec_pretty(m).map_err(|e| LayerdError::Invalid(e.to_string()))?;
    let f = File::create(&tmp).at(&tmp)?;
    f.write_all_at(&body, 0).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    std::fs::rename(&tmp, dir.join("MANIFEST")).at(dir)?;
    sync_dir(dir)
}

/// Read the manifest of `dir` (`None` when there is none yet), refusing a
/// format this build does not know (a clean format-1 head is upgraded).
pub(super) fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join("MANIFEST");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LayerdError::io(path, e)),
    };
    let corrupt = |e: serde_json::Error| LayerdError::Corrupt { object: path.display().to_string(), detail: e.to_string() };
    // The format first: a newer layout may not even parse as this one.
    #[derive(serde::Deserialize)]
    struct Format {
        format: u32,
    }
    let Format { format } = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if format != 1 && format != HEAD_DIR_FORMAT {
        return Err(LayerdError::UnsupportedVersion {
            what: "head directory",
            object: path.display().to_string(),
            found: format,
            supported: HEAD_DIR_FORMAT,
        });
    }
    let m = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if format == 1 {
        return upgrade_clean_v1(dir, m).map(Some);
    }
    Ok(Some(m))
}

/// Length of a format-1 segment header: a segment no longer than that holds
/// no record.
const V1_SEGMENT_HEADER_LEN: u64 = 32;

/// A format-1 head with no unsealed record (the usual state after a seal) is
/// upgraded in place: its empty segments go, the manifest is rewritten. One
/// with unsealed records must be sealed by the build that wrote it.
fn upgrade_clean_v1(dir: &Path, mut m: Manifest) -> Result<Manifest> {
    let mut empty = Vec::new();
    for n in super::list_segments(dir)? {
        let path = super::seg_path(dir, n);
        let len = std::fs::metadata(&path).at(&path)?.len();
        if n > m.sealed_through && len > V1_SEGMENT_HEADER_LEN {
            return Err(LayerdError::OldHeadFormat { dir: dir.to_path_buf(), found: 1, supported: HEAD_DIR_FORMAT });
        }
        empty.push(path);
    }
    for path in empty {
        std::fs::remove_file(&path).at(&path)?;
    }
    m.format = HEAD_DIR_FORMAT;
    write_manifest(dir, &m)?;
    tracing::info!(dir = %dir.display(), "upgraded a clean head directory from format 1 to {HEAD_DIR_FORMAT}");
    Ok(m)
}
