//! Mount options as config.json spells them, turned into mount(2) flags.

use nix::mount::MsFlags;

use crate::error::{Error, Result};

/// What one config mount's `options` mean.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Flags that must be cleared (e.g. `rw`, `suid`), for bind remounts.
    pub clear: MsFlags,
    /// Propagation changes applied after mounting (`rshared`, `private`...).
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data, comma-joined (`size=65536k,mode=755`).
    pub data: String,
    /// `tmpcopyup`: copy the underlying directory's content into the new tmpfs.
    pub tmpcopyup: bool,
}

/// Every option name berth understands (for `features`).
pub const OPTION_NAMES: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions> {
        let mut o = MountOptions::default();
        let mut data = Vec::new();
        for opt in options {
            let (set, clear) = match opt.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
                "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
                "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
                "acl" => (MsFlags::MS_POSIXACL, MsFlags::empty()),
                "noacl" => (MsFlags::empty(), MsFlags::MS_POSIXACL),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "nosymfollow" => (
                    MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
                    MsFlags::empty(),
                ),
                "symfollow" => (
                    MsFlags::empty(),
                    MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
                ),
                "tmpcopyup" => {
                    o.tmpcopyup = true;
                    continue;
                }
                "idmap" | "ridmap" => {
                    return Err(Error::Unsupported {
                        field: "mounts.options".into(),
                        reason: format!("{opt:?}: id-mapped mounts are not supported"),
                    })
                }
                other => {
                    if let Some(p) = propagation_flag(other) {
                        o.propagation.push(p);
                    } else if other.starts_with('r')
                        && propagation_flag(&other[1..]).is_none()
                        && is_recursive_attr(other)
                    {
                        return Err(Error::Unsupported {
                            field: "mounts.options".into(),
                            reason: format!(
                                "{other:?}: recursive mount attributes are not supported"
                            ),
                        });
                    } else {
                        // Anything else belongs to the filesystem (size=, mode=, uid=...).
                        data.push(other.to_owned());
                    }
                    continue;
                }
            };
            o.flags.insert(set);
            o.flags.remove(clear);
            o.clear.insert(clear);
            o.clear.remove(set);
        }
        o.data = data.join(",");
        Ok(o)
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// `rro`, `rnosuid`... (mount_setattr with AT_RECURSIVE) are runc 1.1 extensions.
fn is_recursive_attr(opt: &str) -> bool {
    matches!(
        opt,
        "rro"
            | "rrw"
            | "rnosuid"
            | "rsuid"
            | "rnodev"
            | "rdev"
            | "rnoexec"
            | "rexec"
            | "rnodiratime"
            | "rdiratime"
            | "rrelatime"
            | "rnorelatime"
            | "rnoatime"
            | "ratime"
            | "rstrictatime"
            | "rnostrictatime"
            | "rnosymfollow"
            | "rsymfollow"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_names_are_sorted_and_all_parse() {
        let mut sorted = OPTION_NAMES.to_vec();
        sorted.sort();
        assert_eq!(sorted, OPTION_NAMES);
        for name in OPTION_NAMES {
            let o = MountOptions::parse(&[name.to_string()]).unwrap();
            assert!(
                o.data.is_empty(),
                "{name} must not fall through to filesystem data"
            );
        }
    }

    fn p(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data_split() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert!(o
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME));
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn later_options_win() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.clear.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "rprivate", "ro"]);
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn idmap_is_refused() {
        assert!(MountOptions::parse(&["idmap".to_string()]).is_err());
        assert!(MountOptions::parse(&["rro".to_string()]).is_err());
    }
}
