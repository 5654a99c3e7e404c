//! Device nodes and the device cgroup.
//!
//! A container starts with the cgroup rules of moby's `DefaultLinuxSpec`: deny everything,
//! then allow the nodes every container has (null, zero, full, random, urandom, tty,
//! console, ptmx and the ptys, tun), and keep denying fuse. The runtime creates those nodes
//! itself; `--device` adds nodes (and rules), `--device-cgroup-rule` adds rules.
//! `--privileged` instead gets every device node of the host's `/dev` and one rule allowing
//! all (moby's `WithDevices` with containerd's `HostDevices`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bollard_stubs::models::DeviceMapping;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::error::{Error, Result};

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// The cgroup rules of an unprivileged container, before its own devices.
///
/// moby lists deny-all, zero, null, urandom, random, tty, console and a fuse deny; runc (and
/// berth-runc) append full, ptmx, the ptys and tun whatever the spec says. All are written
/// here so the spec means the same under any runtime.
pub(crate) fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::C;
    let mut rules = vec![rule(false, None, None, None, "rwm")];
    for (major, minor) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
        rules.push(rule(true, Some(C), Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(false, Some(C), Some(10), Some(229), "rwm"));
    for (major, minor) in [(1, 7), (5, 2), (10, 200)] {
        rules.push(rule(true, Some(C), Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, Some(C), Some(136), Some(-1), "rwm"));
    rules
}

/// The one rule of a privileged container.
pub(crate) fn allow_all() -> Vec<LinuxDeviceCgroup> {
    vec![rule(true, None, None, None, "rwm")]
}

/// A device node at `path` (not following a final symlink), to appear at `in_container`.
/// `Ok(None)` for anything that is not a block, character or fifo node.
fn device_from_path(path: &Path, in_container: &Path) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let typ = if ft.is_block_device() {
        LinuxDeviceType::B
    } else if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_fifo() {
        LinuxDeviceType::P
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    let mut dev = LinuxDevice::default();
    dev.set_path(in_container.to_path_buf())
        .set_typ(typ)
        .set_major(i64::from(nix::sys::stat::major(rdev) as u32))
        .set_minor(i64::from(nix::sys::stat::minor(rdev) as u32))
        .set_file_mode(Some(meta.mode() & 0o7777))
        .set_uid(Some(meta.uid()))
        .set_gid(Some(meta.gid()));
    Ok(Some(dev))
}

/// Every device node under the host's `dev` directory, skipping what containerd's
/// `HostDevices` skips (pts, shm, fd, mqueue, lxc/udev bookkeeping, the console, fifos).
pub(crate) fn host_devices(dev: &Path) -> Result<Vec<LinuxDevice>> {
    let mut out = Vec::new();
    walk_host_devices(dev, &mut out)?;
    Ok(out)
}

fn walk_host_devices(dir: &Path, out: &mut Vec<LinuxDevice>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(Error::host(format!("reading {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(Error::host(format!("reading {}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ft = match entry.file_type() {
            Ok(ft) => ft,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::host(format!("reading {}", path.display()))(e)),
        };
        if ft.is_dir() {
            if !matches!(
                name.as_ref(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                walk_host_devices(&path, out)?;
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        match device_from_path(&path, &path) {
            Ok(Some(d)) if d.typ() != LinuxDeviceType::P => out.push(d),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::host(format!("reading {}", path.display()))(e)),
        }
    }
    Ok(())
}

/// One `--device` (moby's `DevicesFromPath`): a node, or a directory of nodes; the host path
/// may be a symlink to either.
pub(crate) fn from_mapping(
    mapping: &DeviceMapping,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let host = mapping.path_on_host.clone().unwrap_or_default();
    let in_container = mapping
        .path_in_container
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| host.clone());
    let access = mapping
        .cgroup_permissions
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "rwm".to_string());
    let device_error = |reason: String| Error::Device {
        path: host.clone(),
        reason,
    };
    let resolved = match std::fs::symlink_metadata(&host) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(&host).unwrap_or_else(|_| host.clone().into())
        }
        _ => PathBuf::from(&host),
    };
    let mut devices = Vec::new();
    match device_from_path(&resolved, Path::new(&in_container)) {
        Ok(Some(d)) => devices.push(d),
        Ok(None) if resolved.is_dir() => {
            for path in walk_files(&resolved) {
                let rel = path.strip_prefix(&resolved).unwrap_or(&path);
                if let Ok(Some(d)) = device_from_path(&path, &Path::new(&in_container).join(rel)) {
                    devices.push(d);
                }
            }
        }
        Ok(None) => return Err(device_error("not a device node".into())),
        Err(e) => return Err(device_error(e.to_string())),
    }
    if devices.is_empty() {
        return Err(device_error("not a device node".into()));
    }
    let rules = devices
        .iter()
        .map(|d| {
            let typ = if d.typ() == LinuxDeviceType::U {
                LinuxDeviceType::C
            } else {
                d.typ()
            };
            rule(true, Some(typ), Some(d.major()), Some(d.minor()), &access)
        })
        .collect();
    Ok((devices, rules))
}

