//! Real callers: podman and containerd drive the runtime exactly as they
//! drive runc, and must not be able to tell the difference.
//!
//! The conformance tests call the runtime's command line themselves; these
//! let the real callers do it, with the flags, files and timing they really
//! use. Each scenario is written once and runs for each runtime
//! (`<scenario>::berth_runc` and `<scenario>::runc`), so a failure with
//! berth-runc alone is berth's.
//!
//! A podman scenario: [`Podman::new`] makes a private storage root, run root
//! and containers.conf in a temporary directory and imports a busybox image
//! made by scripts/make-busybox-rootfs.sh; the scenario runs `podman
//! --runtime <abs path> --cgroup-manager=cgroupfs run ...` (podman → conmon →
//! runtime); dropping the [`Podman`] removes containers, images, mounts and
//! the test's cgroup parent.
//!
//! A containerd scenario: [`Containerd::start`] runs a private daemon (own
//! root, state, socket, config without CRI) and imports the same busybox as
//! a hand-written OCI image archive; the scenario runs `ctr run --runc-binary
//! <abs path> ...` (ctr → containerd → containerd-shim-runc-v2 → runtime);
//! dropping it removes tasks, containers and the image, stops the daemon by
//! its pid, and removes mounts and the namespace's cgroups.
//!
//! Running: `cargo test -p berth-runtime-tests --test callers` as root.
//! `BERTH_RUNC=/path/to/berth-runc` picks the binary (else it is built),
//! `RUNTIMES=runc` or `RUNTIMES=berth-runc` picks runtimes, and
//! `BERTH_SKIP_CALLERS=1` turns a missing podman or containerd into a loud
//! skip instead of a failure.

#[path = "callers/command.rs"]
mod command;
#[path = "callers/containerd.rs"]
mod containerd;
#[path = "callers/host.rs"]
mod host;
#[path = "callers/image.rs"]
mod image;
#[path = "callers/podman.rs"]
mod podman;
#[path = "callers/runtimes.rs"]
mod runtimes;
#[path = "callers/tty.rs"]
mod tty;

use std::time::Duration;

use anyhow::{ensure, Result};

use containerd::{container_id, Containerd};
use podman::{Podman, IMAGE};
use runtimes::{run_scenario, Runtime, BERTH_RUNC, CONTAINERD, PODMAN, RUNC};

/// Declares a scenario once and a `#[test]` for each runtime; `$tools` are
/// the callers it needs.
macro_rules! callers {
    ($name:ident, $tools:expr, |$rt:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn scenario($rt: &Runtime) -> Result<()> $body

            #[test]
            fn berth_runc() {
                run_scenario(BERTH_RUNC, stringify!($name), $tools, scenario);
            }

            #[test]
            fn runc() {
                run_scenario(RUNC, stringify!($name), $tools, scenario);
            }
        }
    };
}

/// 64 MiB, as `--memory 64m` asks.
const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// Prints `<file>=<value>` for each memory limit file the container can see:
/// its own cgroup mounted at the hierarchy's root (v1, or v2 with a cgroup
/// namespace), or the whole hierarchy with its path from /proc/self/cgroup.
const SHOW_MEMORY_LIMITS: &str = r#"
v1=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' /proc/self/cgroup)
v2=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup)
for f in /sys/fs/cgroup/memory/memory.limit_in_bytes \
         "/sys/fs/cgroup/memory$v1/memory.limit_in_bytes" \
         /sys/fs/cgroup/memory.max "/sys/fs/cgroup$v2/memory.max"; do
    [ -r "$f" ] && echo "$f=$(cat "$f")"
done
true
"#;

/// PID 1 of a detached container: exits 0 on SIGTERM, so a caller's stop
/// that reaches it shows as exit code 0, and one that must fall back to
/// SIGKILL as 137.
const SLEEP_UNTIL_TERM: &str = "trap 'exit 0' TERM; sleep 300 & wait";

