//! The networks of one engine and the containers attached to them.
//!
//! The story of a container on a bridge network, as [`NetworkService`] tells it:
//! 1. The network exists: a record in the store and a Linux bridge with the gateway's
//!    address ([`NetworkService::create`], or the default `bridge` at first start). Its
//!    masquerading and isolation rules are in berth's own netfilter table.
//! 2. The engine makes the container's network namespace and calls
//!    [`NetworkService::attach`]: per network an address is allocated ([`crate::ipam`]),
//!    a veth pair is made with one end on the bridge and the other in the namespace as
//!    `eth0` (`eth1`...), addressed, with the default route through the first network's
//!    gateway; published ports are reserved and get DNAT rules; containers on user-defined
//!    networks get the embedded DNS server at 127.0.0.11 ([`crate::dns`]).
//! 3. The engine keeps the resulting [`Endpoint`]s in the container's record: after a
//!    daemon restart [`NetworkService::restore`] rebuilds allocations, reservations, rules
//!    and DNS from them, so nothing about the live network is stored twice.
//! 4. When the container stops, [`NetworkService::detach`] removes its veths, releases its
//!    addresses and ports, and drops its rules.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use ipnet::{IpNet, Ipv4Net};

use crate::dns;
use crate::error::{NetworkError, Result};
use crate::firewall;
use crate::ipam::{self, Pool, SubnetAllocator};
use crate::model::{
    Driver, Endpoint, EndpointRequest, NetworkRecord, PortRequest, PublishedPort, SubnetConfig,
    PREDEFINED,
};
use crate::netlink::{self, Handle};
use crate::ports::{self, Reservation};

pub struct Config {
    /// Where network records are kept (`<data-root>/network`).
    pub root: PathBuf,
    /// The default network's bridge (`berth0`); `None` (`--bridge none`): no default
    /// bridge network, containers without `--network` get none.
    pub default_bridge: Option<String>,
    /// `--bip`: the default bridge's address and prefix, e.g. `172.30.0.1/16`.
    pub bip: Option<Ipv4Net>,
    /// `--default-address-pool`s; Docker's pools when empty.
    pub pools: Vec<Pool>,
    pub mtu: Option<u32>,
    /// The host's resolver configuration, for the embedded DNS server's upstreams.
    pub resolv_conf: PathBuf,
    /// `--firewall-backend`: `None` picks nftables when `nft` works, iptables otherwise.
    pub firewall: Option<firewall::Backend>,
}

/// What [`NetworkService::create`] is asked: `POST /networks/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    /// `(subnet, gateway, ip_range)` as given.
    pub ipam: Vec<(String, String, String)>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A container's view of the network while it runs.
pub struct SandboxSpec<'a> {
    pub container_id: &'a str,
    pub name: &'a str,
    /// Only when set by the user: the embedded DNS answers it too.
    pub hostname: Option<&'a str>,
    pub netns: &'a Path,
    /// Network (id or name) and what is asked of it; the first gives the default route
    /// and carries the published ports.
    pub networks: &'a [(String, EndpointRequest)],
    pub ports: &'a [PortRequest],
    /// `--dns`: the embedded server's upstreams instead of the host's.
    pub dns: &'a [IpAddr],
}

/// What [`NetworkService::attach`] made: kept in the container's record.
#[derive(Debug, Clone, Default)]
pub struct Attached {
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<PublishedPort>,
}

struct Net {
    rec: NetworkRecord,
    v4: Option<SubnetAllocator>,
    v6: Option<SubnetAllocator>,
}

struct Sandbox {
    name: String,
    netns: PathBuf,
    endpoints: Vec<Endpoint>,
    ports: Vec<PublishedPort>,
    /// Held, not read: dropping them frees the host ports.
    #[allow(dead_code)]
    reservations: Vec<Reservation>,
    dns_upstreams: Vec<SocketAddr>,
    dns: Option<dns::DnsServer>,
}

#[derive(Default)]
struct State {
    networks: BTreeMap<String, Net>,
    sandboxes: HashMap<String, Sandbox>,
}

pub struct NetworkService {
    cfg: Config,
    firewall: Option<firewall::Backend>,
    state: Mutex<State>,
    /// What berth changed on the host, or could not do, for `docker info`.
    notes: Mutex<Vec<String>>,
    /// The table holds rules this daemon wrote.
    wrote_rules: std::sync::atomic::AtomicBool,
    me: Weak<NetworkService>,
}

