//! The netfilter rules berth's bridge networks need, as Docker's bridge driver makes them.
//!
//! The daemon keeps the desired state ([`Ruleset`]: its bridge networks and the published
//! ports of its running containers) and calls [`apply`] after every change (a network created
//! or removed, a container with published ports started or stopped) and once at startup, so
//! the rules are always rebuilt from state. [`apply`] replaces everything berth made at once;
//! with an empty [`Ruleset`] it removes everything berth made.
//!
//! What is rendered, for IPv4 and IPv6 alike:
//!
//! 1. Published ports: DNAT of packets to a local address (`fib daddr type local`, or
//!    `-m addrtype --dst-type LOCAL`) both in prerouting (from outside and from containers)
//!    and in output (from the host itself, so `curl 127.0.0.1:8080` and
//!    `curl <host-ip>:8080` work). With [`PortRule::host_ip`] set, only that address.
//! 2. Masquerade of `127.0.0.0/8` going out a berth bridge, so a published port answers on
//!    127.0.0.1. **The kernel drops such packets unless the daemon sets
//!    `net.ipv4.conf.<bridge>.route_localnet=1` on the bridge; that is the daemon's job, not
//!    this module's.** (IPv6 has no equivalent: `[::1]:port` cannot be forwarded.)
//! 3. Hairpin: masquerade of DNATed connections that enter and leave the same bridge, so a
//!    container reaches a sibling's published port through the host's address. The input
//!    interface is not known in postrouting (netfilter passes none there), so "entered the
//!    bridge" is matched as "comes from one of the network's subnets". For a
//!    container to reach its *own* published port that way, the daemon must also turn on
//!    hairpin mode on the container's bridge port.
//! 4. Masquerade of a network's subnets going out any other interface (`masquerade: true`).
//! 5. Internal networks: forwarded traffic entering or leaving the bridge from/to any other
//!    interface is dropped.
//! 6. Isolation: forwarded traffic from one berth bridge to another is dropped.
//! 7. Nothing else is accepted or dropped; every chain berth owns has policy accept. In
//!    particular berth adds no `accept` for its traffic: a host firewall whose forward chain
//!    drops by default must allow it itself.
//!
//! Two backends: [`Backend::Nftables`] (one table `inet berth`, replaced in one `nft -f -`
//! transaction) and [`Backend::Iptables`] (chains `BERTH-*` in the nat and filter tables of
//! iptables and ip6tables, refilled with `iptables-restore --noflush`, plus jumps from the
//! built-in chains). Both need `ip_forward` (and IPv6 `forwarding`) on, which is also the
//! daemon's job. Calls to [`apply`] within one process are serialized.

mod iptables;
mod nft;

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// What can go wrong applying the rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither nft nor iptables/ip6tables can be used.
    #[error("no usable firewall backend: nft: {nft}; iptables: {iptables}")]
    NoBackend { nft: String, iptables: String },
    /// The tool could not be started at all (not installed, not executable).
    #[error("could not run {tool}: {source}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    /// The tool ran and failed; `stderr` is what it said.
    #[error("{tool} failed on table {table}: {stderr}")]
    Tool {
        tool: String,
        table: String,
        stderr: String,
    },
    /// The desired state cannot be rendered (a bad interface name, mixed address families).
    #[error("invalid firewall rule: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An IP network (`10.89.0.0/24`, `fd00:89::/64`): the `ipnet` crate's, as the rest of the
/// crate uses.
pub use ipnet::IpNet;

/// The network in CIDR notation with host bits cleared, as the tools want it.
fn cidr(net: &IpNet) -> String {
    net.trunc().to_string()
}

/// Everything berth wants in netfilter: its bridge networks and the published ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortRule>,
}

impl Ruleset {
    /// True when nothing is wanted: [`apply`] then removes everything berth made.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.ports.is_empty()
    }
}

/// One bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The bridge's interface name, e.g. `berth0`.
    pub bridge: String,
    /// The network's subnets, IPv4 and/or IPv6.
    pub subnets: Vec<IpNet>,
    /// `--internal`: nothing in or out of the bridge except among its members.
    pub internal: bool,
    /// Outbound NAT of the subnets (ignored when `internal`).
    pub masquerade: bool,
}

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port (a range is several of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    /// `None`: every local address of the container address's family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// The bridge the container is on.
    pub bridge: String,
}

/// Which tool programs netfilter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `nft`: one table `inet berth`.
    Nftables,
    /// `iptables`/`ip6tables`: `BERTH-*` chains in the nat and filter tables.
    Iptables,
}

