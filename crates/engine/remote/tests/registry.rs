//! The client against the real distribution server (`docker-registry`, registry:2) on a
//! loopback port, with `skopeo` as an independent reader. Each test starts its own registry in
//! a temporary directory and kills it by pid when done.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use berth_core::{sha256_digest, Digest, ErrorKind, HasKind};
use berth_remote::{
    BlobSource, ClientOptions, Credentials, PushOutcome, RegistryClient, RemoteError,
};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A `docker-registry serve` process on 127.0.0.1, its storage in a temp dir.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts a registry; `auth` is a YAML `auth:` section (or empty) that may use `{dir}`.
    fn start(auth: &str) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, auth)
    }

    fn start_in(dir: tempfile::TempDir, auth: &str) -> Result<Registry> {
        let port = free_port()?;
        let root = dir.path().display().to_string();
        let config = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n\
             {}\n",
            auth.replace("{dir}", &root)
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let mut registry = Registry { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = registry.child.try_wait()? {
                bail!("registry exited with {status}: {}", registry.log());
            }
            if Instant::now() > deadline {
                bail!("registry did not listen on {port}: {}", registry.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn client(&self, credentials: Option<Credentials>) -> RegistryClient {
        RegistryClient::new(
            &self.host(),
            ClientOptions {
                credentials,
                ..ClientOptions::default()
            },
        )
        .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Child::kill signals this process by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Deterministic pseudo-random bytes (xorshift), so blobs do not compress or repeat.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An image of one layer: pushes layer and config, returns the manifest bytes.
async fn push_image(client: &RegistryClient, repo: &str, layer: &[u8]) -> Result<Vec<u8>> {
    let layer_digest = sha256_digest(layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [layer_digest.to_string()] },
        "config": {}
    }))?;
    let config_digest = sha256_digest(&config);
    let outcome = client
        .push_blob(
            repo,
            &layer_digest,
            layer.len() as u64,
            BlobSource::Bytes(Bytes::copy_from_slice(layer)),
            None,
        )
        .await?;
    assert_eq!(outcome, PushOutcome::Uploaded);
    client
        .push_blob(
            repo,
            &config_digest,
            config.len() as u64,
            BlobSource::Bytes(config.clone().into()),
            None,
        )
        .await?;
    Ok(serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len()
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest.to_string(),
            "size": layer.len()
        }]
    }))?)
}

async fn fetch_blob(
    client: &RegistryClient,
    repo: &str,
    digest: &Digest,
    offset: u64,
) -> Result<(Vec<u8>, Option<u64>)> {
    let mut stream = client.get_blob(repo, digest, offset).await?;
    let total = stream.total;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok((out, total))
}

