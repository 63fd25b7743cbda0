//! The layer store: layer objects in an `object_store` (local directory,
//! `memory://`, or `s3://bucket/prefix`), with verification on every read and
//! caches in front.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::cache::{CountLru, DiskCache, PageCache};
use crate::error::{IoContext, LayerdError, Result};
use crate::layer::{EncodedLayer, LayerId, LayerIndex, PageLoc, PageRef, HEADER_LEN};
use crate::page::PageHash;
use crate::paths;

/// Where and how layers are kept.
pub struct StoreConfig {
    /// `file:///abs/dir`, `memory://`, or `s3://bucket[/prefix]` (credentials,
    /// region and endpoint from the standard `AWS_*` environment).
    pub url: String,
    /// In-memory page cache budget.
    pub page_cache_bytes: usize,
    /// Local disk cache for remote stores (`None`: no disk cache).
    pub disk_cache: Option<(PathBuf, u64)>,
}

/// `openduck-store.json`: which metadata store this object store belongs with.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoreMarker {
    pair: String,
}

/// A layer object as listed in the store.
pub struct ListedLayer {
    pub id: LayerId,
    pub size: u64,
    pub last_modified_ms: i64,
}

pub struct LayerStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    /// Root directory when the store is a local directory (for fsync).
    local_root: Option<PathBuf>,
    pages: PageCache,
    indexes: CountLru<LayerId, Arc<LayerIndex>>,
    disk: Option<DiskCache>,
}