impl Backend {
    /// nftables when `nft list tables` works, else iptables when both `iptables` and
    /// `ip6tables` can list their nat table, else [`Error::NoBackend`] saying why.
    pub fn detect() -> Result<Backend> {
        let nft = match run("nft", &["list", "tables"], None, "(all)") {
            Ok(_) => return Ok(Backend::Nftables),
            Err(e) => e.to_string(),
        };
        let iptables = ["iptables", "ip6tables"]
            .iter()
            .map(|tool| run(tool, &["-w", "-t", "nat", "-S", "POSTROUTING"], None, "nat"))
            .find_map(|r| r.err());
        match iptables {
            None => Ok(Backend::Iptables),
            Some(e) => Err(Error::NoBackend {
                nft,
                iptables: e.to_string(),
            }),
        }
    }
}

/// Serializes [`apply`] within the process: the iptables backend's check-then-insert of
/// jump rules is not atomic.
static APPLY: Mutex<()> = Mutex::new(());

/// Replace every rule berth made with the ones `rules` needs (none when it is empty).
/// Rules of other tables and chains are never touched.
pub fn apply(backend: Backend, rules: &Ruleset) -> Result<()> {
    validate(rules)?;
    let _guard = APPLY.lock().unwrap_or_else(|e| e.into_inner());
    match backend {
        Backend::Nftables => {
            let script = nft::render(rules);
            run("nft", &["-f", "-"], Some(&script), nft::TABLE).map(drop)
        }
        Backend::Iptables => iptables::apply(rules),
    }
}

/// Interface names go into the tools' input verbatim: only what Linux allows and nothing
/// that could quote its way out. Port rules must not mix families.
fn validate(rules: &Ruleset) -> Result<()> {
    let bridges = rules
        .networks
        .iter()
        .map(|n| &n.bridge)
        .chain(rules.ports.iter().map(|p| &p.bridge));
    for name in bridges {
        let ok = !name.is_empty()
            && name.len() < 16
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(Error::Invalid(format!("bad bridge name {name:?}")));
        }
    }
    for p in &rules.ports {
        let Some(h) = p.host_ip else { continue };
        if h.is_ipv4() != p.container_ip.is_ipv4() {
            return Err(Error::Invalid(format!(
                "host address {h} and container address {} are of different families",
                p.container_ip
            )));
        }
    }
    Ok(())
}

