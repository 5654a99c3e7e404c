//! Error classes shared by every engine crate.
//!
//! Each library keeps its own error enum with structured fields; it also implements [`HasKind`]
//! so that callers (the API server above all) can react to the class of failure without
//! matching on another crate's variants.

use std::fmt;

/// What kind of failure an error is, independent of which store raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object asked for does not exist (HTTP 404).
    NotFound,
    /// An object with that name or key already exists (HTTP 409).
    AlreadyExists,
    /// The request conflicts with the current state, e.g. an image still in use (HTTP 409).
    Conflict,
    /// The request itself is malformed: bad reference, bad digest, bad archive (HTTP 400).
    InvalidArgument,
    /// Credentials are missing or wrong (HTTP 401).
    Unauthorized,
    /// Credentials were accepted but do not allow this (HTTP 403).
    Forbidden,
    /// A remote service could not be reached or answered with an error (HTTP 502/503).
    Unavailable,
    /// The feature is not implemented by berth (HTTP 501).
    NotImplemented,
    /// Anything else: I/O failures, corrupt state (HTTP 500).
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// Implemented by every library error so callers can classify it.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

impl HasKind for std::io::Error {
    fn kind(&self) -> ErrorKind {
        match std::io::Error::kind(self) {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidArgument
            }
            std::io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
            _ => ErrorKind::Internal,
        }
    }
}
