//! Debian's docker CLI (20.10, API 1.41) against `berth daemon`: the older client negotiates
//! down and the image commands still work end to end.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use berth_image_tests::cmd::{require_tool, run_with, Outcome};
use berth_image_tests::{fixtures, Daemon, Registry};

const DEBIAN_DOCKER: &str = "/usr/bin/docker";

fn docker(daemon: &Daemon, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Outcome> {
    let mut cmd = Command::new(DEBIAN_DOCKER);
    cmd.arg("-H")
        .arg(daemon.host())
        .args(args)
        .env("DOCKER_CONFIG", daemon.scratch("docker-2010-config")?)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    run_with(cmd, stdin, Duration::from_secs(120))?.ok()
}

#[test]
fn debian_docker_20_10_image_commands() -> Result<()> {
    require_tool(DEBIAN_DOCKER, "docker.io")?;
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;

    let version = docker(
        &daemon,
        &[
            "version",
            "--format",
            "{{.Client.APIVersion}} {{.Server.APIVersion}}",
        ],
        None,
    )?;
    ensure!(
        version.stdout.trim() == "1.41 1.47",
        "client 1.41 against berth: {version}"
    );

    let tar = std::fs::read(fixtures::busybox_tar()?)?;
    let id = docker(
        &daemon,
        &["import", "-c", r#"CMD ["/bin/sh"]"#, "-", "bb:old"],
        Some(tar),
    )?;
    let id = id.stdout.trim().to_string();
    ensure!(id.starts_with("sha256:"), "import prints the id: {id}");

    let remote = registry.image(&format!("{}:1", berth_image_tests::unique("old-client")));
    docker(&daemon, &["tag", "bb:old", &remote], None)?;
    let listed = docker(
        &daemon,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        None,
    )?;
    ensure!(
        listed.stdout.contains("bb:old") && listed.stdout.contains(&remote),
        "images: {listed}"
    );

    let cmd = docker(
        &daemon,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{json .Config.Cmd}}",
            "bb:old",
        ],
        None,
    )?;
    ensure!(
        cmd.stdout.trim() == format!(r#"{id} ["/bin/sh"]"#),
        "inspect: {cmd}"
    );
    docker(&daemon, &["history", "bb:old"], None)?;

    // push, remove, pull back: the same image id.
    let pushed = docker(&daemon, &["push", &remote], None)?;
    ensure!(pushed.stdout.contains("digest: sha256:"), "push: {pushed}");
    docker(&daemon, &["rmi", "bb:old", &remote], None)?;
    docker(&daemon, &["pull", &remote], None)?;
    let back = docker(
        &daemon,
        &["image", "inspect", "-f", "{{.Id}}", &remote],
        None,
    )?;
    ensure!(back.stdout.trim() == id, "pulled back {back}, pushed {id}");

    // save | load through the old client.
    let dir = daemon.scratch("docker-2010-save")?;
    let archive = dir.join("saved.tar");
    docker(
        &daemon,
        &["save", "-o", archive.to_str().expect("utf-8 path"), &remote],
        None,
    )?;
    docker(&daemon, &["rmi", &remote], None)?;
    let loaded = docker(
        &daemon,
        &["load", "-i", archive.to_str().expect("utf-8 path")],
        None,
    )?;
    ensure!(
        loaded.stdout.contains(&format!("Loaded image: {remote}")),
        "load: {loaded}"
    );
    docker(&daemon, &["system", "df"], None)?;
    Ok(())
}