impl LayerStore {
    pub fn open(cfg: StoreConfig) -> Result<Self> {
        let bad = |reason: String| LayerdError::BadUrl { what: "object store", url: cfg.url.clone(), reason };
        let url = url::Url::parse(&cfg.url).map_err(|e| bad(format!("{e}; expected file:///dir, memory:// or s3://bucket/prefix")))?;
        let (store, prefix, local_root, remote): (Arc<dyn ObjectStore>, Path, Option<PathBuf>, bool) = match url.scheme() {
            "memory" => (Arc::new(InMemory::new()), Path::default(), None, false),
            "file" => {
                let dir = url.to_file_path().map_err(|_| bad("not an absolute local path".into()))?;
                std::fs::create_dir_all(&dir).at(&dir)?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(e.to_string()))?;
                (Arc::new(fs), Path::default(), Some(dir), false)
            }
            "s3" => {
                let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("missing bucket name".into()))?;
                let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(|e| bad(e.to_string()))?;
                let prefix = Path::from(url.path().trim_matches('/'));
                (Arc::new(s3), prefix, None, true)
            }
            other => return Err(bad(format!("unsupported scheme '{other}'; expected file://, memory:// or s3://"))),
        };
        let disk = match (&cfg.disk_cache, remote) {
            (Some((dir, max)), true) => Some(DiskCache::open(dir.clone(), *max).at(dir)?),
            _ => None,
        };
        Ok(LayerStore {
            store,
            prefix,
            url: cfg.url,
            local_root,
            pages: PageCache::new(cfg.page_cache_bytes),
            indexes: CountLru::new(4096),
            disk,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn key(&self, id: &LayerId) -> Path {
        paths::layer_path(&self.prefix, id)
    }

    /// Write a layer and make it durable before returning.
    pub async fn put_layer(&self, layer: &EncodedLayer) -> Result<()> {
        let key = self.key(&layer.id);
        self.store.put(&key, PutPayload::from(layer.bytes.clone())).await?;
        if let Some(root) = &self.local_root {
            let path = root.join(key.as_ref());
            sync_file_and_parent(&path)?;
        }
        Ok(())
    }

    pub async fn delete_layer(&self, id: &LayerId) -> Result<()> {
        match self.store.delete(&self.key(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The pair id in this store's marker object, if it has one.
    pub async fn read_marker(&self) -> Result<Option<String>> {
        let key = paths::marker_path(&self.prefix);
        let bytes = match self.store.get(&key).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let marker: StoreMarker = serde_json::from_slice(&bytes)
            .map_err(|e| LayerdError::Corrupt { object: key.to_string(), detail: format!("unreadable store marker: {e}") })?;
        Ok(Some(marker.pair))
    }

    /// Write this store's marker object (durable before returning).
    pub async fn write_marker(&self, pair: &str) -> Result<()> {
        let key = paths::marker_path(&self.prefix);
        let body = serde_json::to_vec(&StoreMarker { pair: pair.to_string() })
            .map_err(|e| LayerdError::Invalid(format!("encoding the store marker: {e}")))?;
        self.store.put(&key, PutPayload::from(body)).await?;
        if let Some(root) = &self.local_root {
            sync_file_and_parent(&root.join(key.as_ref()))?;
        }
        Ok(())
    }

    /// Hits and misses of each cache so far: `(cache, hits, misses)` for the
    /// page cache in memory, the layer-index cache in memory and (remote
    /// stores) the disk cache of pages and indexes.
    pub fn cache_lookups(&self) -> Vec<(&'static str, u64, u64)> {
        let mut out = Vec::with_capacity(3);
        let (h, m) = self.pages.lookups.totals();
        out.push(("pages", h, m));
        let (h, m) = self.indexes.lookups.totals();
        out.push(("layer_indexes", h, m));
        if let Some(d) = &self.disk {
            let (h, m) = d.lookups.totals();
            out.push(("disk", h, m));
        }
        out
    }

    /// Every layer object in the store.
    pub async fn list_layers(&self) -> Result<Vec<ListedLayer>> {
        let dir = paths::layers_dir(&self.prefix);
        let metas: Vec<_> = self.store.list(Some(&dir)).try_collect().await?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let id = paths::parse_layer_path(&m.location)?;
                Some(ListedLayer { id, size: m.size, last_modified_ms: m.last_modified.timestamp_millis() })
            })
            .collect())
    }

    async fn get_range(&self, id: &LayerId, range: std::ops::Range<u64>) -> Result<Bytes> {
        let key = self.key(id);
        self.store.get_range(&key, range).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => LayerdError::Corrupt {
                object: key.to_string(),
                detail: "layer object is missing from the store".into(),
            },
            e => e.into(),
        })
    }

    /// The decoded, verified index of a layer.
    pub async fn index(&self, id: &LayerId) -> Result<Arc<LayerIndex>> {
        if let Some(ix) = self.indexes.get(id) {
            return Ok(ix);
        }
        let key = self.key(id).to_string();
        let cache_name = format!("{}.index", id.to_hex());
        let cached = self.disk.as_ref().and_then(|d| d.get(&cache_name));
        let decoded = match cached.map(|b| LayerIndex::decode(&key, *id, &b)) {
            Some(Ok(ix)) => ix,
            _ => {
                let header = self.get_range(id, 0..HEADER_LEN as u64).await?;
                let len = LayerIndex::index_len(&key, &header)?;
                let buf = self.get_range(id, 0..len as u64).await?;
                let ix = LayerIndex::decode(&key, *id, &buf)?;
                if let Some(d) = &self.disk {
                    d.insert(&cache_name, &buf);
                }
                ix
            }
        };
        let ix = Arc::new(decoded);
        self.indexes.insert(*id, ix.clone());
        Ok(ix)
    }

    /// The bytes of one page, verified against its hash.
    pub async fn read_page(&self, page: u64, r: &PageRef, page_len: usize) -> Result<Bytes> {
        let (layer, offset, len) = match r.loc {
            PageLoc::Zero => return Ok(Bytes::from(vec![0u8; page_len])),
            PageLoc::Stored { layer, offset, len } => (layer, offset, len),
        };
        if let Some(b) = self.pages.get(&r.hash) {
            return Ok(b);
        }
        let cache_name = r.hash.to_hex();
        if let Some(b) = self.disk.as_ref().and_then(|d| d.get(&cache_name)) {
            if PageHash::of(&b) == r.hash {
                self.pages.insert(r.hash, b.clone());
                return Ok(b);
            }
        }
        let bytes = self.get_range(&layer, offset..offset + len as u64).await?;
        let actual = PageHash::of(&bytes);
        if actual != r.hash {
            return Err(LayerdError::Corrupt {
                object: self.key(&layer).to_string(),
                detail: format!(
                    "page {page} at bytes {offset}..{} hashes to {actual}, expected {} (the object was damaged; restore it from a backup or drop the snapshots that use it)",
                    offset + len as u64,
                    r.hash
                ),
            });
        }
        if let Some(d) = &self.disk {
            d.insert(&cache_name, &bytes);
        }
        self.pages.insert(r.hash, bytes.clone());
        Ok(bytes)
    }

    /// Forget cached pages and indexes (benchmarks use this for cold reads).
    pub fn clear_memory_cache(&self) {
        self.pages.clear();
        self.indexes.clear();
    }
}
fn sync_file_and_parent(path: &std::path::Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).at(path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent).and_then(|f| f.sync_all()).at(parent)?;
    }
    Ok(())
}
