//! Running host commands with a time limit and captured output.

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long one client command (docker, skopeo, python) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The command line, for messages.
    pub line: String,
    /// Exit code; `None` if killed by a signal (or by the time limit).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Fails with the whole outcome unless the command exited 0.
    pub fn ok(self) -> Result<Outcome> {
        if !self.success() {
            bail!("command failed: {self}");
        }
        Ok(self)
    }

    /// Fails unless the command exited non-zero; returns it for more checks.
    pub fn failed(self) -> Result<Outcome> {
        if self.success() {
            bail!("command succeeded but should have failed: {self}");
        }
        Ok(self)
    }

    /// stdout and stderr together, for "the output mentions X" checks.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// stdout split into trimmed non-empty lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.line,
            self.code.map_or("by signal".to_string(), |c| c.to_string()),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Renders a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` to completion with `stdin` fed to it, killing it after `timeout`.
pub fn run_with(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Result<Outcome> {
    let line = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        thread::spawn(move || {
            // The command may exit before reading everything (e.g. a refused
            // load): a broken pipe here is its answer, not ours to report.
            let _ = pipe.write_all(&bytes);
        })
    });
    let (status, stdout, stderr) = wait_output(&mut child, timeout, &line)?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Ok(Outcome {
        line,
        code: status.code(),
        stdout,
        stderr,
    })
}

/// Waits for a child whose stdout and stderr are piped, reading both.
pub fn wait_output(
    child: &mut Child,
    timeout: Duration,
    line: &str,
) -> Result<(ExitStatus, String, String)> {
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr =
                String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
            bail!("`{line}` did not finish within {timeout:?}; stderr so far:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Ok((status, stdout, stderr))
}

/// Runs a host program with the default time limit.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Outcome> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_with(cmd, None, COMMAND_TIMEOUT)
}

/// The workspace root (two levels above this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace directory exists")
}

/// `$CARGO_TARGET_DIR` (relative to the workspace) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_dir().join(dir),
        None => workspace_dir().join("target"),
    }
}

/// Where built fixtures are cached between runs: `<target>/berth-image-tests`.
pub fn cache_dir() -> PathBuf {
    target_dir().join("berth-image-tests")
}

/// A fresh private directory `/tmp/berth-it-<what>-XXXX`, removed on drop.
pub fn tmp_dir(what: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("berth-it-{what}-"))
        .tempdir_in("/tmp")
        .context("cannot make a /tmp/berth-it-* directory")
}

/// Makes sure `program` is on this machine, installing Debian's `package` if it
/// is not. Never a skip: a tool that cannot be installed fails the test.
pub fn require_tool(program: &str, package: &str) -> Result<()> {
    static LOCK: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _guard = LOCK
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if which(program).is_some() {
        return Ok(());
    }
    let install = |update: bool| -> Result<bool> {
        if update {
            run("apt-get", &["-qq", "update"])?;
        }
        let mut cmd = Command::new("apt-get");
        cmd.args([
            "-qq",
            "-o",
            "DPkg::Lock::Timeout=600",
            "install",
            "-y",
            package,
        ])
        .env("DEBIAN_FRONTEND", "noninteractive");
        Ok(run_with(cmd, None, Duration::from_secs(900))?.success())
    };
    if !install(false)? && !install(true)? {
        bail!("{program} is missing and `apt-get install {package}` failed");
    }
    if which(program).is_none() {
        bail!("{program} is still missing after installing {package}");
    }
    Ok(())
}

/// The full path of a program on `$PATH` (plus the sbin directories).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A short random suffix for names that must not collide between tests.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{:x}{:x}{}",
        std::process::id(),
        nanos & 0xffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
