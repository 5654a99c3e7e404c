//! `docker commit`: a container's layer (a tar diff) becomes a new image on top of the
//! image the container was made from, its config the container's with `--change`s applied.

use std::io::{self, Read};

use berth_core::{Digest, Reference};
use serde_json::{json, Map, Value};

use crate::error::{ImageError, Result};
use crate::import::apply_change;
use crate::manifest::{OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP, OCI_LAYER_TAR_ZSTD};
use crate::service::{manifest_layers, ImageService};

/// What a commit records besides the layer.
pub struct CommitRequest<'a> {
    /// The image the container was made from.
    pub parent: &'a Digest,
    /// The container's config (Docker's `Config` object), the new image's `config` before
    /// `changes` apply.
    pub config: Value,
    pub changes: &'a [String],
    pub comment: &'a str,
    pub author: &'a str,
    /// The container's command, for the history entry.
    pub created_by: String,
    pub reference: Option<&'a Reference>,
}

/// The OCI media type for a layer the parent's manifest describes (Docker's or OCI's).
fn oci_layer_type(media_type: &str) -> &'static str {
    if media_type.contains("zstd") {
        OCI_LAYER_TAR_ZSTD
    } else if media_type.contains("gzip") {
        OCI_LAYER_TAR_GZIP
    } else {
        OCI_LAYER_TAR
    }
}

impl ImageService {
    /// Stores `layer` (an uncompressed tar diff) as a new layer above `req.parent`'s and
    /// records the image; tags it when `req.reference` is given.
    pub fn commit(&self, req: &CommitRequest, layer: impl Read + Send) -> Result<Digest> {
        let _lease = self.leases.blocking_read();
        let parent_rec = self.record(req.parent)?;
        let parent_cfg = self.config_of(req.parent)?;
        let parent_layers = manifest_layers(self, &parent_rec)?;
        let mut diff_ids = parent_cfg.diff_ids()?;
        let parent_chain = berth_core::digest::chain_ids(&diff_ids).last().cloned();

        let (diff_id, size) = self.ingest_unknown(layer)?;
        diff_ids.push(diff_id.clone());
        let chain = berth_core::digest::chain_ids(&diff_ids)
            .last()
            .cloned()
            .expect("one layer at least");
        let f = self.content.open_blob(&diff_id)?;
        self.unpack_layer(
            parent_chain.as_ref(),
            &chain,
            &diff_id,
            io::BufReader::with_capacity(1 << 20, f),
        )?;

        let mut config = match req.config.clone() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for c in req.changes {
            apply_change(&mut config, c)?;
        }
        let now = crate::time::rfc3339(crate::time::now_nanos());
        let mut doc = match parent_cfg.raw().clone() {
            Value::Object(m) => m,
            _ => return Err(ImageError::invalid("image config", "not a JSON object")),
        };
        let mut history = doc
            .get("history")
            .and_then(|h| h.as_array().cloned())
            .unwrap_or_default();
        let mut entry = json!({"created": now, "created_by": req.created_by});
        if !req.comment.is_empty() {
            entry["comment"] = json!(req.comment);
        }
        if !req.author.is_empty() {
            entry["author"] = json!(req.author);
        }
        history.push(entry);
        doc.insert("created".into(), json!(now));
        doc.insert("config".into(), Value::Object(config));
        doc.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()}),
        );
        doc.insert("history".into(), Value::Array(history));
        if req.author.is_empty() {
            doc.remove("author");
        } else {
            doc.insert("author".into(), json!(req.author));
        }
        doc.remove("comment");
        if !req.comment.is_empty() {
            doc.insert("comment".into(), json!(req.comment));
        }
        let mut layers: Vec<Value> = parent_layers
            .layers
            .iter()
            .map(|l| json!({"mediaType": oci_layer_type(&l.media_type), "digest": l.digest.to_string(), "size": l.size}))
            .collect();
        layers
            .push(json!({"mediaType": OCI_LAYER_TAR, "digest": diff_id.to_string(), "size": size}));
        let added = self
            .snapshots
            .usage(chain.as_ref())
            .map(|u| u.size)
            .unwrap_or(size);
        let id = self.store_image(
            &Value::Object(doc),
            layers,
            parent_rec.size + added,
            req.reference,
        )?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_types_map_to_oci() {
        assert_eq!(
            super::oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            super::OCI_LAYER_TAR_GZIP
        );
        assert_eq!(
            super::oci_layer_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            super::OCI_LAYER_TAR_ZSTD
        );
        assert_eq!(
            super::oci_layer_type("application/vnd.oci.image.layer.v1.tar"),
            super::OCI_LAYER_TAR
        );
    }
}
