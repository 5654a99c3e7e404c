//! The rules of Docker's `local` driver: which names are allowed, which options, and how the
//! options (`type`, `device`, `o`, as for `mount -t type -o o device dir`) become a mount of the
//! volume's `_data` directory.

use std::collections::BTreeMap;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags, MsFlags};

use crate::error::{NameError, OptionError, VolumeError};

/// The only driver there is.
pub const DRIVER: &str = "local";

/// Checks a volume name against Docker's `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`: the name becomes a
/// directory under the store's root, so it can never be `..`, contain `/` or start with the
/// `.` of the store's own temporary entries.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.len() == 1 {
        return Err(NameError::TooShort);
    }
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok {
        return Err(NameError::InvalidCharacters {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Option keys the local driver knows, and which others each one needs (Docker's
/// `mandatoryOpts`: a device needs a type and the reverse; `o` needs both).
const OPTIONS: [(&str, &[&str]); 3] = [
    ("type", &["device"]),
    ("device", &["type"]),
    ("o", &["device", "type"]),
];

/// Checks driver options as Docker's local driver does on create.
pub fn validate_options(opts: &BTreeMap<String, String>) -> Result<(), OptionError> {
    for key in opts.keys() {
        if !OPTIONS.iter().any(|(k, _)| k == key) {
            return Err(OptionError::UnknownKey(key.clone()));
        }
    }
    for (key, needs) in OPTIONS {
        if opts.contains_key(key) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(OptionError::Missing(missing));
            }
        }
    }
    Ok(())
}

/// Whether a volume with these options is a mount rather than a plain directory.
pub(crate) fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    let set = |k: &str| opts.get(k).is_some_and(|v| !v.is_empty());
    set("type") || set("device")
}

/// `o=` split into `mount(2)` flags and the file-system data string, as `mount(8)` (and
/// moby's `mount.parseOptions`) do: known flag words set or clear a flag, the rest is data.
pub(crate) fn parse_mount_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for word in o.split(',').filter(|w| !w.is_empty()) {
        match mount_flag(word) {
            Some((false, f)) => flags |= f,
            Some((true, f)) => flags &= !f,
            None => data.push(word),
        }
    }
    (flags, data.join(","))
}

/// `(clears, flag)` for the option words `mount(8)` turns into flags.
fn mount_flag(word: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match word {
        "defaults" => (false, F::empty()),
        "ro" => (false, F::MS_RDONLY),
        "rw" => (true, F::MS_RDONLY),
        "suid" => (true, F::MS_NOSUID),
        "nosuid" => (false, F::MS_NOSUID),
        "dev" => (true, F::MS_NODEV),
        "nodev" => (false, F::MS_NODEV),
        "exec" => (true, F::MS_NOEXEC),
        "noexec" => (false, F::MS_NOEXEC),
        "sync" => (false, F::MS_SYNCHRONOUS),
        "async" => (true, F::MS_SYNCHRONOUS),
        "dirsync" => (false, F::MS_DIRSYNC),
        "remount" => (false, F::MS_REMOUNT),
        "mand" => (false, F::MS_MANDLOCK),
        "nomand" => (true, F::MS_MANDLOCK),
        "atime" => (true, F::MS_NOATIME),
        "noatime" => (false, F::MS_NOATIME),
        "diratime" => (true, F::MS_NODIRATIME),
        "nodiratime" => (false, F::MS_NODIRATIME),
        "bind" => (false, F::MS_BIND),
        "rbind" => (false, F::MS_BIND | F::MS_REC),
        "unbindable" => (false, F::MS_UNBINDABLE),
        "runbindable" => (false, F::MS_UNBINDABLE | F::MS_REC),
        "private" => (false, F::MS_PRIVATE),
        "rprivate" => (false, F::MS_PRIVATE | F::MS_REC),
        "shared" => (false, F::MS_SHARED),
        "rshared" => (false, F::MS_SHARED | F::MS_REC),
        "slave" => (false, F::MS_SLAVE),
        "rslave" => (false, F::MS_SLAVE | F::MS_REC),
        "relatime" => (false, F::MS_RELATIME),
        "norelatime" => (true, F::MS_RELATIME),
        "strictatime" => (false, F::MS_STRICTATIME),
        "nostrictatime" => (true, F::MS_STRICTATIME),
        _ => return None,
    })
}

