//! The container's terminal.
//!
//! With `process.terminal`, init opens a pty pair from the container's own devpts
//! (after pivot_root), sends the master to the caller's `--console-socket` over
//! SCM_RIGHTS (what conmon, containerd's shim and `runc` callers expect), and makes
//! the slave its controlling terminal and its stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Box as ConsoleSize;

use crate::error::{Error, Result};

/// Open a pty pair, hand the master to `socket`, and return the slave's path.
pub fn create(socket: &OwnedFd, size: Option<ConsoleSize>) -> Result<(OwnedFd, PathBuf)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("opening /dev/ptmx", e))?;
    grantpt(&master).map_err(|e| Error::sys("grantpt", e))?;
    unlockpt(&master).map_err(|e| Error::sys("unlockpt", e))?;
    let slave_path = PathBuf::from(ptsname_r(&master).map_err(|e| Error::sys("ptsname", e))?);
    if let Some(size) = size {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave = nix::fcntl::open(
        &slave_path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("opening {}", slave_path.display()), e))?;
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| Error::sys("sending the console to --console-socket", e))?;
    Ok((slave, slave_path))
}

/// Make `slave` the controlling terminal and the stdio of this process.
pub fn become_stdio(slave: &OwnedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; the fd is open.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::io(
            "setting the controlling terminal",
            std::io::Error::last_os_error(),
        ));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::io("dup2 console", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
