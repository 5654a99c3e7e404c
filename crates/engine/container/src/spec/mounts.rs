//! The container's mounts, in the order moby's `WithMounts` gives them.
//!
//! First the default filesystems of `DefaultLinuxSpec` (/proc, /dev, /dev/pts, /sys, the
//! cgroup tree, /dev/mqueue, /dev/shm sized by `ShmSize`) and the `--init` binary, minus any
//! a user mount replaces (a user `/dev` replaces everything below it too). Then the user's
//! mounts together with /etc/hostname, /etc/hosts and /etc/resolv.conf, sorted so that a
//! mount comes after every mount of a shallower destination.
//!
//! Binds are `rbind` with `rprivate` propagation unless asked otherwise, named volumes
//! `rbind` with the propagation of wherever they live, tmpfs `noexec,nosuid,nodev` with the
//! caller's size and mode. `--read-only` makes every non-user mount read-only except the
//! pseudo filesystems the container cannot work without; `--privileged` makes /sys and the
//! cgroup tree writable.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use super::error::{Error, Result};

/// What a user mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A host path (`-v /host:/ctr`, `--mount type=bind`).
    Bind,
    /// A named volume, already resolved to its directory on the host.
    Volume,
    /// A tmpfs (`--tmpfs`, `--mount type=tmpfs`).
    Tmpfs,
}

/// One user mount, resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Where it appears in the container (absolute).
    pub destination: String,
    /// The host path (ignored for tmpfs).
    pub source: PathBuf,
    pub kind: MountKind,
    pub read_only: bool,
    /// `private`, `rprivate`, `shared`, `rshared`, `slave` or `rslave`; binds default to
    /// `rprivate`.
    pub propagation: Option<String>,
    /// More options: tmpfs `size=`/`mode=`/...; extra flags for binds and volumes.
    pub options: Vec<String>,
}

/// Where the init binary appears (moby's `inContainerInitPath`).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// /dev/shm's size when `ShmSize` is unset (64 MiB, Docker's default).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

pub(crate) fn mount(destination: &str, typ: &str, source: &Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(source.to_path_buf()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// The filesystems every container gets (moby's `DefaultLinuxSpec` mounts), `/dev/shm`
/// sized `shm_size` bytes.
pub(crate) fn default_mounts(shm_size: i64) -> Vec<Mount> {
    let shm_size = format!("size={shm_size}");
    vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            Path::new("cgroup"),
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ]
}

impl MountSpec {
    /// A bind of the host path `source` with the default propagation.
    pub fn bind(destination: &str, source: &Path, read_only: bool) -> MountSpec {
        MountSpec {
            destination: destination.to_string(),
            source: source.to_path_buf(),
            kind: MountKind::Bind,
            read_only,
            propagation: None,
            options: Vec::new(),
        }
    }

    /// The propagation written: the requested one, `rprivate` for a bind that asked for
    /// none, nothing for a volume (it keeps that of wherever it lives).
    fn propagation(&self) -> Option<&str> {
        match self.propagation.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(p),
            None if self.kind == MountKind::Bind => Some(DEFAULT_PROPAGATION),
            None => None,
        }
    }
}

const DEFAULT_PROPAGATION: &str = "rprivate";

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// The number of components of a destination once cleaned: what mounts sort by.
fn depth(destination: &str) -> usize {
    Path::new(destination)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// Sort so that parents are mounted before their children (stable within a depth).
pub(crate) fn sort_by_depth(mounts: &mut [MountSpec]) {
    mounts.sort_by_key(|m| depth(&m.destination));
}

/// tmpfs options: moby's defaults then the caller's, a later option replacing an earlier
/// one that sets the same flag or data key (`MergeTmpfsOptions`).
pub(crate) fn merge_tmpfs_options(options: &[String]) -> Result<Vec<String>> {
    let mut flag_seen: Vec<&str> = Vec::new();
    let mut data_seen: Vec<&str> = Vec::new();
    let mut merged = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        if let Some(key) = flag_key(option) {
            if !flag_seen.contains(&key) {
                flag_seen.push(key);
                merged.push(option.clone());
            }
            continue;
        }
        let key = match option.split_once('=') {
            Some((k, _)) if TMPFS_DATA_KEYS.contains(&k) => k,
            _ => return Err(Error::TmpfsOption(option.clone())),
        };
        if !data_seen.contains(&key) {
            data_seen.push(key);
            merged.push(option.clone());
        }
    }
    merged.reverse();
    Ok(merged)
}

