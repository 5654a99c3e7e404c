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

fn runc(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running runc")
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
    let out = Command::new("runc").arg("spec").current_dir(&bundle).output().unwrap();
    assert!(out.status.success(), "runc spec: {out:?}");
    let mut spec: Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/sh", "-c", "sleep 1000 & sleep 1000"]);
    spec["linux"]["cgroupsPath"] = json!(format!("{parent}/runc"));
    spec["linux"]["resources"]["memory"] = json!({"limit": 100_000_000});
    spec["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 20000, "period": 100000});
    spec["linux"]["resources"]["pids"] = json!({"limit": 50});
    fs::write(bundle.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();

    let bundle_arg = bundle.to_str().unwrap();
    let out = runc(&cleanup.state, &["run", "-d", "--bundle", bundle_arg, &id]);
    assert!(out.status.success(), "runc run: {}", String::from_utf8_lossy(&out.stderr));
    let mgr = CgroupManager::open(&format!("{parent}/runc")).unwrap();
    assert!(support::wait_until(std::time::Duration::from_secs(5), || {
        mgr.pids().map(|p| p.len() >= 3).unwrap_or(false)
    }));
    let out = runc(&cleanup.state, &["pause", &id]);
    assert!(out.status.success(), "runc pause: {}", String::from_utf8_lossy(&out.stderr));
    assert!(mgr.is_frozen().unwrap());

    let out = runc(&cleanup.state, &["events", "--stats", &id]);
    assert!(out.status.success(), "runc events: {}", String::from_utf8_lossy(&out.stderr));
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs = &event["data"];
    let ours = serde_json::to_value(mgr.stats().unwrap()).unwrap();
    assert_eq!(
        &ours,
        theirs,
        "\nours:  {}\nrunc:  {}",
        serde_json::to_string(&ours).unwrap(),
        serde_json::to_string(theirs).unwrap()
    );
    drop(cleanup);
}
