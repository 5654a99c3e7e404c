//! Push: the blobs a registry lacks (mounted from another repository of the same registry
//! when the image came from there), then the manifest under its tag.

use std::sync::Arc;

use berth_core::{Digest, Reference};
use std::pin::Pin;
use std::task::{Context, Poll};

use berth_remote::{BlobSource, PushOutcome, RegistryClient};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{ImageError, Result};
use crate::progress::{short_id, Progress};
use crate::service::{manifest_layers, ImageService, RegistryAuth};

impl ImageService {
    /// Pushes `repo:tag`, or every tag of `repo` when `tag` is `None`.
    pub async fn push(
        self: &Arc<Self>,
        repo: &Reference,
        tag: Option<&str>,
        auth: Option<RegistryAuth>,
        progress: &Progress,
    ) -> Result<()> {
        let targets: Vec<Reference> = match tag.or(repo.tag()) {
            Some(t) => vec![repo.with_tag(t)?],
            None => {
                let mut all: Vec<Reference> = Vec::new();
                for rec in self.meta.list_images()? {
                    all.extend(
                        self.meta
                            .tags_of(&rec.id)?
                            .into_iter()
                            .filter(|t| t.repository() == repo.repository()),
                    );
                }
                all.sort_by_key(|r| r.to_string());
                all
            }
        };
        if targets.is_empty() {
            return Err(ImageError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                repo.familiar_repository()
            )));
        }
        let client = self.client(repo.registry_host(), auth)?;
        progress.status(
            None,
            format!(
                "The push refers to repository [{}]",
                repo.without_tag_or_digest()
            ),
        );
        for target in targets {
            self.push_one(&client, &target, progress).await?;
        }
        Ok(())
    }

    async fn push_one(
        self: &Arc<Self>,
        client: &RegistryClient,
        target: &Reference,
        progress: &Progress,
    ) -> Result<()> {
        let id = self.meta.resolve(&target.to_string()).map_err(|_| {
            ImageError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                target.familiar()
            ))
        })?;
        let rec = self.record(&id)?;
        let m = manifest_layers(self, &rec)?;
        let repo = target.path().to_string();
        // Repositories of the same registry this image is known in: candidates to mount from.
        let mount_from: Option<String> = self
            .meta
            .repo_digests_of(&id)?
            .into_iter()
            .find(|d| d.domain() == target.domain() && d.path() != target.path())
            .map(|d| d.path().to_string());

        let mut uploads = Vec::new();
        for layer in m.layers.iter().rev() {
            progress.status(Some(&short_id(&layer.digest)), "Preparing");
        }
        for layer in &m.layers {
            let svc = self.clone();
            let client = client.clone();
            let repo = repo.clone();
            let digest = layer.digest.clone();
            let size = layer.size;
            let mount_from = mount_from.clone();
            let progress = progress.clone();
            uploads.push(tokio::spawn(async move {
                svc.push_blob(
                    &client,
                    &repo,
                    &digest,
                    size,
                    mount_from.as_deref(),
                    &progress,
                    true,
                )
                .await
            }));
        }
        for u in uploads {
            u.await
                .map_err(|e| ImageError::invalid("push", e.to_string()))??;
        }
        self.push_blob(
            client,
            &repo,
            &m.config.digest,
            m.config.size,
            mount_from.as_deref(),
            progress,
            false,
        )
        .await?;
        let bytes = self
            .content
            .read_blob(&rec.manifest.digest, crate::service::MAX_DOCUMENT)?;
        let tag = target.tag().expect("push targets are tagged");
        let pushed = client
            .put_manifest(&repo, tag, &rec.manifest.media_type, bytes.clone())
            .await?;
        if pushed != rec.manifest.digest {
            return Err(ImageError::invalid(
                format!("push of {target}"),
                format!(
                    "the registry stored the manifest as {pushed}, berth has {}",
                    rec.manifest.digest
                ),
            ));
        }
        {
            let _guard = self.records.lock().expect("records lock");
            self.meta
                .add_repo_digest(&target.with_digest(pushed.clone()), &id)?;
        }
        progress.status(
            None,
            format!("{tag}: digest: {pushed} size: {}", bytes.len()),
        );
        progress.aux(
            serde_json::json!({"Tag": tag, "Digest": pushed.to_string(), "Size": bytes.len()}),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_blob(
        &self,
        client: &RegistryClient,
        repo: &str,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
        progress: &Progress,
        is_layer: bool,
    ) -> Result<()> {
        let id = short_id(digest);
        let path = self.content.blob_path(digest);
        if !self.content.contains(digest) {
            return Err(ImageError::NotFound(format!(
                "blob {digest} of this image is missing from the content store"
            )));
        }
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(ImageError::io(format!("opening blob {digest}")))?;
        let source = if is_layer {
            BlobSource::Reader(Box::pin(ProgressRead {
                inner: file,
                done: 0,
                reported: 0,
                size,
                id: id.clone(),
                progress: progress.clone(),
            }))
        } else {
            BlobSource::File(path)
        };
        let outcome = client
            .push_blob(repo, digest, size, source, mount_from)
            .await?;
        if is_layer {
            match outcome {
                PushOutcome::Exists => progress.status(Some(&id), "Layer already exists"),
                PushOutcome::Mounted => progress.status(
                    Some(&id),
                    format!("Mounted from {}", mount_from.unwrap_or_default()),
                ),
                PushOutcome::Uploaded => progress.status(Some(&id), "Pushed"),
            }
        }
        Ok(())
    }
}

/// Reports "Pushing" progress as the upload reads the blob.
struct ProgressRead {
    inner: tokio::fs::File,
    done: u64,
    reported: u64,
    size: u64,
    id: String,
    progress: Progress,
}

impl AsyncRead for ProgressRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            self.done += n;
            if self.done - self.reported >= 512 * 1024 || (n > 0 && self.done == self.size) {
                self.reported = self.done;
                self.progress
                    .bytes(&self.id, "Pushing", self.done, Some(self.size));
            }
        }
        r
    }
}
