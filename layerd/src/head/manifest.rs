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
/// format this build does not know.
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
    if format < HEAD_DIR_FORMAT {
        return Err(LayerdError::OldHeadFormat { dir: dir.to_path_buf(), found: format, supported: HEAD_DIR_FORMAT });
    }
    if format != HEAD_DIR_FORMAT {
        return Err(LayerdError::UnsupportedVersion {
            what: "head directory",
            object: path.display().to_string(),
            found: format,
            supported: HEAD_DIR_FORMAT,
        });
    }
    serde_json::from_slice(&bytes).map(Some).map_err(corrupt)
}
