//! Bundles: a fresh directory per test with a busybox rootfs and config.json.
//!
//! The rootfs is built once per script version by scripts/make-busybox-rootfs.sh
//! into `<target>/berth-runtime-tests/` and copied into each bundle (about 2 MB,
//! a few milliseconds), so a test may write to or chown its rootfs freely.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::runtime::{run_command, target_dir, workspace_dir, Io};
use crate::spec::Spec;

/// A bundle directory: `rootfs/`, `config.json`, and room for files the test
/// shares with the container (hook logs, bind-mount sources).
pub struct Bundle {
    dir: TempDir,
}

impl Bundle {
    /// A bundle with a copy of the busybox rootfs and the template spec.
    pub fn new() -> Result<Bundle> {
        let dir = tempfile::Builder::new().prefix("berth-bundle-").tempdir()?;
        let rootfs = cached_rootfs()?;
        let copy = Command::new("cp")
            .arg("-a")
            .arg(rootfs)
            .arg(dir.path().join("rootfs"))
            .status()
            .context("cannot run cp")?;
        if !copy.success() {
            bail!("cp -a {} {} failed", rootfs.display(), dir.path().display());
        }
        let bundle = Bundle { dir };
        bundle.write_spec(&Spec::new())?;
        Ok(bundle)
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<bundle>/rootfs`
    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    /// A path inside the bundle directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Makes a directory inside the bundle (for bind mounts and logs).
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let path = self.file(name);
        fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// Adds a read-write bind mount of `<bundle>/shared` at `/shared`, where
    /// the container leaves files for the test to read and the test leaves
    /// files for the container (e.g. `/shared/stop`).
    pub fn share(&self, spec: Spec) -> Result<Spec> {
        let dir = self.dir("shared")?;
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        Ok(spec.mount("/shared", "bind", &dir.to_string_lossy(), &["rbind", "rw"]))
    }

    /// Writes config.json from a spec.
    pub fn write_spec(&self, spec: &Spec) -> Result<()> {
        self.write_config(&spec.to_json())
    }

    /// Writes config.json verbatim (for malformed documents).
    pub fn write_config(&self, text: &str) -> Result<()> {
        fs::write(self.file("config.json"), text).context("cannot write config.json")
    }

    /// Reads a file the container or a hook wrote into the bundle.
    pub fn read(&self, name: &str) -> Result<String> {
        fs::read_to_string(self.file(name)).with_context(|| format!("cannot read {name}"))
    }

    /// Gives the rootfs to a host uid/gid, for user-namespace containers.
    pub fn chown_rootfs(&self, uid: u32, gid: u32) -> Result<()> {
        let status = Command::new("chown")
            .args(["-R", "-h", &format!("{uid}:{gid}")])
            .arg(self.rootfs())
            .status()?;
        if !status.success() {
            bail!("chown -R {uid}:{gid} {} failed", self.rootfs().display());
        }
        Ok(())
    }
}

impl Drop for Bundle {
    /// Removing the directory while something is still mounted inside would
    /// delete through the mount, so unmount leftovers first and keep the
    /// directory if that fails.
    fn drop(&mut self) {
        let prefix = self.path().to_string_lossy().into_owned();
        let mounted = crate::host::mounts_under(&prefix);
        for target in mounted.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
        if !crate::host::mounts_under(&prefix).is_empty() {
            eprintln!("warning: keeping {prefix}: mounts remain inside it");
            self.dir.disable_cleanup(true);
        }
    }
}

/// The shared busybox rootfs, built on first use. Its directory name carries
/// a hash of the script, so editing the script rebuilds it.
fn cached_rootfs() -> Result<&'static PathBuf> {
    static ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOTFS
        .get_or_init(|| build_rootfs().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("cannot build the busybox rootfs: {e}"))
}

fn build_rootfs() -> Result<PathBuf> {
    let script = workspace_dir().join("scripts/make-busybox-rootfs.sh");
    let text = fs::read(&script).with_context(|| format!("cannot read {}", script.display()))?;
    let cache = target_dir().join("berth-runtime-tests");
    let rootfs = cache.join(format!("rootfs-{:016x}", fnv1a(&text)));
    if rootfs.join("bin/sh").exists() {
        return Ok(rootfs);
    }
    fs::create_dir_all(&cache)?;
    // Build beside the final path and rename, so a concurrent test binary
    // never sees a half-built tree.
    let staging = tempfile::Builder::new()
        .prefix("rootfs-staging-")
        .tempdir_in(&cache)?;
    let mut cmd = Command::new("sh");
    cmd.arg(&script).arg(staging.path().join("rootfs"));
    let outcome = run_command(cmd, Duration::from_secs(900), Io::default())?;
    if !outcome.success() {
        bail!("{outcome}");
    }
    if fs::rename(staging.path().join("rootfs"), &rootfs).is_err()
        && !rootfs.join("bin/sh").exists()
    {
        bail!("cannot move the rootfs into {}", rootfs.display());
    }
    Ok(rootfs)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
