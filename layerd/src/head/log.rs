//! The head's append-only log segments.
//!
//! Format (little endian), version 2:
//! ```text
//! segment header 48 B: magic "ODHEAD\0\0", version u32, reserved u32, head id [16],
//!                      first seq u64, check of the record before [8]
//! record header  64 B: kind u8, 3 reserved, payload len u32, arg u64, seq u64,
//!                      payload blake3 [32], check [8]
//! payload        the full page image (Write) or nothing
//! ```
//! Kinds: `Write` (arg = page number), `Truncate` (arg = new size), `Sync`
//! (arg = sync sequence). Replay applies records only up to the last `Sync`:
//! that is exactly the state the last `fsync` made durable.
//!
//! Every record is bound to its place: `seq` numbers the records of a head
//! without gaps across segments, and `check` is the blake3 of the header's
//! first 56 bytes followed by the previous record's check (a chain). A segment
//! header carries where the chain stands when the segment starts, so a record
//! copied elsewhere, a segment that does not continue the one before it, or
//! bytes left behind by a failed append are all told apart from valid records.
//! Version 1 (no seq, no chain) is not read by this build.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, LayerdError, Result};
use crate::page::PageHash;

const MAGIC: &[u8; 8] = b"ODHEAD\0\0";
pub const HEAD_FORMAT_VERSION: u32 = 2;
pub const SEGMENT_HEADER_LEN: u64 = 48;
pub const RECORD_HEADER_LEN: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Write = 1,
    Truncate = 2,
    Sync = 3,
}

/// Where the chain of records stands: the next record's sequence number and
/// the check of the record before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    pub seq: u64,
    pub prev: [u8; 8],
}

/// A decoded record (payload not loaded).
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub kind: RecordKind,
    pub arg: u64,
    pub hash: PageHash,
    pub payload_offset: u64,
    pub payload_len: u32,
    /// The chain right after this record.
    pub after: Chain,
}

/// What a scan of one segment found.
#[derive(Debug)]
pub struct Scan {
    /// The chain the segment's header says it starts from.
    pub start: Chain,
    /// Valid records, in order, up to the first torn, damaged or misplaced one.
    pub records: Vec<Record>,
    /// The chain after the last valid record.
    pub end: Chain,
    /// The offset right after the last valid record.
    pub valid_end: u64,
    /// The file's length (greater than `valid_end` when bytes follow).
    pub file_len: u64,
}

pub fn segment_header(head_id: &[u8; 16], start: Chain) -> Vec<u8> {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&HEAD_FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(head_id);
    h.extend_from_slice(&start.seq.to_le_bytes());
    h.extend_from_slice(&start.prev);
    h
}

fn check(header56: &[u8], prev: &[u8; 8]) -> [u8; 8] {
    let mut h = blake3::Hasher::new();
    h.update(header56);
    h.update(prev);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    out
}

/// Encode one record at position `at` of the chain; returns the bytes, the
/// payload hash and the chain after it.
pub fn encode_record(kind: RecordKind, arg: u64, payload: &[u8], at: Chain) -> (Vec<u8>, PageHash, Chain) {
    let hash = PageHash::of(payload);
    let mut r = Vec::with_capacity(RECORD_HEADER_LEN as usize + payload.len());
    r.push(kind as u8);
    r.extend_from_slice(&[0; 3]);
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(&arg.to_le_bytes());
    r.extend_from_slice(&at.seq.to_le_bytes());
    r.extend_from_slice(&hash.0);
    let c = check(&r, &at.prev);
    r.extend_from_slice(&c);
    r.extend_from_slice(payload);
    (r, hash, Chain { seq: at.seq + 1, prev: c })
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Decode a record header found at `at`, expected at chain position `chain`.
fn decode_header(buf: &[u8; RECORD_HEADER_LEN as usize], at: u64, chain: Chain) -> Option<Record> {
    let c = check(&buf[..56], &chain.prev);
    if c[..] != buf[56..64] || le_u64(&buf[16..24]) != chain.seq {
        return None;
    }
    let kind = match buf[0] {
        1 => RecordKind::Write,
        2 => RecordKind::Truncate,
        3 => RecordKind::Sync,
        _ => return None,
    };
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&buf[24..56]);
    Some(Record {
        kind,
        payload_len: u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]),
        arg: le_u64(&buf[8..16]),
        hash: PageHash(hash),
        payload_offset: at + RECORD_HEADER_LEN,
        after: Chain { seq: chain.seq + 1, prev: c },
    })
}

