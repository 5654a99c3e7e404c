//! Drives `berth`'s container and volume commands against a private dockerd and compares them
//! with the docker CLI on the same daemon: output, exit codes, the containers the same flags
//! create, stdin, logs, exec, ps, inspect and volumes.
//!
//! Needs root, `dockerd`, a `docker` CLI and busybox-static; without them the test says so on
//! stderr and is skipped. `BERTH_IT_DAEMON=berth` runs the same checks against `berth daemon`. Every container, image and volume made here is removed, and the
//! dockerd is stopped by its pid and its directory removed, also when the test fails.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{agree, err, ok, remove_all_containers, start_daemon, stderr, stdout, Env};

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Removes what the test made on the daemon, also when it fails half-way.
struct Cleanup<'a>(&'a Env);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let env = self.0;
        remove_all_containers(env);
        let vols = stdout(&env.docker(&["volume", "ls", "-q"]));
        let vols: Vec<&str> = vols.split_whitespace().collect();
        if !vols.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(vols);
            env.docker(&args);
        }
        env.docker(&["rmi", "-f", "bb:1"]);
    }
}

#[test]
fn container_commands_match_the_docker_cli() {
    let Some(daemon) = start_daemon("containers") else {
        return;
    };
    let env = &daemon.env;
    let _cleanup = Cleanup(env);
    ok(&env.docker(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        daemon.tarball.to_str().unwrap(),
        "bb:1",
    ]));

    run_output_and_exit_codes(env);
    same_flags_make_the_same_container(env);
    detached_logs_stop_rm(env);
    exec_and_stdin(env);
    ps_formats(env);
    inspect_and_lifecycle(env);
    volumes(env);
}

