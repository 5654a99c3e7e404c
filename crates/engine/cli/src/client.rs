//! The Docker Engine API client: HTTP/1.1 over the daemon's unix socket.
//!
//! Each request opens a fresh connection (the CLI makes few requests, and a fresh connection keeps
//! streaming responses such as `pull` independent). The first request pings `/_ping` to learn the
//! daemon's API version; every later path is prefixed with `/v<version>`, where the version is the
//! lower of [`MAX_API_VERSION`] and what the daemon reports.

use std::path::PathBuf;
use std::pin::Pin;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixStream;
use tokio::sync::OnceCell;

/// The newest API version this client speaks.
pub const MAX_API_VERSION: &str = "1.44";
/// What a daemon that does not report its version is assumed to speak (as the docker CLI does).
const FALLBACK_API_VERSION: &str = "1.24";

pub type Body = BoxBody<Bytes, std::io::Error>;

/// The daemon could not be reached at all.
#[derive(Debug)]
pub struct ConnectError {
    pub host: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cannot connect to the berth daemon at {}. Is the daemon running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// The daemon answered with an error status; `message` is its `{"message": ...}`.
#[derive(Debug)]
pub struct DaemonError {
    pub status: hyper::StatusCode,
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

pub struct Client {
    host: String,
    socket: PathBuf,
    debug: bool,
    version: OnceCell<String>,
}

impl Client {
    /// `host` is `unix:///path/to.sock`; nothing else is supported yet.
    pub fn new(host: &str, debug: bool) -> Result<Self> {
        let Some(path) = host.strip_prefix("unix://") else {
            bail!("unsupported host {host:?}: berth speaks only unix:///path sockets");
        };
        if path.is_empty() {
            bail!("invalid host {host:?}: empty socket path");
        }
        Ok(Client {
            host: host.to_string(),
            socket: PathBuf::from(path),
            debug,
            version: OnceCell::new(),
        })
    }

    /// Whether `-D` asked for request logging.
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// The negotiated API version (pings the daemon the first time).
    pub async fn api_version(&self) -> Result<&str> {
        self.version
            .get_or_try_init(|| async {
                let resp = self
                    .send(Method::GET, "/_ping".to_string(), &[], empty())
                    .await?;
                let reported = resp
                    .headers()
                    .get("API-Version")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok::<_, anyhow::Error>(negotiate(reported.as_deref()))
            })
            .await
            .map(String::as_str)
    }

    /// Sends `method /v<version><path_and_query>`; an error status becomes a [`DaemonError`].
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        let version = self.api_version().await?;
        let uri = format!("/v{version}{path_and_query}");
        let resp = self.send(method, uri, headers, body).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Err(DaemonError {
            status,
            message: error_message(&bytes),
        }
        .into())
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let resp = self
            .request(Method::GET, path_and_query, &[], empty())
            .await?;
        read_json(resp).await
    }

    /// Whether the negotiated API version is at least `version` (`"1.42"`).
    pub async fn api_at_least(&self, version: &str) -> Result<bool> {
        Ok(parse_version(self.api_version().await?) >= parse_version(version))
    }

