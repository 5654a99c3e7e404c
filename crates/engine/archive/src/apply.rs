//! Extracting a layer into a directory without ever leaving it.
//!
//! Every entry is created relative to a directory file descriptor. The parent of an entry is
//! reached by opening one component at a time with `O_DIRECTORY | O_NOFOLLOW` from the target's
//! descriptor, so a symlink inside the target (planted by this layer or a parent layer) is never
//! followed: an entry whose parent is a symlink is refused. Names are cleaned lexically first:
//! a leading `/` is dropped (absolute entry names are relative to the target, as docker does),
//! `a/../b` is `b`, and a `..` that would climb above the target is refused. The final component
//! is created with `O_EXCL` / `mkdirat` / `symlinkat` / `mknodat`, which do not follow symlinks
//! either; an existing entry is removed first (a directory over a directory merges).
//!
//! The parent descriptors of the last entry stay open (`DirStack`): tar streams list a directory's
//! children together, so most entries cost one `openat` for the file itself and nothing for the
//! walk. Removing a directory drops the whole stack, so it never holds a directory that was
//! unlinked.
//!
//! Metadata follows the order the kernel requires: data, then `fchown` (which clears setuid
//! bits and `security.capability`), then xattrs, then `fchmod`, then the times. Directories get
//! their mode and times in a final pass, after all their children were written.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::reader::{CopyError, EntryHeader, TarReader};
use crate::{ArchiveError, Refusal};

/// What to do with OCI whiteout entries (`.wh.<name>` and `.wh..wh..opq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Write overlayfs whiteouts into an overlay upper dir: `.wh.name` -> char device 0:0 `name`;
    /// `.wh..wh..opq` -> xattr `trusted.overlay.opaque=y` on the dir.
    Overlay,
    /// Apply them to a full tree (copy snapshotter: target holds the parent's files): remove the
    /// named path / the opaque dir's existing children that did not come from this layer.
    Apply,
}

/// How [`apply_layer`] writes entries.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: Whiteouts,
    /// Give entries the uid/gid of the tar header (`lchown`). Default: running as root.
    pub same_owner: bool,
    /// Create character and block devices; otherwise they are refused. Default: running as root.
    pub allow_devices: bool,
}

impl ApplyOptions {
    /// Options for `whiteouts`, with ownership and devices kept when running as root.
    pub fn new(whiteouts: Whiteouts) -> Self {
        let root = nix::unistd::geteuid().is_root();
        ApplyOptions {
            whiteouts,
            same_owner: root,
            allow_devices: root,
        }
    }
}

impl ApplyOptions {
    /// The set of written paths, when whiteouts need it.
    fn tracks<'w>(&self, written: &'w mut HashSet<Vec<u8>>) -> Option<&'w mut HashSet<Vec<u8>>> {
        (self.whiteouts == Whiteouts::Apply).then_some(written)
    }
}

impl Default for ApplyOptions {
    /// Overlay whiteouts (the overlay snapshotter's upper dir), root defaults.
    fn default() -> Self {
        ApplyOptions::new(Whiteouts::Overlay)
    }
}

/// What [`apply_layer`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Uncompressed tar bytes consumed.
    pub bytes: u64,
    /// File system entries in the layer (whiteouts included, PAX/GNU metadata entries not).
    pub entries: u64,
    /// `security.*` xattrs the file system refused (`ENOTSUP`/`EPERM`), e.g. `security.selinux`
    /// on a host without SELinux. Any other xattr that cannot be set fails the entry.
    pub skipped_xattrs: u64,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// Extracts an uncompressed tar stream (an OCI/Docker layer) into `target`.
