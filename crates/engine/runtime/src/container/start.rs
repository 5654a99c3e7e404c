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
        .map_err(|e| Error::Init(format!("container {id:?}: init is not waiting for start: {e}")))?;
    f.write_all(b"0").map_err(|e| Error::io("signalling init to start", e))?;
    drop(f);
    std::fs::remove_file(&fifo).map_err(|e| Error::io(format!("removing {}", fifo.display()), e))?;

    let spec = c.spec()?;
    if spec.hooks().is_some() {
        let state = serde_json::to_vec(&c.record.oci_state(Status::Running)).expect("serializes");
        // The program already runs; a failed poststart hook is reported, and the
        // caller decides whether to tear the container down.
        hooks::run(Phase::Poststart, spec.hooks().as_ref(), &state)?;
    }
    Ok(c)
}

use std::os::unix::fs::OpenOptionsExt;