impl NetworkService {
    /// Loads the networks, makes the predefined ones on first start, and makes sure every
    /// bridge exists (after a reboot they do not) with its rules.
    pub fn open(cfg: Config) -> Result<Arc<NetworkService>> {
        std::fs::create_dir_all(&cfg.root)
            .map_err(NetworkError::io(format!("creating {}", cfg.root.display())))?;
        let mut notes = Vec::new();
        let detected = match cfg.firewall {
            Some(b) => Ok(b),
            None => firewall::Backend::detect(),
        };
        let firewall = match detected {
            Ok(b) => Some(b),
            Err(e) => {
                notes.push(format!(
                    "no netfilter tool works ({e}): containers on bridge networks get no outbound NAT or published ports"
                ));
                None
            }
        };
        let svc = Arc::new_cyclic(|me| NetworkService {
            cfg,
            firewall,
            state: Mutex::new(State::default()),
            notes: Mutex::new(notes),
            wrote_rules: std::sync::atomic::AtomicBool::new(false),
            me: me.clone(),
        });
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&svc.cfg.root)
            .map_err(NetworkError::io("listing networks"))?
            .flatten()
        {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                // A write that a crash interrupted.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                records.push(NetworkRecord::load(&path)?);
            }
        }
        {
            let mut st = svc.state.lock().expect("network state");
            for rec in records {
                // `--bridge none`: the default bridge of an earlier start stays on disk only.
                if rec.name == "bridge" && svc.cfg.default_bridge.is_none() {
                    continue;
                }
                st.networks.insert(rec.id.clone(), Net::new(rec));
            }
        }
        svc.ensure_predefined()?;
        let bridges: Vec<NetworkRecord> = svc
            .state
            .lock()
            .expect("network state")
            .networks
            .values()
            .filter(|n| n.rec.driver == Driver::Bridge)
            .map(|n| n.rec.clone())
            .collect();
        for rec in &bridges {
            svc.make_bridge(rec)?;
        }
        svc.sync_firewall()?;
        Ok(svc)
    }

    fn ensure_predefined(&self) -> Result<()> {
        let have = |name: &str| {
            self.state
                .lock()
                .expect("network state")
                .networks
                .values()
                .any(|n| n.rec.name == name)
        };
        for name in PREDEFINED {
            if have(name) || (name == "bridge" && self.cfg.default_bridge.is_none()) {
                continue;
            }
            let mut rec = NetworkRecord {
                id: random_hex(64),
                name: name.to_string(),
                created: now(),
                driver: match name {
                    "bridge" => Driver::Bridge,
                    "host" => Driver::Host,
                    _ => Driver::Null,
                },
                bridge: String::new(),
                internal: false,
                attachable: false,
                enable_ipv6: false,
                subnets: Vec::new(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
            };
            if name == "bridge" {
                rec.bridge = self.cfg.default_bridge.clone().unwrap_or_default();
                let (subnet, gateway) = match self.cfg.bip {
                    Some(bip) => (IpNet::V4(bip.trunc()), IpAddr::V4(bip.addr())),
                    None => {
                        let taken = self.taken_subnets(&[])?;
                        let pools = self.pools();
                        let s = ipam::pick_subnet(&pools, &taken).ok_or(NetworkError::NoPool)?;
                        (IpNet::V4(s), ipam::first_host(&IpNet::V4(s)))
                    }
                };
                rec.subnets.push(SubnetConfig { subnet, gateway });
                rec.options.insert(
                    "com.docker.network.bridge.default_bridge".into(),
                    "true".into(),
                );
                rec.options
                    .insert("com.docker.network.bridge.name".into(), rec.bridge.clone());
            }
            rec.save(&self.cfg.root)?;
            self.state
                .lock()
                .expect("network state")
                .networks
                .insert(rec.id.clone(), Net::new(rec));
        }
        Ok(())
    }

    fn pools(&self) -> Vec<Pool> {
        if self.cfg.pools.is_empty() {
            ipam::default_pools()
        } else {
            self.cfg.pools.clone()
        }
    }

    /// Subnets a new network must not overlap: the host's routes and addresses (except
    /// default routes and berth's own bridges) and the other networks'.
    fn taken_subnets(&self, except_bridges: &[String]) -> Result<Vec<IpNet>> {
        let mut h = Handle::new()?;
        let ours: Vec<String> = {
            let st = self.state.lock().expect("network state");
            st.networks
                .values()
                .map(|n| n.rec.bridge.clone())
                .filter(|b| !b.is_empty())
                .chain(except_bridges.iter().cloned())
                .collect()
        };
        let our_indexes: Vec<u32> = h
            .links()?
            .into_iter()
            .filter(|(_, name)| ours.contains(name))
            .map(|(i, _)| i)
            .collect();
        let mut taken: Vec<IpNet> = h
            .routes()?
            .into_iter()
            .filter(|(_, prefix)| *prefix > 0)
            .filter_map(|(ip, prefix)| IpNet::new(ip, prefix).ok())
            .collect();
        for (index, ip, prefix) in h.addresses()? {
            if our_indexes.contains(&index) || ip.is_loopback() {
                continue;
            }
            if let Ok(n) = IpNet::new(ip, prefix) {
                taken.push(n.trunc());
            }
        }
        let st = self.state.lock().expect("network state");
        taken.extend(
            st.networks
                .values()
                .flat_map(|n| n.rec.subnets.iter().map(|s| s.subnet)),
        );
        // Routes of our own bridges are their subnets, already counted as networks.
        Ok(taken)
    }

    /// The bridge of a network, with its gateway addresses, up; the sysctls it needs.
    fn make_bridge(&self, rec: &NetworkRecord) -> Result<()> {
        let mut h = Handle::new()?;
        let index = h.create_bridge(&rec.bridge, mtu_of(rec, self.cfg.mtu))?;
        for s in &rec.subnets {
            h.add_address(index, s.gateway, s.subnet.prefix_len())?;
        }
        h.set_up(index)?;
        // 127.0.0.1:<published port> is DNATed onto the bridge: the kernel must route
        // loopback sources there.
        netlink::sysctl(&format!("net/ipv4/conf/{}/route_localnet", rec.bridge), "1").map_err(
            NetworkError::io(format!("setting route_localnet on {}", rec.bridge)),
        )?;
        if !rec.internal {
            self.enable_forwarding("net/ipv4/ip_forward")?;
            if rec.v6().is_some() {
                self.enable_forwarding("net/ipv6/conf/all/forwarding")?;
            }
        }
        Ok(())
    }

    fn enable_forwarding(&self, key: &str) -> Result<()> {
        let was = netlink::read_sysctl(key).unwrap_or_default();
        if was.trim() == "1" {
            return Ok(());
        }
        netlink::sysctl(key, "1").map_err(NetworkError::io(format!("setting {key}")))?;
        let note = format!(
            "berth set {}=1 (it was {}) for its bridge networks",
            key.replace('/', "."),
            was.trim()
        );
        let mut notes = self.notes.lock().expect("notes");
        if !notes.contains(&note) {
            notes.push(note);
        }
        Ok(())
    }

    /// What berth changed on the host or could not do, for `docker info`'s warnings.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes").clone()
    }

    /// Whether `docker run` without `--network` gets the default bridge.
    pub fn has_default_bridge(&self) -> bool {
        self.cfg.default_bridge.is_some()
    }

    pub fn firewall_backend(&self) -> Option<&'static str> {
        self.firewall.map(|b| match b {
            firewall::Backend::Nftables => "nftables",
            firewall::Backend::Iptables => "iptables",
        })
    }

    /// Rebuilds berth's netfilter table from the networks and published ports.
    fn sync_firewall(&self) -> Result<()> {
        let Some(backend) = self.firewall else {
            return Ok(());
        };
        let rules = {
            let st = self.state.lock().expect("network state");
            ruleset(&st)
        };
        // With no bridge network there is nothing to write: a daemon that never wrote the
        // table leaves it alone (it may be another engine's on a shared host).
        if rules.networks.is_empty() && !self.wrote_rules.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        firewall::apply(backend, &rules)?;
        self.wrote_rules.store(
            !rules.networks.is_empty(),
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    // ---- networks ----

    pub fn list(&self) -> Vec<NetworkRecord> {
        let st = self.state.lock().expect("network state");
        st.networks.values().map(|n| n.rec.clone()).collect()
    }

    /// By full id, then name, then unique id prefix (Docker's order).
    pub fn get(&self, name_or_id: &str) -> Result<NetworkRecord> {
        let st = self.state.lock().expect("network state");
        find(&st, name_or_id).map(|n| n.rec.clone())
    }

    /// The running containers on a network: (container id, container name, endpoint).
    pub fn endpoints_of(&self, network_id: &str) -> Vec<(String, String, Endpoint)> {
        let st = self.state.lock().expect("network state");
        let mut out = Vec::new();
        for (cid, sb) in &st.sandboxes {
            for ep in &sb.endpoints {
                if ep.network_id == network_id {
                    out.push((cid.clone(), sb.name.clone(), ep.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    /// `POST /networks/create`. Returns the id.
    pub fn create(&self, req: CreateRequest) -> Result<String> {
        if req.name.is_empty() {
            return Err(NetworkError::Invalid(
                "network name must not be empty".into(),
            ));
        }
        if !valid_name(&req.name) {
            return Err(NetworkError::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        match req.driver.as_str() {
            "" | "bridge" => {}
            "host" | "null" => {
                return Err(NetworkError::Forbidden(format!(
                    "only one instance of \"{}\" network is allowed",
                    req.driver
                )))
            }
            other => {
                return Err(NetworkError::NotFound(format!(
                    "plugin \"{other}\" not found: berth has the bridge driver only; network driver"
                )))
            }
        }
        {
            let st = self.state.lock().expect("network state");
            if st.networks.values().any(|n| n.rec.name == req.name) {
                return Err(NetworkError::NameExists(req.name));
            }
        }
        let id = random_hex(64);
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(b) if !b.is_empty() => {
                if b.len() > 15 {
                    return Err(NetworkError::Invalid(format!(
                        "bridge name {b:?} is longer than 15 characters"
                    )));
                }
                b.clone()
            }
            _ => format!("berth-{}", &id[..9]),
        };
        if let Some(m) = req.options.get("com.docker.network.driver.mtu") {
            m.parse::<u32>()
                .map_err(|_| NetworkError::Invalid(format!("invalid MTU {m:?}: not a number")))?;
        }
        let mut subnets: Vec<SubnetConfig> = Vec::new();
        for (subnet, gateway, range) in &req.ipam {
            if !range.is_empty() {
                return Err(NetworkError::Unsupported(
                    "--ip-range is not supported by berth yet: addresses come from the whole subnet"
                        .into(),
                ));
            }
            if subnet.is_empty() {
                if !gateway.is_empty() {
                    return Err(NetworkError::Invalid(
                        "a gateway needs a subnet (--subnet)".into(),
                    ));
                }
                continue;
            }
            let net: IpNet = subnet.parse().map_err(|_| {
                NetworkError::Invalid(format!(
                    "invalid subnet {subnet} : invalid CIDR address: {subnet}"
                ))
            })?;
            let net = net.trunc();
            let gw = if gateway.is_empty() {
                ipam::first_host(&net)
            } else {
                let gw: IpAddr = gateway.parse().map_err(|_| {
                    NetworkError::Invalid(format!("invalid gateway address {gateway}"))
                })?;
                if !net.contains(&gw) || gw == net.network() {
                    return Err(NetworkError::Invalid(format!(
                        "no matching subnet for gateway {gateway}: it is not in {net}"
                    )));
                }
                gw
            };
            if subnets.iter().any(|s| ipam::overlaps(&s.subnet, &net)) {
                return Err(NetworkError::Overlap);
            }
            subnets.push(SubnetConfig {
                subnet: net,
                gateway: gw,
            });
        }
        {
            let st = self.state.lock().expect("network state");
            for n in st.networks.values() {
                for s in &n.rec.subnets {
                    if subnets.iter().any(|x| ipam::overlaps(&x.subnet, &s.subnet)) {
                        return Err(NetworkError::Overlap);
                    }
                }
                if n.rec.bridge == bridge {
                    return Err(NetworkError::Invalid(format!(
                        "bridge {bridge} is already used by network {}",
                        n.rec.name
                    )));
                }
            }
        }
        if !subnets.iter().any(|s| matches!(s.subnet, IpNet::V4(_))) {
            let taken = self.taken_subnets(&[])?;
            let s = ipam::pick_subnet(&self.pools(), &taken).ok_or(NetworkError::NoPool)?;
            subnets.insert(
                0,
                SubnetConfig {
                    subnet: IpNet::V4(s),
                    gateway: ipam::first_host(&IpNet::V4(s)),
                },
            );
        }
        let has_v6 = subnets.iter().any(|s| matches!(s.subnet, IpNet::V6(_)));
        if req.enable_ipv6 && !has_v6 {
            let s = IpNet::V6(ipam::random_ula());
            subnets.push(SubnetConfig {
                subnet: s,
                gateway: ipam::first_host(&s),
            });
        }
        let rec = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            created: now(),
            driver: Driver::Bridge,
            bridge,
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6 || has_v6,
            subnets,
            labels: req.labels,
            options: req.options,
        };
        // The record first: a crash after it leaves a network whose bridge is made at the
        // next start; a failure below takes it back.
        rec.save(&self.cfg.root)?;
        {
            let mut st = self.state.lock().expect("network state");
            if st.networks.values().any(|n| n.rec.name == rec.name) {
                let _ = std::fs::remove_file(self.record_path(&id));
                return Err(NetworkError::NameExists(rec.name));
            }
            st.networks.insert(id.clone(), Net::new(rec.clone()));
        }
        let made = self.make_bridge(&rec).and_then(|_| self.sync_firewall());
        if let Err(e) = made {
            self.state
                .lock()
                .expect("network state")
                .networks
                .remove(&id);
            if let Ok(mut h) = Handle::new() {
                let _ = h.delete_link(&rec.bridge);
            }
            let _ = std::fs::remove_file(self.record_path(&id));
            let _ = self.sync_firewall();
            return Err(e);
        }
        Ok(id)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.cfg.root.join(format!("{id}.json"))
    }

    /// `DELETE /networks/{id}`: refused for predefined networks and networks with running
    /// containers on them.
    pub fn remove(&self, name_or_id: &str) -> Result<()> {
        let rec = {
            let mut st = self.state.lock().expect("network state");
            let rec = find(&st, name_or_id)?.rec.clone();
            if rec.predefined() {
                return Err(NetworkError::Predefined(rec.name));
            }
            if st
                .sandboxes
                .values()
                .any(|sb| sb.endpoints.iter().any(|e| e.network_id == rec.id))
            {
                return Err(NetworkError::InUse {
                    name: rec.name,
                    id: rec.id,
                });
            }
            st.networks.remove(&rec.id);
            rec
        };
        std::fs::remove_file(self.record_path(&rec.id))
            .map_err(NetworkError::io(format!("removing network {}", rec.name)))?;
        let mut h = Handle::new()?;
        h.delete_link(&rec.bridge)?;
        self.sync_firewall()?;
        Ok(())
    }

    // ---- containers ----

    /// Connects a container's namespace to its networks (see the module's story). On
    /// failure nothing is left: no veth, address, port or rule.
    pub fn attach(&self, spec: &SandboxSpec<'_>) -> Result<Attached> {
        let upstreams = self.upstreams(spec.dns);
        let mut made: Vec<Endpoint> = Vec::new();
        let result = (|| -> Result<(Vec<PublishedPort>, Vec<Reservation>)> {
            let mut st = self.state.lock().expect("network state");
            let mut host = Handle::new()?;
            let ns = std::fs::File::open(spec.netns).map_err(NetworkError::io(format!(
                "opening {}",
                spec.netns.display()
            )))?;
            let mut inner = Handle::in_netns(spec.netns)?;
            for (i, (net, req)) in spec.networks.iter().enumerate() {
                let ep = plug(
                    &mut st,
                    &mut host,
                    &mut inner,
                    &ns,
                    spec,
                    net,
                    req,
                    &format!("eth{i}"),
                    made.is_empty(),
                    self.cfg.mtu,
                )?;
                made.push(ep);
            }
            let published = if spec.ports.is_empty() {
                Vec::new()
            } else {
                if made.is_empty() {
                    return Err(NetworkError::Invalid(
                        "published ports need a bridge network".into(),
                    ));
                }
                ports::publish(spec.ports).map_err(|e| match e {
                    NetworkError::PortAllocated { .. } => NetworkError::Io {
                        what: format!(
                            "driver failed programming external connectivity on endpoint {} ({})",
                            spec.name, made[0].endpoint_id
                        ),
                        source: std::io::Error::other(e.to_string()),
                    },
                    other => other,
                })?
            };
            let (mut ports, mut reservations): (Vec<_>, Vec<_>) = published.into_iter().unzip();
            // On a network with IPv6, a port published on every address is published on
            // every IPv6 address too (the same port), as Docker does.
            if made.first().is_some_and(|e| e.ipv6.is_some()) {
                for p in ports.clone() {
                    if p.host_ip != IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
                        continue;
                    }
                    let any6 = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
                    let (_, r) = ports::reserve(p.proto, any6, p.host_port).map_err(|e| {
                        NetworkError::Io {
                            what: format!("reserving [::]:{}/{}", p.host_port, p.proto.as_str()),
                            source: e,
                        }
                    })?;
                    reservations.push(r);
                    ports.push(PublishedPort { host_ip: any6, ..p });
                }
            }
            Ok((ports, reservations))
        })();
        let (ports, reservations) = match result {
            Ok(x) => x,
            Err(e) => {
                self.unplug_all(spec.container_id, &made);
                return Err(e);
            }
        };
        let dns = if wants_dns(&made) {
            match self.start_dns(spec.container_id, spec.netns) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.unplug_all(spec.container_id, &made);
                    return Err(NetworkError::io("starting the embedded DNS server")(e));
                }
            }
        } else {
            None
        };
        let any_ports = !ports.is_empty();
        self.state.lock().expect("network state").sandboxes.insert(
            spec.container_id.to_string(),
            Sandbox {
                name: spec.name.to_string(),
                netns: spec.netns.to_path_buf(),
                endpoints: made.clone(),
                ports: ports.clone(),
                reservations,
                dns_upstreams: upstreams,
                dns,
            },
        );
        if any_ports {
            if let Err(e) = self.sync_firewall() {
                self.detach(spec.container_id, &made);
                return Err(e);
            }
        }
        Ok(Attached {
            endpoints: made,
            ports,
        })
    }

    fn upstreams(&self, dns: &[IpAddr]) -> Vec<SocketAddr> {
        if !dns.is_empty() {
            return dns.iter().map(|ip| SocketAddr::new(*ip, 53)).collect();
        }
        let text = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        dns::upstreams_from_resolv_conf(&text)
    }

    /// After a daemon restart: a running container's endpoints and ports as its record
    /// keeps them are registered again (addresses, port reservations, DNS); rules are
    /// rebuilt by the caller's [`NetworkService::rebuild_rules`] once all are back.
    pub fn restore(&self, spec: &SandboxSpec<'_>, attached: &Attached) {
        let mut st = self.state.lock().expect("network state");
        for ep in &attached.endpoints {
            if let Some(net) = st.networks.get_mut(&ep.network_id) {
                for (alloc, addr) in [(&mut net.v4, ep.ipv4), (&mut net.v6, ep.ipv6)] {
                    if let (Some(a), Some(ip)) = (alloc.as_mut(), addr) {
                        if let Err(e) = a.reserve(ip.addr(), spec.container_id) {
                            eprintln!(
                                "berth daemon: {} keeps {} on {}: {e}",
                                spec.name,
                                ip.addr(),
                                ep.network_name
                            );
                        }
                    }
                }
            }
        }
        let mut reservations = Vec::new();
        for p in &attached.ports {
            match ports::reserve(p.proto, p.host_ip, p.host_port) {
                Ok((_, r)) => reservations.push(r),
                Err(e) => eprintln!(
                    "berth daemon: {} publishes {}:{}/{} but the port could not be reserved again: {e}",
                    spec.name,
                    p.host_ip,
                    p.host_port,
                    p.proto.as_str()
                ),
            }
        }
        let dns = if wants_dns(&attached.endpoints) {
            self.start_dns(spec.container_id, spec.netns)
                .map_err(|e| eprintln!("berth daemon: the embedded DNS of {}: {e}", spec.name))
                .ok()
        } else {
            None
        };
        st.sandboxes.insert(
            spec.container_id.to_string(),
            Sandbox {
                name: spec.name.to_string(),
                netns: spec.netns.to_path_buf(),
                endpoints: attached.endpoints.clone(),
                ports: attached.ports.clone(),
                reservations,
                dns_upstreams: self.upstreams(spec.dns),
                dns,
            },
        );
    }

    /// The embedded DNS server in the container's namespace, answering from this service.
    fn start_dns(&self, container_id: &str, netns: &Path) -> std::io::Result<dns::DnsServer> {
        let sockets = dns::bind_in_netns(netns)?;
        dns::serve(
            container_id.to_string(),
            sockets,
            Arc::new(DnsView(self.me.clone())),
        )
    }

    /// Replaces berth's rules with those the current state needs.
    pub fn rebuild_rules(&self) -> Result<()> {
        self.sync_firewall()
    }

    /// The container stopped: its veths go, its addresses, ports, rules and DNS server are
    /// released. `endpoints` are those its record kept (the sandbox may be unknown after a
    /// restart). Safe to repeat.
    pub fn detach(&self, container_id: &str, endpoints: &[Endpoint]) {
        let had_ports = {
            let mut st = self.state.lock().expect("network state");
            let sb = st.sandboxes.remove(container_id);
            sb.map(|s| !s.ports.is_empty()).unwrap_or(false)
        };
        // The container is gone: its namespace goes with its last reference and takes the
        // veths along; deleting them here too makes sure of it, off the caller's path (a
        // veth's deletion waits for the kernel's network-namespace work, ~15 ms).
        self.release_all(container_id, endpoints);
        let veths: Vec<String> = endpoints.iter().map(|e| e.host_veth.clone()).collect();
        if !veths.is_empty() {
            std::thread::spawn(move || delete_links(&veths));
        }
        if had_ports {
            if let Err(e) = self.sync_firewall() {
                eprintln!("berth daemon: updating netfilter rules after {container_id}: {e}");
            }
        }
    }

    fn release_all(&self, container_id: &str, endpoints: &[Endpoint]) {
        let mut st = self.state.lock().expect("network state");
        for ep in endpoints {
            release(&mut st, container_id, ep);
        }
    }

    /// Releases the endpoints' addresses and deletes their veths (a failed attach).
    fn unplug_all(&self, container_id: &str, endpoints: &[Endpoint]) {
        self.release_all(container_id, endpoints);
        let veths: Vec<String> = endpoints.iter().map(|e| e.host_veth.clone()).collect();
        delete_links(&veths);
    }

    /// A running container was renamed: the embedded DNS answers the new name at once.
    pub fn rename(&self, container_id: &str, new_name: &str) {
        let mut st = self.state.lock().expect("network state");
        if let Some(sb) = st.sandboxes.get_mut(container_id) {
            let old = std::mem::replace(&mut sb.name, new_name.to_string());
            for ep in &mut sb.endpoints {
                for n in &mut ep.dns_names {
                    if *n == old {
                        *n = new_name.to_string();
                    }
                }
            }
        }
    }

    /// `docker network connect` on a running container: a new interface, live.
    pub fn connect(
        &self,
        container_id: &str,
        network: &str,
        req: &EndpointRequest,
    ) -> Result<Endpoint> {
        let mut st = self.state.lock().expect("network state");
        let (netns, name, used) = {
            let sb = st.sandboxes.get(container_id).ok_or_else(|| {
                NetworkError::Invalid(
                    "the container has no network namespace of its own to connect".into(),
                )
            })?;
            (
                sb.netns.clone(),
                sb.name.clone(),
                sb.endpoints
                    .iter()
                    .map(|e| e.interface.clone())
                    .collect::<Vec<_>>(),
            )
        };
        let net_id = find(&st, network)?.rec.id.clone();
        if st.sandboxes[container_id]
            .endpoints
            .iter()
            .any(|e| e.network_id == net_id)
        {
            return Err(NetworkError::Forbidden(format!(
                "endpoint with name {name} already exists in network {network}"
            )));
        }
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(n))
            .expect("some index is free");
        let first = used.is_empty();
        let mut host = Handle::new()?;
        let ns = std::fs::File::open(&netns)
            .map_err(NetworkError::io(format!("opening {}", netns.display())))?;
        let mut inner = Handle::in_netns(&netns)?;
        let spec = SandboxSpec {
            container_id,
            name: &name,
            hostname: None,
            netns: &netns,
            networks: &[],
            ports: &[],
            dns: &[],
        };
        let ep = plug(
            &mut st,
            &mut host,
            &mut inner,
            &ns,
            &spec,
            &net_id,
            req,
            &ifname,
            first,
            self.cfg.mtu,
        )?;
        let needs_dns = wants_dns(std::slice::from_ref(&ep));
        let sb = st.sandboxes.get_mut(container_id).expect("checked above");
        sb.endpoints.push(ep.clone());
        if needs_dns && sb.dns.is_none() {
            drop(st);
            let d = self
                .start_dns(container_id, &netns)
                .map_err(NetworkError::io("starting the embedded DNS server"))?;
            if let Some(sb) = self
                .state
                .lock()
                .expect("network state")
                .sandboxes
                .get_mut(container_id)
            {
                sb.dns = Some(d);
            }
        }
        Ok(ep)
    }

    /// `docker network disconnect` on a running container: its interface on that network
    /// goes, live.
    pub fn disconnect(&self, container_id: &str, network_id: &str) -> Result<Option<Endpoint>> {
        let ep = {
            let mut st = self.state.lock().expect("network state");
            let Some(sb) = st.sandboxes.get_mut(container_id) else {
                return Ok(None);
            };
            let Some(pos) = sb.endpoints.iter().position(|e| e.network_id == network_id) else {
                return Ok(None);
            };
            let ep = sb.endpoints.remove(pos);
            release(&mut st, container_id, &ep);
            ep
        };
        Handle::new()?.delete_link(&ep.host_veth)?;
        Ok(Some(ep))
    }
}

impl Net {
    fn new(rec: NetworkRecord) -> Net {
        let v4 = rec.v4().map(|s| SubnetAllocator::new(s.subnet, s.gateway));
        let v6 = rec.v6().map(|s| SubnetAllocator::new(s.subnet, s.gateway));
        Net { rec, v4, v6 }
    }
}

fn find<'a>(st: &'a State, name_or_id: &str) -> Result<&'a Net> {
    if let Some(n) = st.networks.get(name_or_id) {
        return Ok(n);
    }
    if let Some(n) = st.networks.values().find(|n| n.rec.name == name_or_id) {
        return Ok(n);
    }
    let mut by_prefix = st
        .networks
        .values()
        .filter(|n| !name_or_id.is_empty() && n.rec.id.starts_with(name_or_id));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(NetworkError::Invalid(format!(
            "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
            st.networks
                .values()
                .filter(|n| n.rec.id.starts_with(name_or_id))
                .count()
        ))),
        _ => Err(NetworkError::NotFound(name_or_id.to_string())),
    }
}

