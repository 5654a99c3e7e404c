//! The OCI runtime, driven through its runc-compatible command line: berth's own
//! `berth-runc` by default, or runc / crun. Creation and start go through the monitor
//! (which must be the parent of the container's init); everything else is called here.
//! When the runtime is the `berth-runc` built with this daemon, kill, delete, pause and
//! resume run in-process through its library, which saves a process per call.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{ContainerError, Result};

#[derive(Debug, Clone)]
pub struct Runtime {
    /// The runtime binary.
    pub path: PathBuf,
    /// Its `--root`: where it keeps container state.
    pub root: PathBuf,
    /// The runtime is berth-runc from this build: short operations use its library.
    pub in_process: bool,
}

/// A library call's error as the command line would have printed it.
fn lib_err(e: berth_runtime::Error) -> ContainerError {
    ContainerError::Runtime(e.to_string())
}

impl Runtime {
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = Command::new(&self.path)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(ContainerError::io(format!(
                "running {}",
                self.path.display()
            )))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(ContainerError::Runtime(runtime_message(&msg)))
    }

    /// Sends `signal` to the container's init (or every process with `all`).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        if self.in_process {
            return berth_runtime::container::kill(&self.state_root(), id, signal, all)
                .map_err(lib_err);
        }
        let sig = signal.to_string();
        if all {
            self.run(&["kill", "--all", id, &sig]).map(drop)
        } else {
            self.run(&["kill", id, &sig]).map(drop)
        }
    }

    /// Removes the runtime's state of a stopped container (its cgroup too).
    pub fn delete(&self, id: &str) -> Result<()> {
        if self.in_process {
            return berth_runtime::container::delete(&self.state_root(), id, true).map_err(lib_err);
        }
        match self.run(&["delete", "--force", id]) {
            Ok(_) => Ok(()),
            Err(ContainerError::Runtime(m))
                if m.contains("does not exist") || m.contains("not exist") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        if self.in_process {
            return berth_runtime::container::pause(&self.state_root(), id).map_err(lib_err);
        }
        self.run(&["pause", id]).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        if self.in_process {
            return berth_runtime::container::resume(&self.state_root(), id).map_err(lib_err);
        }
        self.run(&["resume", id]).map(drop)
    }

    fn state_root(&self) -> berth_runtime::state::StateRoot {
        berth_runtime::state::StateRoot::new(&self.root)
    }

    /// Applies new resource limits (an OCI `LinuxResources` document) to a running container.
    pub fn update(&self, id: &str, resources_json: &Path) -> Result<()> {
        let r = resources_json.to_string_lossy();
        self.run(&["update", "--resources", &r, id]).map(drop)
    }

    /// The host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let out = self.run(&["ps", "--format", "json", id])?;
        serde_json::from_slice(&out)
            .map_err(|e| ContainerError::Runtime(format!("reading the runtime's ps output: {e}")))
    }

    /// Whether the runtime knows the container (it is created, running, paused or stopped
    /// but not deleted).
    pub fn exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }
}

/// The message of a runtime's error output: the text of its last JSON log line
/// (`{"level":"error","msg":"..."}`) or the text itself.
pub fn runtime_message(text: &str) -> String {
    for line in text.lines().rev() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                return m.to_string();
            }
        }
    }
    let t = text.trim();
    t.strip_prefix("berth-runc: ")
        .or_else(|| t.strip_prefix("runc: "))
        .unwrap_or(t)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_json_logs_or_text() {
        assert_eq!(
            runtime_message("{\"level\":\"info\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"x\\\": executable file not found in $PATH\"}\n"),
            "exec: \"x\": executable file not found in $PATH"
        );
        assert_eq!(
            runtime_message("berth-runc: container abc does not exist\n"),
            "container abc does not exist"
        );
    }
}
