//! The runtimes under test and how their command lines are driven.
//!
//! Every runtime gets its own `--root` in a temporary directory, so `list`
//! shows only the test's containers and a crashed test cannot confuse another.
//! Commands run with stdin from /dev/null and stdout/stderr in files, never
//! pipes: `create` hands its stdio to the container, and a pipe would stay
//! open for as long as the container lives.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

/// The real runc, from Debian's `runc` package.
pub const RUNC: &str = "runc";
/// berth's runtime, built from crates/engine/runc.
pub const BERTH_RUNC: &str = "berth-runc";
/// Both, in the order scenarios run them.
pub const ALL: [&str; 2] = [BERTH_RUNC, RUNC];

/// How long one runtime command may take before it is killed and reported.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// An OCI runtime binary with a private state directory.
pub struct Runtime {
    /// `runc` or `berth-runc`: printed in every failure.
    pub name: &'static str,
    pub bin: PathBuf,
    /// Passed as `--root`; removed when the runtime is dropped.
    pub root: TempDir,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, --root {})",
            self.name,
            self.bin.display(),
            self.root.path().display()
        )
    }
}

/// Whether a runtime can be tested here.
pub enum Availability {
    Ready(Runtime),
    /// Not selected or not installed: the reason is printed, the test does
    /// nothing for this runtime.
    Skip(String),
}

/// The runtimes selected by `RUNTIMES` (comma separated, default: both).
pub fn selected() -> Vec<&'static str> {
    match std::env::var("RUNTIMES") {
        Ok(list) if !list.trim().is_empty() => ALL
            .into_iter()
            .filter(|name| list.split(',').any(|w| w.trim() == *name))
            .collect(),
        _ => ALL.to_vec(),
    }
}

/// Every selected runtime that can run here; the others are skipped loudly.
/// Panics if berth-runc is selected but cannot be built: that is never a skip.
pub fn runtimes() -> Vec<Runtime> {
    ALL.into_iter()
        .filter_map(|name| match runtime(name) {
            Availability::Ready(rt) => Some(rt),
            Availability::Skip(reason) => {
                skip_loudly(name, "runtimes()", &reason);
                None
            }
        })
        .collect()
}

/// One runtime by name. berth-runc is never skipped for being missing: a
/// build failure panics with the compiler's message.
pub fn runtime(name: &'static str) -> Availability {
    if !selected().contains(&name) {
        return Availability::Skip(format!(
            "not selected by RUNTIMES={:?}",
            env_or("RUNTIMES", "")
        ));
    }
    let bin = match name {
        RUNC => match find_runc() {
            Some(bin) => bin,
            None => {
                return Availability::Skip(
                    "runc is not installed (apt-get install runc)".to_string(),
                )
            }
        },
        BERTH_RUNC => match berth_runc_binary() {
            Ok(bin) => bin.clone(),
            Err(message) => panic!("[{BERTH_RUNC}] cannot be tested: {message}"),
        },
        other => panic!("unknown runtime {other:?}"),
    };
    let root = tempfile::Builder::new()
        .prefix(&format!("{name}-root-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("[{name}] cannot make a --root directory: {e}"));
    Availability::Ready(Runtime { name, bin, root })
}

/// Prints a skip where a person running `cargo test` sees it: straight to
/// stderr, past the test harness's output capture.
pub fn skip_loudly(runtime: &str, test: &str, reason: &str) {
    let line = format!("\n*** SKIP [{runtime}] {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn find_runc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/sbin".into(),
        ])
        .map(|dir| dir.join("runc"))
        .find(|bin| bin.is_file())
}

/// The workspace this crate lives in.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace exists")
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_dir().join(dir),
        None => workspace_dir().join("target"),
    }
}

