//! `docker save` and `docker load` archives.
//!
//! berth writes what docker 25+ writes: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) plus docker's `manifest.json` naming each image's config, tags and
//! layers by their blob paths. The blobs are the stored ones, byte for byte, so the digests
//! of a saved and loaded image do not change. On load both layouts are read: the OCI one, and
//! the legacy one (`<id>/layer.tar`, `<hex>.json`, `manifest.json`), including docker 25's
//! legacy paths that are symlinks into `blobs/`.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use berth_core::{Digest, Reference};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ImageError, Result};
use crate::import::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use crate::manifest::{ImageConfig, ManifestLayers};
use crate::metadata::{ImageRecord, ManifestRef};
use crate::service::{manifest_layers, ImageService, MAX_DOCUMENT};

/// How much of an archive's non-blob files (manifests, configs, `repositories`) `load` keeps
/// in memory at most.
const MAX_ARCHIVE_DOCUMENTS: u64 = 64 << 20;

/// What `save` will write, resolved before the first byte goes out.
#[derive(Debug, Clone)]
pub struct SavePlan {
    images: Vec<SaveImage>,
}

#[derive(Debug, Clone)]
struct SaveImage {
    id: Digest,
    config_size: u64,
    layers: Vec<(Digest, u64)>,
    diff_ids: Vec<Digest>,
    tags: Vec<Reference>,
}

/// One entry of docker's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

impl ImageService {
    /// Resolves the names to save: a tag saves that tag, an id saves the image untagged.
    pub fn plan_save(&self, names: &[String]) -> Result<SavePlan> {
        let mut images: Vec<SaveImage> = Vec::new();
        for name in names {
            let id = self.resolve(name)?;
            let tag = Reference::parse(name).ok().filter(|r| r.digest().is_none());
            let tag = match tag {
                Some(t) if self.meta.tags_of(&id)?.contains(&t) => Some(t),
                _ => None,
            };
            if let Some(existing) = images.iter_mut().find(|i| i.id == id) {
                if let Some(t) = tag {
                    if !existing.tags.contains(&t) {
                        existing.tags.push(t);
                    }
                }
                continue;
            }
            let rec = self.record(&id)?;
            let m = manifest_layers(self, &rec)?;
            let diff_ids = self.config_of(&id)?.diff_ids()?;
            images.push(SaveImage {
                id,
                diff_ids,
                config_size: m.config.size,
                layers: m
                    .layers
                    .iter()
                    .map(|l| (l.digest.clone(), l.size))
                    .collect(),
                tags: tag.into_iter().collect(),
            });
        }
        Ok(SavePlan { images })
    }

