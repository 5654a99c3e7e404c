//! Resource limits, checked where the kernel keeps them: the container's
//! cgroup (`/sys/fs/cgroup/<controller>/berth/<id>` on this cgroup v1 host)
//! and what happens to a process that hits them: OOM kill, fork failure, CPU
//! throttling; `update` on a running container; Docker's errors for limits
//! out of range.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use berth_container_tests::{cmd, ensure_contains, eventually, host, unique, Engine, BUSYBOX};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn memory_hog_is_oom_killed() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("hog");
    let out = e.docker(&[
        "run",
        "--name",
        &name,
        "--memory",
        "32m",
        BUSYBOX,
        "sh",
        "-c",
        "x=a; while :; do x=$x$x; done",
    ])?;
    ensure!(
        out.code == Some(137),
        "an OOM-killed container exits 137: {out}"
    );
    let c = e.container(&name)?;
    ensure!(
        c["State"]["OOMKilled"] == true,
        "State.OOMKilled: {}",
        c["State"]
    );
    ensure!(c["State"]["ExitCode"] == 137, "{}", c["State"]);
    ensure!(
        c["HostConfig"]["Memory"] == 33554432,
        "HostConfig.Memory: {}",
        c["HostConfig"]["Memory"]
    );
    // One that stays under its limit is not marked.
    let fine = unique("fine");
    e.docker_ok(&["run", "--name", &fine, "--memory", "32m", BUSYBOX, "true"])?;
    ensure!(
        e.container(&fine)?["State"]["OOMKilled"] == false,
        "OOMKilled without an OOM"
    );
    Ok(())
}

#[test]
fn memory_swap_defaults_to_twice_memory() -> Result<()> {
    let e = Engine::start()?;
    // (--memory-swap, HostConfig.MemorySwap, memory.memsw.limit_in_bytes)
    let cases: [(Option<&str>, i64, Option<i64>); 3] = [
        (None, 128 << 20, Some(128 << 20)),
        (Some("96m"), 96 << 20, Some(96 << 20)),
        (Some("-1"), -1, None),
    ];
    for (swap, want, want_file) in cases {
        let name = unique("swap");
        let mut args = vec!["--name", &name, "--memory", "64m"];
        if let Some(swap) = swap {
            args.extend(["--memory-swap", swap]);
        }
        args.extend([BUSYBOX, "sleep", "1000"]);
        let id = e.run_detached(&args)?;
        let got = &e.container(&name)?["HostConfig"]["MemorySwap"];
        ensure!(
            got == want,
            "--memory 64m --memory-swap {swap:?}: MemorySwap {got}, want {want}"
        );
        let file = host::cgroup_dir("memory", &id).join("memory.memsw.limit_in_bytes");
        if file.exists() {
            let memsw = host::cgroup_number("memory", &id, "memory.memsw.limit_in_bytes")?;
            match want_file {
                Some(limit) => ensure!(memsw == limit, "--memory-swap {swap:?}: memsw {memsw}"),
                None => ensure!(memsw > 1 << 40, "--memory-swap -1: memsw {memsw}"),
            }
        }
        e.docker_ok(&["rm", "-f", &name])?;
    }
    Ok(())
}

