//! Writing trees and diffs as layer tarballs.
//!
//! All writers produce the same shape of archive: entries in byte order of their names (a
//! directory before its children), names relative to the root without a `./` prefix and with a
//! trailing `/` on directories, ustar headers with a PAX record in front when a name, a link
//! target, an id, a size or a time does not fit, or when the entry has xattrs
//! (`SCHILY.xattr.<name>`), empty user and group names, and two zero blocks at the end. The same
//! tree therefore always gives the same bytes, and so the same digest.
//!
//! A file with several links is written once; later paths to the same inode become hard link
//! entries to the first. Sockets cannot be carried by tar and are left out, as GNU tar does.
//! Overlayfs bookkeeping xattrs (`trusted.overlay.*`) are never written.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::ArchiveError;

const BLOCK: usize = 512;
const WRITE_BUFFER: usize = 1024 * 1024;
const OVERLAY_PREFIX: &[u8] = b"trusted.overlay.";
/// Overlayfs mounted with `userxattr` (rootless) keeps its bookkeeping here; only an upper dir
/// is read with this prefix reserved, a plain tree keeps such xattrs as user data.
const USER_OVERLAY_PREFIX: &[u8] = b"user.overlay.";

/// The whole tree under `root` as a well-formed tar (sorted, deterministic, PAX for long
/// names/xattrs). `root` itself is not an entry.
pub fn write_tree<W: Write>(root: &Path, w: W) -> Result<W, ArchiveError> {
    let mut tw = TarWriter::new(w);
    tw.append_children(root, b"", Source::Tree)?;
    tw.finish()
}

/// One path as a tar named `name`: the entry itself (a symlink stays a link, never
/// followed) and, for a directory, everything below it. What `docker cp` reads from a
/// container.
pub fn write_entry<W: Write>(path: &Path, name: &[u8], w: W) -> Result<W, ArchiveError> {
    let mut tw = TarWriter::new(w);
    let node = Node::read(path.to_path_buf(), name.to_vec(), Source::Tree)?;
    tw.append_node(&node)?;
    if node.is_dir() {
        tw.append_children(&node.abs, &node.rel, Source::Tree)?;
    }
    tw.finish()
}

/// An overlay upper dir as an OCI layer diff: char 0:0 devices -> `.wh.name`, opaque dirs ->
/// `.wh..wh..opq`.
///
/// Upper dirs written with `redirect_dir` or `metacopy` cannot be expressed as a layer (the data
/// or the directory's contents live in a lower layer); they are refused with
/// [`ArchiveError::Unrepresentable`].
pub fn write_overlay_diff<W: Write>(upper: &Path, w: W) -> Result<W, ArchiveError> {
    let mut tw = TarWriter::new(w);
    tw.append_children(upper, b"", Source::OverlayUpper)?;
    tw.finish()
}

/// What changed from `lower` to `upper` (two full trees) as a layer diff with whiteouts for
/// deletions.
///
/// A path is changed when its type, mode, owner, xattrs, device number or symlink target differ,
/// or, for non-directories, its size or modification time (as docker compares; contents are not
/// read). Changed entries are preceded by their parent directories, so the diff applies to a
/// tree in which they were replaced.
pub fn write_tree_diff<W: Write>(lower: &Path, upper: &Path, w: W) -> Result<W, ArchiveError> {
    let mut tw = TarWriter::new(w);
    let mut pending = Vec::new();
    tw.diff_dir(lower, upper, b"", &mut pending)?;
    tw.finish()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A plain tree: every entry as it is.
    Tree,
    /// An overlay upper dir: whiteout devices and opaque markers become OCI whiteouts.
    OverlayUpper,
}

