//! A metadata store and its object store are one pair: the metadata names
//! layers only that object store holds, and gc deletes objects the metadata
//! does not know. Each side records the pair's id (a row in the metadata,
//! an `openduck-store.json` marker object in the store), and opening a
//! mismatched pair is refused with both named.

use crate::catalog::{now_ms, Catalog};
use crate::error::{LayerdError, Result};
use crate::store::LayerStore;

/// Check that `catalog` and `store` belong together; bind them if neither is
/// bound yet (a new pair, or one made before bindings existed).
pub async fn check_or_bind(catalog: &Catalog, store: &LayerStore) -> Result<()> {
    let recorded = catalog.store_binding().await?;
    let marker = store.read_marker().await?;
    let mismatch =
        |detail: String| LayerdError::StoreMismatch { metadata: catalog.url().to_string(), store: store.url().to_string(), detail };
    match (recorded, marker) {
        (Some(b), Some(m)) if b.id == m => Ok(()),
        (Some(b), Some(m)) => Err(mismatch(format!(
            "the metadata belongs with the object store {} (pair {}), and this object store with another metadata store (pair {m})",
            b.store_url, b.id
        ))),
        (Some(b), None) => Err(mismatch(format!(
            "the metadata belongs with the object store {} (pair {}), and this object store holds no OpenDuck marker: \
             it is another (or an emptied) store",
            b.store_url, b.id
        ))),
        (None, Some(m)) if catalog.is_empty().await? => {
            Err(mismatch(format!("this object store belongs to another metadata store (pair {m}), and this metadata store is empty")))
        }
        (None, Some(m)) => Err(mismatch(format!("this object store belongs to another metadata store (pair {m})"))),
        (None, None) => bind(catalog, store).await,
    }
}

async fn bind(catalog: &Catalog, store: &LayerStore) -> Result<()> {
    let mine = blake3::hash(format!("{:?}-{}-{}", std::time::SystemTime::now(), std::process::id(), store.url()).as_bytes()).to_hex()[..24]
        .to_string();
    store.write_marker(&mine).await?;
    // Two processes binding a new pair at once: the first row wins, and the
    // loser writes the winner's marker back.
    let winner = catalog.bind_store(&mine, store.url(), now_ms()).await?;
    if winner != mine {
        store.write_marker(&winner).await?;
    }
    tracing::info!(metadata = catalog.url(), store = store.url(), pair = winner, "bound the metadata store to its object store");
    Ok(())
}