/// `$BERTH_RUNC`, or `cargo build -p berth-runc` once per test binary and
/// `<target>/debug/berth-runc`.
fn berth_runc_binary() -> Result<&'static PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("BERTH_RUNC") {
            let bin = PathBuf::from(bin);
            return if bin.is_file() {
                Ok(bin)
            } else {
                Err(format!("BERTH_RUNC={} is not a file", bin.display()))
            };
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "berth-runc"])
            .current_dir(workspace_dir());
        let outcome = run_command(build, Duration::from_secs(900), Io::default())
            .map_err(|e| format!("cannot run `cargo build -p berth-runc`: {e:#}"))?;
        if !outcome.success() {
            return Err(format!(
                "`cargo build -p berth-runc` failed ({}); set BERTH_RUNC=/path/to/berth-runc \
                 or RUNTIMES=runc to test runc alone:\n{}",
                outcome.status_text(),
                outcome.stderr
            ));
        }
        let bin = target_dir().join("debug/berth-runc");
        if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "`cargo build -p berth-runc` succeeded but {} is missing",
                bin.display()
            ))
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Where a command's stdio goes. Paths given here are appended to and kept
/// (a container started by `create` goes on writing to them).
#[derive(Debug, Default, Clone)]
pub struct Io {
    pub stdin: Option<Vec<u8>>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub cmdline: String,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Terminating signal, if it was killed.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn status_text(&self) -> String {
        match (self.timed_out, self.code, self.signal) {
            (true, ..) => "timed out and was killed".to_string(),
            (_, Some(code), _) => format!("exit {code}"),
            (_, _, Some(signal)) => format!("killed by signal {signal}"),
            _ => "unknown status".to_string(),
        }
    }

    /// Ok if the command exited 0, otherwise an error with its stderr.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            bail!("{self}")
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.cmdline, self.status_text())?;
        if !self.stdout.trim().is_empty() {
            write!(
                f,
                "\n  stdout: {}",
                self.stdout.trim_end().replace('\n', "\n          ")
            )?;
        }
        if !self.stderr.trim().is_empty() {
            write!(
                f,
                "\n  stderr: {}",
                self.stderr.trim_end().replace('\n', "\n          ")
            )?;
        }
        Ok(())
    }
}

impl Runtime {
    /// `<bin> --root <root> args...`, not yet run.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd
    }

    /// Runs `<bin> --root <root> args...` to completion.
    pub fn invoke<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        self.invoke_with(args, Io::default())
    }

    /// Runs `<bin> --root <root> args...` with the given stdio.
    pub fn invoke_with<S: AsRef<OsStr>>(&self, args: &[S], io: Io) -> Result<Outcome> {
        run_command(self.command(args), COMMAND_TIMEOUT, io)
            .with_context(|| format!("[{}] running {}", self.name, self.bin.display()))
    }

    /// For runc: whether `runc --version` is older than `major.minor`, to
    /// skip what an older runc predates.
    pub fn runc_older_than(&self, major: u32, minor: u32) -> Result<bool> {
        let outcome = self.invoke(&["--version"])?.ok()?;
        let version = outcome
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("runc version "))
            .with_context(|| format!("[{self}] no version in {outcome}"))?;
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>());
        let found = (parts.next(), parts.next());
        match found {
            (Some(Ok(a)), Some(Ok(b))) => Ok((a, b) < (major, minor)),
            _ => bail!("[{self}] cannot read version {version:?}"),
        }
    }

    /// The state directory of a container, if the runtime keeps one there.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }
}

/// Runs a host command (`ip netns add ...`) to completion.
pub fn run_host<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Outcome> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(cmd, COMMAND_TIMEOUT, Io::default())
}

/// Runs a command with stdio in files, killing its process group if it
/// outlives the timeout.
pub fn run_command(mut cmd: Command, timeout: Duration, io: Io) -> Result<Outcome> {
    let cmdline = format!("{cmd:?}").replace('"', "");
    let timeout = io.timeout.unwrap_or(timeout);
    let stdin = match &io.stdin {
        Some(bytes) => {
            let mut file = tempfile::tempfile()?;
            file.write_all(bytes)?;
            file.rewind()?;
            Stdio::from(file)
        }
        None => Stdio::null(),
    };
    let (stdout, stdout_at) = output_file(io.stdout.as_deref())?;
    let (stderr, stderr_at) = output_file(io.stderr.as_deref())?;
    cmd.stdin(stdin)
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{cmdline}`"))?;
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            // SAFETY: kill(2) on the process group we created for the child;
            // no memory is shared with it.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Outcome {
        cmdline,
        code: status.code(),
        signal: status.signal(),
        stdout: read_from(stdout, stdout_at)?,
        stderr: read_from(stderr, stderr_at)?,
        timed_out,
    })
}

/// A file for one stream and the offset where this command's output starts.
fn output_file(path: Option<&Path>) -> Result<(File, u64)> {
    match path {
        Some(path) => {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let at = file.metadata()?.len();
            Ok((file, at))
        }
        None => Ok((tempfile::tempfile()?, 0)),
    }
}

fn read_from(mut file: File, offset: u64) -> Result<String> {
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
