//! Backends for integration tests: every suite runs on SQLite + a local object
//! directory, and on the real Postgres and S3-compatible servers that
//! `scripts/test` starts on loopback (`OPENDUCK_TEST_POSTGRES_URL`,
//! `OPENDUCK_TEST_S3_URL`). Under `scripts/test` (and in CI) a missing server is
//! a failure, never a skip.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use layerd::LayerdConfig;
use tempfile::TempDir;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    SqliteLocal,
    PostgresLocal,
    SqliteS3,
}

pub struct TestEnv {
    pub dir: TempDir,
    pub cfg: LayerdConfig,
}

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("OPENDUCK_REQUIRE_SERVICES").is_some()
}

fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("t{}_{}_{}", std::process::id(), t % 1_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}

/// The env var a backend needs, if any.
fn service_var(b: Backend) -> Option<&'static str> {
    match b {
        Backend::SqliteLocal => None,
        Backend::PostgresLocal => Some("OPENDUCK_TEST_POSTGRES_URL"),
        Backend::SqliteS3 => Some("OPENDUCK_TEST_S3_URL"),
    }
}

/// Whether this backend can run here; panics if it must and cannot.
pub fn available(b: Backend) -> bool {
    match service_var(b) {
        None => true,
        Some(var) if std::env::var_os(var).is_some() => true,
        Some(var) if required() => panic!("{var} is not set: run the tests through scripts/test, which starts the server"),
        Some(var) => {
            eprintln!("note: {var} not set, skipping the {b:?} variant (scripts/test runs it)");
            false
        }
    }
}

/// A fresh, empty environment on `b`.
pub async fn env(b: Backend) -> TestEnv {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = LayerdConfig::new(dir.path().join("data"));
    cfg.page_cache_bytes = 8 << 20;
    match b {
        Backend::SqliteLocal => {}
        Backend::PostgresLocal => {
            let base = std::env::var("OPENDUCK_TEST_POSTGRES_URL").expect("postgres url");
            let name = unique();
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await.expect("connect to test postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create database");
            let (prefix, _) = base.rsplit_once('/').expect("postgres url has a database");
            cfg.metadata_url = Some(format!("{prefix}/{name}"));
        }
        Backend::SqliteS3 => {
            let base = std::env::var("OPENDUCK_TEST_S3_URL").expect("s3 url");
            cfg.store_url = Some(format!("{}/{}", base.trim_end_matches('/'), unique()));
        }
    }
    TestEnv { dir, cfg }
}

/// Deterministic pseudo-random bytes (xorshift) so tests need no RNG crate.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