/// One path of a tree, with what is needed to write its header.
struct Node {
    abs: PathBuf,
    rel: Vec<u8>,
    meta: Metadata,
    /// xattrs without overlayfs bookkeeping, sorted by name.
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// `trusted.overlay.*` / `user.overlay.*` xattrs (name without the prefix, value).
    overlay: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Node {
    fn read(abs: PathBuf, rel: Vec<u8>, source: Source) -> Result<Node, ArchiveError> {
        let meta = fs::symlink_metadata(&abs).map_err(|e| ArchiveError::tree(&abs, "lstat", e))?;
        let mut xattrs = Vec::new();
        let mut overlay = Vec::new();
        if !meta.file_type().is_socket() {
            let names = match xattr::list(&abs) {
                Ok(n) => n.collect::<Vec<_>>(),
                Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Vec::new(),
                Err(e) => return Err(ArchiveError::tree(&abs, "list xattrs", e)),
            };
            for name in names {
                let Some(value) = xattr::get(&abs, &name)
                    .map_err(|e| ArchiveError::tree(&abs, "get xattr", e))?
                else {
                    continue;
                };
                let name = name.as_bytes().to_vec();
                let prefix = if name.starts_with(OVERLAY_PREFIX) {
                    Some(OVERLAY_PREFIX)
                } else if source == Source::OverlayUpper && name.starts_with(USER_OVERLAY_PREFIX) {
                    Some(USER_OVERLAY_PREFIX)
                } else {
                    None
                };
                match prefix {
                    Some(p) => overlay.push((name[p.len()..].to_vec(), value)),
                    None => xattrs.push((name, value)),
                }
            }
            xattrs.sort();
        }
        Ok(Node {
            abs,
            rel,
            meta,
            xattrs,
            overlay,
        })
    }

    fn is_dir(&self) -> bool {
        self.meta.is_dir()
    }

    fn overlay_flag(&self, key: &[u8]) -> Option<&[u8]> {
        self.overlay
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    fn is_whiteout_device(&self) -> bool {
        self.meta.file_type().is_char_device() && self.meta.rdev() == 0
    }

    fn symlink_target(&self) -> Result<Vec<u8>, ArchiveError> {
        fs::read_link(&self.abs)
            .map(|t| t.into_os_string().as_bytes().to_vec())
            .map_err(|e| ArchiveError::tree(&self.abs, "readlink", e))
    }
}

/// The names in `dir`, in byte order.
fn sorted_children(dir: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let mut names = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| ArchiveError::tree(dir, "read directory", e))? {
        let ent = ent.map_err(|e| ArchiveError::tree(dir, "read directory", e))?;
        names.push(ent.file_name().as_bytes().to_vec());
    }
    names.sort();
    Ok(names)
}

fn rel_join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
    v.extend_from_slice(dir);
    if !dir.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

/// The header fields of one entry.
struct Fields {
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    dev: (u64, u64),
}

impl Fields {
    fn of(meta: &Metadata, typeflag: u8, size: u64) -> Fields {
        let rdev = meta.rdev();
        Fields {
            typeflag,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            size,
            dev: if matches!(typeflag, b'3' | b'4') {
                (libc::major(rdev) as u64, libc::minor(rdev) as u64)
            } else {
                (0, 0)
            },
        }
    }
}

const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

struct TarWriter<W: Write> {
    w: BufWriter<W>,
    buf: Vec<u8>,
    /// (dev, ino) of multiply linked files already written -> their entry name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarWriter<W> {
    fn new(w: W) -> Self {
        TarWriter {
            w: BufWriter::with_capacity(WRITE_BUFFER, w),
            buf: vec![0; WRITE_BUFFER],
            links: HashMap::new(),
        }
    }

    fn finish(mut self) -> Result<W, ArchiveError> {
        self.w
            .write_all(&[0u8; 2 * BLOCK])
            .map_err(ArchiveError::Write)?;
        self.w.flush().map_err(ArchiveError::Write)?;
        self.w
            .into_inner()
            .map_err(|e| ArchiveError::Write(e.into_error()))
    }

