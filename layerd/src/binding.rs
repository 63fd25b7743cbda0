//! A metadata store and its object store are one pair: the metadata names
//! layers only that object store holds, and gc deletes objects the metadata
//! does not know. Each side records the pair's id (a row in the metadata,
//! an `openduck-store.json` marker object in the store), and opening a
//! mismatched pair is refused with both named.
//!
//! Binding a new pair: the metadata row is the arbiter (insert-if-absent),
//! then the winner writes the store's marker and marks the row complete.
//! Processes starting together on a new pair all adopt the winner's id; one
//! that finds the row incomplete waits for the winner (and completes the
//! binding itself if the winner died in between).

use std::time::Duration;

use crate::catalog::{now_ms, Catalog, StoreBinding};
use crate::error::{LayerdError, Result};
use crate::store::LayerStore;

/// How long to wait for another process to complete a binding.
const BINDING_WAIT: Duration = Duration::from_secs(10);

/// Check that `catalog` and `store` belong together; bind them if the
/// metadata is not bound yet (a new pair, or one made before bindings).
pub async fn check_or_bind(catalog: &Catalog, store: &LayerStore) -> Result<()> {
    let mine = new_pair_id(store);
    let mut binding = match catalog.store_binding().await? {
        Some(b) => b,
        None => catalog.bind_store(&mine, store.url(), now_ms()).await?,
    };
    if !binding.marked && binding.id != mine {
        binding = wait_until_marked(catalog, binding).await?;
    }
    let mismatch =
        |detail: String| LayerdError::StoreMismatch { metadata: catalog.url().to_string(), store: store.url().to_string(), detail };
    match store.read_marker().await? {
        Some(m) if m == binding.id => {
            if !binding.marked {
                catalog.mark_store_bound(&binding.id).await?;
            }
            Ok(())
        }
        Some(m) if !binding.marked => {
            if binding.id == mine {
                catalog.unbind_store(&mine).await?; // leave the metadata as we found it
            }
            Err(mismatch(format!("this object store belongs to another metadata store (pair {m})")))
        }
        Some(m) => Err(mismatch(format!(
            "the metadata belongs with the object store {} (pair {}), and this object store with another metadata store (pair {m})",
            binding.store_url, binding.id
        ))),
        None if !binding.marked => {
            // Ours to complete: a new binding, or one whose binder died
            // before it wrote the marker (it wrote no data either).
            store.write_marker(&binding.id).await?;
            catalog.mark_store_bound(&binding.id).await?;
            tracing::info!(
                metadata = catalog.url(),
                store = store.url(),
                pair = binding.id,
                "bound the metadata store to its object store"
            );
            Ok(())
        }
        None => Err(mismatch(format!(
            "the metadata belongs with the object store {} (pair {}), and this object store holds no OpenDuck marker: \
             it is another (or an emptied) store",
            binding.store_url, binding.id
        ))),
    }
}

/// Another process is binding this pair: wait (bounded) for it to finish.
async fn wait_until_marked(catalog: &Catalog, mut binding: StoreBinding) -> Result<StoreBinding> {
    let deadline = tokio::time::Instant::now() + BINDING_WAIT;
    while !binding.marked && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        binding = catalog.store_binding().await?.unwrap_or(binding);
    }
    Ok(binding)
}

fn new_pair_id(store: &LayerStore) -> String {
    let seed = format!("{:?}-{}-{}", std::time::SystemTime::now(), std::process::id(), store.url());
    blake3::hash(seed.as_bytes()).to_hex()[..24].to_string()
}
