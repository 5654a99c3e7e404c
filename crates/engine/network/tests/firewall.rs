//! berth's firewall rules with real traffic, as root, each test in network namespaces of its
//! own: a worker thread that unshared its network namespace runs the test's commands (child
//! processes inherit the calling thread's namespace) and opens its sockets (a socket stays in
//! the namespace it was made in). The host's own netfilter state is never touched.
//!
//! Topology of [`Topo`]: "host" has bridge `berthfw0` (10.89.0.1/24, fd89::1/64) with two
//! "containers" behind it (c: .2/::2, c2: .3/::3), and a veth to "outside" (host side
//! 192.0.2.1/24 and 2001:db8::1/64, outside 192.0.2.2 and 2001:db8::2). Outside has no route
//! to the containers' subnets, so what it reaches from them is masqueraded.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_network::firewall::{apply, Backend, NetworkRules, PortRule, Proto, Ruleset};
use nix::sched::{unshare, CloneFlags};

type Job = Box<dyn FnOnce() + Send>;

/// A thread in a network namespace of its own, running jobs sent to it.
struct Netns {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// The thread's id: `ip link set ... netns <tid>` moves a link into its namespace.
    tid: i32,
    /// The namespace's inode, to check no thread of ours is left in it.
    ino: String,
}

fn ns_of_thread() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

