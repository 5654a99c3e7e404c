//! Waiting for a foreground process (`run`, `exec` without --detach) while
//! passing on the signals the runtime receives, as runc does.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Send the signals a shell or supervisor would send us on to `pid`.
pub fn forward_signals_to(pid: i32) -> Result<()> {
    TARGET.store(pid, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: the handler only reads an atomic and calls kill(2).
        unsafe { sigaction(sig, &action) }
            .map_err(|e| Error::sys("installing signal handlers", e))?;
    }
    Ok(())
}

/// Wait for our child `pid`; its exit code, or 128 + the signal that killed it.
pub fn wait_exit_code(pid: i32) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("waiting for {pid}"), e)),
        }
    }
}

pub fn forward_signals_and_wait(pid: i32) -> Result<i32> {
    forward_signals_to(pid)?;
    wait_exit_code(pid)
}
