//! The embedded DNS server of containers on user-defined networks, as Docker's.
//!
//! The daemon binds a UDP socket and a TCP listener at `127.0.0.11:53` inside each such
//! container's network namespace ([`bind_in_netns`]: the sockets keep the namespace they were
//! created in) and serves them from its own runtime ([`serve`]):
//!
//! - `A`/`AAAA` for the names the [`Resolver`] knows for the container (TTL 600, as Docker); a
//!   known name without an address of the asked family gets NOERROR with no records;
//! - `PTR` for the addresses the resolver knows -> the name it gives;
//! - everything else is forwarded, as received, to the resolver's upstreams in order (2 s each,
//!   from the daemon's namespace, so the host's loopback resolvers work), the first answer
//!   relayed unchanged; SERVFAIL when none answers.
//!
//! Malformed queries are dropped (UDP) or end the connection (TCP). [`handle_query`] is the
//! whole decision, pure: bytes in, [`Answer`] out.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::{JoinHandle, JoinSet};

/// What the daemon knows about names, per container.
pub trait Resolver: Send + Sync + 'static {
    /// Addresses for `name` as seen from container `container_id` (all its networks); None = not
    /// a name berth knows. `name` comes lowercased, without the trailing dot.
    fn lookup(&self, container_id: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The name for `ip` as seen from container `container_id` (e.g. the container's name).
    fn reverse(&self, container_id: &str, ip: IpAddr) -> Option<String>;
    /// Where to forward what berth does not answer itself, in order.
    fn upstreams(&self, container_id: &str) -> Vec<SocketAddr>;
}

/// The address containers query, as Docker's.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// The TTL of berth's own answers, as Docker's.
pub const TTL: u32 = 600;
/// How long each upstream has to answer a forwarded query.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP client may take to send its next query.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Forwarded queries in flight per container (per transport); more are dropped.
const MAX_IN_FLIGHT: usize = 256;

/// The decision for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Forward the query bytes, as received, to the upstreams.
    Forward,
    /// Malformed (or not a query): drop it (UDP) / close the connection (TCP).
    Drop,
}

/// Answers one query for `container_id`. `udp`: the reply must fit the client's UDP payload
/// size (512, or its EDNS size), else it is truncated (TC set) so the client retries over TCP.
pub fn handle_query(
    resolver: &dyn Resolver,
    container_id: &str,
    query: &[u8],
    udp: bool,
) -> Answer {
    let Ok(request) = Message::from_vec(query) else {
        return Answer::Drop;
    };
    if request.metadata.message_type != MessageType::Query {
        return Answer::Drop;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries.iter().cloned());
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(edns.max_payload().max(512));
        response.set_edns(ours);
    }
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return reply(response, &request, udp);
    }
    let [question] = &request.queries[..] else {
        response.metadata.response_code = ResponseCode::FormErr;
        return reply(response, &request, udp);
    };
    if question.query_class() != DNSClass::IN {
        return Answer::Forward;
    }
    let qname = question.name();
    match question.query_type() {
        qtype @ (RecordType::A | RecordType::AAAA) => {
            let mut name = qname.to_ascii().to_ascii_lowercase();
            if name.ends_with('.') {
                name.pop();
            }
            let Some(addrs) = resolver.lookup(container_id, &name) else {
                return Answer::Forward;
            };
            for addr in addrs {
                let rdata = match (qtype, addr) {
                    (RecordType::A, IpAddr::V4(ip)) => RData::A(A(ip)),
                    (RecordType::AAAA, IpAddr::V6(ip)) => RData::AAAA(AAAA(ip)),
                    _ => continue,
                };
                response.add_answer(Record::from_rdata(qname.clone(), TTL, rdata));
            }
        }
        RecordType::PTR => {
            let ip = match qname.parse_arpa_name() {
                Ok(net) if net.prefix_len() == net.max_prefix_len() => net.addr(),
                _ => return Answer::Forward,
            };
            let Some(target) = resolver.reverse(container_id, ip) else {
                return Answer::Forward;
            };
            let Ok(mut target) = Name::from_ascii(&target) else {
                return Answer::Forward;
            };
            target.set_fqdn(true);
            response.add_answer(Record::from_rdata(
                qname.clone(),
                TTL,
                RData::PTR(PTR(target)),
            ));
        }
        _ => return Answer::Forward,
    }
    reply(response, &request, udp)
}

