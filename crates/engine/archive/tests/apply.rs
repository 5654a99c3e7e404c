//! `apply_layer`: what lands on disk, what is refused, and which streams are accepted.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_archive::{apply_layer, ApplyOptions, ArchiveError, Refusal, Whiteouts};
use berth_core::{ErrorKind, HasKind};
use common::{tempdir, Hdr, RawTar};

fn overlay() -> ApplyOptions {
    ApplyOptions::new(Whiteouts::Overlay)
}

fn apply(
    tar: &[u8],
    target: &Path,
    opts: &ApplyOptions,
) -> Result<berth_archive::ApplyStats, ArchiveError> {
    apply_layer(tar, target, opts)
}

fn refusal(err: ArchiveError) -> (String, Refusal) {
    match err {
        ArchiveError::Refused { entry, reason } => (entry, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn extracts_every_entry_type_with_its_metadata() {
    let dir = tempdir();
    let t = dir.path();
    let mut tar = RawTar::new();
    tar.add(Hdr::dir("usr/").mtime(1_000).owner(0, 0))
        .add(Hdr::dir("usr/bin/").mode(0o750).owner(7, 8).mtime(2_000))
        .add(
            Hdr::file("usr/bin/su", b"#!/bin/true\n")
                .mode(0o4755)
                .owner(0, 0)
                .mtime(3_000),
        )
        .add(
            Hdr::file("usr/bin/wall", b"x")
                .mode(0o2755)
                .owner(1234, 5)
                .mtime(3_001),
        )
        .add(Hdr::dir("tmp/").mode(0o1777).mtime(4_000))
        .add(Hdr::hardlink("usr/bin/su2", "usr/bin/su"))
        .add(
            Hdr::symlink("usr/bin/sh", "/bin/bash")
                .owner(42, 43)
                .mtime(5_000),
        )
        .add(
            Hdr::new("run/fifo", b'6')
                .mode(0o640)
                .owner(3, 4)
                .mtime(6_000),
        );
    let mut null = Hdr::new("dev/null", b'3').mode(0o666);
    null.dev = (1, 3);
    tar.add(null);
    tar.pax(&[
        ("SCHILY.xattr.user.comment", b"hello"),
        ("SCHILY.xattr.trusted.note", b"\x00\x01bin"),
        (
            "SCHILY.xattr.security.capability",
            b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
    ])
    .add(
        Hdr::file("usr/bin/ping", b"ping")
            .mode(0o755)
            .owner(0, 0)
            .mtime(7_000),
    );
    let bytes = tar.finish();
    let stats = apply(&bytes, t, &overlay()).unwrap();
    assert_eq!(stats.bytes, bytes.len() as u64);
    assert_eq!(stats.entries, 10, "PAX headers are not entries");

    let m = fs::metadata(t.join("usr/bin/su")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755, "setuid survives the chown");
    assert_eq!(m.mtime(), 3_000);
    assert_eq!(m.nlink(), 2);
    assert_eq!(fs::metadata(t.join("usr/bin/su2")).unwrap().ino(), m.ino());
    let m = fs::metadata(t.join("usr/bin/wall")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o2755, 1234, 5));
    let m = fs::metadata(t.join("tmp")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o1777);
    assert_eq!(m.mtime(), 4_000);
    let m = fs::metadata(t.join("usr/bin")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o750, 7, 8));
    assert_eq!(
        m.mtime(),
        2_000,
        "directory mtime is set after its children are written"
    );
    assert_eq!(fs::metadata(t.join("usr")).unwrap().mtime(), 1_000);
    let m = fs::symlink_metadata(t.join("usr/bin/sh")).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!((m.uid(), m.gid(), m.mtime()), (42, 43, 5_000));
    assert_eq!(
        fs::read_link(t.join("usr/bin/sh")).unwrap(),
        Path::new("/bin/bash")
    );
    let m = fs::metadata(t.join("run/fifo")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o640, 3, 4, 6_000)
    );
    let m = fs::metadata(t.join("run")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755, "missing parents are created 0755");
    let m = fs::metadata(t.join("dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), libc::makedev(1, 3));
    let ping = t.join("usr/bin/ping");
    assert_eq!(
        xattr::get(&ping, "user.comment").unwrap().unwrap(),
        b"hello"
    );
    assert_eq!(
        xattr::get(&ping, "trusted.note").unwrap().unwrap(),
        b"\x00\x01bin"
    );
    let cap = xattr::get(&ping, "security.capability").unwrap();
    assert!(
        cap.is_some() || stats.skipped_xattrs == 1,
        "a security xattr is either set or counted"
    );
}

#[test]
fn dot_dot_escapes_are_refused_with_the_entry_name() {
    let dir = tempdir();
    let target = dir.path().join("root");
    fs::create_dir(&target).unwrap();
    let mut tar = RawTar::new();
    tar.add(Hdr::file("../../etc/passwd", b"pwned"));
    let err = apply(&tar.finish(), &target, &overlay()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layer entry "../../etc/passwd": path escapes the target"#
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // `..` that stays inside is only a spelling.
    let mut tar = RawTar::new();
    tar.add(Hdr::file("a/../b", b"ok"));
    apply(&tar.finish(), &target, &overlay()).unwrap();
    assert_eq!(fs::read(target.join("b")).unwrap(), b"ok");
    assert!(
        !target.join("a").exists(),
        "lexical cleaning: a/.. never touches a"
    );
}

#[test]
fn absolute_names_are_relative_to_the_target() {
    let dir = tempdir();
    let mut tar = RawTar::new();
    tar.add(Hdr::file("/etc/berth-archive-test", b"inside"));
    apply(&tar.finish(), dir.path(), &overlay()).unwrap();
    assert_eq!(
        fs::read(dir.path().join("etc/berth-archive-test")).unwrap(),
        b"inside"
    );
    assert!(!Path::new("/etc/berth-archive-test").exists());
}

#[test]
fn symlinked_parents_are_never_followed() {
    let dir = tempdir();
    let outside = dir.path().join("outside");
    let target = dir.path().join("root");
    fs::create_dir(&outside).unwrap();
    fs::create_dir(&target).unwrap();

    // A symlink out of the target, then an entry through it.
    let mut tar = RawTar::new();
    tar.add(Hdr::symlink("escape", outside.to_str().unwrap()))
        .add(Hdr::file("escape/planted", b"pwned"));
    let (entry, reason) = refusal(apply(&tar.finish(), &target, &overlay()).unwrap_err());
    assert_eq!(entry, "escape/planted");
    assert_eq!(
        reason,
        Refusal::ParentIsSymlink {
            component: "escape".into()
        }
    );
    assert!(!outside.join("planted").exists());

    // A relative symlink that stays inside is refused too: symlinks are never walked.
    let mut tar = RawTar::new();
    tar.add(Hdr::dir("real/"))
        .add(Hdr::symlink("alias", "real"))
        .add(Hdr::file("alias/f", b""));
    let err = apply(&tar.finish(), &target, &overlay()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layer entry "alias/f": parent "alias" is a symlink"#
    );

    // A symlink deep in the path, planted by a parent layer (Apply mode over existing files).
    std::os::unix::fs::symlink(&outside, target.join("real/deep")).unwrap();
    let mut tar = RawTar::new();
    tar.add(Hdr::file("real/deep/x/y", b"pwned"));
    let (_, reason) =
        refusal(apply(&tar.finish(), &target, &ApplyOptions::new(Whiteouts::Apply)).unwrap_err());
    assert_eq!(
        reason,
        Refusal::ParentIsSymlink {
            component: "real/deep".into()
        }
    );
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written outside"
    );

    // A file as parent.
    let mut tar = RawTar::new();
    tar.add(Hdr::file("plain", b""))
        .add(Hdr::file("plain/child", b""));
    let (_, reason) = refusal(apply(&tar.finish(), &target, &overlay()).unwrap_err());
    assert_eq!(
        reason,
        Refusal::ParentNotDirectory {
            component: "plain".into()
        }
    );
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    let dir = tempdir();
    let outside = dir.path().join("victim");
    fs::write(&outside, b"original").unwrap();
    let target = dir.path().join("root");
    fs::create_dir(&target).unwrap();
    let mut tar = RawTar::new();
    tar.add(Hdr::symlink("f", outside.to_str().unwrap()))
        .add(Hdr::file("f", b"new"));
    apply(&tar.finish(), &target, &overlay()).unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"original");
    assert!(fs::symlink_metadata(target.join("f")).unwrap().is_file());
    assert_eq!(fs::read(target.join("f")).unwrap(), b"new");
}

#[test]
fn hard_links_must_stay_inside_and_avoid_symlinks() {
    let dir = tempdir();
    let outside = dir.path().join("secret");
    fs::write(&outside, b"secret").unwrap();
    let target = dir.path().join("root");
    fs::create_dir(&target).unwrap();

    let mut tar = RawTar::new();
    tar.add(Hdr::hardlink("h", "../secret"));
    let err = apply(&tar.finish(), &target, &overlay()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layer entry "h": hard link target "../secret" escapes the target"#
    );

    let mut tar = RawTar::new();
    tar.add(Hdr::symlink("up", dir.path().to_str().unwrap()))
        .add(Hdr::hardlink("h", "up/secret"));
    let (entry, reason) = refusal(apply(&tar.finish(), &target, &overlay()).unwrap_err());
    assert_eq!(entry, "h");
    assert!(
        matches!(reason, Refusal::ParentIsSymlink { .. }),
        "{reason:?}"
    );
    assert_eq!(fs::metadata(&outside).unwrap().nlink(), 1);

    let mut tar = RawTar::new();
    tar.add(Hdr::hardlink("h", "missing"));
    let (_, reason) = refusal(apply(&tar.finish(), &target, &overlay()).unwrap_err());
    assert_eq!(
        reason,
        Refusal::LinkTargetMissing {
            link: "missing".into()
        }
    );

    // A hard link to a symlink links the symlink itself, never what it points to.
    let mut tar = RawTar::new();
    tar.add(Hdr::symlink("s", outside.to_str().unwrap()))
        .add(Hdr::hardlink("h2", "s"));
    apply(&tar.finish(), &target, &overlay()).unwrap();
    assert!(fs::symlink_metadata(target.join("h2"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::metadata(&outside).unwrap().nlink(), 1);
}

#[test]
fn devices_are_refused_unless_allowed() {
    let dir = tempdir();
    let mut h = Hdr::new("dev/sda", b'4');
    h.dev = (8, 0);
    let mut tar = RawTar::new();
    tar.add(h);
    let opts = ApplyOptions {
        allow_devices: false,
        ..overlay()
    };
    let err = apply(&tar.finish(), dir.path(), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layer entry "dev/sda": device files are not allowed"#
    );
    assert!(!dir.path().join("dev/sda").exists());
}

#[test]
fn overlayfs_xattrs_in_a_layer_are_refused() {
    let dir = tempdir();
    let mut tar = RawTar::new();
    tar.pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
        .add(Hdr::dir("d/"));
    let (_, reason) = refusal(apply(&tar.finish(), dir.path(), &overlay()).unwrap_err());
    assert_eq!(
        reason,
        Refusal::ReservedXattr {
            name: "trusted.overlay.redirect".into()
        }
    );
}

#[test]
fn later_entries_replace_earlier_ones_like_docker() {
    let dir = tempdir();
    let t = dir.path();
    let mut tar = RawTar::new();
    tar.add(Hdr::dir("d/"))
        .add(Hdr::file("d/keep", b"1"))
        .add(Hdr::dir("d/").mode(0o700).mtime(99))
        .add(Hdr::file("d/new", b"2"))
        .add(Hdr::dir("gone/"))
        .add(Hdr::file("gone/child", b""))
        .add(Hdr::file("gone", b"file now"))
        .add(Hdr::file("x", b"file"))
        .add(Hdr::dir("x/"))
        .add(Hdr::file("x/inner", b"in"))
        .add(Hdr::file("dup", b"first"))
        .add(Hdr::file("dup", b"second"));
    apply(&tar.finish(), t, &overlay()).unwrap();
    assert_eq!(
        fs::read(t.join("d/keep")).unwrap(),
        b"1",
        "dir over dir merges"
    );
    assert_eq!(fs::read(t.join("d/new")).unwrap(), b"2");
    let m = fs::metadata(t.join("d")).unwrap();
    assert_eq!(
        (m.permissions().mode() & 0o7777, m.mtime()),
        (0o700, 99),
        "the last header wins"
    );
    assert_eq!(
        fs::read(t.join("gone")).unwrap(),
        b"file now",
        "a file replaces a directory"
    );
    assert_eq!(
        fs::read(t.join("x/inner")).unwrap(),
        b"in",
        "a directory replaces a file"
    );
    assert_eq!(fs::read(t.join("dup")).unwrap(), b"second");
}

#[test]
fn overlay_whiteouts_become_devices_and_opaque_xattrs() {
    let dir = tempdir();
    let t = dir.path();
    let mut tar = RawTar::new();
    tar.add(Hdr::dir("etc/"))
        .add(Hdr::file("etc/.wh.motd", b""))
        .add(Hdr::dir("var/cache/"))
        .add(Hdr::file("var/cache/.wh..wh..opq", b""))
        .add(Hdr::file("var/cache/fresh", b"f"))
        .add(Hdr::file(".wh..wh.plnk", b""));
    apply(&tar.finish(), t, &overlay()).unwrap();
    let m = fs::symlink_metadata(t.join("etc/motd")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert!(!t.join("etc/.wh.motd").exists());
    assert_eq!(
        xattr::get(t.join("var/cache"), "trusted.overlay.opaque")
            .unwrap()
            .unwrap(),
        b"y"
    );
    assert!(t.join("var/cache/fresh").exists());
    assert!(!t.join(".wh..wh.plnk").exists(), "aufs metadata is dropped");
}

#[test]
fn apply_whiteouts_delete_the_parents_files() {
    let dir = tempdir();
    let t = dir.path();
    fs::create_dir_all(t.join("etc/ssl")).unwrap();
    fs::write(t.join("etc/motd"), b"old").unwrap();
    fs::write(t.join("etc/ssl/cert"), b"old").unwrap();
    fs::create_dir_all(t.join("cache/sub")).unwrap();
    fs::write(t.join("cache/old1"), b"").unwrap();
    fs::write(t.join("cache/sub/old2"), b"").unwrap();
    fs::write(t.join("cache/replaced"), b"old").unwrap();

    let mut tar = RawTar::new();
    tar.add(Hdr::file("etc/.wh.motd", b""))
        .add(Hdr::file("etc/.wh.ssl", b""))
        .add(Hdr::file("cache/new-before", b"n"))
        .add(Hdr::file("cache/replaced", b"new"))
        .add(Hdr::file("cache/.wh..wh..opq", b""))
        .add(Hdr::file("cache/new-after", b"n"))
        .add(Hdr::file("fresh", b"x"))
        .add(Hdr::file(".wh.fresh", b""))
        .add(Hdr::file("etc/.wh.never-existed", b""));
    apply(&tar.finish(), t, &ApplyOptions::new(Whiteouts::Apply)).unwrap();
    assert!(!t.join("etc/motd").exists());
    assert!(
        !t.join("etc/ssl").exists(),
        "a whited-out directory goes with its contents"
    );
    assert!(t.join("etc").is_dir());
    let mut left: Vec<_> = fs::read_dir(t.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["new-after", "new-before", "replaced"],
        "opaque keeps only this layer's entries"
    );
    assert_eq!(fs::read(t.join("cache/replaced")).unwrap(), b"new");
    assert!(
        t.join("fresh").exists(),
        "a whiteout never hides an entry of its own layer"
    );
}

#[test]
fn streams_without_end_blocks_are_accepted() {
    let dir = tempdir();
    let mut tar = RawTar::new();
    tar.add(Hdr::file("a", b"hello"))
        .add(Hdr::file("b", b"world!"));
    // At an entry boundary, without the two zero blocks (umoci 0.4.7).
    let stream = tar.buf.clone();
    let stats = apply(&stream, dir.path(), &overlay()).unwrap();
    assert_eq!((stats.entries, stats.bytes), (2, stream.len() as u64));
    assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"world!");
    // Inside the last entry's padding.
    let cut = &stream[..stream.len() - 100];
    let dir2 = tempdir();
    let stats = apply(cut, dir2.path(), &overlay()).unwrap();
    assert_eq!(stats.bytes, cut.len() as u64);
    assert_eq!(fs::read(dir2.path().join("b")).unwrap(), b"world!");
    // Only one end block.
    let mut one = stream.clone();
    one.extend_from_slice(&[0; 512]);
    apply(&one, tempdir().path(), &overlay()).unwrap();
}

#[test]
fn truncated_streams_are_errors() {
    let mut tar = RawTar::new();
    tar.add(Hdr::file("a", &[7u8; 2000]));
    let full = tar.finish();
    // Inside the data.
    let err = apply(&full[..512 + 1000], tempdir().path(), &overlay()).unwrap_err();
    assert!(matches!(err, ArchiveError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Inside a header.
    let err = apply(&full[..300], tempdir().path(), &overlay()).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // Garbage.
    let err = apply(&[b'x'; 1024][..], tempdir().path(), &overlay()).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn long_names_from_gnu_and_pax_headers() {
    let dir = tempdir();
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(120));
    let mut tar = RawTar::new();
    tar.pax(&[
        ("path", long.as_bytes()),
        ("mtime", b"1234.5"),
        ("uid", b"3000000"),
    ])
    .add(Hdr::file("short", b"pax"));
    let mut gnu_name = Hdr::new("././@LongLink", b'L');
    gnu_name.data = format!("{}/gnu-long\0", "g".repeat(200)).into_bytes();
    tar.add(gnu_name).add(Hdr::file("ignored", b"gnu"));
    apply(&tar.finish(), dir.path(), &overlay()).unwrap();
    let m = fs::metadata(dir.path().join(&long)).unwrap();
    assert_eq!(
        (m.mtime(), m.mtime_nsec(), m.uid()),
        (1234, 500_000_000, 3_000_000)
    );
    assert_eq!(
        fs::read(dir.path().join(format!("{}/gnu-long", "g".repeat(200)))).unwrap(),
        b"gnu"
    );
    assert!(!dir.path().join("short").exists());
}

#[test]
fn gnu_tar_archives_round_trip() {
    // A tree archived by GNU tar (pax format, xattrs) extracts to the same tree.
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join(format!("deep/{}", "n".repeat(120)))).unwrap();
    fs::write(src.join(format!("deep/{}/file", "n".repeat(120))), b"data").unwrap();
    fs::write(src.join("big"), vec![1u8; 3 * 1024 * 1024 + 17]).unwrap();
    fs::hard_link(src.join("big"), src.join("big-link")).unwrap();
    std::os::unix::fs::symlink("big", src.join("sym")).unwrap();
    xattr::set(src.join("big"), "user.k", b"v").unwrap();
    fs::set_permissions(src.join("deep"), fs::Permissions::from_mode(0o2750)).unwrap();
    let tarball = dir.path().join("t.tar");
    common::run(
        std::process::Command::new("tar")
            .args(["--format=pax", "--xattrs", "--xattrs-include=*", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    apply_layer(fs::File::open(&tarball).unwrap(), &out, &overlay()).unwrap();
    // Symlink times are not compared: GNU tar does not record them.
    assert_eq!(common::snapshot(&out), common::snapshot(&src));
}

#[test]
fn a_directory_replaces_a_symlink_instead_of_following_it() {
    let dir = tempdir();
    let outside = dir.path().join("outside");
    let target = dir.path().join("root");
    fs::create_dir(&outside).unwrap();
    fs::create_dir(&target).unwrap();
    let mut tar = RawTar::new();
    tar.add(Hdr::symlink("d", outside.to_str().unwrap()))
        .add(Hdr::dir("d/"))
        .add(Hdr::file("d/f", b"inside"));
    apply(&tar.finish(), &target, &overlay()).unwrap();
    assert!(fs::symlink_metadata(target.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(target.join("d/f")).unwrap(), b"inside");
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn ownership_is_kept_only_with_same_owner() {
    let dir = tempdir();
    let mut tar = RawTar::new();
    tar.add(Hdr::file("f", b"").owner(1234, 4321).mode(0o2755))
        .add(Hdr::dir("d/").owner(1234, 4321));
    let opts = ApplyOptions {
        same_owner: false,
        ..overlay()
    };
    apply(&tar.finish(), dir.path(), &opts).unwrap();
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let m = fs::metadata(dir.path().join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), me);
    assert_eq!(m.mode() & 0o7777, 0o2755);
    let m = fs::metadata(dir.path().join("d")).unwrap();
    assert_eq!((m.uid(), m.gid()), me);

    let other = tempdir();
    apply(&tar.finish(), other.path(), &overlay()).unwrap();
    let m = fs::metadata(other.path().join("f")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (1234, 4321),
        "root keeps the header's owner by default"
    );
}

#[test]
fn sparse_and_unknown_entry_types_are_refused() {
    let mut tar = RawTar::new();
    tar.pax(&[("GNU.sparse.map", b"0,10")])
        .add(Hdr::file("sparse", b"0123456789"));
    let err = apply(&tar.finish(), tempdir().path(), &overlay()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layer entry "sparse": unsupported tar entry type 'S'"#
    );
    let mut tar2 = RawTar::new();
    tar2.add(Hdr::new("weird", b'Z'));
    let err = apply(&tar2.finish(), tempdir().path(), &overlay()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"layer entry "weird": unsupported tar entry type 'Z'"#
    );
}
