//! [`CgroupManager`]: one container's cgroup, in every hierarchy the layout uses.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::mounts::{parse_self_cgroup, Layout, Mount, Mounts, SELF_CGROUP};
use crate::path::{self, Request};
use crate::stats::{self, Stats};
use crate::{v1, v2};

/// How long `freeze` waits for the kernel to report the cgroup frozen.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(3);

/// One hierarchy the container lives in, and its directory there.
#[derive(Clone, Debug)]
pub(crate) struct Hierarchy {
    /// "cpu", "cpu,cpuacct", "name=systemd" or "unified".
    pub key: String,
    /// v1 controllers (or `name=...`); empty for the cgroup2 hierarchy.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The container's cgroup in this hierarchy, e.g. "/berth-runc/abc".
    pub cgroup: String,
    /// Where that cgroup is on disk.
    pub dir: PathBuf,
}

impl Hierarchy {
    fn new(mount: &Mount, cgroup: String) -> Result<Self> {
        let outside = || CgroupError::OutsideMount {
            hierarchy: mount.key(),
            cgroup: cgroup.clone(),
            mount_point: mount.mount_point.clone(),
            mount_root: mount.root.clone(),
        };
        let rel = if mount.root == "/" {
            cgroup.as_str()
        } else {
            match cgroup.strip_prefix(mount.root.as_str()) {
                Some(rest) if rest.starts_with('/') => rest,
                _ => return Err(outside()),
            }
        };
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            // The container would be the mount's root cgroup itself.
            return Err(outside());
        }
        Ok(Hierarchy {
            key: mount.key(),
            controllers: mount.controllers.clone(),
            mount_point: mount.mount_point.clone(),
            dir: mount.mount_point.join(rel),
            cgroup,
        })
    }

    pub(crate) fn is_unified(&self) -> bool {
        self.controllers.is_empty()
    }

    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directories from the mount point down to the container's parent.
    pub(crate) fn ancestors(&self) -> Vec<PathBuf> {
        let mut out = vec![self.mount_point.clone()];
        if let Ok(rel) = self.dir.strip_prefix(&self.mount_point) {
            let mut cur = self.mount_point.clone();
            let comps: Vec<_> = rel.components().collect();
            for c in comps.iter().take(comps.len().saturating_sub(1)) {
                cur.push(c);
                out.push(cur.clone());
            }
        }
        out
    }
}

/// The container's cgroup across every hierarchy of this host's layout.
///
/// Cheap to clone; holds no file descriptors. Built once per runtime command
/// from /proc/self/mountinfo (read once).
#[derive(Clone, Debug)]
pub struct CgroupManager {
    layout: Layout,
    path: String,
    hierarchies: Vec<Hierarchy>,
}

