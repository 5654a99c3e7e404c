//! [`RegistryClient`]: one registry host, its transport, its credentials and its tokens.
//!
//! Every operation goes through [`RegistryClient::send`]: find the base URL (once, by pinging
//! `/v2/`), attach the authorization the registry asked for at the ping (none, Basic, or a Bearer
//! token for the operation's scopes), and when the registry still answers 401, act on its new
//! challenge and retry once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use berth_core::Digest;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, TryStreamExt};
use oci_spec::image::DigestAlgorithm;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use sha2::Digest as _;
use tokio::io::AsyncRead;

use crate::auth::{Challenge, Credentials, TokenResponse};
use crate::error::{status_error, RemoteError};

/// Largest manifest accepted; real ones are a few KiB, indexes of many platforms some 100 KiB.
pub const MANIFEST_SIZE_LIMIT: usize = 4 << 20;

/// The manifest types asked for: OCI index and manifest, Docker schema2 list and manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Buffer size when streaming a file or reader to the registry.
const UPLOAD_CHUNK: usize = 256 << 10;

/// Tokens are renewed this long before the token server says they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Allow plain HTTP and TLS certificates that do not verify. Loopback hosts (`localhost`,
    /// `127.0.0.0/8`, `::1`) are always treated as insecure, as Docker does.
    pub insecure: bool,
    /// Sent as HTTP Basic to the registry or to its token server; anonymous when `None`.
    pub credentials: Option<Credentials>,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            credentials: None,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A manifest (or index) as the registry served it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The exact bytes; their digest is `digest`.
    pub bytes: Bytes,
    /// From the `Content-Type` header, or the `mediaType` field when the header is missing.
    pub media_type: String,
    pub digest: Digest,
}

/// What [`RegistryClient::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The repository already had the blob; nothing was sent.
    Exists,
    /// The registry linked the blob from the `mount_from` repository; nothing was sent.
    Mounted,
    /// The content was uploaded.
    Uploaded,
}

/// The content of a blob to push.
pub enum BlobSource {
    Bytes(Bytes),
    /// A file, streamed; its length must be the blob size.
    File(PathBuf),
    /// Any reader, streamed; it must yield exactly the blob size.
    Reader(Pin<Box<dyn AsyncRead + Send>>),
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            BlobSource::File(p) => write!(f, "File({})", p.display()),
            BlobSource::Reader(_) => f.write_str("Reader"),
        }
    }
}

/// A blob being downloaded: a stream of chunks as they arrive from the socket.
///
/// The bytes are not verified against the digest here: the caller hashes them as it stores them
/// (and must include the first `offset` bytes it already had).
pub struct BlobStream {
    /// Where this stream starts in the blob.
    pub offset: u64,
    /// The size of the whole blob, when the registry said.
    pub total: Option<u64>,
    host: String,
    /// Bytes still to drop when the registry ignored the Range header and sent from 0.
    skip: u64,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("offset", &self.offset)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RemoteError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let chunk = match self.body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(source))) => {
                    let host = self.host.clone();
                    return Poll::Ready(Some(Err(RemoteError::Unreachable {
                        host,
                        error: source,
                    })));
                }
                Poll::Ready(Some(Ok(chunk))) => chunk,
            };
            if self.skip == 0 {
                return Poll::Ready(Some(Ok(chunk)));
            }
            let drop = self.skip.min(chunk.len() as u64);
            self.skip -= drop;
            if drop < chunk.len() as u64 {
                return Poll::Ready(Some(Ok(chunk.slice(drop as usize..))));
            }
        }
    }
}

impl BlobStream {
    /// The blob as an `AsyncRead`, e.g. to feed a decompressor.
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.map_err(std::io::Error::other))
    }
}

/// A client of one registry host. Cheap to clone: clones share the connection pool, the base
/// URL found at the first request and the bearer tokens, which are cached per scope.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("host", &self.inner.host)
            .finish_non_exhaustive()
    }
}

