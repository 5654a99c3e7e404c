//! The container lifecycle through the command line: create, start, state,
//! kill, delete, run, list, ps and pid files.

use std::fs;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_runtime_tests::{conformance, Bundle, Container, Spec};
use serde_json::Value;

const SECOND: Duration = Duration::from_secs(1);

conformance!(create_start_stop_delete, |rt| {
    let bundle = Bundle::new()?;
    let spec =
        bundle.share(Spec::new().shell("while [ ! -e /shared/stop ]; do sleep 0.05; done"))?;
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "lifecycle");

    c.create()?.ok()?;
    let state = c.state()?;
    ensure!(state["status"] == "created", "[{rt}] after create: {state}");
    ensure!(state["id"] == c.id.as_str(), "[{rt}] state id: {state}");
    ensure!(
        state["pid"].as_i64().unwrap_or(0) > 0,
        "[{rt}] state pid must be > 0: {state}"
    );
    ensure!(
        state["bundle"] == bundle.path().to_string_lossy().as_ref(),
        "[{rt}] state bundle must be {:?}: {state}",
        bundle.path()
    );
    ensure!(
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "[{rt}] state ociVersion must be a non-empty string: {state}"
    );

    c.start()?;
    ensure!(
        c.status()? == "running",
        "[{rt}] after start: {}",
        c.state()?
    );

    fs::write(bundle.file("shared/stop"), "")?;
    c.wait_for_status("stopped", 5 * SECOND)?;

    c.delete_and_check(false)?;
    let gone = c.command("state")?;
    ensure!(
        !gone.success(),
        "[{rt}] state after delete must fail: {gone}"
    );
    ensure!(
        !gone.stderr.trim().is_empty(),
        "[{rt}] state after delete gave no message: {gone}"
    );
    Ok(())
});

conformance!(run_returns_exit_code, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().shell("exit 3"))?;
    let c = Container::new(rt, &bundle, "exitcode");
    let outcome = c.run()?;
    ensure!(
        outcome.code == Some(3),
        "[{rt}] run of `exit 3` must exit 3: {outcome}"
    );
    // A foreground run deletes the container when its process exits.
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(run_stdout_reaches_caller, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().shell("echo hello-from-berth; echo to-stderr >&2"))?;
    let c = Container::new(rt, &bundle, "stdout");
    let outcome = c.run()?.ok()?;
    ensure!(
        outcome.stdout.contains("hello-from-berth"),
        "[{rt}] stdout lost: {outcome}"
    );
    ensure!(
        outcome.stderr.contains("to-stderr"),
        "[{rt}] stderr lost: {outcome}"
    );
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(run_detach, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().shell("echo detached-out; exec sleep 300"))?;
    let c = Container::new(rt, &bundle, "detach");
    let outcome = c.run_detached(&[])?.ok()?;
    ensure!(outcome.code == Some(0), "[{rt}] run --detach: {outcome}");
    c.wait_for_status("running", 5 * SECOND)?;
    let printed = berth_runtime_tests::host::wait_until(5 * SECOND, || {
        Ok(c.stdout().contains("detached-out"))
    })?;
    ensure!(
        printed,
        "[{rt}] detached container's stdout did not reach the caller's file"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(kill_by_name_and_number, |rt| {
    // A shell that exits on TERM (pid 1 ignores signals it has no handler
    // for) and reports it; KILL needs no handler.
    let trap = "trap 'echo got-term > /shared/term; exit 0' TERM; echo > /shared/ready; \
                while true; do sleep 0.05; done";
    for signal in ["TERM", "SIGTERM", "15", "KILL", "SIGKILL", "9"] {
        let bundle = Bundle::new()?;
        bundle.write_spec(&bundle.share(Spec::new().shell(trap))?)?;
        let c = Container::new(rt, &bundle, "kill");
        c.start_running()?;
        // The signal must not overtake the shell installing its trap.
        let ready = berth_runtime_tests::host::wait_until(5 * SECOND, || {
            Ok(bundle.read("shared/ready").is_ok())
        })?;
        ensure!(ready, "[{rt}] the container never got ready");
        c.kill(signal)?
            .ok()
            .with_context(|| format!("[{rt}] kill {signal}"))?;
        c.wait_for_status("stopped", 5 * SECOND)
            .with_context(|| format!("[{rt}] after kill {signal}"))?;
        if !signal.contains("KILL") && signal != "9" {
            let log = bundle.read("shared/term").unwrap_or_default();
            ensure!(
                log.contains("got-term"),
                "[{rt}] kill {signal} did not deliver SIGTERM"
            );
        }
        c.delete_and_check(false)?;
    }
    Ok(())
});

conformance!(kill_all, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().shell("sleep 300 & sleep 300 & wait"))?;
    let c = Container::new(rt, &bundle, "killall");
    c.start_running()?;
    let three = berth_runtime_tests::host::wait_until(5 * SECOND, || Ok(ps(&c)?.len() == 3))?;
    ensure!(three, "[{rt}] expected 3 processes, ps says {:?}", ps(&c)?);
    let pids = ps(&c)?;
    c.rt.invoke(&["kill", "--all", &c.id, "KILL"])?.ok()?;
    c.wait_for_status("stopped", 5 * SECOND)?;
    for pid in pids {
        let gone = berth_runtime_tests::host::wait_until(5 * SECOND, || {
            Ok(!berth_runtime_tests::host::process_alive(pid as i32))
        })?;
        ensure!(gone, "[{rt}] process {pid} survived kill --all");
    }
    c.delete_and_check(false)?;
    Ok(())
});

