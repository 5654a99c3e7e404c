//! What must not cross into a container: descriptors of the caller's beyond
//! `--preserve-fds`, and capabilities beyond the spec's.

use std::os::unix::process::CommandExt;

use anyhow::{ensure, Result};
use berth_runtime_tests::runtime::{run_command, Io, COMMAND_TIMEOUT};
use berth_runtime_tests::{conformance, run_spec_stdout, Bundle, Container, Spec};

/// `run` with fds 3 and 7 open in the caller (not close-on-exec).
fn run_with_extra_fds(rt: &berth_runtime_tests::Runtime, preserve: u32) -> Result<String> {
    let bundle = Bundle::new()?;
    let script = "for fd in 3 7; do if [ -e /proc/self/fd/$fd ]; then echo open-$fd; fi; done";
    bundle.write_spec(&Spec::new().shell(script))?;
    let c = Container::new(rt, &bundle, "fds");
    let preserve_arg = preserve.to_string();
    let bundle_arg = bundle.path().display().to_string();
    let mut cmd = rt.command(&[
        "run",
        "--preserve-fds",
        &preserve_arg,
        "--bundle",
        &bundle_arg,
        &c.id,
    ]);
    // SAFETY: between fork and exec only async-signal-safe calls (open, dup2, close).
    unsafe {
        cmd.pre_exec(|| {
            let fd = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::dup2(fd, 3);
            libc::dup2(fd, 7);
            if fd != 3 && fd != 7 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let outcome = run_command(cmd, COMMAND_TIMEOUT, Io::default())?.ok()?;
    c.assert_nothing_left()?;
    Ok(outcome.stdout)
}

conformance!(no_caller_fd_leaks_into_the_container, |rt| {
    let out = run_with_extra_fds(rt, 0)?;
    ensure!(
        !out.contains("open-3") && !out.contains("open-7"),
        "[{rt}] leaked: {out:?}"
    );
    Ok(())
});

conformance!(preserve_fds_passes_exactly_those, |rt| {
    let out = run_with_extra_fds(rt, 1)?;
    ensure!(out.contains("open-3"), "[{rt}] fd 3 not preserved: {out:?}");
    ensure!(!out.contains("open-7"), "[{rt}] fd 7 leaked: {out:?}");
    Ok(())
});

conformance!(no_capabilities_without_a_capabilities_field, |rt| {
    // The spec's process has no `capabilities` at all: the process gets none.
    let spec = Spec::new()
        .args(&["grep", "^Cap", "/proc/self/status"])
        .remove("/process/capabilities");
    let out = run_spec_stdout(rt, &spec, "nocaps")?;
    for line in out
        .lines()
        .filter(|l| l.starts_with("CapEff") || l.starts_with("CapPrm"))
    {
        ensure!(line.ends_with("0000000000000000"), "[{rt}] {line}");
    }
    Ok(())
});

conformance!(seccomp_profile_is_enforced, |rt| {
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    });
    let spec = Spec::new()
        .set("/linux/seccomp", profile)
        .shell("mkdir /dev/shm/blocked 2>&1; echo rc=$?; touch /dev/shm/allowed && echo touched");
    let out = run_spec_stdout(rt, &spec, "seccomp")?;
    ensure!(
        out.contains("rc=1"),
        "[{rt}] mkdir was not refused: {out:?}"
    );
    ensure!(
        out.contains("touched"),
        "[{rt}] other syscalls broke: {out:?}"
    );
    Ok(())
});
