//! A foreground `run`/`exec` with a terminal and no --console-socket: receive the
//! pty master ourselves and relay it to our own stdio until the process exits.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use anyhow::{anyhow, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

use berth_runtime::process::wait::{forward_signals_to, wait_exit_code};

fn receive_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the terminal")?;
    for c in msg.cmsgs().context("reading the terminal message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(anyhow!("the container sent no terminal"))
}

fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write a winsize struct we own.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

pub fn relay_until_exit(sock: UnixStream, pid: i32) -> Result<i32> {
    let master = receive_master(&sock)?;
    drop(sock);
    forward_signals_to(pid)?;
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        copy_winsize(0, master.as_raw_fd());
    }
    let result = pump(master.as_fd());
    if let Some(t) = &saved {
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, t);
    }
    result?;
    Ok(wait_exit_code(pid)?)
}

fn pump(master: BorrowedFd) -> Result<()> {
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    // SAFETY: fd 0 stays open for the life of the process.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    loop {
        let mut fds = vec![PollFd::new(master, PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let master_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ev = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if master_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master, &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => return Ok(()),
                Ok(n) => write_all(1, &buf[..n])?,
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if stdin_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => write_all(master.as_raw_fd(), &buf[..n])?,
                Err(nix::Error::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
