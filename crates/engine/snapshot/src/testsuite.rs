//! The test suite every [`Snapshotter`] runs, like containerd's `snapshots/testsuite`.
//!
//! Each check takes a [`Factory`] that opens a snapshotter at a root, makes its own root under
//! `/tmp/berth-snapshot-*`, mounts for real (it needs root and, for overlay, a kernel where
//! overlay works) and panics on failure. Guards unmount and delete everything it made, also
//! when a check fails. Whiteouts are written the way [`Snapshotter::layer_target`] asks, so the
//! same checks judge overlay and copying snapshotters.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_core::{ErrorKind, HasKind};
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::{mount_all, unmount, DiffSource, Kind, Mount, SnapshotError, Snapshotter};

/// Opens a snapshotter rooted at the given directory.
pub type Factory<'a> = &'a dyn Fn(&Path) -> Result<Box<dyn Snapshotter>, SnapshotError>;

/// A scratch directory under /tmp, deleted on drop (without crossing into mounts).
pub struct TempRoot {
    path: PathBuf,
}

impl TempRoot {
    /// A fresh, empty `/tmp/berth-snapshot-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> TempRoot {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!(
            "/tmp/berth-snapshot-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = crate::fsutil::remove_tree(&path);
        fs::create_dir_all(&path).expect("create test root");
        TempRoot { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = crate::fsutil::remove_tree(&self.path);
    }
}

/// Mounts on creation, unmounts on drop.
pub struct MountGuard {
    target: PathBuf,
}

impl MountGuard {
    /// Mounts `mounts` at a new directory `target`.
    pub fn new(mounts: &[Mount], target: &Path) -> MountGuard {
        fs::create_dir_all(target).expect("create mount point");
        mount_all(mounts, target).unwrap_or_else(|e| panic!("mount {mounts:?}: {e}"));
        MountGuard {
            target: target.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.target) {
            eprintln!("unmount {}: {e}", self.target.display());
        }
    }
}

/// One change in a layer diff.
#[derive(Debug, Clone)]
pub enum Change<'a> {
    /// A regular file with contents (parents created).
    File(&'a str, &'a str),
    /// A whiteout: the path is deleted.
    Delete(&'a str),
    /// An opaque directory: whatever lower layers had in it is hidden.
    Opaque(&'a str),
}

/// Writes `changes` into active `key` as an image unpacker would, honouring
/// [`crate::LayerTarget::overlay_whiteouts`].
pub fn apply(s: &dyn Snapshotter, key: &str, changes: &[Change]) {
    let target = s.layer_target(key).expect("layer_target");
    for c in changes {
        match *c {
            Change::File(p, contents) => {
                let path = target.dir.join(p);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, contents).unwrap();
            }
            Change::Delete(p) => {
                let path = target.dir.join(p);
                if target.overlay_whiteouts {
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).expect("mknod whiteout");
                } else {
                    crate::fsutil::remove_tree(&path).unwrap();
                }
            }
            Change::Opaque(p) => {
                let path = target.dir.join(p);
                if target.overlay_whiteouts {
                    fs::create_dir_all(&path).unwrap();
                    xattr::set(&path, "trusted.overlay.opaque", b"y").expect("set opaque");
                } else {
                    crate::fsutil::remove_tree(&path).unwrap();
                    fs::create_dir_all(&path).unwrap();
                }
            }
        }
    }
}

/// Prepares a snapshot on `parent`, applies `changes` and commits it as `name`.
pub fn layer(s: &dyn Snapshotter, name: &str, parent: Option<&str>, changes: &[Change]) {
    let key = format!("extract-{name}");
    s.prepare(&key, parent).expect("prepare layer");
    apply(s, &key, changes);
    s.commit(name, &key).expect("commit layer");
}

