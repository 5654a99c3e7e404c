//! A container's record: what was asked for and what became of it, kept on disk as one JSON
//! document per container (`<root>/<id>/config.v2.json`, as Docker names it), replaced
//! atomically on every change.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

use crate::error::{ContainerError, Result};

/// Docker's zero time, which inspect shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// A task exists: the container's processes run (or are frozen).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            oom_killed: false,
        }
    }
}

/// How a mount point's source is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Volume,
    Tmpfs,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// One resolved mount point, as inspect's `Mounts` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: MountType,
    /// The volume's name (volumes only).
    pub name: String,
    /// Host path (binds), empty for volumes until resolved and for tmpfs.
    pub source: String,
    pub destination: String,
    pub read_write: bool,
    /// `z`, `Z`, `ro`... as given after the destination.
    pub mode: String,
    pub propagation: String,
    /// tmpfs options (`size=`, `mode=`), mount options otherwise.
    pub options: Vec<String>,
    /// Copy the image's content at the destination into the volume when it is new and empty.
    pub copy_data: bool,
    /// The volume was made for this container (image VOLUME or `-v /path`): `rm -v` removes it.
    pub anonymous: bool,
}

/// What the container was created with and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub created: String,
    /// The image as the request named it.
    pub image: String,
    /// `sha256:...`
    pub image_id: String,
    /// The request's config merged with the image's.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub mounts: Vec<MountPoint>,
    pub restart_count: i64,
    /// Stopped by a user: `unless-stopped` does not bring it back on daemon start.
    pub manually_stopped: bool,
    pub driver: String,
    /// Docker's json-file log of the container.
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// The networks asked for, in order (the first gives the default route and carries the
    /// published ports), with what is asked of each (aliases, fixed addresses).
    #[serde(default)]
    pub networks: Vec<(String, berth_network::EndpointRequest)>,
    /// While the container runs: its endpoints and published ports (rebuilt into the
    /// network service after a daemon restart).
    #[serde(default)]
    pub endpoints: Vec<berth_network::Endpoint>,
    #[serde(default)]
    pub ports: Vec<berth_network::PublishedPort>,
}

pub const RECORD_FILE: &str = "config.v2.json";

impl ContainerRecord {
    /// Writes the record atomically: a temp file, fsync, rename over the old one.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| ContainerError::Invalid(format!("encoding container record: {e}")))?;
        write_atomic(&dir.join(RECORD_FILE), &bytes)
    }

    pub fn load(dir: &Path) -> Result<ContainerRecord> {
        let path = dir.join(RECORD_FILE);
        let bytes =
            fs::read(&path).map_err(ContainerError::io(format!("reading {}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ContainerError::Invalid(format!("{}: {e}", path.display())))
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record")
    ));
    let what = || format!("writing {}", path.display());
    let mut f = fs::File::create(&tmp).map_err(ContainerError::io(what()))?;
    f.write_all(bytes).map_err(ContainerError::io(what()))?;
    f.sync_all().map_err(ContainerError::io(what()))?;
    drop(f);
    fs::rename(&tmp, path).map_err(ContainerError::io(what()))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = ContainerRecord {
            id: "a".repeat(64),
            name: "web".into(),
            created: ZERO_TIME.into(),
            image: "busybox".into(),
            image_id: format!("sha256:{}", "b".repeat(64)),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            path: "sh".into(),
            args: vec![],
            state: State::default(),
            mounts: vec![],
            restart_count: 0,
            manually_stopped: false,
            driver: "overlayfs".into(),
            log_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            resolv_conf_path: String::new(),
            networks: vec![("bridge".into(), Default::default())],
            endpoints: vec![],
            ports: vec![],
        };
        rec.save(dir.path()).unwrap();
        rec.state.status = Status::Exited;
        rec.state.exit_code = 3;
        rec.save(dir.path()).unwrap();
        let back = ContainerRecord::load(dir.path()).unwrap();
        assert_eq!(back.state.status, Status::Exited);
        assert_eq!(back.state.exit_code, 3);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(RECORD_FILE)],
            "no temp file left"
        );
    }
}
