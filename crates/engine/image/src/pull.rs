//! Pull: from a reference to a recorded image whose layers are unpacked.
//!
//! 1. Resolve the reference to a manifest; from an index, pick the platform's manifest.
//! 2. Fetch the config, then every layer blob the content store lacks, all at once. Each
//!    blob streams into a content-store writer (hashed as it lands; an earlier interrupted
//!    ingest is resumed with a range request instead of fetched again).
//! 3. Meanwhile one thread unpacks the layers in order, each read from its blob as it grows
//!    (a follower of the ingest), so extraction overlaps the download.
//! 4. When every blob verified and every layer matched its diff id, record the image with
//!    its tag and repo digest in one transaction.

use std::sync::Arc;

use berth_core::digest::chain_ids;
use berth_core::{Digest, Reference};
use berth_remote::{ClientOptions, Credentials, RegistryClient};
use futures_util::StreamExt;

use crate::error::{ImageError, Result};
use crate::manifest::{self, ImageConfig, ManifestLayers, Parsed, Platform};
use crate::metadata::{ImageRecord, ManifestRef};
use crate::progress::{short_id, Progress};
use crate::service::{ImageService, RegistryAuth, MAX_DOCUMENT};

/// How often a blob download cut off mid-way is resumed before the pull fails.
const MAX_RETRIES: u32 = 3;

/// Where the unpacker reads layer `i` from.
enum LayerSource {
    /// Already unpacked: nothing to read.
    Present,
    /// A complete blob in the content store.
    Blob,
    /// A blob still being written; the follower blocks at its end until more arrives.
    Arriving(berth_content::Follower),
}

/// Holds a blob's fetch gate; the last holder takes it out of the map again.
struct FetchGate<'a> {
    svc: &'a ImageService,
    digest: Digest,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for FetchGate<'_> {
    fn drop(&mut self) {
        // The map and this holder: nobody else waits for the blob. If the map is busy the
        // entry stays, which costs a few bytes and no correctness.
        if let Ok(mut map) = self.svc.fetches.try_lock() {
            if Arc::strong_count(&self.gate) <= 2 {
                map.remove(&self.digest);
            }
        }
    }
}

/// The host `docker login SERVER` means: `https://index.docker.io/v1/` is Docker Hub.
pub fn login_host(server: &str) -> String {
    let s = server.trim();
    if s.is_empty() || s.contains("index.docker.io") || s == "docker.io" {
        return "registry-1.docker.io".into();
    }
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or(s).to_string()
}

impl ImageService {
    pub(crate) fn client(&self, host: &str, auth: Option<RegistryAuth>) -> Result<RegistryClient> {
        let insecure = self.opts.insecure_registries.iter().any(|r| r == host);
        let credentials = auth.map(|a| Credentials {
            username: a.username,
            password: a.password,
        });
        Ok(RegistryClient::new(
            host,
            ClientOptions {
                insecure,
                credentials,
                user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            },
        )?)
    }

    /// Pulls `reference` (for `platform`, default linux/amd64) and returns the image id.
    pub async fn pull(
        self: &Arc<Self>,
        reference: &Reference,
        platform: Option<&str>,
        auth: Option<RegistryAuth>,
        progress: &Progress,
    ) -> Result<Digest> {
        let platform = match platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::default(),
        };
        let _lease = self.leases.read().await;
        let client = self.client(reference.registry_host(), auth)?;
        let repo = reference.path().to_string();
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let top = client.get_manifest(&repo, &wanted).await?;
        progress.status(reference.tag(), format!("Pulling from {repo}"));
        let mut index_digest = None;
        let (manifest_bytes, manifest_type, manifest_digest) =
            match manifest::parse_manifest(&top.bytes, Some(&top.media_type))? {
                Parsed::Index(index) => {
                    let desc = manifest::select_platform(&index, &platform)?;
                    self.content.put(&top.bytes, Some(&top.digest))?;
                    index_digest = Some(top.digest.clone());
                    let m = client.get_manifest(&repo, desc.digest().as_ref()).await?;
                    if &m.digest != desc.digest() {
                        return Err(ImageError::invalid(
                            format!("manifest of {reference}"),
                            format!(
                                "the index names {} but the registry sent {}",
                                desc.digest(),
                                m.digest
                            ),
                        ));
                    }
                    (m.bytes, m.media_type, m.digest)
                }
                Parsed::Manifest(_) => (top.bytes, top.media_type, top.digest),
            };
        let layers = ManifestLayers::from_manifest_bytes(&manifest_bytes, Some(&manifest_type))?;
        self.content.put(&manifest_bytes, Some(&manifest_digest))?;