/// Check a segment's header and return its valid records: they stop at the
/// first torn, damaged or misplaced one. `None` when the file is shorter than
/// a header (a crash while the segment was being created).
pub fn scan_segment(path: &Path, file: &File, head_id: &[u8; 16]) -> Result<Option<Scan>> {
    let len = file.metadata().at(path)?.len();
    let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
    let corrupt = |d: &str| LayerdError::Corrupt { object: path.display().to_string(), detail: d.to_string() };
    // Magic and version first: an older, shorter header is named as such.
    let have = len.min(SEGMENT_HEADER_LEN) as usize;
    if have < 12 {
        return Ok(None);
    }
    file.read_exact_at(&mut hdr[..have], 0).at(path)?;
    if &hdr[0..8] != MAGIC {
        return Err(corrupt("not an OpenDuck head segment (bad magic)"));
    }
    let version = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
    if version != HEAD_FORMAT_VERSION {
        return Err(LayerdError::UnsupportedVersion {
            what: "head log",
            object: path.display().to_string(),
            found: version,
            supported: HEAD_FORMAT_VERSION,
        });
    }
    if have < SEGMENT_HEADER_LEN as usize {
        return Ok(None);
    }
    if &hdr[16..32] != head_id {
        return Err(corrupt("segment belongs to another head (head id mismatch)"));
    }
    let mut prev = [0u8; 8];
    prev.copy_from_slice(&hdr[40..48]);
    let start = Chain { seq: le_u64(&hdr[32..40]), prev };
    let mut records = Vec::new();
    let mut chain = start;
    let mut at = SEGMENT_HEADER_LEN;
    let mut rh = [0u8; RECORD_HEADER_LEN as usize];
    let mut payload = Vec::new();
    while at + RECORD_HEADER_LEN <= len {
        file.read_exact_at(&mut rh, at).at(path)?;
        let Some(rec) = decode_header(&rh, at, chain) else { break };
        let end = rec.payload_offset + rec.payload_len as u64;
        if end > len {
            break;
        }
        payload.resize(rec.payload_len as usize, 0);
        file.read_exact_at(&mut payload, rec.payload_offset).at(path)?;
        if PageHash::of(&payload) != rec.hash {
            break;
        }
        records.push(rec);
        chain = rec.after;
        at = end;
    }
    Ok(Some(Scan { start, records, end: chain, valid_end: at, file_len: len }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_segment(path: &Path, id: &[u8; 16], recs: &[(RecordKind, u64, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut f = File::create(path).unwrap();
        f.write_all(&segment_header(id, Chain::default())).unwrap();
        let mut chain = Chain::default();
        let mut out = Vec::new();
        for (k, a, p) in recs {
            let (enc, _, next) = encode_record(*k, *a, p, chain);
            f.write_all(&enc).unwrap();
            out.push(enc);
            chain = next;
        }
        out
    }

    #[test]
    fn scan_stops_at_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let id = [9u8; 16];
        write_segment(&path, &id, &[(RecordKind::Write, 3, vec![1, 2, 3]), (RecordKind::Sync, 1, vec![])]);
        let (torn, _, _) = encode_record(RecordKind::Write, 4, &[5; 100], Chain { seq: 2, prev: [0; 8] });
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() - 10]).unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        let scan = scan_segment(&path, &f, &id).unwrap().unwrap();
        let recs = scan.records;
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].kind, RecordKind::Write);
        assert_eq!(recs[0].arg, 3);
        assert_eq!(recs[1].kind, RecordKind::Sync);
        assert_eq!(scan.end.seq, 2);
        assert!(scan.valid_end < scan.file_len);
        assert!(scan_segment(&path, &f, &[0; 16]).is_err());
    }

    /// A valid record copied to another position of the chain is not accepted.
    #[test]
    fn record_copied_elsewhere_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let id = [7u8; 16];
        let recs = write_segment(
            &path,
            &id,
            &[(RecordKind::Write, 1, vec![1; 10]), (RecordKind::Sync, 1, vec![]), (RecordKind::Write, 1, vec![2; 10]), (RecordKind::Sync, 2, vec![])],
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let third = SEGMENT_HEADER_LEN as usize + recs[0].len() + recs[1].len();
        bytes[third..third + recs[0].len()].copy_from_slice(&recs[0]);
        std::fs::write(&path, &bytes).unwrap();
        let f = File::open(&path).unwrap();
        let scan = scan_segment(&path, &f, &id).unwrap().unwrap();
        assert_eq!(scan.records.len(), 2, "the copy of record 0 at position 2 must not be accepted");
    }

    #[test]
    fn version_1_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let mut h = segment_header(&[1; 16], Chain::default());
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&path, &h[..32]).unwrap();
        let f = File::open(&path).unwrap();
        assert!(matches!(scan_segment(&path, &f, &[1; 16]), Err(LayerdError::UnsupportedVersion { found: 1, .. })));
    }
}
