//! Reliability: containers outlive their daemon. `kill -9` of berth daemon
//! must leave every container running and logging (the per-container monitor
//! holds its stdio); a restarted daemon finds them all, with logs that have
//! no gaps, and can stop them; a container that exited meanwhile shows its
//! real exit code. Restart policies: `always` brings a killed container back
//! (also across a daemon restart), `on-failure:N` gives up after N restarts.

use std::collections::HashMap;
use std::fs;
use std::thread;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_container_tests::{eventually, host, unique, Engine, BUSYBOX};
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(30);

/// Prints a counter ten times a second: gaps in its log are lost lines.
const COUNTER: &str = "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done";

/// What a test that fails while the daemon is down would leave behind (the
/// daemon's own cleanup cannot reach it then): container processes, killed
/// if their pid still runs the same command line, and their `berth/<id>`
/// cgroups, removed once empty. Declared before the engine, so it acts after
/// the engine's cleanup.
#[derive(Default)]
struct Orphans {
    processes: Vec<(i32, String)>,
    ids: Vec<String>,
}

impl Orphans {
    /// Remembers the running container `name` (its pid and ID); returns the pid.
    fn watch(&mut self, e: &Engine, name: &str) -> Result<i32> {
        let pid = e.container_pid(name)?;
        if let Some(cmdline) = host::cmdline(pid) {
            self.processes.push((pid, cmdline));
        }
        self.ids.push(e.container_id(name)?);
        Ok(pid)
    }
}

