//! Layers: immutable, content-addressed objects that map page numbers to pages.
//!
//! A layer packs the bytes of the pages it introduces plus an index of every page
//! it covers. An index entry either points into the layer itself, into another
//! layer that already holds identical bytes (deduplication by blake3 hash, across
//! databases too), or marks the page as all zeros (a truncated-away page).
//! Compaction writes *image* layers that hold only an index pointing into older
//! layers, so merging a deep stack copies no page bytes.
//!
//! Format (little endian), version 1:
//! ```text
//! header   32 B   magic "ODLAYER\0", version u32, kind u8, salt u8, 2 reserved,
//!                 n_refs u32, n_entries u32, data_offset u64
//! refs     32 B * n_refs     ids of the layers this index points into
//! entries  56 B * n_entries  page u64, hash [32], ref u32, offset u64, len u32
//! checksum 32 B   blake3(header | refs | entries) = the layer id
//! data            page bytes of the pages stored in this layer
//! ```
//! `ref` is an index into `refs`, or `SELF_REF` (bytes in this object) or
//! `ZERO_REF` (an all-zero page). Offsets are absolute within the object holding
//! the bytes. The id covers every page hash, so it addresses the whole content.
//! `salt` is 0 unless the name of the same content was tombstoned by a gc
//! still deleting it: then the writer encodes with another salt and so gets
//! another name (see `catalog/claims.rs`). Readers ignore it.

use std::collections::BTreeMap;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{LayerdError, Result};
use crate::page::{PageHash, PageNo};

const MAGIC: &[u8; 8] = b"ODLAYER\0";
pub const LAYER_FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
const ENTRY_LEN: usize = 56;
const SELF_REF: u32 = u32::MAX;
const ZERO_REF: u32 = u32::MAX - 1;

/// Identity of a layer object: blake3 of its header and index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerId(pub [u8; 32]);

impl LayerId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        PageHash::from_hex(s).map(|h| LayerId(h.0))
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerId({})", &self.to_hex()[..12])
    }
}

/// What produced a layer. Informational; readers treat all kinds alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Pages changed since the parent snapshot (seal, import).
    Delta = 1,
    /// A full page map of one snapshot, pointing into older layers (compact).
    Image = 2,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Delta => "delta",
            LayerKind::Image => "image",
        }
    }
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(LayerKind::Delta),
            2 => Some(LayerKind::Image),
            _ => None,
        }
    }
}

/// Where the bytes of one page live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageLoc {
    /// The page is all zeros (nothing stored).
    Zero,
    /// `len` bytes at `offset` in layer object `layer`.
    Stored { layer: LayerId, offset: u64, len: u32 },
}

/// One page of a layer's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRef {
    pub hash: PageHash,
    pub loc: PageLoc,
}

/// A decoded layer index, with every location resolved to a layer id.
#[derive(Debug, Clone)]
pub struct LayerIndex {
    pub id: LayerId,
    pub kind: LayerKind,
    pub pages: BTreeMap<PageNo, PageRef>,
    /// Other layers this index points into.
    pub refs: Vec<LayerId>,
}

