//! What can go wrong with images, classified for the API by [`berth_core::ErrorKind`].

use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error(transparent)]
    Reference(#[from] berth_core::ReferenceError),
    #[error(transparent)]
    Content(#[from] berth_content::ContentError),
    #[error(transparent)]
    Metadata(#[from] crate::metadata::MetadataError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::SnapshotError),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
    #[error(transparent)]
    Remote(#[from] berth_remote::RemoteError),
    /// Docker's wording, which clients and users recognise.
    #[error("conflict: unable to delete {id} (must be forced) - {reason}")]
    InUse { id: String, reason: String },
    #[error("layer {layer}: its uncompressed content has digest {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0} is not supported by berth")]
    Unsupported(String),
}

impl ImageError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Io { what, source }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> ImageError {
        ImageError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::Reference(e) => e.kind(),
            ImageError::Content(e) => e.kind(),
            ImageError::Metadata(e) => e.kind(),
            ImageError::Manifest(e) => e.kind(),
            ImageError::Snapshot(e) => e.kind(),
            ImageError::Archive(e) => e.kind(),
            ImageError::Remote(e) => e.kind(),
            ImageError::InUse { .. } => ErrorKind::Conflict,
            ImageError::DiffIdMismatch { .. } | ImageError::Invalid { .. } => {
                ErrorKind::InvalidArgument
            }
            ImageError::Io { .. } => ErrorKind::Internal,
            ImageError::Unsupported(_) => ErrorKind::NotImplemented,
        }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
