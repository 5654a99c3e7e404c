//! End-to-end harness for berth's container networking: docker 28's CLI and the docker
//! SDK for Python drive `berth daemon`; `ip`, `nft`, `ss` and `busybox wget` in the
//! daemon's network namespace tell whether what they report is true.
//!
//! Where the traffic goes:
//! - Every test daemon runs in a network namespace of its own (`/run/netns/berth-it-...`,
//!   see [`berth_image_tests::Daemon`]): that namespace is "the host" of the test. Its
//!   bridges, veths and `inet berth` table are made there and go with it.
//! - [`Outside`] is a second namespace (`berth-it-out-...`) joined to the daemon's by a
//!   veth pair the test makes *inside* the daemon's namespace (`berthto0` there,
//!   `berthti0` outside): 198.51.100.1/24 is "the host's address", 198.51.100.2/24 the
//!   outside host. Nothing is ever sent to an address outside these namespaces, and no
//!   link is made in the test process's own namespace.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
pub use berth_container_tests::{
    ensure_contains, eventually, is_container_id, unique, Background, Engine, BUSYBOX, IDLE,
};
pub use berth_image_tests::cmd::{self, run_with, Outcome, COMMAND_TIMEOUT};
pub use berth_image_tests::Daemon;
use serde_json::Value;

/// How long a network state may take to appear (a server to listen, a rule to apply).
pub const WAIT: Duration = Duration::from_secs(20);

/// "The host's address": the daemon's side of the [`Outside`] veth.
pub const HOST_IP: &str = "198.51.100.1";
/// The outside host's address.
pub const OUTSIDE_IP: &str = "198.51.100.2";

/// The script of a web container: writes `/w/index.html` holding `text` and serves `/w`
/// with busybox httpd on port 80, in the foreground.
pub fn web_script(text: &str) -> String {
    format!("mkdir -p /w && echo {text} > /w/index.html && exec httpd -f -p 80 -h /w")
}

/// `docker run -d <args> busybox sh -c <web_script(text)>`; the container ID.
pub fn start_web(e: &Engine, args: &[&str], text: &str) -> Result<String> {
    start_web_image(e, args, BUSYBOX, text)
}

/// [`start_web`] from another image (one that EXPOSEs 80, for `-P`).
pub fn start_web_image(e: &Engine, args: &[&str], image: &str, text: &str) -> Result<String> {
    let script = web_script(text);
    let mut full: Vec<&str> = args.to_vec();
    full.extend_from_slice(&[image, "sh", "-c", &script]);
    e.run_detached(&full)
}

/// `docker run -d <args> busybox sh -c IDLE`; the container ID.
pub fn start_idle(e: &Engine, args: &[&str]) -> Result<String> {
    let mut full: Vec<&str> = args.to_vec();
    full.extend_from_slice(&[BUSYBOX, "sh", "-c", IDLE]);
    e.run_detached(&full)
}

/// `busybox timeout 5 busybox wget -q -O - <url>` in the daemon's namespace (the host);
/// any outcome. Not `wget -T`: busybox 1.35's wget (Debian's busybox-static, on the host
/// and in the image) dies of SIGSEGV whenever `-T` is given.
pub fn host_get(e: &Daemon, url: &str) -> Result<Outcome> {
    e.in_netns(
        "busybox",
        &["timeout", "5", "busybox", "wget", "-q", "-O", "-", url],
    )
}

/// Waits until [`host_get`] of `url` prints `want`.
pub fn wait_host_get(e: &Daemon, url: &str, want: &str) -> Result<()> {
    eventually(
        &format!("{url} from the host to answer {want:?}"),
        WAIT,
        || {
            let out = host_get(e, url)?;
            if out.success() && out.stdout.contains(want) {
                Ok(Some(()))
            } else {
                Err(anyhow!("last attempt: {out}"))
            }
        },
    )
}

/// `docker exec <name> timeout 5 wget -q -O - <url>`; any outcome.
pub fn exec_get(e: &Engine, name: &str, url: &str) -> Result<Outcome> {
    e.docker(&["exec", name, "timeout", "5", "wget", "-q", "-O", "-", url])
}

/// Waits until `docker exec <name> wget <url>` prints `want` (a server just started).
pub fn wait_exec_get(e: &Engine, name: &str, url: &str, want: &str) -> Result<()> {
    eventually(
        &format!("{url} from {name} to answer {want:?}"),
        WAIT,
        || {
            let out = exec_get(e, name, url)?;
            if out.success() && out.stdout.contains(want) {
                Ok(Some(()))
            } else {
                Err(anyhow!("last attempt: {out}"))
            }
        },
    )
}