///
/// `target` must be an existing directory; its own metadata is left alone (a `./` entry is
/// skipped). See the module documentation for what is refused and why.
pub fn apply_layer<R: Read>(
    tar: R,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ArchiveError> {
    let root = openat(
        AT_FDCWD,
        target,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ArchiveError::Target {
        path: target.to_path_buf(),
        source: e.into(),
    })?;
    let mut applier = Applier {
        root,
        opts,
        stack: DirStack::default(),
        written: HashSet::new(),
        dirs: BTreeMap::new(),
        stats: ApplyStats::default(),
    };
    let mut reader = TarReader::new(tar);
    while let Some(hdr) = reader.next_header()? {
        applier.stats.entries += 1;
        applier.entry(&mut reader, &hdr)?;
    }
    applier.finish_dirs()?;
    applier.stats.bytes = reader.offset();
    Ok(applier.stats)
}

/// Mode and times of a directory, set once all of its children exist.
struct DirMeta {
    mode: u32,
    mtime: (i64, u32),
}

struct Applier<'o> {
    root: OwnedFd,
    opts: &'o ApplyOptions,
    stack: DirStack,
    /// Paths this layer wrote, and their ancestors (only in `Whiteouts::Apply`): an opaque
    /// whiteout or a whiteout removes only what came from the parent layers.
    written: HashSet<Vec<u8>>,
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    stats: ApplyStats,
}

/// The open parent directories of the last entry: `fds[i]` is the directory `names[..=i]`.
#[derive(Default)]
struct DirStack {
    names: Vec<Vec<u8>>,
    fds: Vec<OwnedFd>,
}

impl DirStack {
    fn clear(&mut self) {
        self.names.clear();
        self.fds.clear();
    }
}

/// Splits an entry name into clean components (see the module docs).
fn clean_path(path: &[u8]) -> Result<Vec<&[u8]>, Refusal> {
    let mut comps: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if comps.pop().is_none() {
                    return Err(Refusal::PathEscapes);
                }
            }
            c => comps.push(c),
        }
    }
    Ok(comps)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn name_str(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn timespec(t: (i64, u32)) -> TimeSpec {
    TimeSpec::new(t.0, i64::from(t.1))
}

/// The file type of `name` in `dir`, without following a symlink; `None` if it does not exist.
fn lstat_type(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<SFlag>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, never following a
/// symlink. A missing `name` is not an error.
fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e.into()),
    }
    // Linux reports EISDIR for a directory (EPERM on some file systems).
    if lstat_type(dir, name)? != Some(SFlag::S_IFDIR) {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(Into::into);
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    remove_children(fd.as_fd(), |_| false)?;
    unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(Into::into)
}

/// Removes every child of `dir` for which `keep` is false.
fn remove_children(dir: BorrowedFd<'_>, keep: impl Fn(&[u8]) -> bool) -> io::Result<()> {
    let names = list_dir(dir)?;
    for name in names {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in `dir` (without `.` and `..`).
fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// A path through which a (non-regular) entry in `dir` can be named by the `l*xattr` calls
/// without following symlinks in its parents: the directory descriptor's `/proc` link.
fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(OsStr::from_bytes(name));
    p
}

/// Where xattrs are set: an open file, or a name to be used with `lsetxattr`.
enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    Path(PathBuf),
}

