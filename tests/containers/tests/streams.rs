//! A container's streams: stdin piped to `run -i`, stdout and stderr kept
//! apart without a TTY and merged with one, `logs` and its options, json-file
//! rotation on disk, `exec` and its flags, `attach`, `top`, `stats` (the CLI
//! and the SDK's streaming endpoint).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use berth_container_tests::{cmd, ensure_contains, eventually, unique, Engine, BUSYBOX, IDLE};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn run_interactive_pipes_stdin_until_it_closes() -> Result<()> {
    let e = Engine::start()?;
    let out = e
        .docker_stdin(
            &["run", "-i", "--rm", BUSYBOX, "cat"],
            b"hello\nworld\n".to_vec(),
        )?
        .ok()?;
    ensure!(out.stdout == "hello\nworld\n", "cat echoes stdin: {out}");

    let out = e
        .docker_stdin(
            &["run", "-i", "--rm", BUSYBOX, "wc", "-l"],
            b"a\nb\nc\n".to_vec(),
        )?
        .ok()?;
    ensure!(
        out.stdout.trim() == "3",
        "wc -l sees the end of stdin: {out}"
    );
    // Without -i the container gets no stdin.
    let out = e
        .docker_stdin(&["run", "--rm", BUSYBOX, "wc", "-c"], b"ignored".to_vec())?
        .ok()?;
    ensure!(out.stdout.trim() == "0", "stdin without -i: {out}");
    Ok(())
}

#[test]
fn run_interactive_carries_a_megabyte_of_stdin() -> Result<()> {
    let e = Engine::start()?;
    let big: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let cli = e.docker_command(&["run", "-i", "--rm", BUSYBOX, "cat"]);
    let out = cmd::run_with(cli, Some(big.clone()), Duration::from_secs(60))?.ok()?;
    ensure!(
        out.stdout.as_bytes() == big.as_slice(),
        "{} of {} bytes came back",
        out.stdout.len(),
        big.len()
    );
    Ok(())
}

/// Without a TTY, stdin is bytes: the detach keys (ctrl-p ctrl-q, 0x10 0x11) pass through
/// as moby passes them, instead of ending the session.
#[test]
fn run_interactive_passes_detach_key_bytes_without_a_tty() -> Result<()> {
    let e = Engine::start()?;
    let mut input = b"before".to_vec();
    input.extend_from_slice(&[0x10, 0x11]);
    input.extend_from_slice(&vec![b'x'; 100_000]);
    let cli = e.docker_command(&["run", "-i", "--rm", BUSYBOX, "wc", "-c"]);
    let out = cmd::run_with(cli, Some(input.clone()), Duration::from_secs(60))?.ok()?;
    ensure!(
        out.stdout.trim() == input.len().to_string(),
        "wc -c counted {:?} of {} bytes",
        out.stdout.trim(),
        input.len()
    );
    Ok(())
}

#[test]
fn stdout_and_stderr_stay_apart_without_a_tty() -> Result<()> {
    let e = Engine::start()?;
    let out = e.docker(&[
        "run",
        "--rm",
        BUSYBOX,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 2",
    ])?;
    ensure!(out.code == Some(2), "{out}");
    ensure!(
        out.stdout == "out\n" && out.stderr == "err\n",
        "streams mixed: {out}"
    );
    Ok(())
}

#[test]
fn run_with_a_tty() -> Result<()> {
    let e = Engine::start()?;
    let out = e.docker_ok(&[
        "run",
        "-t",
        "--rm",
        BUSYBOX,
        "sh",
        "-c",
        "echo hi; echo err >&2; tty",
    ])?;
    ensure!(
        out.stdout.contains("hi\r\n"),
        "a TTY turns \\n into \\r\\n: {:?}",
        out.stdout
    );
    ensure!(
        out.stdout.contains("err\r\n"),
        "stderr goes to the TTY too: {:?}",
        out.stdout
    );
    ensure!(
        out.stdout.contains("/dev/pts/"),
        "tty names a pty: {:?}",
        out.stdout
    );
    ensure!(
        out.stderr.is_empty(),
        "nothing on the client's stderr: {out}"
    );
    let name = unique("tty");
    e.docker_ok(&["run", "-t", "--name", &name, BUSYBOX, "echo", "logged"])?;
    let logs = e.docker_ok(&["logs", &name])?;
    ensure!(
        logs.stdout == "logged\r\n",
        "logs of a TTY container: {logs}"
    );
    ensure!(e.container(&name)?["Config"]["Tty"] == true, "Config.Tty");
    Ok(())
}