#[test]
fn memory_limit_is_in_the_cgroup_and_update_changes_it() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("mem");
    let id = e.run_detached(&[
        "--name",
        &name,
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "30",
        BUSYBOX,
        "sleep",
        "1000",
    ])?;
    ensure!(
        host::cgroup_number("memory", &id, "memory.limit_in_bytes")? == 64 << 20,
        "memory.limit_in_bytes"
    );
    ensure!(
        host::cgroup_number("cpu", &id, "cpu.cfs_quota_us")? == 50_000,
        "cpu.cfs_quota_us"
    );
    ensure!(
        host::cgroup_number("pids", &id, "pids.max")? == 30,
        "pids.max"
    );

    let out = e.docker_ok(&[
        "update",
        "--memory",
        "96m",
        "--cpus",
        "0.25",
        "--pids-limit",
        "50",
        &name,
    ])?;
    ensure!(out.stdout.trim() == name, "update prints the name: {out}");
    ensure!(
        host::cgroup_number("memory", &id, "memory.limit_in_bytes")? == 96 << 20,
        "update --memory must change memory.limit_in_bytes"
    );
    ensure!(
        host::cgroup_number("cpu", &id, "cpu.cfs_quota_us")? == 25_000,
        "update --cpus"
    );
    ensure!(
        host::cgroup_number("pids", &id, "pids.max")? == 50,
        "update --pids-limit"
    );
    let hc = e.container(&name)?["HostConfig"].clone();
    ensure!(
        hc["Memory"] == 96 << 20 && hc["NanoCpus"] == 250_000_000 && hc["PidsLimit"] == 50,
        "HostConfig after update: Memory {} NanoCpus {} PidsLimit {}",
        hc["Memory"],
        hc["NanoCpus"],
        hc["PidsLimit"]
    );

    // Above the swap limit without --memory-swap: Docker's error, nothing changed.
    let out = e.docker_fails(&["update", "--memory", "256m", &name])?;
    ensure_contains(
        &out.stderr,
        "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
        "update above memoryswap",
    )?;
    ensure!(
        host::cgroup_number("memory", &id, "memory.limit_in_bytes")? == 96 << 20,
        "a refused update changed the cgroup"
    );
    e.docker_ok(&["update", "--memory", "256m", "--memory-swap", "512m", &name])?;
    ensure!(
        host::cgroup_number("memory", &id, "memory.limit_in_bytes")? == 256 << 20,
        "update with --memory-swap"
    );
    // The limits survive a restart of the container.
    e.docker_ok(&["restart", "-t", "0", &name])?;
    ensure!(
        host::cgroup_number("memory", &id, "memory.limit_in_bytes")? == 256 << 20,
        "limit after restart"
    );
    Ok(())
}

#[test]
fn pids_limit_stops_a_fork_bomb() -> Result<()> {
    // The bomb's orphans must be reaped for the container to recover: an
    // init as pid 1 does that (as it does in Docker).
    if cmd::which("docker-init").is_none() && cmd::which("tini").is_none() {
        eprintln!("skipped: neither docker-init nor tini is installed on this host");
        return Ok(());
    }
    let e = Engine::start()?;
    let name = unique("pids");
    let id = e.run_detached(&[
        "--name",
        &name,
        "--init",
        "--pids-limit",
        "20",
        BUSYBOX,
        "sleep",
        "1000",
    ])?;
    ensure!(
        host::cgroup_number("pids", &id, "pids.max")? == 20,
        "pids.max"
    );
    ensure!(
        e.container(&name)?["HostConfig"]["PidsLimit"] == 20,
        "HostConfig.PidsLimit"
    );
    // The shell forks until fork fails, then gives up.
    let started = Instant::now();
    let out = e.docker(&["exec", &name, "sh", "-c", "while :; do sleep 5 & done"])?;
    ensure!(
        !out.success(),
        "the fork bomb must stop with an error: {out}"
    );
    ensure_contains(&out.stderr, "can't fork", "the bomb's fork fails")?;
    ensure!(
        started.elapsed() < Duration::from_secs(60),
        "the bomb took {:?}",
        started.elapsed()
    );
    let current = host::cgroup_number("pids", &id, "pids.current")?;
    ensure!(current <= 20, "pids.current {current} over the limit");
    ensure!(
        e.container(&name)?["State"]["Running"] == true,
        "the container must survive its fork bomb"
    );
    // Once the sleeps end (and init reaps them), processes can start again.
    eventually("exec to work after the bomb", WAIT, || {
        let out = e.docker(&["exec", &name, "echo", "alive"])?;
        Ok((out.stdout == "alive\n").then_some(()))
    })?;
    Ok(())
}

