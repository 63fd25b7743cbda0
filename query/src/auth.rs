//! Bearer-token authentication for every RPC, in one interceptor.

use tonic::{Request, Status};

/// Compare in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone)]
pub struct Auth {
    /// `None`: the server runs open (only allowed on loopback).
    token: Option<std::sync::Arc<String>>,
}

impl Auth {
    pub fn new(token: Option<String>) -> Self {
        Auth { token: token.map(std::sync::Arc::new) }
    }

    pub fn check<T>(&self, req: Request<T>) -> Result<Request<T>, Status> {
        let Some(want) = &self.token else { return Ok(req) };
        let got = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match got {
            None => Err(Status::unauthenticated("missing token: send `authorization: Bearer <token>` (ATTACH '...?token=...' or OPENDUCK_TOKEN)")),
            Some(t) if constant_time_eq(t.as_bytes(), want.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong token: it must match the server's --token / OPENDUCK_TOKEN")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let auth = Auth::new(Some("s3cret".into()));
        let mut ok = Request::new(());
        ok.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.check(ok).is_ok());
        let mut bad = Request::new(());
        bad.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(auth.check(bad).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.check(Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(Auth::new(None).check(Request::new(())).is_ok());
    }
}
