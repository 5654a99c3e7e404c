//! A small synchronous rtnetlink client: links, addresses and routes, in the calling thread's
//! network namespace or in a container's.
//!
//! One [`Handle`] is one `NETLINK_ROUTE` socket. Every request asks for the kernel's
//! acknowledgement and fails with the kernel's errno (and its extended-ack message, when it
//! gives one); every dump is read until `NLMSG_DONE`. Nothing here spawns `ip`: a veth set-up
//! for `docker run` is a handful of round trips to the kernel.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK, NLM_F_ACK_TLVS,
    NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// What went wrong, and what was being done to which link.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused a request (`source` holds its errno), or the socket failed.
    #[error("{what}: {source}{}", .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Request {
        what: String,
        source: io::Error,
        /// The kernel's extended-ack message, e.g. "Attribute failed policy validation".
        detail: Option<String>,
    },
    /// The kernel accepted the request but the result is not what was asked for
    /// (e.g. a link of the bridge's name exists and is not a bridge).
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl NetlinkError {
    /// The kernel's errno, when the kernel refused the request.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetlinkError::Request { source, .. } => source.raw_os_error(),
            NetlinkError::Invalid { .. } => None,
        }
    }
}

pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// A failed exchange, before the caller says what it was doing.
struct Nack {
    source: io::Error,
    detail: Option<String>,
}

impl From<io::Error> for Nack {
    fn from(source: io::Error) -> Nack {
        Nack {
            source,
            detail: None,
        }
    }
}

impl Nack {
    fn during(self, what: String) -> NetlinkError {
        NetlinkError::Request {
            what,
            source: self.source,
            detail: self.detail,
        }
    }
}

/// An rtnetlink socket, bound to the network namespace it was created in.
pub struct Handle {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Handle {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Handle> {
        Self::open().map_err(|e| Nack::from(e).during("opening an rtnetlink socket".into()))
    }

