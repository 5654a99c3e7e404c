//! The real docker CLI (28) against `berth daemon`: every image command a
//! user types, checked against what skopeo and the registry say.

use anyhow::{ensure, Context, Result};
use berth_image_tests::fixtures::{
    self, layout_config_digest, registry_digest, registry_manifest, Format,
};
use berth_image_tests::{
    assert_mentions, digest, field, import_busybox, import_tiny, Daemon, Registry, RegistryConfig,
};
use serde_json::Value;

/// The digest in `RepoDigests` for `repo` (`repo@sha256:...`).
fn repo_digest(image: &Value, repo: &str) -> Result<String> {
    image["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string))
        .with_context(|| {
            format!(
                "no RepoDigests entry for {repo} in {}",
                image["RepoDigests"]
            )
        })
}

#[test]
fn version_and_info() -> Result<()> {
    let daemon = Daemon::start()?;
    let out = daemon.docker_ok(&["version"])?;
    assert_mentions(&out.stdout, "Server:", "docker version")?;
    let server = daemon.docker_ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}",
    ])?;
    let words: Vec<&str> = server.stdout.split_whitespace().collect();
    ensure!(
        words.len() == 3 && words[2] == "linux",
        "version fields: {server}"
    );
    ensure!(
        words[1].starts_with("1."),
        "API version looks wrong: {server}"
    );

    let info = daemon.docker_ok(&["info", "--format", "{{.Images}}"])?;
    ensure!(
        info.stdout.trim() == "0",
        "a fresh daemon has no images: {info}"
    );
    import_busybox(&daemon, "bb:1")?;
    let info = daemon.docker_ok(&["info", "--format", "{{.Images}} {{.OSType}}"])?;
    ensure!(
        info.stdout.trim() == "1 linux",
        "info after one import: {info}"
    );
    daemon.docker_ok(&["info"])?;
    Ok(())
}

#[test]
fn import_from_stdin_with_cmd() -> Result<()> {
    let daemon = Daemon::start()?;
    let id = import_busybox(&daemon, "bb:1")?;
    let image = daemon.inspect("bb:1")?;
    ensure!(
        image["Id"] == id.as_str(),
        "inspect Id {} != import's {id}",
        image["Id"]
    );
    ensure!(
        field(&image, &["Config", "Cmd"]) == r#"["/bin/sh"]"#,
        "Cmd: {}",
        image["Config"]
    );
    ensure!(
        field(&image, &["RepoTags"]) == r#"["bb:1"]"#,
        "RepoTags: {}",
        image["RepoTags"]
    );
    ensure!(
        image["RootFS"]["Layers"].as_array().map(Vec::len) == Some(1),
        "one layer: {}",
        image["RootFS"]
    );
    let size = image["Size"].as_u64().unwrap_or(0);
    ensure!(size > 500_000, "busybox is bigger than {size} bytes");

    // Without -c, no Cmd.
    import_tiny(&daemon, "tiny:1", "hi")?;
    let tiny = daemon.inspect("tiny:1")?;
    ensure!(
        tiny["Config"]["Cmd"].is_null() || tiny["Config"]["Cmd"] == serde_json::json!([]),
        "tiny Cmd: {}",
        tiny["Config"]
    );
    Ok(())
}

#[test]
fn images_listing_filters_and_format() -> Result<()> {
    let daemon = Daemon::start()?;
    let bb = import_busybox(&daemon, "bb:1")?;
    let old = import_tiny(&daemon, "tiny:1", "first")?;
    let new = import_tiny(&daemon, "tiny:1", "second")?;
    ensure!(old != new, "different contents, different IDs");

    let quiet = daemon.docker_ok(&["images", "-q", "--no-trunc"])?.lines();
    ensure!(
        quiet.contains(&bb) && quiet.contains(&new),
        "images -q: {quiet:?}"
    );
    let short = daemon.docker_ok(&["images", "-q"])?.lines();
    ensure!(
        short.iter().all(|id| id.len() == 12),
        "short IDs: {short:?}"
    );
    ensure!(
        short.contains(&bb[7..19].to_string()),
        "images -q lists bb: {short:?}"
    );

    let dangling = daemon
        .docker_ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"])?
        .lines();
    ensure!(
        dangling == vec![old.clone()],
        "the replaced tiny:1 is the only dangling image: {dangling:?}"
    );

    let refs = daemon
        .docker_ok(&[
            "images",
            "--filter",
            "reference=bb",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])?
        .lines();
    ensure!(refs == vec!["bb:1".to_string()], "reference=bb: {refs:?}");
    let refs = daemon
        .docker_ok(&[
            "images",
            "--filter",
            "reference=ti*:1",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])?
        .lines();
    ensure!(
        refs == vec!["tiny:1".to_string()],
        "reference=ti*:1: {refs:?}"
    );

    let mut all = daemon
        .docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?
        .lines();
    all.sort();
    ensure!(
        all == vec!["<none>:<none>", "bb:1", "tiny:1"],
        "images --format: {all:?}"
    );

    let table = daemon.docker_ok(&["images", "--digests"])?;
    assert_mentions(
        table.lines().first().map(String::as_str).unwrap_or(""),
        "DIGEST",
        "images --digests header",
    )?;
    Ok(())
}

