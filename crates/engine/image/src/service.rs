//! [`ImageService`]: the image side of the engine, over the content store, the metadata
//! store and the snapshotter. Read-only queries and local changes (tag, remove, prune) live
//! here; pull, push, save, load and import have their own modules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_content::ContentStore;
use berth_core::{Digest, Reference};
use berth_snapshot::{NativeSnapshotter, OverlaySnapshotter, Snapshotter};
use serde_json::Value;

use crate::error::{ImageError, Result};
use crate::manifest::{self, ImageConfig};
use crate::metadata::{ImageRecord, MetadataStore};

/// Largest manifest or config berth reads into memory.
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// Which snapshotter keeps layers and container file systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotterKind {
    /// overlayfs when the data root supports it, else native copies.
    Auto,
    Overlay,
    Native,
}

#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Registries reached over plain HTTP or unverified TLS; loopback ones always are.
    pub insecure_registries: Vec<String>,
    pub snapshotter: SnapshotterKind,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            insecure_registries: Vec::new(),
            snapshotter: SnapshotterKind::Auto,
        }
    }
}

/// Registry credentials as `docker login` and `X-Registry-Auth` carry them.
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

/// One line of `docker images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: Digest,
    pub parent: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Seconds since the epoch, from the config's `created`.
    pub created: i64,
    pub size: u64,
    pub labels: BTreeMap<String, String>,
}

/// `docker image inspect`.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub raw_config: Value,
    pub graph_driver: String,
    pub graph_data: BTreeMap<String, String>,
    pub last_tag_time: Option<i64>,
}

/// One line of `docker history`.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

/// What `rmi` and `prune` did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub removed: Vec<Removed>,
    pub space_reclaimed: u64,
}

/// The image half of `docker system df`.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub layers_size: u64,
    /// Each image with its shared size (bytes of layers other images use too).
    pub images: Vec<(ImageSummary, u64)>,
}

/// `docker images --filter`.
#[derive(Debug, Clone, Default)]
pub struct ImageFilters {
    pub dangling: Option<bool>,
    pub reference: Vec<String>,
    pub before: Option<String>,
    pub since: Option<String>,
    pub label: Vec<String>,
    pub until: Option<String>,
}