/// Which mounts a layout puts containers in.
fn used_mounts(mounts: &Mounts, layout: Layout) -> Vec<&Mount> {
    match layout {
        Layout::V1 => mounts.v1.iter().collect(),
        Layout::Hybrid => mounts.v1.iter().chain(mounts.v2.iter()).collect(),
        Layout::V2 => mounts.v2.iter().collect(),
    }
}

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl CgroupManager {
    /// Resolve spec `linux.cgroupsPath`. None or empty => "/berth-runc/<id>".
    /// Absolute => relative to each hierarchy's root. Relative => relative to
    /// the calling process's own cgroup (read from /proc/self/cgroup). A
    /// systemd-style "slice:prefix:name" gives [`CgroupError::SystemdPath`].
    /// Creates nothing.
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Self> {
        let request = path::request(cgroups_path, id)?;
        let mounts = Mounts::read()?;
        let layout = mounts.require_layout()?;
        let used = used_mounts(&mounts, layout);
        let own = match &request {
            Request::Absolute(_) => Vec::new(),
            Request::Relative(_) => parse_self_cgroup(&fsutil::read(Path::new(SELF_CGROUP))?),
        };
        let mut hierarchies = Vec::with_capacity(used.len());
        for m in used {
            let cgroup = match &request {
                Request::Absolute(p) => p.clone(),
                Request::Relative(rel) => {
                    let entry = own.iter().find(|o| {
                        if m.controllers.is_empty() {
                            o.controllers.is_empty()
                        } else {
                            // Hierarchies never share a controller, so any overlap identifies it.
                            o.controllers.iter().any(|c| m.controllers.contains(c))
                        }
                    });
                    let entry = entry.ok_or_else(|| CgroupError::OwnCgroupMissing {
                        hierarchy: m.key(),
                        path: PathBuf::from(SELF_CGROUP),
                    })?;
                    path::join(&entry.path, rel)
                }
            };
            hierarchies.push(Hierarchy::new(m, cgroup)?);
        }
        Ok(Self::from_parts(layout, hierarchies))
    }

    /// Re-open from the resolved path previously returned by [`path`](Self::path)
    /// (stored in the container's state file).
    pub fn open(path: &str) -> Result<Self> {
        let (common, overrides) = path::decode(path)?;
        let mounts = Mounts::read()?;
        let layout = mounts.require_layout()?;
        let hierarchies = used_mounts(&mounts, layout)
            .into_iter()
            .map(|m| {
                let key = m.key();
                let cgroup = overrides
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or_else(|| common.clone(), |(_, p)| p.clone());
                Hierarchy::new(m, cgroup)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_parts(layout, hierarchies))
    }

    fn from_parts(layout: Layout, hierarchies: Vec<Hierarchy>) -> Self {
        let pairs: Vec<(String, String)> = hierarchies
            .iter()
            .map(|h| (h.key.clone(), h.cgroup.clone()))
            .collect();
        CgroupManager {
            layout,
            path: path::encode(&pairs),
            hierarchies,
        }
    }

    /// The resolved path, e.g. "/berth-runc/abc". When a relative cgroupsPath
    /// resolved differently per hierarchy, the exceptions follow as
    /// `;<hierarchy>:<path>`. Give it back to [`open`](Self::open).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host layout this manager drives.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The v1 hierarchy holding `controller`.
    pub(crate) fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.is_unified() && h.has(controller))
    }

    /// The cgroup2 hierarchy (v2, or the unified mount of a hybrid host).
    pub(crate) fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.is_unified())
    }

    /// The container's directory in the v1 hierarchy of `controller`, or an
    /// error naming the spec `field` that needed it.
    pub(crate) fn v1_dir(&self, controller: &str, field: &str) -> Result<&Path> {
        self.v1(controller)
            .map(|h| h.dir.as_path())
            .ok_or_else(|| CgroupError::Unsupported {
                field: field.to_string(),
                reason: format!("the {controller} cgroup controller is not mounted on this host"),
            })
    }

    /// Create the container's directory in every hierarchy (mkdir -p). A new
    /// v1 cpuset directory gets its parent's cpus and mems, or no task could
    /// join it; on v2 the controllers are enabled down to the container.
    pub fn create(&self) -> Result<()> {
        // A concurrent delete may remove an empty shared parent between our mkdir of
        // the parent and of the child: try again then.
        let mut attempt = 0;
        loop {
            match self.create_once() {
                Err(CgroupError::CreateDir { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && attempt < 3 =>
                {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    fn create_once(&self) -> Result<()> {
        for h in &self.hierarchies {
            if !h.is_unified() && h.has("cpuset") {
                create_cpuset_v1(h)?;
            } else {
                fs::create_dir_all(&h.dir).map_err(|source| CgroupError::CreateDir {
                    path: h.dir.clone(),
                    source,
                })?;
            }
        }
        if self.layout == Layout::V2 {
            if let Some(u) = self.unified() {
                let available = v2::root_controllers(u)?;
                v2::enable_controllers(u, &available, false)?;
            }
        }
        Ok(())
    }

    /// Write the limits: at create, and again by `update`.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        match self.layout {
            Layout::V2 => match self.unified() {
                Some(u) => v2::apply(u, r),
                None => Ok(()),
            },
            Layout::V1 | Layout::Hybrid => v1::apply(self, r),
        }
    }

    /// Move `pid` (a process, with all its threads) into the container's
    /// cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let value = pid.to_string();
        for h in &self.hierarchies {
            let procs = h.dir.join("cgroup.procs");
            let mut delay = Duration::from_millis(1);
            let mut attempt = 0;
            loop {
                match fsutil::write_raw(&procs, &value) {
                    Ok(()) => break,
                    // EINVAL: the task is still being created (TASK_NEW); retry briefly.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && attempt < 5 => {
                        attempt += 1;
                        sleep(delay);
                        delay *= 2;
                    }
                    Err(source) => return Err(fsutil::write_error(&procs, &value, source)),
                }
            }
        }
        Ok(())
    }

    fn freezer(&self) -> Result<Freezer<'_>> {
        if self.layout != Layout::V2 {
            if let Some(h) = self.v1("freezer") {
                return Ok(Freezer::V1(&h.dir));
            }
        }
        match self.unified() {
            // Hybrid hosts without a v1 freezer still have cgroup.freeze on
            // the unified mount (Linux 5.2+), where our processes also are.
            Some(u) => Ok(Freezer::V2(&u.dir)),
            None => Err(CgroupError::Unsupported {
                field: "freezer".into(),
                reason:
                    "the v1 freezer controller is not mounted and there is no cgroup2 hierarchy"
                        .into(),
            }),
        }
    }

    /// Freeze every process of the container; returns once the kernel reports
    /// the cgroup FROZEN. On timeout the cgroup is thawed and an error returned.
    pub fn freeze(&self) -> Result<()> {
        let start = Instant::now();
        let mut delay = Duration::from_micros(50);
        match self.freezer()? {
            Freezer::V1(dir) => {
                let state = dir.join("freezer.state");
                let mut until_settle = 50u32;
                loop {
                    until_settle -= 1;
                    if until_settle == 0 {
                        until_settle = 50;
                        // Tasks stuck in FREEZING: thaw, let them settle, retry (as runc does).
                        fsutil::write(&state, "THAWED")?;
                        sleep(Duration::from_millis(10));
                    }
                    fsutil::write(&state, "FROZEN")?;
                    if fsutil::read(&state)?.trim() == "FROZEN" {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        let _ = fsutil::write(&state, "THAWED");
                        return Err(CgroupError::FreezeTimeout {
                            path: state,
                            waited: start.elapsed(),
                        });
                    }
                    sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(10));
                }
            }
            Freezer::V2(dir) => {
                let freeze = dir.join("cgroup.freeze");
                fsutil::write_field(dir, "cgroup.freeze", "1", "freezer")?;
                let events = dir.join("cgroup.events");
                loop {
                    let content = fsutil::read(&events)?;
                    if fsutil::flat_keyed_value(&events, &content, "frozen")? == Some(1) {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        let _ = fsutil::write(&freeze, "0");
                        return Err(CgroupError::FreezeTimeout {
                            path: events,
                            waited: start.elapsed(),
                        });
                    }
                    sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    /// Let the container's processes run again.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => fsutil::write(&dir.join("freezer.state"), "THAWED"),
            Freezer::V2(dir) => fsutil::write_field(dir, "cgroup.freeze", "0", "freezer"),
        }
    }

    /// Whether the kernel reports the container frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(dir) => Ok(fsutil::read(&dir.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(dir) => {
                let events = dir.join("cgroup.events");
                let content = fsutil::read(&events)?;
                Ok(fsutil::flat_keyed_value(&events, &content, "frozen")? == Some(1))
            }
        }
    }

    /// The hierarchy whose cgroup.procs we list: the one the freezer acts on.
    fn process_hierarchy(&self) -> Option<&Hierarchy> {
        if self.layout == Layout::V2 {
            return self.unified();
        }
        ["freezer", "pids", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.v1(c))
            .or_else(|| self.hierarchies.first())
    }

    /// Every process in the container's cgroup, including sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        if let Some(h) = self.process_hierarchy() {
            collect_pids(&h.dir, true, &mut out)?;
        }
        Ok(out)
    }

    /// Send `signal` to every process of the container. For SIGKILL, a v2
    /// `cgroup.kill` (also present on a hybrid host's unified mount) kills the
    /// whole subtree atomically; otherwise the cgroup is frozen, each process
    /// signalled, then thawed, so nothing forks away in between.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = Signal::try_from(signal).map_err(|_| CgroupError::InvalidValue {
            field: "signal".into(),
            value: signal.to_string(),
            reason: "not a signal number".into(),
        })?;
        if sig == Signal::SIGKILL {
            if let Some(u) = self.unified() {
                let file = u.dir.join("cgroup.kill");
                match fsutil::write_raw(&file, "1") {
                    Ok(()) => return Ok(()),
                    // Before Linux 5.14: fall back to freeze + signal.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(fsutil::write_error(&file, "1", source)),
                }
            }
        }
        let frozen = match self.freeze() {
            Ok(()) => true,
            // No freezer, or it would not settle (and is thawed again):
            // signal anyway; a process forking right now may escape.
            Err(CgroupError::Unsupported { .. } | CgroupError::FreezeTimeout { .. }) => false,
            Err(e) => return Err(e),
        };
        let result = self.pids().and_then(|pids| {
            for pid in pids {
                match kill(Pid::from_raw(pid), sig) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(source) => {
                        return Err(CgroupError::Signal {
                            pid,
                            signal,
                            source,
                        })
                    }
                }
            }
            Ok(())
        });
        if frozen {
            let thawed = self.thaw();
            result?;
            thawed
        } else {
            result
        }
    }

    /// Resource usage counters, shaped like runc's `events --stats` data.
    pub fn stats(&self) -> Result<Stats> {
        stats::collect(self)
    }

    /// Remove the container's directory (and any sub-cgroups in it, children
    /// first) in every hierarchy. Retries briefly while the kernel reports
    /// EBUSY (exiting processes). Ok if already gone. Shared parents such as
    /// /berth-runc are left in place, as runc does: other containers use them.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = remove_cgroup_dir(&h.dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Remove the container directory's parent in every hierarchy if it is empty
    /// (rmdir refuses a parent that still has children, so this never removes
    /// another container's cgroup). For the parent the runtime itself created.
    pub fn remove_parent_if_empty(&self) {
        for h in &self.hierarchies {
            if let Some(parent) = h.dir.parent() {
                if parent != h.mount_point && parent.starts_with(&h.mount_point) {
                    let _ = fs::remove_dir(parent);
                }
            }
        }
    }

    /// Whether the container's directory exists in any hierarchy.
    pub fn exists(&self) -> bool {
        self.hierarchies.iter().any(|h| h.dir.exists())
    }
}

