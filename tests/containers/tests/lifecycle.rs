//! A container's life through the docker CLI: run, create and start, ps and
//! its filters, stop, kill, restart, pause, rm, rename, wait, inspect, prune.
//! Each expectation is what Docker 28 does; the host (/proc, the freezer
//! cgroup) confirms what the daemon reports.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use berth_container_tests::{
    ensure_contains, eventually, host, is_container_id, unique, Engine, BUSYBOX, IDLE,
};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn run_rm_prints_and_leaves_no_container() -> Result<()> {
    let e = Engine::start()?;
    let out = e.docker_ok(&["run", "--rm", BUSYBOX, "echo", "hi"])?;
    ensure!(out.stdout == "hi\n", "run --rm echo hi: {out}");
    let ps = e.docker_ok(&["ps", "-a", "-q"])?;
    ensure!(ps.lines().is_empty(), "--rm left a container: {ps}");
    let dirs: Vec<_> = std::fs::read_dir(e.data_root().join("containers"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    ensure!(dirs.is_empty(), "--rm left container directories: {dirs:?}");
    Ok(())
}

#[test]
fn exit_codes_follow_docker() -> Result<()> {
    let e = Engine::start()?;
    let out = e.docker(&["run", "--rm", BUSYBOX, "sh", "-c", "exit 3"])?;
    ensure!(out.code == Some(3), "exit 3 must give 3: {out}");

    // An unknown command: 127 and the runtime's "executable file not found".
    let out = e.docker(&["run", "--rm", BUSYBOX, "no-such-command"])?;
    ensure!(
        out.code == Some(127),
        "unknown command must give 127: {out}"
    );
    ensure_contains(
        &out.stderr,
        r#"exec: "no-such-command": executable file not found in $PATH"#,
        "unknown command",
    )?;

    // A file that is not executable: 126 and "permission denied".
    let out = e.docker(&["run", "--rm", BUSYBOX, "/etc/passwd"])?;
    ensure!(
        out.code == Some(126),
        "a non-executable file must give 126: {out}"
    );
    ensure_contains(&out.stderr, "permission denied", "non-executable")?;

    // A missing image, without pulling: 125 and "No such image".
    let out = e.docker(&["run", "--pull", "never", "--rm", "nosuchimage:1", "true"])?;
    ensure!(out.code == Some(125), "missing image must give 125: {out}");
    ensure_contains(&out.stderr, "No such image: nosuchimage:1", "missing image")?;

    // A missing image with the default policy: the CLI tries to pull it (from a
    // loopback port where nothing listens) and fails with 125.
    let out = e.docker(&["run", "--rm", "127.0.0.1:9/nosuchimage:1", "true"])?;
    ensure!(out.code == Some(125), "failed pull must give 125: {out}");
    ensure_contains(
        &out.stderr,
        "Unable to find image '127.0.0.1:9/nosuchimage:1' locally",
        "missing image",
    )?;

    // A container whose start failed goes too when it was run with --rm.
    let left = e.container_ids()?;
    ensure!(
        left.is_empty(),
        "failed `run --rm`s left containers: {left:?}"
    );
    Ok(())
}

#[test]
fn create_then_start_attached() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("created");
    let out = e.docker_ok(&[
        "create",
        "--name",
        &name,
        BUSYBOX,
        "sh",
        "-c",
        "echo created-output; exit 5",
    ])?;
    let id = out.stdout.trim().to_string();
    ensure!(is_container_id(&id), "create printed no ID: {out}");
    let status = e.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ])?;
    ensure!(
        status.stdout.trim() == "Created",
        "a created container: {status}"
    );
    let inspect = e.container(&name)?;
    ensure!(
        inspect["State"]["Status"] == "created",
        "{}",
        inspect["State"]
    );
    ensure!(inspect["State"]["Pid"] == 0, "{}", inspect["State"]);

    let out = e.docker(&["start", "-a", &name])?;
    ensure!(out.stdout == "created-output\n", "start -a output: {out}");
    ensure!(
        out.code == Some(5),
        "start -a must exit with the container's code: {out}"
    );
    let state = e.container(&id)?["State"].clone();
    ensure!(
        state["Status"] == "exited" && state["ExitCode"] == 5,
        "{state}"
    );

    // start again: a stopped container runs its command once more.
    let out = e.docker(&["start", "-a", &name])?;
    ensure!(
        out.stdout == "created-output\n" && out.code == Some(5),
        "{out}"
    );
    let logs = e.docker_ok(&["logs", &name])?;
    ensure!(
        logs.stdout.matches("created-output").count() == 2,
        "two runs logged: {logs}"
    );
    Ok(())
}

