//! A private containerd: its own root, state, socket and configuration in a
//! temporary directory, and a namespace named for the test.
//!
//! `ctr run --runc-binary <runtime>` has containerd start
//! containerd-shim-runc-v2, and the shim calls the runtime as it calls runc:
//! `--root R --log <bundle>/log.json --log-format json` then `create --bundle
//! B --pid-file P ID`, `start ID`, `exec --process F --detach --pid-file P ID`,
//! `kill ID SIG`, `delete ID`. `--runc-root` keeps the runtime's state in the
//! temporary directory too; the container's cgroup is `/<namespace>/<id>`.
//!
//! The daemon is the process this test started; stopping it stops it by
//! that pid. Its stderr is kept (the "journal") for failure messages.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::command::{self, Outcome};
use crate::host;
use crate::image::{busybox_layer, oci_archive, path_str, CONTAINERD_REF};
use crate::runtimes::Runtime;

/// Everything the daemon needs and nothing that this machine lacks: no CRI
/// (it wants CNI), no snapshotters for absent filesystems, no tracing.
const CONFIG: &str = r#"version = 2
root = "{DIR}/root"
state = "{DIR}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{DIR}/ctd.sock"

[ttrpc]
  address = "{DIR}/ctd.sock.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "{DIR}/opt"
"#;

pub struct Containerd {
    pub rt: Runtime,
    dir: TempDir,
    daemon: Child,
    socket: PathBuf,
    /// Also the top cgroup of every container.
    namespace: String,
}

impl Containerd {
    /// Starts the daemon, waits for its socket and imports the busybox image.
    pub fn start(rt: &Runtime) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("berth-callers-ctd-")
            .tempdir()?;
        let d = path_str(dir.path())?.to_string();
        fs::write(dir.path().join("config.toml"), CONFIG.replace("{DIR}", &d))?;
        let socket = dir.path().join("ctd.sock");
        let journal = File::create(dir.path().join("containerd.log"))?;
        let daemon = Command::new("containerd")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--address")
            .arg(&socket)
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(journal.try_clone()?)
            .stderr(journal)
            .process_group(0)
            .spawn()
            .with_context(|| format!("[{rt}] cannot start containerd"))?;
        let mut ctd = Containerd {
            rt: rt.clone(),
            dir,
            daemon,
            socket,
            namespace: host::unique_name(),
        };
        ctd.wait_until_serving()?;

