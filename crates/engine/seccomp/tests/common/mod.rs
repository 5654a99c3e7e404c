//! Helpers for tests that load filters: a filter loaded into the test process would stay for
//! the rest of the run, so each one is loaded in a forked child that reports through its exit
//! status.

#![allow(dead_code)]

use berth_seccomp::SeccompProgram;
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::LinuxSeccomp;

/// Parses a `linux.seccomp` object.
pub fn profile(json: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(json).expect("test profile is valid JSON for LinuxSeccomp")
}

/// Runs `child` in a forked child and returns how it ended. The child exits with the code
/// `child` returns (101 if it panicked) and never returns into the test harness.
pub fn in_child(child: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child runs only `child` (raw syscalls, and allocation, which glibc makes safe
    // after fork) and leaves with _exit, never returning into the harness's threads.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// Sets no_new_privs (as the runtime does for `noNewPrivileges: true`) and loads `program`:
/// exit code 90 if that failed.
pub fn set_nnp_and_load(program: &SeccompProgram) -> Result<Option<std::os::fd::OwnedFd>, i32> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(90);
    }
    program.load().map_err(|_| 91)
}

/// The result of a raw syscall: its return value, or the errno it failed with.
pub fn result_of(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// `mkdir(path, 0700)` as the raw syscall (libc may use mkdirat instead).
pub fn sys_mkdir(path: &std::ffi::CStr) -> Result<libc::c_long, Errno> {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    result_of(unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o700) })
}

/// `getcwd` as the raw syscall.
pub fn sys_getcwd() -> Result<libc::c_long, Errno> {
    let mut buf = [0u8; 4096];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    result_of(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })
}

/// `getpriority(which, who)` as the raw syscall.
pub fn sys_getpriority(which: u64, who: u64) -> Result<libc::c_long, Errno> {
    // SAFETY: integer arguments only.
    result_of(unsafe { libc::syscall(libc::SYS_getpriority, which, who) })
}

/// `personality(persona)` as the raw syscall.
pub fn sys_personality(persona: u64) -> Result<libc::c_long, Errno> {
    // SAFETY: integer argument only; 0xffffffff queries without changing anything.
    result_of(unsafe { libc::syscall(libc::SYS_personality, persona) })
}

/// A syscall without arguments, e.g. getpid or getppid, as the raw syscall.
pub fn sys_noargs(nr: libc::c_long) -> Result<libc::c_long, Errno> {
    // SAFETY: `nr` names a syscall that takes no arguments.
    result_of(unsafe { libc::syscall(nr) })
}

/// Asserts that the child exited with code 0.
#[track_caller]
pub fn assert_exited_ok(status: WaitStatus) {
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "child ended with {status:?} (exit codes are the test's check numbers)"
    );
}
