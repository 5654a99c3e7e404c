//! The nftables backend: everything in one table `inet berth`, replaced in one transaction.

use std::fmt::Write;
use std::net::IpAddr;

use super::{PortRule, Ruleset};

/// The table berth owns, as errors name it.
pub(super) const TABLE: &str = "inet berth";

/// The whole `nft -f -` script: create the table if missing (so the delete cannot fail),
/// delete it, and (unless `rules` is empty) define it anew. nft applies a file as one
/// transaction: the old rules are in force until the new ones are.
pub(super) fn render(rules: &Ruleset) -> String {
    let mut s = String::from("table inet berth\ndelete table inet berth\n");
    if rules.is_empty() {
        return s;
    }
    let w = &mut s;
    line(w, 0, "table inet berth {");
    line(
        w,
        1,
        "comment \"managed by berth: rewritten on every change\"",
    );

    // 1. Published ports: DNAT of traffic to local addresses, from outside/containers
    // (prerouting) and from the host itself (output).
    // nft knows the name `dstnat` in prerouting only; in output it is the same -100.
    for (hook, prio) in [("prerouting", "dstnat"), ("output", "-100")] {
        line(w, 1, &format!("chain {hook} {{"));
        line(
            w,
            2,
            &format!("type nat hook {hook} priority {prio}; policy accept;"),
        );
        line(w, 2, "fib daddr type local jump published-ports");
        line(w, 1, "}");
    }
    line(w, 1, "chain published-ports {");
    for p in &rules.ports {
        line(w, 2, &dnat(p));
    }
    line(w, 1, "}");

    line(w, 1, "chain postrouting {");
    line(
        w,
        2,
        "type nat hook postrouting priority srcnat; policy accept;",
    );
    let mut bridges: Vec<&str> = rules.networks.iter().map(|n| n.bridge.as_str()).collect();
    for p in &rules.ports {
        if !bridges.contains(&p.bridge.as_str()) {
            bridges.push(&p.bridge);
        }
    }
    // 2. Published ports reached via 127.0.0.1 (needs route_localnet on the bridge).
    for b in &bridges {
        line(
            w,
            2,
            &format!(
                "ip saddr 127.0.0.0/8 oifname \"{b}\" masquerade comment \"published port via loopback\""
            ),
        );
    }
    // 3. Hairpin: a container reaching a published port on its own bridge. The input
    // interface is unknown in postrouting, hence the network's subnets as sources.
    // Internal networks publish nothing.
    for n in rules.networks.iter().filter(|n| !n.internal) {
        for net in &n.subnets {
            line(
                w,
                2,
                &format!(
                    "ct status dnat {} saddr {} oifname \"{}\" masquerade comment \"hairpin\"",
                    family(net.addr()),
                    super::cidr(net),
                    n.bridge
                ),
            );
        }
    }
    // 4. Outbound NAT.
    for n in rules
        .networks
        .iter()
        .filter(|n| n.masquerade && !n.internal)
    {
        for net in &n.subnets {
            line(
                w,
                2,
                &format!(
                    "{} saddr {} oifname != \"{}\" masquerade comment \"outbound {}\"",
                    family(net.addr()),
                    super::cidr(net),
                    n.bridge,
                    n.bridge
                ),
            );
        }
    }
    line(w, 1, "}");

    line(w, 1, "chain forward {");
    line(
        w,
        2,
        "type filter hook forward priority filter; policy accept;",
    );
    // 5. Internal networks: nothing in or out except among members.
    for n in rules.networks.iter().filter(|n| n.internal) {
        let b = &n.bridge;
        line(
            w,
            2,
            &format!("iifname \"{b}\" oifname != \"{b}\" drop comment \"internal {b}\""),
        );
        line(
            w,
            2,
            &format!("oifname \"{b}\" iifname != \"{b}\" drop comment \"internal {b}\""),
        );
    }
    // 6. Isolation between berth's bridges.
    let nets: Vec<&str> = rules.networks.iter().map(|n| n.bridge.as_str()).collect();
    for b in &nets {
        let others: Vec<String> = nets
            .iter()
            .filter(|o| *o != b)
            .map(|o| format!("\"{o}\""))
            .collect();
        if !others.is_empty() {
            line(
                w,
                2,
                &format!(
                    "iifname \"{b}\" oifname {{ {} }} drop comment \"isolation {b}\"",
                    others.join(", ")
                ),
            );
        }
    }
    line(w, 1, "}");
    line(w, 0, "}");
    s
}

/// One published port's DNAT rule.
fn dnat(p: &PortRule) -> String {
    let (fam, to) = match p.container_ip {
        IpAddr::V4(a) => ("ip", format!("{a}:{}", p.container_port)),
        IpAddr::V6(a) => ("ip6", format!("[{a}]:{}", p.container_port)),
    };
    let daddr = match p.host_ip {
        Some(h) => format!("{fam} daddr {h}"),
        None => format!("meta nfproto {}", if fam == "ip" { "ipv4" } else { "ipv6" }),
    };
    let proto = p.proto.as_str();
    format!(
        "{daddr} {proto} dport {} dnat {fam} to {to} comment \"{} {proto}/{}\"",
        p.host_port, p.bridge, p.host_port
    )
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn line(w: &mut String, indent: usize, text: &str) {
    let _ = writeln!(w, "{}{text}", "\t".repeat(indent));
}
