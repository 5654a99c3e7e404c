//! Containers and the operations on them, one file per operation.
//!
//! Every operation loads the [`Container`] from its state directory, derives its
//! status from the kernel, and checks that status allows the operation
//! (`Status::can_start`, `can_kill`, ...) before touching anything.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod pause;
mod start;
mod update;

use std::path::PathBuf;

use berth_cgroups::CgroupManager;
use oci_spec::runtime::Spec;

pub use create::{create, CreateOptions};
pub use delete::delete;
pub use events::{events, stats_event};
pub use exec::{exec, ExecOptions};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use start::{run_poststart_hooks, start};
pub use update::update;

use crate::error::{Error, Result};
use crate::state::{Record, StateRoot, Status, CONFIG_FILE, EXEC_FIFO};

/// A container as the state directory and the kernel describe it.
pub struct Container {
    pub root: StateRoot,
    pub record: Record,
}

impl Container {
    pub fn load(root: &StateRoot, id: &str) -> Result<Container> {
        Ok(Container {
            root: root.clone(),
            record: root.load(id)?,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn dir(&self) -> PathBuf {
        self.root.container_dir(&self.record.id)
    }

    pub fn status(&self) -> Status {
        if !self.record.init_alive() {
            return Status::Stopped;
        }
        if self.dir().join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        match self.cgroup().and_then(|c| Ok(c.is_frozen()?)) {
            Ok(true) => Status::Paused,
            _ => Status::Running,
        }
    }

    /// The config as it was at create.
    pub fn spec(&self) -> Result<Spec> {
        let path = self.dir().join(CONFIG_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        crate::spec::parse_json(&path, &bytes)
    }

    pub fn cgroup(&self) -> Result<CgroupManager> {
        Ok(CgroupManager::open(&self.record.cgroup_path)?)
    }

    /// The OCI state document.
    pub fn state_json(&self) -> String {
        let status = self.status();
        serde_json::to_string_pretty(&self.record.oci_state(status))
            .expect("state always serializes")
    }

    pub(crate) fn wrong_state(&self, status: Status, action: &'static str) -> Error {
        Error::WrongState {
            id: self.record.id.clone(),
            status: status.to_string(),
            action,
        }
    }
}

/// Every container under the root, with its status.
pub fn list(root: &StateRoot) -> Result<Vec<(Container, Status)>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(c) = Container::load(root, &id) {
            let s = c.status();
            out.push((c, s));
        }
    }
    Ok(out)
}

/// The pids in the container's cgroup.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    if c.status() == Status::Stopped {
        return Ok(vec![]);
    }
    Ok(c.cgroup()?.pids()?)
}

/// Wait (polling, since init need not be our child) until the process is gone.
pub(crate) fn wait_gone(record: &Record, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut delay = std::time::Duration::from_micros(100);
    while record.init_alive() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(10));
    }
    true
}