const TMPFS_DATA_KEYS: [&str; 7] = [
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// Which mount flag an option sets or clears; options that collide share a key.
fn flag_key(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "rdonly",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "exec" | "noexec" => "noexec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "remount" => "remount",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "bind" | "rbind" => "bind",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        p if PROPAGATIONS.contains(&p) || p == "unbindable" || p == "runbindable" => "propagation",
        _ => return None,
    })
}

/// How the container's root must propagate for a shared or slave mount to work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootPropagation {
    Shared,
    Slave,
}

/// The OCI mount of a user mount or a network file, and what it needs of the root's
/// propagation.
pub(crate) fn to_oci(m: &MountSpec, mountinfo: &str) -> Result<(Mount, Option<RootPropagation>)> {
    if m.kind == MountKind::Tmpfs {
        let mut options: Vec<String> = ["noexec", "nosuid", "nodev", DEFAULT_PROPAGATION]
            .iter()
            .map(|o| o.to_string())
            .collect();
        options.extend(m.options.iter().cloned());
        if m.read_only {
            options.push("ro".into());
        }
        let options = merge_tmpfs_options(&options)?;
        let opts: Vec<&str> = options.iter().map(String::as_str).collect();
        return Ok((
            mount(&m.destination, "tmpfs", Path::new("tmpfs"), &opts),
            None,
        ));
    }
    let mut needs = None;
    let propagation = m.propagation();
    if let Some(p) = propagation {
        if !PROPAGATIONS.contains(&p) {
            return Err(Error::Propagation(p.to_string()));
        }
        let shared = p == "shared" || p == "rshared";
        let slave = p == "slave" || p == "rslave";
        if shared || slave {
            let (mount_point, optional) = source_mount(&m.source, mountinfo)?;
            let ok = optional
                .split(' ')
                .any(|o| o.starts_with("shared:") || (slave && o.starts_with("master:")));
            if !ok {
                return Err(Error::SourceNotShared {
                    path: m.source.display().to_string(),
                    mount_point,
                    wanted: if shared { "shared" } else { "shared or slave" },
                });
            }
            needs = Some(if shared {
                RootPropagation::Shared
            } else {
                RootPropagation::Slave
            });
        }
    }
    let mut options = vec!["rbind".to_string()];
    if m.read_only {
        options.push("ro".into());
    }
    options.extend(propagation.map(str::to_string));
    options.extend(m.options.iter().cloned());
    let opts: Vec<&str> = options.iter().map(String::as_str).collect();
    Ok((mount(&m.destination, "bind", &m.source, &opts), needs))
}