fn reply(response: Message, request: &Message, udp: bool) -> Answer {
    let Ok(bytes) = response.to_vec() else {
        return Answer::Drop;
    };
    let limit = request
        .edns
        .as_ref()
        .map_or(512, |e| e.max_payload().max(512));
    if udp && bytes.len() > usize::from(limit) {
        return match response.truncate().to_vec() {
            Ok(bytes) => Answer::Reply(bytes),
            Err(_) => Answer::Drop,
        };
    }
    Answer::Reply(bytes)
}

/// SERVFAIL for `query` (its id and question), or None if it does not parse.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::error_msg(
        request.metadata.id,
        request.metadata.op_code,
        ResponseCode::ServFail,
    );
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries);
    response.to_vec().ok()
}

/// The host's name servers from a resolv.conf text (nameserver lines, port 53).
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        let (addr, zone) = addr
            .split_once('%')
            .map_or((addr, None), |(a, z)| (a, Some(z)));
        let server = match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) if zone.is_none() => SocketAddr::V4(SocketAddrV4::new(ip, 53)),
            Ok(IpAddr::V6(ip)) => {
                let scope = match zone {
                    None => 0,
                    Some(z) => match z.parse::<u32>() {
                        Ok(n) => n,
                        Err(_) => match std::ffi::CString::new(z) {
                            // SAFETY: a valid NUL-terminated string, read only for the call.
                            Ok(c) => unsafe { libc::if_nametoindex(c.as_ptr()) },
                            Err(_) => 0,
                        },
                    },
                };
                if zone.is_some() && scope == 0 {
                    continue;
                }
                SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope))
            }
            _ => continue,
        };
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    servers
}

/// The sockets of one container's DNS server, bound in its namespace (not yet in a runtime).
#[derive(Debug)]
pub struct Sockets {
    pub udp: std::net::UdpSocket,
    pub tcp: std::net::TcpListener,
}

/// Binds 127.0.0.11:53 (udp+tcp) in the namespace bound at `netns` (blocking; call from
/// spawn_blocking or a std thread). The calling thread's namespace is not changed: the sockets
/// are made by a short-lived thread that enters the namespace.
pub fn bind_in_netns(netns: &Path) -> io::Result<Sockets> {
    let ns = File::open(netns)?;
    std::thread::Builder::new()
        .name("berth-dns-bind".into())
        .spawn(move || -> io::Result<Sockets> {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            bind_here()
        })?
        .join()
        .map_err(|_| io::Error::other("the DNS bind thread panicked"))?
}

fn bind_here() -> io::Result<Sockets> {
    // std's sockets are close-on-exec, and its listener sets SO_REUSEADDR (so a new server can
    // bind while connections of an old one linger).
    let addr = SocketAddrV4::new(ADDRESS, 53);
    Ok(Sockets {
        udp: std::net::UdpSocket::bind(addr)?,
        tcp: std::net::TcpListener::bind(addr)?,
    })
}

/// A running DNS server. Dropping it (or [`DnsServer::stop`]) aborts its tasks, which closes
/// the sockets.
#[derive(Debug)]
pub struct DnsServer {
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Stops the server and waits until its sockets are closed (127.0.0.11:53 can be bound
    /// again when this returns; after a plain drop that happens moments later, when the
    /// runtime drops the aborted tasks).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Serves queries for `container_id` on those sockets until the returned handle is dropped (or
/// stopped). Must be called inside a tokio runtime.
pub fn serve(
    container_id: String,
    sockets: Sockets,
    resolver: Arc<dyn Resolver>,
) -> io::Result<DnsServer> {
    sockets.udp.set_nonblocking(true)?;
    sockets.tcp.set_nonblocking(true)?;
    let udp = tokio::net::UdpSocket::from_std(sockets.udp)?;
    let tcp = tokio::net::TcpListener::from_std(sockets.tcp)?;
    let id: Arc<str> = container_id.into();
    let tasks = vec![
        tokio::spawn(serve_udp(udp, id.clone(), resolver.clone())),
        tokio::spawn(serve_tcp(tcp, id, resolver)),
    ];
    Ok(DnsServer { tasks })
}

async fn serve_udp(socket: tokio::net::UdpSocket, id: Arc<str>, resolver: Arc<dyn Resolver>) {
    let mut buf = vec![0u8; 65535];
    // The forwards in flight; they end with this task (the set aborts them when dropped).
    let mut forwards: JoinSet<Option<(Vec<u8>, SocketAddr)>> = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                let query = &buf[..n];
                match handle_query(&*resolver, &id, query, true) {
                    Answer::Reply(bytes) => {
                        let _ = socket.send_to(&bytes, client).await;
                    }
                    Answer::Drop => {}
                    Answer::Forward if forwards.len() >= MAX_IN_FLIGHT => {}
                    Answer::Forward => {
                        let query = query.to_vec();
                        let upstreams = resolver.upstreams(&id);
                        forwards.spawn(async move {
                            let reply = match forward_udp(&query, &upstreams).await {
                                Some(reply) => reply,
                                None => servfail(&query)?,
                            };
                            Some((reply, client))
                        });
                    }
                }
            }
            Some(done) = forwards.join_next(), if !forwards.is_empty() => {
                if let Ok(Some((reply, client))) = done {
                    let _ = socket.send_to(&reply, client).await;
                }
            }
        }
    }
}

