//! A container's root filesystem: the image's layers, an init layer, and the container's
//! own copy-on-write layer, all snapshots of the image store's snapshotter.
//!
//! The init layer (Docker's `-init` layer) holds what the engine puts into every container:
//! empty files and directories where `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`,
//! `/proc`, `/sys`, `/dev/...` get mounted, and `/.dockerenv`. It sits between the image
//! and the container's layer, so `commit` (which takes only the container's layer) never
//! captures it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_snapshot::{mount_all, unmount, Snapshotter};

use crate::error::{ContainerError, Result};

/// The snapshot key of the container's writable layer.
pub fn rw_key(id: &str) -> String {
    id.to_string()
}

/// The init layer's name for an image whose top layer is `parent`: what it holds depends
/// only on the image, so the containers of one image share it.
pub fn init_key(parent: Option<&str>) -> String {
    format!("init-{}", parent.unwrap_or("scratch"))
}

/// The init layer a container's writable layer sits on.
pub fn init_of(snapshots: &dyn Snapshotter, id: &str) -> Result<Option<String>> {
    Ok(snapshots.stat(&rw_key(id))?.parent)
}

/// What the init layer holds: directories, then files (created only when missing).
const INIT_DIRS: &[&str] = &["dev", "dev/pts", "dev/shm", "proc", "sys", "etc"];
const INIT_FILES: &[&str] = &[
    ".dockerenv",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "dev/console",
];

/// Prepares the writable layer of a new container on top of the image's init layer
/// (made on first use through a scratch mount at `scratch`, then committed).
pub fn prepare(
    snapshots: &dyn Snapshotter,
    id: &str,
    parent: Option<&str>,
    scratch: &Path,
) -> Result<()> {
    let init = init_key(parent);
    if snapshots.stat(&init).is_err() {
        make_init_layer(snapshots, &init, id, parent, scratch)?;
    }
    match snapshots.prepare(&rw_key(id), Some(&init)) {
        // Image garbage collection took the unused init layer just now: make it again.
        Err(e) if berth_core::HasKind::kind(&e) == berth_core::ErrorKind::NotFound => {
            make_init_layer(snapshots, &init, id, parent, scratch)?;
            snapshots.prepare(&rw_key(id), Some(&init))?;
        }
        other => other.map(drop)?,
    }
    Ok(())
}