fn read(dir: &Path, p: &str) -> Option<String> {
    match fs::read_to_string(dir.join(p)) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {p}: {e}"),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn kind_of<T: std::fmt::Debug>(r: Result<T, SnapshotError>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

/// prepare/commit/view along a chain; stat and list; views are read-only.
pub fn chains(new: Factory) {
    let root = TempRoot::new("chains");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    layer(
        s,
        "sha256:l1",
        None,
        &[Change::File("a/x", "1"), Change::File("f", "f1")],
    );
    layer(
        s,
        "sha256:l2",
        Some("sha256:l1"),
        &[Change::File("a/y", "2"), Change::File("f", "f2")],
    );

    let m = s.view("view-top", Some("sha256:l2")).unwrap();
    let mnt = MountGuard::new(&m, &root.path().join("top"));
    assert_eq!(read(mnt.path(), "a/x").as_deref(), Some("1"));
    assert_eq!(read(mnt.path(), "a/y").as_deref(), Some("2"));
    assert_eq!(read(mnt.path(), "f").as_deref(), Some("f2"));
    let err = fs::write(mnt.path().join("new"), "x").expect_err("a view is read-only");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));

    let m = s.view("view-bottom", Some("sha256:l1")).unwrap();
    let bottom = MountGuard::new(&m, &root.path().join("bottom"));
    assert_eq!(names(bottom.path()), ["a", "f"]);
    assert_eq!(read(bottom.path(), "f").as_deref(), Some("f1"));
    assert_eq!(read(bottom.path(), "a/y"), None);

    let m = s.view("view-empty", None).unwrap();
    let empty = MountGuard::new(&m, &root.path().join("empty"));
    assert!(names(empty.path()).is_empty());

    // A committed layer's own mounts show the stack up to it.
    let m = s.mounts("sha256:l2").unwrap();
    let committed = MountGuard::new(&m, &root.path().join("committed"));
    assert_eq!(read(committed.path(), "a/x").as_deref(), Some("1"));
    assert!(fs::write(committed.path().join("new"), "x").is_err());

    let l2 = s.stat("sha256:l2").unwrap();
    assert_eq!(l2.kind, Kind::Committed);
    assert_eq!(l2.parent.as_deref(), Some("sha256:l1"));
    let v = s.stat("view-top").unwrap();
    assert_eq!(v.kind, Kind::View);
    assert_eq!(v.parent.as_deref(), Some("sha256:l2"));
    assert!(v.created > 1_600_000_000);
    assert_eq!(kind_of(s.stat("extract-sha256:l2")), ErrorKind::NotFound);
    let listed: Vec<(String, Kind)> = s
        .list()
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.kind))
        .collect();
    assert_eq!(
        listed,
        [
            ("sha256:l1".to_string(), Kind::Committed),
            ("sha256:l2".to_string(), Kind::Committed),
            ("view-bottom".to_string(), Kind::View),
            ("view-empty".to_string(), Kind::View),
            ("view-top".to_string(), Kind::View),
        ]
    );
    // Views can be neither committed nor unpacked into.
    assert_eq!(kind_of(s.commit("x", "view-top")), ErrorKind::Conflict);
    assert_eq!(kind_of(s.layer_target("view-top")), ErrorKind::Conflict);
    assert_eq!(kind_of(s.layer_target("sha256:l1")), ErrorKind::Conflict);
}

/// Whiteouts and opaque directories hide what lower layers had, through a real mount.
pub fn whiteouts(new: Factory) {
    let root = TempRoot::new("whiteouts");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    layer(
        s,
        "l1",
        None,
        &[
            Change::File("f", "gone soon"),
            Change::File("d/old", "o"),
            Change::File("d/sub/deep", "o"),
            Change::File("keep/k", "k"),
        ],
    );
    layer(
        s,
        "l2",
        Some("l1"),
        &[
            Change::Delete("f"),
            Change::Opaque("d"),
            Change::File("d/new", "n"),
        ],
    );
    layer(s, "l3", Some("l2"), &[Change::File("top", "t")]);
    for (name, parent) in [("v2", "l2"), ("v3", "l3")] {
        let m = s.view(name, Some(parent)).unwrap();
        let mnt = MountGuard::new(&m, &root.path().join(name));
        assert_eq!(read(mnt.path(), "f"), None, "{name}: whiteout hides f");
        assert_eq!(names(&mnt.path().join("d")), ["new"], "{name}: opaque d");
        assert_eq!(read(mnt.path(), "keep/k").as_deref(), Some("k"));
    }
}

