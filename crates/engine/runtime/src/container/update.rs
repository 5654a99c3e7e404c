//! `update`: new resource limits for a live container.

use oci_spec::runtime::LinuxResources;

use super::Container;
use crate::error::Result;
use crate::state::{StateRoot, Status};

pub fn update(root: &StateRoot, id: &str, resources: &LinuxResources) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if status == Status::Stopped {
        return Err(c.wrong_state(status, "update"));
    }
    Ok(c.cgroup()?.apply(resources)?)
}
