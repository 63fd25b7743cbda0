//! Bearer-token authentication and the protocol version check for every
//! RPC, in one interceptor.

use tonic::{Request, Status};

pub use openduck_proto::{PROTOCOL_HEADER, PROTOCOL_VERSION};

/// A client that names another protocol version is refused with a message
/// that says which side to upgrade.
fn check_version<T>(req: &Request<T>) -> Result<(), Status> {
    let Some(v) = req.metadata().get(PROTOCOL_HEADER) else { return Ok(()) };
    match v.to_str().ok().and_then(|v| v.parse::<u32>().ok()) {
        Some(PROTOCOL_VERSION) => Ok(()),
        Some(theirs) => Err(Status::failed_precondition(format!(
            "version mismatch: the client speaks OpenDuck protocol {theirs}, this server speaks {PROTOCOL_VERSION}: \
             use the extension and `openduck serve` of the same OpenDuck release (upgrade the {} side)",
            if theirs > PROTOCOL_VERSION { "server" } else { "client" }
        ))),
        None => Err(Status::invalid_argument(format!("malformed {PROTOCOL_HEADER} header: expected a number"))),
    }
}

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
        check_version(&req)?;
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

    #[test]
    fn protocol_versions() {
        let auth = Auth::new(None);
        let with = |v: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert(PROTOCOL_HEADER, v.parse().unwrap());
            auth.check(r)
        };
        assert!(with(&PROTOCOL_VERSION.to_string()).is_ok());
        let newer = with(&(PROTOCOL_VERSION + 1).to_string()).unwrap_err();
        assert_eq!(newer.code(), tonic::Code::FailedPrecondition);
        assert!(newer.message().contains("version mismatch") && newer.message().contains("upgrade the server"), "{}", newer.message());
        assert!(with("0").unwrap_err().message().contains("upgrade the client"));
        assert_eq!(with("x").unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
