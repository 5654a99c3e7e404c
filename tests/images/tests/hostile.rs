//! Hostile inputs: archives whose entries climb out of the layer, and a
//! registry that lies. Each must be refused with an error that names the
//! problem, write nothing outside the store, and leave the image list as it
//! was, also after a restart.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{ensure, Result};
use berth_image_tests::cmd::run;
use berth_image_tests::tarball::OCI_MANIFEST;
use berth_image_tests::{
    digest, docker_archive, import_busybox, unique, Daemon, Delivery, FakeRegistry, OciImage,
    Response, TarWriter,
};

/// One hostile layer: its tar, a word the refusal must mention, and a check
/// that nothing landed outside.
struct Hostile {
    name: &'static str,
    tar: Vec<u8>,
    mentions: Vec<String>,
}

/// Every file under `dir` whose name contains `needle`, or that is the same
/// inode as (`dev`, `ino`).
fn find_under(dir: &Path, needle: &str, inode: (u64, u64), found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if entry.file_name().to_string_lossy().contains(needle) || (meta.dev(), meta.ino()) == inode
        {
            found.push(path.display().to_string());
        }
        if meta.is_dir() {
            find_under(&path, needle, inode, found);
        }
    }
}

/// Whether some directory between `path` and `top` holds `ok.txt`, the
/// harmless entry written first in the same hostile layer.
fn inside_layer(path: &Path, top: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .take_while(|dir| dir.starts_with(top) && *dir != top)
        .any(|dir| dir.join("ok.txt").is_file())
}

fn hostile_layers(marker: &str, outside: &Path) -> Vec<Hostile> {
    let climb = "../".repeat(12);
    vec![
        Hostile {
            name: "dot-dot entry",
            tar: TarWriter::new()
                .file("ok.txt", b"fine")
                .file(&format!("../../{marker}"), b"escaped")
                .file(&format!("{climb}tmp/{marker}"), b"escaped")
                .finish(),
            mentions: vec![marker.to_string()],
        },
        Hostile {
            name: "write through an absolute symlink",
            tar: TarWriter::new()
                .symlink("evil", &outside.display().to_string())
                .file("evil/pwned", b"escaped")
                .finish(),
            mentions: vec!["evil".to_string()],
        },
        Hostile {
            name: "hard link to /etc/passwd (absolute)",
            tar: TarWriter::new()
                .hardlink("passwd-link", "/etc/passwd")
                .finish(),
            mentions: vec!["passwd".to_string()],
        },
        Hostile {
            name: "hard link to /etc/passwd (climbing)",
            tar: TarWriter::new()
                .hardlink("passwd-link", &format!("{climb}etc/passwd"))
                .finish(),
            mentions: vec!["passwd".to_string()],
        },
    ]
}

/// The state outside the store that a hostile archive might touch.
struct Outside {
    marker: String,
    dir: tempfile::TempDir,
    passwd: (Vec<u8>, u64, (u64, u64)),
}

impl Outside {
    fn new() -> Result<Outside> {
        let meta = fs::metadata("/etc/passwd")?;
        Ok(Outside {
            marker: unique("berth-it-escape-"),
            dir: berth_image_tests::tmp_dir("outside")?,
            passwd: (
                fs::read("/etc/passwd")?,
                meta.nlink(),
                (meta.dev(), meta.ino()),
            ),
        })
    }

    fn check(&self, daemon: &Daemon, case: &str) -> Result<()> {
        ensure!(
            !Path::new("/tmp").join(&self.marker).exists(),
            "{case}: wrote /tmp/{}",
            self.marker
        );
        let stray: Vec<_> = fs::read_dir(self.dir.path())?
            .flatten()
            .map(|e| e.path())
            .collect();
        ensure!(
            stray.is_empty(),
            "{case}: wrote through the symlink: {stray:?}"
        );
        let meta = fs::metadata("/etc/passwd")?;
        ensure!(
            fs::read("/etc/passwd")? == self.passwd.0,
            "{case}: /etc/passwd changed"
        );
        ensure!(
            meta.nlink() == self.passwd.1,
            "{case}: /etc/passwd gained a hard link"
        );
        let top = daemon
            .data_root()
            .parent()
            .unwrap_or(Path::new("/nonexistent"))
            .to_path_buf();
        let mut found = Vec::new();
        find_under(&top, &self.marker, self.passwd.2, &mut found);
        // A marker file inside the layer's own tree (an ancestor holds the
        // layer's `ok.txt`) was neutralised, not escaped: docker cleans `../`
        // that way. Anywhere else in the daemon's directory it escaped.
        found.retain(|path| !inside_layer(Path::new(path), &top));
        ensure!(
            found.is_empty(),
            "{case}: left in the daemon's directory outside the layer: {found:?}"
        );
        Ok(())
    }
}

