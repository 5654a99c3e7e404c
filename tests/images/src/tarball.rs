//! Hand-made archives: a raw tar writer that writes exactly the entries a test
//! asks for (including the hostile ones `tar` crates refuse to write), a
//! `docker save`-style archive builder, and OCI images as registry blobs.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

use crate::cmd::digest;

/// A ustar stream written entry by entry, names taken verbatim.
#[derive(Default)]
pub struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    pub fn new() -> TarWriter {
        TarWriter::default()
    }

    fn header(&mut self, name: &str, mode: u32, size: u64, kind: u8, link: &str) {
        assert!(
            name.len() < 100 && link.len() < 100,
            "names must fit a plain ustar header"
        );
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |field: &mut [u8], value: u64| {
            let text = format!("{:0width$o}\0", value, width = field.len() - 1);
            field.copy_from_slice(text.as_bytes());
        };
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(text.as_bytes());
        self.buf.extend_from_slice(&h);
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.header(name, 0o644, data.len() as u64, b'0', "");
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(mut self, name: &str) -> Self {
        self.header(name, 0o755, 0, b'5', "");
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, 0o777, 0, b'2', target);
        self
    }

    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, 0o644, 0, b'1', target);
        self
    }

    /// The stream with its two zero end blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// An image config for linux/amd64 with these layer diff ids and `Cmd ["/bin/sh"]`.
pub fn image_config(diff_ids: &[String], arch: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created": "2026-01-01T00:00:00Z", "created_by": "berth-image-tests"})).collect::<Vec<_>>(),
    }))
    .expect("serializable")
}

/// A `docker save` archive (manifest.json, config, one `layer.tar` per
/// layer) of uncompressed `layers`, tagged `repo_tag`.
pub fn docker_archive(repo_tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let config = image_config(&diff_ids, "amd64");
    let config_name = format!("{}.json", &digest(&config)[7..]);
    let layer_names: Vec<String> = diff_ids
        .iter()
        .map(|d| format!("{}/layer.tar", &d[7..]))
        .collect();
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": layer_names,
    }]))
    .expect("serializable");
    let mut tar = TarWriter::new();
    for (name, layer) in layer_names.iter().zip(layers) {
        tar = tar.dir(&format!("{}/", &name[..64])).file(name, layer);
    }
    tar.file(&config_name, &config)
        .file("manifest.json", &manifest)
        .finish()
}

/// An OCI image as a registry holds it: manifest, config and layer blobs.
#[derive(Clone)]
pub struct OciImage {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    /// Every blob (config and layers) by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// The layer digests (of the gzip blobs), in order.
    pub layers: Vec<String>,
    /// The uncompressed layer digests, in order.
    pub diff_ids: Vec<String>,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

impl OciImage {
    /// An image of gzip-compressed `layers` (uncompressed tar streams).
    pub fn new(layers: &[Vec<u8>]) -> OciImage {
        let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
        let compressed: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
        let config = image_config(&diff_ids, "amd64");
        let mut blobs = BTreeMap::new();
        blobs.insert(digest(&config), config.clone());
        let mut layer_digests = Vec::new();
        for blob in compressed {
            layer_digests.push(digest(&blob));
            blobs.insert(digest(&blob), blob);
        }
        let sizes: Vec<u64> = layer_digests
            .iter()
            .map(|d| blobs[d].len() as u64)
            .collect();
        let mut image = OciImage {
            manifest: Vec::new(),
            config,
            blobs,
            layers: layer_digests,
            diff_ids,
        };
        image.manifest = image.manifest_with_sizes(&sizes);
        image
    }

    /// The manifest, with each layer's declared size replaced by `sizes`.
    pub fn manifest_with_sizes(&self, sizes: &[u64]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(&self.config), "size": self.config.len()},
            "layers": self.layers.iter().zip(sizes).map(|(d, size)| json!({
                "mediaType": OCI_LAYER_GZIP, "digest": d, "size": size,
            })).collect::<Vec<_>>(),
        }))
        .expect("serializable")
    }

    pub fn manifest_digest(&self) -> String {
        digest(&self.manifest)
    }

    pub fn config_digest(&self) -> String {
        digest(&self.config)
    }
}

/// `len` bytes that do not compress, from a fixed seed (xorshift64*).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}
