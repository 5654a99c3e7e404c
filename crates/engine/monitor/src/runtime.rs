//! Running the OCI runtime (berth-runc, or runc itself) and explaining its failures.
//!
//! Every call is `RUNTIME --root R --log DIR/runtime.log --log-format json CMD ...`.
//! When the runtime fails, the reason is the message of the last error line it
//! logged during this call (runc writes `{"level":"error","msg":"..."}`, or
//! logrus text `level=error msg="..."`), else the last line it logged, else what
//! it wrote to stderr, else its exit status.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_monitor::json;

use crate::sys;

/// What a launch runs: a container's init, or one more process in it.
#[derive(Clone, Copy)]
pub enum Launch<'p> {
    Create { bundle: &'p Path },
    Exec { process: &'p Path },
}

pub struct Runtime {
    pub path: PathBuf,
    pub root: PathBuf,
    pub log: PathBuf,
    pub id: String,
}

/// The three descriptors a runtime call starts with; the container (or exec'd
/// process) inherits them, unless it has a terminal.
pub struct RuntimeStdio<'a> {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// The read end of whatever `stderr` writes to, to explain a failure.
    pub stderr_reader: Option<&'a mut File>,
}

impl RuntimeStdio<'_> {
    /// /dev/null in, and out to a pipe whose read end is returned, to be handed
    /// over as `stderr_reader` (where the runtime's output is not the container's:
    /// `start`, and terminal mode).
    pub fn captured() -> std::io::Result<(RuntimeStdio<'static>, File)> {
        let (r, w) = sys::pipe()?;
        let w2 = w.try_clone()?;
        let stdio = RuntimeStdio {
            stdin: Stdio::null(),
            stdout: Stdio::from(w),
            stderr: Stdio::from(w2),
            stderr_reader: None,
        };
        Ok((stdio, r))
    }
}

impl Runtime {
    /// `create --bundle B --pid-file P [--console-socket S] ID`, or
    /// `exec --detach --process F --pid-file P [--console-socket S] ID`.
    pub fn launch(
        &self,
        what: Launch<'_>,
        pid_file: &Path,
        console: Option<&Path>,
        stdio: RuntimeStdio<'_>,
    ) -> Result<(), String> {
        let mut args: Vec<&OsStr> = match what {
            Launch::Create { bundle } => {
                vec!["create".as_ref(), "--bundle".as_ref(), bundle.as_ref()]
            }
            Launch::Exec { process } => vec![
                "exec".as_ref(),
                "--detach".as_ref(),
                "--process".as_ref(),
                process.as_ref(),
            ],
        };
        args.extend(["--pid-file".as_ref(), pid_file.as_os_str()]);
        if let Some(c) = console {
            args.extend(["--console-socket".as_ref(), c.as_os_str()]);
        }
        args.push(self.id.as_ref());
        self.run(&args, stdio)
    }

    /// `start ID`
    pub fn start(&self) -> Result<(), String> {
        let (mut stdio, mut reader) = RuntimeStdio::captured().map_err(|e| format!("pipe: {e}"))?;
        stdio.stderr_reader = Some(&mut reader);
        self.run(&["start".as_ref(), self.id.as_ref()], stdio)
    }

    /// `delete --force ID`, to undo a container that will never run.
    pub fn delete_force(&self) {
        let stdio = RuntimeStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
            stderr_reader: None,
        };
        let _ = self.run(
            &["delete".as_ref(), "--force".as_ref(), self.id.as_ref()],
            stdio,
        );
    }

    fn run(&self, args: &[&OsStr], stdio: RuntimeStdio<'_>) -> Result<(), String> {
        let log_start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        // SAFETY: signal(2) is async-signal-safe. Ignored signals survive exec: the
        // monitor ignores SIGHUP and SIGPIPE, and whoever started it may have
        // ignored more. The runtime, and the container after it, start with every
        // signal at its default.
        unsafe {
            cmd.pre_exec(|| {
                for sig in 1..libc::SIGRTMIN() {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // Our copies of the child's descriptors go now: only it holds the write ends.
        drop(cmd);
        let status = spawned
            .and_then(|mut child| child.wait())
            .map_err(|e| format!("running {}: {e}", self.path.display()))?;
        if status.success() {
            return Ok(());
        }
        let logged = read_from(&self.log, log_start);
        let stderr = stdio
            .stderr_reader
            .map(|r| sys::read_available(r, 64 * 1024))
            .unwrap_or_default();
        let what = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (_, Some(s)) => format!("signal {s}"),
            _ => "failure".into(),
        };
        Err(failure_message(&logged, &stderr).unwrap_or_else(|| {
            format!(
                "{} {} failed ({what})",
                self.path.display(),
                args[0].to_string_lossy()
            )
        }))
    }
}

fn read_from(path: &Path, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.take(1 << 20).read_to_end(&mut out);
        }
    }
    out
}