/// Run `tool args`, feeding `stdin`; stdout when it exits 0, else [`Error::Tool`] with its
/// stderr and `table`.
fn run(tool: &str, args: &[&str], stdin: Option<&str>, table: &str) -> Result<String> {
    let spawn_err = |source| Error::Spawn {
        tool: tool.to_string(),
        source,
    };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(input) = stdin {
        // Dropped at the end of this block: the tool sees end of input.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = format!("exited with {}", out.status);
        }
        Err(Error::Tool {
            tool: format!("{tool} {}", args.join(" ")),
            table: table.to_string(),
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two networks (one dual-stack with two published ports, one internal) and a v6 port.
    pub(super) fn example() -> Ruleset {
        Ruleset {
            networks: vec![
                NetworkRules {
                    bridge: "berth0".into(),
                    subnets: vec![
                        "172.18.0.1/16".parse().unwrap(),
                        "fd00:18::/64".parse().unwrap(),
                    ],
                    internal: false,
                    masquerade: true,
                },
                NetworkRules {
                    bridge: "berth-1a2b3c4d5".into(),
                    subnets: vec!["172.19.0.0/16".parse().unwrap()],
                    internal: true,
                    masquerade: false,
                },
            ],
            ports: vec![
                PortRule {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: "172.18.0.2".parse().unwrap(),
                    container_port: 80,
                    bridge: "berth0".into(),
                },
                PortRule {
                    proto: Proto::Udp,
                    host_ip: Some("192.0.2.10".parse().unwrap()),
                    host_port: 5353,
                    container_ip: "172.18.0.2".parse().unwrap(),
                    container_port: 53,
                    bridge: "berth0".into(),
                },
                PortRule {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8443,
                    container_ip: "fd00:18::2".parse().unwrap(),
                    container_port: 443,
                    bridge: "berth0".into(),
                },
            ],
        }
    }

    #[test]
    fn ipnet_network_and_parse() {
        let n: IpNet = "172.18.3.4/16".parse().unwrap();
        assert_eq!(cidr(&n), "172.18.0.0/16");
        assert_eq!(n.to_string(), "172.18.3.4/16");
        let n: IpNet = "fd00:18::5/64".parse().unwrap();
        assert_eq!(cidr(&n), "fd00:18::/64");
        assert_eq!(cidr(&"10.0.0.1/0".parse::<IpNet>().unwrap()), "0.0.0.0/0");
        assert_eq!(
            cidr(&"10.0.0.1/32".parse::<IpNet>().unwrap()),
            "10.0.0.1/32"
        );
        assert!("10.0.0.1/33".parse::<IpNet>().is_err());
        assert!("10.0.0.1".parse::<IpNet>().is_err());
    }

    #[test]
    fn nft_render_empty_only_deletes() {
        assert_eq!(
            nft::render(&Ruleset::default()),
            "table inet berth\ndelete table inet berth\n"
        );
    }

    #[test]
    fn nft_render_example() {
        let s = nft::render(&example());
        println!("{s}");
        assert!(s.starts_with("table inet berth\ndelete table inet berth\ntable inet berth {\n"));
        for want in [
            "type nat hook prerouting priority dstnat; policy accept;",
            "type nat hook output priority -100; policy accept;",
            "fib daddr type local jump published-ports",
            "meta nfproto ipv4 tcp dport 8080 dnat ip to 172.18.0.2:80",
            "ip daddr 192.0.2.10 udp dport 5353 dnat ip to 172.18.0.2:53",
            "meta nfproto ipv6 tcp dport 8443 dnat ip6 to [fd00:18::2]:443",
            "ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade",
            "ct status dnat ip saddr 172.18.0.0/16 oifname \"berth0\" masquerade",
            "ct status dnat ip6 saddr fd00:18::/64 oifname \"berth0\" masquerade",
            "ip saddr 172.18.0.0/16 oifname != \"berth0\" masquerade",
            "ip6 saddr fd00:18::/64 oifname != \"berth0\" masquerade",
            "iifname \"berth-1a2b3c4d5\" oifname != \"berth-1a2b3c4d5\" drop",
            "oifname \"berth-1a2b3c4d5\" iifname != \"berth-1a2b3c4d5\" drop",
            "iifname \"berth0\" oifname { \"berth-1a2b3c4d5\" } drop",
            "iifname \"berth-1a2b3c4d5\" oifname { \"berth0\" } drop",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        // The internal network is not masqueraded; nothing is ever accepted.
        assert!(!s.contains("172.19.0.0/16"));
        assert!(!s.contains(" accept\n") && !s.contains("accept comment"));
    }

    #[test]
    fn iptables_render_example() {
        let v4 = iptables::render(iptables::Family::V4, &example());
        let v6 = iptables::render(iptables::Family::V6, &example());
        println!("{v4}\n{v6}");
        for want in [
            "*nat\n:BERTH-PREROUTING - [0:0]\n",
            "-F BERTH-PORTS\n",
            "-A BERTH-PREROUTING -m addrtype --dst-type LOCAL -j BERTH-PORTS",
            "-A BERTH-OUTPUT -m addrtype --dst-type LOCAL -j BERTH-PORTS",
            "-A BERTH-PORTS -p tcp -m tcp --dport 8080 ",
            "-j DNAT --to-destination 172.18.0.2:80",
            "-A BERTH-PORTS -d 192.0.2.10 -p udp -m udp --dport 5353 ",
            "-A BERTH-POSTROUTING -s 127.0.0.0/8 -o berth0 ",
            "-A BERTH-POSTROUTING -s 172.18.0.0/16 -o berth0 -m conntrack --ctstate DNAT ",
            "-A BERTH-POSTROUTING -s 172.18.0.0/16 ! -o berth0 ",
            "*filter\n:BERTH-FORWARD - [0:0]\n-F BERTH-FORWARD\n",
            "-A BERTH-FORWARD -i berth-1a2b3c4d5 ! -o berth-1a2b3c4d5 ",
            "-A BERTH-FORWARD -o berth-1a2b3c4d5 ! -i berth-1a2b3c4d5 ",
            "-A BERTH-FORWARD -i berth0 -o berth-1a2b3c4d5 ",
            "-A BERTH-FORWARD -i berth-1a2b3c4d5 -o berth0 ",
        ] {
            assert!(v4.contains(want), "missing {want:?} in\n{v4}");
        }
        assert!(!v4.contains("fd00") && !v4.contains("8443"));
        assert!(v6.contains("-j DNAT --to-destination [fd00:18::2]:443"));
        assert!(v6.contains("-A BERTH-POSTROUTING -s fd00:18::/64 ! -o berth0 "));
        assert!(v6.contains("-A BERTH-POSTROUTING -s fd00:18::/64 -o berth0 -m conntrack"));
        assert!(!v6.contains("127.0.0.0/8") && !v6.contains("172.18"));
        // Forwarding isolation holds for both families.
        assert!(v6.contains("-A BERTH-FORWARD -i berth0 -o berth-1a2b3c4d5 "));
        assert_eq!(v4.matches("COMMIT\n").count(), 2);
    }

    #[test]
    fn invalid_rules_are_refused() {
        let mut r = example();
        r.networks[0].bridge = "bad\"name".into();
        assert!(matches!(
            apply(Backend::Nftables, &r),
            Err(Error::Invalid(_))
        ));
        let mut r = example();
        r.ports[1].host_ip = Some("::1".parse().unwrap());
        assert!(matches!(
            apply(Backend::Iptables, &r),
            Err(Error::Invalid(_))
        ));
    }
}