fn skopeo_digest(host: &str, image: &str, creds: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if let Some(creds) = creds {
        cmd.args(["--creds", creds]);
    }
    let out = cmd
        .arg(format!("docker://{host}/{image}"))
        .stdin(Stdio::null())
        .output()
        .context("running skopeo (apt-get install skopeo)")?;
    if !out.status.success() {
        bail!("skopeo inspect: {}", String::from_utf8_lossy(&out.stderr));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(json["Digest"].as_str().context("no Digest")?.to_string())
}

#[tokio::test]
async fn push_then_pull_through_the_distribution_server() -> Result<()> {
    let registry = Registry::start("")?;
    let client = registry.client(None);
    let host = registry.host();
    let layer = blob(3 << 20, 7);
    let layer_digest = sha256_digest(&layer);
    let manifest = push_image(&client, "team/app", &layer).await?;
    let digest = client
        .put_manifest("team/app", "v1", OCI_MANIFEST, manifest.clone())
        .await?;
    assert_eq!(digest, sha256_digest(&manifest));

    // An independent client sees the same image.
    let seen = tokio::task::spawn_blocking({
        let host = host.clone();
        move || skopeo_digest(&host, "team/app:v1", None)
    })
    .await??;
    assert_eq!(seen, digest.to_string());

    // Manifest by tag and by digest.
    let by_tag = client.get_manifest("team/app", "v1").await?;
    assert_eq!(by_tag.bytes.as_ref(), manifest.as_slice());
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.digest, digest);
    let by_digest = client.get_manifest("team/app", digest.as_ref()).await?;
    assert_eq!(by_digest.bytes, by_tag.bytes);

    // Blobs: whole, resumed from an offset, and their sizes.
    let (whole, total) = fetch_blob(&client, "team/app", &layer_digest, 0).await?;
    assert!(whole == layer, "pulled layer differs");
    assert_eq!(total, Some(layer.len() as u64));
    let offset = 1_234_567;
    let (tail, total) = fetch_blob(&client, "team/app", &layer_digest, offset).await?;
    assert!(tail == layer[offset as usize..], "resumed layer differs");
    assert_eq!(total, Some(layer.len() as u64));
    assert_eq!(
        client.blob_size("team/app", &layer_digest).await?,
        Some(layer.len() as u64)
    );
    let absent = sha256_digest(b"never pushed");
    assert_eq!(client.blob_size("team/app", &absent).await?, None);
    let err = client.get_blob("team/app", &absent, 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // The blob as a reader, e.g. for a decompressor.
    let mut reader = client
        .get_blob("team/app", &layer_digest, 0)
        .await?
        .into_async_read();
    let mut read = Vec::new();
    reader.read_to_end(&mut read).await?;
    assert_eq!(sha256_digest(&read), layer_digest);

    // A second push is skipped after a HEAD; another repository mounts instead of uploading.
    let again = client
        .push_blob(
            "team/app",
            &layer_digest,
            layer.len() as u64,
            BlobSource::Bytes(layer.clone().into()),
            None,
        )
        .await?;
    assert_eq!(again, PushOutcome::Exists);
    let mounted = client
        .push_blob(
            "other/app",
            &layer_digest,
            layer.len() as u64,
            BlobSource::Bytes(layer.clone().into()),
            Some("team/app"),
        )
        .await?;
    assert_eq!(mounted, PushOutcome::Mounted);
    assert_eq!(
        client.blob_size("other/app", &layer_digest).await?,
        Some(layer.len() as u64)
    );

    // A file source is streamed.
    let file = registry.dir.path().join("layer.bin");
    std::fs::write(&file, &layer)?;
    let uploaded = client
        .push_blob(
            "third/app",
            &layer_digest,
            layer.len() as u64,
            BlobSource::File(file.clone()),
            None,
        )
        .await?;
    assert_eq!(uploaded, PushOutcome::Uploaded);
    let (third, _) = fetch_blob(&client, "third/app", &layer_digest, 0).await?;
    assert!(third == layer);

    // Content that does not match its digest is refused by the registry.
    let wrong = client
        .push_blob(
            "team/app",
            &sha256_digest(b"something else"),
            layer.len() as u64,
            BlobSource::File(file),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::InvalidArgument, "{wrong}");

    // Tags, and a tag that does not exist.
    client
        .put_manifest("team/app", "v2", OCI_MANIFEST, manifest.clone())
        .await?;
    let mut tags = client.list_tags("team/app").await?;
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    let err = client.get_manifest("team/app", "nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("team/app:nope"),
        "names the reference: {err}"
    );
    assert!(matches!(err, RemoteError::NotFound { ref code, .. } if code == "MANIFEST_UNKNOWN"));
    let err = client.list_tags("missing/repo").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // A manifest pushed by digest must match it.
    let err = client
        .put_manifest("team/app", absent.as_ref(), OCI_MANIFEST, manifest)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::DigestMismatch { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn pulls_big_blobs_at_streaming_speed() -> Result<()> {
    let registry = Registry::start("")?;
    let client = registry.client(None);
    // Big enough to measure when optimized; smaller in debug builds, where sha256 is slow.
    let size = if cfg!(debug_assertions) {
        32 << 20
    } else {
        128 << 20
    };
    let path = registry.dir.path().join("big.bin");
    let data = blob(size, 99);
    let digest = sha256_digest(&data);
    std::fs::write(&path, &data)?;
    drop(data);
    let outcome = client
        .push_blob(
            "big/blob",
            &digest,
            size as u64,
            BlobSource::File(path),
            None,
        )
        .await?;
    assert_eq!(outcome, PushOutcome::Uploaded);

    // The transport alone: count the bytes.
    let started = Instant::now();
    let mut stream = client.get_blob("big/blob", &digest, 0).await?;
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        received += chunk?.len() as u64;
    }
    assert_eq!(received, size as u64);
    eprintln!(
        "pulled {} MiB in {:?}: {:.0} MB/s (transport only)",
        size >> 20,
        started.elapsed(),
        size as f64 / started.elapsed().as_secs_f64() / 1e6
    );

    // Pull while hashing, as the image service does; keep nothing but the hash.
    let started = Instant::now();
    let mut stream = client.get_blob("big/blob", &digest, 0).await?;
    let mut hasher = sha2::Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let elapsed = started.elapsed();
    assert_eq!(received, size as u64);
    assert_eq!(
        format!("sha256:{}", hex::encode(hasher.finalize())),
        digest.to_string()
    );
    eprintln!(
        "pulled {} MiB in {elapsed:?}: {:.0} MB/s (with sha256)",
        size >> 20,
        size as f64 / elapsed.as_secs_f64() / 1e6
    );
    Ok(())
}

#[tokio::test]
async fn basic_auth_with_htpasswd() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = Command::new("htpasswd")
        .args(["-Bbn", "alice", "wonderland"])
        .output()
        .context("htpasswd (apt-get install apache2-utils)")?;
    assert!(out.status.success());
    std::fs::write(dir.path().join("htpasswd"), out.stdout)?;
    let registry = Registry::start_in(
        dir,
        "auth:\n  htpasswd:\n    realm: berth-test\n    path: {dir}/htpasswd",
    )?;
    let alice = Credentials {
        username: "alice".into(),
        password: "wonderland".into(),
    };
    let wrong = Credentials {
        username: "alice".into(),
        password: "looking-glass".into(),
    };

    let err = registry
        .client(Some(wrong))
        .check_login()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let err = registry
        .client(None)
        .get_manifest("team/app", "v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    let client = registry.client(Some(alice));
    client.check_login().await?;
    let manifest = push_image(&client, "team/app", &blob(4096, 3)).await?;
    let digest = client
        .put_manifest("team/app", "v1", OCI_MANIFEST, manifest)
        .await?;
    assert_eq!(client.get_manifest("team/app", "v1").await?.digest, digest);
    let host = registry.host();
    let seen = tokio::task::spawn_blocking(move || {
        skopeo_digest(&host, "team/app:v1", Some("alice:wonderland"))
    })
    .await??;
    assert_eq!(seen, digest.to_string());
    Ok(())
}

/// A token server for the registry's `auth: token` mode: answers `GET /token?service=..&scope=..`
/// with an RS256 JWT carrying the cert chain in `x5c`, signed by `openssl dgst`. Grants every
/// requested action to the right credentials, nothing to anonymous callers, 401 to wrong ones.
struct TokenServer {
    addr: SocketAddr,
    issued: Arc<AtomicUsize>,
}

impl TokenServer {
    async fn start(dir: &Path, user: &'static str, password: &'static str) -> Result<TokenServer> {
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(dir.join("token.key"))
            .arg("-out")
            .arg(dir.join("token.crt"))
            .stderr(Stdio::null())
            .status()?;
        assert!(status.success(), "openssl req");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.join("token.crt"))
            .output()?
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let issued = Arc::new(AtomicUsize::new(0));
        let key = dir.join("token.key");
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let counter = issued.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (key, x5c, expected, counter) =
                    (key.clone(), x5c.clone(), expected.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = serve_token(conn, &key, &x5c, &expected, &counter).await;
                });
            }
        });
        Ok(TokenServer { addr, issued })
    }

    fn auth_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: berth-test\n    \
             issuer: berth-test-issuer\n    rootcertbundle: {{dir}}/token.crt",
            self.addr
        )
    }
}

