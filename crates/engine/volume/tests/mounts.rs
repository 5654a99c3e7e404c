//! Volumes with the local driver's mount options, mounted for real (needs root): mounted by
//! the first holder, unmounted by the last, unmounted before removal, found after a restart.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use berth_core::{ErrorKind, HasKind};
use berth_volume::VolumeError;
use common::{bind, map, mounted_at, none, tmpfs, Scratch};

#[test]
fn a_tmpfs_volume_is_mounted_on_first_use_and_unmounted_on_last() {
    let s = Scratch::new();
    let store = s.open();
    let opts = map(&[
        ("type", "tmpfs"),
        ("device", "tmpfs"),
        ("o", "size=1m,uid=1000,mode=0750"),
    ]);
    let v = store.create(Some("scratch"), None, opts, none()).unwrap();
    assert_eq!(mounted_at(&v.mountpoint), None, "create does not mount");

    let p = store.mount("scratch", "c1").unwrap();
    assert_eq!(p, v.mountpoint);
    assert_eq!(mounted_at(&p).as_deref(), Some("tmpfs"));
    let meta = fs::metadata(&p).unwrap();
    assert_eq!(meta.uid(), 1000);
    assert_eq!(meta.mode() & 0o7777, 0o750);
    fs::write(p.join("f"), b"in tmpfs").unwrap();

    // A second holder shares the mount; the same holder twice is one.
    assert_eq!(store.mount("scratch", "c2").unwrap(), p);
    store.mount("scratch", "c2").unwrap();
    let stacked = common::mount_table()
        .iter()
        .filter(|(m, _)| *m == p)
        .count();
    assert_eq!(stacked, 1);

    store.unmount("scratch", "c1").unwrap();
    assert_eq!(mounted_at(&p).as_deref(), Some("tmpfs"));
    assert_eq!(fs::read(p.join("f")).unwrap(), b"in tmpfs");
    // Mounted for someone: not removable.
    let e = store.remove("scratch", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(e.to_string(), "remove scratch: volume has active mounts");

    store.unmount("scratch", "c2").unwrap();
    assert_eq!(mounted_at(&p), None);
    assert!(
        !p.join("f").exists(),
        "the tmpfs content went with the mount"
    );
    // Usage of an unmounted tmpfs volume is its (empty) directory.
    assert_eq!(store.usage("scratch").unwrap(), 0);
    store.remove("scratch", false).unwrap();
    assert!(!s.root().join("scratch").exists());
}

#[test]
fn a_bind_volume_shows_its_device_and_removal_keeps_the_device() {
    let s = Scratch::new();
    let host = s.path().join("host-data");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("existing"), b"host file").unwrap();
    let store = s.open();
    let opts = bind(&host);
    let v = store.create(Some("hostdir"), None, opts, none()).unwrap();
    let p = store.mount("hostdir", "c1").unwrap();
    assert!(mounted_at(&p).is_some());
    assert_eq!(fs::read(p.join("existing")).unwrap(), b"host file");
    fs::write(p.join("new"), b"through the volume").unwrap();
    assert_eq!(fs::read(host.join("new")).unwrap(), b"through the volume");
    store.unmount("hostdir", "c1").unwrap();
    assert_eq!(mounted_at(&v.mountpoint), None);
    assert!(!v.mountpoint.join("existing").exists());

    // Removing while mounted (found so after a restart) unmounts first: the host directory
    // behind the bind mount is never deleted.
    store.mount("hostdir", "c1").unwrap();
    drop(store);
    let store = s.open();
    assert!(
        mounted_at(&v.mountpoint).is_some(),
        "still mounted across the restart"
    );
    store.remove("hostdir", false).unwrap();
    assert_eq!(mounted_at(&v.mountpoint), None);
    assert!(!s.root().join("hostdir").exists());
    assert_eq!(fs::read(host.join("existing")).unwrap(), b"host file");
    assert_eq!(fs::read(host.join("new")).unwrap(), b"through the volume");
}

#[test]
fn a_mount_found_after_restart_is_released_by_its_last_holder() {
    let s = Scratch::new();
    let store = s.open();
    let opts = tmpfs();
    let v = store.create(Some("live"), None, opts, none()).unwrap();
    store.mount("live", "c1").unwrap();
    fs::write(v.mountpoint.join("f"), b"x").unwrap();
    drop(store);

    let store = s.open();
    // The daemon re-registers the running container: no second mount on top.
    store.mount("live", "c1").unwrap();
    assert_eq!(fs::read(v.mountpoint.join("f")).unwrap(), b"x");
    let stacked = common::mount_table()
        .iter()
        .filter(|(m, _)| *m == v.mountpoint)
        .count();
    assert_eq!(stacked, 1);
    store.unmount("live", "c1").unwrap();
    assert_eq!(mounted_at(&v.mountpoint), None);
}

#[test]
fn a_failed_mount_says_why_and_leaves_nothing_mounted() {
    let s = Scratch::new();
    let store = s.open();
    let missing = s.path().join("no-such-dir");
    let opts = bind(&missing);
    let v = store.create(Some("broken"), None, opts, none()).unwrap();
    let e = store.mount("broken", "c1").unwrap_err();
    assert!(matches!(e, VolumeError::Mount { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "failed to mount local volume: mount {}:{}",
            missing.display(),
            v.mountpoint.display()
        )),
        "{e}"
    );
    assert_eq!(mounted_at(&v.mountpoint), None);
    // The failed holder holds nothing: the volume can go.
    store.remove("broken", false).unwrap();

    let opts = map(&[
        ("type", "cifs"),
        ("device", "//127.0.0.1/share"),
        ("o", "username=u,password=hunter2"),
    ]);
    store.create(Some("smb"), None, opts, none()).unwrap();
    let e = store.mount("smb", "c1").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn something_else_mounted_inside_a_volume_blocks_its_removal() {
    let s = Scratch::new();
    let store = s.open();
    let v = store.create(Some("plain"), None, none(), none()).unwrap();
    let inner = v.mountpoint.join("inner");
    fs::create_dir(&inner).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &inner,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    fs::write(inner.join("f"), b"x").unwrap();
    let e = store.remove("plain", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(matches!(e, VolumeError::StillMounted { .. }), "{e}");
    assert_eq!(fs::read(inner.join("f")).unwrap(), b"x");
    assert!(store.get("plain").is_ok());
    nix::mount::umount2(&inner, nix::mount::MntFlags::MNT_DETACH).unwrap();
    store.remove("plain", false).unwrap();
}
