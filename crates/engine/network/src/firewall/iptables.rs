//! The iptables backend: chains `BERTH-*` in the nat and filter tables of iptables and
//! ip6tables, refilled in one `iptables-restore --noflush` per family, and the jumps from
//! the built-in chains inserted when missing.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use super::{run, Result, Ruleset};

/// berth's chains, by table.
const CHAINS: &[(&str, &str)] = &[
    ("nat", "BERTH-PREROUTING"),
    ("nat", "BERTH-OUTPUT"),
    ("nat", "BERTH-PORTS"),
    ("nat", "BERTH-POSTROUTING"),
    ("filter", "BERTH-FORWARD"),
];

/// The jumps from the built-in chains: (table, built-in chain, berth's chain).
const JUMPS: &[(&str, &str, &str)] = &[
    ("nat", "PREROUTING", "BERTH-PREROUTING"),
    ("nat", "OUTPUT", "BERTH-OUTPUT"),
    ("nat", "POSTROUTING", "BERTH-POSTROUTING"),
    ("filter", "FORWARD", "BERTH-FORWARD"),
];

const TABLES: &[&str] = &["nat", "filter"];

/// One address family's tools.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
    fn has(self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == (self == Family::V4)
    }
}

pub(super) fn apply(rules: &Ruleset) -> Result<()> {
    for family in [Family::V4, Family::V6] {
        apply_family(family, rules)?;
    }
    Ok(())
}

fn apply_family(family: Family, rules: &Ruleset) -> Result<()> {
    let tool = family.tool();
    let restore = format!("{tool}-restore");
    let save = format!("{tool}-save");
    // What berth has now: its chains, and the rules of the built-in chains that jump there.
    let mut existing: Vec<(&str, BTreeSet<String>, Vec<String>)> = Vec::new();
    for table in TABLES {
        let text = run(&save, &["-t", table], None, table)?;
        let mut chains = BTreeSet::new();
        let mut jumps = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix(":BERTH-") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                chains.insert(format!("BERTH-{name}"));
            } else if l.starts_with("-A ")
                && !l.starts_with("-A BERTH-")
                && l.contains(" -j BERTH-")
            {
                jumps.push(l.to_string());
            }
        }
        existing.push((table, chains, jumps));
    }

    if rules.is_empty() {
        let mut script = String::new();
        for (table, chains, jumps) in &existing {
            if chains.is_empty() && jumps.is_empty() {
                continue;
            }
            let _ = writeln!(script, "*{table}");
            for j in jumps {
                let _ = writeln!(script, "-D {}", &j[3..]);
            }
            for c in chains {
                let _ = writeln!(script, "-F {c}");
            }
            for c in chains {
                let _ = writeln!(script, "-X {c}");
            }
            script.push_str("COMMIT\n");
        }
        if !script.is_empty() {
            run(&restore, &["-w", "--noflush"], Some(&script), "nat, filter")?;
        }
        return Ok(());
    }

    let mut script = render(family, rules);
    // Chains of an older berth that this one no longer has: unhook, empty and remove them.
    let mut stale = String::new();
    for (table, chains, jumps) in &existing {
        let ours: Vec<&str> = CHAINS
            .iter()
            .filter(|(t, _)| t == table)
            .map(|(_, c)| *c)
            .collect();
        let gone: Vec<&String> = chains
            .iter()
            .filter(|c| !ours.contains(&c.as_str()))
            .collect();
        if gone.is_empty() {
            continue;
        }
        let _ = writeln!(stale, "*{table}");
        for j in jumps {
            if gone.iter().any(|c| j.ends_with(&format!("-j {c}"))) {
                let _ = writeln!(stale, "-D {}", &j[3..]);
            }
        }
        for c in &gone {
            let _ = writeln!(stale, "-F {c}");
        }
        for c in &gone {
            let _ = writeln!(stale, "-X {c}");
        }
        stale.push_str("COMMIT\n");
    }
    script.push_str(&stale);
    run(&restore, &["-w", "--noflush"], Some(&script), "nat, filter")?;

    for (table, builtin, chain) in JUMPS {
        let spec = ["-w", "-t", table, "-C", builtin, "-j", chain];
        if run(tool, &spec, None, table).is_err() {
            let insert = ["-w", "-t", table, "-I", builtin, "1", "-j", chain];
            run(tool, &insert, None, table)?;
        }
    }
    Ok(())
}

