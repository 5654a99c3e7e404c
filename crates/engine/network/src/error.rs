//! What can go wrong with networks, in Docker's words, classified by [`berth_core::ErrorKind`].

use std::net::IpAddr;

use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    NameExists(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse { name: String, id: String },
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap,
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoPool,
    #[error("no available addresses in subnet {0}")]
    Exhausted(String),
    #[error("Address already in use: {0}")]
    AddressInUse(IpAddr),
    #[error("Bind for {host}:{port} failed: port is already allocated")]
    PortAllocated { host: String, port: u16 },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Firewall(#[from] crate::firewall::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl NetworkError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
        let what = what.into();
        move |source| NetworkError::Io { what, source }
    }
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::NameExists(_) => ErrorKind::Conflict,
            NetworkError::Predefined(_) | NetworkError::InUse { .. } | NetworkError::Overlap => {
                ErrorKind::Forbidden
            }
            NetworkError::Forbidden(_) => ErrorKind::Forbidden,
            NetworkError::Invalid(_) | NetworkError::AddressInUse(_) => ErrorKind::InvalidArgument,
            NetworkError::Unsupported(_) => ErrorKind::NotImplemented,
            NetworkError::NoPool
            | NetworkError::Exhausted(_)
            | NetworkError::PortAllocated { .. }
            | NetworkError::Netlink(_)
            | NetworkError::Firewall(_)
            | NetworkError::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
