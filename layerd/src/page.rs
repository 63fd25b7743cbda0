//! Page geometry and page hashes.
//!
//! A database file is cut into pages on DuckDB's own grid (FACTS §1): page 0 is
//! the 12 KiB header region, page `k + 1` is the 256 KiB block `k` at
//! `12288 + k * 262144`. One changed DuckDB block is therefore exactly one
//! changed page. Pages are stored zero-padded to their full length; the logical
//! file size says where the file ends.

use std::fmt;

/// Size of page 0: DuckDB's main header plus its two database headers.
pub const HEADER_PAGE_SIZE: u64 = 12 * 1024;
/// Size of every other page: one DuckDB block.
pub const BLOCK_PAGE_SIZE: u64 = 256 * 1024;

/// Index of a page within a database file.
pub type PageNo = u64;

/// Byte offset where page `page` starts.
pub fn page_start(page: PageNo) -> u64 {
    if page == 0 {
        0
    } else {
        HEADER_PAGE_SIZE + (page - 1) * BLOCK_PAGE_SIZE
    }
}

/// Length of page `page` in bytes.
pub fn page_len(page: PageNo) -> usize {
    if page == 0 {
        HEADER_PAGE_SIZE as usize
    } else {
        BLOCK_PAGE_SIZE as usize
    }
}

/// The page that contains byte `offset`.
pub fn page_of(offset: u64) -> PageNo {
    if offset < HEADER_PAGE_SIZE {
        0
    } else {
        1 + (offset - HEADER_PAGE_SIZE) / BLOCK_PAGE_SIZE
    }
}

/// Number of pages needed to hold a file of `size` bytes.
pub fn page_count(size: u64) -> u64 {
    if size == 0 {
        0
    } else {
        page_of(size - 1) + 1
    }
}

/// The pages overlapping the byte range `[offset, offset + len)`.
pub fn pages_in_range(offset: u64, len: u64) -> std::ops::Range<PageNo> {
    if len == 0 {
        return 0..0;
    }
    page_of(offset)..page_of(offset + len - 1) + 1
}

/// Assemble bytes `[offset, offset + len)` of a file of `size` bytes from its
/// pages (clipped to the file size), fetching each page with `page`.
pub async fn read_range<F, Fut>(offset: u64, len: usize, size: u64, mut page: F) -> crate::Result<Vec<u8>>
where
    F: FnMut(PageNo) -> Fut,
    Fut: std::future::Future<Output = crate::Result<bytes::Bytes>>,
{
    let end = (offset + len as u64).min(size);
    if offset >= end {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity((end - offset) as usize);
    for p in pages_in_range(offset, end - offset) {
        let bytes = page(p).await?;
        let from = offset.max(page_start(p)) - page_start(p);
        let to = end.min(page_start(p) + bytes.len() as u64) - page_start(p);
        out.extend_from_slice(&bytes[from as usize..to as usize]);
    }
    Ok(out)
}

/// blake3 hash of a page's bytes: the page's identity in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageHash(pub [u8; 32]);

impl PageHash {
    pub fn of(bytes: &[u8]) -> Self {
        PageHash(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(PageHash(out))
    }
}

impl fmt::Display for PageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageHash({})", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_matches_duckdb_layout() {
        assert_eq!(page_start(0), 0);
        assert_eq!(page_start(1), 12288);
        assert_eq!(page_start(3), 12288 + 2 * 262144);
        assert_eq!(page_of(12287), 0);
        assert_eq!(page_of(12288), 1);
        assert_eq!(page_of(12288 + 262144), 2);
        assert_eq!(page_count(0), 0);
        assert_eq!(page_count(1), 1);
        assert_eq!(page_count(12288), 1);
        assert_eq!(page_count(12289), 2);
        assert_eq!(pages_in_range(12000, 1000), 0..2);
        assert_eq!(pages_in_range(5, 0), 0..0);
    }

    #[test]
    fn every_offset_lies_in_its_page() {
        for off in (0..3_000_000u64).step_by(4093) {
            let p = page_of(off);
            assert!(page_start(p) <= off && off < page_start(p) + page_len(p) as u64);
        }
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = PageHash::of(b"duck");
        assert_eq!(PageHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(PageHash::from_hex("zz"), None);
    }
}
