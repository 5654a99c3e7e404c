//! The container lifecycle against real cgroups: resolve, create, join,
//! freeze/thaw, list, kill, destroy. Needs root. Every cgroup is named
//! `/berth-test-*` and removed by the test that made it.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

use berth_cgroups::{detect_layout, CgroupError, CgroupManager, Layout};
use support::{proc_cgroups, wait_until, Exit, TestCgroup};

/// Shared-memory counter the freeze test watches.
static COUNTER: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

fn count_forever() -> i32 {
    // SAFETY: COUNTER points into a MAP_SHARED mapping made before the fork.
    let c = unsafe { &*COUNTER.load(Ordering::SeqCst) };
    loop {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

fn pause_forever() -> i32 {
    loop {
        // SAFETY: pause(2) just sleeps until a signal.
        unsafe { libc::pause() };
    }
}

#[test]
fn layout_is_detected() {
    let layout = detect_layout().unwrap();
    let unified_beside_v1 = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists()
        && Path::new("/sys/fs/cgroup/cpu").exists();
    if unified_beside_v1 {
        assert_eq!(layout, Layout::Hybrid);
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(layout, Layout::V2);
    }
    eprintln!("layout: {layout}");
}

#[test]
fn freeze_and_thaw_stop_and_resume_the_processes() {
    // SAFETY: a fresh shared anonymous page for one counter.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    COUNTER.store(page.cast(), Ordering::SeqCst);
    // SAFETY: the page is zeroed and lives for the whole test.
    let counter = unsafe { &*page.cast::<AtomicU64>() };

    let t = TestCgroup::create_with("freeze", "{}");
    let mut child = t.spawn(count_forever);
    child.go();
    assert!(wait_until(Duration::from_secs(2), || counter
        .load(Ordering::Relaxed)
        > 0));
    assert!(!t.mgr.is_frozen().unwrap());

    t.mgr.freeze().unwrap();
    assert!(t.mgr.is_frozen().unwrap());
    let frozen_at = counter.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        counter.load(Ordering::Relaxed),
        frozen_at,
        "the child ran while frozen"
    );

    t.mgr.thaw().unwrap();
    assert!(!t.mgr.is_frozen().unwrap());
    assert!(
        wait_until(Duration::from_secs(2), || counter.load(Ordering::Relaxed)
            > frozen_at),
        "the child did not resume"
    );

    t.mgr.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
    // SAFETY: unmapping the page we mapped; the child is gone.
    unsafe { libc::munmap(page, 4096) };
}

/// Three processes, one of them in a sub-cgroup the "container" made.
fn three_in_tree(t: &TestCgroup, sub: &str) -> Vec<support::Child> {
    let kids: Vec<_> = (0..3).map(|_| t.spawn(pause_forever)).collect();
    let sub_mgr = CgroupManager::open(&format!("{}/{sub}", t.mgr.path())).unwrap();
    sub_mgr.create().unwrap();
    sub_mgr.add_pid(kids[2].pid).unwrap();
    for k in &kids {
        k.go();
    }
    kids
}

#[test]
fn pids_include_sub_cgroups_and_kill_all_with_sigterm_kills_them() {
    let t = TestCgroup::create_with("kill-term", "{}");
    let mut kids = three_in_tree(&t, "inner");
    let mut want: Vec<i32> = kids.iter().map(|k| k.pid).collect();
    want.sort();
    let mut got = t.mgr.pids().unwrap();
    got.sort();
    assert_eq!(got, want);

    // Not SIGKILL: the freeze, signal each, thaw path.
    t.mgr.kill_all(libc::SIGTERM).unwrap();
    for k in &mut kids {
        assert_eq!(k.wait(), Exit::Signal(libc::SIGTERM));
    }
    assert!(t.mgr.pids().unwrap().is_empty());
    assert!(!t.mgr.is_frozen().unwrap(), "kill_all must thaw");
}

#[test]
fn kill_all_with_sigkill_kills_the_whole_tree() {
    let t = TestCgroup::create_with("kill-kill", "{}");
    let mut kids = three_in_tree(&t, "inner");
    t.mgr.kill_all(libc::SIGKILL).unwrap();
    for k in &mut kids {
        assert_eq!(k.wait(), Exit::Signal(libc::SIGKILL));
    }
    assert!(wait_until(Duration::from_secs(2), || t
        .mgr
        .pids()
        .unwrap()
        .is_empty()));
    let e = t.mgr.kill_all(12345).unwrap_err();
    assert!(matches!(e, CgroupError::InvalidValue { .. }), "{e}");
}

#[test]
fn destroy_removes_every_directory_it_made() {
    let t = TestCgroup::create_with("destroy", r#"{"pids": {"limit": 10}}"#);
    // A sub-cgroup made inside the container, as systemd in a container would.
    let sub = CgroupManager::open(&format!("{}/nested/deeper", t.mgr.path())).unwrap();
    sub.create().unwrap();
    let dirs: Vec<_> = support::cgroup_mount_points()
        .into_iter()
        .map(|m| m.join(t.mgr.path().trim_start_matches('/')))
        .filter(|d| d.exists())
        .collect();
    assert!(!dirs.is_empty());
    assert!(t.mgr.exists());

    t.mgr.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} survived destroy", d.display());
        // The shared parent stays: other containers may live in it.
        assert!(d.parent().unwrap().exists());
    }
    assert!(!t.mgr.exists());
    assert!(!sub.exists());
    // Destroying again is fine.
    t.mgr.destroy().unwrap();
}

