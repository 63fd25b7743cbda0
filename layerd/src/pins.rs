//! Open snapshot views pin the layers they read, so gc never deletes a layer
//! under a reader: not when retention drops the snapshot, not when a
//! compaction replaces its stack. No grace period is needed for them.
//!
//! A view pins its stack when it opens (one metadata write for layers this
//! process did not pin yet), then checks that the snapshot still has that
//! stack: a gc that forgot one of those layers before the pin was visible
//! must have dropped the snapshot or replaced its stack first, so the view
//! sees the change and opens again (or reports the snapshot gone) instead
//! of reading a deleted object later. A background task refreshes this
//! process's pins every [`PIN_REFRESH`]; pins live [`PIN_TTL`], so those of a
//! process that died are reaped by the next gc after that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::catalog::{now_ms, Catalog};
use crate::error::Result;
use crate::layer::LayerId;

pub const PIN_REFRESH: Duration = Duration::from_secs(20);
pub const PIN_TTL: Duration = Duration::from_secs(120);

/// This process's pins: how many open views read each layer.
pub struct ViewPins {
    holder: String,
    catalog: Catalog,
    counts: Mutex<HashMap<LayerId, usize>>,
}

/// Held by a view; unpins its layers when dropped.
pub struct PinGuard {
    pins: Arc<ViewPins>,
    layers: Vec<LayerId>,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut counts = self.pins.counts.lock().unwrap_or_else(|p| p.into_inner());
        for l in &self.layers {
            if let Some(n) = counts.get_mut(l) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(l); // its row goes at the next refresh
                }
            }
        }
    }
}

impl ViewPins {
    /// Pins held as `holder` (unique per process), refreshed in the background
    /// for as long as the returned value lives.
    pub fn start(catalog: Catalog, holder: String) -> Arc<Self> {
        let pins = Arc::new(ViewPins { holder, catalog, counts: Mutex::default() });
        let weak: Weak<ViewPins> = Arc::downgrade(&pins);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PIN_REFRESH).await;
                let Some(pins) = weak.upgrade() else { return };
                if let Err(e) = pins.refresh().await {
                    tracing::warn!(error = %e, "refreshing the pins of open snapshot views failed; retrying");
                }
            }
        });
        pins
    }

    /// Pin `layers` until the guard drops.
    pub async fn pin(self: &Arc<Self>, layers: &[LayerId]) -> Result<PinGuard> {
        let new: Vec<LayerId> = {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            let mut new = Vec::new();
            for l in layers {
                let n = counts.entry(*l).or_insert(0);
                if *n == 0 {
                    new.push(*l);
                }
                *n += 1;
            }
            new
        };
        let guard = PinGuard { pins: self.clone(), layers: layers.to_vec() };
        if !new.is_empty() {
            self.catalog.pin_layers(&self.holder, &new, now_ms() + PIN_TTL.as_millis() as i64).await?;
        }
        Ok(guard)
    }

    /// Extend the pins of every layer an open view reads; drop the others.
    pub async fn refresh(&self) -> Result<()> {
        let held: Vec<LayerId> = self.counts.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
        self.catalog.refresh_pins(&self.holder, &held, now_ms() + PIN_TTL.as_millis() as i64).await
    }
}
