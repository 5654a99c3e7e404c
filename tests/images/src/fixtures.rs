//! Base images, built on this machine and never fetched from the internet.
//!
//! 1. A busybox rootfs from scripts/make-busybox-rootfs.sh, and a tarball of it
//!    (what `docker import` takes).
//! 2. One OCI layout built with umoci, cached in `<target>/berth-image-tests/`
//!    under a name that hashes the script and this file's recipe version:
//!    - `base`: the rootfs as one layer, `Cmd ["/bin/sh"]`;
//!    - `multi`: `base` plus `/data/one.txt`, `/data/two.txt`, then a
//!      whiteout of `/data/one.txt` (four layers);
//!    - `index`: an image index (written by hand) listing `base` for
//!      linux/amd64 and a copy whose config says linux/arm64.
//! 3. [`push`] copies a tag of the layout into a registry with skopeo, as OCI,
//!    as Docker schema2 (`--format v2s2`), with zstd layers, or with `--all`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::cmd::{self, cache_dir, digest, require_tool, run, run_with, Outcome};
use crate::registry::Registry;

/// Bump when a recipe below changes, so cached layouts are rebuilt.
const RECIPE_VERSION: &str = "fixtures-v1";

fn once(
    cell: &'static OnceLock<Result<PathBuf, String>>,
    build: fn() -> Result<PathBuf>,
) -> Result<PathBuf> {
    cell.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn script_hash() -> Result<String> {
    let script = cmd::workspace_dir().join("scripts/make-busybox-rootfs.sh");
    let text = fs::read(&script).with_context(|| format!("cannot read {}", script.display()))?;
    Ok(digest(&[text.as_slice(), RECIPE_VERSION.as_bytes()].concat())[7..23].to_string())
}

/// Builds into a staging directory beside `dest` and renames, so a concurrent
/// test process never sees half a fixture.
fn build_atomically(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dest.exists() {
        return Ok(());
    }
    let parent = dest.parent().expect("cache paths have a parent");
    fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)?;
    let inner = staging.path().join("x");
    fill(&inner)?;
    if fs::rename(&inner, dest).is_err() && !dest.exists() {
        bail!("cannot move a fixture into {}", dest.display());
    }
    Ok(())
}

/// The busybox root filesystem (a directory; do not modify).
pub fn busybox_rootfs() -> Result<PathBuf> {
    static CELL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    once(&CELL, || {
        let dest = cache_dir().join(format!("rootfs-{}", script_hash()?));
        build_atomically(&dest, |dir| {
            let script = cmd::workspace_dir().join("scripts/make-busybox-rootfs.sh");
            let mut sh = Command::new("sh");
            sh.arg(script).arg(dir);
            run_with(sh, None, Duration::from_secs(900))?.ok()?;
            Ok(())
        })?;
        Ok(dest)
    })
}

/// The busybox rootfs as an uncompressed tarball (for `docker import`).
pub fn busybox_tar() -> Result<PathBuf> {
    static CELL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    once(&CELL, || {
        let rootfs = busybox_rootfs()?;
        let dest = cache_dir().join(format!("busybox-{}.tar", script_hash()?));
        if !dest.exists() {
            let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
            let rootfs_arg = rootfs.to_string_lossy().into_owned();
            let tmp_arg = tmp.to_string_lossy().into_owned();
            run(
                "tar",
                &["--numeric-owner", "-C", &rootfs_arg, "-cf", &tmp_arg, "."],
            )?
            .ok()?;
            fs::rename(&tmp, &dest)?;
        }
        Ok(dest)
    })
}

/// The OCI layout with the `base`, `multi` and `index` tags.
pub fn layout() -> Result<PathBuf> {
    static CELL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    once(&CELL, || {
        require_tool("umoci", "umoci")?;
        let rootfs = busybox_rootfs()?;
        let dest = cache_dir().join(format!("layout-{}", script_hash()?));
        build_atomically(&dest, |dir| build_layout(dir, &rootfs))?;
        Ok(dest)
    })
}

fn umoci(args: &[&str]) -> Result<Outcome> {
    run("umoci", args)?.ok()
}

