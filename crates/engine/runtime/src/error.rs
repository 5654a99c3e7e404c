//! The runtime's error type. Each variant names what went wrong and where, so the
//! command line can print it as one clear line.

use std::path::PathBuf;

/// Shorthand used across the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json could not be read or parsed.
    #[error("{path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },

    /// A field of the config is well formed but cannot be honoured on this host.
    #[error("config.json: {field}: {reason}")]
    Unsupported { field: String, reason: String },

    /// A field of the config has a value the runtime rejects.
    #[error("config.json: {field}: {reason}")]
    InvalidField { field: String, reason: String },

    /// A command-line argument or input document is wrong.
    #[error("{0}")]
    InvalidArgument(String),

    #[error("container id {0:?} is not valid: use letters, digits, '_', '+', '-' and '.' only")]
    InvalidId(String),

    #[error("container {0:?} already exists")]
    AlreadyExists(String),

    #[error("container {0:?} does not exist")]
    NotFound(String),

    /// The operation does not fit the container's current status.
    #[error("container {id:?} is {status}: cannot {action}")]
    WrongState {
        id: String,
        status: String,
        action: &'static str,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Sys { context: String, source: nix::Error },

    #[error("cgroups: {0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),

    #[error("seccomp: {0}")]
    Seccomp(#[from] berth_seccomp::SeccompError),

    /// The container's init process reported a failure while setting up.
    #[error("{0}")]
    Init(String),

    #[error("{phase} hook {path}: {reason}")]
    Hook {
        phase: &'static str,
        path: PathBuf,
        reason: String,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            context: context.into(),
            source,
        }
    }
}

/// Attach a context line to I/O and syscall results.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}
