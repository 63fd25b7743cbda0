//! Turning changed pages into new layer objects: shared by `seal` (pages from
//! the head's log) and `import` (pages from a plain file).
//!
//! Pages are hashed, compared with the parent snapshot (unchanged pages are
//! skipped), looked up in the dedupe table (pages whose bytes are already stored
//! anywhere, in any database, become references) and the rest are packed into
//! layers of about [`LAYER_TARGET_BYTES`]. Every layer is claimed in the
//! metadata before it is put (so gc leaves it alone) and durable in the object
//! store before the caller commits the metadata.

use std::collections::HashMap;

use crate::catalog::{Catalog, KnownPage, NewLayer};
use crate::error::{LayerdError, Result};
use crate::layer::{EncodedLayer, LayerBuilder, LayerId, LayerKind};
use crate::page::{page_len, PageHash, PageNo};
use crate::store::LayerStore;

/// Size at which a layer under construction is written out.
pub const LAYER_TARGET_BYTES: usize = 64 << 20;
/// Pages read and looked up per batch.
const BATCH_PAGES: usize = 128;

/// Where a simulated crash interrupts a seal (tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealStep {
    /// Layer objects written, metadata not committed.
    AfterObjects,
    /// Metadata committed, head not yet rebased.
    AfterCommit,
}

/// A page to consider for the new layers.
pub struct Candidate {
    pub page: PageNo,
    /// Known hash (head pages) or `None` (hash after reading).
    pub hash: Option<PageHash>,
}

fn zero_hash(page: PageNo) -> PageHash {
    static ZERO: std::sync::OnceLock<(PageHash, PageHash)> = std::sync::OnceLock::new();
    let (h0, hb) = ZERO.get_or_init(|| (PageHash::of(&vec![0u8; page_len(0)]), PageHash::of(&vec![0u8; page_len(1)])));
    if page == 0 {
        *h0
    } else {
        *hb
    }
}

pub struct DeltaBuilder<'a> {
    store: &'a LayerStore,
    catalog: &'a Catalog,
    /// Who claims the new layers (the writer-lease owner name).
    owner: &'a str,
    builder: LayerBuilder,
    known: HashMap<PageHash, KnownPage>,
    pub layers: Vec<NewLayer>,
    pub bytes_written: u64,
}

impl<'a> DeltaBuilder<'a> {
    pub fn new(store: &'a LayerStore, catalog: &'a Catalog, owner: &'a str) -> Self {
        DeltaBuilder {
            store,
            catalog,
            owner,
            builder: LayerBuilder::new(LayerKind::Delta),
            known: HashMap::new(),
            layers: Vec::new(),
            bytes_written: 0,
        }
    }

    pub fn add_zero(&mut self, page: PageNo) {
        self.builder.add_zero(page);
    }

    /// Add `candidates`; `unchanged(page, hash)` says a page equals the parent's;
    /// `read(page)` returns its full bytes. `progress` gets pages done.
    pub async fn add_pages(
        &mut self,
        candidates: Vec<Candidate>,
        unchanged: impl Fn(PageNo, &PageHash) -> bool,
        mut read: impl FnMut(PageNo) -> Result<Vec<u8>>,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        let mut done = 0;
        for batch in candidates.chunks(BATCH_PAGES) {
            let mut loaded: Vec<(PageNo, PageHash, Option<Vec<u8>>)> = Vec::with_capacity(batch.len());
            for c in batch {
                match c.hash {
                    Some(h) if unchanged(c.page, &h) => {}
                    Some(h) => loaded.push((c.page, h, None)),
                    None => {
                        let bytes = read(c.page)?;
                        let h = PageHash::of(&bytes);
                        if !unchanged(c.page, &h) {
                            loaded.push((c.page, h, Some(bytes)));
                        }
                    }
                }
            }
            let lookup: Vec<PageHash> =
                loaded.iter().map(|(p, h, _)| (*p, *h)).filter(|(p, h)| *h != zero_hash(*p) && !self.known.contains_key(h)).map(|x| x.1).collect();
            self.known.extend(self.catalog.find_pages(&lookup).await?);
            for (page, hash, bytes) in loaded {
                if hash == zero_hash(page) {
                    self.builder.add_zero(page);
                } else if let Some(k) = self.known.get(&hash) {
                    self.builder.add_ref(page, hash, k.layer, k.offset, k.len);
                } else {
                    let bytes = match bytes {
                        Some(b) => b,
                        None => read(page)?,
                    };
                    self.builder.add_bytes(page, hash, &bytes);
                    if self.builder.data_len() >= LAYER_TARGET_BYTES {
                        self.flush().await?;
                    }
                }
            }
            done += batch.len();
            progress(done);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let builder = std::mem::replace(&mut self.builder, LayerBuilder::new(LayerKind::Delta));
        if builder.is_empty() {
            return Ok(());
        }
        let held: Vec<_> = self.layers.iter().map(|l| l.id).collect();
        let enc = put_claimed(self.store, self.catalog, self.owner, &builder, &held).await?;
        self.bytes_written += enc.bytes.len() as u64;
        for s in &enc.stored {
            self.known.insert(s.hash, KnownPage { layer: enc.id, offset: s.offset, len: s.len });
        }
        self.layers.push(new_layer(&enc));
        Ok(())
    }

    /// Write out the last layer; returns every new layer, bottom first.
    pub async fn finish(mut self) -> Result<(Vec<NewLayer>, u64)> {
        self.flush().await?;
        Ok((self.layers, self.bytes_written))
    }
}

/// Claim the new layer's name, renew the claims the writer already `held`,
/// then put the object. A name under a gc tombstone (a gc is deleting an old
/// copy of the same content right now) is never written: the layer is
/// encoded again with another salt, which gives it another name.
pub async fn put_claimed(store: &LayerStore, catalog: &Catalog, owner: &str, builder: &LayerBuilder, held: &[LayerId]) -> Result<EncodedLayer> {
    for salt in 0..=u8::MAX {
        let enc = builder.encode(salt);
        if !catalog.claim_layer(&enc.id, owner).await? {
            tracing::debug!(layer = %enc.id, salt, "layer name is being garbage collected; salting");
            continue;
        }
        catalog.renew_claims(held).await?;
        store.put_layer(&enc).await?;
        return Ok(enc);
    }
    Err(LayerdError::Invalid("every salt of a new layer is under a gc tombstone; run `openduck gc` to finish, then retry".into()))
}

pub fn new_layer(enc: &EncodedLayer) -> NewLayer {
    NewLayer {
        id: enc.id,
        kind: enc.kind,
        object_bytes: enc.bytes.len() as u64,
        pages: enc.page_count as u64,
        refs: enc.refs.clone(),
        stored: enc.stored.clone(),
    }
}