struct Inner {
    host: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// Plain HTTP may be tried when HTTPS fails.
    allow_http: bool,
    /// `https://host/` or `http://host/`, decided by the first ping.
    base: tokio::sync::OnceCell<Url>,
    /// The latest challenge seen, from the ping or a 401.
    challenge: Mutex<Challenge>,
    /// Bearer tokens by their space-separated scopes. Held across a token fetch so that parallel
    /// layer downloads wait for one fetch instead of each making their own.
    tokens: tokio::sync::Mutex<HashMap<String, CachedToken>>,
}

struct CachedToken {
    header: HeaderValue,
    renew_at: Instant,
}

/// Whether `host` (with optional port) is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// Repository names as the distribution spec allows them: lower-case components separated by
/// `/`; anything else could not be put in a URL path safely.
fn check_repo(repo: &str) -> Result<(), RemoteError> {
    let valid = !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        });
    if valid {
        Ok(())
    } else {
        Err(RemoteError::InvalidArgument {
            what: format!("repository name {repo:?}"),
            reason: "expected lower-case components of [a-z0-9._-] separated by /".into(),
        })
    }
}

/// A tag or a digest, as the last component of a manifest URL.
enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl ManifestRef {
    fn parse(reference: &str) -> Result<Self, RemoteError> {
        if reference.contains(':') {
            return reference
                .parse::<Digest>()
                .map(ManifestRef::Digest)
                .map_err(|e| RemoteError::InvalidArgument {
                    what: format!("digest {reference:?}"),
                    reason: e.to_string(),
                });
        }
        let valid = (1..=128).contains(&reference.len())
            && reference.as_bytes()[0] != b'.'
            && reference.as_bytes()[0] != b'-'
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid {
            Ok(ManifestRef::Tag(reference.to_string()))
        } else {
            Err(RemoteError::InvalidArgument {
                what: format!("tag {reference:?}"),
                reason: "expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}".into(),
            })
        }
    }

    /// `repo:tag` or `repo@digest`.
    fn describe(&self, repo: &str) -> String {
        match self {
            ManifestRef::Tag(t) => format!("{repo}:{t}"),
            ManifestRef::Digest(d) => format!("{repo}@{d}"),
        }
    }

    fn path(&self) -> String {
        match self {
            ManifestRef::Tag(t) => t.clone(),
            ManifestRef::Digest(d) => d.to_string(),
        }
    }
}

