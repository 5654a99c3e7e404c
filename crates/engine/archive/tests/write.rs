//! The writers: deterministic, readable by GNU tar, and inverse to `apply_layer`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_archive::{
    apply_layer, write_overlay_diff, write_tree, write_tree_diff, ApplyOptions, ArchiveError,
    Whiteouts,
};
use common::{run, snapshot, tempdir};

fn set_mtime(p: &Path, secs: i64) {
    filetime::set_symlink_file_times(
        p,
        filetime::FileTime::from_unix_time(secs, 0),
        filetime::FileTime::from_unix_time(secs, 0),
    )
    .unwrap();
}

/// A tree with every kind of entry, odd modes and owners, xattrs and long names.
fn sample_tree(root: &Path) {
    let long_dir = root.join(format!("long/{}", "x".repeat(130)));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("y".repeat(200)), b"long name").unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("bin/tool"), vec![9u8; 70_000]).unwrap();
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("bin/tool"), root.join("bin/tool-alias")).unwrap();
    std::os::unix::fs::symlink("tool", root.join("bin/link")).unwrap();
    std::os::unix::fs::symlink("z".repeat(150), root.join("bin/long-link")).unwrap();
    fs::create_dir(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("owned"), b"").unwrap();
    std::os::unix::fs::lchown(root.join("owned"), Some(4_000_000), Some(77)).unwrap();
    xattr::set(root.join("owned"), "user.mime", b"text/plain").unwrap();
    xattr::set(root.join("owned"), "trusted.t", b"\x00bin").unwrap();
    // Only an overlay upper dir reserves user.overlay.*; in a plain tree it is user data.
    xattr::set(root.join("owned"), "user.overlay.note", b"kept").unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let dev = nix::sys::stat::makedev(1, 5);
    nix::sys::stat::mknod(
        &root.join("zero"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        dev,
    )
    .unwrap();
    for (i, p) in ["bin/tool", "owned", "fifo", "zero", "tmp", "bin", "long"]
        .iter()
        .enumerate()
    {
        set_mtime(&root.join(p), 1_500_000_000 + i as i64);
    }
    set_mtime(&long_dir, 1_400_000_000);
}

#[test]
fn write_tree_round_trips_through_apply_layer_and_gnu_tar() {
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    sample_tree(&src);

    let bytes = write_tree(&src, Vec::new()).unwrap();
    assert_eq!(bytes.len() % 512, 0);
    assert!(bytes.ends_with(&[0u8; 1024]), "two end blocks");
    assert!(
        write_tree(&src, Vec::new()).unwrap() == bytes,
        "deterministic"
    );

    // Our reader.
    let out = dir.path().join("ours");
    fs::create_dir(&out).unwrap();
    apply_layer(&bytes[..], &out, &ApplyOptions::new(Whiteouts::Overlay)).unwrap();
    assert_eq!(snapshot(&out), snapshot(&src));

    // GNU tar reads it without complaint and sees the same tree.
    let tarball = dir.path().join("t.tar");
    fs::write(&tarball, &bytes).unwrap();
    let listing = run(Command::new("tar").arg("-tvf").arg(&tarball));
    assert!(listing.contains(&"y".repeat(200)), "{listing}");
    assert!(
        listing.contains("bin/tool-alias link to bin/tool"),
        "{listing}"
    );
    let gnu = dir.path().join("gnu");
    fs::create_dir(&gnu).unwrap();
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--same-owner", "-C"])
        .arg(&gnu)
        .arg("-xpf")
        .arg(&tarball));
    assert_eq!(snapshot(&gnu), snapshot(&src));

    // Entries are sorted, directories before their children, no "./" prefix.
    let names: Vec<String> = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.trim_end_matches('/').cmp(b.trim_end_matches('/')));
    assert_eq!(names, sorted);
    assert_eq!(names[0], "bin/");
}