/// `run` prints the container's output on the same streams and exits with its status.
fn run_output_and_exit_codes(env: &Env) {
    let o = env.berth(&["run", "--rm", "bb:1", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (stdout(&o), stderr(&o), code(&o)),
        ("out\n".into(), "err\n".into(), 0)
    );
    for (cmd, want) in [("exit 0", 0), ("exit 3", 3), ("exit 255", 255)] {
        let args = ["run", "--rm", "bb:1", "sh", "-c", cmd];
        let (ours, theirs) = (env.berth(&args), env.docker(&args));
        assert_eq!(code(&ours), want, "{cmd}: {ours:?}");
        assert_eq!(code(&theirs), want, "{cmd}");
    }
    // A command that is not there: 127, reported like docker's run.
    let o = env.berth(&["run", "--rm", "bb:1", "nosuch"]);
    assert_eq!(code(&o), 127, "{o:?}");
    assert_eq!(code(&env.docker(&["run", "--rm", "bb:1", "nosuch"])), 127);
    let e = stderr(&o);
    assert!(
        e.starts_with("berth: Error response from daemon: ")
            && e.contains("executable file not found")
            && e.ends_with("\n\nRun 'berth run --help' for more information\n"),
        "{e}"
    );
    // Not executable: 126.
    let o = env.berth(&["run", "--rm", "bb:1", "/etc/passwd"]);
    assert_eq!(code(&o), 126, "{o:?}");
    // --rm leaves nothing behind, even after a failed start.
    assert_eq!(ok(&env.berth(&["ps", "-aq"])), "");
    // Usage errors are 125 and create nothing.
    let o = env.berth(&["run", "--rm", "--restart", "always", "bb:1", "true"]);
    assert_eq!(code(&o), 125);
    assert_eq!(
        stderr(&o),
        "berth: conflicting options: cannot specify both --restart and --rm\n\n\
         Run 'berth run --help' for more information\n"
    );
    assert_eq!(code(&env.berth(&["run", "--bogus", "bb:1"])), 125);
    assert_eq!(code(&env.berth(&["run", "-m", "10x", "bb:1"])), 125);
    // A missing image is looked for (here in a registry that is not there).
    let o = env.berth(&["run", "--rm", "localhost:1/nope:1", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        stderr(&o).starts_with("Unable to find image 'localhost:1/nope:1' locally\n"),
        "{o:?}"
    );

    // -e (also from our environment and an env file), -w, -u, --hostname, --entrypoint.
    let env_file = env.dir.join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=f\n  PATH\nUNSET_IN_FILE\n").unwrap();
    let script = "echo $A $FROM_FILE $(pwd) $(id -u):$(id -g) $(hostname); \
                  env | grep -c UNSET_IN_FILE; test -n \"$PATH\" && echo path";
    let args = [
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "box",
        "bb:1",
        "sh",
        "-c",
        script,
    ];
    assert_eq!(ok(&env.berth(&args)), "1 f /tmp 1000:1000 box\n0\npath\n");
    assert_eq!(ok(&env.berth(&args)), ok(&env.docker(&args)));
    let o = env.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/echo",
        "bb:1",
        "-n",
        "x",
    ]);
    assert_eq!(ok(&o), "x");
    // Without a terminal, -t still gives the container one (raw output, CR LF).
    let args = ["run", "--rm", "-t", "bb:1", "sh", "-c", "tty; echo done"];
    assert_eq!(ok(&env.berth(&args)), "/dev/pts/0\r\ndone\r\n");
    assert_eq!(ok(&env.berth(&args)), ok(&env.docker(&args)));
    // ... but -it needs one on our side.
    let o = env.berth(&["run", "--rm", "-it", "bb:1", "true"]);
    assert_eq!(
        (code(&o), stderr(&o)),
        (1, "the input device is not a TTY\n".into())
    );
    // Read-only root, tmpfs, volumes and --mount inside the container.
    let script = "touch /x 2>/dev/null || echo ro; touch /t/a /v/a /m/a && echo writable; \
                  grep -c ' /t tmpfs' /proc/mounts";
    let o = env.berth(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/t",
        "-v",
        "/v",
        "--mount",
        "type=tmpfs,target=/m,tmpfs-size=1m",
        "bb:1",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(ok(&o), "ro\nwritable\n1\n");
}

/// The same flags given to `berth create` and `docker create` make the same container (as
/// the daemon reports it).
fn same_flags_make_the_same_container(env: &Env) {
    let bind_src = env.dir.join("bind-src");
    std::fs::create_dir_all(&bind_src).unwrap();
    let bind = format!("{}:/b:ro", bind_src.display());
    let mount = format!(
        "type=bind,source={},target=/mb,readonly",
        bind_src.display()
    );
    // One flag set per line (no value has a space in it).
    let flag_sets = format!(
        "-h h1 bb:1
         -h h2 -i -t -e A=1 -w /w -u 1:2 --entrypoint /bin/sh -l x=y -l z --init --read-only \
           --tmpfs /run:rw,size=1m -v /data -v cvol:/v1:ro -v {bind} --mount {mount} \
           --mount type=volume,source=cvol2,target=/m2 --mount type=tmpfs,target=/m3,tmpfs-size=1000 \
           --cap-add net_admin --cap-drop ALL --security-opt no-new-privileges \
           --ulimit nofile=100:200 --stop-signal SIGUSR1 --stop-timeout 7 --restart on-failure:3 \
           --network none -m 64m --memory-swap 128m --memory-reservation 32m -c 512 \
           --cpu-quota 50000 --cpu-period 100000 --cpuset-cpus 0 --cpuset-mems 0 \
           --pids-limit 50 --blkio-weight 300 --oom-kill-disable --oom-score-adj 100 \
           --log-opt max-size=1m bb:1 -c echo
         -h h3 --privileged --network host --restart unless-stopped --init=false --entrypoint= \
           bb:1 true
         -h h4 --rm --memory-swap -1 -m 1g --cpus 1.5 bb:1"
    );
    let flag_sets: Vec<Vec<&str>> = flag_sets
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for flags in flag_sets {
        let mut ours = vec!["create", "--name", "ours"];
        ours.extend(&flags);
        let mut theirs = vec!["create", "--name", "theirs"];
        theirs.extend(&flags);
        ok(&env.berth(&ours));
        ok(&env.docker(&theirs));
        for field in ["Config", "HostConfig", "Mounts", "Path", "Args"] {
            let fmt = format!("{{{{json .{field}}}}}");
            let a = ok(&env.docker(&["inspect", "--format", &fmt, "ours"]));
            let b = ok(&env.docker(&["inspect", "--format", &fmt, "theirs"]));
            let strip = |s: &str| comparable(serde_json::from_str(s).unwrap());
            assert_eq!(strip(&a), strip(&b), "{field} for {flags:?}");
        }
        ok(&env.berth(&["rm", "-v", "ours", "theirs"]));
    }
    ok(&env.berth(&["volume", "rm", "cvol", "cvol2"]));
}

/// An inspected field without what differs between two containers made alike: the names of
/// their anonymous volumes, and the order of `Binds` and of the mounts (Go maps, both).
fn comparable(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Array(a) => {
            let mut a: Vec<Value> = a.into_iter().map(comparable).collect();
            a.sort_by_key(|m| m["Destination"].as_str().map(str::to_string));
            Value::Array(a)
        }
        Value::Object(mut o) => {
            if o.get("Type").and_then(Value::as_str) == Some("volume")
                && o.get("Destination").and_then(Value::as_str) == Some("/data")
            {
                o.remove("Name");
                o.remove("Source");
            }
            if let Some(Value::Array(binds)) = o.get_mut("Binds") {
                binds.sort_by_key(|b| b.to_string());
            }
            Value::Object(o.into_iter().map(|(k, v)| (k, comparable(v))).collect())
        }
        other => other,
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `run -d` prints the ID; `logs` shows what it wrote; `stop`, `wait` and `rm` end it.
fn detached_logs_stop_rm(env: &Env) {
    let id = ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "bb:1",
        "sh",
        "-c",
        "echo started; sleep 0.2; echo to-stderr >&2; exec sleep 100",
    ]));
    assert_eq!(id.trim().len(), 64, "{id}");
    wait_until("the log lines", || {
        stderr(&env.berth(&["logs", "web"])).contains("to-stderr")
    });
    let o = env.berth(&["logs", "web"]);
    assert_eq!(
        (stdout(&o), stderr(&o)),
        ("started\n".into(), "to-stderr\n".into())
    );
    let ts = ok(&env.berth(&["logs", "-t", "--since", "10m", "web"]));
    assert!(
        ts.starts_with("20") && ts.contains("Z started\n"),
        "timestamps: {ts}"
    );
    assert_eq!(ok(&env.berth(&["logs", "--until", "1h", "web"])), "");
    assert_eq!(
        ok(&env.berth(&["logs", "--since", "2000-01-01", "--tail", "1", "web"])),
        ""
    );
    assert_eq!(
        stderr(&env.berth(&["logs", "-n", "1", "web"])),
        "to-stderr\n"
    );
    let o = env.berth(&["logs", "--since", "later", "web"]);
    assert_eq!(
        err(&o),
        "invalid value for \"since\": failed to parse value as time or duration: \"later\"\n"
    );
    assert_eq!(
        ok(&env.berth(&["inspect", "--format", "{{.Id}}", "web"])),
        id
    );

    assert_eq!(ok(&env.berth(&["stop", "-t", "1", "web"])), "web\n");
    assert_eq!(ok(&env.berth(&["wait", "web"])), "137\n");
    assert_eq!(ok(&env.berth(&["rm", "web"])), "web\n");
    // Failures are reported like docker's and exit 1.
    for args in [
        vec!["rm", "web"],
        vec!["stop", "nope1", "nope2"],
        vec!["kill", "nope"],
        vec!["wait", "nope"],
        vec!["logs", "nope"],
        vec!["start", "nope"],
        vec!["rename", "nope", "x"],
        vec!["container", "inspect", "nope"],
        vec!["exec", "nope", "true"],
    ] {
        let (ours, theirs) = (env.berth(&args), env.docker(&args));
        assert_eq!(code(&ours), 1, "{args:?}: {ours:?}");
        assert_eq!(stdout(&ours), stdout(&theirs), "{args:?}");
        assert_eq!(stderr(&ours), stderr(&theirs), "{args:?}");
    }
    // With -f, a missing container is reported but is not a failure.
    let o = env.berth(&["rm", "-f", "nope"]);
    assert_eq!((code(&o), stdout(&o)), (0, String::new()));
}

