//! berth-network: container networks as Docker's bridge driver makes them.
//!
//! - [`netlink`]: links, addresses and routes through rtnetlink (bridges, veth pairs, a
//!   container's `eth0`), in the daemon's namespace or in a container's.
//! - [`firewall`]: the netfilter rules berth needs (masquerading, published ports,
//!   isolation), rendered from the networks' state into berth's own table and replaced as one.
//! - [`dns`]: the embedded DNS server containers on user-defined networks query at
//!   127.0.0.11: container names and aliases, everything else forwarded to the host's resolvers.

pub mod dns;
pub mod firewall;
pub mod netlink;