async fn serve_token(
    mut conn: tokio::net::TcpStream,
    key: &Path,
    x5c: &str,
    expected_auth: &str,
    issued: &AtomicUsize,
) -> Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let auth = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    if !auth.is_empty() && auth != expected_auth {
        conn.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad password",
        )
        .await?;
        return Ok(());
    }
    let mut access = Vec::new();
    if !auth.is_empty() {
        for (k, v) in url_pairs(query) {
            // repository:<name>:<actions>
            let parts: Vec<&str> = v.splitn(3, ':').collect();
            if k == "scope" && parts.len() == 3 {
                access.push(serde_json::json!({
                    "type": parts[0], "name": parts[1],
                    "actions": parts[2].split(',').collect::<Vec<_>>()
                }));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [x5c] });
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": "alice", "aud": "berth-test",
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", issued.load(Ordering::SeqCst)), "access": access
    });
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let mut openssl = tokio::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = openssl.stdin.take().context("stdin")?;
    stdin.write_all(signing_input.as_bytes()).await?;
    drop(stdin);
    let signature = openssl.wait_with_output().await?.stdout;
    let jwt = format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    );
    issued.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::json!({ "token": jwt, "expires_in": 300 }).to_string();
    let mut response = Vec::new();
    write!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.write_all(&response).await?;
    Ok(())
}