/// `exec` runs in the container with its flags and exits with the command's status; `-i`
/// passes stdin through, and its end closes the process's stdin.
fn exec_and_stdin(env: &Env) {
    ok(&env.berth(&["run", "-d", "--name", "box", "bb:1", "sleep", "100"]));
    let args = [
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "box",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u); echo e >&2; exit 4",
    ];
    let (ours, theirs) = (env.berth(&args), env.docker(&args));
    assert_eq!(stdout(&ours), "1 /tmp 1000\n");
    assert_eq!(stderr(&ours), "e\n");
    assert_eq!((code(&ours), code(&theirs)), (4, 4));
    assert_eq!(stdout(&ours), stdout(&theirs));
    let o = env.berth(&["exec", "box", "nosuch"]);
    assert_eq!(code(&o), code(&env.docker(&["exec", "box", "nosuch"])));
    // -d returns at once; the command runs on.
    assert_eq!(
        ok(&env.berth(&["exec", "-d", "box", "touch", "/tmp/d"])),
        ""
    );
    wait_until("exec -d", || {
        env.berth(&["exec", "box", "test", "-e", "/tmp/d"])
            .status
            .success()
    });
    let args = [
        "exec",
        "-t",
        "box",
        "sh",
        "-c",
        "test -t 0 && test -t 1 && echo tty",
    ];
    assert_eq!(ok(&env.berth(&args)), "tty\r\n");
    assert_eq!(ok(&env.berth(&args)), ok(&env.docker(&args)));

    // stdin: piped to exec and to run, ended by EOF.
    assert_eq!(
        ok(&env.berth_in(&["exec", "-i", "box", "cat"], Some(b"via exec\n"))),
        "via exec\n"
    );
    let big: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let o = env.berth_in(&["run", "--rm", "-i", "bb:1", "md5sum"], Some(&big));
    let theirs = env.docker_in(&["run", "--rm", "-i", "bb:1", "md5sum"], Some(&big));
    assert_eq!(ok(&o), ok(&theirs));
    let o = env.berth_in(
        &[
            "run",
            "--rm",
            "-i",
            "bb:1",
            "sh",
            "-c",
            "cat; echo end; exit 2",
        ],
        Some(b"line\n"),
    );
    assert_eq!((stdout(&o), code(&o)), ("line\nend\n".into(), 2));
    // Without -i, stdin is not passed on.
    let o = env.berth_in(&["run", "--rm", "bb:1", "cat"], Some(b"ignored\n"));
    assert_eq!(ok(&o), "");

    // start -a / -ai follow a created container to its exit.
    ok(&env.berth(&[
        "create",
        "--name",
        "later",
        "-i",
        "bb:1",
        "sh",
        "-c",
        "cat; exit 5",
    ]));
    let o = env.berth_in(&["start", "-ai", "later"], Some(b"in\n"));
    assert_eq!((stdout(&o), code(&o)), ("in\n".into(), 5));
    ok(&env.berth(&[
        "create",
        "--name",
        "later2",
        "bb:1",
        "sh",
        "-c",
        "echo a; exit 6",
    ]));
    let o = env.berth(&["start", "-a", "later2"]);
    assert_eq!((stdout(&o), code(&o)), ("a\n".into(), 6));
    assert_eq!(ok(&env.berth(&["start", "later2"])), "later2\n");
    ok(&env.berth(&["rm", "-f", "box", "later", "later2"]));
}