/// What went wrong with one hostile archive, if anything: written outside
/// (checked first, the worst), accepted, refused without naming the entry, or
/// the image list changed. Several at once are all reported.
fn judge(
    daemon: &Daemon,
    outside: &Outside,
    before: &[String],
    out: &berth_image_tests::Outcome,
    hostile: &Hostile,
    how: &str,
) -> Result<Vec<String>> {
    let mut wrong = Vec::new();
    if let Err(e) = outside.check(daemon, hostile.name) {
        wrong.push(format!("[{}] WROTE OUTSIDE: {e:#}", hostile.name));
    }
    if out.success() {
        wrong.push(format!(
            "[{}] {how} succeeded instead of refusing: {out}",
            hostile.name
        ));
    } else if !hostile
        .mentions
        .iter()
        .any(|m| out.stderr.contains(m.as_str()))
    {
        wrong.push(format!(
            "[{}] {how} refused, but the error does not name the entry ({:?}): {out}",
            hostile.name, hostile.mentions
        ));
    }
    let after = daemon.image_table()?;
    if after != before {
        wrong.push(format!(
            "[{}] the image list changed: {after:?}",
            hostile.name
        ));
        // Put it back, so the next case starts from the same list.
        let _ = daemon.docker(&["rmi", "-f", "evil:1"]);
    }
    Ok(wrong)
}

#[test]
fn load_refuses_layers_that_escape() -> Result<()> {
    let mut daemon = Daemon::start()?;
    import_busybox(&daemon, "bb:1")?;
    let before = daemon.image_table()?;
    let outside = Outside::new()?;
    let mut failures = Vec::new();
    for hostile in hostile_layers(&outside.marker, outside.dir.path()) {
        let archive = docker_archive("evil:1", std::slice::from_ref(&hostile.tar));
        let out = daemon.docker_stdin(&["load"], archive)?;
        failures.extend(judge(
            &daemon,
            &outside,
            &before,
            &out,
            &hostile,
            "docker load",
        )?);
    }
    ensure!(
        failures.is_empty(),
        "{} of 4 hostile loads went wrong:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    daemon.restart()?;
    ensure!(
        daemon.image_table()? == before,
        "after a restart the list is unchanged"
    );
    outside.check(&daemon, "after restart")?;
    Ok(())
}

#[test]
fn import_refuses_tars_that_escape() -> Result<()> {
    let mut daemon = Daemon::start()?;
    import_busybox(&daemon, "bb:1")?;
    let before = daemon.image_table()?;
    let outside = Outside::new()?;
    let mut failures = Vec::new();
    for hostile in hostile_layers(&outside.marker, outside.dir.path()) {
        let out = daemon.docker_stdin(&["import", "-", "evil:1"], hostile.tar.clone())?;
        failures.extend(judge(
            &daemon,
            &outside,
            &before,
            &out,
            &hostile,
            "docker import",
        )?);
    }
    ensure!(
        failures.is_empty(),
        "{} of 4 hostile imports went wrong:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    daemon.restart()?;
    ensure!(
        daemon.image_table()? == before,
        "after a restart the list is unchanged"
    );
    Ok(())
}

#[test]
fn load_of_garbage_is_refused() -> Result<()> {
    let daemon = Daemon::start()?;
    import_busybox(&daemon, "bb:1")?;
    let before = daemon.image_table()?;
    let out = daemon
        .docker_stdin(&["load"], b"this is not a tar archive at all".repeat(40))?
        .failed()?;
    ensure!(!out.stderr.trim().is_empty(), "an error message: {out}");
    // A docker-archive whose manifest names a layer that is not there.
    let manifest =
        br#"[{"Config":"c.json","RepoTags":["ghost:1"],"Layers":["missing/layer.tar"]}]"#;
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    let tar = TarWriter::new()
        .file("manifest.json", manifest)
        .file("c.json", config)
        .finish();
    daemon.docker_stdin(&["load"], tar)?.failed()?;
    // A layer whose bytes do not match the config's diff ID.
    let layer = TarWriter::new().file("a", b"a").finish();
    let mut archive = docker_archive("liar:1", &[layer]);
    // Flip the content of file "a": the inner tar's first data block.
    let at = find_data_of(&archive, "layer.tar")
        .ok_or_else(|| anyhow::anyhow!("no layer.tar in the archive"))?;
    archive[at + 512] ^= 0xff;
    let out = daemon.docker_stdin(&["load"], archive)?.failed()?;
    ensure!(!out.stderr.trim().is_empty(), "an error message: {out}");
    ensure!(
        daemon.image_table()? == before,
        "nothing loaded: {:?}",
        daemon.image_table()?
    );
    Ok(())
}

/// Offset of the data of the first outer tar entry whose name ends with `suffix`.
fn find_data_of(tar: &[u8], suffix: &str) -> Option<usize> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let name = String::from_utf8_lossy(&header[..100])
            .trim_end_matches('\0')
            .to_string();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&header[124..135])
                .trim_end_matches('\0')
                .trim(),
            8,
        )
        .ok()?;
        if name.ends_with(suffix) {
            return Some(at + 512);
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    None
}