/// Unmounts `target`, waiting out EBUSY: a test running in parallel may fork while this one
/// has a directory of the mount open, and the child holds that descriptor until it execs.
fn unmount_when_free(target: &std::path::Path) -> nix::Result<()> {
    for _ in 0..100 {
        match nix::mount::umount(target) {
            Err(nix::errno::Errno::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other,
        }
    }
    nix::mount::umount(target)
}

/// The test's overlay mount, unmounted even when the test fails half way.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if unmount_when_free(&self.0).is_err() {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn overlay_upper_dirs_become_oci_whiteouts() {
    let dir = tempdir();
    let (lower, upper, work, merged) = (
        dir.path().join("lower"),
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    fs::create_dir_all(lower.join("etc/ssl")).unwrap();
    fs::write(lower.join("etc/motd"), b"hi").unwrap();
    fs::write(lower.join("etc/ssl/old"), b"").unwrap();
    fs::write(lower.join("keep"), b"k").unwrap();

    // Let the kernel write the upper dir.
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .unwrap();
    let mounted = Mounted(merged.clone());
    let changed = (|| -> std::io::Result<()> {
        fs::remove_file(merged.join("etc/motd"))?;
        fs::remove_dir_all(merged.join("etc/ssl"))?;
        fs::create_dir(merged.join("etc/ssl"))?; // now opaque
        fs::write(merged.join("etc/ssl/new"), b"n")?;
        fs::write(merged.join("added"), b"a")?;
        Ok(())
    })();
    let expected_before_unmount = snapshot(&merged);
    drop(mounted);
    changed.unwrap();

    let bytes = write_overlay_diff(&upper, Vec::new()).unwrap();
    let names: Vec<String> = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert!(names.contains(&"etc/.wh.motd".to_string()), "{names:?}");
    assert!(
        names.contains(&"etc/ssl/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("keep")), "{names:?}");

    // Applying the diff to a copy of the lower dir gives what the container saw.
    let copy = dir.path().join("copy");
    run(Command::new("cp").arg("-a").arg(&lower).arg(&copy));
    apply_layer(&bytes[..], &copy, &ApplyOptions::new(Whiteouts::Apply)).unwrap();
    let mut got = snapshot(&copy);
    let mut want = expected_before_unmount;
    // The root directory's own entry and dir mtimes touched by the kernel are not the point here.
    for m in [&mut got, &mut want] {
        for d in m.values_mut() {
            if d.kind == "dir" {
                d.mtime = 0;
            }
        }
    }
    assert_eq!(got, want);

    // And into an overlay upper dir, it gives back the same whiteouts.
    let upper2 = dir.path().join("upper2");
    fs::create_dir(&upper2).unwrap();
    apply_layer(&bytes[..], &upper2, &ApplyOptions::new(Whiteouts::Overlay)).unwrap();
    let again = write_overlay_diff(&upper2, Vec::new()).unwrap();
    assert!(
        again == bytes,
        "the overlay diff of the re-applied upper dir differs"
    );
}

#[test]
fn overlay_redirects_are_unrepresentable() {
    let dir = tempdir();
    fs::create_dir(dir.path().join("moved")).unwrap();
    xattr::set(
        dir.path().join("moved"),
        "trusted.overlay.redirect",
        b"/orig",
    )
    .unwrap();
    let err = write_overlay_diff(dir.path(), Vec::new()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Unrepresentable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("redirect"), "{err}");
}

#[test]
fn tree_diffs_apply_back_to_the_upper_tree() {
    let dir = tempdir();
    let lower = dir.path().join("lower");
    fs::create_dir(&lower).unwrap();
    sample_tree(&lower);
    fs::create_dir_all(lower.join("gone/sub")).unwrap();
    fs::write(lower.join("gone/sub/f"), b"").unwrap();
    fs::create_dir_all(lower.join("was-dir/x")).unwrap();
    fs::write(lower.join("was-file"), b"f").unwrap();
    let upper = dir.path().join("upper");
    run(Command::new("cp").arg("-a").arg(&lower).arg(&upper));

    fs::remove_dir_all(upper.join("gone")).unwrap();
    fs::remove_file(upper.join("bin/link")).unwrap();
    fs::write(upper.join("bin/tool"), b"changed").unwrap();
    fs::remove_dir_all(upper.join("was-dir")).unwrap();
    fs::write(upper.join("was-dir"), b"now a file").unwrap();
    fs::remove_file(upper.join("was-file")).unwrap();
    fs::create_dir_all(upper.join("was-file/inner")).unwrap();
    fs::set_permissions(upper.join("tmp"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(upper.join(format!("long/{}/new", "x".repeat(130))), b"new").unwrap();

    let bytes = write_tree_diff(&lower, &upper, Vec::new()).unwrap();
    assert!(
        write_tree_diff(&lower, &upper, Vec::new()).unwrap() == bytes,
        "deterministic"
    );
    let names: Vec<String> = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
    assert!(names.contains(&"bin/.wh.link".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("owned") || n == "fifo"),
        "unchanged entries are left out: {names:?}"
    );
    assert!(
        names.contains(&"long/".to_string()),
        "parents of a change come first: {names:?}"
    );

    let copy = dir.path().join("copy");
    run(Command::new("cp").arg("-a").arg(&lower).arg(&copy));
    apply_layer(&bytes[..], &copy, &ApplyOptions::new(Whiteouts::Apply)).unwrap();
    assert_eq!(snapshot(&copy), snapshot(&upper));

    let tarball = dir.path().join("diff.tar");
    fs::write(&tarball, &bytes).unwrap();
    run(Command::new("tar").arg("-tvf").arg(&tarball));
}