/// `ps` in all its forms prints what `docker ps` prints.
fn ps_formats(env: &Env) {
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "p-running",
        "-l",
        "tier=web",
        "-v",
        "/tmp:/h",
        "-v",
        "pvol:/pv",
        "bb:1",
        "sleep",
        "100",
    ]));
    ok(&env.berth(&[
        "create",
        "--name",
        "p-created",
        "bb:1",
        "sh",
        "-c",
        "echo a very long command line here",
    ]));
    let o = env.berth(&["run", "--name", "p-exited", "bb:1", "sh", "-c", "exit 1"]);
    assert_eq!(code(&o), 1);
    for args in [
        vec!["ps"],
        vec!["ps", "-a"],
        vec!["ps", "-a", "--no-trunc"],
        vec!["ps", "-q"],
        vec!["ps", "-aq", "--no-trunc"],
        vec!["ps", "-n", "2"],
        vec!["ps", "-l", "-q"],
        vec![
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
        vec!["ps", "-a", "--filter", "label=tier=web", "-q"],
        vec![
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{.Command}}\\t{{.State}}\\t{{.Labels}}",
        ],
        vec![
            "ps",
            "-a",
            "--format",
            "{{.ID}} {{.Image}} {{.Mounts}} {{.LocalVolumes}}",
        ],
        vec!["ps", "-a", "--format", "json"],
        vec!["ps", "-as"],
        vec!["container", "ls", "-a", "--format", "{{.Names}}: {{.Size}}"],
    ] {
        agree(env, &args, str::to_string);
    }
    assert_eq!(
        ok(&env.berth(&[
            "ps",
            "-a",
            "--filter",
            "name=p-created",
            "--format",
            "{{.Names}}"
        ])),
        "p-created\n"
    );
    let o = env.berth(&["ps", "-q", "--format", "{{.Names}}"]);
    assert_eq!(
        stderr(&o),
        "WARNING: Ignoring custom format, because both --format and --quiet are set.\n"
    );
    ok(&env.berth(&["rm", "-f", "p-running", "p-created", "p-exited"]));
    ok(&env.berth(&["volume", "rm", "pvol"]));
}