fn build_layout(dir: &Path, rootfs: &Path) -> Result<()> {
    let layout = dir.to_string_lossy().into_owned();
    let at = |tag: &str| format!("{layout}:{tag}");
    umoci(&["init", "--layout", &layout])?;
    umoci(&["new", "--image", &at("base")])?;
    umoci(&[
        "insert",
        "--image",
        &at("base"),
        &rootfs.to_string_lossy(),
        "/",
    ])?;
    umoci(&["config", "--image", &at("base"), "--config.cmd", "/bin/sh"])?;

    umoci(&["tag", "--image", &at("base"), "multi"])?;
    let files = tempfile::Builder::new()
        .prefix("berth-it-files-")
        .tempdir_in("/tmp")?;
    let one = files.path().join("one.txt");
    let two = files.path().join("two.txt");
    fs::write(&one, "one\n")?;
    fs::write(&two, "two\n")?;
    umoci(&[
        "insert",
        "--image",
        &at("multi"),
        &one.to_string_lossy(),
        "/data/one.txt",
    ])?;
    umoci(&[
        "insert",
        "--image",
        &at("multi"),
        &two.to_string_lossy(),
        "/data/two.txt",
    ])?;
    umoci(&[
        "insert",
        "--image",
        &at("multi"),
        "--whiteout",
        "/data/one.txt",
    ])?;
    umoci(&["config", "--image", &at("multi"), "--config.cmd", "/bin/sh"])?;

    // The index: base for amd64, and a copy whose config says arm64.
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json"))?)?;
    let base = index["manifests"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "base")
        })
        .cloned()
        .ok_or_else(|| anyhow!("umoci wrote no `base` tag"))?;
    let manifest: Value =
        serde_json::from_slice(&read_blob(dir, base["digest"].as_str().unwrap_or(""))?)?;
    let mut config: Value = serde_json::from_slice(&read_blob(
        dir,
        manifest["config"]["digest"].as_str().unwrap_or(""),
    )?)?;
    config["architecture"] = json!("arm64");
    let config_bytes = serde_json::to_vec(&config)?;
    let mut arm = manifest.clone();
    arm["config"]["digest"] = json!(write_blob(dir, &config_bytes)?);
    arm["config"]["size"] = json!(config_bytes.len());
    let arm_bytes = serde_json::to_vec(&arm)?;
    let arm_digest = write_blob(dir, &arm_bytes)?;
    let descriptor = |digest: &Value, size: &Value, arch: &str| {
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            descriptor(&base["digest"], &base["size"], "amd64"),
            descriptor(&json!(arm_digest), &json!(arm_bytes.len()), "arm64"),
        ],
    }))?;
    let nested_digest = write_blob(dir, &nested)?;
    let mut index = index;
    index["manifests"]
        .as_array_mut()
        .expect("checked above")
        .push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested_digest, "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "index"},
        }));
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(())
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// A blob of an OCI layout by digest.
pub fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    fs::read(blob_path(layout, digest))
        .with_context(|| format!("no blob {digest} in {}", layout.display()))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String> {
    let d = digest(bytes);
    fs::write(blob_path(layout, &d), bytes)?;
    Ok(d)
}

/// The config digest (the image ID docker reports) of a tag in the layout,
/// for a plain manifest tag (`base`, `multi`).
pub fn layout_config_digest(tag: &str) -> Result<String> {
    let dir = layout()?;
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json"))?)?;
    let desc = index["manifests"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        })
        .ok_or_else(|| anyhow!("no tag {tag} in the layout"))?;
    let manifest: Value =
        serde_json::from_slice(&read_blob(&dir, desc["digest"].as_str().unwrap_or(""))?)?;
    manifest["config"]["digest"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("manifest of {tag} has no config"))
}

/// How [`push`] writes an image into a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// As the layout holds it (OCI manifest, gzip layers).
    Oci,
    /// Docker schema2 (`--format v2s2`).
    V2s2,
    /// OCI with zstd layers (`--dest-compress-format zstd`). skopeo 1.9 reuses
    /// a gzip blob the registry already holds instead of recompressing it: push
    /// zstd only into a registry that has never seen the layers.
    Zstd,
    /// An index with all its manifests (`--all`).
    All,
}

/// `skopeo copy oci:<layout>:<tag> docker://<registry>/<repo_tag>`; returns the
/// pushed manifest's digest (of the raw bytes the registry serves).
pub fn push(
    registry: &Registry,
    tag: &str,
    repo_tag: &str,
    format: Format,
    creds: Option<&str>,
) -> Result<String> {
    require_tool("skopeo", "skopeo")?;
    let layout = layout()?;
    let dest = format!("docker://{}", registry.image(repo_tag));
    let mut args: Vec<String> = vec![
        "copy".into(),
        "--quiet".into(),
        "--dest-tls-verify=false".into(),
    ];
    match format {
        Format::Oci => {}
        Format::V2s2 => args.extend(["--format".into(), "v2s2".into()]),
        Format::Zstd => args.extend(["--dest-compress-format".into(), "zstd".into()]),
        Format::All => args.push("--all".into()),
    }
    if let Some(creds) = creds {
        args.extend(["--dest-creds".into(), creds.into()]);
    }
    args.push(format!("oci:{}:{tag}", layout.display()));
    args.push(dest);
    run("skopeo", &args)?.ok()?;
    registry_digest(registry, repo_tag, creds)
}

/// The digest of the manifest the registry serves for `repo_tag`, computed
/// from `skopeo inspect --raw` bytes.
pub fn registry_digest(registry: &Registry, repo_tag: &str, creds: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        cmd.args(["--creds", creds]);
    }
    cmd.arg(format!("docker://{}", registry.image(repo_tag)));
    cmd.stdout(std::process::Stdio::piped());
    let out = cmd.output().context("cannot run skopeo inspect --raw")?;
    if !out.status.success() {
        bail!(
            "skopeo inspect --raw {repo_tag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(digest(&out.stdout))
}

/// The raw manifest the registry serves for `repo_tag`, parsed.
pub fn registry_manifest(registry: &Registry, repo_tag: &str) -> Result<Value> {
    let out = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}", registry.image(repo_tag)),
        ],
    )?
    .ok()?;
    Ok(serde_json::from_str(&out.stdout)?)
}

/// `skopeo copy oci:<layout>:<tag> <transport>:<path>:<name>` into a file, for
/// `docker load` (`docker-archive` or `oci-archive`).
pub fn archive(tag: &str, transport: &str, path: &Path, name: &str) -> Result<()> {
    require_tool("skopeo", "skopeo")?;
    let layout = layout()?;
    run(
        "skopeo",
        &[
            "copy".to_string(),
            "--quiet".to_string(),
            format!("oci:{}:{tag}", layout.display()),
            format!("{transport}:{}:{name}", path.display()),
        ],
    )?
    .ok()?;
    Ok(())
}