/// `docker network create <args>`; the network ID it printed.
pub fn create_network(e: &Engine, args: &[&str]) -> Result<String> {
    let mut full = vec!["network", "create"];
    full.extend_from_slice(args);
    let out = e.docker_ok(&full)?;
    let id = out.stdout.trim().to_string();
    ensure!(is_container_id(&id), "network create printed no ID: {out}");
    Ok(id)
}

/// `docker network inspect <name>`, the first object.
pub fn network(e: &Engine, name: &str) -> Result<Value> {
    let out = e.docker_ok(&["network", "inspect", name])?;
    let value: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("network inspect printed no JSON: {out}"))?;
    value
        .get(0)
        .cloned()
        .ok_or_else(|| anyhow!("network inspect printed an empty list: {out}"))
}

/// The names `docker network ls` lists, sorted.
pub fn network_names(e: &Engine) -> Result<Vec<String>> {
    let mut names = e
        .docker_ok(&["network", "ls", "--format", "{{.Name}}"])?
        .lines();
    names.sort();
    Ok(names)
}

/// The first IPv4 `IPAM.Config` entry of a network: (subnet, gateway).
pub fn ipv4_config(net: &Value) -> Result<(String, String)> {
    let configs = net["IPAM"]["Config"]
        .as_array()
        .ok_or_else(|| anyhow!("no IPAM.Config in {net}"))?;
    for c in configs {
        let subnet = c["Subnet"].as_str().unwrap_or_default();
        if subnet.contains('.') {
            return Ok((
                subnet.to_string(),
                c["Gateway"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    bail!("no IPv4 subnet in IPAM.Config: {net}")
}

/// A container's address on a network, from `docker inspect` (without the prefix).
pub fn container_ip(e: &Engine, name: &str, network: &str) -> Result<String> {
    let c = e.container(name)?;
    let ip = c["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(
        !ip.is_empty(),
        "{name} has no address on {network}: {}",
        c["NetworkSettings"]
    );
    Ok(ip)
}

/// The IPv4 addresses (`a.b.c.d/len`) of `ifname` as `ip -o -4 addr show` prints them.
pub fn parse_ipv4_addrs(ip_output: &str) -> Vec<String> {
    ip_output
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next().map(str::to_string)
        })
        .collect()
}

fn parse_v4(ip: &str) -> Option<u32> {
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some(u32::from(ip))
}

/// Whether the IPv4 address `ip` (with or without `/len`) is in `cidr`.
pub fn in_subnet(ip: &str, cidr: &str) -> bool {
    let ip = ip.split('/').next().unwrap_or_default();
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Some(ip), Some(net), Ok(len)) = (parse_v4(ip), parse_v4(net), len.parse::<u32>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == net & mask
}

/// Link names in the daemon's namespace (`ip -o link`), without `@peer` suffixes.
pub fn netns_links(e: &Daemon) -> Result<BTreeSet<String>> {
    let out = e.in_netns("ip", &["-o", "link", "show"])?.ok()?;
    Ok(link_names(&out.stdout))
}

/// Link names in the test process's own namespace.
pub fn host_links() -> Result<BTreeSet<String>> {
    let out = cmd::run("ip", &["-o", "link", "show"])?.ok()?;
    Ok(link_names(&out.stdout))
}

fn link_names(ip_output: &str) -> BTreeSet<String> {
    ip_output
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .collect()
}

/// `nft list table inet berth` in the daemon's namespace; `None` when there is no such table.
pub fn nft_table(e: &Daemon) -> Result<Option<String>> {
    let out = e.in_netns("nft", &["list", "table", "inet", "berth"])?;
    Ok(out.success().then_some(out.stdout))
}

/// A second namespace, "the outside host", joined to the daemon's by a veth pair the test
/// makes: `berthto0` (198.51.100.1/24) in the daemon's namespace, `berthti0`
/// (198.51.100.2/24) in this one. Dropping it deletes the namespace, and with it both ends.
pub struct Outside {
    name: String,
}

impl Outside {
    pub fn new(e: &Daemon) -> Result<Outside> {
        let name = unique("berth-it-out-");
        cmd::run("ip", &["netns", "add", name.as_str()])?.ok()?;
        let outside = Outside { name };
        let daemon_ns = e.netns().to_string();
        let steps: Vec<Vec<&str>> = vec![
            vec![
                "-n",
                &daemon_ns,
                "link",
                "add",
                "berthto0",
                "type",
                "veth",
                "peer",
                "name",
                "berthti0",
                "netns",
                &outside.name,
            ],
            vec![
                "-n",
                &daemon_ns,
                "addr",
                "add",
                "198.51.100.1/24",
                "dev",
                "berthto0",
            ],
            vec!["-n", &daemon_ns, "link", "set", "berthto0", "up"],
            vec![
                "-n",
                &outside.name,
                "addr",
                "add",
                "198.51.100.2/24",
                "dev",
                "berthti0",
            ],
            vec!["-n", &outside.name, "link", "set", "berthti0", "up"],
            vec!["-n", &outside.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            cmd::run("ip", &step)?.ok()?;
        }
        Ok(outside)
    }

    /// The namespace's name (under /run/netns).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program args...` inside the outside namespace.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.name))
            .arg("--")
            .arg(program)
            .args(args);
        cmd
    }

    /// [`Outside::command`] run to completion.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[S]) -> Result<Outcome> {
        run_with(self.command(program, args), None, COMMAND_TIMEOUT)
    }

    /// `busybox timeout 5 busybox wget -q -O - <url>` from the outside host.
    pub fn get(&self, url: &str) -> Result<Outcome> {
        self.run(
            "busybox",
            &["timeout", "5", "busybox", "wget", "-q", "-O", "-", url],
        )
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", self.name.as_str()])
            .status();
    }
}

/// A TCP server on `OUTSIDE_IP:port` in the outside namespace: for every connection it
/// prints `peer <address>` and sends the peer's address back, then closes.
pub fn peer_echo_server(outside: &Outside, port: u16) -> Result<Background> {
    let script = format!(
        r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{OUTSIDE_IP}", {port}))
s.listen(16)
print("listening", flush=True)
while True:
    c, addr = s.accept()
    print("peer", addr[0], flush=True)
    c.sendall(("peer " + addr[0] + "\n").encode())
    c.close()
"#
    );
    let server = Background::spawn(outside.command("python3", &["-c", script.as_str()]))?;
    server.wait_for_stdout("listening", WAIT)?;
    Ok(server)
}

/// A DNS server on 127.0.0.1:53 in the daemon's namespace that answers every A query
/// with `answer` and every other query with no records (NOERROR).
pub fn fake_dns_server(e: &Daemon, answer: &str) -> Result<Background> {
    let octets: Vec<&str> = answer.split('.').collect();
    ensure!(octets.len() == 4, "not an IPv4 address: {answer}");
    let script = format!(
        r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, addr = s.recvfrom(4096)
    if len(q) < 12:
        continue
    i = 12
    while q[i] != 0:
        i += q[i] + 1
    qend = i + 5
    qtype = struct.unpack("!H", q[i+1:i+3])[0]
    question = q[12:qend]
    name = []
    j = 12
    while q[j] != 0:
        name.append(q[j+1:j+1+q[j]].decode())
        j += q[j] + 1
    print("query", ".".join(name), qtype, flush=True)
    an = 1 if qtype == 1 else 0
    header = q[0:2] + struct.pack("!HHHHH", 0x8180, 1, an, 0, 0)
    body = question
    if an:
        body += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([{a}, {b}, {c}, {d}])
    s.sendto(header + body, addr)
"#,
        a = octets[0],
        b = octets[1],
        c = octets[2],
        d = octets[3],
    );
    let server = Background::spawn(e.netns_command("python3", &["-c", script.as_str()]))?;
    server.wait_for_stdout("ready", WAIT)?;
    Ok(server)
}

/// Removes user-defined networks by name, ignoring errors (cleanup at the end of a test;
/// the daemon's namespace goes with the daemon anyway).
pub fn remove_networks(e: &Engine, names: &[&str]) {
    for name in names {
        let _ = e.docker(&["network", "rm", name]);
    }
}

/// `docker run --rm <args> busybox sh -c "timeout 5 wget -q -O - <url>; exit $?"`: a fresh
/// container fetching `url`; any outcome. The shell stays PID 1: a `wget` that were PID 1
/// would ignore the SIGTERM of `timeout` (init has no default signal actions) and hang
/// until the kernel gives up connecting, minutes later.
pub fn run_get(e: &Engine, args: &[&str], url: &str) -> Result<Outcome> {
    let script = format!("timeout 5 wget -q -O - {url}; exit $?");
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    full.extend_from_slice(&[BUSYBOX, "sh", "-c", &script]);
    e.docker(&full)
}