/// `inspect`, `top`, `pause`, `rename`, `kill`, `restart`, `container prune`.
fn inspect_and_lifecycle(env: &Env) {
    ok(&env.berth(&[
        "run", "-d", "--name", "life", "-l", "k=v", "bb:1", "sleep", "100",
    ]));
    for args in [
        vec![
            "inspect",
            "--format",
            "{{.Config.Image}} {{.State.Status}} {{json .Config.Cmd}} {{.Config.Labels.k}}",
            "life",
        ],
        vec![
            "container",
            "inspect",
            "-f",
            "{{.Name}} {{.HostConfig.NetworkMode}}",
            "life",
        ],
        vec![
            "inspect",
            "--type",
            "image",
            "--format",
            "{{json .Config.Cmd}}",
            "bb:1",
        ],
        vec!["inspect", "--format", "{{index .RepoTags 0}}", "bb:1"],
    ] {
        assert_eq!(ok(&env.berth(&args)), ok(&env.docker(&args)), "{args:?}");
    }
    // Whole documents: the same JSON.
    let ours: serde_json::Value =
        serde_json::from_str(&ok(&env.berth(&["inspect", "life"]))).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&ok(&env.docker(&["inspect", "life"]))).unwrap();
    assert_eq!(ours, theirs);
    let o = env.berth(&["inspect", "nope"]);
    assert_eq!(
        (stdout(&o), err(&o)),
        ("[]\n".into(), "Error: No such object: nope\n".into())
    );

    let top = ok(&env.berth(&["top", "life"]));
    assert!(top.starts_with("UID                 PID "), "{top}");
    assert!(top.contains("sleep 100"), "{top}");
    let args = ["top", "life", "-o", "pid,comm"];
    let top = ok(&env.berth(&args));
    assert!(top.starts_with("PID                 COMMAND\n"), "{top}");
    assert_eq!(top, ok(&env.docker(&args)));

    assert_eq!(ok(&env.berth(&["pause", "life"])), "life\n");
    assert_eq!(
        ok(&env.berth(&["inspect", "-f", "{{.State.Status}}", "life"])),
        "paused\n"
    );
    assert_eq!(ok(&env.berth(&["unpause", "life"])), "life\n");
    assert_eq!(ok(&env.berth(&["rename", "life", "life2"])), "");
    assert_eq!(ok(&env.berth(&["restart", "-t", "0", "life2"])), "life2\n");
    assert_eq!(
        ok(&env.berth(&["inspect", "-f", "{{.State.Running}}", "life2"])),
        "true\n"
    );
    assert_eq!(ok(&env.berth(&["kill", "-s", "KILL", "life2"])), "life2\n");
    assert_eq!(ok(&env.berth(&["container", "wait", "life2"])), "137\n");
    let o = env.berth(&["kill", "life2"]);
    assert_eq!(stderr(&o), stderr(&env.docker(&["kill", "life2"])));

    let o = env.berth_in(&["container", "prune"], Some(b"n\n"));
    assert!(stdout(&o).starts_with("WARNING! This will remove all stopped containers.\n"));
    assert_eq!(err(&o), "container prune has been cancelled\n");
    let id = ok(&env.berth(&["inspect", "-f", "{{.Id}}", "life2"]));
    let pruned = ok(&env.berth(&["container", "prune", "-f"]));
    assert!(
        pruned.starts_with(&format!(
            "Deleted Containers:\n{id}\nTotal reclaimed space: "
        )),
        "{pruned}"
    );
    assert_eq!(ok(&env.berth(&["ps", "-aq"])), "");
}

