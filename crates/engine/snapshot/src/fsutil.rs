//! File-tree helpers: delete without crossing mounts, measure, and copy faithfully.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{AtFlags, AT_FDCWD};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};

use crate::{SnapshotError, Usage};

/// Removes `path` and everything below it; nothing to do if it does not exist. Refuses to
/// descend into another file system, so a mount someone left inside is never emptied.
pub(crate) fn remove_tree(path: &Path) -> Result<(), SnapshotError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SnapshotError::io("stat", path, e)),
    };
    remove_below(path, meta.dev())
}

fn remove_below(path: &Path, dev: u64) -> Result<(), SnapshotError> {
    let meta = fs::symlink_metadata(path).map_err(|e| SnapshotError::io("stat", path, e))?;
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(|e| SnapshotError::io("remove", path, e));
    }
    if meta.dev() != dev {
        return Err(SnapshotError::io(
            "remove",
            path,
            io::Error::from_raw_os_error(libc::EBUSY),
        ));
    }
    for entry in fs::read_dir(path).map_err(|e| SnapshotError::io("read", path, e))? {
        let entry = entry.map_err(|e| SnapshotError::io("read", path, e))?;
        remove_below(&entry.path(), dev)?;
    }
    fs::remove_dir(path).map_err(|e| SnapshotError::io("remove", path, e))
}

/// Allocated bytes and distinct inodes under `path` (included), hard links counted once.
pub(crate) fn usage(path: &Path) -> Result<Usage, SnapshotError> {
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    walk_usage(path, &mut seen, &mut usage)?;
    Ok(usage)
}

fn walk_usage(
    path: &Path,
    seen: &mut HashSet<(u64, u64)>,
    usage: &mut Usage,
) -> Result<(), SnapshotError> {
    let meta = fs::symlink_metadata(path).map_err(|e| SnapshotError::io("stat", path, e))?;
    if seen.insert((meta.dev(), meta.ino())) {
        usage.inodes += 1;
        usage.size += meta.blocks() * 512;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| SnapshotError::io("read", path, e))? {
            let entry = entry.map_err(|e| SnapshotError::io("read", path, e))?;
            walk_usage(&entry.path(), seen, usage)?;
        }
    }
    Ok(())
}

/// `_IOW(0x94, 9, int)`: clone a whole file's extents (btrfs, xfs).
const FICLONE: libc::c_ulong = 0x4004_9409;

/// Copies the contents of directory `src` into existing directory `dst`, keeping owners, modes,
/// extended attributes, hard links, symlinks, devices, fifos, sockets and times; regular files
/// are reflinked where the file system can, and copied otherwise. `dst` itself takes `src`'s
/// metadata.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), SnapshotError> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    let meta = fs::symlink_metadata(src).map_err(|e| SnapshotError::io("stat", src, e))?;
    copy_metadata(src, dst, &meta)
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), SnapshotError> {
    for entry in fs::read_dir(src).map_err(|e| SnapshotError::io("read", src, e))? {
        let entry = entry.map_err(|e| SnapshotError::io("read", src, e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(|e| SnapshotError::io("stat", &from, e))?;
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &to).map_err(|e| SnapshotError::io("link", &to, e))?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        if ft.is_dir() {
            fs::create_dir(&to).map_err(|e| SnapshotError::io("create", &to, e))?;
            copy_dir_contents(&from, &to, links)?;
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&from).map_err(|e| SnapshotError::io("readlink", &from, e))?;
            symlink(&target, &to).map_err(|e| SnapshotError::io("symlink", &to, e))?;
        } else if ft.is_file() {
            copy_file(&from, &to)?;
        } else {
            // Character and block devices, fifos, sockets: the mode carries the file type.
            let kind = SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            let perm = Mode::from_bits_truncate(meta.mode() & 0o7777);
            mknod(&to, kind, perm, meta.rdev())
                .map_err(|e| SnapshotError::io("mknod", &to, e.into()))?;
        }
        copy_metadata(&from, &to, &meta)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), SnapshotError> {
    let mut src = File::open(from).map_err(|e| SnapshotError::io("open", from, e))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| SnapshotError::io("create", to, e))?;
    // SAFETY: FICLONE takes the source descriptor as its argument; both descriptors are open
    // for the duration of the call and the kernel writes no memory of ours.
    let cloned = unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) } == 0;
    if !cloned {
        io::copy(&mut src, &mut dst).map_err(|e| SnapshotError::io("copy", to, e))?;
    }
    Ok(())
}

/// Owner, then mode (chown clears set-id bits), extended attributes, then times.
fn copy_metadata(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), SnapshotError> {
    fchownat(
        AT_FDCWD,
        to,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| SnapshotError::io("chown", to, e.into()))?;
    let is_link = meta.file_type().is_symlink();
    if !is_link {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| SnapshotError::io("chmod", to, e))?;
    }
    let names = xattr::list(from).map_err(|e| SnapshotError::io("listxattr", from, e))?;
    for name in names {
        if let Some(value) =
            xattr::get(from, &name).map_err(|e| SnapshotError::io("getxattr", from, e))?
        {
            xattr::set(to, &name, &value).map_err(|e| SnapshotError::io("setxattr", to, e))?;
        }
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(
        AT_FDCWD,
        to,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| SnapshotError::io("utimensat", to, e.into()))
}
