//! The busybox image every caller runs, made here: there is no registry.
//!
//! scripts/make-busybox-rootfs.sh builds the root filesystem; its tar is the
//! image's one layer. podman imports that tar as is (`podman import`);
//! containerd gets an OCI image layout tarball written by hand around it
//! (`ctr images import`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::command::run_ok;
use crate::runtimes::workspace_dir;

/// The name containerd gives the image (`io.containerd.image.name`).
pub const CONTAINERD_REF: &str = "localhost/berth-callers/busybox:latest";

/// Builds the busybox rootfs in `dir/rootfs` and returns its tar,
/// `dir/rootfs.tar` (entries `./bin/...`, numeric owners).
pub fn busybox_layer(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    let script = workspace_dir().join("scripts/make-busybox-rootfs.sh");
    run_ok("sh", &[path_str(&script)?, path_str(&rootfs)?])
        .context("cannot build the busybox rootfs")?;
    let layer = dir.join("rootfs.tar");
    run_ok(
        "tar",
        &[
            "--numeric-owner",
            "-C",
            path_str(&rootfs)?,
            "-cf",
            path_str(&layer)?,
            ".",
        ],
    )?;
    fs::remove_dir_all(&rootfs)?;
    Ok(layer)
}

/// Writes an OCI image layout around `layer` (uncompressed) and tars it into
/// `dir/oci-image.tar`, named [`CONTAINERD_REF`], for this host's platform.
pub fn oci_archive(layer: &Path, dir: &Path) -> Result<PathBuf> {
    let layout = dir.join("oci-layout-dir");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;

    let (layer_digest, layer_size) = add_blob_file(&blobs, layer)?;
    let config = json!({
        "architecture": oci_arch()?,
        "os": "linux",
        "config": { "Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    let (config_digest, config_size) = add_blob(&blobs, &config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = add_blob(&blobs, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {
                "io.containerd.image.name": CONTAINERD_REF,
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let archive = dir.join("oci-image.tar");
    run_ok(
        "tar",
        &[
            "-C",
            path_str(&layout)?,
            "-cf",
            path_str(&archive)?,
            "oci-layout",
            "index.json",
            "blobs",
        ],
    )?;
    fs::remove_dir_all(&layout)?;
    Ok(archive)
}

/// Serializes `value` into the blob store; returns its digest and size.
fn add_blob(blobs: &Path, value: &serde_json::Value) -> Result<(String, u64)> {
    let staging = blobs.join("staging.json");
    fs::write(&staging, serde_json::to_vec(value)?)?;
    let added = add_blob_file(blobs, &staging)?;
    fs::remove_file(&staging)?;
    Ok(added)
}

/// Copies `file` into the blob store under its sha256 (`sha256sum`, from
/// coreutils); returns `sha256:<hex>` and its size.
fn add_blob_file(blobs: &Path, file: &Path) -> Result<(String, u64)> {
    let hex = run_ok("sha256sum", &[path_str(file)?])?
        .stdout
        .split_whitespace()
        .next()
        .map(str::to_string)
        .with_context(|| format!("sha256sum printed nothing for {}", file.display()))?;
    fs::copy(file, blobs.join(&hex))?;
    Ok((format!("sha256:{hex}"), fs::metadata(file)?.len()))
}

/// The OCI name of this host's architecture.
fn oci_arch() -> Result<&'static str> {
    Ok(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => bail!("no OCI architecture name for {other}"),
    })
}

pub fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