impl Netns {
    fn new() -> Netns {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let _ = ready_tx.send(Ok(((nix::unistd::gettid().as_raw()), ns_of_thread())));
            for job in rx {
                job();
            }
        });
        let (tid, ino) = ready_rx
            .recv()
            .unwrap()
            .expect("unshare(CLONE_NEWNET): these tests need root");
        let ns = Netns {
            tx: Some(tx),
            thread: Some(thread),
            tid,
            ino,
        };
        ns.sh("ip link set lo up");
        ns
    }

    /// Run `f` on the namespace's thread and return what it returns (or its panic).
    fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        });
        self.tx.as_ref().unwrap().send(job).unwrap();
        match rx.recv().unwrap() {
            Ok(r) => r,
            Err(p) => panic::resume_unwind(p),
        }
    }

    /// `sh -ec script` in the namespace: its stdout, or a panic with its stderr.
    fn sh(&self, script: &str) -> String {
        let script = script.to_string();
        self.run(move || {
            let out = Command::new("sh").arg("-ec").arg(&script).output().unwrap();
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    }

    /// Connect from this namespace and read what the server says (the peer address it saw).
    fn fetch(&self, addr: &str) -> std::io::Result<String> {
        let addr: SocketAddr = addr.parse().unwrap();
        self.run(move || {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })
    }

    /// A server in this namespace that tells each client the address it sees it from.
    fn serve(&self, addr: &str) -> Server {
        let addr: SocketAddr = addr.parse().unwrap();
        let listener = self.run(move || TcpListener::bind(addr).unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// No thread of this process is left in any of `inodes`.
fn assert_namespaces_left(inodes: &[String]) {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("ns/net");
        if let Ok(link) = std::fs::read_link(&path) {
            let link = link.to_string_lossy().into_owned();
            assert!(!inodes.contains(&link), "a thread is still in {link}");
        }
    }
}

struct Topo {
    host: Netns,
    c: Netns,
    c2: Netns,
    out: Netns,
}

impl Topo {
    fn new() -> Topo {
        let t = Topo {
            host: Netns::new(),
            c: Netns::new(),
            c2: Netns::new(),
            out: Netns::new(),
        };
        t.host.sh(&format!(
            "ip link add berthfw0 type bridge
             ip link set berthfw0 up
             ip addr add 10.89.0.1/24 dev berthfw0
             ip -6 addr add fd89::1/64 dev berthfw0 nodad
             ip link add vc0 type veth peer name eth0 netns {c}
             ip link set vc0 master berthfw0 up
             ip link add vc1 type veth peer name eth0 netns {c2}
             ip link set vc1 master berthfw0 up
             ip link set vc0 type bridge_slave hairpin on
             ip link add vo0 type veth peer name eth0 netns {o}
             ip addr add 192.0.2.1/24 dev vo0
             ip -6 addr add 2001:db8::1/64 dev vo0 nodad
             ip link set vo0 up
             sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
             sysctl -qw net.ipv4.conf.berthfw0.route_localnet=1",
            c = t.c.tid,
            c2 = t.c2.tid,
            o = t.out.tid
        ));
        for (ns, n) in [(&t.c, 2), (&t.c2, 3)] {
            ns.sh(&format!(
                "ip link set eth0 up
                 ip addr add 10.89.0.{n}/24 dev eth0
                 ip -6 addr add fd89::{n}/64 dev eth0 nodad
                 ip route add default via 10.89.0.1
                 ip -6 route add default via fd89::1"
            ));
        }
        t.out.sh("ip link set eth0 up
             ip addr add 192.0.2.2/24 dev eth0
             ip -6 addr add 2001:db8::2/64 dev eth0 nodad");
        t
    }

    fn apply(&self, backend: Backend, rules: &Ruleset) {
        let rules = rules.clone();
        self.host
            .run(move || apply(backend, &rules))
            .unwrap_or_else(|e| panic!("apply: {e}"));
    }

    fn inodes(&self) -> Vec<String> {
        [&self.host, &self.c, &self.c2, &self.out]
            .iter()
            .map(|n| n.ino.clone())
            .collect()
    }
}

fn network(internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: "berthfw0".into(),
        subnets: vec![
            "10.89.0.0/24".parse().unwrap(),
            "fd89::/64".parse().unwrap(),
        ],
        internal,
        masquerade: !internal,
    }
}

fn port(host_ip: Option<&str>, host_port: u16, container_ip: &str) -> PortRule {
    PortRule {
        proto: Proto::Tcp,
        host_ip: host_ip.map(|h| h.parse().unwrap()),
        host_port,
        container_ip: container_ip.parse().unwrap(),
        container_port: 80,
        bridge: "berthfw0".into(),
    }
}

/// The full set: masquerading network, 8080 -> c:80 on every address, v6 8080 -> [c]:80,
/// 8081 -> c:80 on 192.0.2.1 only.
fn full() -> Ruleset {
    Ruleset {
        networks: vec![network(false)],
        ports: vec![
            port(None, 8080, "10.89.0.2"),
            port(None, 8080, "fd89::2"),
            port(Some("192.0.2.1"), 8081, "10.89.0.2"),
        ],
    }
}

/// (a), (b) and hairpin: with `full()` applied.
fn check_traffic(t: &Topo, v6: bool) {
    // (a) Masquerade: outside sees the host's address.
    let _o = t.out.serve("0.0.0.0:9000");
    assert_eq!(t.c.fetch("192.0.2.2:9000").unwrap(), "192.0.2.1");
    // (b) Published port: from the host itself on 127.0.0.1 and its own addresses, and from
    // outside (no NAT of the source then).
    let _c = t.c.serve("[::]:80");
    for (from, addr, seen) in [
        (&t.host, "127.0.0.1:8080", "10.89.0.1"),
        (&t.host, "192.0.2.1:8080", "192.0.2.1"),
        (&t.host, "10.89.0.1:8080", "10.89.0.1"),
        (&t.host, "192.0.2.1:8081", "192.0.2.1"),
        (&t.out, "192.0.2.1:8080", "192.0.2.2"),
        // Hairpin: a sibling through the host's address is masqueraded to the bridge's.
        (&t.c2, "192.0.2.1:8080", "10.89.0.1"),
        // ... and the container itself (the daemon turns hairpin mode on for its port).
        (&t.c, "192.0.2.1:8080", "10.89.0.1"),
    ] {
        let got = from.fetch(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(got.trim_start_matches("::ffff:"), seen, "via {addr}");
    }
    // Bound to 192.0.2.1 only: not on the bridge's address.
    assert!(t.host.fetch("10.89.0.1:8081").is_err());
    if v6 {
        let _o6 = t.out.serve("[2001:db8::2]:9001");
        assert_eq!(t.c.fetch("[2001:db8::2]:9001").unwrap(), "2001:db8::1");
        assert_eq!(t.host.fetch("[2001:db8::1]:8080").unwrap(), "2001:db8::1");
        assert_eq!(t.out.fetch("[2001:db8::1]:8080").unwrap(), "2001:db8::2");
    }
}

#[test]
fn children_inherit_the_threads_netns() {
    let ns = Netns::new();
    let child = ns.sh("readlink /proc/self/ns/net");
    assert_eq!(child.trim(), ns.ino);
    assert_ne!(ns.ino, ns_of_thread(), "the test thread is not in it");
    assert_eq!(ns.sh("ip -o link show").lines().count(), 1, "only lo");
    let inodes = vec![ns.ino.clone()];
    drop(ns);
    assert_namespaces_left(&inodes);
}

#[test]
fn nftables_masquerade_ports_hairpin_and_removal() {
    let t = Topo::new();
    // (e) Someone else's table, before and after.
    t.host.sh("nft -f - <<'EOF'
table inet other {
    chain c {
        type filter hook forward priority 0; policy accept;
        ip saddr 198.51.100.7 counter accept
    }
}
EOF");
    // Without berth's rules outside cannot answer the container.
    let o = t.out.serve("0.0.0.0:9000");
    assert!(t.c.fetch("192.0.2.2:9000").is_err());
    drop(o);

    t.apply(Backend::Nftables, &full());
    t.apply(Backend::Nftables, &full()); // replacing is idempotent
    let listed = t.host.sh("nft list ruleset");
    assert_eq!(listed.matches("table inet berth").count(), 1, "{listed}");
    check_traffic(&t, true);

    // (d) Empty: nothing of berth's is left, the other table is untouched.
    t.apply(Backend::Nftables, &Ruleset::default());
    let listed = t.host.sh("nft list ruleset");
    assert!(!listed.contains("berth"), "{listed}");
    assert!(listed.contains("ip saddr 198.51.100.7 counter"), "{listed}");
    t.host.sh("nft delete table inet other");
    assert_eq!(t.host.sh("nft list ruleset"), "");
    assert!(t.host.fetch("127.0.0.1:8080").is_err());
    // Removing twice is fine.
    t.apply(Backend::Nftables, &Ruleset::default());

    let inodes = t.inodes();
    drop(t);
    assert_namespaces_left(&inodes);
}

#[test]
fn nftables_internal_network_is_cut_off() {
    let t = Topo::new();
    t.out.sh("ip route add 10.89.0.0/24 via 192.0.2.1");
    let _o = t.out.serve("0.0.0.0:9000");
    let _c = t.c.serve("0.0.0.0:80");
    let rules = |internal| Ruleset {
        networks: vec![network(internal)],
        ports: vec![],
    };
    // Control: not internal, both ways work (outside has a route in).
    t.apply(Backend::Nftables, &rules(false));
    assert_eq!(t.c.fetch("192.0.2.2:9000").unwrap(), "192.0.2.1");
    assert_eq!(t.out.fetch("10.89.0.2:80").unwrap(), "192.0.2.2");
    // (c) Internal: neither way; members still reach each other.
    t.apply(Backend::Nftables, &rules(true));
    assert!(t.c.fetch("192.0.2.2:9000").is_err());
    assert!(t.out.fetch("10.89.0.2:80").is_err());
    assert_eq!(t.c2.fetch("10.89.0.2:80").unwrap(), "10.89.0.3");
    t.apply(Backend::Nftables, &Ruleset::default());
    assert_eq!(t.host.sh("nft list ruleset"), "");

    let inodes = t.inodes();
    drop(t);
    assert_namespaces_left(&inodes);
}

#[test]
fn nftables_isolates_berth_bridges() {
    let t = Topo::new();
    // A second berth bridge with c2 moved onto it.
    t.host.sh("ip link add berthfw1 type bridge
         ip link set berthfw1 up
         ip addr add 10.90.0.1/24 dev berthfw1
         ip link set vc1 nomaster
         ip link set vc1 master berthfw1");
    t.c2.sh("ip addr flush dev eth0
         ip addr add 10.90.0.3/24 dev eth0
         ip route add default via 10.90.0.1");
    let _c = t.c.serve("0.0.0.0:80");
    let mut second = network(false);
    second.bridge = "berthfw1".into();
    second.subnets = vec!["10.90.0.0/24".parse().unwrap()];
    let one = Ruleset {
        networks: vec![network(false)],
        ports: vec![],
    };
    t.apply(Backend::Nftables, &one);
    // Only berthfw0 is berth's: routed between the bridges, masqueraded going out berthfw1.
    assert_eq!(t.c2.fetch("10.89.0.2:80").unwrap(), "10.90.0.3");
    let both = Ruleset {
        networks: vec![network(false), second],
        ports: vec![],
    };
    t.apply(Backend::Nftables, &both);
    assert!(t.c2.fetch("10.89.0.2:80").is_err());
    t.apply(Backend::Nftables, &Ruleset::default());

    let inodes = t.inodes();
    drop(t);
    assert_namespaces_left(&inodes);
}

fn iptables_berth_lines(ns: &Netns) -> String {
    ns.sh("iptables-save; ip6tables-save")
        .lines()
        .filter(|l| l.contains("BERTH"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn iptables_masquerade_ports_hairpin_and_removal() {
    let t = Topo::new();
    // (e) Someone else's rules and chain, before and after.
    t.host.sh("iptables -w -A FORWARD -s 198.51.100.7 -j ACCEPT
         iptables -w -t nat -N OTHER
         iptables -w -t nat -A POSTROUTING -j OTHER
         ip6tables -w -A FORWARD -s 2001:db8:7::7 -j ACCEPT");
    t.apply(Backend::Iptables, &full());
    t.apply(Backend::Iptables, &full()); // refilled, jumps not doubled
    let lines = iptables_berth_lines(&t.host);
    for jump in [
        "-A PREROUTING -j BERTH-PREROUTING",
        "-A OUTPUT -j BERTH-OUTPUT",
        "-A POSTROUTING -j BERTH-POSTROUTING",
        "-A FORWARD -j BERTH-FORWARD",
    ] {
        // Once in iptables, once in ip6tables.
        assert_eq!(lines.matches(jump).count(), 2, "{jump} in\n{lines}");
    }
    assert_eq!(lines.matches("--to-destination 10.89.0.2:80").count(), 2);
    check_traffic(&t, true);

    // (d) Empty: nothing of berth's is left, the other rules are untouched.
    t.apply(Backend::Iptables, &Ruleset::default());
    assert_eq!(iptables_berth_lines(&t.host), "");
    let v4 = t.host.sh("iptables-save");
    assert!(
        v4.contains("-A FORWARD -s 198.51.100.7/32 -j ACCEPT"),
        "{v4}"
    );
    assert!(v4.contains(":OTHER - [0:0]") && v4.contains("-A POSTROUTING -j OTHER"));
    let v6 = t.host.sh("ip6tables-save");
    assert!(
        v6.contains("-A FORWARD -s 2001:db8:7::7/128 -j ACCEPT"),
        "{v6}"
    );
    assert!(t.host.fetch("127.0.0.1:8080").is_err());
    t.apply(Backend::Iptables, &Ruleset::default());

    let inodes = t.inodes();
    drop(t);
    assert_namespaces_left(&inodes);
}

#[test]
fn iptables_internal_network_is_cut_off() {
    let t = Topo::new();
    let _o = t.out.serve("0.0.0.0:9000");
    let rules = |internal| Ruleset {
        networks: vec![network(internal)],
        ports: vec![],
    };
    t.apply(Backend::Iptables, &rules(false));
    assert_eq!(t.c.fetch("192.0.2.2:9000").unwrap(), "192.0.2.1");
    t.apply(Backend::Iptables, &rules(true));
    assert!(t.c.fetch("192.0.2.2:9000").is_err());
    t.apply(Backend::Iptables, &Ruleset::default());
    assert_eq!(iptables_berth_lines(&t.host), "");

    let inodes = t.inodes();
    drop(t);
    assert_namespaces_left(&inodes);
}

#[test]
fn detect_picks_nftables_here() {
    let ns = Netns::new();
    assert_eq!(ns.run(Backend::detect).unwrap(), Backend::Nftables);
}

/// Median wall time of `apply` for 2 networks and 10 ports, both backends.
#[test]
fn apply_timing() {
    let ns = Netns::new();
    let mut rules = Ruleset::default();
    for (i, bridge) in ["berth0", "berth-1a2b3c4d5"].iter().enumerate() {
        rules.networks.push(NetworkRules {
            bridge: bridge.to_string(),
            subnets: vec![
                format!("172.{}.0.0/16", 18 + i).parse().unwrap(),
                format!("fd00:{}::/64", 18 + i).parse().unwrap(),
            ],
            internal: false,
            masquerade: true,
        });
    }
    for p in 0..10u16 {
        rules.ports.push(PortRule {
            proto: if p % 2 == 0 { Proto::Tcp } else { Proto::Udp },
            host_ip: None,
            host_port: 8000 + p,
            container_ip: IpAddr::from([172, 18, 0, 2 + p as u8]),
            container_port: 80,
            bridge: "berth0".into(),
        });
    }
    for backend in [Backend::Nftables, Backend::Iptables] {
        let rules = rules.clone();
        let median = ns.run(move || {
            let mut times: Vec<Duration> = (0..20)
                .map(|_| {
                    let start = Instant::now();
                    apply(backend, &rules).unwrap();
                    start.elapsed()
                })
                .collect();
            apply(backend, &Ruleset::default()).unwrap();
            times.sort();
            times[10]
        });
        println!("apply({backend:?}), 2 networks + 10 ports: median of 20 = {median:?}");
    }
}