/// A container's changes land in its own layer; the image's layers stay as they were; the
/// container can be committed into a new layer.
pub fn container_changes(new: Factory) {
    let root = TempRoot::new("container");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    layer(
        s,
        "base",
        None,
        &[
            Change::File("etc/conf", "a"),
            Change::File("bin/tool", "t"),
            Change::File("tmp/gone", "g"),
        ],
    );
    let m = s.prepare("container-1", Some("base")).unwrap();
    {
        let rootfs = MountGuard::new(&m, &root.path().join("rootfs"));
        fs::write(rootfs.path().join("etc/conf"), "b").unwrap();
        fs::create_dir(rootfs.path().join("data")).unwrap();
        fs::write(rootfs.path().join("data/new"), "n").unwrap();
        fs::remove_file(rootfs.path().join("tmp/gone")).unwrap();
    }
    match s.diff_source("container-1").unwrap() {
        DiffSource::OverlayUpper(upper) => {
            assert_eq!(read(&upper, "etc/conf").as_deref(), Some("b"));
            assert_eq!(read(&upper, "data/new").as_deref(), Some("n"));
            assert!(!upper.join("bin").exists(), "unchanged dirs stay below");
            let wh = fs::symlink_metadata(upper.join("tmp/gone")).unwrap();
            assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        }
        DiffSource::Trees { lower, upper } => {
            let lower = lower.expect("a parent tree");
            assert_eq!(read(&lower, "etc/conf").as_deref(), Some("a"));
            assert_eq!(read(&lower, "tmp/gone").as_deref(), Some("g"));
            assert_eq!(read(&upper, "etc/conf").as_deref(), Some("b"));
            assert_eq!(read(&upper, "tmp/gone"), None);
            assert_eq!(read(&upper, "bin/tool").as_deref(), Some("t"));
        }
    }
    let m = s.view("base-view", Some("base")).unwrap();
    let base = MountGuard::new(&m, &root.path().join("base"));
    assert_eq!(read(base.path(), "etc/conf").as_deref(), Some("a"));
    assert_eq!(read(base.path(), "tmp/gone").as_deref(), Some("g"));
    assert_eq!(read(base.path(), "data/new"), None);

    s.commit("committed-image", "container-1").unwrap();
    assert_eq!(kind_of(s.stat("container-1")), ErrorKind::NotFound);
    let m = s.view("image-view", Some("committed-image")).unwrap();
    let img = MountGuard::new(&m, &root.path().join("image"));
    assert_eq!(read(img.path(), "etc/conf").as_deref(), Some("b"));
    assert_eq!(read(img.path(), "data/new").as_deref(), Some("n"));
    assert_eq!(read(img.path(), "tmp/gone"), None);
    assert_eq!(read(img.path(), "bin/tool").as_deref(), Some("t"));
}

fn mount_source_dir(m: &[Mount]) -> PathBuf {
    let m = &m[0];
    if m.kind == "bind" {
        return PathBuf::from(&m.source);
    }
    let upper = m
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .expect("an active overlay has an upper dir");
    PathBuf::from(upper)
}