    /// A socket in the network namespace bound at `path` (e.g. a file bind-mounted from
    /// `/proc/<pid>/ns/net`): a short-lived thread `setns()`s into the namespace, creates the
    /// socket and ends; the socket keeps belonging to that namespace.
    pub fn in_netns(path: &Path) -> Result<Handle> {
        let what = || {
            format!(
                "opening an rtnetlink socket in network namespace {}",
                path.display()
            )
        };
        let ns = File::open(path).map_err(|e| Nack::from(e).during(what()))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Self::open()
            })
            .join()
        })
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .map_err(|e| Nack::from(e).during(what()))
    }

    fn open() -> io::Result<Handle> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Errors echo only the request's header, followed by the kernel's message.
        socket.set_cap_ack(true)?;
        socket.set_ext_ack(true)?;
        // Dumps come in datagrams of at most 32 KiB: bigger ones are never truncated.
        Ok(Handle {
            socket,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// The index of the link called `name`, `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        match self.link(name) {
            Ok(link) => Ok(Some(link.header.index)),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link's index and name.
    pub fn links(&mut self) -> Result<Vec<(u32, String)>> {
        let replies = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), || {
            "listing links".into()
        })?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => {
                    Some((link.header.index, link_name(&link)?.to_owned()))
                }
                _ => None,
            })
            .collect())
    }

    /// Creates the bridge `name` with `mtu` if given, and returns its index. A bridge of that
    /// name already there is fine: its index is returned, its mtu set if it differs.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32> {
        let what = || format!("creating bridge {name}");
        let mut msg = named_link(name);
        msg.attributes.extend(mtu.map(LinkAttribute::Mtu));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        match self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            |_| what(),
        ) {
            Ok(_) => Ok(self.link(name)?.header.index),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let link = self.link(name)?;
                if link_kind(&link) != Some(&InfoKind::Bridge) {
                    return Err(NetlinkError::Invalid {
                        what: what(),
                        reason: "a link of that name exists and is not a bridge".into(),
                    });
                }
                let current = link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Mtu(m) => Some(*m),
                    _ => None,
                });
                if let Some(mtu) = mtu.filter(|&m| Some(m) != current) {
                    self.set_mtu(link.header.index, mtu)?;
                }
                Ok(link.header.index)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the mtu of link `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(RouteNetlinkMessage::SetLink(msg), 0, |h| {
            format!("setting mtu {mtu} on link {}", h.label(index))
        })?;
        Ok(())
    }

    /// Adds `addr`/`prefix` to link `index`; an address already there is fine. IPv4 addresses
    /// get their subnet's broadcast address; IPv6 addresses skip duplicate address detection
    /// (berth's IPAM owns the subnet), so they are usable at once.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix;
        match addr {
            IpAddr::V4(v4) => {
                msg.header.family = AddressFamily::Inet;
                msg.attributes.push(AddressAttribute::Local(addr));
                msg.attributes.push(AddressAttribute::Address(addr));
                if prefix < 31 {
                    let host_mask = u32::MAX.checked_shr(prefix.into()).unwrap_or(0);
                    let broadcast = Ipv4Addr::from(u32::from(v4) | host_mask);
                    msg.attributes.push(AddressAttribute::Broadcast(broadcast));
                }
            }
            IpAddr::V6(_) => {
                msg.header.family = AddressFamily::Inet6;
                msg.attributes.push(AddressAttribute::Address(addr));
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        let what =
            |h: &mut Self| format!("adding address {addr}/{prefix} to link {}", h.label(index));
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        ) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(e),
            _ => Ok(()),
        }
    }

    /// Every address of every link, IPv4 and IPv6: (link index, address, prefix length).
    pub fn addresses(&mut self) -> Result<Vec<(u32, IpAddr, u8)>> {
        let replies = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            || "listing addresses".into(),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on
                    // point-to-point links, and the only one IPv6 gives.
                    let addr = a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    });
                    let addr = addr.or_else(|| {
                        a.attributes.iter().find_map(|at| match at {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })
                    })?;
                    Some((a.header.index, addr, a.header.prefix_len))
                }
                _ => None,
            })
            .collect())
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0, |h| {
            format!("bringing link {} up", h.label(index))
        })?;
        Ok(())
    }

    /// Deletes the link called `name` (for a veth, its peer goes too); `false` when there was
    /// none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let msg = named_link(name);
        match self.request(RouteNetlinkMessage::DelLink(msg), 0, |_| {
            format!("deleting link {name}")
        }) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a veth pair: `host_name` in this handle's namespace, its peer directly in the
    /// namespace `peer_netns`, named `peer_name` there (e.g. "eth0"), with `peer_mac` as its
    /// address and `mtu` on both ends. Both ends are left down.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: BorrowedFd<'_>,
        peer_mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut peer = named_link(peer_name);
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        peer.attributes
            .extend(peer_mac.map(|mac| LinkAttribute::Address(mac.to_vec())));
        peer.attributes.extend(mtu.map(LinkAttribute::Mtu));
        let mut msg = named_link(host_name);
        msg.attributes.extend(mtu.map(LinkAttribute::Mtu));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            |_| format!("creating veth pair {host_name} (peer {peer_name} in another namespace)"),
        )?;
        Ok(())
    }

    /// Makes link `index` a port of the bridge `bridge_index`.
    pub fn set_master(&mut self, index: u32, bridge_index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(bridge_index));
        self.request(RouteNetlinkMessage::SetLink(msg), 0, |h| {
            format!(
                "attaching link {} to bridge {}",
                h.label(index),
                h.label(bridge_index)
            )
        })?;
        Ok(())
    }

    /// Adds the default route (0.0.0.0/0 or ::/0) via `gateway` to the main table; the kernel
    /// picks the link the gateway is on.
    /// Hairpin mode on a bridge port: frames may leave by the port they came in on. A
    /// container reaching its own published port through the host's address needs it when
    /// bridged traffic passes netfilter (br_netfilter), as Docker sets it.
    pub fn set_hairpin(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), 0, |h| {
            format!("setting hairpin mode on bridge port {}", h.label(index))
        })?;
        Ok(())
    }

    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(gateway);
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(gateway.into()));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            |_| format!("adding default route via {gateway}"),
        )?;
        Ok(())
    }

    /// The destination of every route in the main table, IPv4 and IPv6 (the default route
    /// as 0.0.0.0/0 or ::/0): what a new network's subnet must not overlap.
    pub fn routes(&mut self) -> Result<Vec<(IpAddr, u8)>> {
        let replies = self.dump(
            RouteNetlinkMessage::GetRoute(RouteMessage::default()),
            || "listing routes".into(),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => {
                    let table = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Table(t) => Some(*t),
                        _ => None,
                    });
                    if table.unwrap_or(u32::from(r.header.table))
                        != u32::from(RouteHeader::RT_TABLE_MAIN)
                    {
                        return None;
                    }
                    let dest = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                            Some(IpAddr::V4(*ip))
                        }
                        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                            Some(IpAddr::V6(*ip))
                        }
                        _ => None,
                    });
                    let dest = dest.or(match r.header.address_family {
                        AddressFamily::Inet => Some(Ipv4Addr::UNSPECIFIED.into()),
                        AddressFamily::Inet6 => Some(Ipv6Addr::UNSPECIFIED.into()),
                        _ => None,
                    })?;
                    Some((dest, r.header.destination_prefix_length))
                }
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, as the kernel describes it.
    fn link(&mut self, name: &str) -> Result<LinkMessage> {
        let what = || format!("looking up link {name}");
        let replies = self.request(RouteNetlinkMessage::GetLink(named_link(name)), 0, |_| {
            what()
        })?;
        replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::Invalid {
                what: what(),
                reason: "no reply".into(),
            })
    }

    /// Sends one request with `NLM_F_ACK` and returns the kernel's replies, up to its ACK.
    /// On failure, `what` says what was attempted (it may ask the kernel for a link's name).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: impl FnOnce(&mut Self) -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        match self.exchange(msg, flags | NLM_F_ACK, false) {
            Ok(replies) => Ok(replies),
            Err(nack) => Err(nack.during(what(self))),
        }
    }

    /// Link `index` as errors name it: "vethb1c2d3 (index 7)", or "index 7" when the kernel
    /// does not know it.
    fn label(&mut self, index: u32) -> String {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let name = self
            .exchange(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK, false)
            .ok()
            .and_then(|replies| {
                replies.into_iter().find_map(|m| match m {
                    RouteNetlinkMessage::NewLink(link) => link_name(&link).map(str::to_owned),
                    _ => None,
                })
            });
        match name {
            Some(name) => format!("{name} (index {index})"),
            None => format!("index {index}"),
        }
    }

    /// Sends one dump request and returns every reply, up to `NLMSG_DONE`; a dump the
    /// kernel marks inconsistent (the table changed under it) is asked again.
    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: impl Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        for _ in 0..8 {
            match self.exchange(msg.clone(), NLM_F_DUMP, true) {
                Err(e) if e.source.raw_os_error() == Some(libc::EINTR) => continue,
                result => return result.map_err(|e| e.during(what())),
            }
        }
        Err(Nack::from(io::Error::from_raw_os_error(libc::EINTR)).during(what()))
    }

    /// Sends `msg` and reads the replies carrying its sequence number until the request's end:
    /// its ACK or error, or for a dump `NLMSG_DONE`.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>, Nack> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;

        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            let len = self.socket.recv(&mut &mut self.buf[..], 0)?;
            if len > self.buf.len() {
                return Err(io::Error::from_raw_os_error(libc::EMSGSIZE).into());
            }
            let mut offset = 0;
            while offset < len {
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..len])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let size = reply.header.length as usize;
                if size == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "empty netlink message",
                    )
                    .into());
                }
                offset += size.next_multiple_of(4);
                if reply.header.sequence_number != seq {
                    continue; // left over from an earlier request that failed half-way
                }
                interrupted |= reply.header.flags & NLM_F_DUMP_INTR != 0;
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Error(e) => match e.code {
                        None if dump => {}
                        None => return Ok(replies),
                        Some(code) => {
                            let detail = ext_ack_message(reply.header.flags, &e.header);
                            let source = io::Error::from_raw_os_error(code.get().abs());
                            return Err(Nack { source, detail });
                        }
                    },
                    NetlinkPayload::Done(d) if d.code != 0 => {
                        return Err(io::Error::from_raw_os_error(d.code.abs()).into())
                    }
                    NetlinkPayload::Done(_) if dump => {
                        if interrupted {
                            return Err(io::Error::from_raw_os_error(libc::EINTR).into());
                        }
                        return Ok(replies);
                    }
                    NetlinkPayload::Overrun(_) => {
                        return Err(io::Error::from_raw_os_error(libc::ENOBUFS).into())
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The kernel's extended-ack message in an error's payload: the request's header (or the
/// whole request when not capped), then attributes, NLMSGERR_ATTR_MSG (1) among them.
fn ext_ack_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let request_len = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?) as usize
    };
    NlasIterator::new(payload.get(request_len.next_multiple_of(4)..)?)
        .filter_map(|nla| nla.ok())
        .find(|nla| nla.kind() == 1)
        .map(|nla| {
            String::from_utf8_lossy(nla.value())
                .trim_end_matches('\0')
                .to_owned()
        })
}

fn named_link(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg
}

fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(kind) => Some(kind),
            _ => None,
        }),
        _ => None,
    })
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The MAC address Docker gives a container's interface: 02:42 followed by its IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Writes `value` to /proc/sys/`key` (slash-separated, e.g.
/// `sysctl("net/ipv4/conf/berth0/route_localnet", "1")`), in the calling thread's network
/// namespace for net/ keys.
pub fn sysctl(key: &str, value: &str) -> io::Result<()> {
    std::fs::write(Path::new("/proc/sys").join(key), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value:?} to /proc/sys/{key}: {e}"),
        )
    })
}

/// Reads /proc/sys/`key`, without its trailing newline.
pub fn read_sysctl(key: &str) -> io::Result<String> {
    let value = std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .map_err(|e| io::Error::new(e.kind(), format!("reading /proc/sys/{key}: {e}")))?;
    Ok(value.trim_end_matches('\n').to_owned())
}