#[test]
fn open_round_trips_the_resolved_path() {
    let t = TestCgroup::create_with("reopen", "{}");
    let again = CgroupManager::open(t.mgr.path()).unwrap();
    assert_eq!(again.path(), t.mgr.path());
    assert!(again.exists());
    assert!(CgroupManager::open("not/absolute").is_err());
    assert!(CgroupManager::open("/a/../b").is_err());
}

#[test]
fn relative_paths_resolve_under_our_own_cgroups() {
    let name = support::unique_parent();
    let rel = name.trim_start_matches('/');
    let mgr = CgroupManager::new(Some(Path::new(rel)), "rel").unwrap();
    mgr.create().unwrap();
    // Removes what this test made even when an assertion fails (declared before
    // the child, so the child is gone first).
    struct Remove(CgroupManager);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = self.0.destroy();
            self.0.remove_parent_if_empty();
        }
    }
    let _cleanup = Remove(mgr.clone());
    let mut child = support::fork_child(|| 0);
    mgr.add_pid(child.pid).unwrap();

    // In every hierarchy the child sits at <our cgroup there>/<rel>.
    let ours = proc_cgroups(std::process::id() as i32);
    let its = proc_cgroups(child.pid);
    assert_eq!(ours.len(), its.len());
    for (o, c) in ours.iter().zip(&its) {
        let base = o.rsplit_once(':').unwrap().1.trim_end_matches('/');
        let want = format!("{}:{base}/{rel}", o.rsplit_once(':').unwrap().0);
        assert_eq!(c, &want);
    }
    // The path kept in the state file reopens the same directories, even
    // where our cgroups differ per hierarchy.
    let reopened = CgroupManager::open(mgr.path()).unwrap();
    assert_eq!(reopened.path(), mgr.path());

    child.go();
    assert_eq!(child.wait(), Exit::Code(0));
    reopened.destroy().unwrap();
    assert!(!mgr.exists());
}

#[test]
fn systemd_paths_are_refused() {
    let e = CgroupManager::new(Some(Path::new("machine.slice:libpod:abc")), "abc").unwrap_err();
    assert!(matches!(e, CgroupError::SystemdPath { .. }));
    assert!(e.to_string().contains("machine.slice:libpod:abc"));
}

#[test]
fn default_path_is_under_berth_runc() {
    let mgr = CgroupManager::new(None, "abc").unwrap();
    assert_eq!(mgr.path(), "/berth-runc/abc");
    // new() creates nothing.
    let mgr = CgroupManager::new(None, &support::unique_parent()[1..]).unwrap();
    assert!(!mgr.exists());
}