#[test]
fn tag_and_rmi() -> Result<()> {
    let daemon = Daemon::start()?;
    let id = import_busybox(&daemon, "bb:1")?;
    daemon.docker_ok(&["tag", "bb:1", "other/repo:2"])?;
    ensure!(
        daemon.inspect("other/repo:2")?["Id"] == id.as_str(),
        "tag points at the same image"
    );

    // Two repositories: deleting by ID is a conflict.
    let (code, body) = daemon.request("DELETE", &format!("/images/{}", &id[7..19]))?;
    ensure!(
        code == 409,
        "DELETE /images/<id> with two repos answers 409, got {code}: {body}"
    );
    let refused = daemon.docker(&["rmi", &id[7..19]])?.failed()?;
    assert_mentions(&refused.stderr, "conflict", "rmi <id>")?;
    ensure!(refused.code == Some(1), "rmi conflict exits 1: {refused}");

    // Untag one name: the image stays.
    let untag = daemon.docker_ok(&["rmi", "other/repo:2"])?;
    assert_mentions(&untag.stdout, "Untagged: other/repo:2", "rmi of one tag")?;
    ensure!(
        !untag.stdout.contains("Deleted"),
        "untagging deletes nothing: {untag}"
    );
    ensure!(
        daemon.inspect("bb:1")?["Id"] == id.as_str(),
        "bb:1 still there"
    );

    daemon.docker_ok(&["tag", "bb:1", "other/repo:2"])?;
    let forced = daemon.docker_ok(&["rmi", "-f", &id[7..19]])?;
    assert_mentions(&forced.stdout, "Untagged: bb:1", "rmi -f")?;
    assert_mentions(&forced.stdout, "Untagged: other/repo:2", "rmi -f")?;
    assert_mentions(&forced.stdout, &format!("Deleted: {id}"), "rmi -f")?;
    ensure!(
        daemon.docker_ok(&["images", "-q"])?.lines().is_empty(),
        "nothing left"
    );

    let missing = daemon.docker(&["rmi", "nope:1"])?.failed()?;
    ensure!(
        missing.code == Some(1),
        "rmi of an unknown image exits 1: {missing}"
    );
    assert_mentions(&missing.stderr, "No such image", "rmi nope:1")?;
    Ok(())
}

#[test]
fn inspect_and_history() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(&registry, "multi", "multi:1", Format::Oci, None)?;
    let name = registry.image("multi:1");
    daemon.docker_ok(&["pull", &name])?;
    let image = daemon.inspect(&name)?;
    ensure!(
        image["Id"] == layout_config_digest("multi")?.as_str(),
        "Id is the config digest: {}",
        image["Id"]
    );
    ensure!(
        image["RepoTags"] == serde_json::json!([name]),
        "RepoTags: {}",
        image["RepoTags"]
    );
    ensure!(
        field(&image, &["Config", "Cmd"]) == r#"["/bin/sh"]"#,
        "Cmd: {}",
        image["Config"]
    );
    ensure!(
        image["Architecture"] == "amd64" && image["Os"] == "linux",
        "platform: {} {}",
        image["Architecture"],
        image["Os"]
    );
    ensure!(
        image["RootFS"]["Layers"].as_array().map(Vec::len) == Some(4),
        "four layers: {}",
        image["RootFS"]
    );

    // history has one row per config history entry, newest first.
    let config: Value = serde_json::from_slice(&fixtures::read_blob(
        &fixtures::layout()?,
        image["Id"].as_str().unwrap_or(""),
    )?)?;
    let entries = config["history"].as_array().map(Vec::len).unwrap_or(0);
    let rows = daemon
        .docker_ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
            &name,
        ])?
        .lines();
    ensure!(
        rows.len() == entries && entries > 0,
        "history rows {rows:?} for {entries} config entries"
    );
    ensure!(
        rows[0].starts_with(image["Id"].as_str().unwrap_or("-")),
        "newest row carries the image ID: {rows:?}"
    );

    let missing = daemon.docker(&["image", "inspect", "nope:1"])?.failed()?;
    assert_mentions(&missing.stderr, "No such image", "inspect nope:1")?;
    Ok(())
}