/// The mount point holding `source` and its optional fields (`shared:1 master:2`), from
/// /proc/self/mountinfo's text: the longest mount point that is a parent of the resolved
/// source.
fn source_mount(source: &Path, mountinfo: &str) -> Result<(String, String)> {
    let resolved = std::fs::canonicalize(source)
        .map_err(Error::host(format!("resolving {}", source.display())))?;
    let mut best: Option<(String, String)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 {
            continue;
        }
        let mount_point = unescape_mountinfo(fields[4]);
        if resolved.starts_with(&mount_point)
            && best
                .as_ref()
                .is_none_or(|(b, _)| mount_point.len() >= b.len())
        {
            best = Some((mount_point, fields[6..sep].join(" ")));
        }
    }
    best.ok_or_else(|| Error::Host {
        what: format!("finding the mount of {}", source.display()),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no mount in /proc/self/mountinfo",
        ),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn has_option(m: &Mount, option: &str) -> bool {
    m.options().iter().flatten().any(|o| o == option)
}

pub(crate) fn clear_read_only(m: &mut Mount) {
    if let Some(options) = m.options_mut() {
        options.retain(|o| o != "ro");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(dest: &str, kind: MountKind) -> MountSpec {
        MountSpec {
            kind,
            ..MountSpec::bind(dest, Path::new("/tmp"), false)
        }
    }

    #[test]
    fn mounts_sort_by_depth_stably() {
        let mut ms: Vec<MountSpec> = ["/a/b/c", "/z", "/a/b", "/a//", "/etc/hosts", "/a/./x"]
            .iter()
            .map(|d| cm(d, MountKind::Bind))
            .collect();
        sort_by_depth(&mut ms);
        let order: Vec<&str> = ms.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            order,
            ["/z", "/a//", "/a/b", "/etc/hosts", "/a/./x", "/a/b/c"]
        );
    }

    #[test]
    fn binds_volumes_and_tmpfs_options() {
        let (b, needs) = to_oci(&cm("/data", MountKind::Bind), "").unwrap();
        assert_eq!(b.typ().as_deref(), Some("bind"));
        assert_eq!(b.options().as_deref().unwrap(), ["rbind", "rprivate"]);
        assert_eq!(needs, None);

        let mut ro = cm("/data", MountKind::Bind);
        ro.read_only = true;
        ro.propagation = Some("rslave".into());
        let err = to_oci(&ro, "").unwrap_err();
        assert!(matches!(err, Error::Host { .. }), "no mountinfo: {err}");
        let info = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw\n";
        let (b, needs) = to_oci(&ro, info).unwrap();
        assert_eq!(b.options().as_deref().unwrap(), ["rbind", "ro", "rslave"]);
        assert_eq!(needs, Some(RootPropagation::Slave));

        let (v, _) = to_oci(&cm("/v", MountKind::Volume), "").unwrap();
        assert_eq!(v.options().as_deref().unwrap(), ["rbind"]);

        let mut t = cm("/run", MountKind::Tmpfs);
        t.options = vec!["size=64m".into(), "mode=1770".into(), "exec".into()];
        t.read_only = true;
        let (tm, _) = to_oci(&t, "").unwrap();
        assert_eq!(tm.source().as_deref(), Some(Path::new("tmpfs")));
        assert_eq!(
            tm.options().as_deref().unwrap(),
            [
                "nosuid",
                "nodev",
                "rprivate",
                "size=64m",
                "mode=1770",
                "exec",
                "ro"
            ]
        );
        t.options = vec!["bogus".into()];
        assert_eq!(
            to_oci(&t, "").unwrap_err().to_string(),
            "invalid tmpfs option \"bogus\""
        );
    }

    #[test]
    fn shared_needs_a_shared_source() {
        let mut m = cm("/data", MountKind::Bind);
        m.propagation = Some("rshared".into());
        let private = "22 1 0:21 / / rw,relatime - ext4 /dev/root rw\n";
        let err = to_oci(&m, private).unwrap_err();
        assert_eq!(
            err.to_string(),
            "path /tmp is mounted on / but it is not a shared mount"
        );
        let slave = "22 1 0:21 / / rw master:3 - ext4 /dev/root rw\n";
        assert!(to_oci(&m, slave).is_err());
        let shared = format!("{private}30 22 0:40 / /tmp rw shared:7 - tmpfs tmpfs rw\n");
        let (_, needs) = to_oci(&m, &shared).unwrap();
        assert_eq!(needs, Some(RootPropagation::Shared));
        m.propagation = Some("sideways".into());
        assert!(matches!(to_oci(&m, &shared), Err(Error::Propagation(_))));
    }

    #[test]
    fn tmpfs_options_merge_last_wins() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge_tmpfs_options(&s(&[
                "noexec", "size=1m", "exec", "size=2m", "defaults", "rw", "ro"
            ]))
            .unwrap(),
            s(&["exec", "size=2m", "ro"])
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/mnt/a\040b\134c"), "/mnt/a b\\c");
        assert_eq!(unescape_mountinfo(r"/x\04"), r"/x\04");
    }
}
