//! Loading compiled profiles in forked children and checking what syscalls then do. The
//! syscalls are called raw, with x86-64 numbers.

#![cfg(target_arch = "x86_64")]

mod common;

use berth_seccomp::SeccompProgram;
use common::*;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use serde_json::json;

#[test]
fn errno_rules_fail_their_syscalls_and_nothing_else() {
    let program = SeccompProgram::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": ["mkdir", "getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM },
            { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV },
            { "names": ["getpgrp"], "action": "SCMP_ACT_ERRNO" }
        ]
    })))
    .unwrap();
    assert!(program.unknown_syscalls().is_empty());
    assert!(!program.returns_listener());

    let dir = std::env::temp_dir().join(format!("berth-seccomp-mkdir-{}", std::process::id()));
    let dir_c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    let status = in_child(|| {
        if sys_getcwd().is_err() || sys_noargs(libc::SYS_getppid).is_err() {
            return 1; // works before the filter
        }
        match set_nnp_and_load(&program) {
            Ok(None) => {}
            Ok(Some(_)) => return 2,
            Err(code) => return code,
        }
        if sys_mkdir(&dir_c) != Err(Errno::EPERM) {
            return 3;
        }
        if sys_getcwd() != Err(Errno::EPERM) {
            return 4;
        }
        if sys_noargs(libc::SYS_getppid) != Err(Errno::EXDEV) {
            return 5;
        }
        // SCMP_ACT_ERRNO without errnoRet returns EPERM, as in runc.
        if sys_noargs(libc::SYS_getpgrp) != Err(Errno::EPERM) {
            return 6;
        }
        // Everything else still works.
        if sys_noargs(libc::SYS_getpid).is_err() || std::fs::read_dir("/").is_err() {
            return 7;
        }
        0
    });
    assert_exited_ok(status);
    assert!(!dir.exists(), "mkdir must not have run");
}

#[test]
fn argument_comparisons() {
    let program = SeccompProgram::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // personality(PER_LINUX32) is refused, personality(query) is not.
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY,
              "args": [{ "index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ" }] },
            // Two comparisons of one argument: either matches (runc's behaviour).
            { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY,
              "args": [{ "index": 1, "value": 111, "op": "SCMP_CMP_EQ" },
                       { "index": 1, "value": 222, "op": "SCMP_CMP_EQ" }] },
            // Comparisons of different arguments: both must match.
            { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY,
              "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_EQ" },
                       { "index": 1, "value": 444, "op": "SCMP_CMP_EQ" }] },
            // (who & 0xf000) == 0x3000
            { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY,
              "args": [{ "index": 1, "value": 0xf000, "valueTwo": 0x3000, "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY,
              "args": [{ "index": 1, "value": 900_000, "op": "SCMP_CMP_GT" }] }
        ]
    })))
    .unwrap();

    let status = in_child(|| {
        if let Err(code) = set_nnp_and_load(&program) {
            return code;
        }
        let refused = |r: Result<libc::c_long, Errno>| r == Err(Errno::ENOTTY);
        if !refused(sys_personality(8)) {
            return 1;
        }
        if refused(sys_personality(0xffff_ffff)) {
            return 2;
        }
        if !refused(sys_getpriority(0, 111)) || !refused(sys_getpriority(0, 222)) {
            return 3;
        }
        if refused(sys_getpriority(0, 333)) {
            return 4;
        }
        if !refused(sys_getpriority(0, 444)) || refused(sys_getpriority(1, 444)) {
            return 5;
        }
        if !refused(sys_getpriority(0, 0x3000)) || !refused(sys_getpriority(0, 0x13000)) {
            return 6;
        }
        if refused(sys_getpriority(0, 0x2000)) {
            return 7;
        }
        if !refused(sys_getpriority(0, 900_001)) || refused(sys_getpriority(0, 0)) {
            return 8;
        }
        0
    });
    assert_exited_ok(status);
}

/// Loads a profile that applies `action` to getppid, calls getppid, and returns how the child
/// ended (exit 0 if getppid succeeded, 1 if it failed with ENOSYS, 2 otherwise).
fn getppid_under(action: &str) -> WaitStatus {
    let program = SeccompProgram::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": action }]
    })))
    .unwrap();
    in_child(|| {
        if let Err(code) = set_nnp_and_load(&program) {
            return code;
        }
        match sys_noargs(libc::SYS_getppid) {
            Ok(_) => 0,
            Err(Errno::ENOSYS) => 1,
            Err(_) => 2,
        }
    })
}

#[test]
fn kill_and_trap_actions_end_the_process_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let status = getppid_under(action);
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{action}: child ended with {status:?}"
        );
    }
}

#[test]
fn log_allows_and_trace_without_tracer_fails_with_enosys() {
    assert_exited_ok(getppid_under("SCMP_ACT_LOG"));
    assert_exited_ok(getppid_under("SCMP_ACT_ALLOW"));
    // With no tracer attached the kernel fails a SECCOMP_RET_TRACE syscall with ENOSYS.
    let status = getppid_under("SCMP_ACT_TRACE");
    assert!(matches!(status, WaitStatus::Exited(_, 1)), "{status:?}");
}

#[test]
fn filter_flags_are_passed_to_the_kernel() {
    let program = SeccompProgram::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO" }]
    })))
    .unwrap();
    let status = in_child(|| {
        if let Err(code) = set_nnp_and_load(&program) {
            return code;
        }
        if sys_noargs(libc::SYS_getppid) != Err(Errno::EPERM) {
            return 1;
        }
        // SECCOMP_FILTER_FLAG_SPEC_ALLOW leaves speculative store bypass mitigation off for the
        // task; without it the kernel forces it on for seccomp tasks when the mitigation is
        // "seccomp" (the default). Either way the filter is in force.
        0
    });
    assert_exited_ok(status);
}

#[test]
fn load_fails_without_no_new_privs_or_cap_sys_admin() {
    let program = SeccompProgram::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO" }]
    })))
    .unwrap();
    let status = in_child(|| {
        // Drop CAP_SYS_ADMIN from the effective set (a no-op when not root), leave
        // no_new_privs unset.
        let mut header = CapHeader {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget/capset read/write exactly one header and two data structs.
        unsafe {
            if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
                return 1;
            }
            data[0].effective &= !(1 << CAP_SYS_ADMIN);
            if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
                return 2;
            }
        }
        match program.load() {
            Err(berth_seccomp::SeccompError::Load {
                errno: Errno::EACCES,
                ..
            }) => 0,
            Err(_) => 3,
            Ok(_) => 4,
        }
    });
    assert_exited_ok(status);
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capability number of CAP_SYS_ADMIN (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