#[test]
fn save_rmi_load_round_trip() -> Result<()> {
    let daemon = Daemon::start()?;
    let id = import_busybox(&daemon, "bb:1")?;
    let dir = daemon.scratch("save")?;
    let file = dir.join("bb.tar");
    daemon.docker_ok(&["save", "-o", &file.to_string_lossy(), "bb:1"])?;

    // The archive's config is the image: its digest is the ID.
    let listing = berth_image_tests::cmd::run("tar", &["-tf", &file.to_string_lossy()])?.ok()?;
    let names = listing.lines();
    ensure!(
        names.iter().any(|n| n == "manifest.json"),
        "docker save writes manifest.json: {names:?}"
    );
    let manifest =
        berth_image_tests::cmd::run("tar", &["-xOf", &file.to_string_lossy(), "manifest.json"])?
            .ok()?;
    let manifest: Value = serde_json::from_str(&manifest.stdout)?;
    let config_name = manifest[0]["Config"]
        .as_str()
        .context("manifest.json has Config")?;
    let mut extract = std::process::Command::new("tar");
    extract.args(["-xOf", &file.to_string_lossy(), config_name]);
    let config = extract.output()?.stdout;
    ensure!(
        digest(&config) == id,
        "saved config digest {} != image ID {id}",
        digest(&config)
    );
    ensure!(
        manifest[0]["RepoTags"] == serde_json::json!(["bb:1"]),
        "RepoTags in manifest.json: {}",
        manifest[0]
    );
    saved_layers_are_plain(&daemon, "bb:1", &file)?;

    daemon.docker_ok(&["rmi", "bb:1"])?;
    ensure!(
        daemon.docker_ok(&["images", "-q"])?.lines().is_empty(),
        "rmi removed it"
    );
    let loaded = daemon.docker_ok(&["load", "-i", &file.to_string_lossy()])?;
    assert_mentions(&loaded.stdout, "Loaded image: bb:1", "docker load")?;
    ensure!(
        daemon.inspect("bb:1")?["Id"] == id.as_str(),
        "same Id back after load"
    );

    // Load from stdin too (the image exists: load is idempotent).
    let bytes = std::fs::read(&file)?;
    let again = daemon.docker_stdin(&["load"], bytes)?.ok()?;
    assert_mentions(
        &again.stdout,
        "Loaded image: bb:1",
        "docker load from stdin",
    )?;
    ensure!(
        daemon.image_table()?.len() == 1,
        "still one image: {:?}",
        daemon.image_table()?
    );
    Ok(())
}

/// `docker save` writes each layer as a plain tar whose sha256 is its diff ID.
fn saved_layers_are_plain(daemon: &Daemon, name: &str, file: &std::path::Path) -> Result<()> {
    let file = file.to_string_lossy().into_owned();
    let manifest = berth_image_tests::cmd::run("tar", &["-xOf", &file, "manifest.json"])?.ok()?;
    let manifest: Value = serde_json::from_str(&manifest.stdout)?;
    let diff_ids = daemon.inspect(name)?["RootFS"]["Layers"].clone();
    let layers = manifest[0]["Layers"]
        .as_array()
        .context("manifest.json has Layers")?;
    ensure!(
        layers.len() == diff_ids.as_array().map(Vec::len).unwrap_or(0),
        "{} layers saved for {diff_ids}",
        layers.len()
    );
    for (path, diff_id) in layers.iter().zip(diff_ids.as_array().into_iter().flatten()) {
        let path = path.as_str().context("layer path")?;
        let bytes = std::process::Command::new("tar")
            .args(["-xOf", &file, path])
            .output()?
            .stdout;
        let kind = if bytes.starts_with(&[0x1f, 0x8b]) {
            "gzip data"
        } else {
            "a plain tar"
        };
        ensure!(
            digest(&bytes).as_str() == diff_id.as_str().unwrap_or(""),
            "saved layer {path} of {name} is {kind} hashing to {}, not the diff ID {diff_id}: docker save writes uncompressed layers",
            digest(&bytes)
        );
    }
    Ok(())
}

