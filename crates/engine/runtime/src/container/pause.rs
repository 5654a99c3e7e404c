//! `pause` and `resume`: freeze and thaw every process of the container.

use super::Container;
use crate::error::Result;
use crate::state::StateRoot;

pub fn pause(root: &StateRoot, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_pause() {
        return Err(c.wrong_state(status, "pause"));
    }
    Ok(c.cgroup()?.freeze()?)
}

pub fn resume(root: &StateRoot, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_resume() {
        return Err(c.wrong_state(status, "resume"));
    }
    Ok(c.cgroup()?.thaw()?)
}
