//! A container under test: one id in one runtime, removed by `delete --force`
//! when the guard drops, whether the test passed or panicked.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::host::{assert_nothing_left, unique_id, wait_until};
use crate::runtime::{Io, Outcome, Runtime};

/// A container id bound to a runtime and a bundle. Creating the guard runs
/// nothing; dropping it runs `delete --force <id>`.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub bundle: &'a Bundle,
    pub id: String,
}

impl<'a> Container<'a> {
    /// A guard for a new unique id `berth-t-<test>-<random>`.
    pub fn new(rt: &'a Runtime, bundle: &'a Bundle, test: &str) -> Self {
        Container {
            rt,
            bundle,
            id: unique_id(test),
        }
    }

    /// Where the container's stdout goes when started by `create` or `run -d`.
    pub fn stdout_path(&self) -> PathBuf {
        self.bundle.file("container.stdout")
    }

    /// Where the container's stderr goes when started by `create` or `run -d`.
    pub fn stderr_path(&self) -> PathBuf {
        self.bundle.file("container.stderr")
    }

    /// Everything the container wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout_path()).unwrap_or_default()
    }

    /// `<command> [extra...] --bundle <bundle> <id>` with the container's
    /// stdio in the bundle's files (the runtime's own output lands there too,
    /// and is returned in the outcome).
    fn detached(&self, command: &str, extra: &[&str]) -> Result<Outcome> {
        let mut args = vec![command];
        args.extend_from_slice(extra);
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        args.extend(["--bundle", &bundle, &self.id]);
        self.rt.invoke_with(
            &args,
            Io {
                stdout: Some(self.stdout_path()),
                stderr: Some(self.stderr_path()),
                ..Io::default()
            },
        )
    }

    /// `create --bundle <bundle> <id>`; the outcome is not checked.
    pub fn create(&self) -> Result<Outcome> {
        self.detached("create", &[])
    }

    /// `create [extra...] --bundle <bundle> <id>`; the outcome is not checked.
    pub fn create_with(&self, extra: &[&str]) -> Result<Outcome> {
        self.detached("create", extra)
    }

    /// `run --detach [extra...]`; the outcome is not checked.
    pub fn run_detached(&self, extra: &[&str]) -> Result<Outcome> {
        let mut args = vec!["--detach"];
        args.extend_from_slice(extra);
        self.detached("run", &args)
    }

    /// `run --bundle <bundle> <id>` in the foreground: the outcome carries
    /// the container's own exit code and output.
    pub fn run(&self) -> Result<Outcome> {
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        self.rt.invoke(&["run", "--bundle", &bundle, &self.id])
    }

    /// `<command> <id>`
    pub fn command(&self, command: &str) -> Result<Outcome> {
        self.rt.invoke(&[command, self.id.as_str()])
    }

    /// `start <id>`, checked.
    pub fn start(&self) -> Result<Outcome> {
        self.command("start")?.ok()
    }

    /// `kill <id> <signal>`; the outcome is not checked.
    pub fn kill(&self, signal: &str) -> Result<Outcome> {
        self.rt.invoke(&["kill", &self.id, signal])
    }

    /// `exec [options...] <id> <args...>`; the outcome is not checked.
    pub fn exec(&self, options: &[&str], args: &[&str]) -> Result<Outcome> {
        let mut all = vec!["exec"];
        all.extend_from_slice(options);
        all.push(&self.id);
        all.extend_from_slice(args);
        self.rt.invoke(&all)
    }

    /// `state <id>` parsed.
    pub fn state(&self) -> Result<Value> {
        let outcome = self.command("state")?.ok()?;
        serde_json::from_str(&outcome.stdout)
            .with_context(|| format!("[{}] state is not JSON: {:?}", self.rt, outcome.stdout))
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self) -> Result<String> {
        let state = self.state()?;
        match state["status"].as_str() {
            Some(status) => Ok(status.to_string()),
            None => bail!("[{}] state has no string status: {state}", self.rt),
        }
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self) -> Result<i32> {
        let state = self.state()?;
        let pid = state["pid"]
            .as_i64()
            .with_context(|| format!("no pid in {state}"))?;
        Ok(pid as i32)
    }

    /// Waits until `state` reports `status`, failing after `timeout`.
    pub fn wait_for_status(&self, status: &str, timeout: Duration) -> Result<()> {
        let mut last = String::new();
        let reached = wait_until(timeout, || {
            last = self.status()?;
            Ok(last == status)
        })?;
        ensure!(
            reached,
            "[{}] status stayed {last:?}, expected {status:?} within {timeout:?}",
            self.rt
        );
        Ok(())
    }

    /// Creates and starts a container whose process keeps running, and
    /// waits until it is "running".
    pub fn start_running(&self) -> Result<()> {
        self.create()?.ok()?;
        self.start()?;
        self.wait_for_status("running", Duration::from_secs(5))
    }

    /// `delete <id>`, then checks that no state, cgroup, mount or process of
    /// the container remains.
    pub fn delete_and_check(&self, force: bool) -> Result<()> {
        let outcome = if force {
            self.rt.invoke(&["delete", "--force", &self.id])?
        } else {
            self.command("delete")?
        };
        outcome.ok()?;
        self.assert_nothing_left()
    }

    /// See [`crate::host::assert_nothing_left`].
    pub fn assert_nothing_left(&self) -> Result<()> {
        assert_nothing_left(self.rt, &self.id, self.bundle.path())
    }
}

impl Drop for Container<'_> {
    /// `delete --force`, then a forced sweep of anything the runtime left.
    fn drop(&mut self) {
        let _ = self.rt.invoke(&["delete", "--force", &self.id]);
        crate::host::sweep(&self.id, self.bundle.path());
    }
}
