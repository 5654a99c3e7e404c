//! The networking flags of `run` and `create`, parsed as the docker CLI parses them (its
//! `opts/network.go`, `opts/hosts.go`, `opts/opts.go`, `container/opts.go` and go-connections'
//! `nat`):
//!
//! - `-p [ip:][hostPort|range:]containerPort[/proto]` (an IPv6 `ip` may be in brackets) and the
//!   long form `target=80,published=8080,protocol=udp`: a container port range becomes one
//!   binding per port (`8000-8001:80-81` is 80→8000 and 81→8001), a host range for one
//!   container port stays a range (`7000-7010:71`); every published port is also exposed;
//! - `--expose 80[-90][/proto]` adds to `ExposedPorts` (the protocol is not checked, as docker's);
//! - `--network NAME` or `--network name=NAME,alias=..,ip=..` (several allowed): the first
//!   network takes `--network-alias`, `--ip`, `--ip6`, `--mac-address`; one network without any
//!   endpoint setting sends no endpoint; no `--network` names the `default` endpoint;
//! - `--add-host NAME:IP` or `NAME=IP` (`[IP]` allowed) is sent as `NAME:IP`; `--dns` addresses
//!   are sent in canonical form; `--dns-search` must be a domain (or `.`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use anyhow::{bail, Result};
use bollard_stubs::models::{EndpointIpamConfig, EndpointSettings, PortBinding, PortMap};

/// One `--network` value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkAttachment {
    pub target: String,
    pub aliases: Vec<String>,
    pub ipv4: String,
    pub ipv6: String,
    pub mac: String,
    pub link_local_ips: Vec<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub gw_priority: i64,
}

/// `--network`: a name, or the long syntax `name=..,alias=..,ip=..,ip6=..,mac-address=..,
/// link-local-ip=..,driver-opt=k=v,gw-priority=N` (docker lower-cases those fields).
pub fn parse_network(value: &str) -> std::result::Result<NetworkAttachment, String> {
    if !long_syntax(value) {
        return Ok(NetworkAttachment {
            target: value.to_string(),
            ..Default::default()
        });
    }
    let mut n = NetworkAttachment::default();
    for field in super::opts::csv_fields(value)? {
        let lower = field.to_lowercase();
        let Some((key, val)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("invalid field {field}"));
        };
        let (key, val) = (key.trim(), val.trim().to_string());
        match key {
            "name" => n.target = val,
            "alias" => n.aliases.push(val),
            "ip" => n.ipv4 = val,
            "ip6" => n.ipv6 = val,
            "mac-address" => n.mac = val,
            "link-local-ip" => n.link_local_ips.push(val),
            "driver-opt" => {
                let (k, v) = val
                    .split_once('=')
                    .ok_or_else(|| "invalid key value pair format in driver options".to_string())?;
                n.driver_opts
                    .insert(k.trim().to_lowercase(), v.trim().to_string());
            }
            "gw-priority" => {
                n.gw_priority = val
                    .parse()
                    .map_err(|_| format!("invalid gw-priority: {val}"))?
            }
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if n.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(n)
}

/// Go's `\w+=\w+(,\w+=\w+)*` found anywhere in `value` (unanchored, as docker matches it).
fn long_syntax(value: &str) -> bool {
    let b = value.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]))
}

/// docker's `NetworkMode.IsUserDefined` on Linux.
pub fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// The per-container flags that apply to the first network.
pub struct EndpointFlags<'a> {
    pub aliases: &'a [String],
    pub ipv4: Option<&'a str>,
    pub ipv6: Option<&'a str>,
    pub mac: Option<&'a str>,
}

fn apply_container_options(n: &mut NetworkAttachment, f: &EndpointFlags<'_>) -> Result<()> {
    if !n.aliases.is_empty() && !f.aliases.is_empty() {
        bail!("conflicting options: cannot specify both --network-alias and per-network alias");
    }
    if !n.ipv4.is_empty() && f.ipv4.is_some() {
        bail!("conflicting options: cannot specify both --ip and per-network IPv4 address");
    }
    if !n.ipv6.is_empty() && f.ipv6.is_some() {
        bail!("conflicting options: cannot specify both --ip6 and per-network IPv6 address");
    }
    if !n.mac.is_empty() && f.mac.is_some() {
        bail!("conflicting options: cannot specify both --mac-address and per-network MAC address");
    }
    if !f.aliases.is_empty() {
        n.aliases = f.aliases.to_vec();
    }
    if let Some(ip) = f.ipv4.filter(|s| !s.is_empty()) {
        n.ipv4 = ip.to_string();
    }
    if let Some(ip) = f.ipv6.filter(|s| !s.is_empty()) {
        n.ipv6 = ip.to_string();
    }
    if let Some(mac) = f.mac.filter(|s| !s.is_empty()) {
        n.mac = mac.to_string();
    }
    Ok(())
}

