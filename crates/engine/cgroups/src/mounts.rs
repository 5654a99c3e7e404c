//! Which cgroup hierarchies this host mounts, read from /proc/self/mountinfo.
//!
//! Three layouts exist in the wild:
//! - **v1**: one `cgroup` mount per hierarchy, each holding one or more
//!   controllers (`cpu` and `cpuacct` separately, or co-mounted as
//!   `cpu,cpuacct`), plus named hierarchies such as `name=systemd`.
//! - **v2**: one `cgroup2` mount (normally /sys/fs/cgroup) holding every controller.
//! - **hybrid**: the v1 mounts plus a `cgroup2` mount (normally
//!   /sys/fs/cgroup/unified) that may hold the controllers no v1 hierarchy took
//!   (hugetlb on some hosts).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::fsutil;

pub(crate) const MOUNTINFO: &str = "/proc/self/mountinfo";
pub(crate) const SELF_CGROUP: &str = "/proc/self/cgroup";

/// The v1 controllers berth knows how to place a container in.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The one named v1 hierarchy a container joins (as runc does).
pub(crate) const SYSTEMD_NAMED: &str = "name=systemd";

/// Which cgroup layout a host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    V1,
    /// cgroup v1 hierarchies plus a cgroup2 mount beside them.
    Hybrid,
    /// Only the unified cgroup2 hierarchy.
    V2,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::V1 => "v1",
            Layout::Hybrid => "hybrid",
            Layout::V2 => "v2",
        })
    }
}

/// One mounted hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    pub mount_point: PathBuf,
    /// The cgroup the mount shows at its mount point (usually "/").
    pub root: String,
    /// v1: the controllers (or `name=...`) in this hierarchy, sorted.
    /// v2: empty.
    pub controllers: Vec<String>,
    /// The kernel device id ("0:29") that identifies the hierarchy.
    dev: String,
}

impl Mount {
    /// The key that names this hierarchy in /proc/self/cgroup and in encoded paths.
    pub(crate) fn key(&self) -> String {
        if self.controllers.is_empty() {
            UNIFIED_KEY.to_string()
        } else {
            self.controllers.join(",")
        }
    }
}

/// Key of the cgroup2 hierarchy in encoded paths.
pub(crate) const UNIFIED_KEY: &str = "unified";

/// The hierarchies of this host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mounts {
    /// v1 hierarchies with at least one controller, plus `name=systemd`.
    pub v1: Vec<Mount>,
    /// The cgroup2 mount, if any.
    pub v2: Option<Mount>,
}

impl Mounts {
    pub(crate) fn read() -> Result<Self> {
        let path = Path::new(MOUNTINFO);
        let content = fsutil::read(path)?;
        Ok(Self::parse(&content))
    }

    /// Parse /proc/self/mountinfo text, keeping only cgroup filesystems.
    pub(crate) fn parse(content: &str) -> Self {
        let mut mounts = Mounts::default();
        for line in content.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mut post = post.split(' ');
            let fstype = post.next().unwrap_or("");
            if fstype != "cgroup" && fstype != "cgroup2" {
                continue;
            }
            let _source = post.next();
            let super_opts = post.next().unwrap_or("");
            let pre: Vec<&str> = pre.split(' ').collect();
            if pre.len() < 5 {
                continue;
            }
            let dev = pre[2].to_string();
            let root = unescape(pre[3]);
            let mount_point = PathBuf::from(unescape(pre[4]));

            if fstype == "cgroup2" {
                let m = Mount {
                    mount_point,
                    root,
                    controllers: Vec::new(),
                    dev,
                };
                // Prefer the conventional locations over bind mounts elsewhere.
                let conventional = |p: &Path| {
                    p == Path::new("/sys/fs/cgroup") || p == Path::new("/sys/fs/cgroup/unified")
                };
                match &mounts.v2 {
                    None => mounts.v2 = Some(m),
                    Some(old)
                        if !conventional(&old.mount_point) && conventional(&m.mount_point) =>
                    {
                        mounts.v2 = Some(m)
                    }
                    Some(_) => {}
                }
                continue;
            }

            let mut controllers: Vec<String> = super_opts
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || *o == SYSTEMD_NAMED)
                .map(str::to_string)
                .collect();
            if controllers.is_empty() {
                continue;
            }
            controllers.sort();
            // The same hierarchy mounted twice (bind mounts): keep the first.
            if mounts
                .v1
                .iter()
                .any(|m| m.dev == dev || m.controllers == controllers)
            {
                continue;
            }
            mounts.v1.push(Mount {
                mount_point,
                root,
                controllers,
                dev,
            });
        }
        mounts
    }

    fn has_v1_controllers(&self) -> bool {
        self.v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| c != SYSTEMD_NAMED))
    }

    pub(crate) fn layout(&self) -> Option<Layout> {
        match (self.has_v1_controllers(), self.v2.is_some()) {
            (true, true) => Some(Layout::Hybrid),
            (true, false) => Some(Layout::V1),
            (false, true) => Some(Layout::V2),
            (false, false) => None,
        }
    }

    pub(crate) fn require_layout(&self) -> Result<Layout> {
        self.layout().ok_or_else(|| CgroupError::NoCgroupMounts {
            mountinfo: PathBuf::from(MOUNTINFO),
        })
    }
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which layout this host has: for `berth-runc features` and diagnostics.
pub fn detect_layout() -> std::result::Result<Layout, CgroupError> {
    Mounts::read()?.require_layout()
}

