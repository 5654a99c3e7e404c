//! The errors of this crate: one enum, with the entry or path that failed and why.

use std::io;
use std::path::PathBuf;

use berth_core::{ErrorKind, HasKind};

/// Why a layer entry was refused. Each of these is a property of the layer, not of the host:
/// applying the same layer again fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A `..` component would leave the target directory.
    #[error("path escapes the target")]
    PathEscapes,
    /// The name is empty, or is only `.` (the target itself cannot be replaced).
    #[error("empty path")]
    EmptyPath,
    /// A parent of the entry is a symlink inside the target; it is never followed.
    #[error("parent {component:?} is a symlink")]
    ParentIsSymlink { component: String },
    /// A parent of the entry exists and is not a directory.
    #[error("parent {component:?} is not a directory")]
    ParentNotDirectory { component: String },
    /// A hard link names a target outside the target directory.
    #[error("hard link target {link:?} escapes the target")]
    LinkEscapes { link: String },
    /// A hard link's target does not exist (yet) in the target directory.
    #[error("hard link target {link:?} does not exist")]
    LinkTargetMissing { link: String },
    /// A hard link's target is a directory.
    #[error("hard link target {link:?} is a directory")]
    LinkTargetIsDirectory { link: String },
    /// A character or block device while `ApplyOptions::allow_devices` is false.
    #[error("device files are not allowed")]
    DeviceNotAllowed,
    /// An xattr that only overlayfs may set (`trusted.overlay.*`): a layer must not forge
    /// opaque markers, redirects or metacopy pointers.
    #[error("xattr {name:?} is reserved for overlayfs")]
    ReservedXattr { name: String },
    /// A tar entry type that a layer cannot carry (sparse files, multi-volume parts, ...).
    #[error("unsupported tar entry type {flag:?}")]
    UnsupportedType { flag: char },
}

/// Everything that can go wrong reading, applying or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The layer carries an entry that would be unsafe or cannot be represented.
    #[error("layer entry {entry:?}: {reason}")]
    Refused { entry: String, reason: Refusal },
    /// The tar stream itself is broken: a bad header, or the stream ends inside an entry.
    #[error("malformed tar stream at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    /// Reading the layer stream failed (including a corrupt compressed stream).
    #[error("reading the layer stream: {0}")]
    Read(#[source] io::Error),
    /// A file system operation for one entry failed.
    #[error("layer entry {entry:?}: {op}: {source}")]
    Apply {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// An xattr of an entry could not be set.
    #[error("layer entry {entry:?}: set xattr {name:?}: {source}")]
    Xattr {
        entry: String,
        name: String,
        #[source]
        source: io::Error,
    },
    /// Opening the extraction target failed.
    #[error("target {path:?}: {source}")]
    Target {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading a tree to archive failed.
    #[error("{op} {path:?}: {source}")]
    Tree {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A tree holds something that a layer cannot express (an overlayfs redirect or metacopy
    /// file, a path that is not valid in a tar header).
    #[error("{path:?}: {reason}")]
    Unrepresentable { path: PathBuf, reason: String },
    /// Writing the archive (or the compressor) failed.
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
}

impl ArchiveError {
    pub(crate) fn refused(entry: &str, reason: Refusal) -> Self {
        ArchiveError::Refused {
            entry: entry.to_owned(),
            reason,
        }
    }

    pub(crate) fn apply(entry: &str, op: &'static str, source: io::Error) -> Self {
        ArchiveError::Apply {
            entry: entry.to_owned(),
            op,
            source,
        }
    }

    pub(crate) fn tree(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        ArchiveError::Tree {
            path: path.into(),
            op,
            source,
        }
    }
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Refused { .. } | ArchiveError::Malformed { .. } => {
                ErrorKind::InvalidArgument
            }
            ArchiveError::Read(e) => match e.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::UnexpectedEof => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            ArchiveError::Unrepresentable { .. } => ErrorKind::NotImplemented,
            ArchiveError::Target { source, .. } => HasKind::kind(source),
            ArchiveError::Apply { .. }
            | ArchiveError::Xattr { .. }
            | ArchiveError::Tree { .. }
            | ArchiveError::Write(_) => ErrorKind::Internal,
        }
    }
}