#[test]
fn logs_tail_timestamps_and_streams() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("logs");
    // One stderr line first (the pause orders it in the log), then stdout.
    e.run_script(
        &name,
        "echo err1 >&2; sleep 0.5; for i in 1 2 3 4 5; do echo out$i; done",
    )?;
    let all = e.docker_ok(&["logs", &name])?;
    ensure!(
        all.stdout == "out1\nout2\nout3\nout4\nout5\n",
        "logs stdout: {all}"
    );
    ensure!(all.stderr == "err1\n", "logs stderr: {all}");
    // --tail counts lines of both streams together.
    let tail = e.docker_ok(&["logs", "--tail", "2", &name])?;
    ensure!(
        tail.stdout == "out4\nout5\n" && tail.stderr.is_empty(),
        "--tail 2: {tail}"
    );
    let tail = e.docker_ok(&["logs", "--tail", "6", &name])?;
    ensure!(
        tail.stdout == all.stdout && tail.stderr == "err1\n",
        "--tail 6: {tail}"
    );
    let none = e.docker_ok(&["logs", "--tail", "0", &name])?;
    ensure!(none.output().is_empty(), "--tail 0: {none}");
    let stamped = e.docker_ok(&["logs", "-t", &name])?;
    for line in stamped.stdout.lines() {
        let (stamp, text) = line.split_once(' ').unwrap_or_default();
        ensure!(
            stamp.len() >= 20
                && stamp.as_bytes()[4] == b'-'
                && stamp.contains('T')
                && stamp.ends_with('Z'),
            "-t prefixes an RFC 3339 time: {line:?}"
        );
        ensure!(text.starts_with("out"), "{line:?}");
    }
    ensure!(stamped.stdout.lines().count() == 5, "{stamped}");
    Ok(())
}

#[test]
fn logs_since_leaves_out_earlier_lines() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("since");
    e.start_script(&name, "echo early; sleep 3; echo late")?;
    e.wait_for_logs(&name, "early", WAIT)?;
    std::thread::sleep(Duration::from_millis(500));
    let cut = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let since = format!("{}.{:09}", cut.as_secs(), cut.subsec_nanos());
    e.wait_for_logs(&name, "late", WAIT)?;
    let out = e.docker_ok(&["logs", "--since", &since, &name])?;
    ensure!(out.stdout == "late\n", "--since {since}: {out}");
    let out = e.docker_ok(&["logs", "--until", &since, &name])?;
    ensure!(out.stdout == "early\n", "--until {since}: {out}");
    let out = e.docker_ok(&["logs", "--since", "1h", &name])?;
    ensure!(out.stdout == "early\nlate\n", "--since 1h: {out}");
    Ok(())
}

#[test]
fn logs_follow_ends_when_the_container_stops() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("follow");
    e.start_script(&name, "echo one; sleep 2; echo two")?;
    let started = Instant::now();
    let follow = e.spawn_docker(&["logs", "-f", &name])?;
    follow.wait_for_stdout("one\n", WAIT)?;
    let out = follow.wait(WAIT)?;
    ensure!(
        out.success() && out.stdout == "one\ntwo\n",
        "logs -f: {out}"
    );
    ensure!(
        started.elapsed() >= Duration::from_secs(1),
        "logs -f returned before the container ended"
    );

    // Following a running container that is then stopped.
    let name = unique("follow-stop");
    e.run_detached(&[
        "--name",
        &name,
        BUSYBOX,
        "sh",
        "-c",
        &format!("echo up; {IDLE}"),
    ])?;
    let follow = e.spawn_docker(&["logs", "--follow", "--tail", "1", &name])?;
    follow.wait_for_stdout("up\n", WAIT)?;
    e.docker_ok(&["stop", "-t", "1", &name])?;
    let out = follow.wait(Duration::from_secs(10))?;
    ensure!(
        out.success() && out.stdout == "up\n",
        "logs -f after stop: {out}"
    );
    Ok(())
}

