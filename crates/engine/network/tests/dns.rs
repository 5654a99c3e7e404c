//! The embedded DNS server end to end: a network namespace of the test's own, the server bound
//! at 127.0.0.11:53 in it, a client in it, and a fake upstream on the host's loopback (where the
//! daemon, not the container, reaches it). Needs root; skipped otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_network::dns::{self, Resolver};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// A network namespace with `lo` up, bound on a temporary file; unmounted and removed on drop.
struct Netns {
    file: tempfile::NamedTempFile,
}

impl Netns {
    fn new() -> Netns {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.path().to_path_buf();
        std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            // Children inherit this thread's namespace.
            let status = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .unwrap();
            assert!(status.success());
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap();
        })
        .join()
        .unwrap();
        Netns { file }
    }

    fn path(&self) -> &Path {
        self.file.path()
    }

    /// Runs `f` in a thread inside the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = std::fs::File::open(self.path()).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = umount2(self.file.path(), MntFlags::MNT_DETACH);
    }
}

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

struct TestResolver {
    upstreams: Mutex<Vec<SocketAddr>>,
}

const WEB: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 2);

impl Resolver for TestResolver {
    fn lookup(&self, container_id: &str, name: &str) -> Option<Vec<IpAddr>> {
        assert_eq!(container_id, "c1");
        match name {
            "web" | "web-alias" => Some(vec![IpAddr::V4(WEB)]),
            _ => None,
        }
    }
    fn reverse(&self, _: &str, ip: IpAddr) -> Option<String> {
        (ip == IpAddr::V4(WEB)).then(|| "web".to_string())
    }
    fn upstreams(&self, _: &str) -> Vec<SocketAddr> {
        self.upstreams.lock().unwrap().clone()
    }
}

/// The fake upstream's answer: `outside.test` A 192.0.2.7 TTL 42, NXDOMAIN for anything else.
fn upstream_answer(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries.clone());
    let question = q.queries.first()?;
    if question
        .name()
        .to_ascii()
        .eq_ignore_ascii_case("outside.test.")
    {
        r.add_answer(Record::from_rdata(
            question.name().clone(),
            42,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
        ));
    } else {
        r.metadata.response_code = ResponseCode::NXDomain;
    }
    r.to_vec().ok()
}

/// A fake DNS server on the host's loopback, UDP and TCP on one port.
async fn fake_upstream() -> SocketAddr {
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            if let Some(r) = upstream_answer(&buf[..n]) {
                let _ = udp.send_to(&r, from).await;
            }
        }
    });
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                while let Ok(len) = s.read_u16().await {
                    let mut q = vec![0u8; usize::from(len)];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let Some(r) = upstream_answer(&q) else { return };
                    let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&r);
                    if s.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// An upstream that never answers (UDP bound, TCP accepted by the kernel and never read).
fn silent_upstream() -> (UdpSocket, std::net::TcpListener, SocketAddr) {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = std::net::TcpListener::bind(addr) {
            return (udp, tcp, addr);
        }
    }
}

fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(dns::ADDRESS), 53);

fn ask_udp(q: &[u8]) -> Message {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.send_to(q, SERVER).unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(from, SERVER);
    Message::from_vec(&buf[..n]).unwrap()
}

fn ask_tcp(q: &[u8]) -> Message {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(SERVER).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut r).unwrap();
    Message::from_vec(&r).unwrap()
}

fn ask(tcp: bool, q: &[u8]) -> Message {
    if tcp {
        ask_tcp(q)
    } else {
        ask_udp(q)
    }
}

fn only_a(m: &Message) -> (Ipv4Addr, u32) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1, "{m:?}");
    match &m.answers[0].data {
        RData::A(A(ip)) => (*ip, m.answers[0].ttl),
        other => panic!("not an A record: {other:?}"),
    }
}