    fn append_children(
        &mut self,
        dir: &Path,
        rel: &[u8],
        source: Source,
    ) -> Result<(), ArchiveError> {
        for name in sorted_children(dir)? {
            let node = Node::read(
                dir.join(OsStr::from_bytes(&name)),
                rel_join(rel, &name),
                source,
            )?;
            if source == Source::OverlayUpper {
                for key in [&b"redirect"[..], b"metacopy"] {
                    if node.overlay_flag(key).is_some() {
                        return Err(ArchiveError::Unrepresentable {
                            path: node.abs.clone(),
                            reason: format!(
                                "overlayfs {} entry: its contents live in a lower layer",
                                String::from_utf8_lossy(key)
                            ),
                        });
                    }
                }
                if node.is_whiteout_device() {
                    let mut wh = b".wh.".to_vec();
                    wh.extend_from_slice(&name);
                    self.append_whiteout(&rel_join(rel, &wh), &node.meta)?;
                    continue;
                }
            }
            self.append_node(&node)?;
            if node.is_dir() {
                if source == Source::OverlayUpper && node.overlay_flag(b"opaque") == Some(b"y") {
                    self.append_whiteout(&rel_join(&node.rel, b".wh..wh..opq"), &node.meta)?;
                }
                self.append_children(&node.abs, &node.rel, source)?;
            }
        }
        Ok(())
    }

    /// Compares the children of `lower` and `upper`; `pending` holds the ancestor directories
    /// not written yet (written before the first change below them).
    fn diff_dir(
        &mut self,
        lower: &Path,
        upper: &Path,
        rel: &[u8],
        pending: &mut Vec<Node>,
    ) -> Result<(), ArchiveError> {
        let lower_names = sorted_children(lower)?;
        let upper_names = sorted_children(upper)?;
        let (mut i, mut j) = (0, 0);
        while i < lower_names.len() || j < upper_names.len() {
            let order = match (lower_names.get(i), upper_names.get(j)) {
                (Some(l), Some(u)) => l.cmp(u),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    // Deleted.
                    let name = &lower_names[i];
                    let l = Node::read(
                        lower.join(OsStr::from_bytes(name)),
                        rel_join(rel, name),
                        Source::Tree,
                    )?;
                    self.flush_pending(pending)?;
                    let mut wh = b".wh.".to_vec();
                    wh.extend_from_slice(name);
                    self.append_whiteout(&rel_join(rel, &wh), &l.meta)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    // Added.
                    let name = &upper_names[j];
                    let u = Node::read(
                        upper.join(OsStr::from_bytes(name)),
                        rel_join(rel, name),
                        Source::Tree,
                    )?;
                    self.flush_pending(pending)?;
                    self.append_node(&u)?;
                    if u.is_dir() {
                        self.append_children(&u.abs, &u.rel, Source::Tree)?;
                    }
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let name = &upper_names[j];
                    let l = Node::read(
                        lower.join(OsStr::from_bytes(name)),
                        rel_join(rel, name),
                        Source::Tree,
                    )?;
                    let u = Node::read(
                        upper.join(OsStr::from_bytes(name)),
                        rel_join(rel, name),
                        Source::Tree,
                    )?;
                    if l.is_dir() && u.is_dir() {
                        let depth = pending.len();
                        let (l_abs, u_abs, u_rel) = (l.abs.clone(), u.abs.clone(), u.rel.clone());
                        if dir_changed(&l, &u) {
                            self.flush_pending(pending)?;
                            self.append_node(&u)?;
                        } else {
                            pending.push(u);
                        }
                        self.diff_dir(&l_abs, &u_abs, &u_rel, pending)?;
                        pending.truncate(depth);
                    } else if node_changed(&l, &u)? {
                        self.flush_pending(pending)?;
                        self.append_node(&u)?;
                        if u.is_dir() {
                            self.append_children(&u.abs, &u.rel, Source::Tree)?;
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    fn flush_pending(&mut self, pending: &mut Vec<Node>) -> Result<(), ArchiveError> {
        for node in pending.drain(..) {
            self.append_node(&node)?;
        }
        Ok(())
    }

    /// An OCI whiteout: an empty regular file carrying the owner and time of what it hides.
    fn append_whiteout(&mut self, rel: &[u8], meta: &Metadata) -> Result<(), ArchiveError> {
        let mut f = Fields::of(meta, b'0', 0);
        f.mode &= 0o777;
        self.write_header(rel, &f, None, &[])
    }

    fn append_node(&mut self, node: &Node) -> Result<(), ArchiveError> {
        let ft = node.meta.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        if !ft.is_dir() && node.meta.nlink() > 1 {
            let key = (node.meta.dev(), node.meta.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                let f = Fields::of(&node.meta, b'1', 0);
                return self.write_header(&node.rel, &f, Some(&first), &node.xattrs);
            }
            self.links.insert(key, node.rel.clone());
        }
        if ft.is_file() {
            let size = node.meta.len();
            let f = Fields::of(&node.meta, b'0', size);
            self.write_header(&node.rel, &f, None, &node.xattrs)?;
            return self.write_file_data(&node.abs, size);
        }
        let (typeflag, link) = if ft.is_dir() {
            (b'5', None)
        } else if ft.is_symlink() {
            (b'2', Some(node.symlink_target()?))
        } else if ft.is_char_device() {
            (b'3', None)
        } else if ft.is_block_device() {
            (b'4', None)
        } else {
            (b'6', None)
        };
        let f = Fields::of(&node.meta, typeflag, 0);
        if typeflag == b'5' {
            let mut name = node.rel.clone();
            name.push(b'/');
            self.write_header(&name, &f, None, &node.xattrs)
        } else {
            self.write_header(&node.rel, &f, link.as_deref(), &node.xattrs)
        }
    }

    fn write_file_data(&mut self, path: &Path, size: u64) -> Result<(), ArchiveError> {
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| ArchiveError::tree(path, "open", e))?;
        let mut left = size;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(ArchiveError::tree(
                        path,
                        "read",
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("file shrank by {left} bytes while being archived"),
                        ),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::tree(path, "read", e)),
            };
            self.w
                .write_all(&self.buf[..n])
                .map_err(ArchiveError::Write)?;
            left -= n as u64;
        }
        self.pad(size)
    }

    fn pad(&mut self, size: u64) -> Result<(), ArchiveError> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.w
                .write_all(&[0u8; BLOCK][..BLOCK - rem])
                .map_err(ArchiveError::Write)?;
        }
        Ok(())
    }

