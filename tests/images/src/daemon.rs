//! `berth daemon` in a private directory, and the clients that talk to it.
//!
//! A daemon's life in a test:
//! 1. [`Daemon::start`] makes `/tmp/berth-it-daemon-XXXX/` and runs
//!    `berth daemon --host unix://<dir>/berth.sock --data-root <dir>/root`
//!    (plus `--insecure-registry` for each registry the test uses), its output
//!    in `<dir>/daemon.log`, and waits until `GET /_ping` answers.
//! 2. The test drives it with [`Daemon::docker`] (docker 28's CLI, with a
//!    private `DOCKER_CONFIG` in `<dir>/docker-config`) or [`Daemon::python`]
//!    (the docker SDK for Python).
//! 3. [`Daemon::kill9`] and [`Daemon::restart`] simulate a crash on the same
//!    data root.
//! 4. Dropping it sends SIGTERM to its pid (SIGKILL after 15 s), unmounts
//!    whatever is still mounted under `<dir>` (per /proc/self/mountinfo) and
//!    removes `<dir>`.
//!
//! Networks: [`Daemon::start`] / [`Daemon::start_with`] run the daemon in the test's own
//! network namespace (it reaches the tests' registries on 127.0.0.1) with `--bridge none`:
//! it makes no bridge and no netfilter rule, and containers get no network. A daemon from
//! [`Daemon::start_in_netns`] runs in a network namespace of its own
//! (`/run/netns/berth-it-...`, loopback up) with the default bridge: its bridges, veths,
//! netfilter table and sysctls are made there, never on the host, and go when the
//! namespace is deleted at the end. [`Daemon::netns_command`] runs a program in it (a
//! client reaching a published port).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::cmd::{self, run_with, Outcome, COMMAND_TIMEOUT};

/// How long the daemon may take to answer `/_ping` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The docker CLI the suite drives (docker 28).
pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Daemon {
    dir: Option<TempDir>,
    /// The exec root: short (monitor sockets live under it) and on tmpfs, like /run/berth.
    run: Option<TempDir>,
    child: Option<Child>,
    insecure: Vec<String>,
    /// The daemon's network namespace, `/run/netns/<name>`.
    netns: Option<String>,
    extra_args: Vec<String>,
}

impl Daemon {
    /// A daemon that knows no registry.
    pub fn start() -> Result<Daemon> {
        Self::start_with(&[])
    }

    /// A daemon that talks plain HTTP to each of `insecure_registries` (`host:port`).
    pub fn start_with(insecure_registries: &[&str]) -> Result<Daemon> {
        Self::launch(
            insecure_registries.iter().map(|s| s.to_string()).collect(),
            None,
            vec!["--bridge".into(), "none".into()],
        )
    }

    /// A daemon with networks, in a network namespace of its own.
    pub fn start_in_netns() -> Result<Daemon> {
        Self::start_with_args(&[])
    }