#[test]
fn save_of_a_pulled_image_writes_plain_layers() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(&registry, "multi", "multi:1", Format::Oci, None)?;
    let name = registry.image("multi:1");
    daemon.docker_ok(&["pull", &name])?;
    let file = daemon.scratch("save")?.join("multi.tar");
    daemon.docker_ok(&["save", "-o", &file.to_string_lossy(), &name])?;
    saved_layers_are_plain(&daemon, &name, &file)?;
    // And the archive loads back into a fresh daemon as the same image (the
    // first one keeps the archive in its directory, so it stays up).
    let fresh = Daemon::start()?;
    fresh.docker_ok(&["load", "-i", &file.to_string_lossy()])?;
    ensure!(
        fresh.inspect(&name)?["Id"] == layout_config_digest("multi")?.as_str(),
        "loaded back"
    );
    Ok(())
}

#[test]
fn load_archives_written_by_skopeo() -> Result<()> {
    let daemon = Daemon::start()?;
    let dir = daemon.scratch("skopeo")?;
    let base = layout_config_digest("base")?;

    let docker_archive = dir.join("docker-archive.tar");
    fixtures::archive("base", "docker-archive", &docker_archive, "bb:arch")?;
    let out = daemon.docker_ok(&["load", "-i", &docker_archive.to_string_lossy()])?;
    assert_mentions(
        &out.stdout,
        "Loaded image: bb:arch",
        "load of skopeo's docker-archive",
    )?;
    ensure!(
        daemon.inspect("bb:arch")?["Id"] == base.as_str(),
        "docker-archive Id is the config digest"
    );

    daemon.docker_ok(&["rmi", "bb:arch"])?;
    let oci_archive = dir.join("oci-archive.tar");
    fixtures::archive("base", "oci-archive", &oci_archive, "bb-oci")?;
    let out = daemon.docker_ok(&["load", "-i", &oci_archive.to_string_lossy()])?;
    assert_mentions(&out.stdout, "Loaded image", "load of skopeo's oci-archive")?;
    let image = daemon.inspect(&base)?;
    ensure!(
        image["Id"] == base.as_str(),
        "oci-archive Id is the config digest: {}",
        image["Id"]
    );
    ensure!(
        field(&image, &["Config", "Cmd"]) == r#"["/bin/sh"]"#,
        "Cmd survives: {}",
        image["Config"]
    );
    Ok(())
}

/// Pushes `tag` of the layout in `format`, pulls it with docker, and checks
/// the ID, the platform and that RepoDigests carries the registry's digest.
fn pull_and_verify(
    tag: &str,
    format: Format,
    expect_config_of: &str,
    check_registry: fn(&Registry, &str) -> Result<()>,
) -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    let repo_tag = format!("pulled-{}:1", tag);
    let pushed = fixtures::push(&registry, tag, &repo_tag, format, None)?;
    check_registry(&registry, &repo_tag)?;
    let name = registry.image(&repo_tag);
    let out = daemon.docker_ok(&["pull", &name])?;
    assert_mentions(
        &out.stdout,
        &format!("Digest: {pushed}"),
        "docker pull output",
    )?;
    let image = daemon.inspect(&name)?;
    let raw = registry_digest(&registry, &repo_tag, None)?;
    ensure!(raw == pushed, "the registry's digest is stable");
    let repo = name.rsplit_once(':').map(|(r, _)| r).unwrap_or(&name);
    let berth = repo_digest(&image, repo)?;
    ensure!(
        berth == raw,
        "RepoDigests {berth} != skopeo inspect --raw digest {raw}"
    );
    let config = layout_config_digest(expect_config_of)?;
    ensure!(
        image["Id"] == config.as_str(),
        "Id {} != config digest {config}",
        image["Id"]
    );
    ensure!(
        image["Architecture"] == "amd64",
        "platform: {}",
        image["Architecture"]
    );
    let listed = daemon
        .docker_ok(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Digest}}",
        ])?
        .lines();
    ensure!(
        listed == vec![format!("{repo} {raw}")],
        "images --digests: {listed:?}"
    );
    // A second pull finds everything present.
    let again = daemon.docker_ok(&["pull", &name])?;
    assert_mentions(&again.stdout, "Image is up to date", "second pull")?;
    // By digest too.
    daemon.docker_ok(&["pull", &format!("{repo}@{raw}")])?;
    Ok(())
}