/// A small good image for the fake registry to corrupt, its content unique
/// to `case`: a daemon may keep blobs it verified during an earlier failed
/// pull, and reusing them would hide the next lie.
fn good_image(case: &str) -> OciImage {
    OciImage::new(&[TarWriter::new()
        .file(
            "hello.txt",
            format!("hello from the fake registry: {case}\n").as_bytes(),
        )
        .finish()])
}

/// Pulls `reference` from the fake registry, expecting a refusal that mentions
/// one of `words`, and the image list unchanged.
fn pull_refused(daemon: &Daemon, reference: &str, words: &[&str], case: &str) -> Result<()> {
    let before = daemon.image_table()?;
    let out = daemon.docker(&["pull", reference])?;
    ensure!(!out.success(), "{case}: pull succeeded: {out}");
    let text = out.stderr.to_lowercase();
    ensure!(
        words.is_empty() || words.iter().any(|w| text.contains(w)),
        "{case}: the error should mention one of {words:?}: {out}"
    );
    ensure!(
        !out.stderr.trim().is_empty(),
        "{case}: no error message: {out}"
    );
    let after = daemon.image_table()?;
    ensure!(
        after == before,
        "{case}: the image list changed:\nbefore {before:?}\nafter  {after:?}"
    );
    Ok(())
}

