//! End-to-end harness for berth's containers: the real docker CLI (28) and the
//! docker SDK for Python drive `berth daemon`, and the host (/proc, cgroupfs,
//! the daemon's directories) tells whether what they report is true.
//!
//! A test's life:
//! 1. [`Engine::start`] runs a private daemon (the image suite's
//!    [`Daemon`]) and imports the busybox rootfs as `busybox:latest`
//!    (`CMD ["sh"]`); [`Engine::import`] makes variants with other
//!    `--change` lines.
//! 2. The test drives it with [`Engine::docker_ok`] / [`Daemon::docker`] or
//!    [`Engine::python`], and checks the host with [`host`].
//! 3. Dropping the engine drops the daemon: every container is removed with
//!    `rm -f -v`, the daemon stopped, its directory unmounted and removed.

pub mod host;

use std::ffi::OsStr;
use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
pub use berth_image_tests::{cmd, fixtures, unique, Daemon, Outcome};
use serde_json::Value;

/// The image every test starts from: the busybox rootfs, `CMD ["sh"]`.
pub const BUSYBOX: &str = "busybox:latest";

/// The shell loop most tests keep running: sleeps in short steps, so a
/// trap set before it runs within 0.1 s of its signal.
pub const IDLE: &str = "while :; do sleep 0.1; done";

/// A `berth daemon` in a private directory that holds [`BUSYBOX`].
pub struct Engine {
    daemon: Daemon,
}

impl Deref for Engine {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Engine {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

impl Engine {
    /// A fresh daemon with `busybox:latest` imported.
    pub fn start() -> Result<Engine> {
        Self::start_with_args(&[])
    }

    /// [`Engine::start`] with extra `berth daemon` flags.
    pub fn start_with_args(args: &[&str]) -> Result<Engine> {
        let engine = Engine {
            daemon: Daemon::start_with_args(args)?,
        };
        engine.import(BUSYBOX, &[r#"CMD ["sh"]"#])?;
        Ok(engine)
    }

    /// `docker import --change C... <busybox tar> name`; returns the image ID.
    pub fn import(&self, name: &str, changes: &[&str]) -> Result<String> {
        self.import_tar(&fixtures::busybox_tar()?, name, changes)
    }

    /// `docker import --change C... <tar> name`; returns the image ID.
    pub fn import_tar(&self, tar: &Path, name: &str, changes: &[&str]) -> Result<String> {
        let mut args = vec!["import".to_string()];
        for change in changes {
            args.push("--change".into());
            args.push(change.to_string());
        }
        args.push(tar.to_string_lossy().into_owned());
        args.push(name.to_string());
        let out = self.docker_ok(&args)?;
        let id = out.stdout.trim().to_string();
        ensure!(
            id.starts_with("sha256:"),
            "import printed no image ID: {out}"
        );
        Ok(id)
    }

    /// The last `lines` lines of the daemon's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.daemon.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `docker <args>`, failing (with the daemon's last log lines) unless it exits 0.
    pub fn docker_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        let out = self.daemon.docker(args)?;
        if !out.success() {
            bail!(
                "command failed: {out}\n--- daemon log (tail) ---\n{}",
                self.log_tail(20)
            );
        }
        Ok(out)
    }

    /// `docker <args>` that must fail; returns it for checks of the message.
    pub fn docker_fails<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        self.daemon.docker(args)?.failed()
    }

    /// `docker run -d <args>`; returns the full container ID it printed.
    pub fn run_detached(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["run", "-d"];
        full.extend_from_slice(args);
        let out = self.docker_ok(&full)?;
        let id = out.stdout.trim().to_string();
        ensure!(
            is_container_id(&id),
            "run -d printed no container ID: {out}"
        );
        Ok(id)
    }

    /// `docker run --rm <args>`, failing unless it exits 0; its stdout.
    pub fn run_rm(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["run", "--rm"];
        full.extend_from_slice(args);
        Ok(self.docker_ok(&full)?.stdout)
    }

    /// `docker run --name <name> busybox sh -c <script>` to its end, failing
    /// unless it exits 0.
    pub fn run_script(&self, name: &str, script: &str) -> Result<Outcome> {
        self.docker_ok(&["run", "--name", name, BUSYBOX, "sh", "-c", script])
    }

    /// `docker run -d --name <name> busybox sh -c <script>`; the container ID.
    pub fn start_script(&self, name: &str, script: &str) -> Result<String> {
        self.run_detached(&["--name", name, BUSYBOX, "sh", "-c", script])
    }

    /// `docker container inspect <name>`, the first object.
    pub fn container(&self, name: &str) -> Result<Value> {
        let out = self.docker_ok(&["container", "inspect", name])?;
        let value: Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("container inspect printed no JSON: {out}"))?;
        value
            .get(0)
            .cloned()
            .ok_or_else(|| anyhow!("container inspect printed an empty list: {out}"))
    }