/// mkdir -p in a v1 cpuset hierarchy, giving every empty level its parent's
/// cpuset.cpus and cpuset.mems (a fresh v1 cpuset has none, and a task
/// cannot join a cpuset without CPUs).
fn create_cpuset_v1(h: &Hierarchy) -> Result<()> {
    let mut cur = h.mount_point.clone();
    let read_trim = |p: &Path| fsutil::read(p).map(|s| s.trim().to_string());
    let mut cpus = read_trim(&cur.join("cpuset.cpus"))?;
    let mut mems = read_trim(&cur.join("cpuset.mems"))?;
    let rel = h.dir.strip_prefix(&h.mount_point).unwrap_or(Path::new(""));
    for comp in rel.components() {
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::CreateDir {
                    path: cur.clone(),
                    source,
                })
            }
        }
        for (file, inherited) in [("cpuset.cpus", &mut cpus), ("cpuset.mems", &mut mems)] {
            let p = cur.join(file);
            let own = read_trim(&p)?;
            if own.is_empty() {
                fsutil::write(&p, inherited)?;
            } else {
                *inherited = own;
            }
        }
    }
    Ok(())
}

/// Append the pids of `dir`/cgroup.procs and of every sub-cgroup.
fn collect_pids(dir: &Path, top: bool, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let content = match fs::read_to_string(&procs) {
        Ok(c) => c,
        // A sub-cgroup removed while we walk.
        Err(e) if !top && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: procs,
                source,
            })
        }
    };
    for line in content.lines() {
        let pid = line
            .trim()
            .parse()
            .map_err(|_| fsutil::parse_error(&procs, format!("not a pid: {line:?}")))?;
        out.push(pid);
    }
    for child in sub_cgroups(dir)? {
        collect_pids(&child, false, out)?;
    }
    Ok(())
}