/// `a=b&c=d` with %XX decoding (enough for scopes: `:` and `,` come percent-encoded).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).to_string()
    };
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

#[tokio::test]
async fn bearer_tokens_from_a_token_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = TokenServer::start(dir.path(), "alice", "wonderland").await?;
    let registry = Registry::start_in(dir, &tokens.auth_config())?;
    let alice = Credentials {
        username: "alice".into(),
        password: "wonderland".into(),
    };

    let err = registry
        .client(Some(Credentials {
            username: "alice".into(),
            password: "wrong".into(),
        }))
        .check_login()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    let client = registry.client(Some(alice));
    client.check_login().await?;
    let layer = blob(1 << 20, 11);
    let manifest = push_image(&client, "team/app", &layer).await?;
    let digest = client
        .put_manifest("team/app", "v1", OCI_MANIFEST, manifest)
        .await?;
    let issued_after_push = tokens.issued.load(Ordering::SeqCst);

    // Parallel pulls share one token for the pull scope.
    let layer_digest = sha256_digest(&layer);
    let pulls = (0..4).map(|_| {
        let client = client.clone();
        let layer_digest = layer_digest.clone();
        tokio::spawn(async move { fetch_blob(&client, "team/app", &layer_digest, 0).await })
    });
    for pull in pulls {
        let (bytes, _) = pull.await??;
        assert!(bytes == layer);
    }
    assert_eq!(client.get_manifest("team/app", "v1").await?.digest, digest);
    assert_eq!(
        tokens.issued.load(Ordering::SeqCst),
        issued_after_push + 1,
        "one token for repository:team/app:pull"
    );
    let mounted = client
        .push_blob(
            "other/app",
            &layer_digest,
            layer.len() as u64,
            BlobSource::Bytes(layer.clone().into()),
            Some("team/app"),
        )
        .await?;
    assert_eq!(mounted, PushOutcome::Mounted);

    // Anonymous callers get a token without access: the registry refuses.
    let err = registry
        .client(None)
        .get_manifest("team/app", "v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    Ok(())
}

#[tokio::test]
async fn unreachable_registry_is_unavailable_and_named() -> Result<()> {
    let port = free_port()?;
    let host = format!("127.0.0.1:{port}");
    let client = RegistryClient::new(&host, ClientOptions::default())?;
    let err = client.get_manifest("team/app", "v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&host), "{err}");
    assert!(
        err.to_string()
            .to_lowercase()
            .contains("connection refused"),
        "names the cause: {err}"
    );
    Ok(())
}

/// A hand-written server for what the distribution server never does: redirect blobs to
/// storage that ignores Range, serve oversized manifests, or announce a wrong digest.
async fn start_odd_registry(blob: Bytes) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let blob = blob.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    // A TLS ClientHello (the client tries HTTPS first): answer as Go's
                    // net/http does, so the client falls back to plain HTTP at once.
                    if head.first() == Some(&0x16) {
                        let _ = conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
                        return;
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let ok = |ctype: &str, extra: &str, body: &[u8]| {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                };
                let response = match path.as_str() {
                    "/v2/" => ok("application/json", "", b"{}"),
                    "/v2/odd/manifests/huge" => ok(OCI_MANIFEST, "", &vec![b' '; 5 << 20]),
                    "/v2/odd/manifests/lying" => ok(
                        OCI_MANIFEST,
                        &format!("Docker-Content-Digest: {}\r\n", sha256_digest(b"other")),
                        b"{}",
                    ),
                    p if p.starts_with("/v2/odd/blobs/") => b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /storage/blob\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
                    "/storage/blob" => ok("application/octet-stream", "", &blob),
                    _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                };
                let _ = conn.write_all(&response).await;
            });
        }
    });
    Ok(addr)
}