#[test]
fn ps_lists_filters_and_formats() -> Result<()> {
    let e = Engine::start()?;
    let web = unique("web");
    let job = unique("job");
    let web_id = e.run_detached(&[
        "--name", &web, "--label", "role=web", BUSYBOX, "sh", "-c", IDLE,
    ])?;
    let job_id = e.run_detached(&["--name", &job, "--label", "role=job", BUSYBOX, "true"])?;
    e.wait_for_status(&job, "exited", WAIT)?;

    let q = e.docker_ok(&["ps", "-q"])?.lines();
    ensure!(q == vec![web_id[..12].to_string()], "ps -q: {q:?}");
    let mut all = e.docker_ok(&["ps", "-a", "-q", "--no-trunc"])?.lines();
    all.sort();
    let mut expected = vec![web_id.clone(), job_id.clone()];
    expected.sort();
    ensure!(all == expected, "ps -aq --no-trunc: {all:?}");

    let filtered = |filter: &str| -> Result<Vec<String>> {
        let mut ids = e
            .docker_ok(&["ps", "-a", "-q", "--no-trunc", "--filter", filter])?
            .lines();
        ids.sort();
        Ok(ids)
    };
    ensure!(
        filtered("status=exited")? == vec![job_id.clone()],
        "status=exited"
    );
    ensure!(
        filtered("status=running")? == vec![web_id.clone()],
        "status=running"
    );
    ensure!(
        filtered(&format!("name={web}"))? == vec![web_id.clone()],
        "name="
    );
    ensure!(
        filtered("label=role=job")? == vec![job_id.clone()],
        "label=role=job"
    );
    ensure!(filtered("label=role")? == expected, "label=role");
    ensure!(
        filtered("ancestor=busybox")? == expected,
        "ancestor=busybox"
    );
    ensure!(
        filtered("ancestor=busybox:latest")? == expected,
        "ancestor=busybox:latest"
    );
    ensure!(filtered("exited=0")? == vec![job_id.clone()], "exited=0");
    ensure!(
        filtered(&format!("id={}", &web_id[..12]))? == vec![web_id.clone()],
        "id="
    );

    let table = e.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])?;
    let lines = table.lines();
    ensure!(
        lines.iter().any(|l| l.starts_with(&format!("{web} Up "))),
        "a running container's status starts with Up: {table}"
    );
    ensure!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{job} Exited (0) "))),
        "an exited container's status is `Exited (0) ...`: {table}"
    );
    let columns = e.docker_ok(&[
        "ps",
        "--no-trunc",
        "--format",
        "{{.Image}}|{{.Command}}|{{.Labels}}",
    ])?;
    ensure!(
        columns.stdout.trim() == format!("{BUSYBOX}|\"sh -c '{IDLE}'\"|role=web"),
        "image, command (arguments with spaces quoted) and labels columns: {columns}"
    );
    let default = e.docker_ok(&["ps"])?;
    ensure!(
        default.stdout.starts_with("CONTAINER ID"),
        "the table has Docker's header: {default}"
    );
    Ok(())
}

