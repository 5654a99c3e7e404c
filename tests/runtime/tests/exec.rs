//! `exec`: a new process joins a running container's namespaces and cgroup.

use std::fs;
use std::time::Duration;

use anyhow::{ensure, Context};
use berth_runtime_tests::host::{namespace_of, process_alive, wait_until};
use berth_runtime_tests::{conformance, Bundle, Container, Spec};
use serde_json::json;

conformance!(exec_output_and_exit_code, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "exec");
    c.start_running()?;

    let hi = c.exec(&[], &["sh", "-c", "echo hi"])?.ok()?;
    ensure!(hi.stdout == "hi\n", "[{rt}] exec output: {hi}");

    let failed = c.exec(&[], &["sh", "-c", "exit 7"])?;
    ensure!(
        failed.code == Some(7),
        "[{rt}] exec must return the process's exit code 7: {failed}"
    );

    let host = c.exec(&[], &["hostname"])?.ok()?;
    ensure!(
        host.stdout.trim() == "berth",
        "[{rt}] exec must join the uts namespace: {host}"
    );
    let pid1 = c.exec(&[], &["cat", "/proc/1/cmdline"])?.ok()?;
    ensure!(
        pid1.stdout.starts_with("sleep"),
        "[{rt}] exec must join the pid namespace: {pid1}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(exec_env_cwd_user, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "execopts");
    c.start_running()?;

    let env = c
        .exec(&["--env", "BERTH_X=42"], &["sh", "-c", "echo $BERTH_X"])?
        .ok()?;
    ensure!(env.stdout.trim() == "42", "[{rt}] exec --env: {env}");

    let cwd = c.exec(&["--cwd", "/tmp"], &["pwd"])?.ok()?;
    ensure!(cwd.stdout.trim() == "/tmp", "[{rt}] exec --cwd: {cwd}");

    let user = c
        .exec(&["--user", "1000:1000"], &["sh", "-c", "id -u; id -g"])?
        .ok()?;
    ensure!(
        user.stdout == "1000\n1000\n",
        "[{rt}] exec --user 1000:1000: {user}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(exec_process_json, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "execjson");
    c.start_running()?;
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000 },
        "args": ["sh", "-c", "echo from-process-json $(id -u) $PWD $BERTH_Y; exit 4"],
        "env": ["PATH=/bin:/usr/bin", "BERTH_Y=yes"],
        "cwd": "/tmp",
    });
    let path = bundle.file("process.json");
    fs::write(&path, serde_json::to_string(&process)?)?;
    let out = c.exec(&["--process", &path.to_string_lossy()], &[])?;
    ensure!(
        out.code == Some(4),
        "[{rt}] exec --process must exit 4: {out}"
    );
    ensure!(
        out.stdout.trim() == "from-process-json 1000 /tmp yes",
        "[{rt}] exec --process: {out}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(exec_detach_pid_file, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "execdetach");
    c.start_running()?;
    let pid_file = bundle.file("exec.pid");
    let outcome = c.exec(
        &["--detach", "--pid-file", &pid_file.to_string_lossy()],
        &["sleep", "300"],
    )?;
    outcome.ok()?;
    let text = fs::read_to_string(&pid_file)
        .with_context(|| format!("[{rt}] exec --pid-file wrote nothing"))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("[{rt}] pid file {text:?}"))?;
    ensure!(
        process_alive(pid),
        "[{rt}] exec --detach process {pid} is not running"
    );
    let init = c.pid()?.to_string();
    for kind in ["pid", "mnt", "net", "uts", "ipc"] {
        ensure!(
            namespace_of(&pid.to_string(), kind)? == namespace_of(&init, kind)?,
            "[{rt}] the exec'd process is not in the container's {kind} namespace"
        );
    }
    let ps = rt.invoke(&["ps", "--format", "json", &c.id])?.ok()?;
    ensure!(
        ps.stdout.contains(&pid.to_string()),
        "[{rt}] ps lacks the exec'd pid {pid}: {ps}"
    );
    c.delete_and_check(true)?;
    let gone = wait_until(Duration::from_secs(3), || Ok(!process_alive(pid)))?;
    ensure!(gone, "[{rt}] delete --force left the exec'd process {pid}");
    Ok(())
});

conformance!(exec_into_stopped_container_fails, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["true"]))?;
    let c = Container::new(rt, &bundle, "execstopped");
    c.create()?.ok()?;
    c.start()?;
    c.wait_for_status("stopped", Duration::from_secs(5))?;
    let outcome = c.exec(&[], &["true"])?;
    ensure!(
        !outcome.success(),
        "[{rt}] exec into a stopped container must fail: {outcome}"
    );
    ensure!(
        !outcome.stderr.trim().is_empty(),
        "[{rt}] exec failed silently: {outcome}"
    );
    c.delete_and_check(false)?;
    Ok(())
});
