//! Published ports: the host port is reserved by a socket the daemon binds and holds (never
//! listens on), so no other program can take it and berth learns at once when one already
//! has; the traffic itself is carried by DNAT rules ([`crate::firewall`]), with no proxy
//! process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
    SockaddrLike, SockaddrStorage,
};

use crate::error::{NetworkError, Result};
use crate::model::{PortRequest, Proto, PublishedPort};

/// A bound socket that holds a host port for as long as it lives.
#[derive(Debug)]
pub struct Reservation {
    _socket: OwnedFd,
}

/// Binds `ip:port` for `proto`; port 0 asks the kernel for a free one. Returns the port.
pub fn reserve(proto: Proto, ip: IpAddr, port: u16) -> std::io::Result<(u16, Reservation)> {
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    match SocketAddr::new(ip, port) {
        SocketAddr::V4(a) => bind(raw, &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => {
            // `[::]:port` must not also take the IPv4 port: that one is reserved apart.
            let on: libc::c_int = 1;
            // SAFETY: a valid socket and a c_int option value of the right size.
            let r = unsafe {
                libc::setsockopt(
                    raw,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_V6ONLY,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            bind(raw, &SockaddrIn6::from(a))?
        }
    }
    let got: SockaddrStorage = getsockname(raw)?;
    let port = match got.family() {
        Some(AddressFamily::Inet) => got.as_sockaddr_in().map(|s| s.port()),
        Some(AddressFamily::Inet6) => got.as_sockaddr_in6().map(|s| s.port()),
        _ => None,
    }
    .unwrap_or(port);
    Ok((port, Reservation { _socket: fd }))
}

/// Publishes each request: a fixed port, the first free port of a range, or any free port.
/// Either every port is reserved or none is.
pub fn publish(requests: &[PortRequest]) -> Result<Vec<(PublishedPort, Reservation)>> {
    let mut out = Vec::new();
    for r in requests {
        let ip = r.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let (lo, hi) = r.host_ports;
        let mut last_err = None;
        let mut got = None;
        for port in lo..=hi {
            match reserve(r.proto, ip, port) {
                Ok(x) => {
                    got = Some(x);
                    break;
                }
                Err(e) => last_err = Some((port, e)),
            }
        }
        let (port, res) = match got {
            Some(x) => x,
            None => {
                let (port, e) = last_err.expect("a range has at least one port");
                return Err(if e.raw_os_error() == Some(libc::EADDRINUSE) {
                    NetworkError::PortAllocated {
                        host: ip.to_string(),
                        port,
                    }
                } else {
                    NetworkError::Io {
                        what: format!("reserving {}:{port}/{}", ip, r.proto.as_str()),
                        source: e,
                    }
                });
            }
        };
        out.push((
            PublishedPort {
                proto: r.proto,
                container_port: r.container_port,
                host_ip: ip,
                host_port: port,
            },
            res,
        ));
    }
    Ok(out)
}

/// `"80/tcp"` -> (80, tcp).
pub fn parse_port_key(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| NetworkError::Invalid(format!("invalid containerPort: {port}")))?;
    Ok((port, proto.parse()?))
}

/// A binding's `HostPort`: `""`/`"0"` any, `"8080"`, or `"8080-8090"`.
pub fn parse_host_ports(s: &str) -> Result<(u16, u16)> {
    let bad = || NetworkError::Invalid(format!("invalid hostPort: {s}"));
    if s.is_empty() {
        return Ok((0, 0));
    }
    match s.split_once('-') {
        Some((a, b)) => {
            let a = a.parse::<u16>().map_err(|_| bad())?;
            let b = b.parse::<u16>().map_err(|_| bad())?;
            if a == 0 || b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p = s.parse::<u16>().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_host_ports_parse() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, Proto::Tcp));
        assert!(parse_port_key("80/sctp").is_err());
        assert!(parse_port_key("x/tcp").is_err());
        assert_eq!(parse_host_ports("").unwrap(), (0, 0));
        assert_eq!(parse_host_ports("8080").unwrap(), (8080, 8080));
        assert_eq!(parse_host_ports("8000-8010").unwrap(), (8000, 8010));
        assert!(parse_host_ports("9-8").is_err());
        assert!(parse_host_ports("a").is_err());
    }

    #[test]
    fn a_reserved_port_cannot_be_taken_twice_and_ranges_move_on() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (p, _held) = reserve(Proto::Tcp, ip, 0).unwrap();
        assert_ne!(p, 0);
        let e = publish(&[PortRequest {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: Some(ip),
            host_ports: (p, p),
        }])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{p} failed: port is already allocated")
        );
        // The same port over UDP is another port.
        assert!(reserve(Proto::Udp, ip, p).is_ok());
        // A range starting at the taken port finds the next free one.
        let got = publish(&[PortRequest {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: Some(ip),
            host_ports: (p, p.saturating_add(20)),
        }]);
        if let Ok(got) = got {
            assert!(got[0].0.host_port > p);
        }
    }
}
