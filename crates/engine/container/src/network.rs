//! A container's networking as its record asks for it: the network mode resolved at
//! create, the ports to publish at start, and the view [`berth_network`] is given of it.

use std::net::IpAddr;

use berth_network::{EndpointRequest, NetworkService, PortRequest, Proto};
use bollard_stubs::models::{ContainerConfig, HostConfig, NetworkingConfig};

use crate::error::{ContainerError, Result};

/// `HostConfig.NetworkMode`, as the record keeps it after create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    None,
    Host,
    /// `container:<id>`: the other container's namespace, hostname and /etc files.
    Container(String),
    /// One or more bridge networks (`bridge` or user-defined ones).
    Bridge,
}

pub fn mode(hc: &HostConfig) -> Mode {
    match hc.network_mode.as_deref().unwrap_or("") {
        "none" => Mode::None,
        "host" => Mode::Host,
        m if m.starts_with("container:") => Mode::Container(m["container:".len()..].to_string()),
        _ => Mode::Bridge,
    }
}

/// At create: normalises `NetworkMode` (`default` is `bridge`) and turns it and
/// `NetworkingConfig.EndpointsConfig` into the networks the container joins at start, the
/// mode's network first. `container` resolves `container:<name>` to an id.
pub fn resolve(
    networks: &NetworkService,
    hc: &mut HostConfig,
    networking: Option<&NetworkingConfig>,
    container: impl Fn(&str) -> Result<String>,
) -> Result<Vec<(String, EndpointRequest)>> {
    let asked = hc.network_mode.clone().unwrap_or_default();
    let endpoints = networking
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    let primary = match asked.as_str() {
        // `--bridge none`: the daemon has no default network.
        "" | "default" if !networks.has_default_bridge() => {
            hc.network_mode = Some("none".into());
            return Ok(Vec::new());
        }
        "" | "default" | "bridge" => "bridge".to_string(),
        "none" | "host" => {
            hc.network_mode = Some(asked.clone());
            if endpoints.keys().any(|k| k != &asked && k != "default") {
                return Err(ContainerError::Invalid(format!(
                    "container cannot be connected to other networks with network mode {asked}"
                )));
            }
            return Ok(Vec::new());
        }
        m if m.starts_with("container:") => {
            let id = container(&m["container:".len()..])?;
            if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
                || hc.publish_all_ports == Some(true)
            {
                return Err(ContainerError::Invalid(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            if hc.dns.as_ref().is_some_and(|d| !d.is_empty())
                || hc.extra_hosts.as_ref().is_some_and(|d| !d.is_empty())
            {
                return Err(ContainerError::Invalid(
                    "conflicting options: dns and the network mode".into(),
                ));
            }
            hc.network_mode = Some(format!("container:{id}"));
            return Ok(Vec::new());
        }
        name => name.to_string(),
    };
    // A network that does not exist yet is Docker's business at start ("network nope not
    // found"), as it may be created in between; a known one is named as the store names
    // it, and what is asked of it is checked now.
    let checked = |name: &str, req: &EndpointRequest| -> Result<String> {
        let rec = match networks.get(name) {
            Ok(rec) => rec,
            Err(berth_network::NetworkError::NotFound(_)) => return Ok(name.to_string()),
            Err(e) => return Err(e.into()),
        };
        if rec.predefined() && (req.ipv4.is_some() || req.ipv6.is_some()) {
            return Err(ContainerError::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if rec.predefined() && !req.aliases.is_empty() {
            return Err(ContainerError::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        for ip in [req.ipv4, req.ipv6].into_iter().flatten() {
            if !rec.subnets.iter().any(|s| s.subnet.contains(&ip)) {
                return Err(ContainerError::Invalid(format!(
                    "invalid config for network {}: invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}",
                    rec.name
                )));
            }
        }
        Ok(rec.name)
    };
    let primary_name = checked(&primary, &EndpointRequest::default())?;
    hc.network_mode = Some(primary_name.clone());
    let mut out = vec![(primary_name, EndpointRequest::default())];
    for (name, settings) in endpoints {
        // The CLI names the default network `default`.
        let name = if name == "default" {
            "bridge".to_string()
        } else {
            name
        };
        let req = endpoint_request(&settings)?;
        let name = checked(&name, &req)?;
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = req,
            None => out.push((name, req)),
        }
    }
    Ok(out)
}

/// `EndpointSettings` as a request: aliases and fixed addresses.
pub fn endpoint_request(
    settings: &bollard_stubs::models::EndpointSettings,
) -> Result<EndpointRequest> {
    let ip = |s: &Option<String>, what: &str| -> Result<Option<IpAddr>> {
        match s.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ContainerError::Invalid(format!("invalid {what} address: {s}"))),
        }
    };
    let ipam = settings.ipam_config.clone().unwrap_or_default();
    Ok(EndpointRequest {
        aliases: settings.aliases.clone().unwrap_or_default(),
        ipv4: ip(&ipam.ipv4_address, "IPv4")?,
        ipv6: ip(&ipam.ipv6_address, "IPv6")?,
    })
}

/// The ports to publish: every `PortBindings` entry, and with `-P` every exposed port not
/// bound already, on a free host port.
pub fn port_requests(config: &ContainerConfig, hc: &HostConfig) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = hc.port_bindings.iter().flatten().collect::<Vec<_>>();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, bindings) in keys {
        let (port, proto) = berth_network::ports::parse_port_key(key)?;
        let bindings = bindings.clone().unwrap_or_default();
        // `-p 80` with no host side: one binding on any port.
        let bindings = if bindings.is_empty() {
            vec![Default::default()]
        } else {
            bindings
        };
        for b in bindings {
            let host_ip = match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
                    ContainerError::Invalid(format!("invalid host IP address: {s}"))
                })?),
            };
            let host_ports =
                berth_network::ports::parse_host_ports(b.host_port.as_deref().unwrap_or(""))?;
            out.push(PortRequest {
                proto,
                container_port: port,
                host_ip,
                host_ports,
            });
        }
    }
    if hc.publish_all_ports == Some(true) {
        let mut exposed: Vec<(u16, Proto)> = Vec::new();
        for key in config.exposed_ports.iter().flatten() {
            let (port, proto) = berth_network::ports::parse_port_key(key)?;
            exposed.push((port, proto));
        }
        exposed.sort();
        for (port, proto) in exposed {
            if !out
                .iter()
                .any(|r| r.container_port == port && r.proto == proto)
            {
                out.push(PortRequest {
                    proto,
                    container_port: port,
                    host_ip: None,
                    host_ports: (0, 0),
                });
            }
        }
    }
    Ok(out)
}