impl LayerIndex {
    /// Length of header + index, read from the fixed header.
    pub fn index_len(object: &str, header: &[u8]) -> Result<usize> {
        let corrupt = |d: &str| LayerdError::Corrupt { object: object.to_string(), detail: d.to_string() };
        if header.len() < HEADER_LEN || &header[0..8] != MAGIC {
            return Err(corrupt("not an OpenDuck layer (bad magic)"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != LAYER_FORMAT_VERSION {
            return Err(LayerdError::UnsupportedVersion {
                what: "layer",
                object: object.to_string(),
                found: version,
                supported: LAYER_FORMAT_VERSION,
            });
        }
        let data_offset = u64::from_le_bytes(header[24..32].try_into().expect("8 bytes"));
        usize::try_from(data_offset).map_err(|_| corrupt("index too large"))
    }

    /// Decode and verify header + index bytes of the object with id `expected`.
    pub fn decode(object: &str, expected: LayerId, buf: &[u8]) -> Result<LayerIndex> {
        let corrupt = |d: String| LayerdError::Corrupt { object: object.to_string(), detail: d };
        let data_offset = Self::index_len(object, buf)?;
        let kind = LayerKind::from_u8(buf[12]).ok_or_else(|| corrupt(format!("unknown layer kind {}", buf[12])))?;
        let n_refs = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes")) as usize;
        let n_entries = u32::from_le_bytes(buf[20..24].try_into().expect("4 bytes")) as usize;
        let checked_len = HEADER_LEN + 32 * n_refs + ENTRY_LEN * n_entries;
        if data_offset != checked_len + 32 || buf.len() < data_offset {
            return Err(corrupt(format!("index length mismatch ({} bytes read, {} expected)", buf.len(), data_offset)));
        }
        let actual = LayerId(*blake3::hash(&buf[..checked_len]).as_bytes());
        let stored = &buf[checked_len..checked_len + 32];
        if actual.0 != stored || actual != expected {
            return Err(corrupt(format!("index checksum mismatch: object should be {expected}, content hashes to {actual}")));
        }
        let mut refs = Vec::with_capacity(n_refs);
        for i in 0..n_refs {
            let at = HEADER_LEN + 32 * i;
            refs.push(LayerId(buf[at..at + 32].try_into().expect("32 bytes")));
        }
        let mut pages = BTreeMap::new();
        let base = HEADER_LEN + 32 * n_refs;
        for i in 0..n_entries {
            let e = &buf[base + ENTRY_LEN * i..base + ENTRY_LEN * (i + 1)];
            let page = u64::from_le_bytes(e[0..8].try_into().expect("8 bytes"));
            let hash = PageHash(e[8..40].try_into().expect("32 bytes"));
            let r = u32::from_le_bytes(e[40..44].try_into().expect("4 bytes"));
            let offset = u64::from_le_bytes(e[44..52].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(e[52..56].try_into().expect("4 bytes"));
            let loc = match r {
                ZERO_REF => PageLoc::Zero,
                SELF_REF => PageLoc::Stored { layer: expected, offset, len },
                r => {
                    let layer = *refs.get(r as usize).ok_or_else(|| corrupt(format!("page {page} names missing ref {r}")))?;
                    PageLoc::Stored { layer, offset, len }
                }
            };
            pages.insert(page, PageRef { hash, loc });
        }
        Ok(LayerIndex { id: expected, kind, pages, refs })
    }
}

/// A page stored in a freshly built layer: where its bytes ended up.
#[derive(Clone, Copy, Debug)]
pub struct StoredPage {
    pub hash: PageHash,
    pub offset: u64,
    pub len: u32,
}

/// The encoded bytes of a new layer plus what the metadata store must record.
pub struct EncodedLayer {
    pub id: LayerId,
    pub kind: LayerKind,
    pub bytes: Bytes,
    pub page_count: usize,
    /// Pages whose bytes this layer holds (for the dedupe table).
    pub stored: Vec<StoredPage>,
    /// Layers this one points into.
    pub refs: Vec<LayerId>,
}

enum Pending {
    Zero,
    Own { data_at: usize, len: u32 },
    Ref { layer: LayerId, offset: u64, len: u32 },
}

/// Builds one layer. Pages may be added in any order; each page number once.
pub struct LayerBuilder {
    kind: LayerKind,
    entries: BTreeMap<PageNo, (PageHash, Pending)>,
    data: BytesMut,
    own: BTreeMap<PageHash, (usize, u32)>,
}

impl LayerBuilder {
    pub fn new(kind: LayerKind) -> Self {
        LayerBuilder { kind, entries: BTreeMap::new(), data: BytesMut::new(), own: BTreeMap::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of page data held so far.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Store `bytes` in this layer (once per distinct hash).
    pub fn add_bytes(&mut self, page: PageNo, hash: PageHash, bytes: &[u8]) {
        let (data_at, len) = *self.own.entry(hash).or_insert_with(|| {
            let at = self.data.len();
            self.data.put_slice(bytes);
            (at, bytes.len() as u32)
        });
        self.entries.insert(page, (hash, Pending::Own { data_at, len }));
    }

    /// Point at identical bytes already stored in another layer.
    pub fn add_ref(&mut self, page: PageNo, hash: PageHash, layer: LayerId, offset: u64, len: u32) {
        self.entries.insert(page, (hash, Pending::Ref { layer, offset, len }));
    }

    /// Mark a page as all zeros.
    pub fn add_zero(&mut self, page: PageNo) {
        self.entries.insert(page, (PageHash([0; 32]), Pending::Zero));
    }

    pub fn finish(self) -> EncodedLayer {
        self.encode(0)
    }

    /// Encode with `salt` in the header: same content, another id.
    pub fn encode(&self, salt: u8) -> EncodedLayer {
        let mut refs: Vec<LayerId> = Vec::new();
        let mut ref_index: BTreeMap<LayerId, u32> = BTreeMap::new();
        for (_, p) in self.entries.values() {
            if let Pending::Ref { layer, .. } = p {
                ref_index.entry(*layer).or_insert_with(|| {
                    refs.push(*layer);
                    (refs.len() - 1) as u32
                });
            }
        }
        let checked_len = HEADER_LEN + 32 * refs.len() + ENTRY_LEN * self.entries.len();
        let data_offset = checked_len + 32;
        let mut out = BytesMut::with_capacity(data_offset + self.data.len());
        out.put_slice(MAGIC);
        out.put_u32_le(LAYER_FORMAT_VERSION);
        out.put_u8(self.kind as u8);
        out.put_u8(salt);
        out.put_slice(&[0; 2]);
        out.put_u32_le(refs.len() as u32);
        out.put_u32_le(self.entries.len() as u32);
        out.put_u64_le(data_offset as u64);
        for r in &refs {
            out.put_slice(&r.0);
        }
        let mut stored = Vec::new();
        for (page, (hash, p)) in &self.entries {
            let (r, offset, len) = match p {
                Pending::Zero => (ZERO_REF, 0, 0),
                Pending::Own { data_at, len } => (SELF_REF, (data_offset + data_at) as u64, *len),
                Pending::Ref { layer, offset, len } => (ref_index[layer], *offset, *len),
            };
            out.put_u64_le(*page);
            out.put_slice(&hash.0);
            out.put_u32_le(r);
            out.put_u64_le(offset);
            out.put_u32_le(len);
        }
        for (hash, (data_at, len)) in &self.own {
            stored.push(StoredPage { hash: *hash, offset: (data_offset + data_at) as u64, len: *len });
        }
        let id = LayerId(*blake3::hash(&out[..checked_len]).as_bytes());
        out.put_slice(&id.0);
        out.put_slice(&self.data);
        EncodedLayer { id, kind: self.kind, bytes: out.freeze(), page_count: self.entries.len(), stored, refs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let other = LayerId([7; 32]);
        let mut b = LayerBuilder::new(LayerKind::Delta);
        let a = vec![1u8; 100];
        b.add_bytes(3, PageHash::of(&a), &a);
        b.add_bytes(9, PageHash::of(&a), &a); // same bytes stored once
        b.add_ref(4, PageHash([2; 32]), other, 4096, 12288);
        b.add_zero(5);
        let enc = b.finish();
        assert_eq!(enc.stored.len(), 1);
        assert_eq!(enc.refs, vec![other]);
        let len = LayerIndex::index_len("x", &enc.bytes).unwrap();
        let idx = LayerIndex::decode("x", enc.id, &enc.bytes[..len]).unwrap();
        assert_eq!(idx.pages.len(), 4);
        assert_eq!(idx.pages[&5].loc, PageLoc::Zero);
        assert_eq!(idx.pages[&4].loc, PageLoc::Stored { layer: other, offset: 4096, len: 12288 });
        let PageLoc::Stored { layer, offset, len } = idx.pages[&3].loc else { panic!("stored") };
        assert_eq!(layer, enc.id);
        assert_eq!(&enc.bytes[offset as usize..offset as usize + len as usize], &a[..]);
        assert_eq!(idx.pages[&9].loc, idx.pages[&3].loc);
    }

    #[test]
    fn decode_rejects_tampering_and_unknown_versions() {
        let mut b = LayerBuilder::new(LayerKind::Delta);
        b.add_bytes(0, PageHash::of(b"x"), b"x");
        let enc = b.finish();
        let len = LayerIndex::index_len("x", &enc.bytes).unwrap();
        let mut bad = enc.bytes[..len].to_vec();
        bad[HEADER_LEN + 3] ^= 1;
        assert!(matches!(LayerIndex::decode("x", enc.id, &bad), Err(LayerdError::Corrupt { .. })));
        let mut v2 = enc.bytes[..len].to_vec();
        v2[8] = 2;
        assert!(matches!(LayerIndex::index_len("x", &v2), Err(LayerdError::UnsupportedVersion { found: 2, .. })));
    }
}