impl Drop for Orphans {
    fn drop(&mut self) {
        let mut killed = false;
        for (pid, cmdline) in &self.processes {
            if host::alive(*pid) && host::cmdline(*pid).as_deref() == Some(cmdline.as_str()) {
                killed |= host::signal(*pid, Signal::SIGKILL).is_ok();
            }
        }
        if killed {
            thread::sleep(Duration::from_millis(500));
        }
        for id in &self.ids {
            for dir in host::cgroups_left(id) {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

/// The counter values in a container's log, in order.
fn counter_values(e: &Engine, name: &str) -> Result<Vec<u64>> {
    let out = e.docker_ok(&["logs", name])?;
    out.stdout
        .lines()
        .map(|l| {
            l.trim()
                .parse::<u64>()
                .with_context(|| format!("not a counter line {l:?} in the log of {name}"))
        })
        .collect()
}

/// Fails unless `values` run 0, 1, 2, ... without a hole or a repeat.
fn ensure_no_gaps(name: &str, values: &[u64]) -> Result<()> {
    if let Some((i, v)) = values.iter().enumerate().find(|(i, v)| **v != *i as u64) {
        let from = i.saturating_sub(3);
        let to = (i + 3).min(values.len());
        anyhow::bail!(
            "the log of {name} has a gap or repeat at line {i}: value {v}, around: {:?} ({} lines)",
            &values[from..to],
            values.len()
        );
    }
    Ok(())
}

#[test]
fn twenty_containers_survive_a_daemon_crash() -> Result<()> {
    let mut orphans = Orphans::default();
    let mut e = Engine::start()?;
    let names: Vec<String> = (0..20).map(|i| unique(&format!("survivor{i}-"))).collect();
    for name in &names {
        e.run_detached(&["--name", name, BUSYBOX, "sh", "-c", COUNTER])?;
    }
    let mut pids = HashMap::new();
    let mut log_paths = HashMap::new();
    for name in &names {
        let c = e.container(name)?;
        let pid = c["State"]["Pid"].as_i64().unwrap_or(0) as i32;
        ensure!(pid > 0, "{name} has no pid: {}", c["State"]);
        orphans.watch(&e, name)?;
        pids.insert(name.clone(), pid);
        log_paths.insert(
            name.clone(),
            c["LogPath"].as_str().unwrap_or_default().to_string(),
        );
    }
    for name in &names {
        eventually(&format!("{name} to count to 3"), WAIT, || {
            Ok((counter_values(&e, name)?.len() > 3).then_some(()))
        })?;
    }
    let exec_root = e.exec_root().to_string_lossy().into_owned();
    let monitors: Vec<i32> = host::processes()
        .into_iter()
        .filter(|(_, cmdline)| cmdline.contains("berth-monitor") && cmdline.contains(&exec_root))
        .map(|(pid, _)| pid)
        .collect();
    let before: HashMap<String, u64> = names
        .iter()
        .map(|n| Ok((n.clone(), *counter_values(&e, n)?.last().unwrap_or(&0))))
        .collect::<Result<_>>()?;

    e.kill9()?;

    // While the daemon is down: every container process runs, every log grows.
    for (name, pid) in &pids {
        ensure!(host::alive(*pid), "{name} (pid {pid}) died with the daemon");
        let cmdline = host::cmdline(*pid).unwrap_or_default();
        ensure!(
            cmdline.contains("while :"),
            "pid {pid} of {name} now runs {cmdline:?}"
        );
    }
    for pid in &monitors {
        ensure!(host::alive(*pid), "monitor pid {pid} died with the daemon");
    }
    let sizes = |paths: &HashMap<String, String>| -> HashMap<String, u64> {
        paths
            .iter()
            .map(|(n, p)| (n.clone(), fs::metadata(p).map(|m| m.len()).unwrap_or(0)))
            .collect()
    };
    let sizes_down = sizes(&log_paths);
    thread::sleep(Duration::from_millis(1500));
    let sizes_later = sizes(&log_paths);
    for name in &names {
        ensure!(
            sizes_later[name] > sizes_down[name],
            "the log of {name} stopped growing while the daemon was down ({} -> {} bytes, {})",
            sizes_down[name],
            sizes_later[name],
            log_paths[name]
        );
    }

    e.restart()?;
    let table = e.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"])?;
    for name in &names {
        ensure!(
            table
                .lines()
                .iter()
                .any(|l| l.starts_with(&format!("{name} Up"))),
            "{name} is not Up after the restart:\n{}",
            table.stdout
        );
        let c = e.container(name)?;
        ensure!(
            c["State"]["Pid"] == pids[name] && c["State"]["Running"] == true,
            "{name} must be the same process {} after the restart: {}",
            pids[name],
            c["State"]
        );
    }
    thread::sleep(Duration::from_millis(500));
    for name in &names {
        let values = counter_values(&e, name)?;
        ensure_no_gaps(name, &values)?;
        let last = *values.last().unwrap_or(&0);
        ensure!(
            last > before[name] + 10,
            "{name}: the log must go on across the crash ({} then {last})",
            before[name]
        );
    }
    // logs -f still follows a container found again.
    let follow = e.spawn_docker(&["logs", "-f", "--tail", "0", &names[0]])?;
    follow.wait_for_stdout("\n", WAIT)?;
    drop(follow);

    let mut stop = vec!["stop", "-t", "1"];
    stop.extend(names.iter().map(String::as_str));
    e.docker_ok(&stop)?;
    for name in &names {
        let state = e.container(name)?["State"].clone();
        ensure!(
            state["Status"] == "exited" && state["ExitCode"] == 137,
            "{name} after stop: {state}"
        );
        ensure!(
            !host::alive(pids[name]),
            "{name}'s pid {} survived stop",
            pids[name]
        );
    }
    for pid in &monitors {
        eventually("the monitors to exit with their containers", WAIT, || {
            Ok((!host::alive(*pid)).then_some(()))
        })?;
    }
    Ok(())
}

#[test]
fn exits_while_the_daemon_is_down_are_recorded() -> Result<()> {
    let mut orphans = Orphans::default();
    let mut e = Engine::start()?;
    let ctl = e.scratch("ctl")?;
    let bind = format!("{}:/ctl", ctl.display());
    let quits = unique("quits");
    let killed = unique("killed");
    let stays = unique("stays");
    e.run_detached(&[
        "--name",
        &quits,
        "-v",
        &bind,
        BUSYBOX,
        "sh",
        "-c",
        "echo waiting; while [ ! -e /ctl/go ]; do sleep 0.1; done; echo leaving; exit 42",
    ])?;
    e.run_detached(&["--name", &killed, BUSYBOX, "sleep", "1000"])?;
    e.start_script(&stays, COUNTER)?;
    let quits_pid = orphans.watch(&e, &quits)?;
    let killed_pid = orphans.watch(&e, &killed)?;
    let stays_pid = orphans.watch(&e, &stays)?;
    e.wait_for_logs(&quits, "waiting", WAIT)?;

    e.kill9()?;
    fs::write(ctl.join("go"), "")?;
    host::signal(killed_pid, Signal::SIGKILL)?;
    for pid in [quits_pid, killed_pid] {
        eventually(&format!("pid {pid} to end"), WAIT, || {
            Ok((!host::alive(pid)).then_some(()))
        })?;
    }
    e.restart()?;

    // The monitor may still be recording the exit as the daemon comes back:
    // the daemon must learn of it within moments.
    let state = e
        .wait_for_status(&quits, "exited", Duration::from_secs(10))
        .with_context(|| format!("{quits} exited while the daemon was down"))?["State"]
        .clone();
    ensure!(
        state["ExitCode"] == 42 && state["Running"] == false,
        "a container that exited 42 while the daemon was down: {state}"
    );
    ensure!(
        state["FinishedAt"]
            .as_str()
            .is_some_and(|s| !s.starts_with("0001")),
        "FinishedAt: {state}"
    );
    let state = e
        .wait_for_status(&killed, "exited", Duration::from_secs(10))
        .with_context(|| format!("{killed} was killed while the daemon was down"))?["State"]
        .clone();
    ensure!(
        state["Status"] == "exited" && state["ExitCode"] == 137,
        "a container killed meanwhile: {state}"
    );
    let state = e.container(&stays)?["State"].clone();
    ensure!(
        state["Running"] == true && state["Pid"] == stays_pid,
        "the one still running: {state}"
    );
    let out = e.docker_ok(&["wait", &quits])?;
    ensure!(out.stdout.trim() == "42", "wait after the restart: {out}");
    let out = e.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={quits}"),
        "--format",
        "{{.Status}}",
    ])?;
    ensure!(out.stdout.starts_with("Exited (42)"), "ps status: {out}");
    let logs = e.docker_ok(&["logs", &quits])?;
    ensure!(
        logs.stdout == "waiting\nleaving\n",
        "logs written while the daemon was down: {logs}"
    );
    // Such a container can be started again.
    fs::remove_file(ctl.join("go"))?;
    e.docker_ok(&["start", &quits])?;
    e.wait_for_status(&quits, "running", WAIT)?;
    fs::write(ctl.join("go"), "")?;
    let out = e.docker_ok(&["wait", &quits])?;
    ensure!(out.stdout.trim() == "42", "the second run: {out}");
    Ok(())
}

#[test]
fn restart_always_brings_a_killed_container_back() -> Result<()> {
    let mut orphans = Orphans::default();
    let mut e = Engine::start()?;
    let name = unique("always");
    e.run_detached(&[
        "--name",
        &name,
        "--restart",
        "always",
        BUSYBOX,
        "sh",
        "-c",
        "echo started; while :; do sleep 0.1; done",
    ])?;
    let policy = e.container(&name)?["HostConfig"]["RestartPolicy"].clone();
    ensure!(policy["Name"] == "always", "RestartPolicy: {policy}");
    let first = orphans.watch(&e, &name)?;
    host::signal(first, Signal::SIGKILL)?;
    let second = eventually("the container to come back", WAIT, || {
        let c = e.container(&name)?;
        let pid = c["State"]["Pid"].as_i64().unwrap_or(0) as i32;
        Ok((c["State"]["Running"] == true && pid > 0 && pid != first).then_some((pid, c)))
    })?;
    let (second_pid, c) = second;
    orphans.watch(&e, &name)?;
    ensure!(
        c["RestartCount"] == 1,
        "RestartCount after one restart: {}",
        c["RestartCount"]
    );
    eventually("a second `started` in the log", WAIT, || {
        let logs = e.docker_ok(&["logs", &name])?;
        Ok((logs.stdout.matches("started").count() == 2).then_some(()))
    })?;

    // A daemon crash leaves it running as it was.
    e.kill9()?;
    ensure!(
        host::alive(second_pid),
        "the container died with the daemon"
    );
    e.restart()?;
    let c = e.container(&name)?;
    ensure!(
        c["State"]["Running"] == true && c["State"]["Pid"] == second_pid,
        "the same process after the daemon's restart: {}",
        c["State"]
    );

    // Killed while the daemon is down: the daemon starts it when it comes back.
    e.kill9()?;
    host::signal(second_pid, Signal::SIGKILL)?;
    eventually("the container to die", WAIT, || {
        Ok((!host::alive(second_pid)).then_some(()))
    })?;
    e.restart()?;
    let third = eventually(
        "the container to be started by the new daemon",
        WAIT,
        || {
            let c = e.container(&name)?;
            let pid = c["State"]["Pid"].as_i64().unwrap_or(0) as i32;
            Ok((c["State"]["Running"] == true && pid > 0 && pid != second_pid).then_some(pid))
        },
    )?;
    orphans.watch(&e, &name)?;
    ensure!(host::alive(third), "the new pid {third} is not alive");

    // A manual stop is not undone by the policy.
    e.docker_ok(&["stop", "-t", "1", &name])?;
    thread::sleep(Duration::from_secs(2));
    let state = e.container(&name)?["State"].clone();
    ensure!(
        state["Status"] == "exited",
        "a stopped `always` container came back: {state}"
    );
    Ok(())
}

#[test]
fn restart_on_failure_gives_up_after_its_count() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("onfailure");
    e.run_detached(&[
        "--name",
        &name,
        "--restart",
        "on-failure:2",
        BUSYBOX,
        "sh",
        "-c",
        "echo run; exit 1",
    ])?;
    let policy = e.container(&name)?["HostConfig"]["RestartPolicy"].clone();
    ensure!(
        policy == serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2}),
        "RestartPolicy: {policy}"
    );
    eventually("two restarts, then exited", WAIT, || {
        let c = e.container(&name)?;
        Ok((c["State"]["Status"] == "exited" && c["RestartCount"] == 2).then_some(()))
    })?;
    thread::sleep(Duration::from_secs(2));
    let c = e.container(&name)?;
    ensure!(
        c["State"]["Status"] == "exited" && c["RestartCount"] == 2 && c["State"]["ExitCode"] == 1,
        "on-failure:2 must stop after 2 restarts: RestartCount {} State {}",
        c["RestartCount"],
        c["State"]
    );
    let logs = e.docker_ok(&["logs", &name])?;
    ensure!(logs.stdout == "run\nrun\nrun\n", "three runs: {logs}");

    // A clean exit is not a failure.
    let ok = unique("onfailure-ok");
    e.run_detached(&["--name", &ok, "--restart", "on-failure", BUSYBOX, "true"])?;
    e.wait_for_status(&ok, "exited", WAIT)?;
    thread::sleep(Duration::from_secs(1));
    let c = e.container(&ok)?;
    ensure!(
        c["State"]["Status"] == "exited" && c["RestartCount"] == 0,
        "exit 0 under on-failure: {} {}",
        c["State"],
        c["RestartCount"]
    );
    Ok(())
}