        let layer = busybox_layer(ctd.dir.path())?;
        let archive = oci_archive(&layer, ctd.dir.path())?;
        let imported = ctd.ctr(&["images", "import", path_str(&archive)?])?;
        if !imported.success() {
            return Err(ctd.fail("ctr cannot import the busybox image", &imported));
        }
        fs::remove_file(layer)?;
        fs::remove_file(archive)?;
        Ok(ctd)
    }

    fn wait_until_serving(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.daemon.try_wait()? {
                bail!(
                    "[{}] containerd exited ({status}) before serving:\n{}",
                    self.rt,
                    self.journal()
                );
            }
            if self.socket.exists() && self.ctr(&["version"])?.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "[{}] containerd did not answer on {} within 30 s:\n{}",
                    self.rt,
                    self.socket.display(),
                    self.journal()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr -a <socket> -n <namespace> args...`, run to completion, unchecked.
    pub fn ctr(&self, args: &[&str]) -> Result<Outcome> {
        let mut cmd = Command::new("ctr");
        cmd.env("CONTAINERD_SNAPSHOTTER", "overlayfs")
            .arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        command::run(cmd)
    }

    /// `ctr run --runc-binary <runtime> --runc-root <dir> [extra...] IMAGE id
    /// cmd...`, unchecked.
    pub fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Result<Outcome> {
        let runc_binary = path_str(&self.rt.bin)?;
        let runc_root = self.dir.path().join("runc-root");
        let mut args = vec![
            "run",
            "--runc-binary",
            runc_binary,
            "--runc-root",
            path_str(&runc_root)?,
        ];
        args.extend_from_slice(extra);
        args.push(CONTAINERD_REF);
        args.push(id);
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    /// A task's status as `ctr task ls` shows it (RUNNING, STOPPED, ...).
    pub fn task_status(&self, id: &str) -> Result<Option<String>> {
        let listed = self.ctr(&["task", "ls"])?.ok()?;
        Ok(listed.stdout.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.first() == Some(&id)).then(|| fields.last().unwrap_or(&"").to_string())
        }))
    }

    /// Waits until a task shows `status`.
    pub fn wait_for_status(&self, id: &str, status: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.task_status(id)?;
            if now.as_deref() == Some(status) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "[{}] task {id} is {now:?}, not {status}, after 20 s\n{}",
                    self.rt,
                    self.journal()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if containerd still has a container or a task in the namespace.
    pub fn assert_nothing_listed(&self) -> Result<()> {
        for what in ["containers", "tasks"] {
            let listed = self.ctr(&[what, "ls", "-q"])?.ok()?;
            if !listed.stdout.trim().is_empty() {
                bail!("[{}] {what} left behind: {}", self.rt, listed.stdout.trim());
            }
        }
        Ok(())
    }

    /// Fails with `what`, the outcome, the runtime's `--log` files the shim
    /// kept and the end of containerd's journal.
    pub fn fail(&self, what: &str, outcome: &Outcome) -> anyhow::Error {
        anyhow::anyhow!(
            "[{}] {what}\n{outcome}{}\n  containerd journal (last lines):\n{}",
            self.rt,
            self.runtime_logs(),
            self.journal()
        )
    }

    /// The shim's `log.json` files: what the runtime wrote with `--log`.
    fn runtime_logs(&self) -> String {
        let tasks = self
            .dir
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace);
        let Ok(entries) = fs::read_dir(tasks) else {
            return String::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let path = e.path().join("log.json");
                let text = fs::read_to_string(&path).ok()?;
                (!text.trim().is_empty())
                    .then(|| format!("\n  runtime --log {}:\n{}", path.display(), text.trim_end()))
            })
            .collect()
    }

    /// The last lines containerd wrote to stderr.
    pub fn journal(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..]
            .iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn stop_daemon(&mut self) {
        let pid = Pid::from_raw(self.daemon.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.daemon.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.daemon.kill();
                let _ = self.daemon.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn listed(&self, what: &str) -> Vec<String> {
        self.ctr(&[what, "ls", "-q"])
            .map(|o| o.stdout.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl Drop for Containerd {
    /// Kills and removes tasks and containers, removes the image, stops the
    /// daemon, then takes away what they may have left: shims still serving
    /// this daemon's socket, mounts under the temporary directory and the
    /// namespace's cgroups.
    fn drop(&mut self) {
        for task in self.listed("tasks") {
            let _ = self.ctr(&["task", "kill", "--signal", "SIGKILL", &task]);
            let _ = self.wait_for_status(&task, "STOPPED");
            let _ = self.ctr(&["task", "rm", "--force", &task]);
        }
        for container in self.listed("containers") {
            let _ = self.ctr(&["containers", "rm", &container]);
        }
        let _ = self.ctr(&["images", "rm", CONTAINERD_REF]);
        self.stop_daemon();
        if let Some(socket) = self.socket.to_str() {
            for shim in host::pids_with_argument(socket) {
                let _ = kill(Pid::from_raw(shim), Signal::SIGKILL);
            }
        }
        host::unmount_all_under(self.dir.path());
        let left = host::remove_cgroup_tree(&self.namespace);
        if !left.is_empty() {
            eprintln!(
                "[{}] containerd test left cgroups it could not remove: {left:?}",
                self.rt
            );
        }
    }
}

/// A container id unique to this run: `t-<random>`.
pub fn container_id() -> String {
    format!(
        "t-{}",
        host::unique_name().trim_start_matches("berth-callers-")
    )
}