callers!(podman_run_prints_output, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let out = podman.run_rm(&[], &["echo", "hi"])?;
    if !out.success() || out.stdout != "hi\n" {
        return Err(podman.fail("`podman run --rm IMAGE echo hi` must print hi", &out));
    }
    podman.assert_no_containers()
});

callers!(podman_exit_code_propagates, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let out = podman.run_rm(&[], &["sh", "-c", "exit 7"])?;
    if out.code != Some(7) {
        return Err(podman.fail("`sh -c 'exit 7'` must make podman exit 7", &out));
    }
    podman.assert_no_containers()
});

// podman's documented exit codes: 127 when the command does not exist, 126
// when it cannot be invoked. podman tells them apart only by the runtime's
// `create` failing with runc's words ("no such file or directory",
// "permission denied"); an error podman had to log itself (`level=error`,
// e.g. its cleanup `delete --force` of the never-created container failing)
// is not runc's behaviour either.
callers!(podman_bad_command_exits_127_or_126, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let mut failures = Vec::new();
    for (command, code) in [("/nonexistent", 127), ("/etc/passwd", 126)] {
        let out = podman.run_rm(&[], &[command])?;
        if out.code != Some(code) || out.stderr.contains("level=error") {
            let what = format!(
                "`podman run --rm IMAGE {command}` must exit {code} with only the runtime's \
                 create error"
            );
            failures.push(podman.fail(&what, &out).to_string());
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    podman.assert_no_containers()
});

callers!(podman_user_sets_ids, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let out = podman.run_rm(&["--user", "1000:1000"], &["sh", "-c", "id -u; id -g"])?;
    if !out.success() || out.stdout != "1000\n1000\n" {
        return Err(podman.fail("`--user 1000:1000` must run as uid and gid 1000", &out));
    }
    podman.assert_no_containers()
});

callers!(podman_memory_limit_reaches_cgroup, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let name = host::unique_name();
    let mut args = podman.run_args(&["--name", &name, "--memory", "64m"]);
    args.extend([IMAGE, "sh", "-c", SHOW_MEMORY_LIMITS]);
    let out = podman.run(&args)?;
    let asked = podman
        .oci_config(&name)
        .map(|c| c["linux"]["resources"]["memory"].to_string())
        .unwrap_or_else(|e| format!("(unknown: {e:#})"));
    podman.run(&["rm", "--force", &name])?.ok()?;
    if !out.success() {
        return Err(podman.fail("`podman run --memory 64m` failed", &out));
    }
    let limits: Vec<&str> = out.stdout.lines().collect();
    let wanted = format!("={MEMORY_LIMIT}");
    if !limits.iter().any(|l| l.ends_with(&wanted)) {
        return Err(podman.fail(
            &format!(
                "`--memory 64m`: the container must see a memory limit of {MEMORY_LIMIT}; \
                 podman's config.json asked for linux.resources.memory = {asked}, the \
                 container saw {limits:?}"
            ),
            &out,
        ));
    }
    podman.assert_no_containers()
});

callers!(podman_detached_exec_stop_rm, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let name = host::unique_name();
    let mut args = podman.run_args(&["-d", "--name", &name]);
    args.extend([IMAGE, "sh", "-c", SLEEP_UNTIL_TERM]);
    let started = podman.run(&args)?;
    if !started.success() {
        return Err(podman.fail("`podman run -d` failed", &started));
    }
    let exec = podman.run(&["exec", &name, "echo", "from-exec"])?;
    if !exec.success() || exec.stdout != "from-exec\n" {
        return Err(podman.fail(
            "`podman exec CTR echo from-exec` must print from-exec",
            &exec,
        ));
    }
    let exec = podman.run(&["exec", &name, "sh", "-c", "exit 3"])?;
    if exec.code != Some(3) {
        return Err(podman.fail("`podman exec CTR sh -c 'exit 3'` must exit 3", &exec));
    }
    let stop = podman.run(&["stop", "--time", "10", &name])?;
    if !stop.success() {
        return Err(podman.fail("`podman stop` failed", &stop));
    }
    let code = podman.run(&["inspect", "--format", "{{.State.ExitCode}}", &name])?;
    if code.stdout.trim() != "0" {
        return Err(podman.fail(
            "after `podman stop`, PID 1 must have exited 0 from its SIGTERM trap \
             (137 means SIGTERM never reached it)",
            &code,
        ));
    }
    let rm = podman.run(&["rm", &name])?;
    if !rm.success() {
        return Err(podman.fail("`podman rm` failed", &rm));
    }
    podman.assert_no_containers()
});

