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

/// Sent by a gateway with the statements of a client whose token is
/// read-only. Any caller may send it: it can only take rights away.
pub const ACCESS_HEADER: &str = "openduck-access";

/// Which databases a token may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Databases {
    All,
    Only(Vec<String>),
}

/// What a caller may do, from its token (attached to each request by
/// [`Auth::check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// May change databases (writes, DDL, CHECKPOINT, uploads).
    pub write: bool,
    pub databases: Databases,
}

impl Grant {
    pub fn full() -> Self {
        Grant { write: true, databases: Databases::All }
    }

    /// The grant attached to a request by the interceptor.
    pub fn of<T>(req: &Request<T>) -> Result<Grant, Status> {
        req.extensions().get::<Grant>().cloned().ok_or_else(|| Status::internal("request reached the service without an access check"))
    }

    /// `PERMISSION_DENIED` unless this grant covers `db`.
    pub fn check_database(&self, db: &str) -> Result<(), Status> {
        match &self.databases {
            Databases::All => Ok(()),
            Databases::Only(dbs) if dbs.iter().any(|d| d == db) => Ok(()),
            Databases::Only(dbs) => Err(Status::permission_denied(format!(
                "this token may not use database '{db}': it is scoped to {}; use a token that covers '{db}'",
                dbs.iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// `PERMISSION_DENIED` for an upload (ingest) under a read-only grant.
    pub fn check_upload(&self) -> Result<(), Status> {
        if self.write {
            return Ok(());
        }
        Err(Status::permission_denied("this token is read-only: uploading rows needs a token with write access"))
    }
}

/// The tokens a server accepts and what each may do.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(String, Grant)>,
}

impl Tokens {
    /// One token with every right (`--token`).
    pub fn single(token: String) -> Self {
        Tokens { entries: vec![(token, Grant::full())] }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add the tokens of a tokens file: one per line,
    /// `<token> <read|write> <db>[,<db>...]` or `*` for every database;
    /// blank lines and `#` comments are skipped.
    pub fn add_file(&mut self, text: &str, origin: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{origin}:{}", n + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, access, dbs] = fields[..] else {
                return Err(format!("{at}: expected `<token> <read|write> <db>[,<db>...]|*`, found {} fields", fields.len()));
            };
            let write = match access {
                "read" => false,
                "write" => true,
                other => return Err(format!("{at}: access must be `read` or `write`, not `{other}`")),
            };
            if token.len() < 16 {
                return Err(format!("{at}: a token must be at least 16 characters (make one with `openssl rand -hex 24`)"));
            }
            let databases = if dbs == "*" {
                Databases::All
            } else {
                let names: Vec<String> = dbs.split(',').map(str::to_string).collect();
                if let Some(bad) = names.iter().find(|d| d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
                    return Err(format!("{at}: '{bad}' is not a database name (use names separated by commas, or `*`)"));
                }
                Databases::Only(names)
            };
            if self.entries.iter().any(|(t, _)| t == token) {
                return Err(format!("{at}: this token is listed twice"));
            }
            self.entries.push((token.to_string(), Grant { write, databases }));
        }
        Ok(())
    }

    /// The grant of `token`. Every entry is compared (in constant time), so
    /// the time taken does not tell which one matched.
    fn grant(&self, token: &str) -> Option<Grant> {
        let mut found = None;
        for (t, g) in &self.entries {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some(g.clone());
            }
        }
        found
    }
}

#[derive(Clone)]
pub struct Auth {
    /// `None`: the server runs open (only allowed on loopback).
    tokens: Option<std::sync::Arc<Tokens>>,
}

impl Auth {
    pub fn new(tokens: Option<Tokens>) -> Self {
        Auth { tokens: tokens.filter(|t| !t.is_empty()).map(std::sync::Arc::new) }
    }

    /// Check the version and the token; attach the caller's [`Grant`].
    pub fn check<T>(&self, mut req: Request<T>) -> Result<Request<T>, Status> {
        check_version(&req)?;
        let mut grant = match &self.tokens {
            None => Grant::full(),
            Some(tokens) => {
                let got = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
                match got {
                    None => {
                        return Err(Status::unauthenticated(
                            "missing token: send `authorization: Bearer <token>` (ATTACH '...?token=...' or OPENDUCK_TOKEN)",
                        ))
                    }
                    Some(t) => tokens.grant(t).ok_or_else(|| {
                        Status::unauthenticated("wrong token: it must be the server's --token / OPENDUCK_TOKEN or one of its --tokens-file")
                    })?,
                }
            }
        };
        match req.metadata().get(ACCESS_HEADER).map(|v| v.to_str()) {
            None => {}
            Some(Ok("read")) => grant.write = false,
            Some(_) => return Err(Status::invalid_argument(format!("malformed {ACCESS_HEADER} header: the only value is `read`"))),
        }
        req.extensions_mut().insert(grant);
        Ok(req)
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
        let auth = Auth::new(Some(Tokens::single("s3cret".into())));
        let mut ok = Request::new(());
        ok.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.check(ok).is_ok());
        let mut bad = Request::new(());
        bad.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(auth.check(bad).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.check(Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(Auth::new(None).check(Request::new(())).is_ok());
    }

    fn grant_for(tokens: &Tokens, token: &str, header: Option<&str>) -> Result<Grant, Status> {
        let mut r = Request::new(());
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(h) = header {
            r.metadata_mut().insert(ACCESS_HEADER, h.parse().unwrap());
        }
        let r = Auth::new(Some(tokens.clone())).check(r)?;
        Grant::of(&r)
    }

    #[test]
    fn scoped_tokens() {
        let mut tokens = Tokens::single("admin-token-0123456789".into());
        tokens
            .add_file(
                "# reporting\nreader-token-0123456789 read sales,hr\n\nwriter-token-0123456789 write sales  # the app\n",
                "tokens",
            )
            .unwrap();
        assert_eq!(grant_for(&tokens, "admin-token-0123456789", None).unwrap(), Grant::full());
        let reader = grant_for(&tokens, "reader-token-0123456789", None).unwrap();
        assert!(!reader.write);
        assert!(reader.check_database("hr").is_ok());
        let denied = reader.check_database("payroll").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("'payroll'") && denied.message().contains("'sales', 'hr'"), "{}", denied.message());
        assert_eq!(reader.check_upload().unwrap_err().code(), tonic::Code::PermissionDenied);
        let writer = grant_for(&tokens, "writer-token-0123456789", None).unwrap();
        assert!(writer.write && writer.check_database("hr").is_err());
        // The header only takes rights away.
        assert!(!grant_for(&tokens, "admin-token-0123456789", Some("read")).unwrap().write);
        assert_eq!(grant_for(&tokens, "admin-token-0123456789", Some("write")).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(grant_for(&tokens, "nope", None).unwrap_err().code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn bad_tokens_files_say_where() {
        for (text, want) in [
            ("abc read *", "at least 16"),
            ("reader-token-0123456789 admin *", "`read` or `write`"),
            ("reader-token-0123456789 read", "found 2 fields"),
            ("reader-token-0123456789 read ../x", "not a database name"),
            ("reader-token-0123456789 read a,,b", "not a database name"),
            ("reader-token-0123456789 read *\nreader-token-0123456789 write *", "tokens:2: this token is listed twice"),
        ] {
            let err = Tokens::default().add_file(text, "tokens").unwrap_err();
            assert!(err.contains(want) && err.starts_with("tokens:"), "{text:?}: {err}");
        }
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
