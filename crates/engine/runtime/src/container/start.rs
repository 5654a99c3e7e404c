//! `start`: release a created container's init into the user's program.

use std::io::Write;

use super::Container;
use crate::error::{Error, Result};
use crate::hooks::{self, Phase};
use crate::state::{StateRoot, Status, EXEC_FIFO};

pub fn start(root: &StateRoot, id: &str) -> Result<Container> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_start() {
        return Err(c.wrong_state(status, "start"));
    }
    let fifo = c.dir().join(EXEC_FIFO);
    // Non-blocking: if init is gone there is no reader and open fails at once.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| {
            Error::Init(format!(
                "container {id:?}: init is not waiting for start: {e}"
            ))
        })?;
    f.write_all(b"0")
        .map_err(|e| Error::io("signalling init to start", e))?;
    drop(f);
    std::fs::remove_file(&fifo)
        .map_err(|e| Error::io(format!("removing {}", fifo.display()), e))?;

    run_poststart_hooks(&c)?;
    Ok(c)
}

/// Poststart hooks, once the program runs. A failure is reported; the program
/// already runs, and the caller decides whether to tear the container down.
pub fn run_poststart_hooks(c: &Container) -> Result<()> {
    if !c.record.has_hooks {
        return Ok(());
    }
    let spec = c.spec()?;
    let state = serde_json::to_vec(&c.record.oci_state(Status::Running)).expect("serializes");
    hooks::run(Phase::Poststart, spec.hooks().as_ref(), &state)
}

use std::os::unix::fs::OpenOptionsExt;
