//! The files every container gets at `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`,
//! kept in the container's directory and bind-mounted over the init layer's empty files.

use std::path::{Path, PathBuf};

use bollard_stubs::models::HostConfig;

use crate::error::{ContainerError, Result};

pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

const LOCAL_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// `embedded_dns`: the container is on a user-defined network, so its resolver is the
/// engine's DNS server at 127.0.0.11 (which forwards to the host's or `--dns` servers).
pub fn write_all(
    dir: &Path,
    hostname: &str,
    domainname: Option<&str>,
    hc: &HostConfig,
    embedded_dns: bool,
) -> Result<EtcFiles> {
    let files = EtcFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    write_file(&files.hostname, format!("{hostname}\n").as_bytes())?;
    write_file(
        &files.hosts,
        hosts(hostname, domainname, hc, &[]).as_bytes(),
    )?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = if embedded_dns {
        embedded_resolv_conf(&host_resolv, hc)
    } else {
        resolv_conf(&host_resolv, hc)
    };
    write_file(&files.resolv_conf, text.as_bytes())?;
    Ok(files)
}

/// Rewrites /etc/hosts with the container's own addresses (known at start), before the
/// container's process sees the file.
pub fn write_hosts(
    path: &Path,
    hostname: &str,
    domainname: Option<&str>,
    hc: &HostConfig,
    own: &[std::net::IpAddr],
) -> Result<()> {
    write_file(path, hosts(hostname, domainname, hc, own).as_bytes())
}

/// Replaced by rename, not synced: these files are derived from the record, and a crash
/// before the kernel writes them back loses a container that is not running anyway.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(ContainerError::io(format!("writing {}", path.display())))
}

fn hosts(
    hostname: &str,
    domainname: Option<&str>,
    hc: &HostConfig,
    own: &[std::net::IpAddr],
) -> String {
    let mut out = if hc.network_mode.as_deref() == Some("host") {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| LOCAL_HOSTS.to_string())
    } else {
        LOCAL_HOSTS.to_string()
    };
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    for extra in hc.extra_hosts.iter().flatten() {
        // `name:ip` (the CLI's form; an IPv6 address keeps its colons).
        if let Some((name, ip)) = extra.split_once(':').or_else(|| extra.split_once('=')) {
            out.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let names = match domainname.filter(|d| !d.is_empty()) {
        Some(d) => format!("{hostname}.{d}\t{hostname}"),
        None => hostname.to_string(),
    };
    for ip in own {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out
}

/// For containers on user-defined networks: the embedded server, and the host's (or the
/// flags') search domains and options.
fn embedded_resolv_conf(host: &str, hc: &HostConfig) -> String {
    let rest = resolv_conf(
        host,
        &HostConfig {
            dns: None,
            ..hc.clone()
        },
    );
    let mut out = String::from("nameserver 127.0.0.11\n");
    let mut has_options = false;
    for l in rest.lines().filter(|l| !l.starts_with("nameserver")) {
        if l.starts_with("options ") {
            has_options = true;
            out.push_str(l);
            // Docker's: names with dots go to the embedded server as they are first.
            if !l.contains("ndots:") {
                out.push_str(" ndots:0");
            }
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if !has_options {
        out.push_str("options ndots:0\n");
    }
    out
}

/// The host's resolv.conf with `--dns`, `--dns-search` and `--dns-option` applied; loopback
/// name servers are dropped unless the container shares the host's network (they would
/// point at the container itself).
fn resolv_conf(host: &str, hc: &HostConfig) -> String {
    let host_net = hc.network_mode.as_deref() == Some("host");
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(ip) = f.next() {
                    if host_net || !(ip.starts_with("127.") || ip == "::1") {
                        servers.push(ip.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = f.map(str::to_string).collect(),
            Some("options") => options.extend(f.map(str::to_string)),
            Some(c) if c.starts_with('#') || c.starts_with(';') => {}
            Some(_) => other.push(line.to_string()),
            None => {}
        }
    }
    if let Some(d) = hc.dns.as_ref().filter(|d| !d.is_empty()) {
        servers = d.clone();
    }
    if let Some(s) = hc.dns_search.as_ref().filter(|s| !s.is_empty()) {
        search = s.iter().filter(|s| s.as_str() != ".").cloned().collect();
    }
    if let Some(o) = hc.dns_options.as_ref().filter(|o| !o.is_empty()) {
        options = o.clone();
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    for l in other {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_and_applies_flags() {
        let host =
            "# made by x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n";
        let hc = HostConfig::default();
        assert_eq!(
            resolv_conf(host, &hc),
            "nameserver 10.0.0.2\nsearch corp\noptions edns0\n"
        );
        let hc = HostConfig {
            dns: Some(vec!["1.1.1.1".into()]),
            dns_search: Some(vec!["a.b".into()]),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &hc),
            "nameserver 1.1.1.1\nsearch a.b\noptions edns0\n"
        );
    }

    #[test]
    fn hosts_lists_localhost_and_extra_hosts() {
        let hc = HostConfig {
            extra_hosts: Some(vec!["db:10.1.2.3".into()]),
            ..Default::default()
        };
        let h = hosts("abc", None, &hc, &[]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.1.2.3\tdb\n"));
        let h = hosts("abc", Some("corp"), &hc, &["172.17.0.2".parse().unwrap()]);
        assert!(h.ends_with("10.1.2.3\tdb\n172.17.0.2\tabc.corp\tabc\n"));
    }

    #[test]
    fn embedded_dns_keeps_search_and_options() {
        let host = "nameserver 10.0.0.2\nsearch corp\noptions edns0\n";
        let hc = HostConfig {
            dns: Some(vec!["1.1.1.1".into()]),
            ..Default::default()
        };
        assert_eq!(
            embedded_resolv_conf(host, &hc),
            "nameserver 127.0.0.11\nsearch corp\noptions edns0 ndots:0\n"
        );
        assert_eq!(
            embedded_resolv_conf("nameserver 10.0.0.2\n", &HostConfig::default()),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
    }
}