#[test]
fn stop_sends_sigterm_and_waits() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("stop");
    let script = format!("trap 'echo got TERM; exit 0' TERM; echo ready; {IDLE}");
    e.start_script(&name, &script)?;
    e.wait_for_logs(&name, "ready", WAIT)?;
    let started = Instant::now();
    e.docker_ok(&["stop", &name])?;
    let took = started.elapsed();
    ensure!(
        took < Duration::from_secs(5),
        "a container honouring SIGTERM stopped in {took:?}"
    );
    let state = e.container(&name)?["State"].clone();
    ensure!(
        state["Status"] == "exited" && state["ExitCode"] == 0,
        "{state}"
    );
    ensure!(state["Running"] == false && state["Pid"] == 0, "{state}");
    let logs = e.docker_ok(&["logs", &name])?;
    ensure_contains(&logs.stdout, "got TERM", "the trap ran")?;
    Ok(())
}

#[test]
fn stop_kills_a_container_that_ignores_sigterm() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("stubborn");
    e.start_script(&name, "trap '' TERM; echo ready; sleep 100")?;
    e.wait_for_logs(&name, "ready", WAIT)?;
    let pid = e.container_pid(&name)?;
    let started = Instant::now();
    e.docker_ok(&["stop", "-t", "1", &name])?;
    let took = started.elapsed();
    ensure!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "stop -t 1 must wait about 1 s, then kill: took {took:?}"
    );
    let state = e.container(&name)?["State"].clone();
    ensure!(
        state["Status"] == "exited" && state["ExitCode"] == 137,
        "{state}"
    );
    ensure!(!host::alive(pid), "pid {pid} survived stop");
    Ok(())
}

#[test]
fn kill_delivers_the_signal_asked_for() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("hup");
    let script = format!("trap 'echo got HUP' HUP; echo ready; {IDLE}");
    e.start_script(&name, &script)?;
    e.wait_for_logs(&name, "ready", WAIT)?;
    e.docker_ok(&["kill", "-s", "HUP", &name])?;
    e.wait_for_logs(&name, "got HUP", WAIT)?;
    ensure!(
        e.container(&name)?["State"]["Running"] == true,
        "HUP is trapped: it must run on"
    );
    e.docker_ok(&["kill", "--signal", "SIGHUP", &name])?;
    eventually("a second HUP", WAIT, || {
        let logs = e.docker_ok(&["logs", &name])?;
        Ok((logs.stdout.matches("got HUP").count() == 2).then_some(()))
    })?;
    // The default signal is SIGKILL.
    e.docker_ok(&["kill", &name])?;
    let state = e.wait_for_status(&name, "exited", WAIT)?["State"].clone();
    ensure!(state["ExitCode"] == 137, "{state}");
    // Killing a stopped container is a conflict.
    let out = e.docker_fails(&["kill", &name])?;
    ensure_contains(&out.stderr, "is not running", "kill of a stopped container")?;
    Ok(())
}

#[test]
fn restart_runs_the_command_again() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("restart");
    let script = format!("trap 'exit 0' TERM; echo started; {IDLE}");
    e.start_script(&name, &script)?;
    e.wait_for_logs(&name, "started", WAIT)?;
    let before = e.container(&name)?;
    let pid = e.container_pid(&name)?;
    e.docker_ok(&["restart", "-t", "5", &name])?;
    let after = e.container(&name)?;
    ensure!(after["State"]["Status"] == "running", "{}", after["State"]);
    let new_pid = e.container_pid(&name)?;
    ensure!(
        new_pid != pid && !host::alive(pid),
        "restart must replace pid {pid} (now {new_pid})"
    );
    ensure!(
        after["State"]["StartedAt"] != before["State"]["StartedAt"],
        "StartedAt must change: {} vs {}",
        before["State"]["StartedAt"],
        after["State"]["StartedAt"]
    );
    ensure!(
        after["RestartCount"] == 0,
        "a manual restart is not counted: {}",
        after["RestartCount"]
    );
    eventually("the second start in the logs", WAIT, || {
        let logs = e.docker_ok(&["logs", &name])?;
        Ok((logs.stdout.matches("started").count() == 2).then_some(()))
    })?;
    // restart of a stopped container starts it.
    e.docker_ok(&["stop", &name])?;
    e.docker_ok(&["restart", &name])?;
    ensure!(
        e.container(&name)?["State"]["Running"] == true,
        "restart of a stopped container"
    );
    Ok(())
}