/// The digest of `bytes` with the same algorithm as `like`. Algorithms other than sha256 and
/// sha512 are refused.
/// The digest of `bytes`, which must be `expected`; a mismatch names `what` and both digests.
fn verify_digest(what: &str, expected: &Digest, bytes: &[u8]) -> Result<Digest, RemoteError> {
    let actual = digest_like(expected, bytes)?;
    if &actual != expected {
        return Err(RemoteError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(actual)
}

fn digest_like(like: &Digest, bytes: &[u8]) -> Result<Digest, RemoteError> {
    let hex = match like.algorithm() {
        DigestAlgorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
        DigestAlgorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        other => {
            return Err(RemoteError::InvalidArgument {
                what: format!("digest {like}"),
                reason: format!("unsupported digest algorithm {other}"),
            })
        }
    };
    format!("{}:{hex}", like.algorithm())
        .parse()
        .map_err(|e: oci_spec::OciSpecError| RemoteError::InvalidArgument {
            what: format!("digest {like}"),
            reason: e.to_string(),
        })
}

/// The challenge of a 401 answer; Bearer is preferred when several are offered.
fn challenge_of(resp: &Response) -> Option<Challenge> {
    let all: Vec<Challenge> = resp
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        .collect();
    all.iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(all.first())
        .cloned()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `bytes <start>-<end>/<total>`: the start and the total (`None` for `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let start = span.split_once('-')?.0.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

/// The `rel="next"` target of a `Link` header, as used by tag list pagination.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"next\"") || link.contains("rel=next"))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link.find('>')?;
            Some(link[start..end].to_string())
        })
}

impl RegistryClient {
    /// A client for `host` (`localhost:5000`, `registry-1.docker.io`). No request is made yet.
    pub fn new(host: &str, opts: ClientOptions) -> Result<Self, RemoteError> {
        let invalid = |reason: &str| RemoteError::InvalidHost {
            host: host.to_string(),
            reason: reason.to_string(),
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(invalid("expected host[:port]"));
        }
        let probe = Url::parse(&format!("https://{host}/")).map_err(|e| invalid(&e.to_string()))?;
        let allow_http = opts.insecure || is_loopback(&probe);
        // reqwest is built without a bundled crypto provider; ring builds without cmake. An
        // error only means another part of the process installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .tls_danger_accept_invalid_certs(allow_http)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                host: host.to_string(),
                http,
                credentials: opts.credentials,
                allow_http,
                base: tokio::sync::OnceCell::new(),
                challenge: Mutex::new(Challenge::None),
                tokens: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// Checks the credentials with `GET /v2/`, as `docker login` does: Ok when the registry
    /// (or its token server) accepts them, an `Unauthorized` error otherwise.
    pub async fn check_login(&self) -> Result<(), RemoteError> {
        let what = format!("login to {}", self.inner.host);
        let resp = self
            .send(
                &what,
                &[],
                |http, base| Ok(http.get(base.join("v2/")?)),
                true,
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.fail(&what, resp).await)
        }
    }

    /// Fetches a manifest or index by tag or digest. The digest is verified against the bytes
    /// when `reference` is a digest, else computed and compared with `Docker-Content-Digest`.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, RemoteError> {
        check_repo(repo)?;
        let mref = ManifestRef::parse(reference)?;
        let what = format!("manifest {}/{}", self.inner.host, mref.describe(repo));
        let path = format!("v2/{repo}/manifests/{}", mref.path());
        let resp = self
            .send(
                &what,
                &[pull_scope(repo)],
                |http, base| {
                    Ok(http
                        .get(base.join(&path)?)
                        .header(header::ACCEPT, MANIFEST_ACCEPT))
                },
                true,
            )
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(self.fail(&what, resp).await);
        }
        let headers = resp.headers().clone();
        let bytes = self.read_limited(&what, resp, MANIFEST_SIZE_LIMIT).await?;
        let announced =
            header_str(&headers, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        let digest = match (&mref, announced) {
            (ManifestRef::Digest(expected), _) => verify_digest(&what, expected, &bytes)?,
            (ManifestRef::Tag(_), Some(announced)) => verify_digest(&what, &announced, &bytes)?,
            (ManifestRef::Tag(_), None) => berth_core::sha256_digest(&bytes),
        };
        let media_type = match header_str(&headers, "content-type")
            .map(|ct| ct.split(';').next().unwrap_or(ct).trim())
            .filter(|ct| !ct.is_empty() && *ct != "application/json" && *ct != "text/plain")
        {
            Some(ct) => ct.to_string(),
            None => media_type_field(&bytes).ok_or_else(|| RemoteError::Protocol {
                host: self.inner.host.clone(),
                what: what.clone(),
                reason: "no Content-Type and no mediaType field".into(),
            })?,
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The size of a blob (`HEAD`), or `None` when the repository does not have it.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, RemoteError> {
        self.blob_size_scoped(repo, digest, &[pull_scope(repo)])
            .await
    }

    async fn blob_size_scoped(
        &self,
        repo: &str,
        digest: &Digest,
        scopes: &[String],
    ) -> Result<Option<u64>, RemoteError> {
        check_repo(repo)?;
        let what = format!("blob {}/{repo}@{digest}", self.inner.host);
        let path = format!("v2/{repo}/blobs/{digest}");
        let resp = self
            .send(
                &what,
                scopes,
                |http, base| Ok(http.head(base.join(&path)?)),
                true,
            )
            .await?;
        match resp.status() {
            StatusCode::OK => {
                let len = header_str(resp.headers(), "content-length")
                    .and_then(|l| l.parse().ok())
                    .or(resp.content_length());
                Ok(Some(len.ok_or_else(|| RemoteError::Protocol {
                    host: self.inner.host.clone(),
                    what,
                    reason: "HEAD answer without Content-Length".into(),
                })?))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.fail(&what, resp).await),
        }
    }

    /// Streams a blob from byte `offset` on (a Range request, to resume an interrupted pull),
    /// following redirects to storage backends.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, RemoteError> {
        check_repo(repo)?;
        let what = format!("blob {}/{repo}@{digest}", self.inner.host);
        let path = format!("v2/{repo}/blobs/{digest}");
        let resp = self
            .send(
                &what,
                &[pull_scope(repo)],
                |http, base| {
                    let req = http.get(base.join(&path)?);
                    Ok(if offset > 0 {
                        req.header(header::RANGE, format!("bytes={offset}-"))
                    } else {
                        req
                    })
                },
                true,
            )
            .await?;
        let protocol = |reason: String| RemoteError::Protocol {
            host: self.inner.host.clone(),
            what: what.clone(),
            reason,
        };
        let (total, skip) = match resp.status() {
            StatusCode::OK => (resp.content_length(), offset),
            StatusCode::PARTIAL_CONTENT => {
                let range = header_str(resp.headers(), "content-range")
                    .ok_or_else(|| protocol("206 without Content-Range".into()))?;
                let (start, total) = parse_content_range(range)
                    .ok_or_else(|| protocol(format!("bad Content-Range {range:?}")))?;
                if start != offset {
                    return Err(protocol(format!(
                        "asked for bytes from {offset}, got Content-Range {range:?}"
                    )));
                }
                let total = total.or(resp.content_length().map(|l| l + offset));
                (total, 0)
            }
            _ => return Err(self.fail(&what, resp).await),
        };
        Ok(BlobStream {
            offset,
            total,
            host: self.inner.host.clone(),
            skip,
            body: Box::pin(resp.bytes_stream()),
        })
    }

    /// Uploads a blob unless the repository already has it. With `mount_from`, first asks the
    /// registry to link the blob from that repository of the same registry; otherwise (or when
    /// the registry declines) the content is streamed in one `PUT`.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: BlobSource,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome, RemoteError> {
        check_repo(repo)?;
        if let Some(from) = mount_from {
            check_repo(from)?;
        }
        let mut scopes = vec![push_scope(repo)];
        scopes.extend(mount_from.map(pull_scope));
        if self
            .blob_size_scoped(repo, digest, &scopes)
            .await?
            .is_some()
        {
            return Ok(PushOutcome::Exists);
        }
        let what = format!("blob upload {}/{repo}@{digest}", self.inner.host);
        let start = match mount_from {
            Some(from) => format!("v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
            None => format!("v2/{repo}/blobs/uploads/"),
        };
        let resp = self
            .send(
                &what,
                &scopes,
                |http, base| {
                    Ok(http
                        .post(base.join(&start)?)
                        .header(header::CONTENT_LENGTH, "0"))
                },
                true,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => return Ok(PushOutcome::Mounted),
            StatusCode::ACCEPTED => {}
            _ => return Err(self.fail(&what, resp).await),
        }
        let mut location = self.location(&what, &resp).await?;
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_ref());

        let body = match source {
            BlobSource::Bytes(bytes) => {
                if bytes.len() as u64 != size {
                    return Err(RemoteError::InvalidArgument {
                        what,
                        reason: format!("{} bytes given for a blob of {size}", bytes.len()),
                    });
                }
                reqwest::Body::from(bytes)
            }
            BlobSource::File(path) => {
                let file =
                    tokio::fs::File::open(&path)
                        .await
                        .map_err(|source| RemoteError::Io {
                            path: path.clone(),
                            source,
                        })?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|source| RemoteError::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                if len != size {
                    return Err(RemoteError::InvalidArgument {
                        what,
                        reason: format!("{} has {len} bytes, the blob {size}", path.display()),
                    });
                }
                reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                    file,
                    UPLOAD_CHUNK,
                ))
            }
            BlobSource::Reader(reader) => reqwest::Body::wrap_stream(
                tokio_util::io::ReaderStream::with_capacity(reader, UPLOAD_CHUNK),
            ),
        };
        // The body can be sent once only, so no retry: the token was just used for the POST.
        let body = Mutex::new(Some(body));
        let resp = self
            .send(
                &what,
                &scopes,
                |http, _| {
                    let body = body.lock().expect("body lock").take();
                    let body = body.unwrap_or_else(|| reqwest::Body::from(Bytes::new()));
                    Ok(http
                        .put(location.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_LENGTH, size)
                        .body(body))
                },
                false,
            )
            .await?;
        if resp.status() == StatusCode::CREATED {
            Ok(PushOutcome::Uploaded)
        } else {
            Err(self.fail(&what, resp).await)
        }
    }

    /// Stores a manifest under a tag or its digest; returns the digest of `bytes`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest, RemoteError> {
        check_repo(repo)?;
        let mref = ManifestRef::parse(reference)?;
        let what = format!("manifest push {}/{}", self.inner.host, mref.describe(repo));
        let digest = match &mref {
            ManifestRef::Digest(expected) => verify_digest(&what, expected, &bytes)?,
            ManifestRef::Tag(_) => berth_core::sha256_digest(&bytes),
        };
        let path = format!("v2/{repo}/manifests/{}", mref.path());
        let bytes = Bytes::from(bytes);
        let resp = self
            .send(
                &what,
                &[push_scope(repo)],
                |http, base| {
                    Ok(http
                        .put(base.join(&path)?)
                        .header(header::CONTENT_TYPE, media_type)
                        .body(bytes.clone()))
                },
                true,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(&what, resp).await);
        }
        if let Some(announced) = header_str(resp.headers(), "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok())
        {
            if announced.algorithm() == digest.algorithm() && announced != digest {
                return Err(RemoteError::DigestMismatch {
                    what,
                    expected: digest,
                    actual: announced,
                });
            }
        }
        Ok(digest)
    }

    /// All tags of a repository, following `Link` pagination.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>, RemoteError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        check_repo(repo)?;
        let what = format!("tags of {}/{repo}", self.inner.host);
        let mut next = Some(format!("v2/{repo}/tags/list"));
        let mut tags = Vec::new();
        while let Some(page) = next.take() {
            let resp = self
                .send(
                    &what,
                    &[pull_scope(repo)],
                    |http, base| Ok(http.get(base.join(&page)?)),
                    true,
                )
                .await?;
            if resp.status() != StatusCode::OK {
                return Err(self.fail(&what, resp).await);
            }
            next = next_link(resp.headers());
            let body = self.read_limited(&what, resp, MANIFEST_SIZE_LIMIT).await?;
            let list: TagList =
                serde_json::from_slice(&body).map_err(|e| RemoteError::Protocol {
                    host: self.inner.host.clone(),
                    what: what.clone(),
                    reason: format!("bad tag list: {e}"),
                })?;
            tags.extend(list.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    /// Sends one request built by `build` against the base URL, with the authorization the
    /// registry wants for `scopes`. On 401, when `retry`, acts on the new challenge (fresh
    /// token, or Basic credentials not sent yet) and sends once more. Error statuses are
    /// returned as responses; only transport failures are errors here.
    async fn send(
        &self,
        what: &str,
        scopes: &[String],
        build: impl Fn(&reqwest::Client, &Url) -> Result<RequestBuilder, url::ParseError>,
        retry: bool,
    ) -> Result<Response, RemoteError> {
        let base = self.base().await?;
        let auth = self.authorization(scopes).await?;
        let resp = self
            .execute(what, build(&self.inner.http, base), &auth)
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED || !retry {
            return Ok(resp);
        }
        let Some(challenge) = challenge_of(&resp) else {
            return Ok(resp);
        };
        *self.inner.challenge.lock().expect("challenge lock") = challenge.clone();
        let auth = match challenge {
            Challenge::None => return Ok(resp),
            Challenge::Basic => match &self.inner.credentials {
                Some(creds) if auth.is_none() => self.header_value(&creds.basic_header())?,
                _ => return Ok(resp),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = scopes.to_vec();
                if let Some(scope) = scope.filter(|s| !scopes.contains(s)) {
                    scopes.push(scope);
                }
                self.bearer(&realm, service.as_deref(), &scopes, true)
                    .await?
            }
        };
        self.execute(what, build(&self.inner.http, base), &Some(auth))
            .await
    }

    async fn execute(
        &self,
        what: &str,
        req: Result<RequestBuilder, url::ParseError>,
        auth: &Option<HeaderValue>,
    ) -> Result<Response, RemoteError> {
        let req = req.map_err(|e| RemoteError::InvalidArgument {
            what: what.to_string(),
            reason: format!("cannot build URL: {e}"),
        })?;
        let req = match auth {
            Some(value) => req.header(header::AUTHORIZATION, value.clone()),
            None => req,
        };
        req.send().await.map_err(|source| RemoteError::Unreachable {
            host: self.inner.host.clone(),
            error: source,
        })
    }

    /// The base URL, found by the first call: `GET /v2/` over HTTPS, then over plain HTTP when
    /// that is allowed and HTTPS failed. The ping's challenge tells how to authenticate.
    async fn base(&self) -> Result<&Url, RemoteError> {
        self.inner
            .base
            .get_or_try_init(|| async {
                let host = &self.inner.host;
                let https = Url::parse(&format!("https://{host}/")).expect("checked in new");
                // With a plain HTTP fallback, do not wait long on a server that never answers
                // a TLS handshake.
                let probe_timeout = if self.inner.allow_http {
                    Some(Duration::from_secs(10))
                } else {
                    None
                };
                let err = match self.ping(&https, probe_timeout).await {
                    Ok(()) => return Ok(https),
                    Err(err) => err,
                };
                if self.inner.allow_http {
                    let http = Url::parse(&format!("http://{host}/")).expect("checked in new");
                    if self.ping(&http, None).await.is_ok() {
                        return Ok(http);
                    }
                }
                Err(RemoteError::Unreachable {
                    host: host.clone(),
                    error: err,
                })
            })
            .await
    }

    async fn ping(&self, base: &Url, timeout: Option<Duration>) -> Result<(), reqwest::Error> {
        let url = base.join("v2/").expect("a constant path");
        let mut req = self.inner.http.get(url);
        if let Some(timeout) = timeout {
            req = req.timeout(timeout);
        }
        let resp = req.send().await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let Some(challenge) = challenge_of(&resp) {
                *self.inner.challenge.lock().expect("challenge lock") = challenge;
            }
        }
        Ok(())
    }

    /// The `Authorization` value for `scopes` under the current challenge, if any.
    async fn authorization(&self, scopes: &[String]) -> Result<Option<HeaderValue>, RemoteError> {
        let challenge = self.inner.challenge.lock().expect("challenge lock").clone();
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => match &self.inner.credentials {
                Some(creds) => Ok(Some(self.header_value(&creds.basic_header())?)),
                None => Ok(None),
            },
            Challenge::Bearer { realm, service, .. } => Ok(Some(
                self.bearer(&realm, service.as_deref(), scopes, false)
                    .await?,
            )),
        }
    }

    /// A bearer token for `scopes`, from the cache unless `refresh`, else from the token server
    /// (`GET realm?service=..&scope=..`, with the credentials as Basic when there are some).
    async fn bearer(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        refresh: bool,
    ) -> Result<HeaderValue, RemoteError> {
        let key = scopes.join(" ");
        let mut tokens = self.inner.tokens.lock().await;
        if !refresh {
            if let Some(cached) = tokens.get(&key).filter(|t| t.renew_at > Instant::now()) {
                return Ok(cached.header.clone());
            }
        }
        let token_error = |reason: String| RemoteError::Token {
            host: self.inner.host.clone(),
            realm: realm.to_string(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| token_error(format!("bad realm: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
            if let Some(creds) = &self.inner.credentials {
                query.append_pair("account", &creds.username);
            }
        }
        let mut req = self.inner.http.get(url);
        if let Some(creds) = &self.inner.credentials {
            req = req.header(header::AUTHORIZATION, creds.basic_header());
        }
        let what = if scopes.is_empty() {
            "token".to_string()
        } else {
            format!("token for {key}")
        };
        let resp = req
            .send()
            .await
            .map_err(|e| token_error(format!("unreachable: {e}")))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = self.read_limited(&what, resp, 64 << 10).await?;
            return Err(RemoteError::Unauthorized {
                host: self.inner.host.clone(),
                what,
                message: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        if !status.is_success() {
            return Err(token_error(format!("answered {status}")));
        }
        let body = self.read_limited(&what, resp, 1 << 20).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| token_error(format!("bad token answer: {e}")))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_error("answer without token".into()))?;
        let header = self.header_value(&format!("Bearer {token}"))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
        tokens.insert(
            key,
            CachedToken {
                header: header.clone(),
                renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
            },
        );
        Ok(header)
    }

    fn header_value(&self, value: &str) -> Result<HeaderValue, RemoteError> {
        let mut value = HeaderValue::from_str(value).map_err(|_| RemoteError::Protocol {
            host: self.inner.host.clone(),
            what: "authorization".into(),
            reason: "credentials or token not valid in an HTTP header".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// The upload URL from a `Location` header, which may be relative to the base.
    async fn location(&self, what: &str, resp: &Response) -> Result<Url, RemoteError> {
        let base = self.base().await?;
        header_str(resp.headers(), "location")
            .and_then(|loc| base.join(loc).ok())
            .ok_or_else(|| RemoteError::Protocol {
                host: self.inner.host.clone(),
                what: what.to_string(),
                reason: "upload answer without a valid Location".into(),
            })
    }

    /// Reads a whole (small) body, refusing more than `limit` bytes.
    async fn read_limited(
        &self,
        what: &str,
        mut resp: Response,
        limit: usize,
    ) -> Result<Bytes, RemoteError> {
        let too_large = || RemoteError::ManifestTooLarge {
            what: what.to_string(),
            limit,
        };
        let announced = resp.content_length().unwrap_or(0);
        if announced > limit as u64 {
            return Err(too_large());
        }
        let mut buf = BytesMut::with_capacity(announced as usize);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|source| RemoteError::Unreachable {
                host: self.inner.host.clone(),
                error: source,
            })?
        {
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// The error for an unexpected status, from the registry's error body.
    async fn fail(&self, what: &str, resp: Response) -> RemoteError {
        let status = resp.status();
        let body = self
            .read_limited(what, resp, 64 << 10)
            .await
            .unwrap_or_default();
        status_error(&self.inner.host, what, status, &body)
    }
}

/// The `mediaType` field of a manifest, for registries that send no usable Content-Type.
fn media_type_field(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct WithMediaType {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<WithMediaType>(bytes)
        .ok()?
        .media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for (host, loopback) in [
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("registry-1.docker.io", false),
            ("10.0.0.1:5000", false),
            ("localhost.example.com", false),
        ] {
            let url = Url::parse(&format!("https://{host}/")).unwrap();
            assert_eq!(is_loopback(&url), loopback, "{host}");
        }
    }

    #[test]
    fn content_range_and_links() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
    }

    #[tokio::test]
    async fn blob_stream_drops_what_a_range_ignoring_server_resends() {
        use futures_util::StreamExt;
        let chunks: Vec<reqwest::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"0123")),
            Ok(Bytes::from_static(b"4567")),
            Ok(Bytes::from_static(b"89")),
        ];
        let stream = BlobStream {
            offset: 6,
            total: Some(10),
            host: "h".into(),
            skip: 6,
            body: Box::pin(futures_util::stream::iter(chunks)),
        };
        let got: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        assert_eq!(got, [Bytes::from_static(b"67"), Bytes::from_static(b"89")]);
    }

    #[test]
    fn names_and_references_are_checked() {
        assert!(check_repo("library/busybox").is_ok());
        assert!(check_repo("a/b-c/d_e.f").is_ok());
        for bad in ["", "App", "a//b", "a/../b", "/a", "a/", "a?b", "a b"] {
            assert!(check_repo(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            ManifestRef::parse("v1.0_rc-1"),
            Ok(ManifestRef::Tag(_))
        ));
        assert!(matches!(
            ManifestRef::parse(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
            Ok(ManifestRef::Digest(_))
        ));
        for bad in ["", ".x", "-x", "a/b", "sha256:zz", &"x".repeat(129)] {
            assert!(ManifestRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
