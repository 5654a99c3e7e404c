//! Turning [`Mount`]s into real mounts.
//!
//! The kernel takes mount options as one page, so `mount(2)` fails once an overlay's
//! `lowerdir=` list passes 4095 bytes: about 80 layers under a root such as
//! `/var/lib/berth/snapshots/<id>/fs`. Like containerd, [`mount_all`] then rewrites every
//! directory relative to their longest common parent (`/var/lib/berth/snapshots`, leaving
//! `12/fs:11/fs:...`) and mounts from there. The working directory belongs to the whole
//! process, so the mount happens on a short-lived thread that first unshares its file-system
//! context (`unshare(CLONE_FS)`); its `chdir` touches no other thread.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::{Mount, SnapshotError};

/// The longest option string `mount(2)` accepts: one page, with its terminating NUL.
pub const MAX_MOUNT_DATA: usize = 4095;

/// Mounts `mounts`, in order, at `target`: "overlay" mounts with their options (a plain `ro`
/// becomes the read-only flag), "bind" mounts with `rbind`/`bind` and `ro`/`rw`. Overlay
/// options longer than a page are shortened as the module docs describe. If one fails, those
/// already made are unmounted again.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), SnapshotError> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..done {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts everything mounted at `target`, topmost first. Nothing mounted there is not an
/// error, so cleanup paths may call it twice. `EBUSY` is retried for a while, as containerd
/// does: a file briefly held open (say, inherited by a child between fork and exec) clears.
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    let mut busy = 0;
    loop {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            // EINVAL: target is not (or no longer) a mount point.
            Err(nix::errno::Errno::EINVAL) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) if busy < 50 => {
                busy += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(SnapshotError::Unmount {
                    target: target.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
}

fn mount_error(m: &Mount, target: &Path, e: impl Into<io::Error>) -> SnapshotError {
    SnapshotError::Mount {
        kind: m.kind.clone(),
        source_path: m.source.clone(),
        target: target.to_path_buf(),
        source: e.into(),
    }
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), SnapshotError> {
    match m.kind.as_str() {
        "bind" => mount_bind(m, target),
        "overlay" => mount_overlay(m, target),
        other => Err(SnapshotError::UnsupportedMount {
            kind: other.to_string(),
            option: String::new(),
        }),
    }
}

fn mount_bind(m: &Mount, target: &Path) -> Result<(), SnapshotError> {
    let mut flags = MsFlags::MS_BIND;
    let mut readonly = false;
    for o in &m.options {
        match o.as_str() {
            "bind" => {}
            "rbind" => flags |= MsFlags::MS_REC,
            "ro" => readonly = true,
            "rw" => readonly = false,
            other => {
                return Err(SnapshotError::UnsupportedMount {
                    kind: m.kind.clone(),
                    option: other.to_string(),
                })
            }
        }
    }
    nix::mount::mount(
        Some(m.source.as_str()),
        target,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| mount_error(m, target, e))?;
    if readonly {
        // A bind mount ignores MS_RDONLY; it takes a remount of the new mount point.
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Err(e) = nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
        {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(mount_error(m, target, e));
        }
    }
    Ok(())
}

fn mount_overlay(m: &Mount, target: &Path) -> Result<(), SnapshotError> {
    let mut flags = MsFlags::empty();
    let mut options = Vec::new();
    for o in &m.options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            _ => options.push(o.clone()),
        }
    }
    let data = options.join(",");
    if data.len() <= MAX_MOUNT_DATA {
        return nix::mount::mount(
            Some(m.source.as_str()),
            target,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(|e| mount_error(m, target, e));
    }
    let Some((dir, short)) = relative_options(&options) else {
        return Err(SnapshotError::MountDataTooLong {
            target: target.to_path_buf(),
            len: data.len(),
        });
    };
    let short = short.join(",");
    if short.len() > MAX_MOUNT_DATA {
        return Err(SnapshotError::MountDataTooLong {
            target: target.to_path_buf(),
            len: short.len(),
        });
    }
    // The thread changes directory, so the target must not depend on the current one.
    let target_abs = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| mount_error(m, target, e))?
            .join(target)
    };
    std::thread::scope(|s| {
        s.spawn(|| -> Result<(), SnapshotError> {
            // This thread gets its own cwd; the rest of the process keeps theirs.
            unshare(CloneFlags::CLONE_FS).map_err(|e| mount_error(m, target, e))?;
            nix::unistd::chdir(&dir).map_err(|e| mount_error(m, target, e))?;
            nix::mount::mount(
                Some(m.source.as_str()),
                &target_abs,
                Some("overlay"),
                flags,
                Some(short.as_str()),
            )
            .map_err(|e| mount_error(m, target, e))
        })
        .join()
        .unwrap_or_else(|_| {
            Err(mount_error(
                m,
                target,
                io::Error::other("mount thread panicked"),
            ))
        })
    })
}