    /// [`Daemon::start_in_netns`] with extra `berth daemon` flags (e.g. `--bip`).
    pub fn start_with_args(args: &[&str]) -> Result<Daemon> {
        let netns = cmd::unique("berth-it-");
        cmd::run("ip", &["netns", "add", netns.as_str()])?.ok()?;
        let up = cmd::run("ip", &["-n", netns.as_str(), "link", "set", "lo", "up"]);
        if let Err(e) = up.and_then(Outcome::ok) {
            let _ = Command::new("ip")
                .args(["netns", "del", netns.as_str()])
                .status();
            return Err(e);
        }
        // From here the daemon's drop deletes the namespace.
        Self::launch(
            Vec::new(),
            Some(netns),
            args.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn launch(
        insecure: Vec<String>,
        netns: Option<String>,
        extra_args: Vec<String>,
    ) -> Result<Daemon> {
        let mut daemon = Daemon {
            dir: None,
            run: None,
            child: None,
            insecure,
            netns,
            extra_args,
        };
        let dir = cmd::tmp_dir("daemon")?;
        fs::create_dir_all(dir.path().join("docker-config"))?;
        daemon.dir = Some(dir);
        daemon.run = Some(
            tempfile::Builder::new()
                .prefix("berth-it-")
                .tempdir_in("/run")
                .context("making an exec root under /run")?,
        );
        daemon.spawn()?;
        Ok(daemon)
    }

    /// The daemon's network namespace name (under /run/netns): only for
    /// [`Daemon::start_in_netns`] daemons.
    pub fn netns(&self) -> &str {
        self.netns
            .as_deref()
            .expect("a daemon from start_in_netns has a network namespace")
    }

    /// `program args...` inside the daemon's network namespace (its host view: bridges,
    /// published ports on 127.0.0.1).
    pub fn netns_command<S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns()))
            .arg("--")
            .arg(program)
            .args(args);
        cmd
    }

    /// [`Daemon::netns_command`], run to completion with a timeout.
    pub fn in_netns<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: &str,
        args: &[S],
    ) -> Result<Outcome> {
        run_with(self.netns_command(program, args), None, COMMAND_TIMEOUT)
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the directory lives as long as the daemon")
            .path()
    }

    /// `<dir>/berth.sock`
    pub fn socket(&self) -> PathBuf {
        self.dir().join("berth.sock")
    }

    /// `unix://<dir>/berth.sock`, for `-H` and `base_url`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// `<dir>/root`, the daemon's `--data-root`.
    pub fn data_root(&self) -> PathBuf {
        self.dir().join("root")
    }

    /// `/run/berth-it-XXXXXX`, the daemon's `--exec-root` (monitors, runtime state).
    pub fn exec_root(&self) -> PathBuf {
        self.run
            .as_ref()
            .expect("the exec root lives as long as the daemon")
            .path()
            .to_path_buf()
    }

    /// A scratch directory for the test, inside the daemon's directory.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir().join("scratch").join(name);
        fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("daemon.log")).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<()> {
        let bin = berth_binary().map_err(|e| anyhow!("cannot build berth: {e}"))?;
        let socket = self.socket();
        let _ = fs::remove_file(&socket);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("daemon.log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("daemon")
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root());
        for registry in &self.insecure {
            cmd.arg("--insecure-registry").arg(registry);
        }
        cmd.args(&self.extra_args);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("RUST_BACKTRACE", "1");
        let ns = match &self.netns {
            Some(name) => Some(
                File::open(format!("/run/netns/{name}"))
                    .context("opening the daemon's network namespace")?,
            ),
            None => None,
        };
        if let Some(ns) = &ns {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = ns.as_raw_fd();
            // SAFETY: setns is async-signal-safe; `ns` outlives the spawn below.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let line = cmd::describe(&cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run `{line}`"))?;
        drop(ns);
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().expect("just spawned").try_wait()? {
                self.child = None;
                bail!(
                    "`{line}` exited with {status} before answering /_ping; log:\n{}",
                    self.log()
                );
            }
            if let Ok((status, body)) = self.request("GET", "/_ping") {
                if status == 200 && body.trim() == "OK" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "`{line}` did not answer /_ping within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// One raw HTTP/1.0 request on the socket: status code and body.
    pub fn request(&self, method: &str, path: &str) -> Result<(u16, String)> {
        let mut stream = UnixStream::connect(self.socket())?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: berth\r\n\r\n")?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let status = reply
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("not an HTTP reply: {reply:?}"))?;
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Crash: SIGKILL to the daemon's pid, then reap it.
    pub fn kill9(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("the daemon is not running"))?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
        child.wait()?;
        Ok(())
    }

    /// Starts the daemon again on the same data root and socket.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.spawn()
    }

    /// Graceful stop: SIGTERM to its pid, SIGKILL if it lingers past 15 s.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = kill(pid, Signal::SIGKILL);
                child.wait()?;
                bail!("berth daemon (pid {pid}) ignored SIGTERM for 15 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// A docker CLI command against this daemon.
    pub fn docker_command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H")
            .arg(self.host())
            .args(args)
            .env("DOCKER_CONFIG", self.dir().join("docker-config"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CLI_HINTS", "false");
        cmd
    }

    /// Runs `docker -H unix://... <args>`; any exit status.
    pub fn docker<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        run_with(self.docker_command(args), None, COMMAND_TIMEOUT)
    }

    /// [`Daemon::docker`] with bytes on stdin.
    pub fn docker_stdin<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        stdin: Vec<u8>,
    ) -> Result<Outcome> {
        run_with(self.docker_command(args), Some(stdin), COMMAND_TIMEOUT)
    }

    /// [`Daemon::docker`], failing unless it exits 0.
    pub fn docker_ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        self.docker(args)?.ok()
    }

    /// `docker image inspect <name>` parsed (the first object).
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let out = self.docker_ok(&["image", "inspect", name])?;
        let value: serde_json::Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("image inspect printed no JSON: {out}"))?;
        value
            .get(0)
            .cloned()
            .ok_or_else(|| anyhow!("image inspect printed an empty list: {out}"))
    }

    /// Every image as `id repo:tag` lines (sorted), to compare before and after.
    pub fn image_table(&self) -> Result<Vec<String>> {
        let out = self.docker_ok(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}}",
        ])?;
        let mut lines = out.lines();
        lines.sort();
        Ok(lines)
    }

    /// Runs a Python script using the docker SDK, with `DOCKER_HOST` set to
    /// this daemon; any exit status.
    pub fn python(&self, script: &str) -> Result<Outcome> {
        crate::python::require_docker_sdk()?;
        let file = self.dir().join(format!("{}.py", cmd::unique("script-")));
        File::create(&file)?.write_all(script.as_bytes())?;
        let mut cmd = Command::new("python3");
        cmd.arg(&file)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir().join("docker-config"))
            .env("PYTHONUNBUFFERED", "1");
        run_with(cmd, None, COMMAND_TIMEOUT)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers outlive the daemon by design: remove the ones this daemon made first.
        if self.child.is_some() {
            if let Ok(out) = self.docker(&["ps", "-aq", "--no-trunc"]) {
                let ids: Vec<String> = out.lines();
                if !ids.is_empty() {
                    let mut args = vec!["rm".to_string(), "-f".to_string(), "-v".to_string()];
                    args.extend(ids);
                    let _ = self.docker(&args);
                }
            }
        }
        if let Err(e) = self.stop() {
            eprintln!("warning: {e}");
        }
        if let Some(ns) = self.netns.take() {
            // Bridges, veths and berth's netfilter table live in it and go with it.
            let _ = Command::new("ip")
                .args(["netns", "del", ns.as_str()])
                .status();
        }
        if let Some(run) = self.run.take() {
            let prefix = format!("{}/", run.path().display());
            let mut mounted = mounts_under(&prefix);
            mounted.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for target in &mounted {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
            drop(run);
        }
        let Some(dir) = self.dir.take() else { return };
        let prefix = format!("{}/", dir.path().display());
        let mut mounted = mounts_under(&prefix);
        // Deepest first, so a mount on top of another comes off first.
        mounted.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for target in &mounted {
            let _ = Command::new("umount").arg(target).status();
        }
        for target in mounts_under(&prefix) {
            let _ = Command::new("umount").arg("-l").arg(&target).status();
        }
        if mounts_under(&prefix).is_empty() {
            drop(dir);
        } else {
            eprintln!(
                "warning: keeping {}: mounts remain inside it",
                dir.path().display()
            );
            let _ = dir.keep();
        }
    }
}

