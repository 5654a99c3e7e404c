//! Copy-up: an image's files at a volume's mount point seed the volume while it is empty.
//!
//! The source is a directory of a container's root file system, so the image decides what is
//! in it: symlinks to `/etc`, `../../..` chains, devices, hard links. Both trees are walked from
//! open directory descriptors one name at a time (`fstatat` without following, `openat` with
//! `O_NOFOLLOW`, `readlinkat`, `mkdirat`/`mknodat`/`symlinkat`/`linkat` relative to the
//! destination directory), so a symlink is copied as a symlink and never leads anywhere.
//! Entries are created exclusively: if something appears at a destination name while we copy
//! (a running container sharing the volume), the copy fails instead of writing through it.
//!
//! Metadata goes in the order the kernel requires: data, then owner (`chown` clears set-id
//! bits and `security.capability`), then extended attributes, then mode, then times.
//! Directories get their mode and times after their children were written. Hard links are
//! kept as hard links when all their names are inside the source.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags,
    FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use xattr::FileExt;

use crate::error::VolumeError;
use crate::tree::{self, open_child_dir, DIR_FLAGS};

/// Copies the tree below `src` into `dst` if `dst` is empty, then gives `dst` the owner and
/// mode of `src` (Docker's `copyExistingContents` + `copyOwnership`). Returns whether it
/// copied. If the copy fails half-way, what was copied is removed again, so that the next
/// attempt does not find a non-empty volume and skip.
pub(crate) fn copy_into_empty(
    volume: &str,
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
) -> Result<bool, VolumeError> {
    let names = tree::names(dst).map_err(at_top(volume, "read"))?;
    if !names.is_empty() {
        return Ok(false);
    }
    let src_st = fstat(src).map_err(at_top(volume, "stat"))?;
    let dst_st = fstat(dst).map_err(at_top(volume, "stat"))?;
    let mut copier = Copier {
        volume,
        dst_root: dst,
        dst_root_id: (dst_st.st_dev, dst_st.st_ino),
        path: Vec::new(),
        links: HashMap::new(),
    };
    if let Err(e) = copier.dir(src, dst) {
        let _ = tree::remove_children(dst);
        return Err(e);
    }
    fchown(
        dst,
        Some(Uid::from_raw(src_st.st_uid)),
        Some(Gid::from_raw(src_st.st_gid)),
    )
    .map_err(at_top(volume, "chown"))?;
    fchmod(dst, mode_of(&src_st)).map_err(at_top(volume, "chmod"))?;
    Ok(true)
}

/// An error about the top of the copy (the source directory itself, or the volume's root).
fn at_top<E: Into<io::Error>>(volume: &str, op: &'static str) -> impl FnOnce(E) -> VolumeError {
    let name = volume.to_string();
    move |e| VolumeError::CopyUp {
        name,
        op,
        path: ".".to_string(),
        source: e.into(),
    }
}

struct Copier<'a> {
    volume: &'a str,
    dst_root: BorrowedFd<'a>,
    /// The destination itself, should it show up inside the source.
    dst_root_id: (u64, u64),
    /// The directory being copied, relative to both roots.
    path: Vec<Vec<u8>>,
    /// Source inodes (device, inode) with more than one name, and their first copy.
    links: HashMap<(u64, u64), FirstCopy>,
}

/// Where the first name of a hard-linked file was copied to.
#[derive(Clone)]
struct FirstCopy {
    /// Relative to the destination root.
    path: Vec<Vec<u8>>,
    /// The copy's inode, to check that the link made later reaches it.
    ino: u64,
}