    fn write_header(
        &mut self,
        name: &[u8],
        f: &Fields,
        link: Option<&[u8]>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), ArchiveError> {
        let mut pax: Vec<u8> = Vec::new();
        let split = split_ustar_name(name);
        if split.is_none() {
            pax_record(&mut pax, b"path", name);
        }
        if let Some(l) = link {
            if l.len() > 100 {
                pax_record(&mut pax, b"linkpath", l);
            }
        }
        if f.uid > MAX_OCTAL_7 {
            pax_record(&mut pax, b"uid", f.uid.to_string().as_bytes());
        }
        if f.gid > MAX_OCTAL_7 {
            pax_record(&mut pax, b"gid", f.gid.to_string().as_bytes());
        }
        if f.size > MAX_OCTAL_11 {
            pax_record(&mut pax, b"size", f.size.to_string().as_bytes());
        }
        if f.mtime < 0 || f.mtime as u64 > MAX_OCTAL_11 {
            pax_record(&mut pax, b"mtime", f.mtime.to_string().as_bytes());
        }
        for (k, v) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax_record(&mut pax, &key, v);
        }
        let mtime = f.mtime.clamp(0, MAX_OCTAL_11 as i64) as u64;
        if !pax.is_empty() {
            // GNU tar names these `./PaxHeaders.<pid>/<base>`; a fixed directory keeps the
            // output deterministic.
            let base = name
                .rsplit(|&b| b == b'/')
                .find(|c| !c.is_empty())
                .unwrap_or(b"entry");
            let base = &base[..base.len().min(80)];
            let mut pax_name = b"PaxHeaders/".to_vec();
            pax_name.extend_from_slice(base);
            let hf = Fields {
                typeflag: b'x',
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: mtime as i64,
                size: pax.len() as u64,
                dev: (0, 0),
            };
            let block = ustar_block(&pax_name, Some((b"", &pax_name)), &hf, None, mtime);
            self.w.write_all(&block).map_err(ArchiveError::Write)?;
            self.w.write_all(&pax).map_err(ArchiveError::Write)?;
            self.pad(pax.len() as u64)?;
        }
        let link = link.map(|l| &l[..l.len().min(100)]);
        let block = ustar_block(name, split, f, link, mtime);
        self.w.write_all(&block).map_err(ArchiveError::Write)
    }
}

