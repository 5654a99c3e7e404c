//! What the tests that drive `berth` against a private dockerd share: finding the tools, a
//! dockerd started with its own data, exec and pid paths on a socket in a scratch directory
//! and in a network namespace of its own (stopped by its pid and removed when dropped), a
//! busybox image tarball, and running `berth` and `docker` against it.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

pub fn find(names: &[&str]) -> Option<PathBuf> {
    for name in names {
        let p = Path::new(name);
        if p.is_absolute() {
            if p.exists() {
                return Some(p.to_path_buf());
            }
            continue;
        }
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            if dir.join(name).is_file() {
                return Some(dir.join(name));
            }
        }
    }
    None
}

/// Says why a check is skipped, on the real stderr (past the test harness's capture).
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPING part of against_dockerd: {why} !!!!!\n"
    );
}

/// A process we started, stopped by its pid (SIGTERM, then SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory removed when dropped (after the processes using it, by field order).
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // dockerd unmounts its overlays on shutdown; anything still mounted would make the
        // removal fail, which we report rather than hide.
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

/// Host paths dockerd creates outside its data and exec roots (its identity key, its plugin
/// socket directory); those that did not exist before the test are removed after it.
pub struct HostLeftovers(Vec<PathBuf>);

impl HostLeftovers {
    pub fn record() -> Self {
        let paths = ["/etc/docker/key.json", "/run/docker", "/etc/docker"];
        HostLeftovers(
            paths
                .iter()
                .map(PathBuf::from)
                .filter(|p| !p.exists())
                .collect(),
        )
    }
}

impl Drop for HostLeftovers {
    fn drop(&mut self) {
        for p in &self.0 {
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            if let Err(e) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("could not remove {}: {e}", p.display());
                }
            }
        }
    }
}

pub struct Env {
    pub host: String,
    /// The daemon's network namespace (`/run/netns/...`): what it reaches is there.
    pub netns: PathBuf,
    pub docker: PathBuf,
    pub config: PathBuf,
    pub dir: PathBuf,
}

impl Env {
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_in(args, None)
    }

    pub fn berth_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(
            Command::new(BERTH)
                .args(["-H", &self.host, "--config"])
                .arg(&self.config)
                .args(args),
            stdin,
        )
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_in(args, None)
    }

    pub fn docker_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(
            Command::new(&self.docker)
                .args(["-H", &self.host, "--config"])
                .arg(self.dir.join("docker-config"))
                .args(args),
            stdin,
        )
    }
}