fn endpoint_settings(n: &NetworkAttachment) -> Result<EndpointSettings> {
    if n.target.trim().is_empty() {
        bail!("no name set for network");
    }
    if !is_user_defined(&n.target) && !n.aliases.is_empty() {
        bail!("network-scoped aliases are only supported for user-defined networks");
    }
    let mut ep = EndpointSettings {
        aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
        driver_opts: (!n.driver_opts.is_empty())
            .then(|| n.driver_opts.clone().into_iter().collect()),
        gw_priority: (n.gw_priority != 0).then_some(n.gw_priority),
        ..Default::default()
    };
    if !n.ipv4.is_empty() || !n.ipv6.is_empty() || !n.link_local_ips.is_empty() {
        ep.ipam_config = Some(EndpointIpamConfig {
            ipv4_address: (!n.ipv4.is_empty()).then(|| n.ipv4.clone()),
            ipv6_address: (!n.ipv6.is_empty()).then(|| n.ipv6.clone()),
            link_local_ips: (!n.link_local_ips.is_empty()).then(|| n.link_local_ips.clone()),
        });
    }
    if !n.mac.is_empty() {
        if !is_mac(n.mac.trim()) {
            bail!("{} is not a valid mac address", n.mac);
        }
        ep.mac_address = Some(n.mac.clone());
    }
    Ok(ep)
}

/// Go's `net.ParseMAC` for the 6-byte forms (`aa:bb:..`, `aa-bb-..`, `aabb.ccdd.eeff`).
fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let colon: Vec<&str> = s.split(':').collect();
    let dash: Vec<&str> = s.split('-').collect();
    let dot: Vec<&str> = s.split('.').collect();
    (colon.len() == 6 && colon.iter().all(|p| hex(p, 2)))
        || (dash.len() == 6 && dash.iter().all(|p| hex(p, 2)))
        || (dot.len() == 3 && dot.iter().all(|p| hex(p, 4)))
}

/// `HostConfig.NetworkMode` and `NetworkingConfig.EndpointsConfig`, as docker's
/// `parseNetworkOpts` makes them.
pub fn network_config(
    networks: &[NetworkAttachment],
    flags: &EndpointFlags<'_>,
) -> Result<(String, HashMap<String, EndpointSettings>)> {
    let mut endpoints = HashMap::new();
    if networks.is_empty() {
        let mut n = NetworkAttachment {
            target: "default".into(),
            ..Default::default()
        };
        apply_container_options(&mut n, flags)?;
        endpoints.insert("default".to_string(), endpoint_settings(&n)?);
        return Ok(("default".into(), endpoints));
    }
    let (mut user_defined, mut builtin) = (false, false);
    for (i, n) in networks.iter().enumerate() {
        let mut n = n.clone();
        if is_user_defined(&n.target) {
            user_defined = true;
        } else {
            builtin = true;
        }
        if i == 0 {
            apply_container_options(&mut n, flags)?;
        }
        let ep = endpoint_settings(&n)?;
        if endpoints.contains_key(&n.target) {
            bail!("network {:?} is specified multiple times", n.target);
        }
        // One network without settings: no endpoint (the daemon makes it anyway).
        if i == 0 && networks.len() == 1 && ep == EndpointSettings::default() {
            continue;
        }
        endpoints.insert(n.target.clone(), ep);
    }
    if user_defined && builtin {
        bail!("conflicting options: cannot attach both user-defined and non-user-defined network-modes");
    }
    Ok((networks[0].target.clone(), endpoints))
}

/// Go's `strconv.ParseUint(s, 10, 16)` error text.
fn parse_u16(s: &str) -> std::result::Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    match s.parse::<u64>() {
        Ok(n) if n <= u64::from(u16::MAX) => Ok(n),
        _ => Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        )),
    }
}

/// go-connections' `ParsePortRange`: `8000` or `8000-9000`.
fn parse_port_range(ports: &str) -> std::result::Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let Some((a, rest)) = ports.split_once('-') else {
        let p = parse_u16(ports)?;
        return Ok((p, p));
    };
    let b = rest.split('-').next().unwrap_or("");
    let (start, end) = (parse_u16(a)?, parse_u16(b)?);
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// go-connections' `SplitProtoPort`: (`proto`, `port`), tcp by default.
fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