#[test]
fn json_file_logs_rotate_on_disk() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("rotate");
    e.docker_ok(&[
        "run",
        "--name",
        &name,
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        BUSYBOX,
        "sh",
        "-c",
        "i=1; while [ $i -le 300 ]; do echo line-$i; i=$((i+1)); done",
    ])?;
    let c = e.container(&name)?;
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    ensure!(
        c["HostConfig"]["LogConfig"]
            == serde_json::json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}),
        "LogConfig: {}",
        c["HostConfig"]["LogConfig"]
    );
    let log_path = c["LogPath"].as_str().unwrap_or_default().to_string();
    ensure!(
        log_path.starts_with(&e.data_root().to_string_lossy().into_owned()),
        "LogPath {log_path:?} lies outside the data root"
    );
    let dir = Path::new(&log_path)
        .parent()
        .context("LogPath has no directory")?;
    let mut files: Vec<(String, u64)> = fs::read_dir(dir)?
        .flatten()
        .filter_map(|f| {
            let name = f.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{id}-json.log"))
                .then(|| (name, f.metadata().map(|m| m.len()).unwrap_or(0)))
        })
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    ensure!(
        names == [format!("{id}-json.log"), format!("{id}-json.log.1")],
        "max-file=2 keeps the log and one rotated file: {files:?}"
    );
    for (file, size) in &files {
        ensure!(
            *size <= 1024 + 256,
            "{file} holds {size} bytes with max-size=1k"
        );
    }
    for line in fs::read_to_string(&log_path)?.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("not a json-file entry: {line:?}"))?;
        ensure!(
            entry["stream"] == "stdout" && entry["time"].is_string(),
            "entry: {entry}"
        );
        ensure!(
            entry["log"]
                .as_str()
                .is_some_and(|l| l.starts_with("line-") && l.ends_with('\n')),
            "entry: {entry}"
        );
    }

    let logs = e.docker_ok(&["logs", &name])?;
    let numbers: Vec<u32> = logs
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap_or(0))
        .collect();
    ensure!(
        numbers.last() == Some(&300),
        "logs end with the last line: {:?}",
        numbers.last()
    );
    ensure!(
        numbers.first().is_some_and(|n| *n > 1),
        "the oldest lines were rotated away: {numbers:?}"
    );
    ensure!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "what is kept is contiguous across the rotated file: {numbers:?}"
    );
    Ok(())
}