/// How long one `berth` or `docker` command may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with `stdin` (or none), collecting its output; a command that hangs is killed
/// and fails the test.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    use std::io::{Read, Write};
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    // Input and output are copied on threads of their own, so that neither waits on the other.
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    fn collect(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            buf
        })
    }
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish in {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `rm -fv` of every container on the daemon (best effort: a test's cleanup).
pub fn remove_all_containers(env: &Env) {
    let ids = stdout(&env.docker(&["ps", "-aq"]));
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-fv"];
        args.extend(ids);
        env.docker(&args);
    }
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn err(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1: {o:?}");
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs `args` on both CLIs until their outputs, seen through `view`, agree (a time such as "2
/// seconds ago" can tick over between the two runs), and returns ours; fails after 5 tries.
pub fn agree<T: PartialEq + std::fmt::Debug>(
    env: &Env,
    args: &[&str],
    view: impl Fn(&str) -> T,
) -> T {
    let mut last = None;
    for _ in 0..5 {
        let (ours, theirs) = (view(&ok(&env.berth(args))), view(&ok(&env.docker(args))));
        if ours == theirs {
            return ours;
        }
        last = Some((ours, theirs));
        std::thread::sleep(Duration::from_millis(300));
    }
    let (ours, theirs) = last.expect("tried");
    panic!("{args:?}\nberth:  {ours:?}\ndocker: {theirs:?}");
}

pub fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

/// A network namespace made with `ip netns add` for one daemon (its bridges, veths, netfilter
/// rules and published ports live there, never on the host), deleted when dropped.
pub struct NetNs(pub String);

impl NetNs {
    /// `/run/netns/berth-clitest-<tag>-<pid>` with its loopback up, or `None` when `ip netns`
    /// cannot make it.
    pub fn add(tag: &str) -> Option<NetNs> {
        let name = format!("berth-clitest-{tag}-{}", std::process::id());
        let added = Command::new("ip").args(["netns", "add", &name]).status();
        if !added.is_ok_and(|s| s.success()) {
            return None;
        }
        let ns = NetNs(name);
        let up = Command::new("ip")
            .args(["-n", &ns.0, "link", "set", "lo", "up"])
            .status();
        up.is_ok_and(|s| s.success()).then_some(ns)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }

    /// `program args...` run inside the namespace (a client of a published port).
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program)
            .args(args);
        cmd
    }
}

/// Makes `cmd` start inside the network namespace at `path` (setns before exec); the file
/// returned must stay open until `cmd` is spawned.
pub fn enter_netns(path: &Path, cmd: &mut Command) -> std::fs::File {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let ns = std::fs::File::open(path).expect("open the network namespace");
    let fd = ns.as_raw_fd();
    // SAFETY: setns is async-signal-safe; the file stays open until after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    ns
}

/// Whether something listens on 127.0.0.1:`port` inside the network namespace at `path`
/// (checked from a thread of its own that enters it).
pub fn listening_in(path: &Path, port: u16) -> bool {
    use std::os::fd::AsRawFd;
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let Ok(ns) = std::fs::File::open(&path) else {
            return false;
        };
        // SAFETY: setns on this thread only, with a valid namespace file descriptor.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return false;
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .join()
    .unwrap_or(false)
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// A private daemon and what the tests need around it. Dropping it stops the daemon by its
/// pid, deletes its network namespace, then removes its directories and the host paths it
/// created (fields drop in this order).
pub struct Daemon {
    pub env: Env,
    /// A tarball of a busybox root filesystem (`docker import` makes an image of it).
    pub tarball: PathBuf,
    daemon: Proc,
    pub netns: NetNs,
    scratch: Vec<Scratch>,
    leftovers: HostLeftovers,
}

/// Which daemon the tests drive: Debian's dockerd, or with `BERTH_IT_DAEMON=berth` berth's own
/// (`berth daemon`, with berth-runc and berth-monitor built next to it), so that the same
/// checks judge both.
fn berth_daemon_wanted() -> bool {
    std::env::var("BERTH_IT_DAEMON").as_deref() == Ok("berth")
}

/// Starts the daemon in `/tmp/berth-cli-<tag>-<pid>`, or says why it cannot and returns `None`
/// (no dockerd, no docker CLI to compare with, not root, no busybox).
pub fn start_daemon(tag: &str) -> Option<Daemon> {
    let berth = berth_daemon_wanted();
    let dockerd = find(&["dockerd"]);
    if dockerd.is_none() && !berth {
        skip("dockerd is not installed (apt-get install -y docker.io)");
        return None;
    }
    let Some(docker) = find(&["docker", "/usr/local/bin/docker"]) else {
        skip("no docker CLI to compare with");
        return None;
    };
    if effective_uid() != 0 {
        skip("the daemon needs root");
        return None;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../scripts/make-busybox-rootfs.sh");
    let leftovers = HostLeftovers::record();
    let dir = PathBuf::from(format!("/tmp/berth-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // berth's monitors bind sockets under the exec root, whose paths must stay short.
    let exec_root = if berth {
        PathBuf::from(format!("/tmp/bci{}", std::process::id()))
    } else {
        dir.join("exec")
    };
    let mut scratch = vec![Scratch(dir.clone())];
    if berth {
        scratch.push(Scratch(exec_root.clone()));
    }
    let rootfs = dir.join("rootfs");
    let made = Command::new("sh").arg(&script).arg(&rootfs).status();
    if !made.is_ok_and(|s| s.success()) {
        skip("could not build a busybox rootfs with scripts/make-busybox-rootfs.sh");
        return None;
    }
    let tarball = dir.join("bb.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap()
        .success());

    let Some(netns) = NetNs::add(tag) else {
        skip("could not make a network namespace with `ip netns add`");
        return None;
    };
    let sock = dir.join("docker.sock");
    let host = format!("unix://{}", sock.display());
    let mut cmd = match &dockerd {
        Some(dockerd) if !berth => {
            let mut cmd = Command::new(dockerd);
            cmd.arg("--pidfile").arg(dir.join("docker.pid")).args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ]);
            cmd
        }
        _ => {
            let mut cmd = Command::new(BERTH);
            cmd.arg("daemon");
            cmd
        }
    };
    let ns_file = enter_netns(&netns.path(), &mut cmd);
    let daemon = Proc(
        cmd.args(["-H", &host, "--data-root"])
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    drop(ns_file);
    let env = Env {
        host,
        netns: netns.path(),
        docker,
        config: dir.join("berth-config"),
        dir: dir.clone(),
    };
    wait_for("the daemon", || env.berth(&["version"]).status.success());
    Some(Daemon {
        env,
        tarball,
        daemon,
        netns,
        scratch,
        leftovers,
    })
}
