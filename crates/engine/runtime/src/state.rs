//! What the runtime remembers about a container between commands.
//!
//! Each container owns a directory `<root>/<id>/` holding:
//! - `state.json`: the record below, written atomically (temp file + rename);
//! - `config.json`: the spec as it was at `create`, used by `exec` and `update`;
//! - `exec.fifo`: exists from `create` until `start`; init blocks reading it.
//!
//! The status is never stored: it is derived from the init process (alive? the
//! same process, by its start time?), the fifo and the cgroup's freezer, so a
//! record can never disagree with the kernel.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_exec(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Stopped)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored record of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when init started: tells a reused pid apart.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    /// The resolved cgroup path, as `berth_cgroups::CgroupManager::open` takes it.
    pub cgroup_path: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Whether the config has hooks (so start and delete read it only then).
    #[serde(default)]
    pub has_hooks: bool,
}

/// The OCI state document that `state` prints and hooks read on stdin.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

pub const OCI_VERSION: &str = "1.2.0";

impl Record {
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }

    /// Is the init process this record names still the same, live process?
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid).is_some_and(|t| t == self.pid_start_time)
    }
}

/// Field 22 (starttime) of /proc/<pid>/stat, or None if the process is gone or a zombie.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3; starttime is field 22.
    fields.nth(18)?.parse().ok()
}

/// The directory holding every container's state.
#[derive(Debug, Clone)]
pub struct StateRoot {
    pub path: PathBuf,
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    /// Compiled seccomp filters, shared by every container under this root. The
    /// name holds a character container ids cannot, so it never clashes with one.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.path.join("@seccomp")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Reserve a new container's directory. `mkdir` is the lock: a second
    /// `create` with the same id fails here and touches nothing.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        fs::create_dir_all(&self.path).context(|| format!("state root {}", self.path.display()))?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_owned()))
            }
            Err(e) => Err(Error::io(format!("creating {}", dir.display()), e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_owned()))
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidConfig {
            path: path.clone(),
            reason: format!("corrupt state: {e}"),
        })
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = self.container_dir(&record.id);
        let bytes = serde_json::to_vec(record).expect("records always serialize");
        write_atomic(&dir.join(STATE_FILE), &bytes)
    }

    /// The ids of every container with a state file, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(Error::io(format!("reading {}", self.path.display()), e)),
        };
        for entry in entries.flatten() {
            if entry.path().join(STATE_FILE).exists() {
                if let Some(name) = entry.file_name().to_str() {
                    ids.push(name.to_owned());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", dir.display()), e)),
        }
    }
}

/// Write a file so that readers see the old or the new content, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .context(|| format!("writing {}", tmp.display()))?;
    // The state lives on tmpfs (/run) in the usual setup; on disk, a crash may
    // leave the old file, never a torn one, because rename is atomic.
    fs::rename(&tmp, path).context(|| format!("renaming {}", tmp.display()))
}

/// Container ids are path components: refuse anything that could escape.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

/// Now, as RFC 3339 with nanoseconds in UTC (what runc prints).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a-b_c.d+1", "0123"] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_426_518, 0), "2026-11-23T09:35:18.000000000Z");
    }

    #[test]
    fn own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(proc_start_time(me).is_some());
        assert!(proc_start_time(i32::MAX).is_none());
    }

    #[test]
    fn status_guards() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(Status::Stopped.can_delete());
        assert!(!Status::Running.can_delete());
        assert!(Status::Paused.can_resume());
    }
}
