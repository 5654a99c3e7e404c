//! Limits are enforced by the kernel, not just written: each test puts a
//! forked child into a fresh `/berth-test-*` cgroup and watches it hit the
//! limit. Needs root and real cgroups (v1, hybrid or v2).

mod support;

use std::path::Path;
use std::time::Duration;

use berth_cgroups::{CgroupError, CgroupManager, Layout};
use support::{resources_json, spin_for, Exit, TestCgroup};

const MIB: usize = 1024 * 1024;

/// Touch 256 MiB, one page at a time.
fn memory_hog() -> i32 {
    let len = 256 * MIB;
    // SAFETY: a private anonymous mapping we only write within.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 2;
        }
        let p = p.cast::<u8>();
        let mut off = 0;
        while off < len {
            std::ptr::write_volatile(p.add(off), 1);
            off += 4096;
        }
    }
    0 // survived: the limit did not hold
}

#[test]
fn memory_limit_oom_kills_a_hog() {
    let limit = 32 * MIB;
    let t = TestCgroup::create_with(
        "oom",
        &format!(r#"{{"memory": {{"limit": {limit}, "swap": {limit}}}}}"#),
    );
    let mut child = t.spawn(memory_hog);
    child.go();
    assert_eq!(
        child.wait(),
        Exit::Signal(libc::SIGKILL),
        "the OOM killer should kill the hog"
    );

    let stats = t.mgr.stats().unwrap();
    // v1 rounds the limit to pages; 32 MiB already is a page multiple.
    assert_eq!(stats.memory.usage.limit, limit as u64);
    // The kernel's own record of the kill (v1 memory.oom_control, v2 memory.events).
    let oom_kills = support::cgroup_mount_points()
        .iter()
        .flat_map(|m| {
            ["memory.oom_control", "memory.events"].map(|f| m.join(&t.mgr.path()[1..]).join(f))
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
        .find_map(|l| {
            l.strip_prefix("oom_kill ")
                .map(|n| n.trim().parse::<u64>().unwrap())
        });
    assert_eq!(oom_kills, Some(1));
}

/// Fork until fork fails; reap everything before returning.
fn fork_until_refused() -> i32 {
    let mut kids = [0i32; 32];
    let mut n = 0;
    let mut refused = false;
    while n < kids.len() {
        // SAFETY: raw fork; the grandchild only pauses.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: wait for SIGKILL.
            unsafe {
                libc::pause();
                libc::_exit(0);
            }
        }
        if pid < 0 {
            // SAFETY: reading errno right after the failed call.
            refused = unsafe { *libc::__errno_location() } == libc::EAGAIN;
            break;
        }
        kids[n] = pid;
        n += 1;
    }
    for &k in &kids[..n] {
        // SAFETY: killing and reaping our own children.
        unsafe {
            libc::kill(k, libc::SIGKILL);
            libc::waitpid(k, std::ptr::null_mut(), 0);
        }
    }
    match (refused, n) {
        (true, _) => 100 + n as i32,
        (false, _) => 1,
    }
}

#[test]
fn pids_limit_makes_fork_fail() {
    let t = TestCgroup::create_with("pids", r#"{"pids": {"limit": 4}}"#);
    let mut child = t.spawn(fork_until_refused);
    child.go();
    // The child itself is one of the 4: it can fork exactly 3 times.
    assert_eq!(
        child.wait(),
        Exit::Code(103),
        "fork should fail with EAGAIN after 3 children"
    );
    let stats = t.mgr.stats().unwrap();
    assert_eq!(stats.pids.limit, 4);
}

fn spin_half_a_second() -> i32 {
    spin_for(Duration::from_millis(500));
    0
}

#[test]
fn cpu_quota_throttles() {
    // 10 ms every 100 ms: a busy loop is throttled in every period.
    let t = TestCgroup::create_with(
        "cpu",
        r#"{"cpu": {"quota": 10000, "period": 100000, "shares": 512}}"#,
    );
    let before = t.mgr.stats().unwrap().cpu.throttling.throttled_periods;
    let mut child = t.spawn(spin_half_a_second);
    child.go();
    assert_eq!(child.wait(), Exit::Code(0));
    let stats = t.mgr.stats().unwrap();
    assert!(
        stats.cpu.throttling.throttled_periods > before,
        "nr_throttled did not grow: {:?}",
        stats.cpu.throttling
    );
    assert!(stats.cpu.usage.total > 0);
    // 500 ms of wall time at 10% quota: well under 200 ms of CPU.
    assert!(
        stats.cpu.usage.total < 200_000_000,
        "used {} ns of CPU despite the quota",
        stats.cpu.usage.total
    );
}

/// Open /dev/null (allowed) and /dev/zero (denied).
fn probe_devices() -> i32 {
    // SAFETY: plain open(2) calls on static C strings.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        let zero = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
        match (null >= 0, zero >= 0) {
            (true, false) => 0,
            (false, _) => 1,
            (true, true) => 2,
        }
    }
}

#[test]
fn device_rules_are_enforced() {
    let rules = r#"{"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]}"#;
    let t = TestCgroup::create_with("devices", rules);
    // An `update` with the same rules is a no-op, not a moment of deny-all.
    t.mgr.apply(&resources_json(rules)).unwrap();
    let mut child = t.spawn(probe_devices);
    child.go();
    assert_eq!(
        child.wait(),
        Exit::Code(0),
        "1: /dev/null denied, 2: /dev/zero allowed"
    );
}

#[test]
fn swap_and_shares_are_written_where_the_kernel_reads_them() {
    let t = TestCgroup::new("mem");
    t.mgr.create().unwrap();
    // cgroup v2 has no swappiness knob.
    let swappiness = if t.mgr.layout() == Layout::V2 {
        ""
    } else {
        r#", "swappiness": 10"#
    };
    t.mgr
        .apply(&resources_json(&format!(
            r#"{{"memory": {{"limit": 67108864, "reservation": 33554432, "swap": 134217728{swappiness}}}}}"#
        )))
        .unwrap();
    let stats = t.mgr.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 64 * MIB as u64);
    if t.mgr.layout() != Layout::V2 {
        // v1 reports memory+swap.
        assert_eq!(stats.memory.swap.limit, 128 * MIB as u64);
        // Lower both in one update: memory goes first, then memsw.
        t.mgr
            .apply(&resources_json(
                r#"{"memory": {"limit": 16777216, "swap": 33554432}}"#,
            ))
            .unwrap();
        let stats = t.mgr.stats().unwrap();
        assert_eq!(stats.memory.usage.limit, 16 * MIB as u64);
        assert_eq!(stats.memory.swap.limit, 32 * MIB as u64);
    }
}

#[test]
fn bad_values_name_the_field() {
    let t = TestCgroup::new("bad");
    t.mgr.create().unwrap();
    let e = t
        .mgr
        .apply(&resources_json(
            r#"{"memory": {"limit": 67108864, "swap": 1024}}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("linux.resources.memory.swap"), "{e}");

    let e = t
        .mgr
        .apply(&resources_json(
            r#"{"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("hugepageLimits[0].pageSize"), "{e}");

    if t.mgr.layout() == Layout::V2 {
        return;
    }
    // Memory is a v1 controller here: `unified` keys for it are refused.
    let e = t
        .mgr
        .apply(&resources_json(
            r#"{"unified": {"memory.high": "1000000"}}"#,
        ))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("linux.resources.unified"), "{e}");
}

#[test]
fn unmounted_controllers_are_refused_by_field() {
    let t = TestCgroup::new("net");
    t.mgr.create().unwrap();
    let has_net_cls = support::cgroup_mount_points()
        .iter()
        .any(|p| p.to_string_lossy().contains("net_cls"));
    if has_net_cls || t.mgr.layout() == Layout::V2 {
        // On v2 the same request is refused because net_cls is v1-only.
        if t.mgr.layout() == Layout::V2 {
            let e = t
                .mgr
                .apply(&resources_json(r#"{"network": {"classID": 1048577}}"#))
                .unwrap_err();
            assert!(e.to_string().contains("linux.resources.network"), "{e}");
        }
        return;
    }
    let e = t
        .mgr
        .apply(&resources_json(r#"{"network": {"classID": 1048577}}"#))
        .unwrap_err();
    assert!(
        e.to_string().contains("linux.resources.network.classID"),
        "{e}"
    );
    assert!(e.to_string().contains("net_cls"), "{e}");
}

/// On a hybrid host whose hugetlb controller lives only on the cgroup2 mount
/// (this build host), the limit goes to the v2 file there.
#[test]
fn hugetlb_limits_reach_the_controller_wherever_it_is() {
    let limit = 4 * MIB;
    let t = TestCgroup::create_with(
        "hugetlb",
        &format!(r#"{{"hugepageLimits": [{{"pageSize": "2MB", "limit": {limit}}}]}}"#),
    );
    let stats = t.mgr.stats().unwrap();
    assert!(stats.hugetlb.contains_key("2MB"), "{:?}", stats.hugetlb);
    let candidates = [
        format!(
            "/sys/fs/cgroup/hugetlb{}/hugetlb.2MB.limit_in_bytes",
            t.mgr.path()
        ),
        format!("/sys/fs/cgroup/unified{}/hugetlb.2MB.max", t.mgr.path()),
        format!("/sys/fs/cgroup{}/hugetlb.2MB.max", t.mgr.path()),
    ];
    let written: Vec<String> = candidates
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(written, [limit.to_string()], "looked at {candidates:?}");
}

#[test]
fn apply_create_add_destroy_is_fast() {
    // The per-container cost on `run`; printed for the record and bounded
    // loosely so a gross regression shows. Most of it is the kernel: the
    // first cgroup.procs write after a quiet spell waits for an RCU grace
    // period (cgroup_threadgroup_rwsem), 5-20 ms here, for runc too.
    let resources = resources_json(
        r#"{"memory": {"limit": 67108864}, "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "pids": {"limit": 100},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]}"#,
    );
    let parent = support::unique_parent();
    let mut child = support::fork_child(|| 0);
    let start = std::time::Instant::now();
    let path = format!("{parent}/perf");
    let mgr = CgroupManager::new(Some(Path::new(&path)), "perf").unwrap();
    mgr.create().unwrap();
    mgr.apply(&resources).unwrap();
    mgr.add_pid(child.pid).unwrap();
    let setup = start.elapsed();
    child.go();
    assert_eq!(child.wait(), Exit::Code(0));
    let t = std::time::Instant::now();
    mgr.destroy().unwrap();
    let teardown = t.elapsed();
    CgroupManager::new(Some(Path::new(&parent)), "p")
        .unwrap()
        .destroy()
        .unwrap();
    eprintln!("new+create+apply+add_pid: {setup:?}, destroy: {teardown:?}");
    assert!(setup < Duration::from_millis(100), "{setup:?}");
}
