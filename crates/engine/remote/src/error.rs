//! What can go wrong talking to a registry, and how each failure is classified.

use std::path::PathBuf;

use berth_core::{Digest, ErrorKind, HasKind};
use reqwest::StatusCode;
use serde::Deserialize;

/// A failed registry operation. `what` fields name the object asked for, e.g.
/// `manifest localhost:5000/app:1.0` or `blob localhost:5000/app@sha256:...`.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The registry host name cannot be made into a URL.
    #[error("invalid registry host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    /// A repository name, tag or digest that cannot be put in a request path.
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: String, reason: String },

    /// No connection could be made, or it broke while sending or receiving. The message
    /// carries the whole cause chain (`connection refused`, a TLS error, ...).
    #[error("registry {host} unreachable: {}", error_chain(.error))]
    Unreachable { host: String, error: reqwest::Error },

    /// The registry does not have the manifest, blob or repository.
    #[error("{what} not found: {code}: {message}")]
    NotFound {
        what: String,
        code: String,
        message: String,
    },

    /// Credentials are missing or were refused (by the registry or its token server).
    #[error("{what}: unauthorized (registry {host}): {message}")]
    Unauthorized {
        host: String,
        what: String,
        message: String,
    },

    /// The credentials were accepted but do not allow the operation.
    #[error("{what}: denied (registry {host}): {message}")]
    Forbidden {
        host: String,
        what: String,
        message: String,
    },

    /// Any other error status from the registry, with its error code when it sent one.
    #[error("{what}: registry {host} answered {status}: {code}: {message}")]
    Registry {
        host: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },

    /// The token server answered with something other than a token.
    #[error("token server {realm} for registry {host}: {reason}")]
    Token {
        host: String,
        realm: String,
        reason: String,
    },

    /// The registry answered, but not in a way the distribution API allows.
    #[error("{what}: bad response from registry {host}: {reason}")]
    Protocol {
        host: String,
        what: String,
        reason: String,
    },

    /// Content does not hash to the digest it was asked for or announced with.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    /// A manifest larger than the client accepts.
    #[error("{what}: manifest larger than {limit} bytes")]
    ManifestTooLarge { what: String, limit: usize },

    /// A local file (a blob to push, a docker config) could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A docker config.json that is not valid.
    #[error("docker config {path}: {reason}")]
    DockerConfig { path: PathBuf, reason: String },
}

impl HasKind for RemoteError {
    fn kind(&self) -> ErrorKind {
        match self {
            RemoteError::InvalidHost { .. }
            | RemoteError::InvalidArgument { .. }
            | RemoteError::DigestMismatch { .. }
            | RemoteError::ManifestTooLarge { .. } => ErrorKind::InvalidArgument,
            RemoteError::Unreachable { .. }
            | RemoteError::Token { .. }
            | RemoteError::Protocol { .. } => ErrorKind::Unavailable,
            RemoteError::NotFound { .. } => ErrorKind::NotFound,
            RemoteError::Unauthorized { .. } => ErrorKind::Unauthorized,
            RemoteError::Forbidden { .. } => ErrorKind::Forbidden,
            RemoteError::Registry { status, .. } => {
                if *status >= 500 {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::InvalidArgument
                }
            }
            RemoteError::Io { source, .. } => HasKind::kind(source),
            RemoteError::DockerConfig { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// `outer: inner: innermost`, as reqwest's own message leaves out the cause.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !out.contains(&cause_text) {
            out.push_str(": ");
            out.push_str(&cause_text);
        }
        source = cause.source();
    }
    out
}

/// The error body of the distribution API: `{"errors":[{"code":..,"message":..}]}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Turns an error status and its body into the matching [`RemoteError`].
pub(crate) fn status_error(host: &str, what: &str, status: StatusCode, body: &[u8]) -> RemoteError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let first = &parsed.errors[0];
            let message = parsed
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            (first.code.clone(), message)
        }
        _ => (
            status.canonical_reason().unwrap_or("error").to_uppercase(),
            String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string(),
        ),
    };
    let (host, what) = (host.to_string(), what.to_string());
    match (status, code.as_str()) {
        (_, "UNAUTHORIZED") | (StatusCode::UNAUTHORIZED, _) => RemoteError::Unauthorized {
            host,
            what,
            message,
        },
        (_, "DENIED") | (StatusCode::FORBIDDEN, _) => RemoteError::Forbidden {
            host,
            what,
            message,
        },
        (_, "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN")
        | (StatusCode::NOT_FOUND, _) => RemoteError::NotFound {
            what,
            code,
            message,
        },
        _ => RemoteError::Registry {
            host,
            what,
            status: status.as_u16(),
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_codes_map_to_kinds() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        let err = status_error("h", "manifest h/app:1", StatusCode::NOT_FOUND, body);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("manifest h/app:1"), "{err}");

        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        let err = status_error("h", "x", StatusCode::UNAUTHORIZED, body);
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        let err = status_error("h", "x", StatusCode::FORBIDDEN, body);
        assert_eq!(err.kind(), ErrorKind::Forbidden);

        let body = br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#;
        let err = status_error("h", "x", StatusCode::BAD_REQUEST, body);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);

        let err = status_error("h", "x", StatusCode::BAD_GATEWAY, b"<html>oops</html>");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("oops"), "{err}");
    }
}
