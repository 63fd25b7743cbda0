//! Rebuilding a head's state from its log segments (on open after a crash, and
//! on rebase for the segments written since the sealed cut).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::log::{scan_segment, Chain, RecordKind, Scan};
use super::{seg_path, LogPage, State};
use crate::error::{IoContext, LayerdError, Result};

/// Apply the records of `segs` (in order) to a state that starts at the base.
///
/// Each segment must continue the chain of the one before it: a gap or a
/// segment out of place is a `Corrupt` error, never a silent replay. Bytes
/// after the last valid record of a segment that is followed by a continuing
/// segment are the remains of a failed append (never acknowledged) and are
/// ignored; only the last segment can have a torn tail.
///
/// With `durable_only` (open after a crash): stop at the last `Sync`, cut the
/// files there, delete later segments that hold nothing durable, and set the
/// state's chain to that point (where the next segment starts). Otherwise
/// every valid record is applied and the files and the chain are left alone.
pub(super) fn replay(dir: &Path, head_id: &[u8; 16], st: &mut State, segs: Vec<(u64, Arc<File>)>, durable_only: bool) -> Result<()> {
    let mut staged: Vec<(RecordKind, u64, LogPage)> = Vec::new();
    let apply = |st: &mut State, staged: &mut Vec<(RecordKind, u64, LogPage)>| {
        for (kind, arg, lp) in staged.drain(..) {
            st.apply(kind, arg, lp);
        }
    };
    let mut last_sync: Option<(u64, u64, Chain)> = None;
    let count = segs.len();
    // The segments scanned so far, their records taken.
    let mut seen: Vec<(u64, Scan)> = Vec::new();
    for (i, (n, file)) in segs.into_iter().enumerate() {
        let path = seg_path(dir, n);
        let Some(mut scan) = scan_segment(&path, &file, head_id)? else {
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
        if let Some((pn, prev)) = seen.last() {
            if scan.start != prev.end {
                return Err(LayerdError::Corrupt {
                    object: path.display().to_string(),
                    detail: format!(
                        "segment does not continue segment {pn} (it starts at record {}, the valid records before it end at {}): records are missing or out of place",
                        scan.start.seq, prev.end.seq
                    ),
                });
            }
            if prev.valid_end < prev.file_len {
                tracing::warn!(segment = %seg_path(dir, *pn).display(), bytes = prev.file_len - prev.valid_end, "ignoring the remains of a failed append");
            }
        }
        for r in std::mem::take(&mut scan.records) {
            staged.push((r.kind, r.arg, LogPage { seg: n, offset: r.payload_offset, len: r.payload_len, hash: r.hash }));
            if r.kind == RecordKind::Sync {
                last_sync = Some((n, r.payload_offset + r.payload_len as u64, r.after));
                apply(st, &mut staged);
            }
        }
        if !durable_only {
            apply(st, &mut staged);
        }
        seen.push((n, scan));
        st.segments.insert(n, file);
    }
    if !durable_only {
        return Ok(());
    }
    if let Some(chain) = last_sync.map(|(_, _, c)| c).or(seen.first().map(|(_, s)| s.start)) {
        st.chain = chain;
    }
    // Cut everything after the last Sync.
    for (n, s) in &seen {
        let path = seg_path(dir, *n);
        let keep = match last_sync {
            Some((ls, _, _)) if *n < ls => s.valid_end,
            Some((ls, end, _)) if *n == ls => end,
            _ => {
                // Nothing durable here or after: the segment goes.
                st.segments.remove(n);
                std::fs::remove_file(&path).at(&path)?;
                continue;
            }
        };
        if s.file_len > keep {
            if let Some(f) = st.segments.get(n) {
                f.set_len(keep).at(&path)?;
                f.sync_all().at(&path)?;
            }
        }
    }
    Ok(())
}