async fn bind(ns: &Netns) -> std::io::Result<dns::Sockets> {
    let path: PathBuf = ns.path().to_path_buf();
    tokio::task::spawn_blocking(move || dns::bind_in_netns(&path))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_names_forwards_and_closes() {
    if !is_root() {
        return;
    }
    let ns = Netns::new();
    let upstream = fake_upstream().await;
    let resolver = Arc::new(TestResolver {
        upstreams: Mutex::new(vec![upstream]),
    });
    let server = dns::serve("c1".into(), bind(&ns).await.unwrap(), resolver.clone()).unwrap();
    // A second bind in the same namespace fails: the address is taken there.
    assert!(bind(&ns).await.is_err());

    let ns = Arc::new(ns);
    let client = ns.clone();
    tokio::task::spawn_blocking(move || {
        client.run(|| {
            for tcp in [false, true] {
                let m = ask(tcp, &query(0x0101, "web", RecordType::A));
                assert_eq!(m.metadata.id, 0x0101);
                assert_eq!(only_a(&m), (WEB, 600));
                let m = ask(tcp, &query(0x0202, "WEB-Alias.", RecordType::A));
                assert_eq!(only_a(&m), (WEB, 600));
                assert_eq!(m.answers[0].name.to_ascii(), "WEB-Alias.");
                // Known, but no IPv6 address: NOERROR, no records.
                let m = ask(tcp, &query(0x0303, "web", RecordType::AAAA));
                assert_eq!(m.metadata.response_code, ResponseCode::NoError);
                assert!(m.answers.is_empty());
                let m = ask(
                    tcp,
                    &query(0x0404, "2.0.89.10.in-addr.arpa.", RecordType::PTR),
                );
                assert_eq!(m.answers.len(), 1);
                assert_eq!(
                    m.answers[0].data,
                    RData::PTR(PTR(Name::from_ascii("web.").unwrap()))
                );
                // Forwarded: the upstream's answer, with the client's id.
                let m = ask(tcp, &query(0xbeef, "outside.test", RecordType::A));
                assert_eq!(m.metadata.id, 0xbeef);
                assert_eq!(only_a(&m), (Ipv4Addr::new(192, 0, 2, 7), 42));
                let m = ask(tcp, &query(0x0505, "nowhere.test", RecordType::A));
                assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            }

            // Malformed: dropped (UDP), the server goes on; connection closed (TCP).
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.send_to(b"\x01\x02garbage", SERVER).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            assert!(s.recv_from(&mut [0u8; 512]).is_err());
            assert_eq!(only_a(&ask_udp(&query(7, "web", RecordType::A))).0, WEB);
            {
                use std::io::{Read, Write};
                let mut t = TcpStream::connect(SERVER).unwrap();
                t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                t.write_all(b"\x00\x05hello").unwrap();
                assert_eq!(t.read(&mut [0u8; 16]).unwrap_or(0), 0);
            }
        })
    })
    .await
    .unwrap();

    // An upstream that never answers: SERVFAIL after its 2 s; the next one is tried after it.
    let (_su, _st, silent) = silent_upstream();
    *resolver.upstreams.lock().unwrap() = vec![silent];
    let client = ns.clone();
    tokio::task::spawn_blocking(move || {
        client.run(|| {
            for tcp in [false, true] {
                let t = Instant::now();
                let m = ask(tcp, &query(0x0606, "outside.test", RecordType::A));
                let took = t.elapsed();
                assert_eq!(m.metadata.id, 0x0606);
                assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
                assert_eq!(m.queries.len(), 1);
                assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(4));
                eprintln!(
                    "silent upstream ({}): SERVFAIL after {took:?}",
                    if tcp { "tcp" } else { "udp" }
                );
            }
        })
    })
    .await
    .unwrap();
    *resolver.upstreams.lock().unwrap() = vec![silent, upstream];
    let client = ns.clone();
    tokio::task::spawn_blocking(move || {
        client.run(|| {
            let t = Instant::now();
            let m = ask_udp(&query(0x0707, "outside.test", RecordType::A));
            assert_eq!(only_a(&m).0, Ipv4Addr::new(192, 0, 2, 7));
            assert!(t.elapsed() >= Duration::from_millis(1900));
        })
    })
    .await
    .unwrap();
    // No upstreams at all: SERVFAIL at once.
    resolver.upstreams.lock().unwrap().clear();
    let client = ns.clone();
    tokio::task::spawn_blocking(move || {
        client.run(|| {
            let m = ask_udp(&query(0x0808, "outside.test", RecordType::A));
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        })
    })
    .await
    .unwrap();

    // Dropping the server closes 127.0.0.11:53 (as soon as the runtime drops the tasks).
    drop(server);
    let t = Instant::now();
    let sockets = loop {
        match bind(&ns).await {
            Ok(s) => break s,
            Err(e) if t.elapsed() < Duration::from_secs(1) => {
                eprintln!("rebind after {:?}: {e}", t.elapsed());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => panic!("127.0.0.11:53 still bound after drop: {e}"),
        }
    };
    eprintln!("rebound {:?} after drop", t.elapsed());
    // stop() returns once the sockets are closed.
    let server = dns::serve("c1".into(), sockets, resolver.clone()).unwrap();
    server.stop().await;
    let again = bind(&ns).await.unwrap();
    drop(again);

    Arc::try_unwrap(ns).ok().unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs() {
    if !is_root() {
        return;
    }
    let ns = Arc::new(Netns::new());
    let resolver: Arc<dyn Resolver> = Arc::new(TestResolver {
        upstreams: Mutex::new(vec![]),
    });
    let mut setup = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let sockets = bind(&ns).await.unwrap();
        let server = dns::serve("c1".into(), sockets, resolver.clone()).unwrap();
        setup.push(t.elapsed());
        server.stop().await;
    }
    let server = dns::serve("c1".into(), bind(&ns).await.unwrap(), resolver.clone()).unwrap();
    let client = ns.clone();
    let latencies = tokio::task::spawn_blocking(move || {
        client.run(|| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.connect(SERVER).unwrap();
            let mut buf = [0u8; 512];
            let mut latencies = Vec::with_capacity(1000);
            for i in 0..1000u16 {
                let q = query(i, "web", RecordType::A);
                let t = Instant::now();
                s.send(&q).unwrap();
                let n = s.recv(&mut buf).unwrap();
                latencies.push(t.elapsed());
                assert_eq!(buf[..2], i.to_be_bytes());
                assert!(n > 12);
            }
            latencies
        })
    })
    .await
    .unwrap();
    server.stop().await;
    let mut sorted = latencies.clone();
    sorted.sort();
    println!(
        "bind_in_netns + serve, per container: median {:?} of 50 (min {:?}, max {:?})",
        median(setup.clone()),
        setup.iter().min().unwrap(),
        setup.iter().max().unwrap()
    );
    println!(
        "UDP query for a known name: median {:?} of 1000 (p99 {:?})",
        median(latencies),
        sorted[989]
    );
    Arc::try_unwrap(ns).ok().unwrap();
}