    /// The full ID of a container.
    pub fn container_id(&self, name: &str) -> Result<String> {
        let id = self.container(name)?["Id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(is_container_id(&id), "inspect of {name} gave no ID: {id:?}");
        Ok(id)
    }

    /// `State.Pid` of a running container (fails if it is 0).
    pub fn container_pid(&self, name: &str) -> Result<i32> {
        let state = &self.container(name)?["State"];
        let pid = state["Pid"].as_i64().unwrap_or(0) as i32;
        ensure!(pid > 0, "{name} has no pid: State = {state}");
        Ok(pid)
    }

    /// Waits until `State.Status` is `status`; returns the inspect object.
    pub fn wait_for_status(&self, name: &str, status: &str, timeout: Duration) -> Result<Value> {
        eventually(&format!("{name} to be {status}"), timeout, || {
            let value = self.container(name)?;
            Ok((value["State"]["Status"] == status).then_some(value))
        })
    }

    /// Waits until `docker logs <name>` (stdout and stderr) contains `needle`.
    pub fn wait_for_logs(&self, name: &str, needle: &str, timeout: Duration) -> Result<Outcome> {
        eventually(
            &format!("the logs of {name} to show {needle:?}"),
            timeout,
            || {
                let out = self.docker_ok(&["logs", name])?;
                Ok(out.output().contains(needle).then_some(out))
            },
        )
    }

    /// Starts `docker <args>` in the background, for clients
    /// that run alongside the test: `logs -f`, `attach`, `stats`.
    pub fn spawn_docker(&self, args: &[&str]) -> Result<Background> {
        Background::spawn(self.docker_command(args))
    }

    /// Every container the daemon lists (`ps -aq --no-trunc`).
    pub fn container_ids(&self) -> Result<Vec<String>> {
        Ok(self.docker_ok(&["ps", "-aq", "--no-trunc"])?.lines())
    }

    /// Runs a docker SDK script after [`PY_PRELUDE`]; fails unless it exits 0;
    /// returns its stdout.
    pub fn python(&self, body: &str) -> Result<String> {
        let out = self.daemon.python(&format!("{PY_PRELUDE}\n{body}"))?;
        if !out.success() {
            bail!(
                "python script failed: {out}\n--- daemon log (tail) ---\n{}",
                self.log_tail(20)
            );
        }
        Ok(out.stdout)
    }
}

/// What every SDK script starts with: `client` talks to the test's daemon;
/// `eq(got, want, what)` asserts with both values in the message.
pub const PY_PRELUDE: &str = r#"
import json, sys, time, threading
import docker
client = docker.from_env(version="auto", timeout=120)

def eq(got, want, what=""):
    assert got == want, "%s: got %r, want %r" % (what, got, want)
"#;

/// Polls `probe` every 50 ms until it returns `Some`, for at most `timeout`;
/// the error names `what` and the last error the probe returned.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            return Err(match last_error {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A full container ID: 64 lowercase hex digits.
pub fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Fails unless `haystack` contains `needle`, showing both.
pub fn ensure_contains(haystack: &str, needle: &str, what: &str) -> Result<()> {
    ensure!(
        haystack.contains(needle),
        "{what}: expected {needle:?} in:\n{haystack}"
    );
    Ok(())
}

/// A client running alongside the test, its output collected as it comes;
/// killed (by its pid) if still running when dropped.
pub struct Background {
    child: Child,
    line: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Background {
    /// Spawns `command` with stdout and stderr piped, stdin empty.
    pub fn spawn(mut command: Command) -> Result<Background> {
        let line = cmd::describe(&command);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run `{line}`"))?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, stdout.clone()));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, stderr.clone()));
        }
        Ok(Background {
            child,
            line,
            stdout,
            stderr,
            readers,
        })
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("reader lock")).into_owned()
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("reader lock")).into_owned()
    }

    /// Waits until stdout contains `needle`.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> Result<()> {
        eventually(
            &format!("`{}` to print {needle:?}", self.line),
            timeout,
            || Ok(self.stdout().contains(needle).then_some(())),
        )
        .with_context(|| {
            format!(
                "stdout so far:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for it to exit by itself within `timeout`; its outcome.
    pub fn wait(mut self, timeout: Duration) -> Result<Outcome> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "`{}` did not exit within {timeout:?}; stdout so far:\n{}\nstderr:\n{}",
                    self.line,
                    self.stdout(),
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(Outcome {
            line: self.line.clone(),
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        })
    }

    /// Kills it (SIGKILL to its pid) and reaps it.
    pub fn kill(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .expect("reader lock")
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}
