//! Our `stats()` against `runc events --stats` for the same live container.
//!
//! runc runs a busybox container in `/berth-test-*/runc`, pauses it (so the
//! counters hold still), and both readings must serialize to the same JSON.
//! Needs root, `runc` on PATH and a static busybox at /usr/bin/busybox (or
//! /bin/busybox); without them the test says so and does nothing.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_cgroups::CgroupManager;
use serde_json::{json, Value};

fn find_busybox() -> Option<PathBuf> {
    ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Run runc with its output in files: a detached container inherits runc's
/// stdio and would keep pipes open forever.
fn runc(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = root.join("runc.out");
    let err = root.join("runc.err");
    let status = Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .status()
        .expect("running runc");
    (
        status.success(),
        fs::read_to_string(out).unwrap_or_default(),
        fs::read_to_string(err).unwrap_or_default(),
    )
}

struct Cleanup {
    dir: PathBuf,
    state: PathBuf,
    id: String,
    parent: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = runc(&self.state, &["delete", "--force", &self.id]);
        if let Ok(m) = CgroupManager::new(Some(Path::new(&self.parent)), "parent") {
            if let Err(e) = m.destroy() {
                eprintln!("cleanup: {e}");
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn stats_match_runc_events_stats() {
    let Some(busybox) = find_busybox() else {
        eprintln!("no busybox binary: not comparing with runc");
        return;
    };
    if Command::new("runc").arg("--version").output().is_err() {
        eprintln!("no runc on PATH: not comparing with runc");
        return;
    }
    let parent = support::unique_parent();
    let id = format!("{}-runc", &parent[1..]);
    let dir = std::env::temp_dir().join(&id);
    let cleanup = Cleanup {
        state: dir.join("state"),
        dir: dir.clone(),
        id: id.clone(),
        parent: parent.clone(),
    };
    let bin = dir.join("bundle/rootfs/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&cleanup.state).unwrap();
    fs::copy(&busybox, bin.join("busybox")).unwrap();
    for tool in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    let bundle = dir.join("bundle");
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "runc spec: {out:?}");
    let mut spec: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/sh", "-c", "sleep 1000 & sleep 1000"]);
    spec["linux"]["cgroupsPath"] = json!(format!("{parent}/runc"));
    spec["linux"]["resources"]["memory"] = json!({"limit": 100_000_000});
    spec["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 20000, "period": 100000});
    spec["linux"]["resources"]["pids"] = json!({"limit": 50});
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();

    let bundle_arg = bundle.to_str().unwrap();
    let (ok, _, err) = runc(&cleanup.state, &["run", "-d", "--bundle", bundle_arg, &id]);
    assert!(ok, "runc run: {err}");
    let mgr = CgroupManager::open(&format!("{parent}/runc")).unwrap();
    assert!(support::wait_until(
        std::time::Duration::from_secs(5),
        || { mgr.pids().map(|p| p.len() >= 2).unwrap_or(false) }
    ));
    let (ok, _, err) = runc(&cleanup.state, &["pause", &id]);
    assert!(ok, "runc pause: {err}");
    assert!(mgr.is_frozen().unwrap());

    // A kernel counter can still tick between the two readings (memory is
    // charged lazily even in a frozen cgroup), so a mismatch gets two more
    // tries; a difference in shape or meaning would repeat every time.
    let mut last = None;
    for _ in 0..3 {
        let (ok, out, err) = runc(&cleanup.state, &["events", "--stats", &id]);
        assert!(ok, "runc events: {err}");
        let event: Value = serde_json::from_str(&out).unwrap();
        let mut theirs = event["data"].clone();
        let mut ours = serde_json::to_value(mgr.stats().unwrap()).unwrap();
        // Charged memory keeps moving a little: it must be there, but its
        // value cannot match.
        for v in [&mut ours, &mut theirs] {
            for entry in ["usage", "swap", "kernel"] {
                let e = v["memory"][entry].as_object_mut().unwrap();
                let usage = e.remove("usage").and_then(|u| u.as_u64());
                assert!(usage.is_some_and(|u| u > 0), "memory.{entry}.usage missing");
            }
        }
        if ours == theirs {
            last = None;
            break;
        }
        last = Some((ours, theirs));
    }
    if let Some((ours, theirs)) = last {
        panic!(
            "stats differ from runc's\nours: {}\nrunc: {}",
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
    }
    drop(cleanup);
}