#[test]
fn pull_from_a_lying_registry_is_refused() -> Result<()> {
    let fake = FakeRegistry::start()?;
    let mut daemon = Daemon::start_with(&[&fake.host()])?;
    import_busybox(&daemon, "bb:1")?;
    let host = fake.host();
    // Every case runs; all that go wrong are reported together.
    let mut failures: Vec<String> = Vec::new();
    let mut note = |result: Result<()>| {
        if let Err(e) = result {
            failures.push(format!("{e:#}"));
        }
    };

    // 1. The manifest's digest lies: asked for by digest, served other bytes.
    let image = good_image("lie");
    let claimed = digest(b"some other manifest");
    fake.route(
        &format!("/v2/lie/manifests/{claimed}"),
        Response::ok(OCI_MANIFEST, image.manifest.clone())
            .header("Docker-Content-Digest", &claimed),
    );
    for (d, blob) in &image.blobs {
        fake.route(
            &format!("/v2/lie/blobs/{d}"),
            Response::ok("application/octet-stream", blob.clone()),
        );
    }
    note(pull_refused(
        &daemon,
        &format!("{host}/lie@{claimed}"),
        &["digest"],
        "manifest digest lies",
    ));

    // 2. A layer's bytes do not match its digest (same size, one byte flipped).
    let image = good_image("badblob");
    fake.serve_image("badblob", "1", &image);
    let layer = image.layers[0].clone();
    let mut wrong = image.blobs[&layer].clone();
    let middle = wrong.len() / 2;
    wrong[middle] ^= 0x55;
    fake.route(
        &format!("/v2/badblob/blobs/{layer}"),
        Response::ok("application/octet-stream", wrong),
    );
    note(pull_refused(
        &daemon,
        &format!("{host}/badblob:1"),
        &["digest", "checksum", "verif", "mismatch", "gzip", "corrupt"],
        "blob bytes lie",
    ));

    // 3. A truncated layer: Content-Length says all of it, half arrives.
    let image = good_image("short");
    fake.serve_image("short", "1", &image);
    let layer = image.layers[0].clone();
    let blob = image.blobs[&layer].clone();
    let half = blob.len() / 2;
    fake.route(
        &format!("/v2/short/blobs/{layer}"),
        Response::ok("application/octet-stream", blob).delivery(Delivery::CutAfter(half)),
    );
    note(pull_refused(
        &daemon,
        &format!("{host}/short:1"),
        &[],
        "truncated blob",
    ));
    ensure!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with(&format!("GET /v2/short/blobs/{layer}"))),
        "the truncated blob was asked for: {:?}",
        fake.requests()
    );

    // 4. The manifest declares an absurd layer size (4 EiB).
    let image = good_image("absurd");
    let absurd = OciImage {
        manifest: image.manifest_with_sizes(&[1 << 62]),
        ..image.clone()
    };
    fake.serve_image("absurd", "1", &absurd);
    note(pull_refused(
        &daemon,
        &format!("{host}/absurd:1"),
        &["size"],
        "absurd layer size",
    ));
    let du = run("du", &["-sb", &daemon.data_root().to_string_lossy()])?.ok()?;
    let used: u64 = du
        .stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    note(if used < 200 << 20 {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the absurd size made the store grow to {used} bytes"
        ))
    });

    // 5. The config blob lies about its content.
    let image = good_image("badconfig");
    fake.serve_image("badconfig", "1", &image);
    let config_digest = image.config_digest();
    let mut config = image.config.clone();
    let last = config.len() - 2;
    config[last] = b' ';
    fake.route(
        &format!("/v2/badconfig/blobs/{config_digest}"),
        Response::ok("application/octet-stream", config),
    );
    note(pull_refused(
        &daemon,
        &format!("{host}/badconfig:1"),
        &["digest", "checksum", "verif", "mismatch"],
        "config bytes lie",
    ));

    ensure!(
        failures.is_empty(),
        "{} lies were not refused as they should be:\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    // The honest image still pulls, so the refusals above were about the lies.
    let image = good_image("honest");
    fake.serve_image("honest", "1", &image);
    daemon.docker_ok(&["pull", &format!("{host}/honest:1")])?;
    ensure!(
        daemon.inspect(&format!("{host}/honest:1"))?["Id"] == image.config_digest().as_str(),
        "honest pull"
    );
    let before = daemon.image_table()?;
    daemon.restart()?;
    ensure!(
        daemon.image_table()? == before,
        "the store loads after the refusals"
    );
    Ok(())
}

#[test]
fn pull_retries_a_blob_cut_once() -> Result<()> {
    // Not hostile, just a flaky network: the first GET of the layer breaks
    // off halfway, a retry (from the start or with Range) gets it all. docker
    // retries (and resumes with Range); berth must finish the pull too.
    let fake = FakeRegistry::start()?;
    let daemon = Daemon::start_with(&[&fake.host()])?;
    let image = OciImage::new(&[TarWriter::new()
        .file(
            "noise.bin",
            &berth_image_tests::tarball::random_bytes(2 << 20, 7),
        )
        .finish()]);
    fake.serve_image("flaky", "1", &image);
    let layer = image.layers[0].clone();
    let path = format!("/v2/flaky/blobs/{layer}");
    let blob = image.blobs[&layer].clone();
    let half = blob.len() / 2;
    fake.route(
        &path,
        Response::ok("application/octet-stream", blob).delivery(Delivery::CutOnce(half)),
    );
    let name = format!("{}/flaky:1", fake.host());
    daemon.docker_ok(&["pull", &name])?;
    let gets = fake
        .requests()
        .iter()
        .filter(|r| **r == format!("GET {path}"))
        .count();
    ensure!(
        gets >= 2,
        "the layer was fetched {gets} times; the first was cut: {:?}",
        fake.requests()
    );
    let inspect = daemon.inspect(&name)?;
    ensure!(
        inspect["Id"] == image.config_digest().as_str(),
        "Id: {}",
        inspect["Id"]
    );
    ensure!(
        inspect["RootFS"]["Layers"] == serde_json::json!(image.diff_ids),
        "layers: {}",
        inspect["RootFS"]
    );
    Ok(())
}
