//! `delete`: make sure nothing of the container runs, then remove every trace:
//! its processes, its cgroup, its state. Poststop hooks run last.

use std::time::Duration;

use super::{wait_gone, Container};
use crate::error::{Error, Result};
use crate::hooks::{self, Phase};
use crate::state::{StateRoot, Status};

pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        // With --force, a missing container is already deleted (callers such as
        // conmon clean up after a failed create this way); a state directory
        // without a state file is a create that died half-way.
        Err(Error::NotFound(_)) if force => return root.remove(id),
        Err(e) => return Err(e),
    };
    let status = c.status();
    if !status.can_delete() && !force {
        return Err(c.wrong_state(status, "delete (use --force)"));
    }
    let cgroup = c.cgroup().ok();
    if status != Status::Stopped {
        if let Some(cg) = &cgroup {
            // A frozen process cannot die: kill, then thaw.
            let _ = cg.kill_all(libc::SIGKILL);
            if status == Status::Paused {
                let _ = cg.thaw();
            }
        }
        // SAFETY: kill(2) on a pid whose start time was checked by status().
        unsafe { libc::kill(c.record.pid, libc::SIGKILL) };
        if !wait_gone(&c.record, Duration::from_secs(10)) {
            return Err(Error::Init(format!(
                "container {id:?}: init did not die after SIGKILL"
            )));
        }
    }
    // When init dies, whatever it left (without a pid namespace of its own) dies too.
    if let Some(cg) = &cgroup {
        if cg.exists() {
            let _ = cg.kill_all(libc::SIGKILL);
            cg.destroy()?;
        }
        if c.record
            .cgroup_path
            .starts_with(&format!("{}/", berth_cgroups::DEFAULT_PARENT))
        {
            cg.remove_parent_if_empty();
        }
    }
    let spec = if c.record.has_hooks {
        c.spec().ok()
    } else {
        None
    };
    let hooks_result = match spec.as_ref().and_then(|s| s.hooks().as_ref()) {
        Some(h) => {
            let state =
                serde_json::to_vec(&c.record.oci_state(Status::Stopped)).expect("serializes");
            hooks::run(Phase::Poststop, Some(h), &state)
        }
        None => Ok(()),
    };
    root.remove(id)?;
    hooks_result
}
