//! The local terminal, for `run -t` and `exec -t`: whether stdin and stdout are terminals, raw
//! mode for stdin (restored when the guard is dropped, also on an error or a panic), and the
//! window size that is sent to the daemon after start and on every SIGWINCH.

use std::os::fd::AsFd;

use anyhow::{Context, Result};
use nix::sys::termios::{self, SetArg, Termios};

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false)
}

/// Whether standard output is a terminal.
pub fn stdout_is_terminal() -> bool {
    nix::unistd::isatty(std::io::stdout().as_fd()).unwrap_or(false)
}

/// Stdin in raw mode (no echo, no line editing, no signals from ^C: every byte goes to the
/// container) until this guard is dropped, when the saved settings come back.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin in raw mode; `None` when stdin is not a terminal (nothing to restore).
    pub fn enable() -> Result<Option<Self>> {
        if !stdin_is_terminal() {
            return Ok(None);
        }
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).context("reading the terminal settings")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .context("setting the terminal to raw mode")?;
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);

/// The (height, width) of the terminal on stdout, as docker's `GetTtySize`; `None` when stdout
/// is not a terminal or reports no size.
pub fn size() -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let stdout = std::io::stdout();
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
    // properly aligned local; the fd is stdout's, open for the life of the process.
    let got = unsafe { tiocgwinsz(stdout.as_raw_fd(), &mut ws) };
    match got {
        Ok(_) if ws.ws_row > 0 || ws.ws_col > 0 => Some((ws.ws_row, ws.ws_col)),
        _ => None,
    }
}
