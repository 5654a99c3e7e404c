//! The daemon's side of `berth-monitor`: starting one for a container or an exec, and
//! talking to it over its attach socket (framing in [`berth_monitor::protocol`]).
//!
//! A monitor outlives the daemon. Everything the daemon needs to find one again lives in
//! its directory (`<exec-root>/m/<id>/`): `sock` (the attach socket), `monitor.pid`, `pid`
//! (the container's or exec's process) and, once the process ended, `exit`.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_monitor::protocol::{self, ExitStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::error::{ContainerError, Result};
use crate::runtime::Runtime;

pub use protocol::{
    ERROR as FRAME_ERROR, EXIT as FRAME_EXIT, STARTED as FRAME_STARTED, STDERR as FRAME_STDERR,
    STDOUT as FRAME_STDOUT, WANT_EXIT as FLAG_EXIT, WANT_STDERR as FLAG_STDERR,
    WANT_STDOUT as FLAG_STDOUT,
};

/// What a monitor runs.
pub enum Mode<'a> {
    /// A container from its bundle; output goes to the json-file log.
    Container {
        bundle: &'a Path,
        log_path: &'a Path,
        log_max_size: u64,
        log_max_files: u32,
    },
    /// A process in a running container, from an OCI process.json.
    Exec { process: &'a Path },
}

pub struct Launch<'a> {
    pub binary: &'a Path,
    pub runtime: &'a Runtime,
    pub id: &'a str,
    pub dir: &'a Path,
    pub mode: Mode<'a>,
    pub terminal: bool,
    pub stdin: bool,
}

/// Starts a monitor and waits until it has set the process up (the runtime's `create`
/// for a container; nothing yet for an exec). Returns the container's pid (0 for an exec).
pub fn launch(l: &Launch) -> Result<i64> {
    std::fs::create_dir_all(l.dir)
        .map_err(ContainerError::io(format!("creating {}", l.dir.display())))?;
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::io("making the monitor's sync pipe")(e.into()))?;
    let mut cmd = Command::new(l.binary);
    cmd.arg("--runtime")
        .arg(&l.runtime.path)
        .arg("--runtime-root")
        .arg(&l.runtime.root)
        .arg("--id")
        .arg(l.id)
        .arg("--dir")
        .arg(l.dir)
        .arg("--sync-fd")
        .arg("3");
    match &l.mode {
        Mode::Container {
            bundle,
            log_path,
            log_max_size,
            log_max_files,
        } => {
            cmd.args(["--mode", "container", "--bundle"])
                .arg(bundle)
                .arg("--log-path")
                .arg(log_path)
                .arg("--log-max-size")
                .arg(log_max_size.to_string())
                .arg("--log-max-files")
                .arg(log_max_files.to_string());
        }
        Mode::Exec { process } => {
            cmd.args(["--mode", "exec", "--process"]).arg(process);
        }
    }
    if l.terminal {
        cmd.arg("--terminal");
    }
    if l.stdin {
        cmd.arg("--stdin");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let w = sync_w.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls (dup2) are made.
    unsafe {
        cmd.pre_exec(move || {
            if w == 3 {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(ContainerError::io(format!(
        "starting {}",
        l.binary.display()
    )))?;
    drop(sync_w);
    // The monitor forks at once and its first process exits: reap it.
    let _ = child.wait();
    let line = read_sync(sync_r)?;
    match protocol::SyncReport::parse(line.trim()) {
        Ok(protocol::SyncReport::Ok { pid }) => Ok(pid as i64),
        Ok(protocol::SyncReport::Failed { error }) => Err(ContainerError::Runtime(error)),
        Err(_) => Err(ContainerError::Runtime(format!(
            "the monitor failed to start the container: {}",
            line.trim()
        ))),
    }
}

fn read_sync(fd: OwnedFd) -> Result<String> {
    let mut f = std::fs::File::from(fd);
    let mut s = String::new();
    f.read_to_string(&mut s)
        .map_err(ContainerError::io("reading the monitor's report"))?;
    if s.trim().is_empty() {
        return Err(ContainerError::Runtime(
            "the monitor exited without reporting".into(),
        ));
    }
    Ok(s)
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("sock")
}

/// The exit record a monitor left, if its process has ended.
pub fn read_exit(dir: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(dir.join("exit")).ok()?;
    ExitStatus::parse(&String::from_utf8_lossy(&bytes)).ok()
}

/// Whether the monitor recorded in `dir` still runs.
pub fn alive(dir: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(dir.join("monitor.pid")) else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return false;
    };
    // A zombie or a recycled pid is not our monitor.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z") && stat.contains("(berth-monitor)")
        }
        Err(_) => false,
    }
}

/// One connection to a monitor's attach socket.
pub struct Conn {
    pub reader: FrameReader,
    pub writer: FrameWriter,
}

impl Conn {
    pub async fn connect(dir: &Path, flags: u8) -> std::io::Result<Conn> {
        let stream = UnixStream::connect(socket_path(dir)).await?;
        let (r, w) = stream.into_split();
        let mut conn = Conn {
            reader: FrameReader { inner: r },
            writer: FrameWriter { inner: w },
        };
        conn.writer.send(protocol::HELLO, &[flags]).await?;
        Ok(conn)
    }

    /// Asks the monitor to start the process; returns its pid. Output frames that arrive
    /// before the answer are handed to `early`.
    pub async fn start(&mut self, early: &mut Vec<(u8, Vec<u8>)>) -> Result<i64> {
        self.writer
            .send(protocol::START, &[])
            .await
            .map_err(ContainerError::io("asking the monitor to start"))?;
        loop {
            let Some((kind, payload)) = self
                .reader
                .next()
                .await
                .map_err(ContainerError::io("waiting for the monitor"))?
            else {
                return Err(ContainerError::Runtime(
                    "the monitor went away while starting".into(),
                ));
            };
            match kind {
                FRAME_STARTED => {
                    return Ok(protocol::parse_started(&payload).unwrap_or(0) as i64);
                }
                FRAME_ERROR => {
                    return Err(ContainerError::Runtime(crate::runtime::runtime_message(
                        &String::from_utf8_lossy(&payload),
                    )))
                }
                _ => early.push((kind, payload)),
            }
        }
    }
}

pub struct FrameReader {
    inner: OwnedReadHalf,
}

impl FrameReader {
    /// The next frame, or `None` when the monitor closed the connection.
    pub async fn next(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        let mut head = [0u8; 5];
        match self.inner.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        self.inner.read_exact(&mut payload).await?;
        Ok(Some((head[0], payload)))
    }
}

pub struct FrameWriter {
    inner: OwnedWriteHalf,
}

impl FrameWriter {
    pub async fn send(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        self.inner
            .write_all(&protocol::encode_frame(kind, payload))
            .await
    }

    pub async fn stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.send(protocol::STDIN, data).await
    }

    pub async fn close_stdin(&mut self) -> std::io::Result<()> {
        self.send(protocol::STDIN_CLOSE, &[]).await
    }

    pub async fn resize(&mut self, rows: u16, cols: u16) -> std::io::Result<()> {
        self.send(protocol::RESIZE, &protocol::resize_payload(rows, cols))
            .await
    }
}
