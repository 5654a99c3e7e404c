//! Crashes: `kill -9` of the daemon in the middle of a pull, then a restart on
//! the same data root. The store must load, list no half image, and a second
//! pull must finish with every digest right.

use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use berth_image_tests::cmd::{run, wait_output};
use berth_image_tests::tarball::random_bytes;
use berth_image_tests::{digest, Daemon, Delivery, FakeRegistry, OciImage, Response, TarWriter};
use serde_json::Value;

/// 50 MB of incompressible data in one layer, after a small one.
fn big_image() -> OciImage {
    let small = TarWriter::new()
        .dir("etc/")
        .file("etc/hostname", b"berth\n")
        .finish();
    let big = TarWriter::new()
        .file("big.bin", &random_bytes(50 << 20, 0xb16))
        .finish();
    OciImage::new(&[small, big])
}

fn serve_throttled(fake: &FakeRegistry, image: &OciImage, rate: Option<u64>) -> String {
    fake.serve_image("big", "1", image);
    let layer = image.layers[1].clone();
    let path = format!("/v2/big/blobs/{layer}");
    let response = Response::ok("application/octet-stream", image.blobs[&layer].clone())
        .header("Docker-Content-Digest", &layer);
    fake.route(
        &path,
        response.delivery(rate.map_or(Delivery::Whole, Delivery::Throttled)),
    );
    path
}

/// Checks the pulled image: ID, RepoDigests, diff IDs, and that `docker save`
/// gives back layers whose sha256 are the diff IDs.
fn verify_pulled(daemon: &Daemon, name: &str, repo: &str, image: &OciImage) -> Result<()> {
    let inspect = daemon.inspect(name)?;
    ensure!(
        inspect["Id"] == image.config_digest().as_str(),
        "Id {} != {}",
        inspect["Id"],
        image.config_digest()
    );
    let repo_digest = format!("{repo}@{}", image.manifest_digest());
    ensure!(
        inspect["RepoDigests"] == serde_json::json!([repo_digest]),
        "RepoDigests: {}",
        inspect["RepoDigests"]
    );
    ensure!(
        inspect["RootFS"]["Layers"] == serde_json::json!(image.diff_ids),
        "diff IDs: {}",
        inspect["RootFS"]
    );

    let file = daemon.scratch("save")?.join("big.tar");
    daemon.docker_ok(&["save", "-o", &file.to_string_lossy(), name])?;
    let file = file.to_string_lossy().into_owned();
    let manifest: Value =
        serde_json::from_str(&run("tar", &["-xOf", &file, "manifest.json"])?.ok()?.stdout)?;
    let layers = manifest[0]["Layers"]
        .as_array()
        .context("manifest.json Layers")?;
    ensure!(
        layers.len() == image.diff_ids.len(),
        "saved layers: {manifest}"
    );
    for (path, diff_id) in layers.iter().zip(&image.diff_ids) {
        let path = path.as_str().context("layer path")?;
        let saved = std::process::Command::new("tar")
            .args(["-xOf", &file, path])
            .output()?
            .stdout;
        // What the store holds must hash to the diff ID, whatever compression
        // the archive uses (docker_cli.rs checks that save writes plain tars).
        let bytes = if saved.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(saved.as_slice()),
                &mut plain,
            )?;
            plain
        } else {
            saved
        };
        let kind = if bytes.starts_with(&[0x1f, 0x8b]) {
            "gzip data"
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            "zstd data"
        } else {
            "not compressed"
        };
        ensure!(
            digest(&bytes) == *diff_id,
            "saved layer {path} ({} bytes, {kind}) hashes to {} not to its diff ID {diff_id}",
            bytes.len(),
            digest(&bytes)
        );
    }
    Ok(())
}

#[test]
fn kill9_mid_pull_then_restart_and_pull_again() -> Result<()> {
    let fake = FakeRegistry::start()?;
    let image = big_image();
    // 8 MB/s: the 50 MB layer takes about 6 s, so the kill lands mid-layer.
    let big_path = serve_throttled(&fake, &image, Some(8 << 20));
    let mut daemon = Daemon::start_with(&[&fake.host()])?;
    berth_image_tests::import_tiny(&daemon, "before:1", "kept")?;
    let before = daemon.image_table()?;

    let repo = format!("{}/big", fake.host());
    let name = format!("{repo}:1");
    let mut pull = daemon.docker_command(&["pull", &name]);
    pull.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = pull.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.bytes_sent(&big_path) < (10 << 20) {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let (_, out, err) = wait_output(&mut child, Duration::from_secs(30), "docker pull")?;
            bail!(
                "the big layer never got under way ({} bytes sent); pull said:\n{out}{err}\nrequests: {:?}\n{}",
                fake.bytes_sent(&big_path),
                fake.requests(),
                daemon.log()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    daemon.kill9()?;
    let (status, out, err) = wait_output(&mut child, Duration::from_secs(60), "docker pull")?;
    eprintln!("docker pull ended {:?} after the kill", started.elapsed());
    ensure!(
        !status.success(),
        "the pull cannot succeed after the daemon died:\n{out}{err}"
    );

    daemon.restart()?;
    let after = daemon.image_table()?;
    ensure!(
        after == before,
        "after the crash the list must be as before:\nbefore {before:?}\nafter  {after:?}"
    );
    let missing = daemon.docker(&["image", "inspect", &name])?.failed()?;
    ensure!(
        missing.stderr.contains("No such image"),
        "no half image: {missing}"
    );

    // Full speed now; the pull must finish and verify.
    serve_throttled(&fake, &image, None);
    let started = Instant::now();
    daemon.docker_ok(&["pull", &name])?;
    eprintln!("second pull took {:?}", started.elapsed());
    verify_pulled(&daemon, &name, &repo, &image)?;
    eprintln!("verified after {:?}", started.elapsed());
    ensure!(
        daemon.inspect("before:1").is_ok(),
        "the earlier image survived"
    );

    // And it survives another crash, now that it is complete.
    daemon.kill9()?;
    daemon.restart()?;
    verify_pulled(&daemon, &name, &repo, &image)?;
    Ok(())
}

#[test]
fn kill9_after_pull_keeps_the_image() -> Result<()> {
    let fake = FakeRegistry::start()?;
    let small = TarWriter::new().file("a.txt", b"a").finish();
    let image = OciImage::new(&[small]);
    fake.serve_image("small", "1", &image);
    let mut daemon = Daemon::start_with(&[&fake.host()])?;
    let repo = format!("{}/small", fake.host());
    let name = format!("{repo}:1");
    daemon.docker_ok(&["pull", &name])?;
    daemon.docker_ok(&["tag", &name, "other:2"])?;
    let before = daemon.image_table()?;
    daemon.kill9()?;
    daemon.restart()?;
    ensure!(
        daemon.image_table()? == before,
        "a completed pull and tag survive kill -9"
    );
    let inspect = daemon.inspect("other:2")?;
    ensure!(
        inspect["Id"] == image.config_digest().as_str(),
        "{}",
        inspect["Id"]
    );
    Ok(())
}
