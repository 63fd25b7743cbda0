//! Unguessable ids: result handles and transaction ids grant access to
//! what they name, so they come from the OS's random source.

use std::sync::atomic::{AtomicU64, Ordering};

/// 128 random bits as 32 hex digits.
pub fn random_id() -> String {
    hex(&random_bytes())
}

/// 16 random bytes (from the OS; should it fail, a hash of a counter, the
/// time and the process id: unique, if not secret).
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = format!("{}-{:?}-{}", COUNTER.fetch_add(1, Ordering::Relaxed), std::time::SystemTime::now(), std::process::id());
        bytes.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let (a, b) = (super::random_id(), super::random_id());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
