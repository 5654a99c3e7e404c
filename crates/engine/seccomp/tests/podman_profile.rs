//! podman 4.3's default profile (as podman writes it into config.json for a root container on
//! x86-64: 437 syscall names, three architectures), compiled and loaded as berth-runc will, and
//! timed. The budget for a whole `run` is about 15 ms; compile + load must stay well under 2 ms.

#![cfg(target_arch = "x86_64")]

mod common;

use std::time::{Duration, Instant};

use berth_seccomp::{CacheOutcome, SeccompProgram};
use common::*;
use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccomp;

const PODMAN_DEFAULT: &str = include_str!("fixtures/podman-default-seccomp.json");

fn podman_default() -> LinuxSeccomp {
    serde_json::from_str(PODMAN_DEFAULT).unwrap()
}

/// Loads `program` in a forked child, checks a few syscalls against the podman profile, and
/// returns how long `load` took there.
fn load_in_child(program: &SeccompProgram) -> Duration {
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let status = in_child(|| {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return 90;
        }
        let start = Instant::now();
        if program.load().is_err() {
            return 91;
        }
        let nanos = start.elapsed().as_nanos() as u64;
        if sys_noargs(libc::SYS_getpid).is_err() || std::fs::metadata("/").is_err() {
            return 1; // allowed
        }
        if sys_personality(0xffff_ffff).is_err() {
            return 2; // allowed by an argument rule
        }
        if sys_personality(0x1234) != Err(Errno::ENOSYS) {
            return 3; // defaultAction ERRNO, defaultErrnoRet 38
        }
        if sys_noargs(libc::SYS_vhangup) != Err(Errno::EPERM) {
            return 4; // an explicit ERRNO rule with errnoRet 1
        }
        // SAFETY: add_key with null arguments fails before touching memory, if it runs at all.
        let add_key = unsafe { libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0) };
        if result_of(add_key) != Err(Errno::ENOSYS) {
            return 5; // not in the profile
        }
        // SAFETY: writes 8 bytes from a local to the pipe.
        let written = unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&write_end),
                (&nanos as *const u64).cast(),
                8,
            )
        };
        if written != 8 {
            return 6;
        }
        0
    });
    drop(write_end);
    assert_exited_ok(status);
    let mut nanos = [0u8; 8];
    nix::unistd::read(&read_end, &mut nanos).unwrap();
    Duration::from_nanos(u64::from_ne_bytes(nanos))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn podman_default_profile_compiles_and_loads_well_under_2ms_from_the_cache() {
    let seccomp = podman_default();
    let names: usize = seccomp
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.names().len())
        .sum();
    assert!(names > 400, "{names} names");
    let cache = std::env::temp_dir().join(format!("berth-seccomp-podman-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    // libseccomp itself, as every container would pay without the cache.
    let start = Instant::now();
    let uncached = SeccompProgram::compile(&seccomp).unwrap();
    let uncached_time = start.elapsed();
    let start = Instant::now();
    let (_, outcome) = SeccompProgram::compile_cached(&seccomp, &cache).unwrap();
    let miss_time = start.elapsed();
    assert!(matches!(outcome, CacheOutcome::Stored), "{outcome:?}");

    let mut compile_times = Vec::new();
    let mut load_times = Vec::new();
    let mut program = None;
    for _ in 0..5 {
        let start = Instant::now();
        let (cached, outcome) = SeccompProgram::compile_cached(&seccomp, &cache).unwrap();
        compile_times.push(start.elapsed());
        assert!(matches!(outcome, CacheOutcome::Hit), "{outcome:?}");
        load_times.push(load_in_child(&cached));
        program = Some(cached);
    }
    let program = program.unwrap();
    assert_eq!(program.instruction_count(), uncached.instruction_count());
    let (hit, load) = (median(compile_times), median(load_times));
    println!(
        "podman default profile: {names} names, {} BPF instructions, unknown to libseccomp: {:?}; \
         compile without cache {uncached_time:?}, cache miss {miss_time:?}, \
         cache hit {hit:?}, load in child {load:?} (medians of 5)",
        program.instruction_count(),
        program.unknown_syscalls(),
    );
    std::fs::remove_dir_all(&cache).unwrap();
    assert!(
        hit + load < Duration::from_millis(2),
        "cached compile {hit:?} + load {load:?} is over 2 ms"
    );
}