#[test]
fn pause_freezes_and_unpause_thaws() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("pause");
    let id = e.start_script(&name, "sleep 1000")?;
    let pid = e.container_pid(&name)?;
    e.docker_ok(&["pause", &name])?;

    let state = e.container(&name)?["State"].clone();
    ensure!(
        state["Status"] == "paused" && state["Paused"] == true,
        "{state}"
    );
    ensure!(
        state["Running"] == true,
        "a paused container still runs: {state}"
    );
    let freezer = host::cgroup_file("freezer", &id, "freezer.state")?;
    ensure!(
        freezer == "FROZEN",
        "freezer.state of a paused container: {freezer}"
    );
    let status = e.docker_ok(&[
        "ps",
        "--format",
        "{{.Status}}",
        "--filter",
        &format!("name={name}"),
    ])?;
    ensure!(
        status.stdout.trim().ends_with("(Paused)"),
        "ps status: {status}"
    );
    let paused = e.docker_ok(&["ps", "-q", "--no-trunc", "--filter", "status=paused"])?;
    ensure!(
        paused.lines() == vec![id.clone()],
        "status=paused filter: {paused}"
    );

    let top = e.docker_ok(&["top", &name])?;
    ensure_contains(&top.stdout, "sleep 1000", "top of a paused container")?;
    ensure_contains(&top.stdout, &pid.to_string(), "top lists the host pid")?;

    let out = e.docker_fails(&["exec", &name, "true"])?;
    ensure_contains(
        &out.stderr,
        "is paused, unpause the container before exec",
        "exec when paused",
    )?;
    let out = e.docker_fails(&["pause", &name])?;
    ensure_contains(&out.stderr, "is already paused", "pause twice")?;

    e.docker_ok(&["unpause", &name])?;
    let state = e.container(&name)?["State"].clone();
    ensure!(
        state["Status"] == "running" && state["Paused"] == false,
        "{state}"
    );
    let freezer = host::cgroup_file("freezer", &id, "freezer.state")?;
    ensure!(
        freezer == "THAWED",
        "freezer.state after unpause: {freezer}"
    );
    let out = e.docker_ok(&["exec", &name, "echo", "thawed"])?;
    ensure!(out.stdout == "thawed\n", "{out}");
    let out = e.docker_fails(&["unpause", &name])?;
    ensure_contains(&out.stderr, "is not paused", "unpause twice")?;
    Ok(())
}

#[test]
fn rm_refuses_a_running_container_unless_forced() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("rm");
    let id = e.start_script(&name, "sleep 1000")?;
    let pid = e.container_pid(&name)?;

    let out = e.docker_fails(&["rm", &name])?;
    ensure_contains(
        &out.stderr,
        "container is running: stop the container before removing or force remove",
        "rm of a running container",
    )?;
    let (status, body) = e.request("DELETE", &format!("/containers/{name}"))?;
    ensure!(
        status == 409,
        "DELETE of a running container: {status} {body}"
    );
    ensure!(
        e.container(&name)?["State"]["Running"] == true,
        "the refused rm changed it"
    );

    let out = e.docker_ok(&["rm", "-f", &name])?;
    ensure!(
        out.stdout.trim() == name,
        "rm -f prints the name given: {out}"
    );
    ensure!(e.container_ids()?.is_empty(), "rm -f left the container");
    eventually("the container's process to die", WAIT, || {
        Ok((!host::alive(pid)).then_some(()))
    })?;
    ensure!(
        !e.data_root().join("containers").join(&id).exists(),
        "rm -f left the container directory"
    );
    let out = e.docker_fails(&["rm", &name])?;
    ensure_contains(
        &out.stderr,
        &format!("No such container: {name}"),
        "rm twice",
    )?;

    // A stopped container goes without -f.
    let stopped = unique("stopped");
    e.docker_ok(&["run", "--name", &stopped, BUSYBOX, "true"])?;
    e.docker_ok(&["rm", &stopped])?;
    ensure!(
        e.container_ids()?.is_empty(),
        "rm left the stopped container"
    );
    Ok(())
}

