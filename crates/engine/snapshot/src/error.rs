//! The one error type of the snapshotters, classified by [`berth_core::ErrorKind`].

use std::io;
use std::path::PathBuf;

use berth_core::{ErrorKind, HasKind};

use crate::Kind;

/// Everything a snapshotter or a mount helper can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this key or name.
    #[error("snapshot {key:?} not found")]
    NotFound { key: String },
    /// A snapshot with this key or name already exists.
    #[error("snapshot {key:?} already exists")]
    AlreadyExists { key: String },
    /// The snapshot is the parent of other snapshots and cannot be removed.
    #[error("snapshot {key:?} is the parent of {children} other snapshot(s)")]
    HasChildren { key: String, children: usize },
    /// The operation needs an active snapshot (commit, layer_target, diff_source).
    #[error("snapshot {key:?} is {kind:?}, not active")]
    NotActive { key: String, kind: Kind },
    /// A parent must be a committed snapshot.
    #[error("parent {parent:?} of {key:?} is {kind:?}, not committed")]
    ParentNotCommitted {
        key: String,
        parent: String,
        kind: Kind,
    },
    /// Keys and names must be non-empty.
    #[error("invalid snapshot key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// The snapshotter root cannot be used.
    #[error("invalid snapshotter root {path}: {reason}")]
    InvalidRoot { path: PathBuf, reason: &'static str },
    /// A file-system operation on the snapshotter's own directories failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("snapshot metadata: {source}")]
    Metadata {
        #[source]
        source: Box<redb::Error>,
    },
    /// A metadata record could not be decoded.
    #[error("corrupt metadata record for {key:?}: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A mount kind other than "overlay" or "bind", or an option the helper does not know.
    #[error("unsupported mount {kind:?} option {option:?}")]
    UnsupportedMount { kind: String, option: String },
    /// Even with paths made relative, the overlay options do not fit in one page.
    #[error("overlay options for {target} are {len} bytes, more than a page even when shortened")]
    MountDataTooLong { target: PathBuf, len: usize },
    /// mount(2) failed.
    #[error("mount {kind} {source_path} on {target}: {source}")]
    Mount {
        kind: String,
        source_path: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    /// umount(2) failed.
    #[error("unmount {target}: {source}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SnapshotError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SnapshotError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for SnapshotError {
            fn from(e: $t) -> Self {
                SnapshotError::Metadata { source: Box::new(e.into()) }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl HasKind for SnapshotError {
    fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            SnapshotError::HasChildren { .. } | SnapshotError::NotActive { .. } => {
                ErrorKind::Conflict
            }
            SnapshotError::ParentNotCommitted { .. }
            | SnapshotError::InvalidKey { .. }
            | SnapshotError::InvalidRoot { .. }
            | SnapshotError::UnsupportedMount { .. }
            | SnapshotError::MountDataTooLong { .. } => ErrorKind::InvalidArgument,
            SnapshotError::Io { .. }
            | SnapshotError::Metadata { .. }
            | SnapshotError::Corrupt { .. }
            | SnapshotError::Mount { .. }
            | SnapshotError::Unmount { .. } => ErrorKind::Internal,
        }
    }
}