#[test]
fn exec_runs_in_the_container_with_its_options() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("exec");
    e.run_detached(&[
        "--name",
        &name,
        "-e",
        "FROM_RUN=1",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 1000",
    ])?;
    let out = e.docker_ok(&["exec", &name, "echo", "x"])?;
    ensure!(out.stdout == "x\n", "{out}");
    let out = e.docker(&["exec", &name, "sh", "-c", "echo o; echo e >&2; exit 4"])?;
    ensure!(
        out.code == Some(4),
        "exec exits with the command's code: {out}"
    );
    ensure!(
        out.stdout == "o\n" && out.stderr == "e\n",
        "exec keeps streams apart: {out}"
    );
    let out = e.docker_ok(&[
        "exec",
        "-e",
        "FOO=bar",
        &name,
        "sh",
        "-c",
        "echo $FOO $FROM_RUN",
    ])?;
    ensure!(
        out.stdout == "bar 1\n",
        "exec -e and the container's env: {out}"
    );
    let out = e.docker_ok(&["exec", "-u", "1000", &name, "id", "-u"])?;
    ensure!(out.stdout == "1000\n", "exec -u 1000: {out}");
    let out = e.docker_ok(&["exec", "-u", "nobody", &name, "id", "-un"])?;
    ensure!(out.stdout == "nobody\n", "exec -u nobody: {out}");
    let out = e.docker_ok(&["exec", "-w", "/tmp", &name, "pwd"])?;
    ensure!(out.stdout == "/tmp\n", "exec -w: {out}");
    let out = e
        .docker_stdin(&["exec", "-i", &name, "cat"], b"piped\n".to_vec())?
        .ok()?;
    ensure!(out.stdout == "piped\n", "exec -i: {out}");
    let out = e.docker_ok(&["exec", "-t", &name, "tty"])?;
    ensure!(out.stdout.contains("/dev/pts/"), "exec -t: {out}");

    let out = e.docker_ok(&[
        "exec",
        "-d",
        &name,
        "sh",
        "-c",
        "sleep 1; echo detached > /tmp/d",
    ])?;
    ensure!(out.stdout.is_empty(), "exec -d prints nothing: {out}");
    eventually("the detached exec to write", WAIT, || {
        let out = e.docker(&["exec", &name, "cat", "/tmp/d"])?;
        Ok((out.stdout == "detached\n").then_some(()))
    })?;
    // The exec'd process shares the container's pid namespace.
    let out = e.docker_ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ])?;
    ensure_contains(&out.stdout, "sleep 1000", "pid 1 seen from exec")?;

    // Exit codes through the API's exec inspect.
    let out = e.python(&format!(
        r#"
c = client.containers.get("{name}")
r = client.api.exec_create(c.id, ["sh", "-c", "echo api; exit 4"])
out = client.api.exec_start(r["Id"])
assert out == b"api\n", out
i = client.api.exec_inspect(r["Id"])
assert i["ExitCode"] == 4 and i["Running"] is False, i
assert i["ContainerID"] == c.id, i
print("OK")
"#
    ))?;
    ensure!(out.trim() == "OK", "{out}");

    let out = e.docker(&["exec", &name, "no-such-command"])?;
    ensure!(out.code == Some(127), "exec of an unknown command: {out}");
    e.docker_ok(&["stop", "-t", "0", &name])?;
    let out = e.docker_fails(&["exec", &name, "true"])?;
    ensure_contains(&out.stderr, "is not running", "exec in a stopped container")?;
    Ok(())
}

#[test]
fn attach_to_a_running_container() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("attach");
    e.run_detached(&[
        "-i",
        "--name",
        &name,
        BUSYBOX,
        "sh",
        "-c",
        "read line; echo got $line; echo oops >&2; exit 3",
    ])?;
    let out = e.docker_stdin(&["attach", &name], b"hello\n".to_vec())?;
    ensure!(
        out.code == Some(3),
        "attach exits with the container's code: {out}"
    );
    ensure!(
        out.stdout == "got hello\n",
        "attach relays stdin and stdout: {out}"
    );
    ensure!(out.stderr.contains("oops"), "attach relays stderr: {out}");

    // Without stdin, to a container that keeps talking; dropping the client
    // leaves the container running.
    let ticker = unique("ticker");
    e.start_script(&ticker, "while :; do echo tick; sleep 0.2; done")?;
    let mut attach = e.spawn_docker(&["attach", "--no-stdin", &ticker])?;
    attach.wait_for_stdout("tick\ntick\n", WAIT)?;
    attach.kill();
    std::thread::sleep(Duration::from_millis(500));
    ensure!(
        e.container(&ticker)?["State"]["Running"] == true,
        "the container must outlive its attach client"
    );
    // A second attach works, and ends when the container stops.
    let attach = e.spawn_docker(&["attach", "--no-stdin", &ticker])?;
    attach.wait_for_stdout("tick\n", WAIT)?;
    e.docker_ok(&["kill", &ticker])?;
    let out = attach.wait(Duration::from_secs(10))?;
    ensure!(
        out.code == Some(137),
        "attach ends with the killed container: {out}"
    );
    Ok(())
}