/// The runtime's reason for failing: from what it logged, else its stderr.
pub fn failure_message(logged: &[u8], stderr: &[u8]) -> Option<String> {
    let logged = String::from_utf8_lossy(logged);
    let lines: Vec<&str> = logged
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let error_line = lines.iter().rev().find_map(|l| error_message(l));
    error_line
        .or_else(|| {
            lines
                .last()
                .map(|l| log_message(l).unwrap_or_else(|| (*l).to_owned()))
        })
        .or_else(|| {
            let stderr = String::from_utf8_lossy(stderr);
            let last = stderr.lines().map(str::trim).rfind(|l| !l.is_empty())?;
            Some(log_message(last).unwrap_or_else(|| last.to_owned()))
        })
}

/// The message of a log line at level error (JSON or logfmt text).
fn error_message(line: &str) -> Option<String> {
    if let Ok(v) = json::parse(line) {
        let level = v.get("level").and_then(json::Value::as_str)?;
        return (level == "error" || level == "fatal" || level == "panic")
            .then(|| {
                v.get("msg")
                    .and_then(json::Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
    }
    let level = logfmt_value(line, "level")?;
    matches!(level.as_str(), "error" | "fatal" | "panic")
        .then(|| logfmt_value(line, "msg"))
        .flatten()
}

/// The message of any log line, if it is a structured one.
fn log_message(line: &str) -> Option<String> {
    match json::parse(line) {
        Ok(v) => v
            .get("msg")
            .and_then(json::Value::as_str)
            .map(str::to_owned),
        Err(_) => logfmt_value(line, "msg"),
    }
}

/// `key=value` or `key="quoted value"` from a logfmt line (logrus' text format;
/// berth-runc's text format quotes like Rust's `{:?}`, which reads the same way).
fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let mut rest = line;
    loop {
        let at = rest.find(key)?;
        let before_ok = at == 0 || rest.as_bytes()[at - 1] == b' ';
        let after = &rest[at + key.len()..];
        if before_ok && after.starts_with('=') {
            return Some(unquote(&after[1..]));
        }
        rest = &rest[at + key.len()..];
    }
}

fn unquote(s: &str) -> String {
    let Some(body) = s.strip_prefix('"') else {
        return s.split(' ').next().unwrap_or("").to_owned();
    };
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(c) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_json_error_wins() {
        let log = br#"{"level":"info","msg":"starting","time":"t"}
{"level":"error","msg":"first failure","time":"t"}
{"level":"error","msg":"exec: \"/nope\": no such file","time":"t"}
{"level":"debug","msg":"exit 1","time":"t"}
"#;
        assert_eq!(
            failure_message(log, b"ignored").as_deref(),
            Some("exec: \"/nope\": no such file")
        );
    }

    #[test]
    fn logfmt_text_lines_are_read() {
        let log = b"time=\"2026-01-01T00:00:00Z\" level=error msg=\"container \\\"c1\\\" does not exist\"\n";
        assert_eq!(
            failure_message(log, b"").as_deref(),
            Some("container \"c1\" does not exist")
        );
        let log = b"time=x level=error msg=unquoted\n";
        assert_eq!(failure_message(log, b"").as_deref(), Some("unquoted"));
    }

    #[test]
    fn falls_back_to_raw_lines_then_stderr() {
        assert_eq!(
            failure_message(b"something odd\n", b"").as_deref(),
            Some("something odd")
        );
        assert_eq!(
            failure_message(b"", b"berth-runc: no such container\n\n").as_deref(),
            Some("berth-runc: no such container")
        );
        assert_eq!(failure_message(b"\n", b"  \n"), None);
        // A warning alone is still better than nothing.
        assert_eq!(
            failure_message(br#"{"level":"warning","msg":"careful"}"#, b"").as_deref(),
            Some("careful")
        );
    }
}
