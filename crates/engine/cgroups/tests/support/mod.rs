//! Test scaffolding: a uniquely named test cgroup that cleans up exactly
//! what it created, and forked children that start work on command.
//!
//! These tests need root and real cgroups. Every cgroup they make is named
//! `/berth-test-<pid>-<n>-<nanos>/...`; nothing else is touched.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_cgroups::CgroupManager;
use oci_spec::runtime::LinuxResources;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `/berth-test-<unique>/<case>`, destroyed (children first, then the
/// parent) when dropped.
pub struct TestCgroup {
    pub parent: String,
    pub mgr: CgroupManager,
    parent_mgr: CgroupManager,
}

pub fn unique_parent() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "/berth-test-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestCgroup {
    pub fn new(case: &str) -> Self {
        let parent = unique_parent();
        let path = format!("{parent}/{case}");
        let mgr = CgroupManager::new(Some(Path::new(&path)), case).unwrap();
        let parent_mgr = CgroupManager::new(Some(Path::new(&parent)), "parent").unwrap();
        assert_eq!(mgr.path(), path);
        TestCgroup {
            parent,
            mgr,
            parent_mgr,
        }
    }

    /// create + apply the resources given as OCI JSON.
    pub fn create_with(case: &str, resources: &str) -> Self {
        let t = Self::new(case);
        t.mgr.create().unwrap();
        t.mgr.apply(&resources_json(resources)).unwrap();
        t
    }

    /// Fork a child running `body` and move it into the container's cgroup.
    /// It starts only when [`Child::go`] is called.
    pub fn spawn(&self, body: fn() -> i32) -> Child {
        let child = fork_child(body);
        self.mgr.add_pid(child.pid).unwrap();
        child
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Children are reaped by their `Child` (dropped first); anything
        // else still in the cgroup is killed through the cgroup itself.
        if self.mgr.exists() {
            let _ = self.mgr.kill_all(libc::SIGKILL);
        }
        if let Err(e) = self.mgr.destroy() {
            eprintln!("cleanup: destroying {}: {e}", self.mgr.path());
        }
        if let Err(e) = self.parent_mgr.destroy() {
            eprintln!("cleanup: destroying {}: {e}", self.parent);
        }
    }
}

pub fn resources_json(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources JSON")
}

/// A forked process waiting for a byte on a pipe before running its body.
pub struct Child {
    pub pid: i32,
    go_fd: i32,
    reaped: bool,
}

/// Fork; the child blocks on a pipe, then runs `body` and `_exit`s with its
/// result. `body` runs in a forked copy of a multi-threaded process, so it
/// must only use async-signal-safe calls (raw syscalls, no allocation).
pub fn fork_child(body: fn() -> i32) -> Child {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child runs only async-signal-safe code until _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut b = 0u8;
        // SAFETY: read one byte into a local, then run the body and exit.
        unsafe {
            libc::close(fds[1]);
            libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            libc::_exit(body());
        }
    }
    // SAFETY: the read end belongs to the child now.
    unsafe { libc::close(fds[0]) };
    Child {
        pid,
        go_fd: fds[1],
        reaped: false,
    }
}

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Child {
    pub fn go(&self) {
        // SAFETY: one byte from a static buffer to our pipe.
        let n = unsafe { libc::write(self.go_fd, b"g".as_ptr().cast(), 1) };
        assert_eq!(n, 1);
    }

    pub fn wait(&mut self) -> Exit {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid, "waitpid");
        self.reaped = true;
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: closing our pipe end; killing and reaping our own child,
        // which cannot have been reaped (so its pid cannot be reused) yet.
        unsafe {
            libc::close(self.go_fd);
            if !self.reaped {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// Every cgroup mount point on this host, from /proc/self/mountinfo.
pub fn cgroup_mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap()))
        .collect()
}

/// The cgroup of `pid` in each hierarchy (lines of /proc/<pid>/cgroup).
pub fn proc_cgroups(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn spin_for(d: Duration) {
    // Async-signal-safe busy loop on CLOCK_MONOTONIC.
    let now = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into a local timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
    };
    let end = now() + d.as_nanos();
    while now() < end {
        std::hint::spin_loop();
    }
}
