//! Configuration of a layerd instance. Libraries take this struct; only the
//! binary reads flags and `OPENDUCK_*` environment variables.

use std::path::PathBuf;

use crate::error::{IoContext, LayerdError, Result};

#[derive(Clone, Debug)]
pub struct LayerdConfig {
    /// Heads, caches and (by default) metadata and objects live here.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: SQLite file in the data dir.
    pub metadata_url: Option<String>,
    /// `file:///DIR`, `memory://` or `s3://bucket/prefix`; default: `objects/` in the data dir.
    pub store_url: Option<String>,
    /// In-memory page cache budget.
    pub page_cache_bytes: usize,
    /// Local disk cache budget for remote (S3) stores.
    pub disk_cache_bytes: u64,
    /// Compact the latest snapshot after a seal once its stack is deeper than this.
    pub max_stack_depth: usize,
    /// How long a seal, import or compaction's claim on a new layer lives
    /// without renewal (it renews before every object put): gc reclaims the
    /// objects of a writer that crashed mid-seal after this long.
    pub claim_ttl_ms: i64,
}

impl LayerdConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LayerdConfig {
            data_dir: data_dir.into(),
            metadata_url: None,
            store_url: None,
            page_cache_bytes: 256 << 20,
            disk_cache_bytes: 16 << 30,
            max_stack_depth: 8,
            claim_ttl_ms: crate::catalog::DEFAULT_CLAIM_TTL_MS,
        }
    }

    /// The metadata store's URL (the default SQLite file needs the data dir).
    pub fn resolved_metadata_url(&self) -> Result<String> {
        match &self.metadata_url {
            Some(u) => Ok(u.clone()),
            None => Ok(self.resolve()?.1),
        }
    }

    /// Create the data dir and fill in the defaults that depend on it.
    pub(crate) fn resolve(&self) -> Result<(PathBuf, String, String)> {
        std::fs::create_dir_all(&self.data_dir).at(&self.data_dir)?;
        let dir = self.data_dir.canonicalize().at(&self.data_dir)?;
        let metadata = match &self.metadata_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}?mode=rwc", dir.join("metadata.sqlite").display()),
        };
        let store = match &self.store_url {
            Some(u) => u.clone(),
            None => url::Url::from_directory_path(dir.join("objects"))
                .map_err(|_| LayerdError::Invalid(format!("data dir {} is not a valid path", dir.display())))?
                .to_string(),
        };
        Ok((dir, metadata, store))
    }
}

/// Database names become directory names and URL parts: keep them plain.
pub fn validate_db_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(LayerdError::InvalidDatabaseName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        for good in ["mydb", "a", "sales_2024", "x-1"] {
            assert!(validate_db_name(good).is_ok(), "{good}");
        }
        for bad in ["", "../etc", "a/b", "-x", "_x", "a b", "é", &"a".repeat(64)] {
            assert!(validate_db_name(bad).is_err(), "{bad}");
        }
    }
}
