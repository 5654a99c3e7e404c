//! `docker import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image, its
//! config built from `--change` instructions and `--message`.

use std::io::{self, Read};

use berth_core::{Digest, Reference};
use serde_json::{json, Map, Value};

use crate::error::{ImageError, Result};
use crate::metadata::{ImageRecord, ManifestRef};
use crate::service::ImageService;
use crate::unpack::HashingReader;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

impl ImageService {
    /// Copies `reader` into an unnamed temporary file under the data root while hashing it;
    /// returns the file rewound to its start, the digest and the size. For streams whose
    /// digest or length is not known before they are read.
    pub(crate) fn spool(
        &self,
        reader: impl Read,
        what: &str,
    ) -> Result<(std::fs::File, Digest, u64)> {
        use std::io::Seek;
        let tmp_dir = self.root.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(ImageError::io("creating the spool dir"))?;
        let mut spool =
            tempfile::tempfile_in(&tmp_dir).map_err(ImageError::io("creating a spool file"))?;
        let mut hashing = HashingReader::new(reader);
        io::copy(&mut hashing, &mut spool).map_err(ImageError::io(what))?;
        let (digest, size) = hashing.finish();
        spool
            .seek(io::SeekFrom::Start(0))
            .map_err(ImageError::io("rewinding the spool file"))?;
        Ok((spool, digest, size))
    }

    /// Stores a stream whose digest is not known in advance: spooled while hashed, then
    /// ingested under the digest found (and verified once more).
    pub(crate) fn ingest_unknown(&self, reader: impl Read) -> Result<(Digest, u64)> {
        let (mut spool, digest, size) = self.spool(reader, "reading the input")?;
        if !self.content.contains(&digest) {
            let mut w = self.content.writer(&digest, Some(size))?;
            io::copy(&mut spool, &mut w).map_err(ImageError::io("storing a blob"))?;
            w.commit()?;
        }
        Ok((digest, size))
    }