    /// Sends `POST /v<version><path_and_query>` asking to upgrade the connection (`Connection:
    /// Upgrade`, `Upgrade: tcp`), as `attach` and `exec start` do. The daemon answers `101
    /// Switching Protocols` and the connection becomes the container's raw stdio stream; an
    /// error status becomes a [`DaemonError`].
    pub async fn hijack(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<TokioIo<Upgraded>> {
        let version = self.api_version().await?;
        let uri = format!("/v{version}{path_and_query}");
        let mut all = vec![
            ("Connection", "Upgrade".to_string()),
            ("Upgrade", "tcp".into()),
        ];
        all.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
        let resp = self.send(Method::POST, uri, &all, body).await?;
        if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            let message = if status.is_success() {
                format!("the daemon did not upgrade the connection (status {status})")
            } else {
                error_message(&bytes)
            };
            return Err(DaemonError { status, message }.into());
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .context("upgrading the connection to the daemon")?;
        Ok(TokioIo::new(upgraded))
    }

    async fn send(
        &self,
        method: Method,
        uri: String,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        if self.debug {
            eprintln!("DEBU[berth] {method} {uri}");
        }
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|_| ConnectError {
                host: self.host.clone(),
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ConnectError {
                host: self.host.clone(),
            })?;
        tokio::spawn(async move {
            // The connection ends when the response body is dropped (or, once upgraded, when the
            // upgraded stream is); its error, if any, also surfaces on the request or body
            // future, so it is not reported twice here.
            let _ = conn.with_upgrades().await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "berth")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let req = req.body(body)?;
        sender
            .send_request(req)
            .await
            .with_context(|| format!("request to the daemon at {}", self.host))
    }
}

/// Picks the API version: the daemon's, capped at [`MAX_API_VERSION`].
pub fn negotiate(reported: Option<&str>) -> String {
    let Some(reported) = reported.filter(|v| parse_version(v).is_some()) else {
        return FALLBACK_API_VERSION.to_string();
    };
    if parse_version(reported) < parse_version(MAX_API_VERSION) {
        reported.to_string()
    } else {
        MAX_API_VERSION.to_string()
    }
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The `message` of a Docker error body, or the body itself when it is not JSON.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

pub async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let bytes = resp.into_body().collect().await?.to_bytes();
    serde_json::from_slice(&bytes).context("decoding the daemon's response")
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn json_body(value: &impl serde::Serialize) -> Result<Body> {
    let bytes = serde_json::to_vec(value)?;
    Ok(Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed())
}

/// A request body streamed from `reader` (a file or stdin) in 64 KiB chunks.
pub fn reader_body(reader: impl AsyncRead + Send + Sync + Unpin + 'static) -> Body {
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    BodyExt::boxed(StreamBody::new(chunks))
}

/// The response body as a stream of chunks.
pub fn body_stream(resp: Response<Incoming>) -> Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>> {
    let body = resp.into_body();
    Box::pin(
        http_body_util::BodyStream::new(body).filter_map(|frame| async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(Ok),
                Err(e) => Some(Err(anyhow::Error::from(e))),
            }
        }),
    )
}

/// Builds a query string with percent-encoded values.
#[derive(Default)]
pub struct Query(String);

impl Query {
    pub fn new() -> Self {
        Query(String::new())
    }

    pub fn add(mut self, key: &str, value: &str) -> Self {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(&encode(key));
        self.0.push('=');
        self.0.push_str(&encode(value));
        self
    }