/// `--dns` servers as addresses.
pub fn dns_servers(hc: &HostConfig) -> Result<Vec<IpAddr>> {
    hc.dns
        .iter()
        .flatten()
        .map(|s| {
            s.parse()
                .map_err(|_| ContainerError::Invalid(format!("{s} is not an ip address")))
        })
        .collect()
}

/// Whether the container's /etc/resolv.conf points at the embedded DNS server: it is on a
/// user-defined network.
pub fn uses_embedded_dns(networks: &[(String, EndpointRequest)]) -> bool {
    networks.iter().any(|(n, _)| n != "bridge")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::PortBinding;
    use std::collections::HashMap;

    #[test]
    fn ports_come_from_bindings_and_publish_all() {
        let mut bindings = HashMap::new();
        bindings.insert(
            "80/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("8080".into()),
            }]),
        );
        bindings.insert("53/udp".to_string(), None);
        let hc = HostConfig {
            port_bindings: Some(bindings),
            publish_all_ports: Some(true),
            ..Default::default()
        };
        let config = ContainerConfig {
            exposed_ports: Some(vec!["80/tcp".into(), "443/tcp".into()]),
            ..Default::default()
        };
        let got = port_requests(&config, &hc).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            PortRequest {
                proto: Proto::Udp,
                container_port: 53,
                host_ip: None,
                host_ports: (0, 0)
            }
        );
        assert_eq!(got[1].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(got[1].host_ports, (8080, 8080));
        assert_eq!(got[2].container_port, 443);
        let bad = HostConfig {
            port_bindings: Some(HashMap::from([("80/sctp".to_string(), None)])),
            ..Default::default()
        };
        assert!(port_requests(&config, &bad).is_err());
    }

    #[test]
    fn modes_parse() {
        let hc = |m: &str| HostConfig {
            network_mode: Some(m.into()),
            ..Default::default()
        };
        assert_eq!(mode(&hc("none")), Mode::None);
        assert_eq!(mode(&hc("host")), Mode::Host);
        assert_eq!(mode(&hc("container:abc")), Mode::Container("abc".into()));
        assert_eq!(mode(&hc("mynet")), Mode::Bridge);
        assert!(dns_servers(&HostConfig {
            dns: Some(vec!["nope".into()]),
            ..Default::default()
        })
        .is_err());
    }
}
