//! berth-network: container networks as Docker's bridge driver makes them.
//!
//! [`service`] tells the story of a container on a bridge network; the pieces:
//! - [`ipam`]: which subnet a network gets and which address each endpoint gets in it.
//! - [`netlink`]: links, addresses and routes through rtnetlink (bridges, veth pairs, a
//!   container's `eth0`), in the daemon's namespace or in a container's.
//! - [`firewall`]: the netfilter rules berth needs (masquerading, published ports,
//!   isolation), rendered from the networks' state into berth's own table and replaced as one.
//! - [`ports`]: host ports held by bound sockets, so published ports need no proxy process.
//! - [`dns`]: the embedded DNS server containers on user-defined networks query at
//!   127.0.0.11: container names and aliases, everything else forwarded to the host's resolvers.
//! - [`model`]: network records and what a container's record keeps of its endpoints.

pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod model;
pub mod netlink;
pub mod ports;
pub mod service;

pub use error::{NetworkError, Result};
pub use model::{Endpoint, EndpointRequest, NetworkRecord, PortRequest, Proto, PublishedPort};
pub use service::{Attached, Config, CreateRequest, NetworkService, SandboxSpec};