conformance!(delete_force_running, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "delforce");
    c.start_running()?;
    let pid = c.pid()?;
    let refused = c.command("delete")?;
    ensure!(
        !refused.success(),
        "[{rt}] delete without --force of a running container: {refused}"
    );
    c.delete_and_check(true)?;
    ensure!(
        !berth_runtime_tests::host::process_alive(pid),
        "[{rt}] pid {pid} survived"
    );
    Ok(())
});

conformance!(list_shows_containers, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "list");
    c.create()?.ok()?;

    let table = rt.invoke(&["list"])?.ok()?;
    let header = table.stdout.lines().next().unwrap_or("");
    for column in ["ID", "PID", "STATUS", "BUNDLE"] {
        ensure!(
            header.contains(column),
            "[{rt}] list header lacks {column}: {table}"
        );
    }
    let row = table.stdout.lines().find(|l| l.starts_with(&c.id));
    let row = row.with_context(|| format!("[{rt}] list has no row for {}: {table}", c.id))?;
    ensure!(row.contains("created"), "[{rt}] list row: {row}");

    let quiet = rt.invoke(&["list", "--quiet"])?.ok()?;
    ensure!(quiet.stdout.trim() == c.id, "[{rt}] list --quiet: {quiet}");

    let json = rt.invoke(&["list", "--format", "json"])?.ok()?;
    let list: Value = serde_json::from_str(&json.stdout)
        .with_context(|| format!("[{rt}] list --format json is not JSON: {json}"))?;
    let entry = list
        .as_array()
        .and_then(|items| items.iter().find(|item| item["id"] == c.id.as_str()))
        .with_context(|| format!("[{rt}] list --format json lacks {}: {list}", c.id))?;
    ensure!(entry["status"] == "created", "[{rt}] list entry: {entry}");
    ensure!(
        entry["pid"].as_i64() == Some(i64::from(c.pid()?)),
        "[{rt}] list entry pid: {entry}"
    );
    ensure!(
        entry["bundle"] == bundle.path().to_string_lossy().as_ref(),
        "[{rt}] list entry bundle: {entry}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

/// `ps --format json <id>`: the host pids of the container's processes.
fn ps(c: &Container) -> Result<Vec<i64>> {
    let outcome = c.rt.invoke(&["ps", "--format", "json", &c.id])?.ok()?;
    let pids: Value = serde_json::from_str(&outcome.stdout)
        .with_context(|| format!("[{}] ps --format json is not JSON: {outcome}", c.rt))?;
    let pids = pids
        .as_array()
        .with_context(|| format!("[{}] not an array: {pids}", c.rt))?;
    Ok(pids.iter().filter_map(Value::as_i64).collect())
}

conformance!(ps_json_lists_pids, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().shell("sleep 300 & wait"))?;
    let c = Container::new(rt, &bundle, "ps");
    c.start_running()?;
    let init = i64::from(c.pid()?);
    let two = berth_runtime_tests::host::wait_until(5 * SECOND, || Ok(ps(&c)?.len() == 2))?;
    let pids = ps(&c)?;
    ensure!(
        two,
        "[{rt}] expected the shell and its sleep, ps says {pids:?}"
    );
    ensure!(
        pids.contains(&init),
        "[{rt}] ps {pids:?} lacks the init pid {init}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(pid_file, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "pidfile");
    let pid_file = bundle.file("create.pid");
    c.create_with(&["--pid-file", &pid_file.to_string_lossy()])?
        .ok()?;
    let written = fs::read_to_string(&pid_file)
        .with_context(|| format!("[{rt}] create --pid-file wrote nothing"))?;
    ensure!(
        written.trim() == c.pid()?.to_string(),
        "[{rt}] pid file {written:?} vs state"
    );
    c.delete_and_check(true)?;

    let d = Container::new(rt, &bundle, "pidfile-run");
    let pid_file = bundle.file("run.pid");
    d.run_detached(&["--pid-file", &pid_file.to_string_lossy()])?
        .ok()?;
    let written = fs::read_to_string(&pid_file)
        .with_context(|| format!("[{rt}] run --detach --pid-file wrote nothing"))?;
    ensure!(
        written.trim() == d.pid()?.to_string(),
        "[{rt}] pid file {written:?} vs state"
    );
    d.delete_and_check(true)?;
    Ok(())
});
