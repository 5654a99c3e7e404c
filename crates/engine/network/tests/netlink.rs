//! The rtnetlink client against the real kernel, as root, each test in network namespaces of
//! its own: nothing here touches the host's links, addresses or routes.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_network::netlink::{mac_for, read_sysctl, sysctl, Handle};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// A fresh network namespace, kept alive by a bind mount on a temporary file; unmounted and
/// removed when dropped (the namespace then goes away with everything in it).
struct NetNs {
    file: File,
    path: tempfile::TempPath,
}

impl NetNs {
    fn new() -> NetNs {
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let target = path.to_path_buf();
        std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): run the tests as root");
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .expect("bind-mounting the namespace");
        })
        .join()
        .unwrap();
        let file = File::open(&path).unwrap();
        NetNs { file, path }
    }

    /// Moves the calling thread into the namespace.
    fn enter(&self) {
        setns(&self.file, CloneFlags::CLONE_NEWNET).unwrap();
        let ino = |p: &str| std::fs::metadata(p).unwrap().ino();
        assert_ne!(
            ino("/proc/thread-self/ns/net"),
            ino("/proc/self/ns/net"),
            "still in the host's namespace"
        );
    }

    /// Runs `f` in a thread inside the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
        })
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = umount2(&*self.path, MntFlags::MNT_DETACH);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn bridge_veth_and_traffic() {
    let host = NetNs::new();
    let container = NetNs::new();
    host.run(|| {
        let mut h = Handle::new().unwrap();
        let br = h.create_bridge("berthtest0", Some(1400)).unwrap();
        assert_eq!(
            h.create_bridge("berthtest0", Some(1400)).unwrap(),
            br,
            "an existing bridge is fine"
        );
        h.add_address(br, ip("10.99.0.1"), 24).unwrap();
        h.add_address(br, ip("10.99.0.1"), 24).unwrap(); // EEXIST is fine
        h.add_address(br, ip("fd99::1"), 64).unwrap();
        h.set_up(br).unwrap();

        let links = h.links().unwrap();
        assert!(links.contains(&(br, "berthtest0".to_owned())), "{links:?}");
        assert!(links.iter().any(|(_, name)| name == "lo"), "{links:?}");
        assert_eq!(h.link_index("berthtest0").unwrap(), Some(br));
        assert_eq!(h.link_index("nosuchlink").unwrap(), None);
        let addrs = h.addresses().unwrap();
        assert!(addrs.contains(&(br, ip("10.99.0.1"), 24)), "{addrs:?}");
        assert!(addrs.contains(&(br, ip("fd99::1"), 64)), "{addrs:?}");

        // /proc/sys/net follows the calling thread's namespace.
        let key = "net/ipv4/conf/berthtest0/route_localnet";
        assert_eq!(read_sysctl(key).unwrap(), "0");
        sysctl(key, "1").unwrap();
        assert_eq!(read_sysctl(key).unwrap(), "1");
        assert!(read_sysctl("net/ipv4/conf/nosuchlink/route_localnet")
            .unwrap_err()
            .to_string()
            .contains("nosuchlink"));

        let mac = mac_for(Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(mac, [0x02, 0x42, 10, 99, 0, 2]);
        h.create_veth(
            "vethtest0",
            "eth0",
            container.file.as_fd(),
            Some(mac),
            Some(1400),
        )
        .unwrap();
        assert_eq!(
            h.link_index("eth0").unwrap(),
            None,
            "the peer is not in this namespace"
        );
        let veth = h.link_index("vethtest0").unwrap().unwrap();
        h.set_master(veth, br).unwrap();
        h.set_up(veth).unwrap();

        let mut c = Handle::in_netns(&container.path).unwrap();
        let eth0 = c
            .link_index("eth0")
            .unwrap()
            .expect("eth0 in the container's namespace");
        assert_eq!(c.link_index("vethtest0").unwrap(), None);
        c.add_address(eth0, ip("10.99.0.2"), 24).unwrap();
        c.set_up(eth0).unwrap();
        let lo = c.link_index("lo").unwrap().unwrap();
        c.set_up(lo).unwrap();
        c.add_default_route(ip("10.99.0.1")).unwrap();
        let routes = c.routes().unwrap();
        assert!(routes.contains(&(ip("0.0.0.0"), 0)), "{routes:?}");
        assert!(routes.contains(&(ip("10.99.0.0"), 24)), "{routes:?}");
        assert!(
            !routes.iter().any(|(dest, _)| *dest == ip("fd99::")),
            "{routes:?}"
        );
        let host_routes = h.routes().unwrap();
        assert!(
            host_routes.contains(&(ip("10.99.0.0"), 24)),
            "{host_routes:?}"
        );
        assert!(host_routes.contains(&(ip("fd99::"), 64)), "{host_routes:?}");

        // Traffic: the bridge's side listens, the container's side connects.
        let listener = TcpListener::bind("10.99.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::scope(|s| {
            let client = s.spawn(|| {
                container.enter();
                let to = SocketAddr::new(ip("10.99.0.1"), port);
                let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(10)).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                stream.write_all(b"ping").unwrap();
                let mut reply = [0; 4];
                stream.read_exact(&mut reply).unwrap();
                assert_eq!(&reply, b"pong");
            });
            let (mut stream, peer) = listener.accept().unwrap();
            assert_eq!(peer.ip(), ip("10.99.0.2"));
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = [0; 4];
            stream.read_exact(&mut request).unwrap();
            assert_eq!(&request, b"ping");
            stream.write_all(b"pong").unwrap();
            client.join().unwrap();
        });
        // The container's MAC address is the one given to create_veth.
        let arp = std::fs::read_to_string("/proc/thread-self/net/arp").unwrap();
        assert!(
            arp.contains("10.99.0.2") && arp.contains("02:42:0a:63:00:02"),
            "{arp}"
        );

        assert!(h.delete_link("vethtest0").unwrap());
        assert!(!h.delete_link("vethtest0").unwrap());
        assert_eq!(c.link_index("eth0").unwrap(), None, "the peer went with it");
        assert!(h.delete_link("berthtest0").unwrap());
    });
}