#[test]
fn top_lists_the_container_processes() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("top");
    e.start_script(&name, "sleep 1000 & sleep 2000")?;
    let pid = e.container_pid(&name)?;
    let top = eventually("both sleeps in top", WAIT, || {
        let top = e.docker_ok(&["top", &name])?;
        Ok((top.stdout.contains("sleep 1000") && top.stdout.contains("sleep 2000")).then_some(top))
    })?;
    let header = top.stdout.lines().next().unwrap_or_default().to_string();
    for column in ["UID", "PID", "PPID", "CMD"] {
        ensure!(
            header.split_whitespace().any(|c| c == column),
            "top header {header:?} lacks {column}"
        );
    }
    ensure!(
        top.stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(pid.to_string().as_str())),
        "top lists State.Pid {pid} (host pids): {top}"
    );
    ensure!(top.lines().len() >= 3, "top lists both processes: {top}");
    let custom = e.docker_ok(&["top", &name, "-o", "pid,comm"])?;
    let header = custom.stdout.lines().next().unwrap_or_default().to_string();
    ensure!(
        header.split_whitespace().collect::<Vec<_>>() == ["PID", "COMMAND"],
        "top -o pid,comm: {custom}"
    );
    ensure!(custom.stdout.contains("sleep"), "{custom}");
    e.docker_ok(&["stop", "-t", "0", &name])?;
    let out = e.docker_fails(&["top", &name])?;
    ensure_contains(&out.stderr, "is not running", "top of a stopped container")?;
    Ok(())
}

#[test]
fn stats_once_from_the_cli() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("stats");
    e.run_detached(&["--name", &name, "--memory", "64m", BUSYBOX, "sleep", "1000"])?;
    let out = e.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        &name,
    ])?;
    let fields: Vec<&str> = out.stdout.trim().split('|').collect();
    ensure!(fields.len() == 3 && fields[0] == name, "stats: {out}");
    let (usage, limit) = fields[1].split_once(" / ").unwrap_or_default();
    ensure!(
        !usage.is_empty() && !usage.starts_with("0B"),
        "MEM USAGE must not be empty or zero: {out}"
    );
    ensure!(limit == "64MiB", "the limit shows --memory: {out}");
    ensure!(fields[2] == "1", "PIDS: {out}");
    let table = e.docker_ok(&["stats", "--no-stream", &name])?;
    ensure!(
        table.stdout.starts_with("CONTAINER ID") && table.stdout.contains("MEM USAGE / LIMIT"),
        "stats table: {table}"
    );
    Ok(())
}

#[test]
fn stats_stream_through_the_sdk() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("sdkstats");
    e.start_script(&name, "while :; do :; done")?;
    let out = e.python(&format!(
        r#"
c = client.containers.get("{name}")
stream = c.stats(stream=True, decode=True)
a = next(stream)
b = next(stream)
for s in (a, b):
    assert s["name"] == "/{name}" and s["id"] == c.id, s
    assert s["memory_stats"]["usage"] > 0, s["memory_stats"]
    assert s["pids_stats"]["current"] >= 1, s["pids_stats"]
assert b["read"] != a["read"], (a["read"], b["read"])
assert b["precpu_stats"]["cpu_usage"]["total_usage"] == a["cpu_stats"]["cpu_usage"]["total_usage"], (a["cpu_stats"], b["precpu_stats"])
assert b["cpu_stats"]["cpu_usage"]["total_usage"] > a["cpu_stats"]["cpu_usage"]["total_usage"], "a busy loop uses CPU"
assert b["cpu_stats"]["system_cpu_usage"] > a["cpu_stats"]["system_cpu_usage"]
assert b["cpu_stats"]["online_cpus"] >= 1
one = c.stats(stream=False)
assert one["memory_stats"]["usage"] > 0, one
print("OK")
"#
    ))?;
    ensure!(out.trim() == "OK", "{out}");
    Ok(())
}
