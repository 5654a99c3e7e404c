//! The receiving end of `--console-socket`: a unix socket the runtime
//! connects to, sending the pty master of a terminal container with
//! SCM_RIGHTS.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A listening unix socket for one console.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> Result<Self> {
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and receives the pty master.
    pub fn receive_master(&self, timeout: Duration) -> Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        bail!(
                            "nothing connected to {} within {timeout:?}",
                            self.path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let message = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .context("recvmsg on the console socket")?;
        for cmsg in message.cmsgs().context("reading control messages")? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(&fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS installed this descriptor in our
                    // table for us alone; nothing else owns it.
                    return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        bail!("the runtime connected but sent no file descriptor")
    }
}

/// Reads from a pty master until `done` holds for what was read, the slave
/// side closes (EIO), or the timeout passes. Returns everything read.
pub fn read_pty(
    master: &OwnedFd,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !done(&text) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, PollTimeout::from(ms))? == 0 {
            continue;
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(text)
}

/// Writes all of `text` to the pty master.
pub fn write_pty(master: &OwnedFd, text: &str) -> Result<()> {
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        let n = nix::unistd::write(master, bytes)?;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Runs a command with a new pty as its controlling terminal and stdio, as a
/// person at a terminal would; types `input`, and returns the exit code and
/// everything the terminal showed.
pub fn run_on_pty(
    mut cmd: std::process::Command,
    input: &str,
    timeout: Duration,
) -> Result<(Option<i32>, String)> {
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).context("openpty")?;
    let slave = pty.slave;
    cmd.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave.try_clone()?);
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and
    // exec, on the child's own descriptors.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the command on a pty")?;
    drop(slave);
    drop(cmd);
    write_pty(&pty.master, input)?;
    let output = read_pty(&pty.master, timeout, |_| false)?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok((status.and_then(|s| s.code()), output))
}