#[test]
fn cpus_throttle_a_busy_loop() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("cpus");
    let id = e.run_detached(&[
        "--name",
        &name,
        "--cpus",
        "0.2",
        BUSYBOX,
        "sh",
        "-c",
        "while :; do :; done",
    ])?;
    ensure!(
        e.container(&name)?["HostConfig"]["NanoCpus"] == 200_000_000,
        "HostConfig.NanoCpus"
    );
    ensure!(
        host::cgroup_number("cpu", &id, "cpu.cfs_period_us")? == 100_000,
        "cpu.cfs_period_us"
    );
    ensure!(
        host::cgroup_number("cpu", &id, "cpu.cfs_quota_us")? == 20_000,
        "cpu.cfs_quota_us"
    );
    thread::sleep(Duration::from_millis(500));
    let throttled_before = host::cgroup_stat("cpu", &id, "cpu.stat", "nr_throttled")?;
    let usage_before = host::cgroup_number("cpuacct", &id, "cpuacct.usage")?;
    let started = Instant::now();
    thread::sleep(Duration::from_secs(2));
    let usage = host::cgroup_number("cpuacct", &id, "cpuacct.usage")? - usage_before;
    let wall = started.elapsed().as_nanos() as i64;
    let share = usage as f64 / wall as f64;
    ensure!(
        share > 0.02,
        "the loop must run at all: {share:.3} of a CPU"
    );
    ensure!(share < 0.4, "--cpus 0.2: the loop used {share:.3} of a CPU");
    let throttled = host::cgroup_stat("cpu", &id, "cpu.stat", "nr_throttled")?;
    ensure!(
        throttled > throttled_before,
        "nr_throttled must rise: {throttled_before} -> {throttled}"
    );

    // The stats endpoint reports the throttling too.
    let (status, body) = e.request("GET", &format!("/containers/{id}/stats?stream=false"))?;
    ensure!(status == 200, "stats: {status} {body}");
    let stats: serde_json::Value = serde_json::from_str(&body)?;
    let periods = stats["cpu_stats"]["throttling_data"]["throttled_periods"]
        .as_u64()
        .unwrap_or(0);
    ensure!(
        periods > 0,
        "throttling_data: {}",
        stats["cpu_stats"]["throttling_data"]
    );
    Ok(())
}

#[test]
fn invalid_limits_are_refused_and_create_nothing() -> Result<()> {
    let e = Engine::start()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--memory", "1k"],
            "Minimum memory limit allowed is 6MB".to_string(),
        ),
        (
            vec!["--cpus", "99"],
            format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            ),
        ),
        (
            vec!["--memory", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage".to_string(),
        ),
        (
            vec!["--cpuset-cpus", "7"],
            format!(
                "Requested CPUs are not available - requested 7, available: 0-{}",
                cpus - 1
            ),
        ),
    ];
    for (flags, message) in &cases {
        let name = unique("bad");
        let mut args = vec!["run", "--rm", "--name", &name];
        args.extend(flags.iter().copied());
        args.extend([BUSYBOX, "true"]);
        let out = e.docker(&args)?;
        ensure!(out.code == Some(125), "{flags:?} must be refused: {out}");
        ensure_contains(&out.stderr, message, &format!("{flags:?}"))?;
        // `create` exits 1 on a daemon error.
        let mut args = vec!["create", "--name", &name];
        args.extend(flags.iter().copied());
        args.push(BUSYBOX);
        let out = e.docker(&args)?;
        ensure!(
            out.code == Some(1),
            "create {flags:?} must be refused: {out}"
        );
        ensure_contains(&out.stderr, message, &format!("create {flags:?}"))?;
    }
    let left = e.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])?;
    ensure!(
        left.stdout.trim().is_empty(),
        "refused limits must create nothing; left: {}",
        left.stdout
    );
    // A refused update leaves the limits alone.
    let name = unique("upd");
    let id = e.run_detached(&["--name", &name, "--memory", "64m", BUSYBOX, "sleep", "1000"])?;
    let out = e.docker_fails(&["update", "--memory", "1k", &name])?;
    ensure_contains(
        &out.stderr,
        "Minimum memory limit allowed is 6MB",
        "update --memory 1k",
    )?;
    ensure!(
        host::cgroup_number("memory", &id, "memory.limit_in_bytes")? == 64 << 20,
        "refused update changed the cgroup"
    );
    Ok(())
}