/// docker's `convertToStandardNotation`: the long `-p target=..,published=..` form as
/// `published:target/protocol`.
fn standard_notation(publish: &str) -> Result<String> {
    if !publish.contains('=') {
        return Ok(publish.to_string());
    }
    let mut params: HashMap<&str, &str> = HashMap::from([("protocol", "tcp")]);
    for param in publish.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                params.insert(k, v);
            }
            _ => bail!("invalid publish opts format (should be name=value but got '{param}')"),
        }
    }
    let Some(target) = params.get("target") else {
        bail!("missing required field: target");
    };
    Ok(format!(
        "{}:{target}/{}",
        params.get("published").unwrap_or(&""),
        params["protocol"]
    ))
}

/// One `-p` spec as (port key, binding) pairs: go-connections' `ParsePortSpec`.
fn parse_port_spec(raw: &str) -> Result<Vec<(String, PortBinding)>> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto_port(container);
    let mut ip = ip;
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            Some(inner) if !inner.contains(['[', ']']) => ip = inner.to_string(),
            _ => bail!("invalid IP address {ip}: address {ip}:: missing port in address"),
        }
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        bail!("no port specified: {raw}<empty>");
    }
    let (start, end) = parse_port_range(&container)
        .map_err(|_| anyhow::anyhow!("invalid containerPort: {container}"))?;
    let (host_start, host_end) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| anyhow::anyhow!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        bail!("invalid ranges specified for container and host Ports: {container} and {host_port}");
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut host = if host_port.is_empty() {
            String::new()
        } else {
            (host_start + i).to_string()
        };
        if start == end && host_start != host_end {
            host = format!("{host}-{host_end}");
        }
        out.push((
            format!("{}/{proto}", start + i),
            PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(host),
            },
        ));
    }
    Ok(out)
}