fn mode_of(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

fn times_of(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn owner_of(st: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn changed() -> io::Error {
    io::Error::other("changed while it was being copied")
}

impl Copier<'_> {
    fn fail<E: Into<io::Error>>(
        &self,
        op: &'static str,
        name: &[u8],
    ) -> impl FnOnce(E) -> VolumeError {
        let mut parts = self.path.clone();
        if !name.is_empty() || parts.is_empty() {
            parts.push(if name.is_empty() {
                b".".to_vec()
            } else {
                name.to_vec()
            });
        }
        let path = parts.join(&b'/');
        let volume = self.volume.to_string();
        move |e| VolumeError::CopyUp {
            name: volume,
            op,
            path: String::from_utf8_lossy(&path).into_owned(),
            source: e.into(),
        }
    }

    fn dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Result<(), VolumeError> {
        for name in tree::names(src).map_err(self.fail("read", b""))? {
            self.entry(src, dst, &name)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src_dir: BorrowedFd<'_>,
        dst_dir: BorrowedFd<'_>,
        name: &[u8],
    ) -> Result<(), VolumeError> {
        let st = fstatat(src_dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(self.fail("stat", name))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            return self.directory(src_dir, dst_dir, name, &st);
        }
        let linked = st.st_nlink > 1;
        if linked {
            if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)).cloned() {
                return self.hard_link(&first, dst_dir, name);
            }
        }
        match kind {
            SFlag::S_IFREG => self.regular(src_dir, dst_dir, name, &st)?,
            SFlag::S_IFLNK => {
                let target = readlinkat(src_dir, name).map_err(self.fail("readlink", name))?;
                symlinkat(target.as_os_str(), dst_dir, name).map_err(self.fail("symlink", name))?;
                self.node_metadata(src_dir, dst_dir, name, &st, false)?;
            }
            // Character and block devices, fifos, sockets: the mode carries the type.
            _ => {
                mknodat(dst_dir, name, kind, Mode::empty(), st.st_rdev)
                    .map_err(self.fail("mknod", name))?;
                self.node_metadata(src_dir, dst_dir, name, &st, true)?;
            }
        }
        if linked {
            let copy = fstatat(dst_dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(self.fail("stat copy of", name))?;
            let mut path = self.path.clone();
            path.push(name.to_vec());
            let first = FirstCopy {
                path,
                ino: copy.st_ino,
            };
            self.links.insert((st.st_dev, st.st_ino), first);
        }
        Ok(())
    }

    fn directory(
        &mut self,
        src_dir: BorrowedFd<'_>,
        dst_dir: BorrowedFd<'_>,
        name: &[u8],
        st: &FileStat,
    ) -> Result<(), VolumeError> {
        if (st.st_dev, st.st_ino) == self.dst_root_id {
            // The volume is visible inside the tree it is being filled from.
            return Ok(());
        }
        let src = File::from(open_child_dir(src_dir, name).map_err(self.fail("open", name))?);
        let now = fstat(&src).map_err(self.fail("stat", name))?;
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
            return Err(self.fail("open", name)(changed()));
        }
        mkdirat(dst_dir, name, Mode::from_bits_truncate(0o700))
            .map_err(self.fail("mkdir", name))?;
        let dst =
            File::from(open_child_dir(dst_dir, name).map_err(self.fail("open copy of", name))?);
        self.own(&src, &dst, name, st)?;
        self.path.push(name.to_vec());
        let children = self.dir(src.as_fd(), dst.as_fd());
        self.path.pop();
        children?;
        self.seal(&dst, name, st)
    }

    /// First half of an open copy's metadata: owner, then extended attributes.
    fn own(&self, src: &File, dst: &File, name: &[u8], st: &FileStat) -> Result<(), VolumeError> {
        let (uid, gid) = owner_of(st);
        fchown(dst, uid, gid).map_err(self.fail("chown", name))?;
        copy_xattrs(&Node::File(src), &Node::File(dst)).map_err(self.fail("copy xattrs of", name))
    }

    /// Second half, once its contents are written: mode, then times.
    fn seal(&self, dst: &File, name: &[u8], st: &FileStat) -> Result<(), VolumeError> {
        fchmod(dst, mode_of(st)).map_err(self.fail("chmod", name))?;
        let (atime, mtime) = times_of(st);
        futimens(dst, &atime, &mtime).map_err(self.fail("set times of", name))
    }

    fn regular(
        &self,
        src_dir: BorrowedFd<'_>,
        dst_dir: BorrowedFd<'_>,
        name: &[u8],
        st: &FileStat,
    ) -> Result<(), VolumeError> {
        // O_NONBLOCK: should a fifo have taken the file's place, opening it does not hang.
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let mut src = File::from(
            openat(src_dir, name, flags, Mode::empty()).map_err(self.fail("open", name))?,
        );
        let now = fstat(&src).map_err(self.fail("stat", name))?;
        let still_regular =
            SFlag::from_bits_truncate(now.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        if !still_regular || (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
            return Err(self.fail("open", name)(changed()));
        }
        let create =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut dst = File::from(
            openat(dst_dir, name, create, Mode::from_bits_truncate(0o600))
                .map_err(self.fail("create", name))?,
        );
        io::copy(&mut src, &mut dst).map_err(self.fail("copy", name))?;
        self.own(&src, &dst, name, st)?;
        self.seal(&dst, name, st)
    }

    /// Owner, xattrs, mode (not for symlinks, which have none) and times of a node that has
    /// no descriptor of its own: symlinks, devices, fifos, sockets. Every call names it
    /// relative to its directory without following it.
    fn node_metadata(
        &self,
        src_dir: BorrowedFd<'_>,
        dst_dir: BorrowedFd<'_>,
        name: &[u8],
        st: &FileStat,
        chmod: bool,
    ) -> Result<(), VolumeError> {
        let (uid, gid) = owner_of(st);
        fchownat(dst_dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(self.fail("chown", name))?;
        copy_xattrs(
            &Node::Path(proc_path(src_dir, name)),
            &Node::Path(proc_path(dst_dir, name)),
        )
        .map_err(self.fail("copy xattrs of", name))?;
        if chmod {
            // Refuses (EOPNOTSUPP) rather than follows, should a symlink have taken its place.
            fchmodat(dst_dir, name, mode_of(st), FchmodatFlags::NoFollowSymlink)
                .map_err(self.fail("chmod", name))?;
        }
        let (atime, mtime) = times_of(st);
        utimensat(
            dst_dir,
            name,
            &atime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(self.fail("set times of", name))
    }

    /// Gives `name` in `dst_dir` the inode already copied to `first`, reaching `first`'s
    /// directory one component at a time from the destination root.
    fn hard_link(
        &self,
        first: &FirstCopy,
        dst_dir: BorrowedFd<'_>,
        name: &[u8],
    ) -> Result<(), VolumeError> {
        let (last, parents) = first.path.split_last().expect("a copied entry has a name");
        let mut dir = openat(self.dst_root, ".", DIR_FLAGS, Mode::empty())
            .map_err(self.fail("link", name))?;
        for p in parents {
            dir = open_child_dir(dir.as_fd(), p).map_err(self.fail("link", name))?;
        }
        linkat(&dir, last.as_slice(), dst_dir, name, AtFlags::empty())
            .map_err(self.fail("link", name))?;
        let made = fstatat(dst_dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(self.fail("link", name))?;
        if made.st_ino != first.ino {
            let _ = unlinkat(dst_dir, name, UnlinkatFlags::NoRemoveDir);
            return Err(self.fail("link", name)(changed()));
        }
        Ok(())
    }
}

/// A path naming `name` in `dir` for the `l*xattr` calls: the directory's `/proc` link, so no
/// component but the last is looked up, and the last is not followed.
fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(OsStr::from_bytes(name));
    p
}

/// Where extended attributes are read or written.
enum Node<'a> {
    File(&'a File),
    /// Not followed (`lgetxattr` and friends).
    Path(PathBuf),
}

impl Node<'_> {
    fn list(&self) -> io::Result<Vec<std::ffi::OsString>> {
        let names = match self {
            Node::File(f) => f.list_xattr(),
            Node::Path(p) => xattr::list(p),
        };
        match names {
            Ok(n) => Ok(n.collect()),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn get(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
        match self {
            Node::File(f) => f.get_xattr(name),
            Node::Path(p) => xattr::get(p, name),
        }
    }

    fn set(&self, name: &OsStr, value: &[u8]) -> io::Result<()> {
        match self {
            Node::File(f) => f.set_xattr(name, value),
            Node::Path(p) => xattr::set(p, name, value),
        }
    }
}

/// Copies every extended attribute but overlayfs's own (`trusted.overlay.*` describe an
/// overlay layer, not the file). One the destination file system cannot store, or a
/// `security.*` one it refuses (an SELinux label on a host without SELinux), is skipped.
fn copy_xattrs(from: &Node<'_>, to: &Node<'_>) -> io::Result<()> {
    for name in from.list()? {
        let bytes = name.as_bytes();
        if bytes.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Some(value) = from.get(&name)? else {
            continue;
        };
        match to.set(&name, &value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && bytes.starts_with(b"security.") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