const PATH_OPTIONS: [&str; 3] = ["lowerdir=", "upperdir=", "workdir="];

/// Rewrites the directory options relative to their longest common parent; returns that
/// parent and the new options, or `None` if some directory is not absolute.
fn relative_options(options: &[String]) -> Option<(PathBuf, Vec<String>)> {
    let mut paths: Vec<&Path> = Vec::new();
    for o in options {
        for prefix in PATH_OPTIONS {
            if let Some(value) = o.strip_prefix(prefix) {
                paths.extend(value.split(':').map(Path::new));
            }
        }
    }
    let mut common: Option<Vec<Component>> = None;
    for p in &paths {
        if !p.is_absolute() {
            return None;
        }
        let parent: Vec<Component> = p.parent()?.components().collect();
        common = Some(match common {
            None => parent,
            Some(c) => c
                .iter()
                .zip(parent.iter())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    let common: PathBuf = common?.iter().map(|c| c.as_os_str()).collect();
    let rewritten = options
        .iter()
        .map(|o| {
            for prefix in PATH_OPTIONS {
                if let Some(value) = o.strip_prefix(prefix) {
                    let rel: Vec<String> = value
                        .split(':')
                        .map(|p| {
                            Path::new(p)
                                .strip_prefix(&common)
                                .map(|r| r.to_string_lossy().into_owned())
                                .unwrap_or_else(|_| p.to_string())
                        })
                        .collect();
                    return format!("{prefix}{}", rel.join(":"));
                }
            }
            o.clone()
        })
        .collect();
    Some((common, rewritten))
}

/// Whether overlay mounts work under `root`: makes a tiny overlay in a scratch directory
/// there, mounts it, and cleans up. `root` is created if missing.
pub fn overlay_supported(root: &Path) -> bool {
    let probe = root.join(format!("overlay-probe-{}", std::process::id()));
    let result = probe_overlay(&probe);
    let _ = unmount(&probe.join("merged"));
    let _ = crate::fsutil::remove_tree(&probe);
    result.unwrap_or(false)
}

fn probe_overlay(probe: &Path) -> io::Result<bool> {
    for d in ["lower1", "lower2", "upper", "work", "merged"] {
        fs::create_dir_all(probe.join(d))?;
    }
    fs::write(probe.join("lower1").join("f"), b"x")?;
    let p = |d: &str| probe.join(d).to_string_lossy().into_owned();
    let mount = Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("lowerdir={}:{}", p("lower2"), p("lower1")),
            format!("upperdir={}", p("upper")),
            format!("workdir={}", p("work")),
        ],
    };
    if mount_all(std::slice::from_ref(&mount), &probe.join("merged")).is_err() {
        return Ok(false);
    }
    let seen = fs::read(probe.join("merged").join(OsStr::new("f")))?;
    Ok(seen == b"x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_options_share_the_longest_parent() {
        let opts = vec![
            "index=off".to_string(),
            "workdir=/r/snapshots/3/work".to_string(),
            "upperdir=/r/snapshots/3/fs".to_string(),
            "lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs".to_string(),
        ];
        let (dir, rel) = relative_options(&opts).unwrap();
        assert_eq!(dir, Path::new("/r/snapshots"));
        assert_eq!(
            rel,
            vec![
                "index=off",
                "workdir=3/work",
                "upperdir=3/fs",
                "lowerdir=2/fs:1/fs"
            ]
        );
    }

    #[test]
    fn relative_options_refuse_relative_input() {
        assert!(relative_options(&["lowerdir=a:/b".to_string()]).is_none());
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use berth_core::{ErrorKind, HasKind};

    #[test]
    fn unknown_mounts_are_invalid_arguments() {
        let target = Path::new("/nonexistent-berth-target");
        let weird = Mount {
            kind: "nfs".into(),
            source: "x".into(),
            options: vec![],
        };
        let e = mount_all(&[weird], target).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let bad_option = Mount {
            kind: "bind".into(),
            source: "/".into(),
            options: vec!["nosuchoption".into()],
        };
        let e = mount_all(&[bad_option], target).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn relative_lowerdirs_that_overflow_are_refused_not_truncated() {
        let lower: Vec<String> = (0..600).map(|i| format!("rel/{i}/fs")).collect();
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("lowerdir={}", lower.join(":"))],
        };
        let e = mount_all(&[m], Path::new("/nonexistent-berth-target")).unwrap_err();
        assert!(matches!(e, SnapshotError::MountDataTooLong { .. }), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}
