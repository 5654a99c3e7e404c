//! Hooks: every phase runs once, in the order the runtime spec gives, with the
//! container's state JSON on stdin; a failing hook stops `create` cleanly.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_runtime_tests::{conformance, Bundle, Container, Spec};
use serde_json::Value;

/// The phases in the order they must run.
const PHASES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that saves its stdin as `<dir>/<phase>.json` and appends the phase
/// to `<dir>/order`.
fn recorder(dir: &str, phase: &str) -> String {
    format!("cat > {dir}/{phase}.json && echo {phase} >> {dir}/order")
}

conformance!(all_phases_run_in_order_with_state, |rt| {
    let bundle = Bundle::new()?;
    let log = bundle.dir("hooklog")?;
    let host_log = log.to_string_lossy().into_owned();
    let mut spec = Spec::new()
        .mount("/hooklog", "bind", &host_log, &["rbind", "rw"])
        .args(&["sleep", "300"]);
    for phase in PHASES {
        // startContainer hooks run inside the container, after pivot_root:
        // the log is at /hooklog there and /bin/sh is the rootfs's busybox.
        let dir = if phase == "startContainer" {
            "/hooklog"
        } else {
            host_log.as_str()
        };
        spec = spec.hook(phase, &recorder(dir, phase));
    }
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "hooks");
    c.start_running()?;
    let pid = c.pid()?;
    c.delete_and_check(true)?;

    let order = bundle.read("hooklog/order").unwrap_or_default();
    let mut order: Vec<&str> = order.lines().collect();
    // startContainer runs in the container just before its process is
    // exec'd, while `start` runs poststart once it has released the process:
    // runc does not order the two, so neither does this check.
    if order.get(3..5) == Some(&["poststart", "startContainer"][..]) {
        order.swap(3, 4);
    }
    ensure!(
        order == PHASES,
        "[{rt}] hooks ran as {order:?}, expected {PHASES:?}"
    );

    for phase in PHASES {
        let text = bundle.read(&format!("hooklog/{phase}.json"))?;
        let state: Value = serde_json::from_str(&text)
            .with_context(|| format!("[{rt}] {phase} hook got no state JSON on stdin: {text:?}"))?;
        ensure!(
            state["id"] == c.id.as_str(),
            "[{rt}] {phase} state id: {state}"
        );
        ensure!(
            state["bundle"] == bundle.path().to_string_lossy().as_ref(),
            "[{rt}] {phase} state bundle: {state}"
        );
        ensure!(
            state["ociVersion"].is_string(),
            "[{rt}] {phase} state ociVersion: {state}"
        );
        ensure!(
            state["status"].is_string(),
            "[{rt}] {phase} state status: {state}"
        );
        let seen = state["pid"].as_i64();
        match phase {
            // Hooks run in the container's namespaces see the pid there:
            // runc reports 1, the host pid would do as well.
            "createContainer" | "startContainer" => ensure!(
                seen == Some(1) || seen == Some(i64::from(pid)),
                "[{rt}] {phase} state pid must be 1 or {pid}: {state}"
            ),
            "poststop" => {}
            _ => ensure!(
                seen == Some(i64::from(pid)),
                "[{rt}] {phase} state pid must be {pid}: {state}"
            ),
        }
    }
    // The spec fixes no status per phase; runc 1.1 reports "creating" up to
    // createContainer, "created" for startContainer and poststart, and
    // "stopped" for poststop. Accept what a correct runtime could report.
    let status = |phase: &str| -> Result<String> {
        let state: Value = serde_json::from_str(&bundle.read(&format!("hooklog/{phase}.json"))?)?;
        Ok(state["status"].as_str().unwrap_or("").to_string())
    };
    for (phase, allowed) in [
        ("prestart", &["creating", "created"][..]),
        ("createRuntime", &["creating", "created"]),
        ("createContainer", &["creating", "created"]),
        ("startContainer", &["created", "running"]),
        ("poststart", &["created", "running"]),
        ("poststop", &["stopped"]),
    ] {
        let seen = status(phase)?;
        ensure!(
            allowed.contains(&seen.as_str()),
            "[{rt}] {phase} hook saw status {seen:?}, expected one of {allowed:?}"
        );
    }
    Ok(())
});

conformance!(failing_prestart_hook_fails_create, |rt| {
    let bundle = Bundle::new()?;
    let spec = Spec::new()
        .args(&["sleep", "300"])
        .hook("prestart", "echo hook-refused >&2; exit 7");
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "badhook");
    let outcome = c.create()?;
    ensure!(
        !outcome.success() && !outcome.timed_out,
        "[{rt}] create must fail when prestart fails: {outcome}"
    );
    ensure!(
        !outcome.stderr.trim().is_empty(),
        "[{rt}] create failed silently: {outcome}"
    );
    let state = c.command("state")?;
    ensure!(
        !state.success(),
        "[{rt}] a container that failed to create must not exist: {state}"
    );
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(poststart_runs_after_start, |rt| {
    // The hook sees the container already running: its pid is alive.
    let bundle = Bundle::new()?;
    let log = bundle.dir("hooklog")?;
    let script = format!(
        "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' | head -1); \
         if [ -d /proc/$pid ]; then echo alive; else echo dead; fi > {}/poststart",
        log.display()
    );
    bundle.write_spec(
        &Spec::new()
            .args(&["sleep", "300"])
            .hook("poststart", &script),
    )?;
    let c = Container::new(rt, &bundle, "poststart");
    c.start_running()?;
    let done = berth_runtime_tests::host::wait_until(Duration::from_secs(5), || {
        Ok(!bundle
            .read("hooklog/poststart")
            .unwrap_or_default()
            .is_empty())
    })?;
    ensure!(done, "[{rt}] the poststart hook did not run");
    let seen = bundle.read("hooklog/poststart")?;
    ensure!(
        seen.trim() == "alive",
        "[{rt}] poststart saw the container process {seen:?}"
    );
    c.delete_and_check(true)?;
    Ok(())
});