/// Mount points under `prefix`, as listed in /proc/self/mountinfo.
pub fn mounts_under(prefix: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| point.replace("\\040", " "))
        .filter(|point| point.starts_with(prefix))
        .collect()
}

/// `$BERTH_BIN`, or `cargo build -p berth -p berth-runc -p berth-monitor` once per test
/// process and `<target>/debug/berth` (the daemon finds the runtime and the monitor next
/// to it). A build failure fails every test that needs it.
pub fn berth_binary() -> Result<&'static PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("BERTH_BIN") {
            let bin = PathBuf::from(bin);
            return if bin.is_file() {
                Ok(bin)
            } else {
                Err(format!("BERTH_BIN={} is not a file", bin.display()))
            };
        }
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .args([
                "build",
                "-p",
                "berth",
                "-p",
                "berth-runc",
                "-p",
                "berth-monitor",
            ])
            .current_dir(cmd::workspace_dir());
        let outcome =
            run_with(build, None, Duration::from_secs(1800)).map_err(|e| format!("{e:#}"))?;
        if !outcome.success() {
            return Err(format!(
                "`cargo build -p berth -p berth-runc -p berth-monitor` failed:\n{}",
                outcome.stderr
            ));
        }
        let bin = cmd::target_dir().join("debug/berth");
        if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("{} is missing after the build", bin.display()))
        }
    })
    .as_ref()
    .map_err(String::clone)
}
