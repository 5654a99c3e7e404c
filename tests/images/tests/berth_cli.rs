//! berth's own command line against `berth daemon`: the same commands as docker, through the
//! same API, with the docker CLI as the witness of what the daemon holds.

use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use berth_image_tests::cmd::{run_with, Outcome};
use berth_image_tests::daemon::berth_binary;
use berth_image_tests::{fixtures, unique, Daemon, Registry};

fn berth(daemon: &Daemon, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Outcome> {
    let bin = berth_binary().map_err(|e| anyhow!(e))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-H")
        .arg(daemon.host())
        .arg("--config")
        .arg(daemon.scratch("berth-cli-config")?)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST");
    run_with(cmd, stdin, Duration::from_secs(120))
}

#[test]
fn berth_cli_drives_the_image_commands() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;

    let tar = std::fs::read(fixtures::busybox_tar()?)?;
    let id = berth(
        &daemon,
        &["import", "-c", r#"CMD ["/bin/sh"]"#, "-", "bb:cli"],
        Some(tar),
    )?
    .ok()?;
    let id = id.stdout.trim().to_string();
    ensure!(id.starts_with("sha256:"), "import prints the id: {id}");
    ensure!(
        daemon.inspect("bb:cli")?["Id"] == id.as_str(),
        "docker sees the image berth imported"
    );

    let remote = registry.image(&format!("{}:1", unique("berth-cli")));
    berth(&daemon, &["tag", "bb:cli", &remote], None)?.ok()?;
    let listed = berth(
        &daemon,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        None,
    )?
    .ok()?;
    ensure!(
        listed.lines().contains(&"bb:cli".to_string()) && listed.stdout.contains(&remote),
        "images: {listed}"
    );
    let quiet = berth(&daemon, &["images", "-q"], None)?.ok()?;
    ensure!(
        quiet.lines().iter().all(|l| id.contains(l.as_str())),
        "images -q: {quiet}"
    );
    let cmd = berth(
        &daemon,
        &["image", "inspect", "-f", "{{json .Config.Cmd}}", "bb:cli"],
        None,
    )?
    .ok()?;
    ensure!(cmd.stdout.trim() == r#"["/bin/sh"]"#, "inspect: {cmd}");

    let pushed = berth(&daemon, &["push", &remote], None)?.ok()?;
    ensure!(pushed.stdout.contains("digest: sha256:"), "push: {pushed}");
    let removed = berth(&daemon, &["rmi", "bb:cli", &remote], None)?.ok()?;
    ensure!(
        removed.stdout.contains(&format!("Deleted: {id}")),
        "rmi: {removed}"
    );
    berth(&daemon, &["pull", &remote], None)?.ok()?;
    ensure!(
        daemon.inspect(&remote)?["Id"] == id.as_str(),
        "pulled back the same image"
    );

    let dir = daemon.scratch("berth-cli-save")?;
    let archive = dir.join("saved.tar");
    let archive = archive.to_str().expect("utf-8 path");
    berth(&daemon, &["save", "-o", archive, &remote], None)?.ok()?;
    berth(&daemon, &["rmi", &remote], None)?.ok()?;
    let loaded = berth(&daemon, &["load", "-i", archive], None)?.ok()?;
    ensure!(
        loaded.stdout.contains(&format!("Loaded image: {remote}")),
        "load: {loaded}"
    );

    let missing = berth(&daemon, &["rmi", "no-such-image:1"], None)?;
    ensure!(!missing.success(), "rmi of an unknown image fails");
    ensure!(
        missing
            .stderr
            .contains("Error response from daemon: No such image: no-such-image:1"),
        "one clear line: {missing}"
    );
    let df = berth(&daemon, &["system", "df"], None)?.ok()?;
    ensure!(df.stdout.contains("Images"), "system df: {df}");
    Ok(())
}