#[test]
fn pull_multi_layer_with_whiteout() -> Result<()> {
    pull_and_verify("multi", Format::Oci, "multi", |registry, repo_tag| {
        let manifest = registry_manifest(registry, repo_tag)?;
        ensure!(
            manifest["layers"].as_array().map(Vec::len) == Some(4),
            "four layers pushed: {manifest}"
        );
        Ok(())
    })
}

#[test]
fn pull_index_picks_linux_amd64() -> Result<()> {
    pull_and_verify("index", Format::All, "base", |registry, repo_tag| {
        let index = registry_manifest(registry, repo_tag)?;
        ensure!(
            index["manifests"].as_array().map(Vec::len) == Some(2),
            "the registry holds an index: {index}"
        );
        Ok(())
    })
}

#[test]
fn pull_zstd_layers() -> Result<()> {
    pull_and_verify("base", Format::Zstd, "base", |registry, repo_tag| {
        let manifest = registry_manifest(registry, repo_tag)?;
        ensure!(
            manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd",
            "skopeo wrote zstd layers: {manifest}"
        );
        Ok(())
    })
}

#[test]
fn pull_docker_schema2() -> Result<()> {
    pull_and_verify("multi", Format::V2s2, "multi", |registry, repo_tag| {
        let manifest = registry_manifest(registry, repo_tag)?;
        ensure!(
            manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json",
            "skopeo wrote schema2: {manifest}"
        );
        Ok(())
    })
}

#[test]
fn push_then_push_again_then_mount() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    let id = import_busybox(&daemon, "bb:1")?;
    let first = registry.image("pushed:1");
    daemon.docker_ok(&["tag", "bb:1", &first])?;
    let out = daemon.docker_ok(&["push", &first])?;
    let printed = out
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .map(str::to_string)
        .with_context(|| format!("push prints `digest: sha256:...`: {out}"))?;
    let inspect = berth_image_tests::cmd::run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{first}"),
        ],
    )?
    .ok()?;
    let remote: Value = serde_json::from_str(&inspect.stdout)?;
    ensure!(
        remote["Digest"] == printed.as_str(),
        "skopeo sees {} but push printed {printed}",
        remote["Digest"]
    );
    ensure!(
        registry_digest(&registry, "pushed:1", None)? == printed,
        "raw manifest digest matches"
    );
    let image = daemon.inspect(&first)?;
    ensure!(
        repo_digest(&image, &registry.image("pushed"))? == printed,
        "RepoDigests after push: {}",
        image["RepoDigests"]
    );
    // The registry's config blob is the image.
    let manifest = registry_manifest(&registry, "pushed:1")?;
    ensure!(
        manifest["config"]["digest"] == id.as_str(),
        "pushed config {} != image ID {id}",
        manifest["config"]["digest"]
    );

    let again = daemon.docker_ok(&["push", &first])?;
    assert_mentions(&again.stdout, "Layer already exists", "second push")?;

    let second = registry.image("elsewhere/copy:1");
    daemon.docker_ok(&["tag", "bb:1", &second])?;
    let mounted = daemon.docker_ok(&["push", &second])?;
    assert_mentions(
        &mounted.stdout,
        "Mounted from pushed",
        "push to a second repository",
    )?;
    ensure!(
        registry_digest(&registry, "elsewhere/copy:1", None)? == printed,
        "same manifest in both repositories"
    );

    // What was pushed pulls back whole into a fresh daemon.
    drop(daemon);
    let fresh = Daemon::start_with(&[&registry.host()])?;
    fresh.docker_ok(&["pull", &second])?;
    ensure!(
        fresh.inspect(&second)?["Id"] == id.as_str(),
        "pulled back the same image"
    );
    Ok(())
}

