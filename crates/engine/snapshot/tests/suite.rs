//! The shared suite against both snapshotters, overlay-specific mount shapes, and a crash test
//! that kills a worker process with SIGKILL at random points and reopens its root.
//!
//! Needs root (mounts, mknod, trusted xattrs) and a kernel where overlay works.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_snapshot::testsuite::{layer, Change, MountGuard, TempRoot};
use berth_snapshot::{
    DiffSource, Kind, NativeSnapshotter, OverlaySnapshotter, SnapshotError, Snapshotter,
    MAX_MOUNT_DATA,
};

fn overlay(root: &Path) -> Result<Box<dyn Snapshotter>, SnapshotError> {
    Ok(Box::new(OverlaySnapshotter::new(root)?))
}

fn native(root: &Path) -> Result<Box<dyn Snapshotter>, SnapshotError> {
    Ok(Box::new(NativeSnapshotter::new(root)?))
}

macro_rules! suite {
    ($impl:ident: $($check:ident),*) => {
        mod $impl {
            $(
                #[test]
                fn $check() {
                    berth_snapshot::testsuite::$check(&super::$impl);
                }
            )*
        }
    };
}

suite!(overlay: chains, whiteouts, container_changes, remove_rules, deep_stack, restart,
       crash_leftovers, arbitrary_keys, usage, metadata_preserved, concurrent_commits);
suite!(native: chains, whiteouts, container_changes, remove_rules, deep_stack, restart,
       crash_leftovers, arbitrary_keys, usage, metadata_preserved, concurrent_commits);

#[test]
fn overlay_is_supported_here() {
    let root = TempRoot::new("probe");
    assert!(berth_snapshot::overlay_supported(root.path()));
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "probe cleaned up"
    );
}

#[test]
fn overlay_mount_shapes() {
    let root = TempRoot::new("shapes");
    let s = OverlaySnapshotter::new(&root.path().join("store")).unwrap();
    let empty = s.prepare("empty", None).unwrap();
    assert_eq!(empty[0].kind, "bind");
    assert_eq!(empty[0].options, ["rbind", "rw"]);

    layer(&s, "l1", None, &[Change::File("a", "1")]);
    layer(&s, "l2", Some("l1"), &[Change::File("b", "2")]);
    let one = s.view("one", Some("l1")).unwrap();
    assert_eq!(one[0].kind, "bind");
    assert_eq!(one[0].options, ["rbind", "ro"]);

    let two = s.view("two", Some("l2")).unwrap();
    assert_eq!(two[0].kind, "overlay");
    assert!(two[0].options.iter().any(|o| o.starts_with("lowerdir=")));
    assert!(!two[0].options.iter().any(|o| o.starts_with("upperdir=")));

    let ctr = s.prepare("ctr", Some("l2")).unwrap();
    let opts = &ctr[0].options;
    let lower = opts
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap();
    let dirs: Vec<&str> = lower.split(':').collect();
    assert_eq!(dirs.len(), 2);
    // Top first: l2's directory comes before l1's.
    assert!(Path::new(dirs[0]).join("b").exists() && Path::new(dirs[1]).join("a").exists());
    assert!(opts.iter().any(|o| o.starts_with("upperdir=")));
    assert!(opts.iter().any(|o| o.starts_with("workdir=")));
    if Path::new("/sys/module/overlay/parameters/index").exists() {
        assert!(opts.iter().any(|o| o == "index=off"));
    }
    // Two containers on the same layers, mounted at once.
    let ctr2 = s.prepare("ctr2", Some("l2")).unwrap();
    let a = MountGuard::new(&ctr, &root.path().join("a"));
    let b = MountGuard::new(&ctr2, &root.path().join("b"));
    std::fs::write(a.path().join("only-a"), "x").unwrap();
    assert!(!b.path().join("only-a").exists());
}

