//! Copy-up from a (hostile) image directory into an empty volume (needs root: owners,
//! devices, trusted paths).

mod common;

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_core::{ErrorKind, HasKind};
use berth_volume::VolumeError;
use common::{mounted_at, none, tmpfs, Scratch};
use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{chown, mkfifo, Gid, Uid};

fn set_mtime(path: &Path, secs: i64, nsec: i64) {
    let t = TimeSpec::new(secs, nsec);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

fn lchown(path: &Path, uid: u32, gid: u32) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// An image directory with one of everything, and an outside world its links point at.
fn build_source(src: &Path) {
    fs::create_dir_all(src.join("etc/conf.d")).unwrap();
    fs::write(src.join("etc/app.conf"), b"port=80\n").unwrap();
    lchown(&src.join("etc/app.conf"), 1234, 5678);
    chmod(&src.join("etc/app.conf"), 0o4751);
    xattr::set(src.join("etc/app.conf"), "user.origin", b"image").unwrap();
    set_mtime(&src.join("etc/app.conf"), 1_000_000_000, 123_456_789);

    fs::write(src.join("etc/conf.d/a"), b"a").unwrap();
    lchown(&src.join("etc/conf.d"), 42, 43);
    chmod(&src.join("etc/conf.d"), 0o750);
    xattr::set(src.join("etc/conf.d"), "user.dir", b"yes").unwrap();

    // Hard links within the tree, across directories.
    fs::write(src.join("etc/shared"), b"one inode").unwrap();
    fs::hard_link(src.join("etc/shared"), src.join("etc/conf.d/shared-too")).unwrap();
    fs::hard_link(src.join("etc/shared"), src.join("shared-three")).unwrap();

    // Symlinks pointing out of the tree: copied as links, never followed.
    symlink("/etc", src.join("hostetc")).unwrap();
    symlink("../../../../../../etc/passwd", src.join("etc/passwd-link")).unwrap();
    symlink("conf.d/a", src.join("etc/relative")).unwrap();
    lchown(&src.join("etc/relative"), 7, 8);
    set_mtime(&src.join("etc/relative"), 1_200_000_000, 0);

    // Device, fifo, socket.
    fs::create_dir(src.join("dev")).unwrap();
    mknod(
        &src.join("dev/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    chmod(&src.join("dev/null"), 0o666);
    mkfifo(&src.join("dev/pipe"), Mode::from_bits_truncate(0o640)).unwrap();
    lchown(&src.join("dev/pipe"), 99, 98);
    let _sock = std::os::unix::net::UnixListener::bind(src.join("dev/sock")).unwrap();

    fs::create_dir(src.join("empty")).unwrap();
    chmod(&src.join("empty"), 0o500);

    // Last: adding entries changes a directory's times.
    set_mtime(&src.join("etc/conf.d"), 1_100_000_000, 5);
    lchown(src, 1000, 1001);
    chmod(src, 0o710);
}

#[test]
fn copy_up_keeps_everything_and_follows_nothing() {
    let s = Scratch::new();
    let src = s.path().join("image/srv");
    build_source(&src);
    let store = s.open();
    let v = store.create(Some("seeded"), None, none(), none()).unwrap();
    assert!(store.copy_up(&src, "seeded").unwrap());
    let d = &v.mountpoint;

    // The volume's root takes the owner and mode of the source directory.
    let root = fs::metadata(d).unwrap();
    assert_eq!(
        (root.uid(), root.gid(), root.mode() & 0o7777),
        (1000, 1001, 0o710)
    );

    let conf = fs::symlink_metadata(d.join("etc/app.conf")).unwrap();
    assert_eq!(fs::read(d.join("etc/app.conf")).unwrap(), b"port=80\n");
    assert_eq!((conf.uid(), conf.gid()), (1234, 5678));
    assert_eq!(conf.mode() & 0o7777, 0o4751, "set-uid survives the chown");
    assert_eq!(
        (conf.mtime(), conf.mtime_nsec()),
        (1_000_000_000, 123_456_789)
    );
    assert_eq!(
        xattr::get(d.join("etc/app.conf"), "user.origin")
            .unwrap()
            .as_deref(),
        Some(&b"image"[..])
    );

    let dir = fs::symlink_metadata(d.join("etc/conf.d")).unwrap();
    assert_eq!((dir.uid(), dir.gid(), dir.mode() & 0o7777), (42, 43, 0o750));
    assert_eq!(
        (dir.mtime(), dir.mtime_nsec()),
        (1_100_000_000, 5),
        "set after its children"
    );
    assert_eq!(
        xattr::get(d.join("etc/conf.d"), "user.dir")
            .unwrap()
            .as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(
        fs::symlink_metadata(d.join("empty")).unwrap().mode() & 0o7777,
        0o500
    );

    // One inode for the three names, and not the source's inode.
    let a = fs::metadata(d.join("etc/shared")).unwrap();
    let b = fs::metadata(d.join("etc/conf.d/shared-too")).unwrap();
    let c = fs::metadata(d.join("shared-three")).unwrap();
    assert_eq!(a.nlink(), 3);
    assert_eq!((a.ino(), a.ino()), (b.ino(), c.ino()));
    assert_ne!(a.ino(), fs::metadata(src.join("etc/shared")).unwrap().ino());

    // Links are links, with their own owner and times; nothing of the host came in.
    assert_eq!(fs::read_link(d.join("hostetc")).unwrap(), Path::new("/etc"));
    assert_eq!(
        fs::read_link(d.join("etc/passwd-link")).unwrap(),
        Path::new("../../../../../../etc/passwd")
    );
    let rel = fs::symlink_metadata(d.join("etc/relative")).unwrap();
    assert!(rel.file_type().is_symlink());
    assert_eq!((rel.uid(), rel.gid(), rel.mtime()), (7, 8, 1_200_000_000));
    assert!(fs::symlink_metadata(d.join("hostetc"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!d.join("passwd").exists());

    let null = fs::symlink_metadata(d.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let pipe = fs::symlink_metadata(d.join("dev/pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(
        (pipe.uid(), pipe.gid(), pipe.mode() & 0o7777),
        (99, 98, 0o640)
    );
    assert!(fs::symlink_metadata(d.join("dev/sock"))
        .unwrap()
        .file_type()
        .is_socket());

    // The host's /etc was not touched through the copied link.
    assert!(fs::symlink_metadata("/etc").unwrap().is_dir());
}

#[test]
fn copy_up_skips_a_volume_that_is_not_empty() {
    let s = Scratch::new();
    let src = s.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("from-image"), b"image").unwrap();
    chmod(&src, 0o700);
    let store = s.open();
    let v = store.create(Some("used"), None, none(), none()).unwrap();
    fs::write(v.mountpoint.join("mine"), b"user data").unwrap();
    assert!(!store.copy_up(&src, "used").unwrap());
    assert!(!v.mountpoint.join("from-image").exists());
    assert_eq!(fs::metadata(&v.mountpoint).unwrap().mode() & 0o7777, 0o755);

    // A source that does not exist copies nothing.
    let empty = store.create(Some("fresh"), None, none(), none()).unwrap();
    assert!(!store.copy_up(&s.path().join("nope"), "fresh").unwrap());
    assert!(store.copy_up(&src, "fresh").unwrap());
    assert_eq!(
        fs::read(empty.mountpoint.join("from-image")).unwrap(),
        b"image"
    );
    // Once seeded, never again.
    fs::write(src.join("later"), b"x").unwrap();
    assert!(!store.copy_up(&src, "fresh").unwrap());
    assert!(!empty.mountpoint.join("later").exists());

    assert_eq!(
        store.copy_up(&src, "missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_symlinked_source_is_refused_or_resolved_inside_the_root() {
    let s = Scratch::new();
    // The host has a directory the image's symlink names.
    let host = s.path().join("secret");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("key"), b"host secret").unwrap();
    let rootfs = s.path().join("rootfs");
    fs::create_dir_all(rootfs.join("real")).unwrap();
    fs::write(rootfs.join("real/app"), b"image file").unwrap();
    symlink(&host, rootfs.join("data")).unwrap();
    symlink("../../../../real", rootfs.join("rel")).unwrap();

    let store = s.open();
    let v = store.create(Some("vol"), None, none(), none()).unwrap();
    let e = store.copy_up(&rootfs.join("data"), "vol").unwrap_err();
    assert!(matches!(e, VolumeError::SourceIsSymlink { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    fs::write(rootfs.join("file"), b"f").unwrap();
    let e = store.copy_up(&rootfs.join("file"), "vol").unwrap_err();
    assert!(matches!(e, VolumeError::SourceNotDirectory { .. }), "{e}");
    assert_eq!(fs::read_dir(&v.mountpoint).unwrap().count(), 0);

    // In the container, /data is the host path read inside the rootfs: it does not exist.
    assert!(!store
        .copy_up_in_root(&rootfs, Path::new("/data"), "vol")
        .unwrap());
    assert_eq!(fs::read_dir(&v.mountpoint).unwrap().count(), 0);
    // A `..` chain stops at the rootfs: /rel is /real.
    assert!(store
        .copy_up_in_root(&rootfs, Path::new("/rel"), "vol")
        .unwrap());
    assert_eq!(fs::read(v.mountpoint.join("app")).unwrap(), b"image file");
    assert!(!v.mountpoint.join("key").exists());
    let e = store
        .copy_up_in_root(&rootfs, Path::new("/file"), "vol")
        .unwrap_err();
    assert!(matches!(e, VolumeError::SourceNotDirectory { .. }), "{e}");
}

#[test]
fn copy_up_into_a_tmpfs_volume_goes_into_its_mount() {
    let s = Scratch::new();
    let src = s.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"seed").unwrap();
    let store = s.open();
    let opts = tmpfs();
    let v = store
        .create(Some("tv"), None, opts.clone(), none())
        .unwrap();

    // Held by a container: the copy lands in the tmpfs and stays.
    store.mount("tv", "c1").unwrap();
    assert!(store.copy_up(&src, "tv").unwrap());
    assert_eq!(fs::read(v.mountpoint.join("f")).unwrap(), b"seed");
    assert_eq!(mounted_at(&v.mountpoint).as_deref(), Some("tmpfs"));
    store.unmount("tv", "c1").unwrap();

    // Held by no one: mounted for the copy, unmounted after, nothing left underneath.
    let w = store.create(Some("uv"), None, opts, none()).unwrap();
    assert!(store.copy_up(&src, "uv").unwrap());
    assert_eq!(mounted_at(&w.mountpoint), None);
    assert_eq!(fs::read_dir(&w.mountpoint).unwrap().count(), 0);
}

#[test]
fn copy_up_does_not_recurse_into_the_volume_itself() {
    let s = Scratch::new();
    let store = s.open();
    let v = store.create(Some("self"), None, none(), none()).unwrap();
    // The source contains the volume's own directory (as a bind mount would show it).
    let src = s.path().join("src");
    fs::create_dir_all(src.join("mnt")).unwrap();
    fs::write(src.join("top"), b"t").unwrap();
    nix::mount::mount(
        Some(&v.mountpoint),
        &src.join("mnt"),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let copied = store.copy_up(&src, "self");
    nix::mount::umount2(&src.join("mnt"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert!(copied.unwrap());
    assert_eq!(fs::read(v.mountpoint.join("top")).unwrap(), b"t");
    assert!(!v.mountpoint.join("mnt").exists());
}

#[test]
fn ownership_of_the_root_is_copied_even_for_an_empty_source() {
    let s = Scratch::new();
    let src = s.path().join("src");
    fs::create_dir(&src).unwrap();
    chown(&src, Some(Uid::from_raw(33)), Some(Gid::from_raw(33))).unwrap();
    chmod(&src, 0o1777);
    let store = s.open();
    let v = store.create(Some("www"), None, none(), none()).unwrap();
    assert!(store.copy_up(&src, "www").unwrap());
    let m = fs::metadata(&v.mountpoint).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (33, 33, 0o1777));
}