fn make_init_layer(
    snapshots: &dyn Snapshotter,
    init: &str,
    id: &str,
    parent: Option<&str>,
    scratch: &Path,
) -> Result<()> {
    let active = format!("{id}-init-active");
    let mounts = snapshots.prepare(&active, parent)?;
    let made = (|| {
        std::fs::create_dir_all(scratch).map_err(ContainerError::io("creating the init mount"))?;
        mount_all(&mounts, scratch)?;
        let filled = fill_init_layer(scratch);
        unmount(scratch)?;
        let _ = std::fs::remove_dir(scratch);
        filled
    })();
    if let Err(e) = made {
        let _ = snapshots.remove(&active);
        return Err(e);
    }
    if let Err(e) = snapshots.commit(init, &active) {
        let _ = snapshots.remove(&active);
        // Another container of the same image made it meanwhile: as good as ours.
        if snapshots.stat(init).is_err() {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Removes the container's writable layer (missing is fine). The shared init layer stays
/// for the image's other containers; image garbage collection takes it when none is left.
pub fn remove(snapshots: &dyn Snapshotter, id: &str) -> Result<()> {
    for key in [rw_key(id), format!("{id}-init-active")] {
        match snapshots.remove(&key) {
            Ok(()) => {}
            Err(e) if berth_core::HasKind::kind(&e) == berth_core::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Mounts the container's root at `target` (made if missing); a no-op when mounted.
pub fn mount(snapshots: &dyn Snapshotter, id: &str, target: &Path) -> Result<()> {
    if is_mountpoint(target) {
        return Ok(());
    }
    std::fs::create_dir_all(target)
        .map_err(ContainerError::io("creating the rootfs mount point"))?;
    let mounts = snapshots.mounts(&rw_key(id))?;
    mount_all(&mounts, target)?;
    Ok(())
}

/// Unmounts the container's root; a no-op when not mounted.
pub fn unmount_root(target: &Path) -> Result<()> {
    if is_mountpoint(target) {
        unmount(target)?;
    }
    Ok(())
}

/// Whether `path` is a mount point (its device differs from its parent's, or it is the
/// root of a bind of the same filesystem: checked in /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape_mountinfo(p) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Creates the init layer's entries under `root` without ever following a symlink: an
/// image that made one of these paths a link keeps it, and the runtime's own safe mount
/// point handling deals with it.
fn fill_init_layer(root: &Path) -> Result<()> {
    let root_fd = open_dir_at(libc::AT_FDCWD, &path_c(root)?)
        .map_err(ContainerError::io(format!("opening {}", root.display())))?;
    for d in INIT_DIRS {
        let _ = make_at(&root_fd, d, true);
    }
    for f in INIT_FILES {
        let _ = make_at(&root_fd, f, false);
    }
    Ok(())
}

fn path_c(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| ContainerError::Invalid(format!("path {} contains NUL", p.display())))
}

fn open_dir_at(dirfd: i32, name: &CString) -> std::io::Result<OwnedFd> {
    // SAFETY: name is a valid NUL-terminated string; the returned fd is checked and owned.
    let fd = unsafe {
        libc::openat(
            dirfd,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates `rel` (a directory or an empty file) below `root`, walking each parent with
/// O_NOFOLLOW: a symlinked or missing parent stops the walk.
fn make_at(root: &OwnedFd, rel: &str, dir: bool) -> std::io::Result<()> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, parents)) = parts.split_last() else {
        return Ok(());
    };
    let mut held: Option<OwnedFd> = None;
    for p in parents {
        let at = held.as_ref().unwrap_or(root).as_raw_fd();
        let name = CString::new(*p).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        held = Some(open_dir_at(at, &name)?);
    }
    let at = held.as_ref().unwrap_or(root).as_raw_fd();
    let name = CString::new(*last).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: `at` is an open directory fd and `name` a NUL-terminated string.
    let rc = unsafe {
        if dir {
            libc::mkdirat(at, name.as_ptr(), 0o755)
        } else {
            let fd = libc::openat(
                at,
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o755,
            );
            if fd >= 0 {
                libc::close(fd);
            }
            fd
        }
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

/// `root` joined with `path` as the container would see it: symlinks met on the way are
/// resolved inside `root` (an absolute link target starts again at `root`, `..` never
/// climbs above it), like runc's securejoin. For paths in a container's rootfs before
/// the container runs.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .rev()
        .map(str::to_string)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(resolved.join("/")).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && links < 255 => {
                links += 1;
                let Ok(target) = std::fs::read_link(&candidate) else {
                    resolved.push(c);
                    continue;
                };
                let t = target.to_string_lossy().to_string();
                if t.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(
                    t.split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .rev()
                        .map(str::to_string),
                );
            }
            _ => resolved.push(c),
        }
    }
    root.join(resolved.join("/"))
}

/// Creates `path` (and its parents) inside the container's `root`, resolving symlinks
/// inside it.
pub fn mkdir_all_in(root: &Path, path: &str) -> Result<()> {
    let p = secure_join(root, path);
    std::fs::create_dir_all(&p).map_err(ContainerError::io(format!(
        "creating {path} in the container"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_layer_never_follows_symlinks_out() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("etc")).unwrap();
        fill_init_layer(root.path()).unwrap();
        assert!(root.path().join(".dockerenv").is_file());
        assert!(root.path().join("dev/pts").is_dir());
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "nothing created through the etc symlink"
        );
    }

    #[test]
    fn secure_join_stays_inside() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real", r.join("rel")).unwrap();
        assert_eq!(secure_join(r, "/abs/passwd"), r.join("etc/passwd"));
        assert_eq!(secure_join(r, "/rel/sub"), r.join("real/sub"));
        assert_eq!(secure_join(r, "/../../x"), r.join("x"));
        mkdir_all_in(r, "/abs/made").unwrap();
        assert!(r.join("etc/made").is_dir());
    }

    #[test]
    fn mountinfo_knows_the_root() {
        assert!(is_mountpoint(Path::new("/")));
        assert!(!is_mountpoint(Path::new("/definitely/not/mounted")));
    }
}