/// One line of /proc/self/cgroup: the hierarchy's controllers and our cgroup in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnCgroup {
    /// Sorted controllers, `name=...`, or empty for cgroup2.
    pub controllers: Vec<String>,
    pub path: String,
}

pub(crate) fn parse_self_cgroup(content: &str) -> Vec<OwnCgroup> {
    content
        .lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let mut controllers: Vec<String> = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            controllers.sort();
            Some(OwnCgroup {
                controllers,
                path: path.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This build host: v1 controllers each on their own mount (cpu and
    /// cpuacct separate), name=systemd, and cgroup2 at /sys/fs/cgroup/unified.
    const HYBRID_SPLIT: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A classic systemd hybrid host: cpu,cpuacct co-mounted.
    const HYBRID_COMOUNTED: &str = "\
24 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
25 24 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
26 24 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
29 24 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
30 24 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
31 24 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
";

    const PURE_V2: &str = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const PURE_V1_WITH_BIND: &str = "\
24 22 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
27 24 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
28 24 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
90 88 0:25 /docker/abc /var/lib/x/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn detects_this_hosts_split_hybrid_layout() {
        let m = Mounts::parse(HYBRID_SPLIT);
        assert_eq!(m.layout(), Some(Layout::Hybrid));
        let keys: Vec<String> = m.v1.iter().map(Mount::key).collect();
        assert_eq!(
            keys,
            [
                "cpu",
                "cpuacct",
                "cpuset",
                "memory",
                "devices",
                "freezer",
                "blkio",
                "pids",
                "name=systemd"
            ]
        );
        let v2 = m.v2.unwrap();
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(v2.key(), UNIFIED_KEY);
    }

    #[test]
    fn detects_comounted_hybrid_layout() {
        let m = Mounts::parse(HYBRID_COMOUNTED);
        assert_eq!(m.layout(), Some(Layout::Hybrid));
        let cpu =
            m.v1.iter()
                .find(|h| h.controllers.contains(&"cpu".to_string()))
                .unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.key(), "cpu,cpuacct");
        // "xattr" is a mount option, not a controller.
        assert!(m.v1.iter().any(|h| h.controllers == ["name=systemd"]));
    }

    #[test]
    fn detects_pure_v2_and_pure_v1() {
        assert_eq!(Mounts::parse(PURE_V2).layout(), Some(Layout::V2));
        let v1 = Mounts::parse(PURE_V1_WITH_BIND);
        assert_eq!(v1.layout(), Some(Layout::V1));
        // The bind mount of the memory hierarchy is not a second hierarchy.
        assert_eq!(v1.v1.len(), 2);
        assert_eq!(v1.v1[0].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(Mounts::parse("").layout(), None);
    }

    #[test]
    fn named_hierarchy_alone_is_not_v1() {
        let text = format!(
            "{}40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
            PURE_V2
        );
        assert_eq!(Mounts::parse(&text).layout(), Some(Layout::V2));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/trail\04"), r"/trail\04");
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let own = parse_self_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/55bed\n2:cpuacct,cpu:/a\n0::/x/y\n",
        );
        assert_eq!(own[1].controllers, ["memory"]);
        assert_eq!(own[1].path, "/process_api/55bed");
        assert_eq!(own[2].controllers, ["cpu", "cpuacct"]);
        assert!(own[3].controllers.is_empty());
        assert_eq!(own[3].path, "/x/y");
    }
}