/// Splits `name` into ustar `prefix` and `name` fields, if it fits.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    // The prefix is at most 155 bytes and ends before a '/', the rest is at most 100 bytes.
    let limit = name.len().min(156);
    let pos = name[..limit]
        .iter()
        .rposition(|&b| b == b'/')
        .filter(|&p| p > 0 && name.len() - p - 1 <= 100 && name.len() - p - 1 > 0)?;
    Some((&name[..pos], &name[pos + 1..]))
}

fn ustar_block(
    name: &[u8],
    split: Option<(&[u8], &[u8])>,
    f: &Fields,
    link: Option<&[u8]>,
    mtime: u64,
) -> [u8; BLOCK] {
    let mut h = tar::Header::new_ustar();
    h.set_mode(f.mode);
    h.set_uid(f.uid.min(MAX_OCTAL_7));
    h.set_gid(f.gid.min(MAX_OCTAL_7));
    h.set_size(f.size);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::new(f.typeflag));
    {
        let u = h.as_ustar_mut().expect("a ustar header");
        let (prefix, rest) = split.unwrap_or((b"", &name[..name.len().min(100)]));
        u.prefix[..prefix.len()].copy_from_slice(prefix);
        u.name[..rest.len()].copy_from_slice(rest);
        if let Some(l) = link {
            u.linkname[..l.len()].copy_from_slice(l);
        }
    }
    if matches!(f.typeflag, b'3' | b'4') {
        // Device numbers beyond 21 bits are not representable in ustar and do not occur on Linux
        // (majors are 12 bits, minors 20).
        let _ = h.set_device_major(f.dev.0 as u32);
        let _ = h.set_device_minor(f.dev.1 as u32);
    }
    h.set_cksum();
    let mut out = [0u8; BLOCK];
    out.copy_from_slice(h.as_bytes());
    out
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `len` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Directories differ in what docker compares: mode, owner, xattrs (not times: adding a child
/// changes the mtime, and the child itself is the change).
fn dir_changed(l: &Node, u: &Node) -> bool {
    l.meta.mode() != u.meta.mode()
        || l.meta.uid() != u.meta.uid()
        || l.meta.gid() != u.meta.gid()
        || l.xattrs != u.xattrs
}

fn node_changed(l: &Node, u: &Node) -> Result<bool, ArchiveError> {
    if l.meta.dev() == u.meta.dev() && l.meta.ino() == u.meta.ino() {
        return Ok(false);
    }
    let (lm, um) = (&l.meta, &u.meta);
    if lm.mode() != um.mode()
        || lm.uid() != um.uid()
        || lm.gid() != um.gid()
        || lm.rdev() != um.rdev()
        || l.xattrs != u.xattrs
    {
        return Ok(true);
    }
    if um.is_dir() {
        return Ok(false);
    }
    if lm.len() != um.len() || lm.mtime() != um.mtime() || lm.mtime_nsec() != um.mtime_nsec() {
        return Ok(true);
    }
    if um.file_type().is_symlink() {
        return Ok(l.symlink_target()? != u.symlink_target()?);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"abc");
        assert_eq!(v, b"12 path=abc\n");
        let mut v = Vec::new();
        pax_record(&mut v, b"k", b"1234");
        assert_eq!(v, b"9 k=1234\n");
        // 1 + 6 + 3 = 10 bytes of body: with one digit it would be 11, which needs two digits.
        let mut v = Vec::new();
        pax_record(&mut v, b"k", b"123456");
        assert_eq!(v, b"12 k=123456\n");
    }

    #[test]
    fn ustar_split_uses_prefix_when_possible() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let (p, n) = split_ustar_name(long.as_bytes()).unwrap();
        assert_eq!(p.len(), 120);
        assert_eq!(n.len(), 90);
        assert!(split_ustar_name("x".repeat(101).as_bytes()).is_none());
        assert!(
            split_ustar_name(format!("{}/{}", "d".repeat(10), "f".repeat(101)).as_bytes())
                .is_none()
        );
    }
}
