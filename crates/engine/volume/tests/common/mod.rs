//! Shared by the integration tests: a scratch root that never leaks a mount.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_volume::VolumeStore;
use nix::mount::{umount2, MntFlags};

/// A temporary directory; whatever a test left mounted below it is unmounted on drop, before
/// the directory is deleted, so a failing test does not leave mounts behind.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    /// The volume root used by [`Scratch::open`].
    pub fn root(&self) -> PathBuf {
        self.path().join("volumes")
    }

    pub fn open(&self) -> VolumeStore {
        VolumeStore::open(&self.root()).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let me = self.path();
        let mut mounts: Vec<PathBuf> = mount_table()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.starts_with(&me))
            .collect();
        mounts.reverse();
        for m in mounts {
            let _ = umount2(&m, MntFlags::MNT_DETACH);
        }
    }
}

/// (mount point, file system type) of every mount, in mount order.
pub fn mount_table() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let point = l.split(' ').nth(4)?.replace("\\040", " ");
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?.to_string();
            Some((PathBuf::from(point), fstype))
        })
        .collect()
}

/// The file system type mounted at `path` (the topmost), if any.
pub fn mounted_at(path: &Path) -> Option<String> {
    mount_table()
        .into_iter()
        .rev()
        .find(|(p, _)| p == path)
        .map(|(_, t)| t)
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn none() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// Options of a tmpfs volume.
pub fn tmpfs() -> BTreeMap<String, String> {
    map(&[("type", "tmpfs"), ("device", "tmpfs")])
}

/// Options of a volume that is a bind mount of `device`.
pub fn bind(device: &Path) -> BTreeMap<String, String> {
    map(&[
        ("type", "none"),
        ("o", "bind"),
        ("device", device.to_str().unwrap()),
    ])
}

/// Docker's filter arguments from literal pairs.
pub fn args(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
        .collect()
}
