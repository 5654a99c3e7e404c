//! How a container's configuration reaches its process: ENTRYPOINT and CMD,
//! environment, working directory, user, hostname and /etc files, read-only
//! root, capabilities, no-new-privileges, init, ulimits, stop signal,
//! networks none and host, labels. Each checked from inside the container.

use std::time::Duration;

use anyhow::{ensure, Result};
use berth_container_tests::{cmd, ensure_contains, host, unique, Engine, BUSYBOX, IDLE};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn entrypoint_and_cmd_combine_as_in_docker() -> Result<()> {
    let e = Engine::start()?;
    e.import("ep", &[r#"ENTRYPOINT ["echo","a"]"#, r#"CMD ["b"]"#])?;
    ensure!(e.run_rm(&["ep"])? == "a b\n", "image ENTRYPOINT + CMD");
    ensure!(e.run_rm(&["ep", "c"])? == "a c\n", "arguments replace CMD");
    ensure!(
        e.run_rm(&["--entrypoint", "echo", "ep", "x"])? == "x\n",
        "--entrypoint"
    );
    // A new entrypoint drops the image's CMD.
    let out = e.run_rm(&["--entrypoint", "echo", "ep"])?;
    ensure!(
        out == "\n",
        "--entrypoint without arguments must not run the image CMD: {out:?}"
    );
    // An empty entrypoint clears it.
    let out = e.run_rm(&["--entrypoint", "", "ep", "echo", "cleared"])?;
    ensure!(
        out == "cleared\n",
        "--entrypoint '' clears the entrypoint: {out:?}"
    );

    let name = unique("ep");
    e.docker_ok(&["create", "--name", &name, "ep", "c"])?;
    let c = e.container(&name)?;
    ensure!(
        c["Config"]["Entrypoint"] == json!(["echo", "a"]),
        "Entrypoint: {}",
        c["Config"]["Entrypoint"]
    );
    ensure!(
        c["Config"]["Cmd"] == json!(["c"]),
        "Cmd: {}",
        c["Config"]["Cmd"]
    );
    ensure!(
        c["Path"] == "echo" && c["Args"] == json!(["a", "c"]),
        "Path {} Args {}",
        c["Path"],
        c["Args"]
    );
    Ok(())
}

#[test]
fn environment_from_flags_files_and_image() -> Result<()> {
    let e = Engine::start()?;
    e.import("envimg", &["ENV IMG=one", "ENV SHARED=image"])?;
    let dir = e.scratch("env")?;
    let file = dir.join("vars.env");
    std::fs::write(&file, "# a comment\nFROMFILE=yes\n\nSPACED=a b\n")?;

    let name = unique("env");
    let mut cli = e.docker_command(&[
        "run",
        "--name",
        &name,
        "-e",
        "FLAG=1",
        "-e",
        "SHARED=run",
        "-e",
        "PASSTHRU",
        "-e",
        "UNSET_IN_CLIENT",
        "--env-file",
        &file.to_string_lossy(),
        "envimg",
        "env",
    ]);
    cli.env("PASSTHRU", "from-client")
        .env_remove("UNSET_IN_CLIENT");
    let out = cmd::run_with(cli, None, cmd::COMMAND_TIMEOUT)?.ok()?;
    let vars: Vec<&str> = out.stdout.lines().collect();
    let id = e.container_id(&name)?;
    for expected in [
        "FLAG=1",
        "SHARED=run",
        "IMG=one",
        "PASSTHRU=from-client",
        "FROMFILE=yes",
        "SPACED=a b",
        "HOME=/root",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        &format!("HOSTNAME={}", &id[..12.min(id.len())]),
    ] {
        ensure!(vars.contains(&expected), "env lacks {expected:?}: {vars:?}");
    }
    ensure!(
        !vars.contains(&"SHARED=image"),
        "the run's -e must win over the image: {vars:?}"
    );
    ensure!(
        !vars.iter().any(|v| v.starts_with("UNSET_IN_CLIENT")),
        "-e NAME unset in the client must be left out: {vars:?}"
    );
    let config_env = e.container(&name)?["Config"]["Env"].clone();
    for expected in ["FLAG=1", "SHARED=run", "IMG=one", "FROMFILE=yes"] {
        ensure!(
            config_env
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == expected)),
            "Config.Env lacks {expected}: {config_env}"
        );
    }
    Ok(())
}

#[test]
fn working_directory_is_created_if_missing() -> Result<()> {
    let e = Engine::start()?;
    ensure!(
        e.run_rm(&[BUSYBOX, "pwd"])? == "/\n",
        "the default working directory is /"
    );
    ensure!(
        e.run_rm(&["-w", "/does/not/exist", BUSYBOX, "pwd"])? == "/does/not/exist\n",
        "-w of a missing directory"
    );
    e.import("wdimg", &["WORKDIR /srv/app"])?;
    ensure!(
        e.run_rm(&["wdimg", "pwd"])? == "/srv/app\n",
        "the image's WORKDIR"
    );
    ensure!(
        e.run_rm(&["-w", "/tmp", "wdimg", "pwd"])? == "/tmp\n",
        "-w overrides WORKDIR"
    );
    Ok(())
}

