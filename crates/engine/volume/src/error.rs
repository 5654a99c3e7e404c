//! What can go wrong with volumes, in Docker's words, classified by [`berth_core::ErrorKind`].
//!
//! Docker prefixes a volume error with the operation and the volume (`create foo: ...`,
//! `remove foo: volume is in use - [...]`, `get foo: no such volume`); clients and users know
//! these messages, so the variants below print them the same way.

use std::io;
use std::path::PathBuf;

use berth_core::{ErrorKind, HasKind};

/// Docker's `names.RestrictedNameChars`: what a local volume name may contain.
pub const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Docker answers every lookup of an unknown volume this way (remove and inspect too).
    #[error("get {name}: no such volume")]
    NotFound { name: String },
    #[error("create {name}: {reason}")]
    InvalidName { name: String, reason: NameError },
    /// Only the built-in `local` driver exists; Docker says 404 for an unknown plugin.
    #[error(
        "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
    )]
    DriverNotFound { name: String, driver: String },
    #[error("create {name}: {reason}")]
    InvalidOption { name: String, reason: OptionError },
    /// A directory of that name is in the store's root but is not a usable volume (its metadata
    /// could not be read; see the warnings of [`crate::VolumeStore::list`]).
    #[error("create {name}: volume already exists under {}", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("remove {name}: volume is in use - [{}]", refs.join(", "))]
    InUse { name: String, refs: Vec<String> },
    #[error("remove {name}: volume has active mounts")]
    ActiveMounts { name: String },
    /// Something other than the volume's own mount is mounted inside its directory; deleting
    /// the directory would delete what that mount shows, so it is left alone.
    #[error("remove {name}: {} is still mounted", mount_point.display())]
    StillMounted { name: String, mount_point: PathBuf },
    /// A `filters` value Docker would refuse, with Docker's message.
    #[error("{0}")]
    InvalidFilter(String),
    /// `data` has any `password=` value masked, as Docker does for CIFS.
    #[error("failed to mount local volume: mount {device}:{}, flags: {flags:#x}, data: {data}: {source}", target.display())]
    Mount {
        device: String,
        target: PathBuf,
        flags: u64,
        data: String,
        source: io::Error,
    },
    #[error("failed to unmount {}: {source}", target.display())]
    Unmount { target: PathBuf, source: io::Error },
    #[error("copy-up into volume {name}: {path} is not a directory")]
    SourceNotDirectory { name: String, path: String },
    #[error("copy-up into volume {name}: source {} is a symbolic link", path.display())]
    SourceIsSymlink { name: String, path: PathBuf },
    /// One entry of a copy-up failed; `path` is relative to the source directory.
    #[error("copy-up into volume {name}: {op} {path}: {source}")]
    CopyUp {
        name: String,
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("{} is used by another process (is another berth daemon running?)", root.display())]
    Locked { root: PathBuf },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Why a volume name was refused (Docker's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("volume name is too short, names should be at least two alphanumeric characters")]
    TooShort,
    #[error("{name:?} includes invalid characters for a local volume name, only \"{NAME_CHARS}\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidCharacters { name: String },
}

/// Why the local driver's options were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("invalid option key: {0:?}")]
    UnknownKey(String),
    #[error("missing required option: {0:?}")]
    Missing(&'static str),
    #[error("missing device in volume options")]
    MissingDevice,
}

impl VolumeError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| VolumeError::Io { what, path, source }
    }

    pub(crate) fn not_found(name: &str) -> Self {
        VolumeError::NotFound {
            name: name.to_string(),
        }
    }
}

impl HasKind for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::NotFound { .. } | VolumeError::DriverNotFound { .. } => {
                ErrorKind::NotFound
            }
            VolumeError::InvalidName { .. }
            | VolumeError::InvalidOption { .. }
            | VolumeError::InvalidFilter(_)
            | VolumeError::SourceNotDirectory { .. }
            | VolumeError::SourceIsSymlink { .. } => ErrorKind::InvalidArgument,
            VolumeError::Exists { .. } => ErrorKind::AlreadyExists,
            VolumeError::InUse { .. }
            | VolumeError::ActiveMounts { .. }
            | VolumeError::StillMounted { .. } => ErrorKind::Conflict,
            VolumeError::Locked { .. } => ErrorKind::Unavailable,
            VolumeError::Mount { .. }
            | VolumeError::Unmount { .. }
            | VolumeError::CopyUp { .. }
            | VolumeError::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = VolumeError> = std::result::Result<T, E>;