    /// Writes the archive for `plan` to `w`.
    pub fn save(&self, plan: &SavePlan, w: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(w);
        tar.mode(tar::HeaderMode::Deterministic);
        let werr = ImageError::io("writing the archive");
        let dir = |tar: &mut tar::Builder<_>, path: &str| -> io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, path, io::empty())
        };
        let file = |tar: &mut tar::Builder<_>,
                    path: &str,
                    size: u64,
                    r: &mut dyn Read|
         -> io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(size);
            h.set_mtime(0);
            tar.append_data(&mut h, path, r)
        };
        dir(&mut tar, "blobs").map_err(ImageError::io("writing the archive"))?;
        dir(&mut tar, "blobs/sha256").map_err(ImageError::io("writing the archive"))?;
        let mut written = std::collections::HashSet::new();
        let mut index = Vec::new();
        let mut legacy = Vec::new();
        let mut layer_sizes: HashMap<Digest, u64> = HashMap::new();
        for img in &plan.images {
            if written.insert(img.id.clone()) {
                let mut f = self.content.open_blob(&img.id)?;
                file(&mut tar, &blob_path(&img.id), img.config_size, &mut f)
                    .map_err(ImageError::io("writing the archive"))?;
            }
            // Layers go out as plain tars named by their diff ids, as docker save writes them.
            let mut layer_descs = Vec::new();
            for ((blob, size), diff_id) in img.layers.iter().zip(&img.diff_ids) {
                if written.insert(diff_id.clone()) {
                    let len = self.write_plain_layer(&mut tar, blob, *size, diff_id)?;
                    layer_sizes.insert(diff_id.clone(), len);
                }
                layer_descs.push(json!({"mediaType": OCI_LAYER_TAR, "digest": diff_id.to_string(), "size": layer_sizes[diff_id]}));
            }
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": img.id.to_string(), "size": img.config_size},
                "layers": layer_descs,
            }))
            .expect("json serializes");
            let manifest_digest = berth_core::sha256_digest(&manifest);
            if written.insert(manifest_digest.clone()) {
                file(
                    &mut tar,
                    &blob_path(&manifest_digest),
                    manifest.len() as u64,
                    &mut &manifest[..],
                )
                .map_err(ImageError::io("writing the archive"))?;
            }
            let desc = |annotations: Option<serde_json::Value>| {
                let mut d = json!({"mediaType": OCI_MANIFEST, "digest": manifest_digest.to_string(), "size": manifest.len()});
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if img.tags.is_empty() {
                index.push(desc(None));
            }
            for t in &img.tags {
                index.push(desc(Some(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or("latest"),
                }))));
            }
            legacy.push(json!({
                "Config": blob_path(&img.id),
                "RepoTags": img.tags.iter().map(Reference::familiar).collect::<Vec<_>>(),
                "Layers": img.diff_ids.iter().map(blob_path).collect::<Vec<_>>(),
            }));
        }
        let docs = [
            (
                "index.json",
                json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}),
            ),
            ("manifest.json", json!(legacy)),
            ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
        ];
        for (name, doc) in docs {
            let bytes = serde_json::to_vec(&doc).expect("json serializes");
            file(&mut tar, name, bytes.len() as u64, &mut &bytes[..])
                .map_err(ImageError::io("writing the archive"))?;
        }
        let mut w = tar.into_inner().map_err(werr)?;
        w.flush().map_err(ImageError::io("writing the archive"))?;
        Ok(())
    }

    /// Appends layer `blob` to `tar` uncompressed, as `blobs/sha256/<diff id>`; a compressed
    /// blob is inflated into a spool file first (a tar header needs the size), and must hash
    /// to `diff_id`. Returns the plain size.
    fn write_plain_layer<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        blob: &Digest,
        size: u64,
        diff_id: &Digest,
    ) -> Result<u64> {
        let werr = || ImageError::io("writing the archive");
        let mut head = [0u8; 8];
        let n = self
            .content
            .open_blob(blob)?
            .read(&mut head)
            .map_err(ImageError::io(format!("reading blob {blob}")))?;
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(0);
        if berth_archive::Compression::detect(&head[..n]) == berth_archive::Compression::None
            && blob == diff_id
        {
            header.set_size(size);
            tar.append_data(
                &mut header,
                blob_path(diff_id),
                self.content.open_blob(blob)?,
            )
            .map_err(werr())?;
            return Ok(size);
        }
        let (_c, plain) = berth_archive::decompress(io::BufReader::with_capacity(
            1 << 20,
            self.content.open_blob(blob)?,
        ))?;
        let (spool, actual, len) = self.spool(plain, &format!("inflating layer {blob}"))?;
        if &actual != diff_id {
            return Err(ImageError::DiffIdMismatch {
                layer: blob.to_string(),
                expected: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        header.set_size(len);
        tar.append_data(&mut header, blob_path(diff_id), spool)
            .map_err(werr())?;
        Ok(len)
    }

    /// Reads a `docker save` archive (either layout) and returns the names loaded: familiar
    /// tags, or `sha256:<id>` for untagged images.
    pub fn load(&self, input: impl Read + Send) -> Result<Vec<String>> {
        let _lease = self.leases.blocking_read();
        let (_c, plain) = berth_archive::decompress(input)?;
        let mut archive = tar::Archive::new(plain);
        let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
        let mut stored: HashMap<String, Digest> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut docs_total = 0u64;
        let rerr = |e: io::Error| ImageError::invalid("image archive", e.to_string());
        for entry in archive.entries().map_err(rerr)? {
            let mut entry = entry.map_err(rerr)?;
            let raw = entry.path().map_err(rerr)?.to_string_lossy().into_owned();
            let path = clean_path(&raw)?;
            match entry.header().entry_type() {
                tar::EntryType::Directory => continue,
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(rerr)?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let base = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let resolved = clean_path(&format!("{base}/{target}"))?;
                    links.insert(path, resolved);
                    continue;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                other => {
                    return Err(ImageError::invalid(
                        format!("archive entry {path:?}"),
                        format!("unexpected entry type {other:?}"),
                    ))
                }
            }
            let size = entry.header().size().map_err(rerr)?;
            if let Some(d) = blob_digest(&path) {
                if !self.content.contains(&d) {
                    let mut w = self.content.writer(&d, Some(size))?;
                    io::copy(&mut entry, &mut w).map_err(|e| {
                        ImageError::invalid(format!("archive entry {path}"), e.to_string())
                    })?;
                    w.commit()?;
                }
                stored.insert(path, d);
            } else if path.ends_with("layer.tar") || size > MAX_DOCUMENT {
                let (d, _) = self.ingest_unknown(&mut entry)?;
                stored.insert(path, d);
            } else {
                docs_total += size;
                if docs_total > MAX_ARCHIVE_DOCUMENTS {
                    return Err(ImageError::invalid(
                        "image archive",
                        format!(
                            "its small files add up to more than {MAX_ARCHIVE_DOCUMENTS} bytes"
                        ),
                    ));
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(rerr)?;
                docs.insert(path, buf);
            }
        }
        // A path names a blob directly, through a symlink, or is a small document to store.
        let resolve = |p: &str, this: &Self| -> Result<Digest> {
            let p = clean_path(p)?;
            let p = links.get(&p).cloned().unwrap_or(p);
            if let Some(d) = stored.get(&p) {
                return Ok(d.clone());
            }
            if let Some(bytes) = docs.get(&p) {
                return Ok(this.content.put(bytes, None)?);
            }
            Err(ImageError::invalid(
                "image archive",
                format!("{p} is named but not in the archive"),
            ))
        };

        let mut loaded = Vec::new();
        if let Some(bytes) = docs.get("manifest.json") {
            let list: Vec<LegacyManifest> = serde_json::from_slice(bytes)
                .map_err(|e| ImageError::invalid("manifest.json of the archive", e.to_string()))?;
            let oci = self.oci_manifests(&docs, &stored)?;
            for item in list {
                let config = resolve(&item.config, self)?;
                let layers: Vec<Digest> = item
                    .layers
                    .iter()
                    .map(|l| resolve(l, self))
                    .collect::<Result<_>>()?;
                let manifest = match oci.iter().find(|(_, m)| m.config.digest == config) {
                    Some((r, _)) => r.clone(),
                    None => self.synthesize_manifest(&config, &layers)?,
                };
                let tags: Vec<Reference> = item
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| Reference::parse(t))
                    .collect::<std::result::Result<_, _>>()?;
                loaded.extend(self.store_loaded(manifest, tags)?);
            }
        } else if docs.contains_key("index.json") {
            let index: serde_json::Value = serde_json::from_slice(&docs["index.json"])
                .map_err(|e| ImageError::invalid("index.json of the archive", e.to_string()))?;
            for desc in index["manifests"].as_array().cloned().unwrap_or_default() {
                let digest: Digest = desc["digest"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        ImageError::invalid(
                            "index.json of the archive",
                            "a manifest without a valid digest",
                        )
                    })?;
                let media_type = desc["mediaType"]
                    .as_str()
                    .unwrap_or(OCI_MANIFEST)
                    .to_string();
                let (manifest, media_type) = self.platform_manifest(digest, media_type)?;
                let name = desc["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .or(desc["annotations"]["org.opencontainers.image.ref.name"].as_str())
                    .and_then(|n| {
                        if n.contains('/') || n.contains(':') {
                            Reference::parse(n).ok()
                        } else {
                            None
                        }
                    });
                let size = self.content.size(&manifest)?;
                loaded.extend(self.store_loaded(
                    ManifestRef {
                        digest: manifest,
                        media_type,
                        size,
                    },
                    name.into_iter().collect(),
                )?);
            }
        } else {
            return Err(ImageError::invalid(
                "image archive",
                "it has neither manifest.json nor index.json",
            ));
        }
        Ok(loaded)
    }

    /// The manifests of the archive's OCI index, by their config.
    fn oci_manifests(
        &self,
        docs: &HashMap<String, Vec<u8>>,
        _stored: &HashMap<String, Digest>,
    ) -> Result<Vec<(ManifestRef, ManifestLayers)>> {
        let mut out = Vec::new();
        let Some(bytes) = docs.get("index.json") else {
            return Ok(out);
        };
        let index: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::invalid("index.json of the archive", e.to_string()))?;
        for desc in index["manifests"].as_array().cloned().unwrap_or_default() {
            let Some(digest) = desc["digest"]
                .as_str()
                .and_then(|s| s.parse::<Digest>().ok())
            else {
                continue;
            };
            let media_type = desc["mediaType"]
                .as_str()
                .unwrap_or(OCI_MANIFEST)
                .to_string();
            let Ok((d, mt)) = self.platform_manifest(digest, media_type) else {
                continue;
            };
            let bytes = self.content.read_blob(&d, MAX_DOCUMENT)?;
            let m = ManifestLayers::from_manifest_bytes(&bytes, Some(&mt))?;
            out.push((
                ManifestRef {
                    digest: d,
                    media_type: mt,
                    size: bytes.len() as u64,
                },
                m,
            ));
        }
        Ok(out)
    }

    /// A manifest digest from an index entry, descending into nested indexes for the default platform.
    fn platform_manifest(&self, digest: Digest, media_type: String) -> Result<(Digest, String)> {
        let bytes = self.content.read_blob(&digest, MAX_DOCUMENT)?;
        match crate::manifest::parse_manifest(&bytes, Some(&media_type))? {
            crate::manifest::Parsed::Manifest(_) => Ok((digest, media_type)),
            crate::manifest::Parsed::Index(index) => {
                let desc = crate::manifest::select_platform(
                    &index,
                    &crate::manifest::Platform::default(),
                )?;
                self.platform_manifest(desc.digest().clone(), desc.media_type().to_string())
            }
        }
    }

    /// An OCI manifest for a legacy archive image, layer media types sniffed from the blobs.
    fn synthesize_manifest(&self, config: &Digest, layers: &[Digest]) -> Result<ManifestRef> {
        let mut descs = Vec::new();
        for l in layers {
            let mut head = [0u8; 8];
            let mut f = self.content.open_blob(l)?;
            let n = f
                .read(&mut head)
                .map_err(ImageError::io(format!("reading blob {l}")))?;
            let media_type = match berth_archive::Compression::detect(&head[..n]) {
                berth_archive::Compression::None => OCI_LAYER_TAR.to_string(),
                berth_archive::Compression::Gzip => format!("{OCI_LAYER_TAR}+gzip"),
                berth_archive::Compression::Zstd => format!("{OCI_LAYER_TAR}+zstd"),
            };
            descs.push(json!({"mediaType": media_type, "digest": l.to_string(), "size": self.content.size(l)?}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": self.content.size(config)?},
            "layers": descs,
        });
        let bytes = serde_json::to_vec(&manifest).expect("json serializes");
        let digest = self.content.put(&bytes, None)?;
        Ok(ManifestRef {
            digest,
            media_type: OCI_MANIFEST.into(),
            size: bytes.len() as u64,
        })
    }

    /// Unpacks and records one loaded image; returns the names to report.
    fn store_loaded(&self, manifest: ManifestRef, tags: Vec<Reference>) -> Result<Vec<String>> {
        let bytes = self.content.read_blob(&manifest.digest, MAX_DOCUMENT)?;
        let m = ManifestLayers::from_manifest_bytes(&bytes, Some(&manifest.media_type))?;
        let id = m.config.digest.clone();
        let cfg = ImageConfig::parse(&self.content.read_blob(&id, MAX_DOCUMENT)?)?;
        let diff_ids = cfg.diff_ids()?;
        if diff_ids.len() != m.layers.len() {
            return Err(ImageError::invalid(
                format!("image {id} in the archive"),
                format!(
                    "{} layers but {} diff ids in its config",
                    m.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let chain = berth_core::digest::chain_ids(&diff_ids);
        let mut size = 0;
        for (i, layer) in m.layers.iter().enumerate() {
            let f = self.content.open_blob(&layer.digest)?;
            let parent = if i == 0 { None } else { Some(&chain[i - 1]) };
            self.unpack_layer(
                parent,
                &chain[i],
                &diff_ids[i],
                io::BufReader::with_capacity(1 << 20, f),
            )?;
            size += self
                .snapshots
                .usage(chain[i].as_ref())
                .map(|u| u.size)
                .unwrap_or(0);
        }
        let names = if tags.is_empty() {
            vec![id.to_string()]
        } else {
            tags.iter().map(Reference::familiar).collect()
        };
        self.record_image(
            ImageRecord {
                id,
                manifest,
                index: None,
                created: crate::time::now_nanos() / 1_000_000_000,
                size,
                last_tag_time: Some(crate::time::now_nanos()),
            },
            tags,
        )?;
        Ok(names)
    }
}

/// `./a/b` -> `a/b`; refuses absolute paths and `..` that leave the archive.
fn clean_path(p: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ImageError::invalid(
                        format!("archive entry {p:?}"),
                        "it points outside the archive",
                    ));
                }
            }
            c => parts.push(c),
        }
    }
    if p.starts_with('/') {
        return Err(ImageError::invalid(
            format!("archive entry {p:?}"),
            "absolute paths are not allowed",
        ));
    }
    Ok(parts.join("/"))
}

/// `blobs/sha256/<hex>` -> the digest it names.
fn blob_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_cleaned_and_confined() {
        assert_eq!(clean_path("./blobs/sha256/ab").unwrap(), "blobs/sha256/ab");
        assert_eq!(clean_path("abc/../blobs/x").unwrap(), "blobs/x");
        assert!(clean_path("../etc/passwd").is_err());
        assert!(clean_path("/etc/passwd").is_err());
    }

    #[test]
    fn blob_paths_name_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            blob_digest(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .digest(),
            hex
        );
        assert!(blob_digest("blobs/sha256/zz").is_none());
        assert!(blob_digest("manifest.json").is_none());
    }
}