#[test]
fn user_by_number_and_by_name() -> Result<()> {
    let e = Engine::start()?;
    let probe = "id -u; id -g; echo $HOME";
    ensure!(
        e.run_rm(&[BUSYBOX, "sh", "-c", probe])? == "0\n0\n/root\n",
        "the default user is root"
    );
    let out = e.run_rm(&["-u", "1000:1000", BUSYBOX, "sh", "-c", probe])?;
    ensure!(out == "1000\n1000\n/home/berth\n", "-u 1000:1000: {out:?}");
    let out = e.run_rm(&["-u", "1000", BUSYBOX, "sh", "-c", probe])?;
    ensure!(
        out == "1000\n1000\n/home/berth\n",
        "-u 1000 takes the passwd group: {out:?}"
    );
    let out = e.run_rm(&["-u", "nobody", BUSYBOX, "sh", "-c", probe])?;
    ensure!(out == "65534\n65534\n/nonexistent\n", "-u nobody: {out:?}");
    let out = e.run_rm(&["-u", "berth:nogroup", BUSYBOX, "sh", "-c", probe])?;
    ensure!(
        out == "1000\n65534\n/home/berth\n",
        "-u berth:nogroup: {out:?}"
    );
    // A uid that passwd does not know: gid 0, HOME /.
    let out = e.run_rm(&["-u", "4242", BUSYBOX, "sh", "-c", probe])?;
    ensure!(out == "4242\n0\n/\n", "-u 4242: {out:?}");
    let out = e.run_rm(&["-u", "1000", "--group-add", "65534", BUSYBOX, "id", "-G"])?;
    ensure!(
        out.split_whitespace().collect::<Vec<_>>() == ["1000", "65534"],
        "--group-add: {out:?}"
    );

    let out = e.docker(&["run", "--rm", "-u", "nosuchuser", BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "an unknown user: {out}");
    ensure_contains(
        &out.stderr,
        "unable to find user nosuchuser: no matching entries in passwd file",
        "unknown user",
    )?;
    Ok(())
}

#[test]
fn hostname_and_etc_files() -> Result<()> {
    let e = Engine::start()?;
    let out = e.run_rm(&[
        "--hostname",
        "myhost",
        BUSYBOX,
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ])?;
    ensure!(out == "myhost\nmyhost\n", "--hostname: {out:?}");

    let name = unique("host");
    let out = e.run_script(&name, "hostname; cat /etc/hostname")?;
    let id = e.container_id(&name)?;
    let short = &id[..12];
    ensure!(
        out.stdout == format!("{short}\n{short}\n"),
        "the default hostname is the short ID: {out}"
    );

    let hosts = e.run_rm(&[
        "--network",
        "none",
        "--hostname",
        "myhost",
        BUSYBOX,
        "cat",
        "/etc/hosts",
    ])?;
    ensure_contains(&hosts, "127.0.0.1\tlocalhost", "/etc/hosts")?;
    ensure_contains(
        &hosts,
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "/etc/hosts",
    )?;
    let resolv = e.run_rm(&[BUSYBOX, "ls", "-l", "/etc/resolv.conf"])?;
    ensure!(
        resolv.contains("/etc/resolv.conf"),
        "/etc/resolv.conf exists: {resolv}"
    );

    // With the host's network, the host's name.
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    let out = e.run_rm(&["--network", "host", BUSYBOX, "hostname"])?;
    ensure!(
        out.trim() == host_name.trim(),
        "--network host keeps the host's name: {out:?}"
    );
    Ok(())
}

#[test]
fn read_only_root_with_a_writable_tmpfs() -> Result<()> {
    let e = Engine::start()?;
    let out = e.docker(&["run", "--rm", "--read-only", BUSYBOX, "touch", "/x"])?;
    ensure!(
        out.code == Some(1),
        "a write to a read-only root must fail: {out}"
    );
    ensure_contains(&out.stderr, "Read-only file system", "read-only root")?;
    let out = e.run_rm(&[
        "--read-only",
        "--tmpfs",
        "/tmp",
        BUSYBOX,
        "sh",
        "-c",
        "echo ok > /tmp/x && cat /tmp/x",
    ])?;
    ensure!(out == "ok\n", "--tmpfs /tmp on a read-only root: {out:?}");
    let out = e.run_rm(&["--read-only", BUSYBOX, "grep", " / ", "/proc/mounts"])?;
    ensure!(
        out.split_whitespace()
            .nth(3)
            .is_some_and(|o| o.split(',').any(|f| f == "ro")),
        "the root is mounted ro: {out}"
    );
    Ok(())
}

/// Docker's default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
/// SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DEFAULT_CAPS: u64 = 0xa80425fb;

#[test]
fn capabilities_default_dropped_and_privileged() -> Result<()> {
    let e = Engine::start()?;
    // The host's bounding set: what a privileged container can get here.
    let host_bounding = host::cap_mask(
        &host::status_field(std::process::id() as i32, "CapBnd").unwrap_or_default(),
    )?;
    let caps = |args: &[&str]| -> Result<(u64, u64)> {
        let mut full: Vec<&str> = args.to_vec();
        full.extend([
            BUSYBOX,
            "sh",
            "-c",
            "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        ]);
        let out = e.run_rm(&full)?;
        let field = |name: &str| -> Result<u64> {
            let line = out
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default();
            host::cap_mask(line.split(':').nth(1).unwrap_or(""))
        };
        Ok((field("CapEff")?, field("CapBnd")?))
    };
    let (eff, bnd) = caps(&[])?;
    let expected = DEFAULT_CAPS & host_bounding;
    ensure!(
        eff == expected && bnd == expected,
        "default: CapEff {eff:016x} CapBnd {bnd:016x}, want {expected:016x}"
    );
    let (eff, bnd) = caps(&["--cap-drop", "ALL"])?;
    ensure!(
        eff == 0 && bnd == 0,
        "--cap-drop ALL: CapEff {eff:016x} CapBnd {bnd:016x}"
    );
    let (eff, _) = caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"])?;
    ensure!(
        eff == 1 << 12,
        "--cap-drop ALL --cap-add NET_ADMIN: {eff:016x}"
    );
    let (eff, _) = caps(&["--cap-add", "SYS_ADMIN", "--cap-drop", "MKNOD"])?;
    let want = (DEFAULT_CAPS | 1 << 21) & !(1 << 27) & host_bounding;
    ensure!(
        eff == want,
        "--cap-add SYS_ADMIN --cap-drop MKNOD: {eff:016x}, want {want:016x}"
    );
    let (eff, bnd) = caps(&["--privileged"])?;
    ensure!(
        eff == host_bounding && bnd == host_bounding,
        "--privileged: CapEff {eff:016x} CapBnd {bnd:016x}, want the host's {host_bounding:016x}"
    );
    // A non-root user keeps no effective capabilities.
    let (eff, _) = caps(&["-u", "1000"])?;
    ensure!(eff == 0, "-u 1000: CapEff {eff:016x}");
    Ok(())
}

#[test]
fn no_new_privileges() -> Result<()> {
    let e = Engine::start()?;
    let out = e.run_rm(&[BUSYBOX, "grep", "NoNewPrivs", "/proc/self/status"])?;
    ensure!(out.trim() == "NoNewPrivs:\t0", "default: {out:?}");
    let out = e.run_rm(&[
        "--security-opt",
        "no-new-privileges",
        BUSYBOX,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ])?;
    ensure!(
        out.trim() == "NoNewPrivs:\t1",
        "--security-opt no-new-privileges: {out:?}"
    );
    let out = e.run_rm(&[
        "--security-opt",
        "no-new-privileges:true",
        BUSYBOX,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ])?;
    ensure!(
        out.trim() == "NoNewPrivs:\t1",
        "no-new-privileges:true: {out:?}"
    );
    Ok(())
}

#[test]
fn init_runs_as_pid_one_and_forwards_signals() -> Result<()> {
    if cmd::which("docker-init").is_none() && cmd::which("tini").is_none() {
        eprintln!("skipped: neither docker-init nor tini is installed on this host");
        return Ok(());
    }
    let e = Engine::start()?;
    let out = e.run_rm(&["--init", BUSYBOX, "sh", "-c", "cat /proc/1/comm; echo $$"])?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        matches!(lines.first(), Some(&"docker-init") | Some(&"tini")),
        "--init: pid 1 is {lines:?}"
    );
    ensure!(
        lines.get(1).is_some_and(|pid| *pid != "1"),
        "the command is not pid 1: {lines:?}"
    );
    let c = unique("init");
    e.docker_ok(&["create", "--name", &c, "--init", BUSYBOX])?;
    ensure!(
        e.container(&c)?["HostConfig"]["Init"] == true,
        "HostConfig.Init"
    );

    // Without --init a shell as pid 1 ignores SIGTERM; with it, the init
    // forwards SIGTERM to `sleep`, which dies of it: stop is quick, exit 143.
    let name = unique("initstop");
    e.run_detached(&["--name", &name, "--init", BUSYBOX, "sleep", "1000"])?;
    let started = std::time::Instant::now();
    e.docker_ok(&["stop", "-t", "20", &name])?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "stop with --init took {:?}",
        started.elapsed()
    );
    let state = e.container(&name)?["State"].clone();
    ensure!(
        state["ExitCode"] == 143,
        "sleep killed by SIGTERM under init: {state}"
    );
    Ok(())
}

#[test]
fn ulimits_reach_the_process() -> Result<()> {
    let e = Engine::start()?;
    let out = e.run_rm(&[
        "--ulimit",
        "nofile=1024:2048",
        BUSYBOX,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ])?;
    ensure!(out == "1024\n2048\n", "--ulimit nofile=1024:2048: {out:?}");
    let name = unique("ulimit");
    e.docker_ok(&[
        "create",
        "--name",
        &name,
        "--ulimit",
        "nproc=100:200",
        BUSYBOX,
    ])?;
    let ulimits = e.container(&name)?["HostConfig"]["Ulimits"].clone();
    ensure!(
        ulimits == json!([{"Name": "nproc", "Soft": 100, "Hard": 200}]),
        "HostConfig.Ulimits: {ulimits}"
    );
    Ok(())
}

#[test]
fn stop_signal_is_used_by_stop() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("stopsig");
    let script = format!("trap 'echo got USR1; exit 0' USR1; echo ready; {IDLE}");
    e.run_detached(&[
        "--name",
        &name,
        "--stop-signal",
        "USR1",
        BUSYBOX,
        "sh",
        "-c",
        &script,
    ])?;
    ensure!(
        e.container(&name)?["Config"]["StopSignal"] == "USR1",
        "Config.StopSignal"
    );
    e.wait_for_logs(&name, "ready", WAIT)?;
    let started = std::time::Instant::now();
    e.docker_ok(&["stop", "-t", "20", &name])?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    let logs = e.docker_ok(&["logs", &name])?;
    ensure_contains(&logs.stdout, "got USR1", "the stop signal reached the trap")?;
    ensure!(
        e.container(&name)?["State"]["ExitCode"] == 0,
        "exit code after the trap"
    );

    let out = e.docker(&["run", "--rm", "--stop-signal", "NOSUCHSIG", BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "an unknown stop signal: {out}");
    ensure_contains(
        &out.stderr,
        "Invalid signal: NOSUCHSIG",
        "unknown stop signal",
    )?;
    Ok(())
}

#[test]
fn network_none_has_only_loopback_and_host_sees_the_host() -> Result<()> {
    let e = Engine::start()?;
    let none =
        host::parse_net_dev(&e.run_rm(&["--network", "none", BUSYBOX, "cat", "/proc/net/dev"])?);
    ensure!(none == vec!["lo".to_string()], "--network none: {none:?}");
    let out = e.run_rm(&[
        "--network",
        "none",
        BUSYBOX,
        "cat",
        "/sys/class/net/lo/operstate",
    ])?;
    ensure!(
        out.trim() == "unknown",
        "lo is up in --network none: {out:?}"
    );
    // The daemon runs in a network namespace of its own: that is the host it shares.
    let host_side = host::parse_net_dev(&e.in_netns("cat", &["/proc/net/dev"])?.ok()?.stdout);
    let inside =
        host::parse_net_dev(&e.run_rm(&["--network", "host", BUSYBOX, "cat", "/proc/net/dev"])?);
    ensure!(
        inside == host_side,
        "--network host sees {inside:?}, the host has {host_side:?}"
    );
    let name = unique("none");
    e.docker_ok(&["create", "--name", &name, "--network", "none", BUSYBOX])?;
    let c = e.container(&name)?;
    ensure!(
        c["HostConfig"]["NetworkMode"] == "none",
        "NetworkMode: {}",
        c["HostConfig"]["NetworkMode"]
    );
    Ok(())
}

#[test]
fn labels_from_flags_files_and_image() -> Result<()> {
    let e = Engine::start()?;
    e.import(
        "labelled",
        &["LABEL img=yes", "LABEL over=image", r#"CMD ["sh"]"#],
    )?;
    let file = e.scratch("labels")?.join("labels");
    std::fs::write(&file, "fromfile=1\n")?;
    let name = unique("labels");
    e.docker_ok(&[
        "create",
        "--name",
        &name,
        "--label",
        "a=1",
        "--label",
        "bare",
        "--label",
        "over=run",
        "--label-file",
        &file.to_string_lossy(),
        "labelled",
    ])?;
    let labels = e.container(&name)?["Config"]["Labels"].clone();
    ensure!(
        labels == json!({"a": "1", "bare": "", "over": "run", "fromfile": "1", "img": "yes"}),
        "Config.Labels: {labels}"
    );
    let out = e.docker_ok(&[
        "ps",
        "-a",
        "--format",
        "{{.Label \"a\"}}",
        "--filter",
        "label=bare",
    ])?;
    ensure!(out.stdout.trim() == "1", "ps by label: {out}");
    Ok(())
}