#[tokio::test]
async fn redirects_range_ignoring_storage_and_bad_manifests() -> Result<()> {
    let data = Bytes::from(blob(100_000, 5));
    let digest = sha256_digest(&data);
    let addr = start_odd_registry(data.clone()).await?;
    let client = RegistryClient::new(&addr.to_string(), ClientOptions::default())?;

    // Redirected, and the storage sends the whole blob although bytes 40000- were asked for.
    let (whole, total) = fetch_blob(&client, "odd", &digest, 0).await?;
    assert!(whole == data);
    assert_eq!(total, Some(data.len() as u64));
    let (tail, total) = fetch_blob(&client, "odd", &digest, 40_000).await?;
    assert!(tail == data[40_000..], "the resent head is dropped");
    assert_eq!(total, Some(data.len() as u64));

    let err = client.get_manifest("odd", "huge").await.unwrap_err();
    assert!(matches!(err, RemoteError::ManifestTooLarge { .. }), "{err}");
    let err = client.get_manifest("odd", "lying").await.unwrap_err();
    assert!(matches!(err, RemoteError::DigestMismatch { .. }), "{err}");
    let err = client.get_manifest("odd", "absent").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    Ok(())
}

/// The image service runs these on spawned tasks: their futures must be `Send`.
#[test]
fn operation_futures_are_send() {
    fn spawnable<T: Send + 'static>(_: T) {}
    let client = RegistryClient::new("127.0.0.1:1", ClientOptions::default()).unwrap();
    let digest = sha256_digest(b"x");
    spawnable({
        let (client, digest) = (client.clone(), digest.clone());
        async move {
            let reader: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>> = Box::pin(&b"x"[..]);
            let _ = client
                .push_blob("a", &digest, 1, BlobSource::Reader(reader), Some("b"))
                .await;
            let _ = client.get_blob("a", &digest, 0).await;
            let _ = client.get_manifest("a", "t").await;
            let _ = client.put_manifest("a", "t", OCI_MANIFEST, vec![]).await;
            let _ = client.list_tags("a").await;
            let _ = client.check_login().await;
        }
    });
}

/// A registry that speaks only TLS, with a self-signed certificate: on loopback the client
/// accepts it (Docker treats loopback registries as insecure), and everything goes over TLS.
#[tokio::test]
async fn https_registry_with_a_self_signed_certificate_on_loopback() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .context("openssl (apt-get install openssl)")?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Appended right after `http: addr:`, so it lands in the http section.
    let registry = Registry::start_in(
        dir,
        "  tls:\n    certificate: {dir}/cert.pem\n    key: {dir}/key.pem",
    )?;

    // The server refuses plain HTTP, so whatever works below went over TLS.
    let mut plain = tokio::net::TcpStream::connect(registry.host()).await?;
    plain.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").await?;
    let mut answer = String::new();
    plain.read_to_string(&mut answer).await?;
    assert!(
        answer.starts_with("HTTP/1.0 400"),
        "plain HTTP answer: {answer}"
    );

    let client = registry.client(None);
    client.check_login().await?;
    let manifest = push_image(&client, "tls/app", &blob(64 * 1024, 11)).await?;
    let digest = client
        .put_manifest("tls/app", "v1", OCI_MANIFEST, manifest)
        .await?;
    assert_eq!(client.get_manifest("tls/app", "v1").await?.digest, digest);
    Ok(())
}