        // The config: small, fetched whole, verified by put.
        let config_digest = layers.config.digest.clone();
        if !self.content.contains(&config_digest) {
            if layers.config.size > MAX_DOCUMENT {
                return Err(ImageError::invalid(
                    format!("config {config_digest}"),
                    format!("{} bytes is more than a config can be", layers.config.size),
                ));
            }
            let mut stream = client.get_blob(&repo, &config_digest, 0).await?;
            let mut bytes = Vec::with_capacity(layers.config.size as usize);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if (bytes.len() + chunk.len()) as u64 > MAX_DOCUMENT {
                    return Err(ImageError::invalid(
                        format!("config {config_digest}"),
                        "larger than declared",
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            self.content.put(&bytes, Some(&config_digest))?;
        }
        let config = ImageConfig::parse(&self.content.read_blob(&config_digest, MAX_DOCUMENT)?)?;
        let diff_ids = config.diff_ids()?;
        if diff_ids.len() != layers.layers.len() {
            return Err(ImageError::invalid(
                format!("image {reference}"),
                format!(
                    "the manifest has {} layers but the config {} diff ids",
                    layers.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let chain = chain_ids(&diff_ids);
        let previous = self.meta.resolve(&reference.to_string()).ok();

        // Fetch and unpack, overlapped.
        let mut fetched_any = false;
        let mut sources = Vec::with_capacity(layers.layers.len());
        let mut downloads = Vec::new();
        for (i, layer) in layers.layers.iter().enumerate() {
            let id = short_id(&layer.digest);
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<LayerSource>>(1);
            sources.push(rx);
            if self.has_layer(&chain[i]) && self.content.contains(&layer.digest) {
                progress.status(Some(&id), "Already exists");
                let _ = tx.send(Ok(LayerSource::Present));
                continue;
            }
            if self.content.contains(&layer.digest) {
                let _ = tx.send(Ok(LayerSource::Blob));
                continue;
            }
            fetched_any = true;
            progress.status(Some(&id), "Pulling fs layer");
            let svc = self.clone();
            let client = client.clone();
            let repo = repo.clone();
            let digest = layer.digest.clone();
            let size = layer.size;
            let progress = progress.clone();
            downloads.push(tokio::spawn(async move {
                let r = svc
                    .fetch_blob(&client, &repo, &digest, size, &tx, &progress)
                    .await;
                if let Err(e) = &r {
                    // The unpacker may be waiting for this layer's source.
                    let _ = tx.try_send(Err(ImageError::invalid(
                        format!("layer {digest}"),
                        e.to_string(),
                    )));
                }
                r
            }));
        }

        let svc = self.clone();
        let descriptors: Vec<(Digest, u64)> = layers
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        let unpack_progress = progress.clone();
        let diff_ids_for_unpack = diff_ids.clone();
        let chain_for_unpack = chain.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            svc.unpack_all(
                &descriptors,
                &diff_ids_for_unpack,
                &chain_for_unpack,
                sources,
                &unpack_progress,
            )
        });

        let mut first_error = None;
        for d in downloads {
            match d.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(join) => {
                    first_error.get_or_insert(ImageError::invalid("download", join.to_string()));
                }
            }
        }
        let unpacked = unpacker
            .await
            .map_err(|e| ImageError::invalid("unpack", e.to_string()))?;
        if let Some(e) = first_error {
            return Err(e);
        }
        let size = unpacked?;

        // Record it.
        let id = config_digest;
        let repo_digest = reference.with_digest(
            index_digest
                .clone()
                .unwrap_or_else(|| manifest_digest.clone()),
        );
        let record = ImageRecord {
            id: id.clone(),
            manifest: ManifestRef {
                digest: manifest_digest.clone(),
                media_type: manifest_type,
                size: manifest_bytes.len() as u64,
            },
            index: index_digest.clone(),
            created: crate::time::now_nanos() / 1_000_000_000,
            size,
            last_tag_time: Some(crate::time::now_nanos()),
        };
        {
            let _guard = self.records.lock().expect("records lock");
            self.meta.transaction(|txn| {
                txn.put_image(&record)?;
                if reference.tag().is_some() {
                    txn.set_tag(reference, &id)?;
                }
                txn.add_repo_digest(&repo_digest, &id)?;
                Ok(())
            })?;
        }
        progress.status(
            None,
            format!(
                "Digest: {}",
                repo_digest.digest().expect("repo digest has a digest")
            ),
        );
        let familiar = reference.familiar();
        if !fetched_any && previous.as_ref() == Some(&id) {
            progress.status(None, format!("Status: Image is up to date for {familiar}"));
        } else {
            progress.status(
                None,
                format!("Status: Downloaded newer image for {familiar}"),
            );
        }
        Ok(id)
    }

    /// Streams one blob into the content store, telling the unpacker where to follow it.
    async fn fetch_blob(
        self: &Arc<Self>,
        client: &RegistryClient,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &std::sync::mpsc::SyncSender<Result<LayerSource>>,
        progress: &Progress,
    ) -> Result<()> {
        let id = short_id(digest);
        // One fetch of a blob at a time; a second pull of it waits and then finds it stored.
        let gate = {
            let mut map = self.fetches.lock().await;
            FetchGate {
                svc: self,
                digest: digest.clone(),
                gate: map.entry(digest.clone()).or_default().clone(),
            }
        };
        let _fetching = gate.gate.lock().await;
        if self.content.contains(digest) {
            let _ = source.send(Ok(LayerSource::Blob));
            return Ok(());
        }
        let content = self.content.clone();
        let d = digest.clone();
        let mut writer = tokio::task::spawn_blocking(move || content.writer(&d, Some(size)))
            .await
            .map_err(|e| ImageError::invalid("ingest", e.to_string()))??;
        let _ = source.send(Ok(LayerSource::Arriving(writer.follower())));
        let offset = writer.offset();
        let mut stream = client.get_blob(repo, digest, offset).await?;
        // Writes happen on a blocking thread, fed through a small channel. `None` means the
        // download is complete: only then is the blob committed; if the channel just closes,
        // the writer is dropped and what arrived stays for a later pull to resume.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<bytes::Bytes>>(32);
        let write_task = tokio::task::spawn_blocking(move || -> Result<Option<Digest>> {
            use std::io::Write;
            while let Some(item) = rx.blocking_recv() {
                match item {
                    Some(chunk) => {
                        if let Err(e) = writer.write_all(&chunk) {
                            let _ = writer.abort();
                            return Err(ImageError::Io {
                                what: "writing a layer blob".into(),
                                source: e,
                            });
                        }
                    }
                    None => return Ok(Some(writer.commit()?)),
                }
            }
            Ok(None)
        });
        let mut done = offset;
        let mut last_report = 0u64;
        let mut failure = None;
        let mut retries = 0;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    done += chunk.len() as u64;
                    if tx.send(Some(chunk)).await.is_err() {
                        break;
                    }
                    if done - last_report >= 512 * 1024 || done == size {
                        last_report = done;
                        progress.bytes(&id, "Downloading", done, Some(size));
                    }
                }
                Some(Err(e)) if retries < MAX_RETRIES && done < size => {
                    // A connection cut mid-blob: go on from where it stopped, as docker does.
                    retries += 1;
                    progress.status(
                        Some(&id),
                        format!("Retrying ({retries}/{MAX_RETRIES}) after: {e}"),
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(200 << retries)).await;
                    match client.get_blob(repo, digest, done).await {
                        Ok(s) => stream = s,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None => {
                    let _ = tx.send(None).await;
                    break;
                }
            }
        }
        drop(tx);
        let written = write_task
            .await
            .map_err(|e| ImageError::invalid("ingest", e.to_string()))?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        progress.status(Some(&id), "Verifying Checksum");
        if written?.is_none() {
            return Err(ImageError::invalid(
                format!("layer {digest}"),
                "its download stopped before the end",
            ));
        }
        progress.status(Some(&id), "Download complete");
        Ok(())
    }

    /// Unpacks the layers in order, each from wherever its source says, and returns the
    /// image's uncompressed size.
    fn unpack_all(
        &self,
        layers: &[(Digest, u64)],
        diff_ids: &[Digest],
        chain: &[Digest],
        sources: Vec<std::sync::mpsc::Receiver<Result<LayerSource>>>,
        progress: &Progress,
    ) -> Result<u64> {
        let mut total = 0;
        for (i, rx) in sources.into_iter().enumerate() {
            let (digest, size) = &layers[i];
            let id = short_id(digest);
            let source = rx.recv().map_err(|_| {
                ImageError::invalid(format!("layer {digest}"), "its download stopped")
            })??;
            let present = matches!(source, LayerSource::Present);
            let parent = if i == 0 { None } else { Some(&chain[i - 1]) };
            let report = |n: u64| progress.bytes(&id, "Extracting", n, Some(*size));
            let mut last = 0u64;
            let tick = |n: u64| {
                if n - last >= 1 << 20 || n == *size {
                    last = n;
                    report(n);
                }
            };
            let blob: Option<Box<dyn std::io::Read + Send>> = match source {
                LayerSource::Present => None,
                LayerSource::Blob => Some(Box::new(std::io::BufReader::with_capacity(
                    1 << 20,
                    self.content.open_blob(digest)?,
                ))),
                LayerSource::Arriving(follower) => Some(Box::new(follower)),
            };
            if let Some(inner) = blob {
                let r = crate::unpack::CountingReader {
                    inner,
                    count: 0,
                    tick,
                };
                self.unpack_layer(parent, &chain[i], &diff_ids[i], r)?;
            }
            total += self
                .snapshots
                .usage(chain[i].as_ref())
                .map(|u| u.size)
                .unwrap_or(0);
            if present {
                continue;
            }
            progress.status(Some(&id), "Pull complete");
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers_map_to_hosts() {
        assert_eq!(
            login_host("https://index.docker.io/v1/"),
            "registry-1.docker.io"
        );
        assert_eq!(login_host(""), "registry-1.docker.io");
        assert_eq!(login_host("localhost:5000"), "localhost:5000");
        assert_eq!(login_host("https://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