/// Sends `query` to each upstream in turn; the first reply bearing the query's id, unchanged.
async fn forward_udp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65535];
    for upstream in upstreams {
        let local: SocketAddr = match upstream {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let attempt = async {
            let socket = tokio::net::UdpSocket::bind(local).await.ok()?;
            socket.connect(upstream).await.ok()?;
            socket.send(query).await.ok()?;
            loop {
                // Errors (e.g. ICMP port unreachable) end this upstream's turn.
                let n = socket.recv(&mut buf).await.ok()?;
                if is_reply_to(&buf[..n], query) {
                    return Some(buf[..n].to_vec());
                }
            }
        };
        if let Ok(Some(reply)) = tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            return Some(reply);
        }
    }
    None
}

/// Same id, QR set.
fn is_reply_to(reply: &[u8], query: &[u8]) -> bool {
    reply.len() >= 12 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

async fn serve_tcp(listener: tokio::net::TcpListener, id: Arc<str>, resolver: Arc<dyn Resolver>) {
    // The connections; they end with this task (the set aborts them when dropped).
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // EMFILE and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if connections.len() >= MAX_IN_FLIGHT {
                    continue;
                }
                connections.spawn(serve_connection(stream, id.clone(), resolver.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    id: Arc<str>,
    resolver: Arc<dyn Resolver>,
) {
    while let Ok(Some(query)) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
        let reply = match handle_query(&*resolver, &id, &query, false) {
            Answer::Reply(bytes) => bytes,
            Answer::Drop => return,
            Answer::Forward => match forward_tcp(&query, &resolver.upstreams(&id)).await {
                Some(reply) => reply,
                None => match servfail(&query) {
                    Some(reply) => reply,
                    None => return,
                },
            },
        };
        if write_framed(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

async fn read_framed(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let len = stream.read_u16().await.ok()?;
    let mut message = vec![0u8; usize::from(len)];
    stream.read_exact(&mut message).await.ok()?;
    Some(message)
}

async fn write_framed(stream: &mut tokio::net::TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| io::Error::other("DNS message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Sends `query` over TCP to each upstream in turn (2 s each, connection included).
async fn forward_tcp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(upstream).await.ok()?;
            write_framed(&mut stream, query).await.ok()?;
            let reply = read_framed(&mut stream).await?;
            is_reply_to(&reply, query).then_some(reply)
        };
        if let Ok(Some(reply)) = tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            return Some(reply);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use std::net::Ipv6Addr;

    struct Names;
    impl Resolver for Names {
        fn lookup(&self, _: &str, name: &str) -> Option<Vec<IpAddr>> {
            match name {
                "web" | "www-alias" => Some(vec![
                    IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2)),
                    IpAddr::V6("fd00::2".parse().unwrap()),
                ]),
                "db" => Some(vec![IpAddr::V4(Ipv4Addr::new(172, 18, 0, 3))]),
                "many" => Some(
                    (1..=100)
                        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
                        .collect(),
                ),
                _ => None,
            }
        }
        fn reverse(&self, _: &str, ip: IpAddr) -> Option<String> {
            match ip {
                IpAddr::V4(ip) if ip == Ipv4Addr::new(172, 18, 0, 2) => Some("web".into()),
                IpAddr::V6(ip) if ip == "fd00::2".parse::<Ipv6Addr>().unwrap() => {
                    Some("web".into())
                }
                _ => None,
            }
        }
        fn upstreams(&self, _: &str) -> Vec<SocketAddr> {
            vec![]
        }
    }

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    fn ask(name: &str, qtype: RecordType) -> Answer {
        handle_query(&Names, "c1", &query(name, qtype), true)
    }

    fn reply(answer: Answer) -> Message {
        match answer {
            Answer::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_record() {
        let m = reply(ask("web", RecordType::A));
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].ttl, 600);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(172, 18, 0, 2))));
    }

    #[test]
    fn aaaa_record() {
        let m = reply(ask("web.", RecordType::AAAA));
        assert_eq!(m.answers.len(), 1);
        assert_eq!(
            m.answers[0].data,
            RData::AAAA(AAAA("fd00::2".parse().unwrap()))
        );
    }

    #[test]
    fn known_name_without_that_family() {
        let m = reply(ask("db", RecordType::AAAA));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn case_and_trailing_dot() {
        for name in ["WeB", "WEB.", "www-ALIAS.", "web"] {
            let m = reply(ask(name, RecordType::A));
            assert_eq!(m.answers.len(), 1, "{name}");
            // The answer carries the name as asked.
            assert_eq!(
                m.answers[0].name.to_ascii().trim_end_matches('.'),
                name.trim_end_matches('.')
            );
        }
    }

    #[test]
    fn ptr() {
        let m = reply(ask("2.0.18.172.in-addr.arpa.", RecordType::PTR));
        assert_eq!(m.answers.len(), 1);
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("web.").unwrap()))
        );
        let v6: IpAddr = "fd00::2".parse().unwrap();
        let m = reply(ask(&Name::from(v6).to_ascii(), RecordType::PTR));
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("web.").unwrap()))
        );
        // Addresses berth does not know, and partial arpa names, go upstream.
        assert_eq!(
            ask("9.9.9.9.in-addr.arpa.", RecordType::PTR),
            Answer::Forward
        );
        assert_eq!(
            ask("18.172.in-addr.arpa.", RecordType::PTR),
            Answer::Forward
        );
    }

    #[test]
    fn unknown_and_other_types_forward() {
        assert_eq!(ask("example.com", RecordType::A), Answer::Forward);
        assert_eq!(ask("example.com", RecordType::AAAA), Answer::Forward);
        assert_eq!(ask("web", RecordType::MX), Answer::Forward);
        assert_eq!(ask("web", RecordType::TXT), Answer::Forward);
    }

    #[test]
    fn malformed_dropped() {
        let q = query("web", RecordType::A);
        for bad in [
            &b""[..],
            &b"\x12"[..],
            &q[..11],
            &q[..q.len() - 1],
            &[0xff; 40][..],
        ] {
            assert_eq!(handle_query(&Names, "c1", bad, true), Answer::Drop);
        }
        // A response is not a query.
        let mut m = Message::from_vec(&q).unwrap();
        m.metadata.message_type = MessageType::Response;
        assert_eq!(
            handle_query(&Names, "c1", &m.to_vec().unwrap(), true),
            Answer::Drop
        );
        // Random bytes never panic.
        let mut x: u32 = 12345;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = handle_query(&Names, "c1", &bytes, true);
            let _ = servfail(&bytes);
        }
    }

    #[test]
    fn no_question_and_other_opcodes() {
        let m = Message::new(7, MessageType::Query, OpCode::Query);
        let r = reply(handle_query(&Names, "c1", &m.to_vec().unwrap(), true));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        let mut m = Message::new(8, MessageType::Query, OpCode::Status);
        m.add_query(Query::query(
            Name::from_ascii("web").unwrap(),
            RecordType::A,
        ));
        let r = reply(handle_query(&Names, "c1", &m.to_vec().unwrap(), true));
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    }

    #[test]
    fn udp_truncation() {
        let r = reply(ask("many", RecordType::A));
        assert!(r.metadata.truncation);
        assert!(r.answers.is_empty());
        let r = reply(handle_query(
            &Names,
            "c1",
            &query("many", RecordType::A),
            false,
        ));
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 100);
    }

    #[test]
    fn servfail_keeps_id_and_question() {
        let r =
            Message::from_vec(&servfail(&query("example.com", RecordType::A)).unwrap()).unwrap();
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(r.queries.len(), 1);
    }

    #[test]
    fn resolv_conf() {
        let text = "# comment\nnameserver 127.0.0.53\nsearch lan\n; x\nnameserver ::1\n  nameserver 1.1.1.1 \nnameserver fe80::1%3\nnameserver bogus\nnameserver 127.0.0.53\noptions edns0\n";
        let got = upstreams_from_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "1.1.1.1:53".parse().unwrap(),
                SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 3)),
            ]
        );
    }
}
