//! Garbage collection: blobs and layer snapshots that no recorded image references.
//!
//! Roots are the image records: each names its manifest (and index), whose config and layer
//! blobs it keeps, and whose diff ids give the chain ids of the snapshots it keeps. Anything
//! else goes, snapshots children first. Collection runs only when no pull, load or import
//! holds a lease, so it never takes what such an operation fetched but has not recorded yet.

use std::collections::HashSet;

use berth_core::Digest;
use berth_snapshot::Kind;

use crate::error::Result;
use crate::service::{manifest_layers, ImageService};

#[derive(Debug, Default)]
pub struct GcReport {
    /// Chain ids of the layers removed, as `docker rmi` reports them.
    pub deleted_layers: Vec<String>,
    pub bytes_freed: u64,
}

impl ImageService {
    pub fn collect_garbage(&self) -> Result<GcReport> {
        let mut report = GcReport::default();
        let Ok(_exclusive) = self.leases.try_write() else {
            // A pull is under way; the next collection will find what is left.
            return Ok(report);
        };
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut layers: HashSet<String> = HashSet::new();
        for rec in self.meta.list_images()? {
            blobs.insert(rec.id.clone());
            blobs.insert(rec.manifest.digest.clone());
            if let Some(i) = &rec.index {
                blobs.insert(i.clone());
            }
            if let Ok(m) = manifest_layers(self, &rec) {
                blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            }
            if let Ok(cfg) = self.config_of(&rec.id) {
                if let Ok(diff_ids) = cfg.diff_ids() {
                    layers.extend(
                        berth_core::digest::chain_ids(&diff_ids)
                            .iter()
                            .map(|c| c.to_string()),
                    );
                }
            }
        }

        // Snapshots: leftovers of interrupted unpacks, then unreferenced layers, children first.
        let mut infos = self.snapshots.list()?;
        for info in infos
            .iter()
            .filter(|i| i.name.starts_with("extract-") && i.kind != Kind::Committed)
        {
            let _ = self.snapshots.remove(&info.name);
        }
        infos.retain(|i| i.kind == Kind::Committed && !layers.contains(&i.name));
        loop {
            let parents: HashSet<String> = self
                .snapshots
                .list()?
                .into_iter()
                .filter_map(|i| i.parent)
                .collect();
            let leaves: Vec<_> = infos
                .iter()
                .filter(|i| !parents.contains(&i.name))
                .cloned()
                .collect();
            if leaves.is_empty() {
                break;
            }
            for leaf in &leaves {
                let size = self
                    .snapshots
                    .usage(&leaf.name)
                    .map(|u| u.size)
                    .unwrap_or(0);
                self.snapshots.remove(&leaf.name)?;
                report.bytes_freed += size;
                report.deleted_layers.push(leaf.name.clone());
            }
            infos.retain(|i| !leaves.iter().any(|l| l.name == i.name));
        }

        for blob in self.content.list()? {
            if !blobs.contains(&blob.digest) {
                self.content.delete(&blob.digest)?;
                report.bytes_freed += blob.size;
            }
        }
        Ok(report)
    }
}