#[test]
fn rename_changes_the_name_only() -> Result<()> {
    let e = Engine::start()?;
    let old = unique("old");
    let new = unique("new");
    let id = e.start_script(&old, "sleep 1000")?;
    e.docker_ok(&["rename", &old, &new])?;
    let inspect = e.container(&new)?;
    ensure!(
        inspect["Name"] == format!("/{new}"),
        "Name: {}",
        inspect["Name"]
    );
    ensure!(inspect["Id"] == id.as_str(), "rename must keep the ID");
    ensure!(
        inspect["State"]["Running"] == true,
        "rename must not stop it"
    );
    let out = e.docker_fails(&["container", "inspect", &old])?;
    ensure_contains(
        &out.output(),
        &format!("No such container: {old}"),
        "the old name",
    )?;
    // The old name is free again; the new one is taken.
    e.docker_ok(&["create", "--name", &old, BUSYBOX])?;
    let out = e.docker_fails(&["rename", &old, &new])?;
    ensure_contains(
        &out.stderr,
        "is already in use by container",
        "rename onto a used name",
    )?;
    Ok(())
}

#[test]
fn wait_blocks_until_exit_and_prints_the_code() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("wait");
    e.start_script(&name, "sleep 1; exit 7")?;
    let started = Instant::now();
    let out = e.docker_ok(&["wait", &name])?;
    ensure!(out.stdout.trim() == "7", "wait prints the exit code: {out}");
    ensure!(
        started.elapsed() >= Duration::from_millis(500),
        "wait returned before the exit"
    );
    // On an exited container, at once.
    let out = e.docker_ok(&["wait", &name])?;
    ensure!(
        out.stdout.trim() == "7",
        "wait on an exited container: {out}"
    );
    Ok(())
}