/// Mounts the volume described by `opts` at `target` (its `_data`), as moby's `mount.Mount`:
/// the mount itself, then a propagation change if one was asked for, then a remount to make a
/// read-only bind mount really read-only. If a later step fails the mount is undone.
pub(crate) fn mount(opts: &BTreeMap<String, String>, target: &Path) -> Result<(), VolumeError> {
    let option = |k: &str| opts.get(k).map(String::as_str).unwrap_or("");
    let device = option("device");
    if device.is_empty() {
        return Err(VolumeError::InvalidOption {
            name: volume_name_of(target),
            reason: OptionError::MissingDevice,
        });
    }
    let fstype = option("type");
    let (flags, data) = parse_mount_options(option("o"));
    let propagation =
        MsFlags::MS_SHARED | MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_UNBINDABLE;
    let own = flags & !propagation;
    let fail = |flags: MsFlags, source: Errno| VolumeError::Mount {
        device: device.to_string(),
        target: target.to_path_buf(),
        flags: flags.bits(),
        data: mask_password(&data),
        source: source.into(),
    };
    if !own.contains(MsFlags::MS_REMOUNT) || !data.is_empty() {
        let fstype = (!fstype.is_empty()).then_some(fstype);
        let data = (!data.is_empty()).then_some(data.as_str());
        nix::mount::mount(Some(device), target, fstype, own, data).map_err(|e| fail(own, e))?;
    }
    let later = || -> Result<(), VolumeError> {
        if flags.intersects(propagation) {
            let f = flags & (propagation | MsFlags::MS_REC | MsFlags::MS_SILENT);
            nix::mount::mount(None::<&str>, target, None::<&str>, f, None::<&str>)
                .map_err(|e| fail(f, e))?;
        }
        if own.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
            let f = own | MsFlags::MS_REMOUNT;
            nix::mount::mount(None::<&str>, target, None::<&str>, f, None::<&str>)
                .map_err(|e| fail(f, e))?;
        }
        Ok(())
    };
    later().inspect_err(|_| {
        let _ = umount2(target, MntFlags::MNT_DETACH);
    })
}

/// Unmounts whatever is mounted at `target` (topmost first, lazily as Docker does, so a file
/// a process still holds open does not keep the volume from being released). Nothing mounted
/// there is not an error.
pub(crate) fn unmount(target: &Path) -> Result<(), VolumeError> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            // EINVAL: not (or no longer) a mount point.
            Err(Errno::EINVAL) => return Ok(()),
            Err(e) => {
                return Err(VolumeError::Unmount {
                    target: target.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
}

/// The volume a `_data` path belongs to, for messages.
fn volume_name_of(data: &Path) -> String {
    data.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `password=secret` becomes `password=********`, as Docker writes CIFS mount errors.
fn mask_password(data: &str) -> String {
    data.split(',')
        .map(|w| match w.strip_prefix("password=") {
            Some(_) => "password=********",
            None => w,
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "a1", "my_vol", "my.vol-2", "0abc", "A.b_c-d"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_name("a"), Err(NameError::TooShort));
        for bad in [
            "",
            "-ab",
            ".ab",
            "_ab",
            "a/b",
            "..",
            "a b",
            "/abs/path",
            "a:b",
            "é1",
        ] {
            assert!(
                matches!(validate_name(bad), Err(NameError::InvalidCharacters { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            validate_name("a b").unwrap_err().to_string(),
            "\"a b\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        );
    }

    #[test]
    fn options_are_checked_like_docker() {
        assert_eq!(validate_options(&opts(&[])), Ok(()));
        assert_eq!(
            validate_options(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m")
            ])),
            Ok(())
        );
        assert_eq!(
            validate_options(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("x", "1")]))
                .unwrap_err()
                .to_string(),
            "invalid option key: \"x\""
        );
        assert_eq!(
            validate_options(&opts(&[("type", "tmpfs")])),
            Err(OptionError::Missing("device"))
        );
        assert_eq!(
            validate_options(&opts(&[("device", "/dev/sda")])),
            Err(OptionError::Missing("type"))
        );
        assert_eq!(
            validate_options(&opts(&[("o", "bind"), ("device", "/x")])),
            Err(OptionError::Missing("type"))
        );
        assert!(!needs_mount(&opts(&[])));
        assert!(!needs_mount(&opts(&[("type", ""), ("device", "")])));
        assert!(needs_mount(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs")
        ])));
    }

    #[test]
    fn mount_options_split_into_flags_and_data() {
        assert_eq!(
            parse_mount_options("size=100m,uid=1000"),
            (MsFlags::empty(), "size=100m,uid=1000".to_string())
        );
        assert_eq!(
            parse_mount_options("bind,ro"),
            (MsFlags::MS_BIND | MsFlags::MS_RDONLY, String::new())
        );
        assert_eq!(
            parse_mount_options("ro,rw,nosuid,rbind,rprivate,mode=0755"),
            (
                MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                "mode=0755".to_string()
            )
        );
        assert_eq!(parse_mount_options(""), (MsFlags::empty(), String::new()));
        assert_eq!(
            mask_password("user=a,password=secret,vers=3"),
            "user=a,password=********,vers=3"
        );
    }
}
