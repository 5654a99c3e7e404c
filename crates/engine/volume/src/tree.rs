//! Walking volume data through directory descriptors.
//!
//! Containers write whatever they like into a volume, symlinks included, and may still be
//! writing while the daemon measures or deletes it. So every walk here goes one component at a
//! time from an open directory (`openat` with `O_NOFOLLOW | O_DIRECTORY`, `fstatat` with
//! `AT_SYMLINK_NOFOLLOW`, `unlinkat`): a symlink is an entry like any other, never a way out.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// How every directory below a trusted starting point is opened.
pub(crate) const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens a directory of the store's own (its path is trusted, symlinks in it are followed).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(openat(AT_FDCWD, path, flags, Mode::empty())?)
}

/// Opens the directory `name` in `dir`; a symlink there fails with `ELOOP`.
pub(crate) fn open_child_dir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    openat(dir, name, DIR_FLAGS, Mode::empty())
}

/// The names in `dir`, without `.` and `..`.
pub(crate) fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = openat(dir, ".", DIR_FLAGS, Mode::empty())?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let n = ent?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    Ok(names)
}

pub(crate) fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// Removes `name` in `dir` and everything below it; nothing there is not an error. Refuses
/// (`EBUSY`) to descend into a directory of another file system than `dir`'s: a mount inside
/// a volume is never emptied.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let dev = fstat(dir)?.st_dev;
    remove_at(dir, name, dev)
}

/// Removes every entry of `dir` (not `dir` itself), staying on `dir`'s file system.
pub(crate) fn remove_children(dir: BorrowedFd<'_>) -> io::Result<()> {
    let dev = fstat(dir)?.st_dev;
    for name in names(dir)? {
        remove_at(dir, &name, dev)?;
    }
    Ok(())
}

fn remove_at(dir: BorrowedFd<'_>, name: &[u8], dev: u64) -> io::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let child = match open_child_dir(dir, name) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if fstat(&child)?.st_dev != dev {
        return Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!("{} is a mount point", String::from_utf8_lossy(name)),
        ));
    }
    for n in names(child.as_fd())? {
        remove_at(child.as_fd(), &n, dev)?;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Bytes under `dir` as Docker's `directory.Size` counts them for `system df` and prune: the
/// apparent size of everything that is not a directory, each inode once (hard links), symlinks
/// by the length of their target. Entries that vanish while it walks are skipped.
pub(crate) fn apparent_size(dir: BorrowedFd<'_>) -> io::Result<u64> {
    let mut seen = HashSet::new();
    size_below(dir, &mut seen)
}

fn size_below(dir: BorrowedFd<'_>, seen: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let mut total = 0;
    for name in names(dir)? {
        let st = match fstatat(dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        if is_dir(&st) {
            match open_child_dir(dir, &name) {
                Ok(child) => total += size_below(child.as_fd(), seen)?,
                // Replaced or removed since the stat.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {}
                Err(e) => return Err(e.into()),
            }
        } else if st.st_size > 0 && seen.insert((st.st_dev, st.st_ino)) {
            total += st.st_size as u64;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn removal_and_size_never_follow_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), b"precious").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("a/b")).unwrap();
        fs::write(data.join("a/b/f"), vec![0u8; 1000]).unwrap();
        fs::hard_link(data.join("a/b/f"), data.join("a/f2")).unwrap();
        fs::write(data.join("g"), vec![0u8; 24]).unwrap();
        symlink(outside.path(), data.join("a/out")).unwrap();
        let target_len = outside.path().as_os_str().len() as u64;

        let fd = open_dir(&data).unwrap();
        assert_eq!(apparent_size(fd.as_fd()).unwrap(), 1000 + 24 + target_len);

        let root = open_dir(tmp.path()).unwrap();
        remove_all_at(root.as_fd(), b"data").unwrap();
        assert!(!data.exists());
        assert_eq!(fs::read(outside.path().join("keep")).unwrap(), b"precious");
        // Nothing there any more is fine.
        remove_all_at(root.as_fd(), b"data").unwrap();
    }
}