impl<'o> Applier<'o> {
    /// Opens the directory `comps` below the target, one component at a time, reusing the open
    /// prefix in the stack. Missing directories are created (mode 0755, as docker does) if
    /// `create` is set; otherwise `Ok(None)` is returned for them.
    fn open_dir<'s>(
        root: &'s OwnedFd,
        stack: &'s mut DirStack,
        mut written: Option<&mut HashSet<Vec<u8>>>,
        comps: &[&[u8]],
        hdr: &EntryHeader,
        create: bool,
    ) -> Result<Option<BorrowedFd<'s>>, ArchiveError> {
        let common = stack
            .names
            .iter()
            .zip(comps)
            .take_while(|(a, b)| a.as_slice() == **b)
            .count();
        stack.names.truncate(common);
        stack.fds.truncate(common);
        for (i, comp) in comps.iter().enumerate().skip(common) {
            let parent = match stack.fds.last() {
                Some(fd) => fd.as_fd(),
                None => root.as_fd(),
            };
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = match openat(parent, *comp, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(parent, *comp, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Self::errno(hdr, "create parent directory")(e)),
                    }
                    if let Some(w) = written.as_deref_mut() {
                        mark_written(w, &join(&comps[..=i]));
                    }
                    openat(parent, *comp, flags, Mode::empty())
                        .map_err(Self::errno(hdr, "open parent directory"))?
                }
                Err(Errno::ENOENT) => return Ok(None),
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                    let component = name_str(&join(&comps[..=i]));
                    return Err(match lstat_type(parent, comp) {
                        Ok(Some(SFlag::S_IFLNK)) => {
                            Self::refused(hdr, Refusal::ParentIsSymlink { component })
                        }
                        Ok(_) => Self::refused(hdr, Refusal::ParentNotDirectory { component }),
                        Err(_) => Self::errno(hdr, "open parent directory")(e),
                    });
                }
                Err(e) => return Err(Self::errno(hdr, "open parent directory")(e)),
            };
            stack.names.push(comp.to_vec());
            stack.fds.push(fd);
        }
        Ok(Some(match stack.fds.last() {
            Some(fd) => fd.as_fd(),
            None => root.as_fd(),
        }))
    }

    fn refused(hdr: &EntryHeader, reason: Refusal) -> ArchiveError {
        ArchiveError::refused(&hdr.display_path(), reason)
    }

    /// A directory that `open_dir` just created is gone again: something else is changing the
    /// target while the layer is applied.
    fn vanished(hdr: &EntryHeader) -> ArchiveError {
        ArchiveError::apply(
            &hdr.display_path(),
            "open parent directory",
            io::Error::new(io::ErrorKind::NotFound, "created directory disappeared"),
        )
    }

    fn io<'h>(
        hdr: &'h EntryHeader,
        op: &'static str,
    ) -> impl FnOnce(io::Error) -> ArchiveError + 'h {
        move |e| ArchiveError::apply(&hdr.display_path(), op, e)
    }

    fn errno<'h>(
        hdr: &'h EntryHeader,
        op: &'static str,
    ) -> impl FnOnce(Errno) -> ArchiveError + 'h {
        move |e| ArchiveError::apply(&hdr.display_path(), op, e.into())
    }

    fn entry<R: Read>(
        &mut self,
        reader: &mut TarReader<R>,
        hdr: &EntryHeader,
    ) -> Result<(), ArchiveError> {
        let comps = clean_path(&hdr.path).map_err(|r| Self::refused(hdr, r))?;
        let Some((&name, parent)) = comps.split_last() else {
            if hdr.typeflag == b'5' {
                // `./`: the target's own metadata belongs to whoever created it.
                return Ok(());
            }
            return Err(Self::refused(hdr, Refusal::EmptyPath));
        };
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(hdr, parent, name);
        }
        let kind = match hdr.typeflag {
            b'0' | b'\0' | b'7' => SFlag::S_IFREG,
            b'1' => return self.hard_link(hdr, &comps),
            b'2' => SFlag::S_IFLNK,
            b'3' | b'4' => {
                if !self.opts.allow_devices {
                    return Err(Self::refused(hdr, Refusal::DeviceNotAllowed));
                }
                if hdr.typeflag == b'3' {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                }
            }
            b'5' => SFlag::S_IFDIR,
            b'6' => SFlag::S_IFIFO,
            flag => {
                return Err(Self::refused(
                    hdr,
                    Refusal::UnsupportedType {
                        flag: char::from(flag),
                    },
                ))
            }
        };
        for (xname, _) in &hdr.xattrs {
            if xname.starts_with(OVERLAY_XATTR_PREFIX) {
                return Err(Self::refused(
                    hdr,
                    Refusal::ReservedXattr {
                        name: name_str(xname),
                    },
                ));
            }
        }
        if let Some(w) = self.opts.tracks(&mut self.written) {
            mark_written(w, &join(&comps));
        }
        if kind == SFlag::S_IFDIR {
            return self.directory(hdr, &comps);
        }
        let same_owner = self.opts.same_owner;
        let dir = Self::open_dir(
            &self.root,
            &mut self.stack,
            self.opts.tracks(&mut self.written),
            parent,
            hdr,
            true,
        )?
        .ok_or_else(|| Self::vanished(hdr))?;
        let mut removed_dir = false;
        match kind {
            SFlag::S_IFREG => {
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let mode = Mode::from_bits_truncate(0o600);
                let fd = match openat(dir, name, flags, mode) {
                    Err(Errno::EEXIST) => {
                        removed_dir = replace_existing(dir, name)
                            .map_err(Self::io(hdr, "remove existing"))?;
                        openat(dir, name, flags, mode)
                    }
                    r => r,
                }
                .map_err(Self::errno(hdr, "create file"))?;
                let mut file = File::from(fd);
                reader.copy_data(&mut file).map_err(|e| match e {
                    CopyError::Read(e) => e,
                    CopyError::Write(e) => {
                        ArchiveError::apply(&hdr.display_path(), "write file", e)
                    }
                })?;
                if same_owner {
                    fchown(
                        &file,
                        Some(Uid::from_raw(hdr.uid)),
                        Some(Gid::from_raw(hdr.gid)),
                    )
                    .map_err(Self::errno(hdr, "chown"))?;
                }
                set_xattrs(XattrTarget::Fd(file.as_fd()), hdr, &mut self.stats)?;
                fchmod(&file, Mode::from_bits_truncate(hdr.mode & 0o7777))
                    .map_err(Self::errno(hdr, "chmod"))?;
                let t = timespec((hdr.mtime, hdr.mtime_nsec));
                futimens(&file, &t, &t).map_err(Self::errno(hdr, "set times"))?;
            }
            _ => {
                let create = |dir: BorrowedFd<'_>| -> Result<(), Errno> {
                    match kind {
                        SFlag::S_IFLNK => symlinkat(hdr.link.as_slice(), dir, name),
                        _ => mknodat(
                            dir,
                            name,
                            kind,
                            Mode::from_bits_truncate(0o600),
                            nix::sys::stat::makedev(
                                u64::from(hdr.dev_major),
                                u64::from(hdr.dev_minor),
                            ),
                        ),
                    }
                };
                match create(dir) {
                    Err(Errno::EEXIST) => {
                        removed_dir = replace_existing(dir, name)
                            .map_err(Self::io(hdr, "remove existing"))?;
                        create(dir)
                    }
                    r => r,
                }
                .map_err(Self::errno(hdr, "create"))?;
                if same_owner {
                    fchownat(
                        dir,
                        name,
                        Some(Uid::from_raw(hdr.uid)),
                        Some(Gid::from_raw(hdr.gid)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(Self::errno(hdr, "chown"))?;
                }
                set_xattrs(
                    XattrTarget::Path(proc_path(dir, name)),
                    hdr,
                    &mut self.stats,
                )?;
                if kind != SFlag::S_IFLNK {
                    // The node was just created by mknodat, so following is harmless here (and
                    // Linux has no lchmod).
                    fchmodat(
                        dir,
                        name,
                        Mode::from_bits_truncate(hdr.mode & 0o7777),
                        FchmodatFlags::FollowSymlink,
                    )
                    .map_err(Self::errno(hdr, "chmod"))?;
                }
                let t = timespec((hdr.mtime, hdr.mtime_nsec));
                utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
                    .map_err(Self::errno(hdr, "set times"))?;
            }
        }
        if removed_dir {
            self.stack.clear();
        }
        Ok(())
    }

    fn directory(&mut self, hdr: &EntryHeader, comps: &[&[u8]]) -> Result<(), ArchiveError> {
        let (&name, parent) = comps.split_last().expect("non-empty");
        let dir = Self::open_dir(
            &self.root,
            &mut self.stack,
            self.opts.tracks(&mut self.written),
            parent,
            hdr,
            true,
        )?
        .ok_or_else(|| Self::vanished(hdr))?;
        match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                match lstat_type(dir, name).map_err(Self::io(hdr, "stat existing"))? {
                    // A directory over a directory merges.
                    Some(SFlag::S_IFDIR) => {}
                    _ => {
                        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                            .map_err(Self::errno(hdr, "remove existing"))?;
                        mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                            .map_err(Self::errno(hdr, "create directory"))?;
                    }
                }
            }
            Err(e) => return Err(Self::errno(hdr, "create directory")(e)),
        }
        // Open it through the stack: its children usually follow.
        let same_owner = self.opts.same_owner;
        let fd = Self::open_dir(
            &self.root,
            &mut self.stack,
            self.opts.tracks(&mut self.written),
            comps,
            hdr,
            false,
        )?
        .ok_or_else(|| {
            ArchiveError::apply(
                &hdr.display_path(),
                "open directory",
                io::Error::from(io::ErrorKind::NotFound),
            )
        })?;
        if same_owner {
            fchown(
                fd,
                Some(Uid::from_raw(hdr.uid)),
                Some(Gid::from_raw(hdr.gid)),
            )
            .map_err(Self::errno(hdr, "chown"))?;
        }
        set_xattrs(XattrTarget::Fd(fd), hdr, &mut self.stats)?;
        self.dirs.insert(
            join(comps),
            DirMeta {
                mode: hdr.mode & 0o7777,
                mtime: (hdr.mtime, hdr.mtime_nsec),
            },
        );
        Ok(())
    }

    fn hard_link(&mut self, hdr: &EntryHeader, comps: &[&[u8]]) -> Result<(), ArchiveError> {
        let link_name = || name_str(&hdr.link);
        let target = clean_path(&hdr.link)
            .map_err(|_| Self::refused(hdr, Refusal::LinkEscapes { link: link_name() }))?;
        let Some((&target_name, target_parent)) = target.split_last() else {
            return Err(Self::refused(
                hdr,
                Refusal::LinkTargetIsDirectory { link: link_name() },
            ));
        };
        if target == comps {
            // A link to itself: tar writers emit these for files listed twice.
            return Ok(());
        }
        if let Some(w) = self.opts.tracks(&mut self.written) {
            mark_written(w, &join(comps));
        }
        // The target's directory is held apart from the stack, which now walks to the entry.
        let target_dir = match Self::open_dir(
            &self.root,
            &mut self.stack,
            self.opts.tracks(&mut self.written),
            target_parent,
            hdr,
            false,
        ) {
            Ok(Some(fd)) => fd.try_clone_to_owned().map_err(Self::io(hdr, "dup"))?,
            Ok(None) => {
                return Err(Self::refused(
                    hdr,
                    Refusal::LinkTargetMissing { link: link_name() },
                ))
            }
            Err(ArchiveError::Refused { reason, .. }) => {
                let reason = match reason {
                    Refusal::ParentIsSymlink { component } => Refusal::ParentIsSymlink {
                        component: format!("{component} (in hard link target {})", link_name()),
                    },
                    r => r,
                };
                return Err(Self::refused(hdr, reason));
            }
            Err(e) => return Err(e),
        };
        match lstat_type(target_dir.as_fd(), target_name)
            .map_err(Self::io(hdr, "stat link target"))?
        {
            None => {
                return Err(Self::refused(
                    hdr,
                    Refusal::LinkTargetMissing { link: link_name() },
                ))
            }
            Some(SFlag::S_IFDIR) => {
                return Err(Self::refused(
                    hdr,
                    Refusal::LinkTargetIsDirectory { link: link_name() },
                ))
            }
            Some(_) => {}
        }
        let (&name, parent) = comps.split_last().expect("non-empty");
        let dir = Self::open_dir(
            &self.root,
            &mut self.stack,
            self.opts.tracks(&mut self.written),
            parent,
            hdr,
            true,
        )?
        .ok_or_else(|| Self::vanished(hdr))?;
        let link = |dir: BorrowedFd<'_>| {
            linkat(target_dir.as_fd(), target_name, dir, name, AtFlags::empty())
        };
        let mut removed_dir = false;
        match link(dir) {
            Err(Errno::EEXIST) => {
                removed_dir =
                    replace_existing(dir, name).map_err(Self::io(hdr, "remove existing"))?;
                link(dir)
            }
            r => r,
        }
        .map_err(Self::errno(hdr, "hard link"))?;
        if removed_dir {
            self.stack.clear();
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        hdr: &EntryHeader,
        parent: &[&[u8]],
        name: &[u8],
    ) -> Result<(), ArchiveError> {
        let parent_path = join(parent);
        let opaque = name == OPAQUE_WHITEOUT;
        if !opaque && name.starts_with(WHITEOUT_META_PREFIX) {
            // aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless here, as for docker.
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        match self.opts.whiteouts {
            Whiteouts::Overlay => {
                let dir = Self::open_dir(
                    &self.root,
                    &mut self.stack,
                    self.opts.tracks(&mut self.written),
                    parent,
                    hdr,
                    true,
                )?
                .ok_or_else(|| Self::vanished(hdr))?;
                if opaque {
                    let file = File::from(dir.try_clone_to_owned().map_err(Self::io(hdr, "dup"))?);
                    xattr::FileExt::set_xattr(&file, "trusted.overlay.opaque", b"y")
                        .map_err(Self::io(hdr, "set trusted.overlay.opaque"))?;
                    return Ok(());
                }
                let dev = nix::sys::stat::makedev(0, 0);
                let mk =
                    |dir: BorrowedFd<'_>| mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), dev);
                let mut removed_dir = false;
                match mk(dir) {
                    Err(Errno::EEXIST) => {
                        removed_dir = replace_existing(dir, hidden)
                            .map_err(Self::io(hdr, "remove existing"))?;
                        mk(dir)
                    }
                    r => r,
                }
                .map_err(Self::errno(hdr, "create whiteout device"))?;
                // The whiteout keeps the header's owner and time, so that writing the upper dir
                // back out gives the same bytes.
                if self.opts.same_owner {
                    fchownat(
                        dir,
                        hidden,
                        Some(Uid::from_raw(hdr.uid)),
                        Some(Gid::from_raw(hdr.gid)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(Self::errno(hdr, "chown"))?;
                }
                let t = timespec((hdr.mtime, hdr.mtime_nsec));
                utimensat(dir, hidden, &t, &t, UtimensatFlags::NoFollowSymlink)
                    .map_err(Self::errno(hdr, "set times"))?;
                if removed_dir {
                    self.stack.clear();
                }
            }
            Whiteouts::Apply => {
                let Some(dir) = Self::open_dir(
                    &self.root,
                    &mut self.stack,
                    self.opts.tracks(&mut self.written),
                    parent,
                    hdr,
                    false,
                )?
                else {
                    return Ok(());
                };
                let dir = dir.try_clone_to_owned().map_err(Self::io(hdr, "dup"))?;
                let written = &self.written;
                let child_path = |child: &[u8]| {
                    let mut p = parent_path.clone();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(child);
                    p
                };
                if opaque {
                    remove_children(dir.as_fd(), |child| written.contains(&child_path(child)))
                        .map_err(Self::io(hdr, "remove opaque directory's children"))?;
                } else if !written.contains(&child_path(hidden)) {
                    remove_all_at(dir.as_fd(), hidden)
                        .map_err(Self::io(hdr, "remove whited-out path"))?;
                }
                self.stack.clear();
            }
        }
        Ok(())
    }

    /// Directories' modes and times, after everything inside them was written.
    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        let dirs = std::mem::take(&mut self.dirs);
        // Children before parents: a parent that loses its write or search bit last cannot get
        // in the way of its children (for callers without CAP_DAC_OVERRIDE).
        for (path, meta) in dirs.into_iter().rev() {
            let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let hdr = EntryHeader {
                typeflag: b'5',
                path: path.clone(),
                link: Vec::new(),
                mode: meta.mode,
                uid: 0,
                gid: 0,
                mtime: meta.mtime.0,
                mtime_nsec: meta.mtime.1,
                dev_major: 0,
                dev_minor: 0,
                xattrs: Vec::new(),
            };
            // A directory that a later entry replaced or whited out is gone; nothing to do.
            let fd = match Self::open_dir(
                &self.root,
                &mut self.stack,
                self.opts.tracks(&mut self.written),
                &comps,
                &hdr,
                false,
            ) {
                Ok(Some(fd)) => fd,
                Ok(None) | Err(ArchiveError::Refused { .. }) => continue,
                Err(e) => return Err(e),
            };
            fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(Self::errno(&hdr, "chmod"))?;
            let t = timespec(meta.mtime);
            futimens(fd, &t, &t).map_err(Self::errno(&hdr, "set times"))?;
        }
        Ok(())
    }
}

/// Records `path` and its ancestors as written by this layer.
fn mark_written(written: &mut HashSet<Vec<u8>>, path: &[u8]) {
    let mut p = path;
    while written.insert(p.to_vec()) {
        match p.iter().rposition(|&b| b == b'/') {
            Some(i) => p = &p[..i],
            None => break,
        }
    }
}

/// Removes an existing `name` so a new entry can take its place. Returns whether a directory was
/// removed (the caller's open directories may then be stale).
fn replace_existing(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    let was_dir = lstat_type(dir, name)? == Some(SFlag::S_IFDIR);
    remove_all_at(dir, name)?;
    Ok(was_dir)
}

/// Sets the entry's xattrs. `security.*` xattrs the file system does not support or the caller
/// may not set are counted and skipped; any other failure is an error naming the xattr.
fn set_xattrs(
    target: XattrTarget<'_>,
    hdr: &EntryHeader,
    stats: &mut ApplyStats,
) -> Result<(), ArchiveError> {
    for (name, value) in &hdr.xattrs {
        let os_name = OsStr::from_bytes(name);
        let res = match &target {
            XattrTarget::Fd(fd) => {
                let file = std::mem::ManuallyDrop::new(
                    // SAFETY: the descriptor is borrowed for the duration of this call and the
                    // ManuallyDrop wrapper keeps the temporary File from closing it.
                    unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd.as_raw_fd()) },
                );
                xattr::FileExt::set_xattr(&*file, os_name, value)
            }
            XattrTarget::Path(p) => xattr::set(p, os_name, value),
        };
        if let Err(e) = res {
            let skippable = name.starts_with(b"security.")
                && matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTSUP) | Some(libc::EPERM) | Some(libc::EACCES)
                );
            if skippable {
                stats.skipped_xattrs += 1;
                continue;
            }
            return Err(ArchiveError::Xattr {
                entry: hdr.display_path(),
                name: name_str(name),
                source: e,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_normalises_and_refuses_escapes() {
        assert_eq!(clean_path(b"./a//b/").unwrap(), vec![&b"a"[..], b"b"]);
        assert_eq!(
            clean_path(b"/etc/passwd").unwrap(),
            vec![&b"etc"[..], b"passwd"]
        );
        assert_eq!(clean_path(b"a/../b").unwrap(), vec![&b"b"[..]]);
        assert_eq!(clean_path(b"../../etc/passwd"), Err(Refusal::PathEscapes));
        assert_eq!(clean_path(b"a/../../b"), Err(Refusal::PathEscapes));
        assert!(clean_path(b"./").unwrap().is_empty());
    }
}
