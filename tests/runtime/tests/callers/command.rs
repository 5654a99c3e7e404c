//! Running the callers' command lines (podman, ctr, tar, ...) to completion.
//!
//! Output goes to unnamed files, never pipes: podman and containerd start
//! long-lived helpers (conmon, the shim) that could inherit a pipe and keep it
//! open after the command itself has exited.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long one caller command may take before it is killed and reported.
pub const TIMEOUT: Duration = Duration::from_secs(120);

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

    /// Ok if the command exited 0, otherwise an error showing its output.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            bail!("{self}")
        }
    }

    fn status_text(&self) -> String {
        match (self.timed_out, self.code, self.signal) {
            (true, ..) => format!("timed out after {TIMEOUT:?} and was killed"),
            (_, Some(code), _) => format!("exit {code}"),
            (_, _, Some(signal)) => format!("killed by signal {signal}"),
            _ => "unknown status".to_string(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.cmdline, self.status_text())?;
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.trim().is_empty() {
                let indented = text.trim_end().replace('\n', "\n          ");
                write!(f, "\n  {name}: {indented}")?;
            }
        }
        Ok(())
    }
}

/// Runs `cmd` with stdin from /dev/null, killing its process group if it
/// outlives [`TIMEOUT`].
pub fn run(mut cmd: Command) -> Result<Outcome> {
    let cmdline = format!("{cmd:?}").replace('"', "");
    let stdout = tempfile::tempfile()?;
    let stderr = tempfile::tempfile()?;
    cmd.stdin(Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{cmdline}`"))?;
    let deadline = Instant::now() + TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            // SAFETY: kill(2) on the process group made for this child alone;
            // no memory is shared with it.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Outcome {
        cmdline,
        code: status.code(),
        signal: status.signal(),
        stdout: read_all(stdout)?,
        stderr: read_all(stderr)?,
        timed_out,
    })
}

/// Runs `program args...`, failing unless it exits 0.
pub fn run_ok(program: &str, args: &[&str]) -> Result<Outcome> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd)?.ok()
}

fn read_all(mut file: File) -> Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Where `program` is on PATH (or in the sbin directories root has).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir| dir.join(program))
        .find(|bin| bin.is_file())
}