#[test]
fn inspect_reports_state_and_config() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("inspect");
    let image_id = e.inspect(BUSYBOX)?["Id"].clone();
    let id = e.run_detached(&[
        "--name",
        &name,
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 1000",
    ])?;
    let c = e.container(&name)?;
    ensure!(c["Id"] == id.as_str(), "Id: {}", c["Id"]);
    ensure!(c["Name"] == format!("/{name}"), "Name: {}", c["Name"]);
    ensure!(
        c["Image"] == image_id,
        "Image: {} (image {image_id})",
        c["Image"]
    );
    ensure!(
        c["Config"]["Image"] == BUSYBOX,
        "Config.Image: {}",
        c["Config"]["Image"]
    );
    ensure!(
        c["State"]["Status"] == "running" && c["State"]["Running"] == true,
        "{}",
        c["State"]
    );
    ensure!(c["State"]["ExitCode"] == 0, "{}", c["State"]);
    let pid = c["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    ensure!(
        pid > 0 && host::alive(pid),
        "State.Pid {pid} must be a live process"
    );
    ensure!(
        host::cmdline(pid).as_deref() == Some("sh -c sleep 1000")
            || host::cmdline(pid).as_deref() == Some("sleep 1000"),
        "State.Pid runs {:?}",
        host::cmdline(pid)
    );
    ensure!(
        c["Config"]["Cmd"] == serde_json::json!(["sh", "-c", "sleep 1000"]),
        "Config.Cmd: {}",
        c["Config"]["Cmd"]
    );
    ensure!(c["Path"] == "sh", "Path: {}", c["Path"]);
    ensure!(
        c["Args"] == serde_json::json!(["-c", "sleep 1000"]),
        "Args: {}",
        c["Args"]
    );
    let env = c["Config"]["Env"].as_array().cloned().unwrap_or_default();
    ensure!(env.iter().any(|v| v == "FOO=bar"), "Config.Env: {env:?}");
    ensure!(
        c["Config"]["WorkingDir"] == "/tmp",
        "WorkingDir: {}",
        c["Config"]["WorkingDir"]
    );
    ensure!(
        c["Config"]["Hostname"] == id[..12],
        "Hostname: {}",
        c["Config"]["Hostname"]
    );
    ensure!(
        c["HostConfig"]["LogConfig"]["Type"] == "json-file",
        "HostConfig.LogConfig: {}",
        c["HostConfig"]["LogConfig"]
    );
    ensure!(
        c["HostConfig"]["RestartPolicy"]["Name"] == "no",
        "RestartPolicy: {}",
        c["HostConfig"]["RestartPolicy"]
    );
    ensure!(
        c["RestartCount"] == 0,
        "RestartCount: {}",
        c["RestartCount"]
    );
    let log_path = c["LogPath"].as_str().unwrap_or("");
    ensure!(
        log_path.ends_with(&format!("{id}-json.log")) && std::path::Path::new(log_path).exists(),
        "LogPath: {log_path:?}"
    );
    ensure!(
        c["Created"].as_str().is_some_and(|s| s.contains('T')),
        "Created: {}",
        c["Created"]
    );
    ensure!(
        c["State"]["StartedAt"]
            .as_str()
            .is_some_and(|s| !s.starts_with("0001")),
        "{}",
        c["State"]
    );

    e.docker_ok(&["kill", &name])?;
    let c = e.wait_for_status(&name, "exited", WAIT)?;
    ensure!(
        c["State"]["ExitCode"] == 137 && c["State"]["Pid"] == 0,
        "{}",
        c["State"]
    );
    ensure!(
        c["State"]["FinishedAt"]
            .as_str()
            .is_some_and(|s| !s.starts_with("0001")),
        "FinishedAt after exit: {}",
        c["State"]
    );
    // -f templates work on containers too.
    let out = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ])?;
    ensure!(out.stdout.trim() == "exited 137", "{out}");
    Ok(())
}

#[test]
fn a_used_name_is_refused_with_dockers_message() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("dup");
    let id = e
        .docker_ok(&["create", "--name", &name, BUSYBOX])?
        .stdout
        .trim()
        .to_string();
    let message = format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    );
    // `create` exits 1 on a daemon error, `run` 125.
    let out = e.docker(&["create", "--name", &name, BUSYBOX])?;
    ensure!(
        out.code == Some(1),
        "a second create with the same name: {out}"
    );
    ensure_contains(&out.stderr, &message, "name conflict on create")?;
    let out = e.docker(&["run", "--name", &name, BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "a run with a used name: {out}");
    ensure_contains(&out.stderr, &message, "name conflict on run")?;
    ensure!(
        e.container_ids()? == vec![id],
        "the refused create must make nothing"
    );
    Ok(())
}

#[test]
fn container_prune_removes_only_stopped_ones() -> Result<()> {
    let e = Engine::start()?;
    let running = e.run_detached(&[BUSYBOX, "sh", "-c", "sleep 1000"])?;
    let a = e.docker_ok(&["create", BUSYBOX])?.stdout.trim().to_string();
    let b = unique("exited");
    e.docker_ok(&["run", "--name", &b, BUSYBOX, "true"])?;
    let b_id = e.container_id(&b)?;

    let out = e.docker_ok(&["container", "prune", "-f"])?;
    ensure_contains(&out.stdout, "Deleted Containers:", "prune output")?;
    ensure_contains(&out.stdout, &a, "prune lists the created container")?;
    ensure_contains(&out.stdout, &b_id, "prune lists the exited container")?;
    ensure_contains(&out.stdout, "Total reclaimed space:", "prune output")?;
    ensure!(
        e.container_ids()? == vec![running.clone()],
        "only the running container is left"
    );

    let out = e.docker_ok(&["container", "prune", "-f"])?;
    ensure!(
        !out.stdout.contains("Deleted Containers:"),
        "nothing left to prune: {out}"
    );
    Ok(())
}