pub struct ImageService {
    pub(crate) root: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) meta: MetadataStore,
    pub(crate) snapshots: Box<dyn Snapshotter>,
    pub(crate) driver: &'static str,
    pub(crate) opts: ServiceOptions,
    /// Serialises changes to records (tag, remove, record a pulled image).
    pub(crate) records: Mutex<()>,
    /// Operations that add content hold it shared; garbage collection takes it exclusively,
    /// so it never deletes a blob or layer a pull has fetched but not yet recorded.
    pub(crate) leases: tokio::sync::RwLock<()>,
    /// One fetch per blob at a time across concurrent pulls.
    pub(crate) fetches: tokio::sync::Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageService {
    /// Opens (creating if needed) the image stores under `root`.
    pub fn open(root: &Path, opts: ServiceOptions) -> Result<Self> {
        std::fs::create_dir_all(root)
            .map_err(ImageError::io(format!("creating {}", root.display())))?;
        let content = ContentStore::open(&root.join("content"))?;
        let meta = MetadataStore::open(&root.join("metadata.db"))?;
        let use_overlay = match opts.snapshotter {
            SnapshotterKind::Overlay => true,
            SnapshotterKind::Native => false,
            SnapshotterKind::Auto => {
                let probe = root.join("snapshots");
                std::fs::create_dir_all(&probe)
                    .map_err(ImageError::io("creating the snapshots dir"))?;
                berth_snapshot::overlay_supported(&probe)
            }
        };
        let (snapshots, driver): (Box<dyn Snapshotter>, &'static str) = if use_overlay {
            (
                Box::new(OverlaySnapshotter::new(&root.join("snapshots/overlayfs"))?),
                "overlayfs",
            )
        } else {
            (
                Box::new(NativeSnapshotter::new(&root.join("snapshots/native"))?),
                "native",
            )
        };
        let svc = ImageService {
            root: root.to_path_buf(),
            content,
            meta,
            snapshots,
            driver,
            opts,
            records: Mutex::new(()),
            leases: tokio::sync::RwLock::new(()),
            fetches: tokio::sync::Mutex::new(HashMap::new()),
        };
        // Whatever a crash left unreferenced (a pull that fetched but never recorded) goes now.
        svc.collect_garbage()?;
        Ok(svc)
    }

    pub fn driver(&self) -> &'static str {
        self.driver
    }

    /// The snapshotter holding the image layers, on which containers stack their own.
    pub fn snapshots(&self) -> &dyn Snapshotter {
        self.snapshots.as_ref()
    }

    /// The config of the image `id` (from [`ImageService::resolve`]).
    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        self.record(id)?;
        self.config_of(id)
    }

    /// The snapshot a container of image `id` stacks its layers on: the chain id of the
    /// image's top layer, `None` for an image with no layers.
    pub fn top_layer(&self, id: &Digest) -> Result<Option<String>> {
        let diff_ids = self.config(id)?.diff_ids()?;
        Ok(berth_core::digest::chain_ids(&diff_ids)
            .last()
            .map(|c| c.to_string()))
    }

    pub fn count(&self) -> Result<usize> {
        Ok(self.meta.list_images()?.len())
    }

    /// The id of the image `name` refers to: a reference, `repo@digest`, an id or id prefix.
    pub fn resolve(&self, name: &str) -> Result<Digest> {
        Ok(self.meta.resolve(name)?)
    }

    pub(crate) fn record(&self, id: &Digest) -> Result<ImageRecord> {
        self.meta
            .get_image(id)?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))
    }

    /// The config of a recorded image, read from the content store.
    pub(crate) fn config_of(&self, id: &Digest) -> Result<ImageConfig> {
        let bytes = self.content.read_blob(id, MAX_DOCUMENT)?;
        Ok(ImageConfig::parse(&bytes)?)
    }

    pub(crate) fn summary(&self, rec: &ImageRecord) -> Result<ImageSummary> {
        let cfg = self.config_of(&rec.id)?;
        let mut repo_tags: Vec<String> = self
            .meta
            .tags_of(&rec.id)?
            .iter()
            .map(Reference::familiar)
            .collect();
        repo_tags.sort();
        let mut repo_digests: Vec<String> = self
            .meta
            .repo_digests_of(&rec.id)?
            .iter()
            .map(Reference::familiar)
            .collect();
        repo_digests.sort();
        Ok(ImageSummary {
            id: rec.id.clone(),
            parent: String::new(),
            repo_tags,
            repo_digests,
            created: cfg.created_secs().unwrap_or(0),
            size: rec.size,
            labels: cfg.labels(),
        })
    }

    /// `docker images`. Docker's `all` also shows intermediate build images; berth has none
    /// (no builder yet), so every recorded image is listed either way.
    pub fn list(&self, filters: &ImageFilters) -> Result<Vec<ImageSummary>> {
        let records = self.meta.list_images()?;
        let mut out = Vec::with_capacity(records.len());
        for rec in &records {
            out.push(self.summary(rec)?);
        }
        let before = filters
            .before
            .as_deref()
            .map(|n| self.created_of(n))
            .transpose()?;
        let since = filters
            .since
            .as_deref()
            .map(|n| self.created_of(n))
            .transpose()?;
        let until = filters.until.as_deref().map(parse_until).transpose()?;
        out.retain(|s| {
            if let Some(d) = filters.dangling {
                if d != s.repo_tags.is_empty() {
                    return false;
                }
            }
            if !filters.reference.is_empty()
                && !filters
                    .reference
                    .iter()
                    .any(|p| reference_matches(p, &s.repo_tags))
            {
                return false;
            }
            if !filters.label.iter().all(|l| label_matches(l, &s.labels)) {
                return false;
            }
            if before.is_some_and(|b| s.created >= b) || since.is_some_and(|b| s.created <= b) {
                return false;
            }
            if until.is_some_and(|u| s.created >= u) {
                return false;
            }
            true
        });
        // Newest first, as docker lists them.
        out.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then(a.id.as_ref().cmp(b.id.as_ref()))
        });
        Ok(out)
    }

    fn created_of(&self, name: &str) -> Result<i64> {
        let id = self.resolve(name)?;
        Ok(self.config_of(&id)?.created_secs().unwrap_or(0))
    }

    pub fn inspect(&self, name: &str) -> Result<ImageDetails> {
        let id = self.resolve(name)?;
        let rec = self.record(&id)?;
        let summary = self.summary(&rec)?;
        let raw = self.content.read_blob(&id, MAX_DOCUMENT)?;
        let raw_config: Value = serde_json::from_slice(&raw)
            .map_err(|e| ImageError::invalid(format!("config {id}"), e.to_string()))?;
        Ok(ImageDetails {
            summary,
            raw_config,
            graph_driver: if self.driver == "overlayfs" {
                "overlay2".into()
            } else {
                "vfs".into()
            },
            graph_data: BTreeMap::new(),
            last_tag_time: rec.last_tag_time,
        })
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let id = self.resolve(name)?;
        let cfg = self.config_of(&id)?;
        let diff_ids = cfg.diff_ids()?;
        let chain = berth_core::digest::chain_ids(&diff_ids);
        let tags: Vec<String> = self
            .meta
            .tags_of(&id)?
            .iter()
            .map(Reference::familiar)
            .collect();
        let mut sizes = chain.iter().map(|c| {
            self.snapshots
                .usage(c.as_ref())
                .map(|u| u.size)
                .unwrap_or(0)
        });
        let mut entries = Vec::new();
        let history = cfg.history();
        if history.is_empty() {
            for _ in &diff_ids {
                entries.push(HistoryEntry {
                    id: "<missing>".into(),
                    created: cfg.created_secs().unwrap_or(0),
                    created_by: String::new(),
                    tags: Vec::new(),
                    size: sizes.next().unwrap_or(0),
                    comment: String::new(),
                });
            }
        } else {
            for h in history {
                entries.push(HistoryEntry {
                    id: "<missing>".into(),
                    created: h
                        .created
                        .as_deref()
                        .and_then(crate::time::parse_rfc3339_secs)
                        .unwrap_or(0),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size: if h.empty_layer {
                        0
                    } else {
                        sizes.next().unwrap_or(0)
                    },
                    comment: h.comment.clone().unwrap_or_default(),
                });
            }
        }
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top.id = id.to_string();
            top.tags = tags;
        }
        Ok(entries)
    }

    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let id = self.resolve(source)?;
        let _guard = self.records.lock().expect("records lock");
        self.meta.set_tag(target, &id)?;
        Ok(())
    }

    /// `docker rmi`: untags the reference given; deletes the image once nothing names it,
    /// or at once with `force` when asked by id.
    pub fn remove(&self, name: &str, force: bool, prune: bool) -> Result<Vec<Removed>> {
        let id = self.resolve(name)?;
        let mut removed = Vec::new();
        {
            let _guard = self.records.lock().expect("records lock");
            let tags = self.meta.tags_of(&id)?;
            let digests = self.meta.repo_digests_of(&id)?;
            let by_reference = Reference::parse(name)
                .ok()
                .filter(|r| tags.iter().any(|t| t == r) || digests.iter().any(|d| d == r));
            match by_reference {
                Some(r) => {
                    // Untag only that name; the image goes when no tag is left.
                    if r.digest().is_some() {
                        self.meta.remove_repo_digest(&r)?;
                    } else {
                        self.meta.remove_tag(&r)?;
                    }
                    removed.push(Removed::Untagged(r.familiar()));
                    let left = self.meta.tags_of(&id)?;
                    if left.is_empty() {
                        // Docker drops the repo digests of an image whose last tag goes.
                        for d in self.meta.repo_digests_of(&id)? {
                            removed.push(Removed::Untagged(d.familiar()));
                        }
                        self.meta.delete_image(&id)?;
                        removed.push(Removed::Deleted(id.to_string()));
                    }
                }
                None => {
                    let repos: HashSet<String> = tags.iter().map(Reference::repository).collect();
                    if repos.len() > 1 && !force {
                        return Err(ImageError::InUse {
                            id: short(&id),
                            reason: "image is referenced in multiple repositories".into(),
                        });
                    }
                    for t in &tags {
                        removed.push(Removed::Untagged(t.familiar()));
                    }
                    for d in &digests {
                        removed.push(Removed::Untagged(d.familiar()));
                    }
                    self.meta.delete_image(&id)?;
                    removed.push(Removed::Deleted(id.to_string()));
                }
            }
        }
        if prune && removed.iter().any(|r| matches!(r, Removed::Deleted(_))) {
            let layers = self.collect_garbage()?;
            removed.extend(layers.deleted_layers.into_iter().map(Removed::Deleted));
        }
        Ok(removed)
    }

    /// `docker image prune`: dangling images, or (`dangling=false`, i.e. `-a`) every image.
    pub fn prune(&self, filters: &ImageFilters) -> Result<PruneReport> {
        let all = filters.dangling == Some(false);
        let mut f = filters.clone();
        f.dangling = if all { None } else { Some(true) };
        let candidates = self.list(&f)?;
        let mut report = PruneReport::default();
        {
            let _guard = self.records.lock().expect("records lock");
            for s in candidates {
                for t in self.meta.tags_of(&s.id)? {
                    report.removed.push(Removed::Untagged(t.familiar()));
                }
                for d in self.meta.repo_digests_of(&s.id)? {
                    report.removed.push(Removed::Untagged(d.familiar()));
                }
                self.meta.delete_image(&s.id)?;
                report.removed.push(Removed::Deleted(s.id.to_string()));
            }
        }
        let gc = self.collect_garbage()?;
        report
            .removed
            .extend(gc.deleted_layers.into_iter().map(Removed::Deleted));
        report.space_reclaimed = gc.bytes_freed;
        Ok(report)
    }

    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let records = self.meta.list_images()?;
        let mut users: HashMap<Digest, usize> = HashMap::new();
        let mut stacks = Vec::new();
        for rec in &records {
            let chain = berth_core::digest::chain_ids(&self.config_of(&rec.id)?.diff_ids()?);
            for c in &chain {
                *users.entry(c.clone()).or_default() += 1;
            }
            stacks.push((rec, chain));
        }
        let sizes: HashMap<Digest, u64> = users
            .keys()
            .map(|c| {
                (
                    c.clone(),
                    self.snapshots
                        .usage(c.as_ref())
                        .map(|u| u.size)
                        .unwrap_or(0),
                )
            })
            .collect();
        let mut du = DiskUsage {
            layers_size: sizes.values().sum(),
            images: Vec::new(),
        };
        for (rec, chain) in stacks {
            let shared = chain
                .iter()
                .filter(|c| users[*c] > 1)
                .map(|c| sizes[c])
                .sum();
            du.images.push((self.summary(rec)?, shared));
        }
        Ok(du)
    }

    /// Checks credentials against a registry, as `docker login` asks the daemon to.
    pub async fn login(&self, server: &str, auth: RegistryAuth) -> Result<()> {
        let host = crate::pull::login_host(server);
        let client = self.client(&host, Some(auth))?;
        client.check_login().await?;
        Ok(())
    }
}

