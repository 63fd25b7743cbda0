//! A readable snapshot: its layer stack merged into one page map at open, so a
//! page lookup costs one hash probe whatever the stack depth.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::catalog::SnapshotInfo;
use crate::error::Result;
use crate::layer::{PageLoc, PageRef};
use crate::page::{page_count, page_len, read_range, PageNo};
use crate::store::LayerStore;

pub struct SnapshotView {
    pub info: SnapshotInfo,
    /// Every page the stack mentions (also beyond `size`: they must stay
    /// masked if a later snapshot grows the file again).
    pages: HashMap<PageNo, PageRef>,
    store: Arc<LayerStore>,
    /// Keeps gc off the layers this view reads (views opened through `Layerd`).
    _pin: Option<crate::pins::PinGuard>,
}

impl SnapshotView {
    pub async fn open(store: Arc<LayerStore>, info: SnapshotInfo) -> Result<Self> {
        let mut pages = HashMap::new();
        for id in &info.layers {
            let ix = store.index(id).await?;
            pages.extend(ix.pages.iter().map(|(p, r)| (*p, *r)));
        }
        Ok(SnapshotView { info, pages, store, _pin: None })
    }

    /// A view that holds `pin` for as long as it lives.
    pub(crate) fn pinned(mut self, pin: crate::pins::PinGuard) -> Self {
        self._pin = Some(pin);
        self
    }

    pub fn size(&self) -> u64 {
        self.info.size
    }

    pub fn id(&self) -> i64 {
        self.info.id
    }

    /// The stack's entry for a page, regardless of the file size.
    pub fn raw_page_ref(&self, page: PageNo) -> Option<&PageRef> {
        self.pages.get(&page)
    }

    /// Pages within the file that hold data (not zero), in order.
    pub fn stored_pages(&self) -> Vec<(PageNo, PageRef)> {
        let n = page_count(self.info.size);
        let mut v: Vec<_> =
            self.pages.iter().filter(|(p, r)| **p < n && r.loc != PageLoc::Zero).map(|(p, r)| (*p, *r)).collect();
        v.sort_by_key(|(p, _)| *p);
        v
    }

    pub fn all_refs(&self) -> impl Iterator<Item = (&PageNo, &PageRef)> {
        self.pages.iter()
    }

    /// The full (zero-padded) bytes of one page of this snapshot.
    pub async fn read_page(&self, page: PageNo) -> Result<Bytes> {
        match self.pages.get(&page) {
            Some(r) if page < page_count(self.info.size) => self.store.read_page(page, r, page_len(page)).await,
            _ => Ok(Bytes::from(vec![0u8; page_len(page)])),
        }
    }

    /// Read `len` bytes at `offset`, clipped to the file size.
    pub async fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        read_range(offset, len, self.info.size, |p| self.read_page(p)).await
    }
}
