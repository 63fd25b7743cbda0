//! Errors the C API hands to the C++ side: a stable numeric code (so C++ can
//! throw the matching DuckDB exception type) and a user-facing message.

use openduck_proto::ClientError;

/// Error codes shared with `openduck_client.h` (`OPENDUCK_ERROR_*`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Bad arguments from the C++ side (null pointers, invalid UTF-8).
    InvalidInput = 1,
    Unreachable = 2,
    Unauthenticated = 3,
    NotFound = 4,
    InvalidArgument = 5,
    PermissionDenied = 6,
    FailedPrecondition = 7,
    Server = 8,
    Arrow = 9,
    /// A Rust panic caught at the FFI boundary.
    Internal = 10,
    Conflict = 11,
    Unavailable = 12,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("bad Arrow data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("internal error in the OpenDuck extension: {0}")]
    Internal(String),
}

impl ExtensionError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ExtensionError::InvalidInput(_) => ErrorCode::InvalidInput,
            ExtensionError::Arrow(_) => ErrorCode::Arrow,
            ExtensionError::Internal(_) => ErrorCode::Internal,
            ExtensionError::Client(c) => match c {
                ClientError::Unreachable { .. } | ClientError::BadEndpoint(_) => ErrorCode::Unreachable,
                ClientError::Unauthenticated(_) => ErrorCode::Unauthenticated,
                ClientError::NotFound(_) => ErrorCode::NotFound,
                ClientError::InvalidArgument(_) => ErrorCode::InvalidArgument,
                ClientError::PermissionDenied(_) => ErrorCode::PermissionDenied,
                ClientError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
                ClientError::Conflict(_) => ErrorCode::Conflict,
                ClientError::Unavailable(_) => ErrorCode::Unavailable,
                ClientError::Server { .. } => ErrorCode::Server,
                ClientError::Arrow(_) => ErrorCode::Arrow,
            },
        }
    }

    /// The message shown to the user (the server's messages already name
    /// the fix; add the one hint only the client can give).
    pub fn message(&self) -> String {
        match self {
            ExtensionError::Client(ClientError::Unauthenticated(m)) => format!(
                "authentication failed: {m} (pass the server's token as ?token=<token> in the ATTACH URL or set OPENDUCK_TOKEN)"
            ),
            ExtensionError::Client(ClientError::BadEndpoint(e)) => {
                format!("invalid endpoint '{e}': expected e.g. ?endpoint=http://localhost:7878 (or set OPENDUCK_ENDPOINT)")
            }
            e => e.to_string(),
        }
    }
}

pub type ExtensionResult<T> = Result<T, ExtensionError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_names_the_fix() {
        let e = ExtensionError::from(ClientError::Unauthenticated("wrong token".into()));
        assert_eq!(e.code(), ErrorCode::Unauthenticated);
        assert!(e.message().contains("OPENDUCK_TOKEN"));
    }

    #[test]
    fn codes_follow_client_errors() {
        let e = ExtensionError::from(ClientError::NotFound("unknown database 'x'".into()));
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(e.message(), "unknown database 'x'");
    }
}
