//! A private podman: its own storage, run directory and configuration in a
//! temporary directory, pointed at one OCI runtime.
//!
//! podman starts conmon, and conmon calls the runtime as it calls runc:
//! `create --bundle B --pid-file P [--console-socket S] ID`, `start ID`,
//! `exec --detach --process F --pid-file P ID`, `kill ID SIG`,
//! `delete --force ID`, each with `--log-format=json --log <file>` because
//! containers.conf lists the runtime in `runtime_supports_json` (podman
//! gives those flags only to runtimes listed there).
//!
//! This machine needs three settings podman lacks by default: no systemd, so
//! `cgroup_manager = "cgroupfs"`; root without CAP_SYS_RESOURCE, so rlimits at
//! most 20000 open files; and `--network none`, so no test touches the
//! host's bridges or firewall. Every container goes under a cgroup parent
//! named for the test, so the cgroups it leaves can be found and removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::command::{self, Outcome};
use crate::host;
use crate::image::{busybox_layer, path_str};
use crate::runtimes::Runtime;

/// The name podman knows the image by.
pub const IMAGE: &str = "localhost/berth-callers/busybox:latest";

pub struct Podman {
    pub rt: Runtime,
    dir: TempDir,
    /// `--cgroup-parent` of every container: `/berth-callers-...`.
    cgroup_parent: String,
}

impl Podman {
    /// A fresh podman with the busybox image imported.
    pub fn new(rt: &Runtime) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("berth-callers-podman-")
            .tempdir()?;
        let podman = Podman {
            rt: rt.clone(),
            cgroup_parent: format!("/{}", host::unique_name()),
            dir,
        };
        podman.write_config()?;
        let layer = busybox_layer(podman.dir.path())?;
        podman
            .run(&[
                "import",
                "--change",
                r#"CMD ["/bin/sh"]"#,
                path_str(&layer)?,
                IMAGE,
            ])?
            .ok()
            .with_context(|| format!("[{rt}] podman cannot import the busybox image"))?;
        fs::remove_file(layer)?;
        Ok(podman)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path().display();
        fs::write(
            self.path("storage.conf"),
            format!(
                "[storage]\n\
                 driver = \"overlay\"\n\
                 graphroot = \"{d}/graph\"\n\
                 runroot = \"{d}/run\"\n"
            ),
        )?;
        let runtime_name = self
            .rt
            .bin
            .file_name()
            .and_then(|n| n.to_str())
            .context("runtime binary has no UTF-8 file name")?;
        fs::write(
            self.path("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 events_logfile_path = \"{d}/events.log\"\n\
                 tmp_dir = \"{d}/libpod-tmp\"\n\
                 volume_path = \"{d}/volumes\"\n\
                 runtime_supports_json = [\"runc\", \"crun\", \"{runtime_name}\"]\n\
                 [network]\n\
                 network_config_dir = \"{d}/networks\"\n"
            ),
        )?;
        Ok(())
    }

    /// `podman --runtime <bin> --cgroup-manager=cgroupfs args...` with this
    /// podman's configuration, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .arg("--runtime")
            .arg(&self.rt.bin)
            .arg("--cgroup-manager=cgroupfs")
            .args(args);
        cmd
    }

    /// Runs `podman args...` to completion, unchecked.
    pub fn run(&self, args: &[&str]) -> Result<Outcome> {
        command::run(self.command(args))
    }

    /// The arguments that start every `podman run`: no network, this test's
    /// cgroup parent.
    pub fn run_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "run",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `podman run --rm [extra...] IMAGE cmd...`, unchecked.
    pub fn run_rm(&self, extra: &[&str], cmd: &[&str]) -> Result<Outcome> {
        let mut args = self.run_args(&["--rm"]);
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// Fails with `what`, the outcome and the runtime's own logs.
    pub fn fail(&self, what: &str, outcome: &Outcome) -> anyhow::Error {
        anyhow::anyhow!("[{}] {what}\n{outcome}{}", self.rt, self.runtime_logs())
    }

    /// The `--log` files podman had the runtime write (kept only for
    /// containers not yet removed), for failure messages.
    pub fn runtime_logs(&self) -> String {
        let mut logs = Vec::new();
        find_files_named(self.dir.path(), "oci-log", &mut logs);
        logs.iter()
            .filter_map(|path| {
                let text = fs::read_to_string(path).ok()?;
                (!text.trim().is_empty())
                    .then(|| format!("\n  runtime --log {}:\n{}", path.display(), text.trim_end()))
            })
            .collect()
    }

    /// The OCI config.json podman wrote for a container not yet removed:
    /// what it asked the runtime for.
    pub fn oci_config(&self, name: &str) -> Result<serde_json::Value> {
        let id = self
            .run(&["inspect", "--format", "{{.Id}}", name])?
            .ok()?
            .stdout
            .trim()
            .to_string();
        let path = self
            .path("graph/overlay-containers")
            .join(id)
            .join("userdata/config.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Fails if podman still lists a container.
    pub fn assert_no_containers(&self) -> Result<()> {
        let left = self.run(&["ps", "-a", "-q"])?.ok()?;
        if !left.stdout.trim().is_empty() {
            bail!(
                "[{}] containers left behind: {}",
                self.rt,
                left.stdout.trim()
            );
        }
        Ok(())
    }
}

fn find_files_named(dir: &Path, name: &str, into: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            find_files_named(&entry.path(), name, into);
        } else if entry.file_name() == name {
            into.push(entry.path());
        }
    }
}

impl Drop for Podman {
    /// Removes the containers and images, then whatever they left: mounts
    /// under the temporary directory and the test's cgroups.
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["rmi", "--all", "--force"]);
        host::unmount_all_under(self.dir.path());
        let left = host::remove_cgroup_tree(&self.cgroup_parent);
        if !left.is_empty() {
            eprintln!(
                "[{}] podman test left cgroups it could not remove: {left:?}",
                self.rt
            );
        }
    }
}
