//! Driving an interactive command (`podman run -it ... sh`) as a person at a
//! terminal would: the command gets a fresh pty as its controlling terminal,
//! we type once its prompt shows, and read everything it prints.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};

/// What an interactive session printed, and how its command ended.
#[derive(Debug)]
pub struct Transcript {
    pub cmdline: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Everything read from the terminal, with `\r` kept.
    pub output: String,
    pub timed_out: bool,
}

/// Runs `cmd` on a new pty; once its output contains `prompt` (or after a
/// few seconds without it) types `input`; returns when the command has
/// exited and its output is drained, or kills it after `timeout`.
pub fn run_on_pty(
    mut cmd: Command,
    prompt: &str,
    input: &[u8],
    timeout: Duration,
) -> Result<Transcript> {
    let cmdline = format!("{cmd:?}").replace('"', "");
    let size = Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(&size, None).context("openpty")?;
    let slave = |fd: &OwnedFd| -> Result<Stdio> { Ok(Stdio::from(fd.try_clone()?)) };
    cmd.stdin(slave(&pty.slave)?)
        .stdout(slave(&pty.slave)?)
        .stderr(slave(&pty.slave)?);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (setsid, ioctl) on its own fd 0.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{cmdline}`"))?;
    drop(pty.slave);
    drop(cmd);

    let mut master = File::from(pty.master);
    let started = Instant::now();
    let mut output = Vec::new();
    let mut typed = false;
    let mut exited = None;
    let mut timed_out = false;
    loop {
        let readable = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) > 0
        };
        let mut eof = false;
        if readable {
            let mut buf = [0u8; 4096];
            match master.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => output.extend_from_slice(&buf[..n]),
                // EIO: every slave fd is closed.
                Err(e) if e.kind() != ErrorKind::Interrupted => eof = true,
                Err(_) => {}
            }
        }
        if !typed
            && (String::from_utf8_lossy(&output).contains(prompt)
                || started.elapsed() > Duration::from_secs(10))
        {
            master.write_all(input)?;
            typed = true;
        }
        if exited.is_none() {
            exited = child.try_wait()?;
        }
        // Done once the command has exited and nothing more is coming.
        if exited.is_some() && (eof || !readable) {
            break;
        }
        if started.elapsed() > timeout {
            timed_out = true;
            // SAFETY: kill(2) on the session (and so process group) that
            // setsid made for this child alone.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            exited = Some(child.wait()?);
            break;
        }
    }
    let status = exited.context("the command's status is unknown")?;
    Ok(Transcript {
        cmdline,
        code: status.code(),
        signal: status.signal(),
        output: String::from_utf8_lossy(&output).into_owned(),
        timed_out,
    })
}
