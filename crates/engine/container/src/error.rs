//! What can go wrong with containers, in Docker's words, classified by [`ErrorKind`].

use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("No such exec instance: {0}")]
    ExecNotFound(String),
    /// A path inside a container (`docker cp`).
    #[error("Could not find the file {path} in container {container}")]
    NoSuchPath { path: String, container: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    /// The request does not fit the container's state (Docker answers 409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Forbidden(String),
    /// The runtime or the monitor refused to run the container; the message is theirs.
    #[error("{0}")]
    Runtime(String),
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::SnapshotError),
    #[error(transparent)]
    Spec(#[from] crate::spec::Error),
    #[error(transparent)]
    Volume(#[from] berth_volume::VolumeError),
    #[error(transparent)]
    Network(#[from] berth_network::NetworkError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl ContainerError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
        let what = what.into();
        move |source| ContainerError::Io { what, source }
    }
}

impl HasKind for ContainerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_)
            | ContainerError::ExecNotFound(_)
            | ContainerError::NoSuchPath { .. } => ErrorKind::NotFound,
            ContainerError::NameInUse { .. } | ContainerError::Conflict(_) => ErrorKind::Conflict,
            ContainerError::BadName(_) | ContainerError::Invalid(_) => ErrorKind::InvalidArgument,
            ContainerError::Unsupported(_) => ErrorKind::NotImplemented,
            ContainerError::Forbidden(_) => ErrorKind::Forbidden,
            // Docker answers 400 when the command cannot be run at all (the CLI then
            // exits 127 or 126 from the message).
            ContainerError::Runtime(m)
                if m.contains("executable file not found")
                    || m.contains("no such file or directory")
                    || m.contains("permission denied") =>
            {
                ErrorKind::InvalidArgument
            }
            ContainerError::Runtime(_) | ContainerError::Io { .. } => ErrorKind::Internal,
            ContainerError::Image(e) => e.kind(),
            ContainerError::Snapshot(e) => e.kind(),
            ContainerError::Spec(e) => e.kind(),
            ContainerError::Volume(e) => e.kind(),
            ContainerError::Network(e) => e.kind(),
        }
    }
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;