pub(crate) fn short(id: &Digest) -> String {
    id.digest().chars().take(12).collect()
}

fn parse_until(s: &str) -> Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Some(secs) = crate::time::parse_rfc3339_secs(s) {
        return Ok(secs);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| ImageError::invalid(format!("until filter {s:?}"), e.to_string()))?;
    Ok(crate::time::now_nanos() / 1_000_000_000 - d.as_secs() as i64)
}

/// `reference=PATTERN` matches a tag by shell pattern on its familiar name, with or without tag.
fn reference_matches(pattern: &str, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        let repo = t
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map(|(r, _)| r)
            .unwrap_or(t);
        glob(pattern, t) || glob(pattern, repo)
    })
}

fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Shell-style `*` and `?` matching, `*` not crossing `/` (as Go's path.Match).
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| rec(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && rec(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    rec(pattern.as_bytes(), s.as_bytes())
}

pub(crate) fn manifest_layers(
    svc: &ImageService,
    rec: &ImageRecord,
) -> Result<manifest::ManifestLayers> {
    let bytes = svc.content.read_blob(&rec.manifest.digest, MAX_DOCUMENT)?;
    Ok(manifest::ManifestLayers::from_manifest_bytes(
        &bytes,
        Some(&rec.manifest.media_type),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go_path_match() {
        assert!(glob("bb*", "bb:latest"));
        assert!(glob("*", "bb"));
        assert!(!glob("*", "a/b"));
        assert!(glob("a/*", "a/b"));
        assert!(glob("b?", "bb"));
        assert!(!glob("bb", "bbb"));
    }

    #[test]
    fn reference_filter_matches_repo_or_full_tag() {
        let tags = vec!["localhost:5000/app:1".to_string()];
        assert!(reference_matches("localhost:5000/app", &tags));
        assert!(reference_matches("localhost:5000/app:1", &tags));
        assert!(!reference_matches("app", &tags));
    }
}