/// Every path below `dir`, depth first (unreadable parts skipped, as moby's walk does).
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// One `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS`, e.g. `c 1:3 mr` or `b *:* rwm`.
pub(crate) fn parse_cgroup_rule(text: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || Error::DeviceCgroupRule(text.to_string());
    let mut parts = text.split(' ');
    let (Some(typ), Some(numbers), Some(access), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<i64> {
        if n == "*" {
            Ok(-1)
        } else if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (major, minor) = (number(major)?, number(minor)?);
    if access.is_empty()
        || access.len() > 3
        || !access.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
    {
        return Err(bad());
    }
    Ok(rule(true, Some(typ), Some(major), Some(minor), access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_deny_first_and_allow_the_standard_nodes() {
        let rules = default_rules();
        assert!(!rules[0].allow() && rules[0].typ().is_none() && rules[0].major().is_none());
        let allowed: Vec<(i64, i64)> = rules
            .iter()
            .filter(|r| r.allow())
            .map(|r| (r.major().unwrap(), r.minor().unwrap()))
            .collect();
        for node in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
            (136, -1),
            (10, 200),
        ] {
            assert!(allowed.contains(&node), "{node:?}");
        }
        let fuse = rules
            .iter()
            .find(|r| r.major() == Some(10) && r.minor() == Some(229))
            .unwrap();
        assert!(!fuse.allow());
    }

    #[test]
    fn host_devices_are_the_nodes_of_dev() {
        let devs = host_devices(Path::new("/dev")).unwrap();
        let null = devs
            .iter()
            .find(|d| d.path() == Path::new("/dev/null"))
            .unwrap();
        assert_eq!(
            (null.typ(), null.major(), null.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(null.file_mode(), Some(0o666));
        assert!(devs.iter().all(|d| !d.path().starts_with("/dev/pts")));
        assert!(devs.iter().all(|d| d.path() != Path::new("/dev/console")));
    }

    #[test]
    fn device_mappings_by_node_symlink_and_directory() {
        let m = |host: &str, ctr: &str, perms: &str| DeviceMapping {
            path_on_host: Some(host.into()),
            path_in_container: Some(ctr.into()),
            cgroup_permissions: Some(perms.into()),
        };
        let (devs, rules) = from_mapping(&m("/dev/null", "/dev/mynull", "rw")).unwrap();
        assert_eq!(devs[0].path(), Path::new("/dev/mynull"));
        assert_eq!((rules[0].major(), rules[0].minor()), (Some(1), Some(3)));
        assert_eq!(rules[0].access().as_deref(), Some("rw"));

        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("z")).unwrap();
        let (devs, _) =
            from_mapping(&m(dir.path().join("z").to_str().unwrap(), "/dev/z", "rwm")).unwrap();
        assert_eq!((devs[0].major(), devs[0].minor()), (1, 5));

        // A directory of nodes maps each below the container path.
        let sub = dir.path().join("d");
        std::fs::create_dir(&sub).unwrap();
        let made = nix::sys::stat::mknod(
            &sub.join("n"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 7),
        );
        if made.is_ok() {
            let (devs, rules) = from_mapping(&m(sub.to_str().unwrap(), "/dev/mine", "r")).unwrap();
            assert_eq!(devs[0].path(), Path::new("/dev/mine/n"));
            assert_eq!(rules[0].access().as_deref(), Some("r"));
        }

        let err = from_mapping(&m("/etc/hostname", "/dev/x", "rwm")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "error gathering device information while adding custom device \"/etc/hostname\""
            ),
            "{err}"
        );
        assert!(from_mapping(&m("/dev/does-not-exist", "/dev/x", "rwm")).is_err());
    }

    #[test]
    fn cgroup_rules_parse_like_moby() {
        let r = parse_cgroup_rule("c 1:3 mr").unwrap();
        assert_eq!(
            (r.typ(), r.major(), r.minor()),
            (Some(LinuxDeviceType::C), Some(1), Some(3))
        );
        let r = parse_cgroup_rule("b *:* rwm").unwrap();
        assert_eq!((r.major(), r.minor()), (Some(-1), Some(-1)));
        assert!(parse_cgroup_rule("a *:* rwm").is_ok());
        for bad in [
            "c 1:3",
            "x 1:3 r",
            "c 1-3 r",
            "c 1:3 rwx",
            "c 1:3 rwmr",
            "c a:3 r",
            " c 1:3 r",
            "c 1:3  r",
        ] {
            let err = parse_cgroup_rule(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
    }
}