fn sub_cgroups(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// rmdir a cgroup directory, children first, retrying on EBUSY.
fn remove_cgroup_dir(dir: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(1);
    let mut last = None;
    for _ in 0..8 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // Busy: sub-cgroups to remove first, or processes still exiting.
                let children = sub_cgroups(dir)?;
                if children.is_empty() {
                    sleep(delay);
                    delay *= 2;
                }
                for child in children {
                    remove_cgroup_dir(&child)?;
                }
                last = Some(e);
            }
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(CgroupError::RemoveDir {
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, root: &str, controllers: &[&str]) -> Mount {
        let text = format!(
            "1 1 0:{} {root} {point} rw - {} cgroup rw,{}\n",
            point.len(),
            if controllers.is_empty() {
                "cgroup2"
            } else {
                "cgroup"
            },
            controllers.join(",")
        );
        let m = Mounts::parse(&text);
        m.v1.into_iter().chain(m.v2).next().unwrap()
    }

    #[test]
    fn hierarchy_dirs_and_ancestors() {
        let m = mount("/sys/fs/cgroup/memory", "/", &["memory"]);
        let h = Hierarchy::new(&m, "/berth-runc/abc".into()).unwrap();
        assert_eq!(h.dir, Path::new("/sys/fs/cgroup/memory/berth-runc/abc"));
        assert_eq!(
            h.ancestors(),
            [
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/memory/berth-runc")
            ]
        );
        assert_eq!(h.key, "memory");
    }

    #[test]
    fn hierarchy_under_a_non_root_mount() {
        let m = mount("/sys/fs/cgroup", "/docker/x", &[]);
        let h = Hierarchy::new(&m, "/docker/x/inner".into()).unwrap();
        assert_eq!(h.dir, Path::new("/sys/fs/cgroup/inner"));
        assert!(matches!(
            Hierarchy::new(&m, "/elsewhere".into()),
            Err(CgroupError::OutsideMount { .. })
        ));
        assert!(Hierarchy::new(&m, "/docker/x".into()).is_err());
    }
}