/// `volume create|ls|inspect|rm|prune`, and a volume shared between two containers.
fn volumes(env: &Env) {
    assert_eq!(
        ok(&env.berth(&[
            "volume",
            "create",
            "--label",
            "a=b",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "data1"
        ])),
        "data1\n"
    );
    let anon = ok(&env.berth(&["volume", "create"]));
    assert_eq!(anon.trim().len(), 64, "{anon}");
    for args in [
        vec!["volume", "ls"],
        vec!["volume", "ls", "-q"],
        vec!["volume", "ls", "--filter", "label=a=b"],
        vec![
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}",
        ],
        vec!["volume", "ls", "--format", "json"],
        vec!["volume", "inspect", "data1"],
        vec![
            "volume",
            "inspect",
            "--format",
            "{{.Name}} {{.Options.type}}",
            "data1",
        ],
    ] {
        assert_eq!(ok(&env.berth(&args)), ok(&env.docker(&args)), "{args:?}");
    }
    ok(&env.berth(&["volume", "create", "shared"]));
    ok(&env.berth(&[
        "run",
        "--rm",
        "-v",
        "shared:/s",
        "bb:1",
        "sh",
        "-c",
        "echo kept > /s/f",
    ]));
    assert_eq!(
        ok(&env.berth(&["run", "--rm", "-v", "shared:/s:ro", "bb:1", "cat", "/s/f"])),
        "kept\n"
    );
    let o = env.berth(&["volume", "rm", "data1", "nope"]);
    assert_eq!(stdout(&o), "data1\n");
    assert_eq!(err(&o), stderr(&env.docker(&["volume", "rm", "nope"])));
    let o = env.berth(&["volume", "inspect", "nope"]);
    assert_eq!(
        (stdout(&o), stderr(&o)),
        (
            stdout(&env.docker(&["volume", "inspect", "nope"])),
            stderr(&env.docker(&["volume", "inspect", "nope"]))
        )
    );
    // From API 1.42 on, prune removes anonymous volumes unless -a; before, it removes named
    // ones too and there is no -a (Debian's dockerd 20.10 speaks 1.41).
    let api = ok(&env.berth(&["version", "--format", "{{.Server.ApiVersion}}"]));
    let minor: u32 = api.trim().split('.').nth(1).unwrap().parse().unwrap();
    if minor >= 42 {
        let pruned = ok(&env.berth(&["volume", "prune", "-f"]));
        assert!(
            pruned.contains(anon.trim()) && !pruned.contains("shared\n"),
            "{pruned}"
        );
        let pruned = ok(&env.berth(&["volume", "prune", "-a", "-f"]));
        assert!(pruned.starts_with("Deleted Volumes:\nshared\n"), "{pruned}");
    } else {
        let o = env.berth(&["volume", "prune", "-a", "-f"]);
        assert_eq!(
            err(&o),
            format!(
                "\"--all\" requires API version 1.42, but the daemon API version is {}",
                api
            )
        );
        let pruned = ok(&env.berth(&["volume", "prune", "-f"]));
        assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
        assert!(
            pruned.contains("shared\n") && pruned.contains(anon.trim()),
            "{pruned}"
        );
    }
    assert_eq!(ok(&env.berth(&["volume", "ls", "-q"])), "");
}
