//! Resource limits: the runtime's cgroup settings are enforced on the
//! container, can be changed while it runs, and are reported by `events`.
//!
//! The container's cgroup is found the way an operator would: from
//! /proc/<pid>/cgroup and the host's cgroup mounts (v1 or v2).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_runtime_tests::host::{cgroup_read, wait_until};
use berth_runtime_tests::{conformance, Bundle, Container, Spec};
use serde_json::{json, Value};

const MIB: i64 = 1024 * 1024;

conformance!(memory_limit_oom_kills, |rt| {
    let bundle = Bundle::new()?;
    // The shell doubles a string until it no longer fits in 32 MiB.
    let spec = Spec::new()
        .resources("memory", json!({ "limit": 32 * MIB, "swap": 32 * MIB }))
        .shell("a=x; while true; do a=$a$a; done");
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "oom");
    let outcome = c.run()?;
    ensure!(
        outcome.code == Some(137),
        "[{rt}] a process over its memory limit must be OOM-killed (exit 137): {outcome}"
    );
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(pids_limit_stops_fork_bomb, |rt| {
    let bundle = Bundle::new()?;
    let spec = Spec::new()
        .resources("pids", json!({ "limit": 10 }))
        .shell("for i in $(seq 1 40); do sleep 30 & done; echo all-forked");
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "pids");
    let outcome = c.run()?;
    ensure!(
        !outcome.stdout.contains("all-forked") && !outcome.success(),
        "[{rt}] 40 forks must fail under pids.limit 10: {outcome}"
    );
    ensure!(
        outcome.stderr.contains("fork"),
        "[{rt}] the shell should report the failed fork: {outcome}"
    );
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(cpu_quota_throttles, |rt| {
    let bundle = Bundle::new()?;
    let spec = Spec::new()
        .resources("cpu", json!({ "quota": 10000, "period": 100000 }))
        .shell("while :; do :; done");
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "cpu");
    c.start_running()?;
    let pid = c.pid()?;
    let mut stat = String::new();
    let throttled = wait_until(Duration::from_secs(5), || {
        stat = cgroup_read(pid, "cpu", &["cpu.stat"])?;
        Ok(stat_value(&stat, "nr_throttled").unwrap_or(0) > 0)
    })?;
    ensure!(
        throttled,
        "[{rt}] a busy loop under a 10% quota must be throttled; cpu.stat:\n{stat}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

fn stat_value(stat: &str, key: &str) -> Option<i64> {
    stat.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// The memory limit of the container's cgroup in bytes (v1 or v2 file).
fn memory_limit(pid: i32) -> Result<i64> {
    let text = cgroup_read(pid, "memory", &["memory.limit_in_bytes", "memory.max"])?;
    text.parse()
        .with_context(|| format!("memory limit {text:?}"))
}

conformance!(update_changes_limits, |rt| {
    let bundle = Bundle::new()?;
    let spec = Spec::new()
        .resources("memory", json!({ "limit": 64 * MIB }))
        .resources("pids", json!({ "limit": 20 }))
        .args(&["sleep", "300"]);
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "update");
    c.start_running()?;
    let pid = c.pid()?;
    ensure!(
        memory_limit(pid)? == 64 * MIB,
        "[{rt}] memory limit from the spec not applied"
    );
    ensure!(
        cgroup_read(pid, "pids", &["pids.max"])? == "20",
        "[{rt}] pids limit from the spec not applied"
    );

    let memory = (48 * MIB).to_string();
    rt.invoke(&["update", "--memory", &memory, "--pids-limit", "15", &c.id])?
        .ok()?;
    ensure!(
        memory_limit(pid)? == 48 * MIB,
        "[{rt}] update --memory not applied: {}",
        memory_limit(pid)?
    );
    let pids = cgroup_read(pid, "pids", &["pids.max"])?;
    ensure!(
        pids == "15",
        "[{rt}] update --pids-limit not applied: pids.max {pids}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(events_stats_json, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().shell("sleep 300 & wait"))?;
    let c = Container::new(rt, &bundle, "events");
    c.start_running()?;
    let outcome = rt.invoke(&["events", "--stats", &c.id])?.ok()?;
    let event: Value = serde_json::from_str(outcome.stdout.trim())
        .with_context(|| format!("[{rt}] events --stats is not one JSON object: {outcome}"))?;
    ensure!(event["type"] == "stats", "[{rt}] event type: {event}");
    ensure!(event["id"] == c.id.as_str(), "[{rt}] event id: {event}");
    let data = &event["data"];
    ensure!(
        data["pids"]["current"].as_i64() >= Some(2),
        "[{rt}] data.pids.current: {event}"
    );
    ensure!(
        data["memory"]["usage"]["usage"].as_i64() > Some(0),
        "[{rt}] data.memory.usage.usage: {event}"
    );
    ensure!(
        data["cpu"]["usage"]["total"].as_i64() > Some(0),
        "[{rt}] data.cpu.usage.total: {event}"
    );
    c.delete_and_check(true)?;
    Ok(())
});