    /// Adds `key=1` only when `flag` is set (how the docker CLI sends booleans).
    pub fn flag(self, key: &str, flag: bool) -> Self {
        if flag {
            self.add(key, "1")
        } else {
            self
        }
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes an image name or ID for use as a path segment: `/` and `:` stay (the daemon routes
/// `/images/{name:.*}/json`), everything else outside the unreserved set is encoded.
pub fn path_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split('/') {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&encode(part).replace("%3A", ":").replace("%40", "@"));
    }
    if s.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_never_exceeds_the_daemon_or_the_client() {
        assert_eq!(negotiate(Some("1.50")), "1.44");
        assert_eq!(negotiate(Some("1.44")), "1.44");
        assert_eq!(negotiate(Some("1.41")), "1.41");
        assert_eq!(negotiate(Some("1.9")), "1.9");
        assert_eq!(negotiate(None), "1.24");
        assert_eq!(negotiate(Some("garbage")), "1.24");
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(br#"{"message":"No such image: x"}"#),
            "No such image: x"
        );
        assert_eq!(error_message(b"page not found\n"), "page not found");
    }

    #[test]
    fn queries_are_encoded() {
        let q = Query::new()
            .add("filters", r#"{"dangling":{"true":true}}"#)
            .flag("all", true)
            .flag("digests", false)
            .finish();
        assert_eq!(
            q,
            "?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D&all=1"
        );
        assert_eq!(path_name("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(path_name("a b@sha256:00"), "a%20b@sha256:00");
    }

    #[test]
    fn only_unix_hosts() {
        assert!(Client::new("unix:///run/x.sock", false).is_ok());
        assert!(Client::new("tcp://1.2.3.4:2375", false).is_err());
        assert!(Client::new("unix://", false).is_err());
    }

    /// A stand-in daemon on a unix socket that reports `version` from `/_ping`, records
    /// each request's URI, and answers `/images/nope/json` with a Docker error body.
    async fn fake_daemon(
        version: &'static str,
    ) -> (PathBuf, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use hyper::service::service_fn;
        let dir = std::env::temp_dir().join(format!(
            "berth-cli-client-test-{}-{version}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("d.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let auth = req
                                .headers()
                                .get("X-Registry-Auth")
                                .map(|v| format!(" auth={}", v.to_str().unwrap()))
                                .unwrap_or_default();
                            log.lock().unwrap().push(format!(
                                "{} {}{auth}",
                                req.method(),
                                req.uri()
                            ));
                            let (status, body) = if req.uri().path().ends_with("/images/nope/json")
                            {
                                (404, r#"{"message":"No such image: nope"}"#)
                            } else {
                                (200, "[]")
                            };
                            Response::builder()
                                .status(status)
                                .header("API-Version", version)
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (dir, seen)
    }

    #[tokio::test]
    async fn negotiates_once_then_prefixes_and_maps_errors() {
        for (reported, prefix) in [("1.50", "/v1.44/"), ("1.41", "/v1.41/")] {
            let (dir, seen) = fake_daemon(reported).await;
            let host = format!("unix://{}", dir.join("d.sock").display());
            let client = Client::new(&host, false).unwrap();
            let _: Vec<serde_json::Value> = client.get_json("/images/json").await.unwrap();
            let resp = client
                .request(
                    Method::POST,
                    "/images/create",
                    &[("X-Registry-Auth", "e30=".into())],
                    empty(),
                )
                .await
                .unwrap();
            drop(resp);
            let err = client
                .request(Method::GET, "/images/nope/json", &[], empty())
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Error response from daemon: No such image: nope"
            );
            assert_eq!(
                *seen.lock().unwrap(),
                [
                    "GET /_ping".to_string(),
                    format!("GET {prefix}images/json"),
                    format!("POST {prefix}images/create auth=e30="),
                    format!("GET {prefix}images/nope/json"),
                ]
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let gone = Client::new("unix:///nonexistent/x.sock", false).unwrap();
        let err = gone
            .get_json::<serde_json::Value>("/info")
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<ConnectError>().is_some(), "{err}");
    }

    /// A stand-in for the daemon's attach endpoint: `POST /attach` with `Upgrade: tcp` is
    /// answered `101`, then it sends back what it reads, upper-cased, until the client shuts
    /// its write half down, and closes. Anything else is a 404 with a Docker error body.
    async fn fake_attach_daemon(dir: &std::path::Path) -> PathBuf {
        use hyper::service::service_fn;
        use tokio::io::AsyncWriteExt;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let sock = dir.join("d.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let svc = service_fn(|mut req: Request<Incoming>| async move {
                        let mut resp = Response::builder().header("API-Version", "1.44");
                        let upgrade = req.headers().get("Upgrade").is_some()
                            && req.headers()["Connection"] == "Upgrade";
                        if !(req.uri().path().ends_with("/attach") && upgrade) {
                            resp = resp.status(404);
                            let body = r#"{"message":"No such container: x"}"#;
                            return resp.body(Full::new(Bytes::from(body)));
                        }
                        let on_upgrade = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            let mut io = TokioIo::new(on_upgrade.await.unwrap());
                            let mut buf = Vec::new();
                            io.read_to_end(&mut buf).await.unwrap();
                            io.write_all(&buf.to_ascii_uppercase()).await.unwrap();
                            io.shutdown().await.unwrap();
                        });
                        resp.status(101)
                            .header("Connection", "Upgrade")
                            .header("Upgrade", "tcp")
                            .body(Full::new(Bytes::new()))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        sock
    }

    #[tokio::test]
    async fn hijacked_streams_carry_both_ways_and_half_close() {
        use tokio::io::AsyncWriteExt;
        let dir = std::env::temp_dir().join(format!("berth-cli-hijack-{}", std::process::id()));
        let sock = fake_attach_daemon(&dir).await;
        let client = Client::new(&format!("unix://{}", sock.display()), false).unwrap();
        let mut conn = client
            .hijack("/containers/x/attach", &[], empty())
            .await
            .unwrap();
        conn.write_all(b"hello ").await.unwrap();
        conn.write_all(b"daemon").await.unwrap();
        // Our end of input is what lets the other side finish.
        conn.shutdown().await.unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HELLO DAEMON");

        let err = client
            .hijack("/containers/x/start", &[], empty())
            .await
            .unwrap_err();
        let daemon = err.downcast_ref::<DaemonError>().unwrap();
        assert_eq!(daemon.status, 404);
        assert_eq!(
            err.to_string(),
            "Error response from daemon: No such container: x"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
