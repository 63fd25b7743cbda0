//! The head's append-only log segments.
//!
//! Format (little endian), version 1:
//! ```text
//! segment header 32 B: magic "ODHEAD\0\0", version u32, reserved u32, head id [16]
//! record header  56 B: kind u8, 3 reserved, payload len u32, arg u64,
//!                      payload blake3 [32], header check [8]
//! payload        the full page image (Write) or nothing
//! ```
//! Kinds: `Write` (arg = page number), `Truncate` (arg = new size), `Sync`
//! (arg = sequence). Replay applies records only up to the last `Sync`: that is
//! exactly the state the last `fsync` made durable.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, LayerdError, Result};
use crate::page::PageHash;

const MAGIC: &[u8; 8] = b"ODHEAD\0\0";
pub const HEAD_FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: u64 = 32;
pub const RECORD_HEADER_LEN: u64 = 56;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Write = 1,
    Truncate = 2,
    Sync = 3,
}

/// A decoded record (payload not loaded).
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub kind: RecordKind,
    pub arg: u64,
    pub hash: PageHash,
    pub payload_offset: u64,
    pub payload_len: u32,
}

pub fn segment_header(head_id: &[u8; 16]) -> Vec<u8> {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&HEAD_FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(head_id);
    h
}

pub fn encode_record(kind: RecordKind, arg: u64, payload: &[u8]) -> (Vec<u8>, PageHash) {
    let hash = PageHash::of(payload);
    let mut r = Vec::with_capacity(RECORD_HEADER_LEN as usize + payload.len());
    r.push(kind as u8);
    r.extend_from_slice(&[0; 3]);
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(&arg.to_le_bytes());
    r.extend_from_slice(&hash.0);
    let check = blake3::hash(&r);
    r.extend_from_slice(&check.as_bytes()[..8]);
    r.extend_from_slice(payload);
    (r, hash)
}

fn decode_header(buf: &[u8], at: u64) -> Option<Record> {
    let check = blake3::hash(&buf[..48]);
    if check.as_bytes()[..8] != buf[48..56] {
        return None;
    }
    let kind = match buf[0] {
        1 => RecordKind::Write,
        2 => RecordKind::Truncate,
        3 => RecordKind::Sync,
        _ => return None,
    };
    Some(Record {
        kind,
        payload_len: u32::from_le_bytes(buf[4..8].try_into().ok()?),
        arg: u64::from_le_bytes(buf[8..16].try_into().ok()?),
        hash: PageHash(buf[16..48].try_into().ok()?),
        payload_offset: at + RECORD_HEADER_LEN,
    })
}

/// Check a segment's header and return its records up to the first torn or
/// damaged one, plus the end offset of the last valid record.
pub fn scan_segment(path: &Path, file: &File, head_id: &[u8; 16]) -> Result<Vec<Record>> {
    let len = file.metadata().at(path)?.len();
    let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
    if len < SEGMENT_HEADER_LEN {
        return Ok(Vec::new());
    }
    file.read_exact_at(&mut hdr, 0).at(path)?;
    let corrupt = |d: &str| LayerdError::Corrupt { object: path.display().to_string(), detail: d.to_string() };
    if &hdr[0..8] != MAGIC {
        return Err(corrupt("not an OpenDuck head segment (bad magic)"));
    }
    let version = u32::from_le_bytes(hdr[8..12].try_into().expect("4 bytes"));
    if version != HEAD_FORMAT_VERSION {
        return Err(LayerdError::UnsupportedVersion {
            what: "head log",
            object: path.display().to_string(),
            found: version,
            supported: HEAD_FORMAT_VERSION,
        });
    }
    if &hdr[16..32] != head_id {
        return Err(corrupt("segment belongs to another head (head id mismatch)"));
    }
    let mut records = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    let mut rh = [0u8; RECORD_HEADER_LEN as usize];
    let mut payload = Vec::new();
    while at + RECORD_HEADER_LEN <= len {
        file.read_exact_at(&mut rh, at).at(path)?;
        let Some(rec) = decode_header(&rh, at) else { break };
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
        at = end;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn scan_stops_at_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let id = [9u8; 16];
        let mut f = File::create(&path).unwrap();
        f.write_all(&segment_header(&id)).unwrap();
        f.write_all(&encode_record(RecordKind::Write, 3, &[1, 2, 3]).0).unwrap();
        f.write_all(&encode_record(RecordKind::Sync, 1, &[]).0).unwrap();
        let (torn, _) = encode_record(RecordKind::Write, 4, &[5; 100]);
        f.write_all(&torn[..torn.len() - 10]).unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        let recs = scan_segment(&path, &f, &id).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].kind, RecordKind::Write);
        assert_eq!(recs[0].arg, 3);
        assert_eq!(recs[1].kind, RecordKind::Sync);
        assert!(scan_segment(&path, &f, &[0; 16]).is_err());
    }
}