/// Errors for existing and missing keys, parents in use, and removal of files.
pub fn remove_rules(new: Factory) {
    let root = TempRoot::new("remove");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    layer(s, "p", None, &[Change::File("p", "p")]);
    layer(s, "c", Some("p"), &[Change::File("c", "c")]);
    assert_eq!(kind_of(s.remove("p")), ErrorKind::Conflict);
    assert_eq!(kind_of(s.prepare("c", None)), ErrorKind::AlreadyExists);
    assert_eq!(
        kind_of(s.prepare("x", Some("missing"))),
        ErrorKind::NotFound
    );
    assert_eq!(kind_of(s.prepare("", None)), ErrorKind::InvalidArgument);
    assert_eq!(kind_of(s.remove("missing")), ErrorKind::NotFound);
    assert_eq!(kind_of(s.commit("y", "missing")), ErrorKind::NotFound);

    let m = s.prepare("active", Some("c")).unwrap();
    let dir = mount_source_dir(&m);
    assert!(dir.is_dir());
    assert_eq!(
        kind_of(s.prepare("on-active", Some("active"))),
        ErrorKind::InvalidArgument
    );
    assert_eq!(kind_of(s.commit("p", "active")), ErrorKind::AlreadyExists);
    // The failed commit left the active snapshot alone.
    assert_eq!(s.stat("active").unwrap().kind, Kind::Active);
    s.view("v", Some("c")).unwrap();
    assert_eq!(kind_of(s.remove("c")), ErrorKind::Conflict);
    s.remove("active").unwrap();
    assert!(
        !dir.exists(),
        "removing an active snapshot deletes its files"
    );
    assert_eq!(
        kind_of(s.remove("c")),
        ErrorKind::Conflict,
        "the view still uses c"
    );
    s.remove("v").unwrap();
    s.remove("c").unwrap();
    s.remove("p").unwrap();
    assert!(s.list().unwrap().is_empty());
    let left = names(&root.path().join("store/snapshots"));
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// 128 layers with long paths, mounted for real, as a view and under a container.
pub fn deep_stack(new: Factory) {
    let root = TempRoot::new("deep-stack-with-a-rather-long-directory-name-to-pass-a-page");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    let mut parent: Option<String> = None;
    for i in 0..128 {
        let name = format!("sha256:{i:064x}");
        let file = format!("layer-{i}");
        let top = i.to_string();
        layer(
            s,
            &name,
            parent.as_deref(),
            &[Change::File(&file, "x"), Change::File("top", &top)],
        );
        parent = Some(name);
    }
    let m = s.view("deep-view", parent.as_deref()).unwrap();
    let view = MountGuard::new(&m, &root.path().join("view"));
    assert_eq!(read(view.path(), "top").as_deref(), Some("127"));
    assert_eq!(names(view.path()).len(), 129);
    assert_eq!(read(view.path(), "layer-0").as_deref(), Some("x"));

    let m = s.prepare("deep-container", parent.as_deref()).unwrap();
    let rootfs = MountGuard::new(&m, &root.path().join("rootfs"));
    fs::write(rootfs.path().join("top"), "mine").unwrap();
    assert_eq!(read(rootfs.path(), "layer-5").as_deref(), Some("x"));
    // The view shares the layers and does not see the container's write.
    assert_eq!(read(view.path(), "top").as_deref(), Some("127"));
}

/// Reopening the root keeps every snapshot, its files and its mounts; new ids do not clash.
pub fn restart(new: Factory) {
    let root = TempRoot::new("restart");
    let store = root.path().join("store");
    {
        let s = new(&store).unwrap();
        layer(s.as_ref(), "l1", None, &[Change::File("a", "1")]);
        layer(s.as_ref(), "l2", Some("l1"), &[Change::File("b", "2")]);
        let m = s.prepare("ctr", Some("l2")).unwrap();
        let rootfs = MountGuard::new(&m, &root.path().join("before"));
        fs::write(rootfs.path().join("c"), "3").unwrap();
    }
    let s = new(&store).unwrap();
    let before: Vec<String> = s.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(before, ["ctr", "l1", "l2"]);
    assert_eq!(s.stat("ctr").unwrap().kind, Kind::Active);
    let m = s.mounts("ctr").unwrap();
    {
        let rootfs = MountGuard::new(&m, &root.path().join("after"));
        assert_eq!(read(rootfs.path(), "a").as_deref(), Some("1"));
        assert_eq!(read(rootfs.path(), "b").as_deref(), Some("2"));
        assert_eq!(read(rootfs.path(), "c").as_deref(), Some("3"));
    }
    let fresh = s.prepare("fresh", Some("l1")).unwrap();
    assert_ne!(mount_source_dir(&fresh), mount_source_dir(&m));
    let rootfs = MountGuard::new(&fresh, &root.path().join("fresh"));
    assert_eq!(read(rootfs.path(), "c"), None);
}

/// What a crash can leave (a temporary dir, a dir whose record never committed) is deleted
/// on open, and the records are intact.
pub fn crash_leftovers(new: Factory) {
    let root = TempRoot::new("leftovers");
    let store = root.path().join("store");
    {
        let s = new(&store).unwrap();
        layer(s.as_ref(), "l1", None, &[Change::File("a", "1")]);
    }
    let snapshots = store.join("snapshots");
    let kept = names(&snapshots);
    assert_eq!(kept.len(), 1);
    for junk in ["tmp-2", "2", "99"] {
        fs::create_dir_all(snapshots.join(junk).join("fs")).unwrap();
        fs::write(snapshots.join(junk).join("fs/f"), "x").unwrap();
    }
    let s = new(&store).unwrap();
    assert_eq!(names(&snapshots), kept);
    assert_eq!(s.stat("l1").unwrap().kind, Kind::Committed);
    // The id a crashed create had taken is handed out again without trouble.
    layer(s.as_ref(), "l2", Some("l1"), &[Change::File("b", "2")]);
    let m = s.view("v", Some("l2")).unwrap();
    let v = MountGuard::new(&m, &root.path().join("v"));
    assert_eq!(names(v.path()), ["a", "b"]);
}

/// Keys are only keys: slashes and dots never reach a path.
pub fn arbitrary_keys(new: Factory) {
    let root = TempRoot::new("keys");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    let evil = "../../../../escape/..";
    layer(s, evil, None, &[Change::File("a", "1")]);
    s.prepare("with/slash and space", Some(evil)).unwrap();
    assert!(!root.path().join("escape").exists());
    assert!(!Path::new("/escape").exists());
    assert_eq!(
        s.stat("with/slash and space").unwrap().parent.as_deref(),
        Some(evil)
    );
    s.remove("with/slash and space").unwrap();
    s.remove(evil).unwrap();
    assert!(s.list().unwrap().is_empty());
}

/// Usage counts the snapshot's own files.
pub fn usage(new: Factory) {
    let root = TempRoot::new("usage");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    s.prepare("u", None).unwrap();
    let empty = s.usage("u").unwrap();
    assert_eq!(empty.inodes, 1);
    let dir = s.layer_target("u").unwrap().dir;
    let big = vec![7u8; 256 * 1024];
    fs::write(dir.join("big"), &big).unwrap();
    fs::hard_link(dir.join("big"), dir.join("big-link")).unwrap();
    fs::create_dir(dir.join("d")).unwrap();
    fs::write(dir.join("d/small"), "s").unwrap();
    let u = s.usage("u").unwrap();
    assert_eq!(u.inodes, 4, "root, big (linked twice), d, d/small");
    assert!(
        u.size >= 256 * 1024 && u.size < 2 * 256 * 1024 + 64 * 1024,
        "{u:?}"
    );
    assert_eq!(kind_of(s.usage("missing")), ErrorKind::NotFound);
}

/// Owners, modes, xattrs, hard links, symlinks, devices, fifos and times survive into a
/// snapshot on top of the layer that has them (for the copying snapshotter: the copy).
pub fn metadata_preserved(new: Factory) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    use nix::unistd::{fchownat, Gid, Uid};
    use std::os::unix::fs::{symlink, PermissionsExt};

    let root = TempRoot::new("metadata");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    s.prepare("l1", None).unwrap();
    let dir = s.layer_target("l1").unwrap().dir;
    let at = nix::fcntl::AT_FDCWD;
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    fs::create_dir(dir.join("d")).unwrap();
    fs::write(dir.join("d/suid"), "s").unwrap();
    fchownat(
        at,
        &dir.join("d/suid"),
        Some(Uid::from_raw(1000)),
        Some(Gid::from_raw(2000)),
        nofollow,
    )
    .unwrap();
    fs::set_permissions(dir.join("d/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    xattr::set(dir.join("d/suid"), "user.berth", b"kept").unwrap();
    fs::hard_link(dir.join("d/suid"), dir.join("link")).unwrap();
    symlink("d/suid", dir.join("sym")).unwrap();
    fchownat(
        at,
        &dir.join("sym"),
        Some(Uid::from_raw(7)),
        Some(Gid::from_raw(8)),
        nofollow,
    )
    .unwrap();
    let null_dev = nix::sys::stat::makedev(1, 3);
    mknod(
        &dir.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        null_dev,
    )
    .unwrap();
    mknod(
        &dir.join("fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o640),
        0,
    )
    .unwrap();
    // mknod honours the umask; chmod does not.
    fs::set_permissions(dir.join("null"), fs::Permissions::from_mode(0o666)).unwrap();
    let old = TimeSpec::new(1_000_000_000, 5);
    for p in ["d/suid", "d"] {
        utimensat(
            at,
            &dir.join(p),
            &old,
            &old,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
    s.commit("l1-done", "l1").unwrap();
    s.prepare("ctr", Some("l1-done")).unwrap();
    let m = s.mounts("ctr").unwrap();
    let mnt = MountGuard::new(&m, &root.path().join("rootfs"));
    let p = mnt.path();

    let suid = fs::symlink_metadata(p.join("d/suid")).unwrap();
    assert_eq!((suid.uid(), suid.gid()), (1000, 2000));
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    assert_eq!((suid.mtime(), suid.mtime_nsec()), (1_000_000_000, 5));
    assert_eq!(
        xattr::get(p.join("d/suid"), "user.berth")
            .unwrap()
            .as_deref(),
        Some(&b"kept"[..])
    );
    let link = fs::symlink_metadata(p.join("link")).unwrap();
    assert_eq!(link.ino(), suid.ino(), "hard link kept");
    assert_eq!(suid.nlink(), 2);
    let d = fs::symlink_metadata(p.join("d")).unwrap();
    assert_eq!(
        d.mtime(),
        1_000_000_000,
        "directory times set after its contents"
    );
    assert_eq!(fs::read_link(p.join("sym")).unwrap(), Path::new("d/suid"));
    let sym = fs::symlink_metadata(p.join("sym")).unwrap();
    assert_eq!((sym.uid(), sym.gid()), (7, 8));
    let null = fs::symlink_metadata(p.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), null_dev);
    assert_eq!(null.mode() & 0o7777, 0o666);
    let fifo = fs::symlink_metadata(p.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
}

/// Two pulls of the same layer race: both unpack, exactly one commit wins, the loser gets
/// `AlreadyExists` and can remove its active snapshot.
pub fn concurrent_commits(new: Factory) {
    let root = TempRoot::new("race");
    let s = new(&root.path().join("store")).unwrap();
    let s = s.as_ref();
    let results: Vec<Result<(), ErrorKind>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    let key = format!("extract-{i}");
                    s.prepare(&key, None).unwrap();
                    apply(s, &key, &[Change::File("who", &i.to_string())]);
                    let r = s.commit("sha256:same", &key).map_err(|e| e.kind());
                    if r.is_err() {
                        s.remove(&key).unwrap();
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(ErrorKind::AlreadyExists))));
    let infos = s.list().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].name, "sha256:same");
    assert_eq!(names(&root.path().join("store/snapshots")).len(), 1);
}
