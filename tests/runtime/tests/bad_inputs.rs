//! Bad inputs: each is refused with a non-zero exit and one line on stderr
//! that names the problem, and leaves nothing behind (no state, cgroup,
//! mount or process). Message wording differs between runtimes, so each
//! check accepts any of a few words a clear message would use.

use anyhow::{ensure, Result};
use berth_runtime_tests::{conformance, Bundle, Container, Outcome, Runtime, Spec};
use serde_json::json;

/// Checks that `outcome` is a clean refusal whose message mentions one of
/// `keywords` (case-insensitive).
fn refused(rt: &Runtime, outcome: &Outcome, what: &str, keywords: &[&str]) -> Result<()> {
    ensure!(
        !outcome.timed_out && outcome.code.is_some_and(|code| code != 0),
        "[{rt}] {what} must fail with a non-zero exit: {outcome}"
    );
    let lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure!(
        lines.len() == 1,
        "[{rt}] {what} must print exactly one line on stderr: {outcome}"
    );
    let message = lines[0].to_lowercase();
    ensure!(
        keywords.iter().any(|k| message.contains(&k.to_lowercase())),
        "[{rt}] {what}: the message should mention one of {keywords:?}: {}",
        lines[0]
    );
    Ok(())
}

/// `create` with `config` as config.json must be refused and leave nothing.
fn create_refused(rt: &Runtime, config: &str, test: &str, keywords: &[&str]) -> Result<()> {
    let bundle = Bundle::new()?;
    bundle.write_config(config)?;
    let c = Container::new(rt, &bundle, test);
    let outcome = c.create()?;
    refused(rt, &outcome, &format!("create ({test})"), keywords)?;
    let state = c.command("state")?;
    ensure!(
        !state.success(),
        "[{rt}] {test}: the refused container exists: {state}"
    );
    c.assert_nothing_left()
}

conformance!(malformed_config_json, |rt| {
    let config = r#"{ "ociVersion": "1.0.2", "process": { "args": ["sh"] oops } }"#;
    create_refused(
        rt,
        config,
        "badjson",
        &[
            "json",
            "config",
            "invalid character",
            "syntax",
            "parse",
            "expected",
        ],
    )
});

conformance!(config_field_of_wrong_type, |rt| {
    let config = Spec::new().set("/process/args", json!("sh")).to_json();
    create_refused(
        rt,
        &config,
        "badtype",
        &["args", "invalid type", "unmarshal", "expected"],
    )
});

conformance!(missing_rootfs, |rt| {
    let config = Spec::new()
        .set("/root/path", json!("missing-rootfs-dir"))
        .to_json();
    create_refused(rt, &config, "norootfs", &["rootfs", "missing-rootfs-dir"])
});

conformance!(bind_mount_of_missing_source, |rt| {
    let config = Spec::new()
        .mount("/data", "bind", "/nonexistent-berth-source", &["rbind"])
        .args(&["true"])
        .to_json();
    create_refused(
        rt,
        &config,
        "badmount",
        &["nonexistent-berth-source", "/data"],
    )
});

conformance!(command_missing_from_rootfs, |rt| {
    let config = Spec::new().args(&["/bin/no-such-command"]).to_json();
    create_refused(rt, &config, "nocmd", &["no-such-command"])?;

    let bundle = Bundle::new()?;
    bundle.write_config(&config)?;
    let c = Container::new(rt, &bundle, "nocmd-run");
    let outcome = c.run()?;
    refused(
        rt,
        &outcome,
        "run of a missing command",
        &["no-such-command"],
    )?;
    c.assert_nothing_left()
});

conformance!(unknown_signal_name, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "badsignal");
    c.start_running()?;
    for signal in ["SIGFOO", "FOO"] {
        let outcome = c.kill(signal)?;
        refused(rt, &outcome, &format!("kill {signal}"), &["signal", signal])?;
    }
    ensure!(
        c.status()? == "running",
        "[{rt}] a refused kill changed the container: {}",
        c.state()?
    );
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(duplicate_id, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().args(&["sleep", "300"]))?;
    let c = Container::new(rt, &bundle, "dupid");
    c.create()?.ok()?;
    let pid = c.pid()?;
    let again = c.create()?;
    refused(
        rt,
        &again,
        "create of an existing id",
        &["exist", "in use", "duplicate"],
    )?;
    ensure!(
        c.status()? == "created",
        "[{rt}] the first container changed: {}",
        c.state()?
    );
    ensure!(c.pid()? == pid, "[{rt}] the first container's pid changed");
    c.delete_and_check(true)?;
    Ok(())
});

conformance!(start_of_missing_container, |rt| {
    let bundle = Bundle::new()?;
    let c = Container::new(rt, &bundle, "nostart");
    let outcome = c.command("start")?;
    refused(
        rt,
        &outcome,
        "start of an unknown id",
        &["exist", "not found", "no such"],
    )?;
    c.assert_nothing_left()
});

conformance!(start_of_running_or_stopped_container, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(
        &bundle.share(Spec::new().shell("while [ ! -e /shared/stop ]; do sleep 0.05; done"))?,
    )?;
    let c = Container::new(rt, &bundle, "restart");
    c.start_running()?;
    let again = c.command("start")?;
    refused(
        rt,
        &again,
        "start of a running container",
        &["running", "created", "state", "status"],
    )?;
    ensure!(
        c.status()? == "running",
        "[{rt}] a refused start changed the container"
    );

    std::fs::write(bundle.file("shared/stop"), "")?;
    c.wait_for_status("stopped", std::time::Duration::from_secs(5))?;
    let again = c.command("start")?;
    refused(
        rt,
        &again,
        "start of a stopped container",
        &["stopped", "created", "state", "status"],
    )?;
    c.delete_and_check(false)?;
    Ok(())
});

conformance!(delete_of_missing_container, |rt| {
    let bundle = Bundle::new()?;
    let c = Container::new(rt, &bundle, "nodelete");
    let outcome = c.command("delete")?;
    refused(
        rt,
        &outcome,
        "delete of an unknown id",
        &["exist", "not found", "no such"],
    )?;
    Ok(())
});
