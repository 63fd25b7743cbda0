//! Rebuilding a head's state from its log segments (on open after a crash, and
//! on rebase for the segments written since the sealed cut).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::log::{scan_segment, Chain, RecordKind};
use super::{seg_path, LogPage, State};
use crate::error::{IoContext, LayerdError, Result};
use crate::page::page_count;

pub(super) fn set_size(st: &mut State, size: u64) {
    if size < st.size {
        let n = page_count(size);
        st.pages.retain(|p, _| *p < n);
        st.base_limit = st.base_limit.min(n);
    }
    st.size = size;
}

struct Seen {
    n: u64,
    end: Chain,
    valid_end: u64,
    file_len: u64,
}

/// Apply the records of `segs` (in order) to a state that starts at the base.
///
/// Each segment must continue the chain of the one before it: a gap or a
/// segment out of place is a `Corrupt` error, never a silent replay. Bytes
/// after the last valid record of a segment that is followed by a continuing
/// segment are the remains of a failed append (never acknowledged) and are
/// ignored; only the last segment can have a torn tail.
///
/// With `durable_only` (open after a crash): stop at the last `Sync`, cut the
/// files there, delete later segments that hold nothing durable, and return
/// the chain at that point (where the next segment starts). Otherwise every
/// valid record is applied and the files are left alone.
pub(super) fn replay(dir: &Path, head_id: &[u8; 16], st: &mut State, segs: Vec<(u64, Arc<File>)>, durable_only: bool) -> Result<Option<Chain>> {
    struct Staged(RecordKind, u64, LogPage);
    let mut staged: Vec<Staged> = Vec::new();
    let mut last_sync: Option<(u64, u64, Chain)> = None;
    let mut first_start: Option<Chain> = None;
    let apply = |st: &mut State, staged: &mut Vec<Staged>| {
        for Staged(kind, arg, lp) in staged.drain(..) {
            match kind {
                RecordKind::Write => {
                    st.pages.insert(arg, lp);
                }
                RecordKind::Truncate => set_size(st, arg),
                RecordKind::Sync => {}
            }
        }
    };
    let count = segs.len();
    let mut seen: Vec<Seen> = Vec::new();
    for (i, (n, file)) in segs.into_iter().enumerate() {
        let path = seg_path(dir, n);
        let Some(scan) = scan_segment(&path, &file, head_id)? else {
            if i + 1 < count {
                return Err(LayerdError::Corrupt { object: path.display().to_string(), detail: "segment header is torn but later segments exist".into() });
            }
            // Created by a process that crashed before its header was written.
            if durable_only {
                drop(file);
                std::fs::remove_file(&path).at(&path)?;
            } else {
                st.segments.insert(n, file);
            }
            continue;
        };
        if let Some(prev) = seen.last() {
            if scan.start != prev.end {
                return Err(LayerdError::Corrupt {
                    object: path.display().to_string(),
                    detail: format!(
                        "segment does not continue segment {} (it starts at record {}, the valid records before it end at {}): records are missing or out of place",
                        prev.n, scan.start.seq, prev.end.seq
                    ),
                });
            }
            if prev.valid_end < prev.file_len {
                tracing::warn!(segment = %seg_path(dir, prev.n).display(), bytes = prev.file_len - prev.valid_end, "ignoring the remains of a failed append");
            }
        }
        first_start.get_or_insert(scan.start);
        for r in &scan.records {
            let lp = LogPage { seg: n, offset: r.payload_offset, len: r.payload_len, hash: r.hash };
            staged.push(Staged(r.kind, r.arg, lp));
            if r.kind == RecordKind::Sync {
                st.sync_seq = st.sync_seq.max(r.arg);
                last_sync = Some((n, r.payload_offset + r.payload_len as u64, r.after));
                apply(st, &mut staged);
            }
        }
        if !durable_only {
            apply(st, &mut staged);
        }
        seen.push(Seen { n, end: scan.end, valid_end: scan.valid_end, file_len: scan.file_len });
        st.segments.insert(n, file);
    }
    if !durable_only {
        return Ok(seen.last().map(|s| s.end));
    }
    // Cut everything after the last Sync.
    for s in &seen {
        let path = seg_path(dir, s.n);
        let keep = match last_sync {
            Some((ls, _, _)) if s.n < ls => s.valid_end,
            Some((ls, end, _)) if s.n == ls => end,
            _ => {
                // Nothing durable here or after: the segment goes.
                st.segments.remove(&s.n);
                std::fs::remove_file(&path).at(&path)?;
                continue;
            }
        };
        if s.file_len > keep {
            if let Some(f) = st.segments.get(&s.n) {
                f.set_len(keep).at(&path)?;
                f.sync_all().at(&path)?;
            }
        }
    }
    Ok(last_sync.map(|(_, _, c)| c).or(first_start))
}