callers!(podman_interactive_terminal, PODMAN, |rt| {
    let podman = Podman::new(rt)?;
    let mut args = podman.run_args(&["--rm", "-it"]);
    args.extend([IMAGE, "sh"]);
    let session = tty::run_on_pty(
        podman.command(&args),
        "# ",
        b"echo $((6*7)); exit\n",
        Duration::from_secs(60),
    )?;
    let saw_42 = session
        .output
        .lines()
        .any(|l| l.trim_end_matches('\r') == "42");
    ensure!(
        saw_42 && session.code == Some(0) && !session.timed_out,
        "[{rt}] `podman run -it IMAGE sh` fed `echo $((6*7)); exit` must print 42 and exit 0; \
         `{}` exited {:?} (signal {:?}, timed out: {}) printing {:?}{}",
        session.cmdline,
        session.code,
        session.signal,
        session.timed_out,
        session.output,
        podman.runtime_logs()
    );
    podman.assert_no_containers()
});

callers!(ctr_run_prints_output, CONTAINERD, |rt| {
    let ctd = Containerd::start(rt)?;
    let out = ctd.run(&["--rm"], &container_id(), &["echo", "hi"])?;
    if !out.success() || out.stdout != "hi\n" {
        return Err(ctd.fail("`ctr run --rm IMAGE ID echo hi` must print hi", &out));
    }
    ctd.assert_nothing_listed()
});

callers!(ctr_exit_code_propagates, CONTAINERD, |rt| {
    let ctd = Containerd::start(rt)?;
    let out = ctd.run(&["--rm"], &container_id(), &["sh", "-c", "exit 5"])?;
    if out.code != Some(5) {
        return Err(ctd.fail("`sh -c 'exit 5'` must make ctr run exit 5", &out));
    }
    ctd.assert_nothing_listed()
});

callers!(ctr_detached_exec_kill_rm, CONTAINERD, |rt| {
    let ctd = Containerd::start(rt)?;
    let id = container_id();
    let started = ctd.run(&["-d"], &id, &["sh", "-c", SLEEP_UNTIL_TERM])?;
    if !started.success() {
        return Err(ctd.fail("`ctr run -d` failed", &started));
    }
    ctd.wait_for_status(&id, "RUNNING")?;
    let exec = ctd.ctr(&["task", "exec", "--exec-id", "x", &id, "echo", "hi"])?;
    if !exec.success() || exec.stdout != "hi\n" {
        return Err(ctd.fail(
            "`ctr task exec --exec-id x ID echo hi` must print hi",
            &exec,
        ));
    }
    let exec = ctd.ctr(&["task", "exec", "--exec-id", "y", &id, "sh", "-c", "exit 4"])?;
    if exec.code != Some(4) {
        return Err(ctd.fail("`ctr task exec ... sh -c 'exit 4'` must exit 4", &exec));
    }
    let killed = ctd.ctr(&["task", "kill", &id])?;
    if !killed.success() {
        return Err(ctd.fail("`ctr task kill` (SIGTERM) failed", &killed));
    }
    ctd.wait_for_status(&id, "STOPPED")?;
    let removed = ctd.ctr(&["task", "rm", &id])?;
    if !removed.success() || removed.stderr.contains("non-zero exit code") {
        return Err(ctd.fail(
            "`ctr task rm` must remove a task that exited 0 from its SIGTERM trap",
            &removed,
        ));
    }
    let removed = ctd.ctr(&["container", "rm", &id])?;
    if !removed.success() {
        return Err(ctd.fail("`ctr container rm` failed", &removed));
    }
    ctd.assert_nothing_listed()
});