#[test]
fn errors_name_the_link() {
    let host = NetNs::new();
    let container = NetNs::new();
    host.run(|| {
        let mut h = Handle::new().unwrap();
        let err = h
            .create_veth(
                "vethnametoolong0",
                "eth0",
                container.file.as_fd(),
                None,
                None,
            )
            .unwrap_err();
        println!("too long: {err}");
        assert!(err.to_string().contains("vethnametoolong0"), "{err}");
        assert!(err.raw_os_error().is_some(), "{err:?}");

        h.create_veth("vethtest1", "eth0", container.file.as_fd(), None, None)
            .unwrap();
        let err = h
            .create_veth("vethtest1", "eth1", container.file.as_fd(), None, None)
            .unwrap_err();
        println!("exists: {err}");
        assert!(err.to_string().contains("vethtest1"), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));

        let err = h.create_bridge("vethtest1", None).unwrap_err();
        println!("not a bridge: {err}");
        assert!(
            err.to_string().contains("vethtest1") && err.to_string().contains("not a bridge"),
            "{err}"
        );

        let veth = h.link_index("vethtest1").unwrap().unwrap();
        let err = h.set_master(veth, 424242).unwrap_err();
        println!("no such bridge: {err}");
        assert!(
            err.to_string().contains("vethtest1 (index") && err.to_string().contains("424242"),
            "{err}"
        );

        let err = h.add_default_route(ip("192.0.2.1")).unwrap_err();
        println!("unreachable gateway: {err}");
        assert!(err.to_string().contains("192.0.2.1"), "{err}");

        let err = Handle::in_netns(Path::new("/nonexistent/netns"))
            .err()
            .unwrap();
        println!("no namespace: {err}");
        assert!(err.to_string().contains("/nonexistent/netns"), "{err}");
        let not_a_namespace = tempfile::NamedTempFile::new().unwrap();
        let err = Handle::in_netns(not_a_namespace.path()).err().unwrap();
        println!("not a namespace: {err}");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));

        assert!(h.delete_link("vethtest1").unwrap());
    });
}

/// What `docker run` does for a container's eth0, timed: the figures are printed, not asserted.
#[test]
fn veth_setup_timing() {
    const STEPS: [&str; 9] = [
        "create_veth",
        "link_index(host)",
        "set_master",
        "set_up(host)",
        "in_netns",
        "link_index(eth0)",
        "add_address",
        "set_up(eth0)",
        "add_default_route",
    ];
    let host = NetNs::new();
    host.run(|| {
        let mut h = Handle::new().unwrap();
        let br = h.create_bridge("berthtest0", None).unwrap();
        h.add_address(br, ip("10.99.0.1"), 24).unwrap();
        h.set_up(br).unwrap();
        let mut rounds: Vec<[Duration; 9]> = Vec::new();
        for round in 0..50 {
            let container = NetNs::new();
            let host_name = format!("vethb{round}");
            let mut times = [Duration::ZERO; 9];
            let mut step = 0;
            let mut last = Instant::now();
            let mut lap = || {
                times[step] = last.elapsed();
                step += 1;
                last = Instant::now();
            };
            let mac = mac_for(Ipv4Addr::new(10, 99, 0, 2));
            h.create_veth(
                &host_name,
                "eth0",
                container.file.as_fd(),
                Some(mac),
                Some(1500),
            )
            .unwrap();
            lap();
            let veth = h.link_index(&host_name).unwrap().unwrap();
            lap();
            h.set_master(veth, br).unwrap();
            lap();
            h.set_up(veth).unwrap();
            lap();
            let mut c = Handle::in_netns(&container.path).unwrap();
            lap();
            let eth0 = c.link_index("eth0").unwrap().unwrap();
            lap();
            c.add_address(eth0, ip("10.99.0.2"), 24).unwrap();
            lap();
            c.set_up(eth0).unwrap();
            lap();
            c.add_default_route(ip("10.99.0.1")).unwrap();
            lap();
            rounds.push(times);
            h.delete_link(&host_name).unwrap();
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let totals: Vec<Duration> = rounds.iter().map(|t| t.iter().sum()).collect();
        let (min, max) = (*totals.iter().min().unwrap(), *totals.iter().max().unwrap());
        println!(
            "veth setup for one container ({}), {} rounds: median {:?} (min {min:?}, max {max:?})",
            STEPS.join(" + "),
            rounds.len(),
            median(totals.clone()),
        );
        for (i, name) in STEPS.iter().enumerate() {
            println!(
                "  {name:<18} median {:?}",
                median(rounds.iter().map(|t| t[i]).collect())
            );
        }
    });
}