#[test]
fn login_to_htpasswd_registry() -> Result<()> {
    let registry = Registry::start(RegistryConfig {
        auth: Some(("berth".into(), "s3cret-pass".into())),
    })?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(
        &registry,
        "base",
        "private:1",
        Format::Oci,
        Some("berth:s3cret-pass"),
    )?;
    let name = registry.image("private:1");

    let anonymous = daemon.docker(&["pull", &name])?.failed()?;
    ensure!(
        !anonymous.stderr.is_empty(),
        "an anonymous pull explains itself: {anonymous}"
    );

    let wrong = daemon.docker_stdin(
        &["login", "-u", "berth", "--password-stdin", &registry.host()],
        b"wrong\n".to_vec(),
    )?;
    let wrong = wrong.failed()?;
    ensure!(
        !wrong.output().contains("Login Succeeded"),
        "wrong password: {wrong}"
    );
    assert_mentions(&wrong.stderr, "unauthorized", "login with a wrong password")?;

    let right = daemon.docker_stdin(
        &["login", "-u", "berth", "--password-stdin", &registry.host()],
        b"s3cret-pass\n".to_vec(),
    )?;
    let right = right.ok()?;
    assert_mentions(&right.stdout, "Login Succeeded", "login")?;

    daemon.docker_ok(&["pull", &name])?;
    ensure!(
        daemon.inspect(&name)?["Id"] == layout_config_digest("base")?.as_str(),
        "pulled with auth"
    );
    let pushed = registry.image("private-copy:1");
    daemon.docker_ok(&["tag", &name, &pushed])?;
    daemon.docker_ok(&["push", &pushed])?;
    let landed = registry_digest(&registry, "private-copy:1", Some("berth:s3cret-pass"))?;
    let image = daemon.inspect(&pushed)?;
    ensure!(
        repo_digest(&image, &registry.image("private-copy"))? == landed,
        "the authenticated push landed as {landed}: {}",
        image["RepoDigests"]
    );
    daemon.docker_ok(&["logout", &registry.host()])?;
    Ok(())
}

#[test]
fn image_prune_dangling_then_all() -> Result<()> {
    let daemon = Daemon::start()?;
    let bb = import_busybox(&daemon, "bb:1")?;
    let old = import_tiny(&daemon, "tiny:1", "first")?;
    let new = import_tiny(&daemon, "tiny:1", "second")?;

    let pruned = daemon.docker_ok(&["image", "prune", "-f"])?;
    assert_mentions(
        &pruned.stdout,
        &old,
        "image prune deletes the dangling image",
    )?;
    assert_mentions(&pruned.stdout, "Total reclaimed space", "image prune")?;
    let left = daemon.docker_ok(&["images", "-q", "--no-trunc"])?.lines();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    let mut want = vec![bb.clone(), new.clone()];
    want.sort();
    ensure!(left_sorted == want, "prune keeps tagged images: {left:?}");

    let all = daemon.docker_ok(&["image", "prune", "-a", "-f"])?;
    assert_mentions(&all.stdout, &bb, "image prune -a")?;
    assert_mentions(&all.stdout, "untagged: bb:1", "image prune -a")?;
    ensure!(
        daemon.docker_ok(&["images", "-q"])?.lines().is_empty(),
        "prune -a leaves nothing"
    );
    Ok(())
}

#[test]
fn system_df_counts_images() -> Result<()> {
    let daemon = Daemon::start()?;
    import_busybox(&daemon, "bb:1")?;
    import_tiny(&daemon, "tiny:1", "x")?;
    let table = daemon.docker_ok(&["system", "df"])?;
    assert_mentions(&table.stdout, "Images", "system df")?;
    let rows = daemon
        .docker_ok(&[
            "system",
            "df",
            "--format",
            "{{.Type}}={{.TotalCount}}/{{.Active}}",
        ])?
        .lines();
    ensure!(
        rows.iter().any(|r| r == "Images=2/0"),
        "system df rows: {rows:?}"
    );
    let verbose = daemon.docker_ok(&["system", "df", "-v"])?;
    assert_mentions(&verbose.stdout, "bb", "system df -v lists images")?;
    Ok(())
}