/// The `iptables-restore --noflush` input that (re)declares, flushes and fills berth's
/// chains for one family.
pub(super) fn render(family: Family, rules: &Ruleset) -> String {
    let mut s = String::new();
    let w = &mut s;
    for table in TABLES {
        let _ = writeln!(w, "*{table}");
        for (_, c) in CHAINS.iter().filter(|(t, _)| t == table) {
            let _ = writeln!(w, ":{c} - [0:0]");
        }
        for (_, c) in CHAINS.iter().filter(|(t, _)| t == table) {
            let _ = writeln!(w, "-F {c}");
        }
        if *table == "nat" {
            render_nat(w, family, rules);
        } else {
            render_filter(w, rules);
        }
        w.push_str("COMMIT\n");
    }
    s
}

fn comment(text: &str) -> String {
    format!("-m comment --comment \"{text}\"")
}

fn render_nat(w: &mut String, family: Family, rules: &Ruleset) {
    // 1. Published ports, from outside/containers and from the host itself.
    for chain in ["BERTH-PREROUTING", "BERTH-OUTPUT"] {
        let _ = writeln!(w, "-A {chain} -m addrtype --dst-type LOCAL -j BERTH-PORTS");
    }
    for p in rules.ports.iter().filter(|p| family.has(&p.container_ip)) {
        let daddr = p.host_ip.map(|h| format!(" -d {h}")).unwrap_or_default();
        let to = match p.container_ip {
            IpAddr::V4(a) => format!("{a}:{}", p.container_port),
            IpAddr::V6(a) => format!("[{a}]:{}", p.container_port),
        };
        let proto = p.proto.as_str();
        let _ = writeln!(
            w,
            "-A BERTH-PORTS{daddr} -p {proto} -m {proto} --dport {} {} -j DNAT --to-destination {to}",
            p.host_port,
            comment(&format!("{} {proto}/{}", p.bridge, p.host_port)),
        );
    }
    let mut bridges: Vec<&str> = rules.networks.iter().map(|n| n.bridge.as_str()).collect();
    for p in &rules.ports {
        if !bridges.contains(&p.bridge.as_str()) {
            bridges.push(&p.bridge);
        }
    }
    // 2. Published ports via 127.0.0.1 (needs route_localnet on the bridge).
    for b in &bridges {
        if family == Family::V4 {
            let _ = writeln!(
                w,
                "-A BERTH-POSTROUTING -s 127.0.0.0/8 -o {b} {} -j MASQUERADE",
                comment("published port via loopback")
            );
        }
    }
    // 3. Hairpin: the input interface is unknown in postrouting, hence the network's subnets.
    // Internal networks publish nothing.
    for n in rules.networks.iter().filter(|n| !n.internal) {
        for net in n.subnets.iter().filter(|s| family.has(&s.addr())) {
            let _ = writeln!(
                w,
                "-A BERTH-POSTROUTING -s {} -o {} -m conntrack --ctstate DNAT {} -j MASQUERADE",
                super::cidr(net),
                n.bridge,
                comment("hairpin")
            );
        }
    }
    // 4. Outbound NAT.
    for n in rules
        .networks
        .iter()
        .filter(|n| n.masquerade && !n.internal)
    {
        for net in n.subnets.iter().filter(|s| family.has(&s.addr())) {
            let _ = writeln!(
                w,
                "-A BERTH-POSTROUTING -s {} ! -o {} {} -j MASQUERADE",
                super::cidr(net),
                n.bridge,
                comment(&format!("outbound {}", n.bridge))
            );
        }
    }
}

fn render_filter(w: &mut String, rules: &Ruleset) {
    // 5. Internal networks.
    for n in rules.networks.iter().filter(|n| n.internal) {
        let b = &n.bridge;
        let c = comment(&format!("internal {b}"));
        let _ = writeln!(w, "-A BERTH-FORWARD -i {b} ! -o {b} {c} -j DROP");
        let _ = writeln!(w, "-A BERTH-FORWARD -o {b} ! -i {b} {c} -j DROP");
    }
    // 6. Isolation between berth's bridges.
    for a in &rules.networks {
        for b in rules.networks.iter().filter(|b| b.bridge != a.bridge) {
            let _ = writeln!(
                w,
                "-A BERTH-FORWARD -i {} -o {} {} -j DROP",
                a.bridge,
                b.bridge,
                comment(&format!("isolation {}", a.bridge))
            );
        }
    }
}
