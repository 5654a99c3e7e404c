//! `kill`: send a signal to the container's init, or to every process in it.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::Container;
use crate::error::{Error, Result};
use crate::state::StateRoot;

/// `TERM`, `SIGTERM`, `sigterm`, `15` all mean SIGTERM.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::InvalidArgument(format!("invalid signal number {n}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+').parse().unwrap_or(-1)
        };
        if off >= 0 && base + off <= libc::SIGRTMAX() {
            return Ok(base + off);
        }
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('-').parse().unwrap_or(-1)
        };
        if off >= 0 && libc::SIGRTMAX() - off >= libc::SIGRTMIN() {
            return Ok(libc::SIGRTMAX() - off);
        }
    }
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::InvalidArgument(format!("unknown signal {s:?}")))
}

pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_kill() {
        return Err(c.wrong_state(status, "kill"));
    }
    if all {
        c.cgroup()?.kill_all(signal)?;
        return Ok(());
    }
    // SAFETY: kill(2) with a pid verified alive (same start time) just above.
    let r = unsafe { libc::kill(Pid::from_raw(c.record.pid).as_raw(), signal) };
    if r != 0 {
        return Err(Error::io(
            format!("kill {}", c.record.pid),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_spellings() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }
}