/// One endpoint: addresses, the veth pair, the container side configured.
#[allow(clippy::too_many_arguments)]
fn plug(
    st: &mut State,
    host: &mut Handle,
    inner: &mut Handle,
    ns: &std::fs::File,
    spec: &SandboxSpec<'_>,
    network: &str,
    req: &EndpointRequest,
    ifname: &str,
    default_route: bool,
    mtu: Option<u32>,
) -> Result<Endpoint> {
    let net = find(st, network)?.rec.id.clone();
    let net = st.networks.get_mut(&net).expect("found above");
    if net.rec.driver != Driver::Bridge {
        return Err(NetworkError::Invalid(format!(
            "container cannot be connected to network {}: only bridge networks have endpoints",
            net.rec.name
        )));
    }
    let owner = spec.container_id;
    let user_defined = !net.rec.predefined();
    if !user_defined && (req.ipv4.is_some() || req.ipv6.is_some()) {
        return Err(NetworkError::Invalid(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    if !user_defined && !req.aliases.is_empty() {
        return Err(NetworkError::Invalid(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    if let Some(ip @ IpAddr::V6(_)) = req.ipv4 {
        return Err(NetworkError::Invalid(format!("invalid IPv4 address: {ip}")));
    }
    let allocate =
        |a: &mut Option<SubnetAllocator>, fixed: Option<IpAddr>| -> Result<Option<IpNet>> {
            match (a.as_mut(), fixed) {
                (Some(a), Some(ip)) => {
                    a.reserve(ip, owner)?;
                    Ok(Some(IpNet::new(ip, a.subnet.prefix_len()).expect("prefix")))
                }
                (Some(a), None) => {
                    let ip = a.allocate(owner)?;
                    Ok(Some(IpNet::new(ip, a.subnet.prefix_len()).expect("prefix")))
                }
                (None, Some(ip)) => Err(NetworkError::Invalid(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                ))),
                (None, None) => Ok(None),
            }
        };
    let ipv4 = allocate(&mut net.v4, req.ipv4)?;
    let ipv6 = match allocate(&mut net.v6, req.ipv6) {
        Ok(x) => x,
        Err(e) => {
            if let (Some(a), Some(ip)) = (net.v4.as_mut(), ipv4) {
                a.release(ip.addr(), owner);
            }
            return Err(e);
        }
    };
    let mac = match ipv4 {
        Some(IpNet::V4(v)) => netlink::mac_for(v.addr()),
        _ => netlink::mac_for(Ipv4Addr::from(random_u32())),
    };
    let host_veth = format!("berthv{}", random_hex(9));
    let ep = Endpoint {
        network_id: net.rec.id.clone(),
        network_name: net.rec.name.clone(),
        endpoint_id: random_hex(64),
        interface: ifname.to_string(),
        host_veth: host_veth.clone(),
        mac: mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        ipv4,
        gateway4: if net.rec.internal {
            None
        } else {
            net.rec.v4().map(|s| s.gateway)
        },
        ipv6,
        gateway6: if net.rec.internal {
            None
        } else {
            net.rec.v6().map(|s| s.gateway)
        },
        aliases: req.aliases.clone(),
        dns_names: if user_defined {
            let mut names = vec![
                spec.name.to_string(),
                owner[..12.min(owner.len())].to_string(),
            ];
            names.extend(req.aliases.iter().cloned());
            if let Some(h) = spec.hostname {
                if !names.iter().any(|n| n == h) {
                    names.push(h.to_string());
                }
            }
            names
        } else {
            Vec::new()
        },
    };
    let bridge = net.rec.bridge.clone();
    let mtu = mtu_of(&net.rec, mtu);
    let wired = (|| -> Result<()> {
        use std::os::fd::AsFd;
        let bridge_index = host.link_index(&bridge)?.ok_or_else(|| {
            NetworkError::Invalid(format!(
                "the bridge {bridge} of network {} is missing",
                ep.network_name
            ))
        })?;
        host.create_veth(&host_veth, ifname, ns.as_fd(), Some(mac), mtu)?;
        let hi = host
            .link_index(&host_veth)?
            .ok_or_else(|| NetworkError::Invalid(format!("{host_veth} vanished")))?;
        host.set_master(hi, bridge_index)?;
        host.set_hairpin(hi)?;
        host.set_up(hi)?;
        let ci = inner.link_index(ifname)?.ok_or_else(|| {
            NetworkError::Invalid(format!("{ifname} is missing in the container"))
        })?;
        for ip in [ep.ipv4, ep.ipv6].into_iter().flatten() {
            inner.add_address(ci, ip.addr(), ip.prefix_len())?;
        }
        inner.set_up(ci)?;
        if default_route {
            for gw in [ep.gateway4, ep.gateway6].into_iter().flatten() {
                inner.add_default_route(gw)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = wired {
        let _ = host.delete_link(&host_veth);
        release(st, owner, &ep);
        return Err(e);
    }
    Ok(ep)
}

/// A network's `com.docker.network.driver.mtu`, or the daemon's `--mtu`.
fn mtu_of(rec: &NetworkRecord, default: Option<u32>) -> Option<u32> {
    rec.options
        .get("com.docker.network.driver.mtu")
        .and_then(|m| m.parse().ok())
        .or(default)
}

/// Containers on a user-defined network (their endpoints have DNS names) get the
/// embedded DNS server; the default bridge has none, as in Docker.
fn wants_dns(endpoints: &[Endpoint]) -> bool {
    endpoints.iter().any(|e| !e.dns_names.is_empty())
}

fn delete_links(names: &[String]) {
    let mut h = match Handle::new() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("berth daemon: removing veths: {e}");
            return;
        }
    };
    for name in names {
        if let Err(e) = h.delete_link(name) {
            eprintln!("berth daemon: removing {name}: {e}");
        }
    }
}

fn release(st: &mut State, owner: &str, ep: &Endpoint) {
    if let Some(net) = st.networks.get_mut(&ep.network_id) {
        if let (Some(a), Some(ip)) = (net.v4.as_mut(), ep.ipv4) {
            a.release(ip.addr(), owner);
        }
        if let (Some(a), Some(ip)) = (net.v6.as_mut(), ep.ipv6) {
            a.release(ip.addr(), owner);
        }
    }
}

/// The rules the state needs: every bridge network's NAT and isolation, every published
/// port's DNAT to its container's first endpoint.
fn ruleset(st: &State) -> firewall::Ruleset {
    let networks = st
        .networks
        .values()
        .filter(|n| n.rec.driver == Driver::Bridge)
        .map(|n| firewall::NetworkRules {
            bridge: n.rec.bridge.clone(),
            subnets: n.rec.subnets.iter().map(|s| s.subnet).collect(),
            internal: n.rec.internal,
            masquerade: !n.rec.internal,
        })
        .collect();
    let mut ports = Vec::new();
    for sb in st.sandboxes.values() {
        let Some(ep) = sb.endpoints.first() else {
            continue;
        };
        let Some(net) = st.networks.get(&ep.network_id) else {
            continue;
        };
        for p in &sb.ports {
            let target = match p.host_ip {
                IpAddr::V6(_) => ep.ipv6,
                IpAddr::V4(_) => ep.ipv4,
            };
            let Some(target) = target else { continue };
            ports.push(firewall::PortRule {
                proto: match p.proto {
                    crate::model::Proto::Tcp => firewall::Proto::Tcp,
                    crate::model::Proto::Udp => firewall::Proto::Udp,
                },
                host_ip: if p.host_ip.is_unspecified() {
                    None
                } else {
                    Some(p.host_ip)
                },
                host_port: p.host_port,
                container_ip: target.addr(),
                container_port: p.container_port,
                bridge: net.rec.bridge.clone(),
            });
        }
    }
    firewall::Ruleset { networks, ports }
}

/// The embedded DNS server's view of the names: containers that share a user-defined
/// network with the asking container.
struct DnsView(Weak<NetworkService>);

impl dns::Resolver for DnsView {
    fn lookup(&self, container_id: &str, name: &str) -> Option<Vec<IpAddr>> {
        let svc = self.0.upgrade()?;
        let st = svc.state.lock().expect("network state");
        let me = st.sandboxes.get(container_id)?;
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut found = false;
        let mut out = Vec::new();
        for mine in me.endpoints.iter().filter(|e| !e.dns_names.is_empty()) {
            // `name` or `name.<network>`.
            let suffix = format!(".{}", mine.network_name.to_ascii_lowercase());
            let short = name.strip_suffix(&suffix).unwrap_or(&name);
            for sb in st.sandboxes.values() {
                for ep in sb
                    .endpoints
                    .iter()
                    .filter(|e| e.network_id == mine.network_id)
                {
                    if ep
                        .dns_names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(&name) || n.eq_ignore_ascii_case(short))
                    {
                        found = true;
                        out.extend(ep.ipv4.map(|i| i.addr()));
                        out.extend(ep.ipv6.map(|i| i.addr()));
                    }
                }
            }
        }
        found.then_some(out)
    }

    fn reverse(&self, container_id: &str, ip: IpAddr) -> Option<String> {
        let svc = self.0.upgrade()?;
        let st = svc.state.lock().expect("network state");
        let me = st.sandboxes.get(container_id)?;
        for mine in me.endpoints.iter().filter(|e| !e.dns_names.is_empty()) {
            for sb in st.sandboxes.values() {
                for ep in sb
                    .endpoints
                    .iter()
                    .filter(|e| e.network_id == mine.network_id)
                {
                    if ep.ipv4.map(|i| i.addr()) == Some(ip)
                        || ep.ipv6.map(|i| i.addr()) == Some(ip)
                    {
                        return Some(format!("{}.{}", sb.name, ep.network_name));
                    }
                }
            }
        }
        None
    }

    fn upstreams(&self, container_id: &str) -> Vec<SocketAddr> {
        let Some(svc) = self.0.upgrade() else {
            return Vec::new();
        };
        let st = svc.state.lock().expect("network state");
        st.sandboxes
            .get(container_id)
            .map(|s| s.dns_upstreams.clone())
            .unwrap_or_default()
    }
}

/// Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn random_u32() -> u32 {
    u32::from_be_bytes(ipam::rand_bytes())
}

pub(crate) fn random_hex(chars: usize) -> String {
    let bytes: [u8; 32] = ipam::rand_bytes();
    let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s[..chars.min(64)].to_string()
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        assert!(valid_name("my-net_1.x"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn ids_are_hex_of_the_asked_length() {
        let a = random_hex(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(32));
    }
}