    /// Stores a one-layer image made from a rootfs tarball and tags it when `reference` is given.
    pub fn import(
        &self,
        input: impl Read + Send,
        reference: Option<&Reference>,
        changes: &[String],
        message: &str,
        platform: Option<&str>,
    ) -> Result<Digest> {
        let _lease = self.leases.blocking_read();
        let platform = match platform {
            Some(p) => crate::manifest::Platform::parse(p)?,
            None => crate::manifest::Platform::default(),
        };
        // The layer is kept uncompressed: its digest is its diff id.
        let (_c, plain) = berth_archive::decompress(input)?;
        let (diff_id, size) = self.ingest_unknown(plain)?;
        let f = self.content.open_blob(&diff_id)?;
        self.unpack_layer(
            None,
            &diff_id,
            &diff_id,
            io::BufReader::with_capacity(1 << 20, f),
        )?;

        let mut config = Map::new();
        for c in changes {
            apply_change(&mut config, c)?;
        }
        let now = crate::time::rfc3339(crate::time::now_nanos());
        let comment = if message.is_empty() {
            "Imported from -".to_string()
        } else {
            message.to_string()
        };
        let cfg = json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "created": now,
            "comment": message,
            "config": Value::Object(config),
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "comment": comment}],
        });
        let usage = self
            .snapshots
            .usage(diff_id.as_ref())
            .map(|u| u.size)
            .unwrap_or(size);
        let layers =
            vec![json!({"mediaType": OCI_LAYER_TAR, "digest": diff_id.to_string(), "size": size})];
        self.store_image(&cfg, layers, usage, reference)
    }

    /// Stores an image config and an OCI manifest of it and `layers` (descriptors), and
    /// records the image (`size`: its unpacked size) with `reference` as its tag.
    pub(crate) fn store_image(
        &self,
        config: &Value,
        layers: Vec<Value>,
        size: u64,
        reference: Option<&Reference>,
    ) -> Result<Digest> {
        let cfg_bytes = serde_json::to_vec(config).expect("json serializes");
        let id = self.content.put(&cfg_bytes, None)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": id.to_string(), "size": cfg_bytes.len()},
            "layers": layers,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("json serializes");
        let manifest_digest = self.content.put(&manifest_bytes, None)?;
        self.record_image(
            ImageRecord {
                id: id.clone(),
                manifest: ManifestRef {
                    digest: manifest_digest,
                    media_type: OCI_MANIFEST.into(),
                    size: manifest_bytes.len() as u64,
                },
                index: None,
                created: crate::time::now_nanos() / 1_000_000_000,
                size,
                last_tag_time: reference.map(|_| crate::time::now_nanos()),
            },
            reference.into_iter().cloned().collect(),
        )?;
        Ok(id)
    }

    /// Records an image with its tags in one transaction.
    pub(crate) fn record_image(&self, record: ImageRecord, tags: Vec<Reference>) -> Result<()> {
        let _guard = self.records.lock().expect("records lock");
        self.meta.transaction(|txn| {
            txn.put_image(&record)?;
            for t in &tags {
                txn.set_tag(t, &record.id)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// One `--change` instruction (Dockerfile syntax) applied to an image config's `config`.
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let change = change.trim();
    let (instr, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let bad = |reason: &str| ImageError::invalid(format!("change {change:?}"), reason.to_string());
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.insert("Cmd".into(), json!(command_form(rest)));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), json!(command_form(rest)));
        }
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().ok_or_else(|| bad("Env is not a list"))?;
            for (k, v) in key_values(rest).ok_or_else(|| bad("ENV needs NAME=value or NAME value"))? {
                list.retain(|e| e.as_str().and_then(|s| s.split_once('=')).map(|(n, _)| n) != Some(k.as_str()));
                list.push(json!(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            let map = labels.as_object_mut().ok_or_else(|| bad("Labels is not a map"))?;
            for (k, v) in key_values(rest).ok_or_else(|| bad("LABEL needs key=value"))? {
                map.insert(k, json!(v));
            }
        }
        "WORKDIR" if !rest.is_empty() => {
            config.insert("WorkingDir".into(), json!(rest));
        }
        "USER" if !rest.is_empty() => {
            config.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" if !rest.is_empty() => {
            config.insert("StopSignal".into(), json!(rest));
        }
        "EXPOSE" if !rest.is_empty() => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            let map = ports.as_object_mut().ok_or_else(|| bad("ExposedPorts is not a map"))?;
            for p in rest.split_whitespace() {
                let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                map.insert(p, json!({}));
            }
        }
        "VOLUME" if !rest.is_empty() => {
            let vols = config.entry("Volumes").or_insert_with(|| json!({}));
            let map = vols.as_object_mut().ok_or_else(|| bad("Volumes is not a map"))?;
            let list: Vec<String> = serde_json::from_str(rest).unwrap_or_else(|_| rest.split_whitespace().map(str::to_string).collect());
            for v in list {
                map.insert(v, json!({}));
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "EXPOSE" | "VOLUME" => return Err(bad("needs an argument")),
        "ONBUILD" => return Err(bad("ONBUILD is not supported by berth")),
        _ => return Err(bad("only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR can be changed")),
    }
    Ok(())
}

/// Exec form (`["a","b"]`) as is; shell form wrapped in `/bin/sh -c`.
fn command_form(rest: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => v,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

/// `A=1 B="two words"` or the legacy `NAME value`.
fn key_values(s: &str) -> Option<Vec<(String, String)>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let first = s.split_whitespace().next()?;
    if !first.contains('=') {
        let (k, v) = s.split_once(char::is_whitespace)?;
        return Some(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let mut val = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match quote {
                Some(q) if c == q => {
                    quote = None;
                    chars.next();
                }
                Some(_) => {
                    val.push(c);
                    chars.next();
                }
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    chars.next();
                }
                None if c.is_whitespace() => break,
                None => {
                    val.push(c);
                    chars.next();
                }
            }
        }
        if key.is_empty() {
            return None;
        }
        out.push((key, val));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_dockerfile_syntax() {
        let mut c = Map::new();
        apply_change(&mut c, r#"CMD ["/bin/sh"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut c, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, "LABEL x=y").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"x": "y"}));
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert!(apply_change(&mut c, "RUN rm -rf /").is_err());
        assert!(apply_change(&mut c, "USER").is_err());
    }
}
