//! The network's records: networks as the store keeps them, and what a container's record
//! keeps of its endpoints and published ports.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};

/// The networks every engine has: `bridge` (the default), `host` and `none`.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// One subnet of a network and its gateway (the bridge's own address in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

/// A network as `<root>/<id>.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub driver: Driver,
    /// The bridge's interface name (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub subnets: Vec<SubnetConfig>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl NetworkRecord {
    pub fn predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    pub fn v4(&self) -> Option<&SubnetConfig> {
        self.subnets
            .iter()
            .find(|s| matches!(s.subnet, IpNet::V4(_)))
    }

    pub fn v6(&self) -> Option<&SubnetConfig> {
        self.subnets
            .iter()
            .find(|s| matches!(s.subnet, IpNet::V6(_)))
    }

    pub fn load(path: &Path) -> Result<NetworkRecord> {
        let bytes = std::fs::read(path).map_err(NetworkError::io(format!(
            "reading network record {}",
            path.display()
        )))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| NetworkError::Invalid(format!("network record {}: {e}", path.display())))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("records serialize");
        write_atomic(&dir.join(format!("{}.json", self.id)), &bytes)
    }
}

/// Written to a temporary file, synced, renamed over the old one, the directory synced: a
/// crash leaves the old record or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("record");
    let tmp = dir.join(format!(".{name}.tmp"));
    let what = || format!("writing {}", path.display());
    let mut f = std::fs::File::create(&tmp).map_err(NetworkError::io(what()))?;
    f.write_all(bytes).map_err(NetworkError::io(what()))?;
    f.sync_all().map_err(NetworkError::io(what()))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(NetworkError::io(what()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What a container asks of one network (`--network-alias`, `--ip`, `--ip6`), kept in its
/// record from create (or connect) on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ipv4: Option<IpAddr>,
    #[serde(default)]
    pub ipv6: Option<IpAddr>,
}

/// A container's attachment to a network while it runs: its interface, addresses and the
/// names it answers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub endpoint_id: String,
    /// Inside the container: `eth0`, `eth1`...
    pub interface: String,
    /// On the host, enslaved to the network's bridge.
    pub host_veth: String,
    pub mac: String,
    pub ipv4: Option<IpNet>,
    pub gateway4: Option<IpAddr>,
    pub ipv6: Option<IpNet>,
    pub gateway6: Option<IpAddr>,
    pub aliases: Vec<String>,
    /// The names the embedded DNS server answers with this endpoint's addresses.
    pub dns_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl FromStr for Proto {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Proto> {
        match s {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(NetworkError::Invalid(format!(
                "invalid proto: {other} (berth publishes tcp and udp ports)"
            ))),
        }
    }
}

/// A port to publish, as asked: `-p [ip:][hostport[-end]:]port[/proto]` or `-P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Option<IpAddr>,
    /// `(0, 0)`: any free port; `(a, a)`: that port; `(a, b)`: the first free one of a range.
    pub host_ports: (u16, u16),
}

/// A port as published: what `docker port` and `ps` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub proto: Proto,
    pub container_port: u16,
    /// `0.0.0.0` when published on every address.
    pub host_ip: IpAddr,
    pub host_port: u16,
}