#[test]
fn overlay_upper_dir_stays_a_plain_diff() {
    let root = TempRoot::new("plain-upper");
    let s = OverlaySnapshotter::new(&root.path().join("store")).unwrap();
    layer(
        &s,
        "base",
        None,
        &[Change::File("bin/tool", "t"), Change::File("etc/conf", "c")],
    );
    let m = s.prepare("ctr", Some("base")).unwrap();
    {
        let rootfs = MountGuard::new(&m, &root.path().join("rootfs"));
        // With redirect_dir on, this rename would leave only an xattr in the upper dir.
        match std::fs::rename(rootfs.path().join("bin"), rootfs.path().join("bin2")) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{e}"),
        }
        std::fs::set_permissions(
            rootfs.path().join("etc/conf"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let DiffSource::OverlayUpper(upper) = s.diff_source("ctr").unwrap() else {
        panic!("overlay diffs its upper dir");
    };
    if upper.join("bin2").exists() {
        assert_eq!(
            xattr::get(upper.join("bin2"), "trusted.overlay.redirect").unwrap(),
            None
        );
    }
    // A metadata-only change still copies the data up.
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/conf")).unwrap(),
        "c"
    );
    assert_eq!(
        xattr::get(upper.join("etc/conf"), "trusted.overlay.metacopy").unwrap(),
        None
    );
}

#[test]
fn overlay_long_lower_stack_needs_the_short_paths() {
    let root = TempRoot::new("long-options-padding-padding-padding-padding-padding");
    let s = OverlaySnapshotter::new(&root.path().join("store")).unwrap();
    let mut parent: Option<String> = None;
    for i in 0..120 {
        let name = format!("l{i}");
        layer(&s, &name, parent.as_deref(), &[Change::File("top", "t")]);
        parent = Some(name);
    }
    let m = s.prepare("ctr", parent.as_deref()).unwrap();
    let data_len = m[0].options.join(",").len();
    assert!(
        data_len > MAX_MOUNT_DATA,
        "the test stack must overflow a page: {data_len}"
    );
    let rootfs = MountGuard::new(&m, &root.path().join("rootfs"));
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("top")).unwrap(),
        "t"
    );
    // The process's working directory was not touched by the mount.
    assert_ne!(
        std::env::current_dir().unwrap(),
        root.path().join("store/snapshots")
    );
}

const CRASH_ROOT: &str = "BERTH_SNAPSHOT_CRASH_ROOT";
const CRASH_KIND: &str = "BERTH_SNAPSHOT_CRASH_KIND";

fn open(kind: &str, root: &Path) -> Box<dyn Snapshotter> {
    match kind {
        "overlay" => overlay(root).unwrap(),
        "native" => native(root).unwrap(),
        other => panic!("unknown snapshotter {other}"),
    }
}

fn top_layer(s: &dyn Snapshotter) -> Option<u64> {
    s.list()
        .unwrap()
        .iter()
        .filter(|i| i.kind == Kind::Committed)
        .filter_map(|i| i.name.strip_prefix("layer-")?.parse().ok())
        .max()
}

/// The process `crash_kill_9` kills: grows a chain of layers and churns snapshots forever.
#[test]
#[ignore = "started and killed by crash_kill_9"]
fn crash_worker() {
    let root = PathBuf::from(std::env::var(CRASH_ROOT).expect("only run by crash_kill_9"));
    let s = open(&std::env::var(CRASH_KIND).unwrap(), &root);
    let s = s.as_ref();
    // Whatever the last kill interrupted must be removable.
    for info in s.list().unwrap() {
        if info.kind != Kind::Committed {
            s.remove(&info.name).unwrap();
        }
    }
    let mut next = top_layer(s).map_or(0, |t| t + 1);
    loop {
        let parent = next.checked_sub(1).map(|p| format!("layer-{p}"));
        let key = format!("active-{next}");
        s.prepare(&key, parent.as_deref()).unwrap();
        let dir = s.layer_target(&key).unwrap().dir;
        std::fs::write(dir.join(format!("f-{next}")), next.to_string()).unwrap();
        s.view(&format!("view-{next}"), parent.as_deref()).unwrap();
        s.commit(&format!("layer-{next}"), &key).unwrap();
        s.remove(&format!("view-{next}")).unwrap();
        next += 1;
    }
}

fn check_consistent(kind: &str, root: &Path, scratch: &Path) -> Option<u64> {
    let s = open(kind, root);
    let infos = s.list().unwrap();
    let dirs = std::fs::read_dir(root.join("snapshots")).unwrap().count();
    assert_eq!(dirs, infos.len(), "one directory per record, nothing else");
    let top = top_layer(s.as_ref())?;
    let m = s.mounts(&format!("layer-{top}")).unwrap();
    let target = scratch.join(format!("check-{top}"));
    let mnt = MountGuard::new(&m, &target);
    for i in 0..=top {
        let got = std::fs::read_to_string(mnt.path().join(format!("f-{i}"))).unwrap();
        assert_eq!(got, i.to_string());
    }
    Some(top)
}

fn crash_kill_9(kind: &str) {
    let scratch = TempRoot::new(&format!("crash-{kind}"));
    let root = scratch.path().join("store");
    let mut top = None;
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_worker",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_ROOT, &root)
            .env(CRASH_KIND, kind)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        std::thread::sleep(Duration::from_millis(150 + (nanos + round * 37) % 250));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the worker stopped by itself: {status}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        top = check_consistent(kind, &root, scratch.path()).or(top);
    }
    assert!(
        top.is_some_and(|t| t > 0),
        "the worker never committed two layers"
    );
}

#[test]
fn crash_kill_9_overlay() {
    crash_kill_9("overlay");
}

#[test]
fn crash_kill_9_native() {
    crash_kill_9("native");
}
