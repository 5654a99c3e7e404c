//! Helpers shared by the integration tests: hand-made tar streams (including malicious ones the
//! `tar` crate's builder would refuse to write) and a tree snapshot for comparing directories.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

/// One raw tar header; unset fields get sensible defaults.
#[derive(Clone)]
pub struct Hdr {
    pub name: Vec<u8>,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub dev: (u32, u32),
    pub data: Vec<u8>,
}

impl Hdr {
    pub fn new(name: &str, typeflag: u8) -> Hdr {
        Hdr {
            name: name.as_bytes().to_vec(),
            typeflag,
            mode: if typeflag == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: Vec::new(),
            dev: (0, 0),
            data: Vec::new(),
        }
    }
    pub fn file(name: &str, data: &[u8]) -> Hdr {
        let mut h = Hdr::new(name, b'0');
        h.data = data.to_vec();
        h
    }
    pub fn dir(name: &str) -> Hdr {
        Hdr::new(name, b'5')
    }
    pub fn symlink(name: &str, target: &str) -> Hdr {
        let mut h = Hdr::new(name, b'2');
        h.link = target.as_bytes().to_vec();
        h.mode = 0o777;
        h
    }
    pub fn hardlink(name: &str, target: &str) -> Hdr {
        let mut h = Hdr::new(name, b'1');
        h.link = target.as_bytes().to_vec();
        h
    }
    pub fn mode(mut self, mode: u32) -> Hdr {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Hdr {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Hdr {
        self.mtime = mtime;
        self
    }
}

/// A tar stream built block by block.
#[derive(Default)]
pub struct RawTar {
    pub buf: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    pub fn add(&mut self, h: Hdr) -> &mut Self {
        let mut th = tar::Header::new_ustar();
        {
            let u = th.as_ustar_mut().unwrap();
            u.name[..h.name.len()].copy_from_slice(&h.name);
            u.linkname[..h.link.len()].copy_from_slice(&h.link);
        }
        th.set_mode(h.mode);
        th.set_uid(h.uid);
        th.set_gid(h.gid);
        th.set_mtime(h.mtime);
        th.set_size(h.data.len() as u64);
        th.set_entry_type(tar::EntryType::new(h.typeflag));
        if matches!(h.typeflag, b'3' | b'4') {
            th.set_device_major(h.dev.0).unwrap();
            th.set_device_minor(h.dev.1).unwrap();
        }
        th.set_cksum();
        self.buf.extend_from_slice(th.as_bytes());
        self.buf.extend_from_slice(&h.data);
        let pad = (512 - h.data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Hdr::new("PaxHeaders/x", b'x');
        h.data = data;
        self.add(h)
    }

    /// The stream with its two end blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut v = self.buf.clone();
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

/// What a tree looks like, path by path, for comparisons.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Desc {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub rdev: u64,
    /// For files with several links: the first path (in sorted order) of the same inode.
    pub link_group: Option<String>,
}

pub fn snapshot(root: &Path) -> BTreeMap<String, Desc> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, Desc>,
    inodes: &mut BTreeMap<u64, String>,
) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let p = dir.join(&name);
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let (kind, content) = if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
            )
        } else if ft.is_file() {
            ("file", fs::read(&p).unwrap())
        } else if ft.is_char_device() {
            ("char", Vec::new())
        } else if ft.is_block_device() {
            ("block", Vec::new())
        } else if ft.is_fifo() {
            ("fifo", Vec::new())
        } else {
            ("socket", Vec::new())
        };
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&p)
            .unwrap()
            .map(|n| {
                (
                    n.as_bytes().to_vec(),
                    xattr::get(&p, &n).unwrap().unwrap_or_default(),
                )
            })
            .collect();
        xattrs.sort();
        let link_group = if !ft.is_dir() && m.nlink() > 1 {
            Some(inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone())
        } else {
            None
        };
        out.insert(
            rel,
            Desc {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: if ft.is_symlink() { 0 } else { m.mtime() },
                content,
                xattrs,
                rdev: m.rdev(),
                link_group,
            },
        );
        if ft.is_dir() {
            walk(root, &p, out, inodes);
        }
    }
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-archive-")
        .tempdir()
        .unwrap()
}