/// `Config.ExposedPorts` and `HostConfig.PortBindings` from `-p` and `--expose`.
pub fn ports(publish: &[String], expose: &[String]) -> Result<(BTreeSet<String>, PortMap)> {
    let mut exposed = BTreeSet::new();
    let mut bindings: PortMap = HashMap::new();
    for p in publish {
        for (port, binding) in parse_port_spec(&standard_notation(p)?)? {
            exposed.insert(port.clone());
            bindings
                .entry(port)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    for e in expose {
        if e.contains(':') {
            bail!("invalid port format for --expose: {e}");
        }
        let (proto, port) = split_proto_port(e);
        let (start, end) = parse_port_range(&port).map_err(|err| {
            anyhow::anyhow!("invalid range format for --expose: {e}, error: {err}")
        })?;
        for p in start..=end {
            exposed.insert(format!("{p}/{proto}"));
        }
    }
    Ok((exposed, bindings))
}

/// Go's `net.IP.String()` of a parsed address (IPv4-mapped IPv6 prints as IPv4).
fn go_ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// `--dns`: an IP address, sent in canonical form (docker's `ValidateIPAddress`).
pub fn parse_dns(value: &str) -> std::result::Result<String, String> {
    value
        .trim()
        .parse::<IpAddr>()
        .map(go_ip_string)
        .map_err(|_| format!("IP address is not correctly formatted: {value}"))
}

/// `--add-host NAME:IP` or `NAME=IP` (`[IP]` allowed, `host-gateway` as is), sent as
/// `NAME:IP` (docker's `ValidateExtraHost`).
pub fn parse_extra_host(value: &str) -> std::result::Result<String, String> {
    let split = value.split_once('=').or_else(|| value.split_once(':'));
    let Some((name, ip)) = split.filter(|(k, _)| !k.is_empty() && !k.contains(':')) else {
        return Err(format!("bad format for add-host: {value:?}"));
    };
    let mut ip = ip;
    if ip != "host-gateway" {
        if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            ip = &ip[1..ip.len() - 1];
        }
        if ip.trim().parse::<IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
    }
    Ok(format!("{name}:{ip}"))
}

/// `--dns-search`: a domain name (a trailing dot dropped) or `.` (docker's `ValidateDNSSearch`).
pub fn parse_dns_search(value: &str) -> std::result::Result<String, String> {
    let v = value.trim_matches(' ');
    if v == "." {
        return Ok(v.to_string());
    }
    let invalid = || format!("{v} is not a valid domain");
    if !v.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    let name = v.trim_end();
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if name.len() < 255 && name.split('.').all(label_ok) {
        Ok(name.to_string())
    } else {
        Err(invalid())
    }
}

/// docker's warning for a loopback `--dns`, which the container cannot reach.
pub fn localhost_dns_warning(dns: &[String]) -> Option<String> {
    dns.iter()
        .find(|d| d.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
        .map(|d| format!("WARNING: Localhost DNS ({d}) may fail in containers."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(p: &[&str], e: &[&str]) -> Result<(BTreeSet<String>, PortMap)> {
        let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        let e: Vec<String> = e.iter().map(|s| s.to_string()).collect();
        ports(&p, &e)
    }

    fn err(p: &[&str], e: &[&str]) -> String {
        format!("{:#}", specs(p, e).unwrap_err())
    }

    #[test]
    fn port_errors_like_docker() {
        // docker 28's messages for the same flags.
        assert_eq!(err(&["bogus"], &[]), "invalid containerPort: bogus");
        assert_eq!(err(&["1:2:3:4"], &[]), "invalid IP address: 1:2");
        assert_eq!(
            err(&["8000-8002:80-81"], &[]),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
        assert_eq!(err(&["70000:80"], &[]), "invalid hostPort: 70000");
        assert_eq!(err(&["80/foo"], &[]), "invalid proto: foo");
        assert_eq!(err(&["80:"], &[]), "no port specified: 80:<empty>");
        assert_eq!(
            err(&[], &["bogus"]),
            "invalid range format for --expose: bogus, error: strconv.ParseUint: parsing \"bogus\": invalid syntax"
        );
        assert_eq!(
            err(&[], &["80-78"]),
            "invalid range format for --expose: 80-78, error: invalid range specified for port: 80-78"
        );
        assert_eq!(
            err(&[], &["80:90"]),
            "invalid port format for --expose: 80:90"
        );
    }

    #[test]
    fn host_flags_like_docker() {
        assert_eq!(parse_extra_host("h:1.2.3.4").unwrap(), "h:1.2.3.4");
        assert_eq!(parse_extra_host("h2=::1").unwrap(), "h2:::1");
        assert_eq!(parse_extra_host("h=[::1]").unwrap(), "h:::1");
        assert_eq!(
            parse_extra_host("bogus").unwrap_err(),
            "bad format for add-host: \"bogus\""
        );
        assert_eq!(
            parse_extra_host("h:bogus").unwrap_err(),
            "invalid IP address in add-host: \"bogus\""
        );
        assert_eq!(
            parse_extra_host("[::1]:h").unwrap_err(),
            "invalid IP address in add-host: \":1]:h\""
        );
        assert_eq!(parse_dns("0:0::1").unwrap(), "::1");
        assert_eq!(parse_dns("::ffff:1.2.3.4").unwrap(), "1.2.3.4");
        assert_eq!(
            parse_dns("bogus").unwrap_err(),
            "IP address is not correctly formatted: bogus"
        );
        assert_eq!(parse_dns_search("example.com.").unwrap(), "example.com");
        assert_eq!(parse_dns_search(".").unwrap(), ".");
        assert_eq!(
            parse_dns_search("bogus_x").unwrap_err(),
            "bogus_x is not a valid domain"
        );
        assert_eq!(
            localhost_dns_warning(&["8.8.8.8".into(), "::1".into()]).unwrap(),
            "WARNING: Localhost DNS (::1) may fail in containers."
        );
    }

    #[test]
    fn network_flags_like_docker() {
        let n = parse_network("name=n1,alias=Web,ip=10.9.0.6,driver-opt=k=v").unwrap();
        assert_eq!(
            (n.target.as_str(), n.aliases, n.ipv4.as_str()),
            ("n1", vec!["web".to_string()], "10.9.0.6")
        );
        assert_eq!(parse_network("container:x").unwrap().target, "container:x");
        assert_eq!(
            parse_network("alias=x").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(
            parse_network("name=n1,bogus=1").unwrap_err(),
            "invalid field key bogus"
        );
        let none = EndpointFlags {
            aliases: &[],
            ipv4: None,
            ipv6: None,
            mac: None,
        };
        let nets = |names: &[&str]| -> Vec<NetworkAttachment> {
            names.iter().map(|n| parse_network(n).unwrap()).collect()
        };
        let e = |names: &[&str], f: &EndpointFlags| {
            format!("{:#}", network_config(&nets(names), f).unwrap_err())
        };
        assert_eq!(
            e(&["n1", "host"], &none),
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
        );
        assert_eq!(
            e(&["n1", "n1"], &none),
            "network \"n1\" is specified multiple times"
        );
        let alias = ["x".to_string()];
        let with_alias = EndpointFlags {
            aliases: &alias,
            ..none
        };
        assert_eq!(
            e(&[], &with_alias),
            "network-scoped aliases are only supported for user-defined networks"
        );
        assert_eq!(
            e(&["name=n1,alias=y"], &with_alias),
            "conflicting options: cannot specify both --network-alias and per-network alias"
        );
        let bad_mac = EndpointFlags {
            mac: Some("bogus"),
            ..none
        };
        assert_eq!(e(&[], &bad_mac), "bogus is not a valid mac address");
    }
}
