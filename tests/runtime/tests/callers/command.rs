//! Running the callers' command lines (podman, ctr, tar, ...) to completion.
//!
//! Output goes to unnamed files, never pipes: podman and containerd start
//! long-lived helpers (conmon, the shim) that could inherit a pipe and keep it
//! open after the command itself has exited.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

/// How long one caller command may take before it is killed and reported.
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub use berth_runtime_tests::runtime::Outcome;

/// Runs `cmd` with stdin from /dev/null, killing its process group if it
/// outlives [`TIMEOUT`] (the harness's runner, stdio in unnamed files).
pub fn run(cmd: Command) -> Result<Outcome> {
    berth_runtime_tests::runtime::run_command(cmd, TIMEOUT, Default::default())
}

/// Runs `program args...`, failing unless it exits 0.
pub fn run_ok(program: &str, args: &[&str]) -> Result<Outcome> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd)?.ok()
}

/// Where `program` is on PATH (or in the sbin directories root has).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir| dir.join(program))
        .find(|bin| bin.is_file())
}
