//! `docker events`: a container's life as the engine reports it, live and replayed with
//! `--since`, filtered by type and event.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Result};
use berth_container_tests::{unique, Engine, BUSYBOX};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn a_containers_life_is_replayed_with_since_and_filtered() -> Result<()> {
    let e = Engine::start()?;
    let since = now().saturating_sub(1).to_string();
    let name = unique("events");
    e.docker_ok(&["run", "--rm", "--name", &name, BUSYBOX, "true"])?;
    let volume = unique("evvol");
    e.docker_ok(&["volume", "create", &volume])?;
    let until = (now() + 1).to_string();

    let all = e.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ])?;
    ensure!(
        all.lines() == vec!["create", "attach", "start", "die", "destroy"],
        "the container's events, replayed: {all}"
    );
    let dies = e.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ])?;
    ensure!(
        dies.lines() == vec![format!("{name} 0")],
        "die events with their exit code: {dies}"
    );
    let volumes = e.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ])?;
    ensure!(
        volumes.lines() == vec![format!("create {volume}")],
        "volume events: {volumes}"
    );
    e.docker_ok(&["volume", "rm", &volume])?;
    Ok(())
}
