//! A tiny registry that lies: a `std::net::TcpListener` HTTP/1.1 server on
//! 127.0.0.1 that answers `/v2/` and whatever paths the test put in its table,
//! each with the bytes, headers and misbehaviour (truncation, throttling) the
//! test chose. Every request is logged, and the bytes sent per path counted,
//! so a test can wait for a transfer to be under way.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::tarball::{OciImage, OCI_MANIFEST};

/// How the body of a response goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// All of it at once.
    Whole,
    /// `Content-Length` of the whole body (or of the range asked for), but
    /// bytes past this offset of the whole body are never sent: the
    /// connection closes there, on every request, ranged or not.
    CutAfter(usize),
    /// Like `CutAfter` on the first GET of the path only; later GETs (a
    /// retry, ranged or not) get their bytes whole.
    CutOnce(usize),
    /// All of it, at most this many bytes per second.
    Throttled(u64),
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delivery: Delivery,
}

impl Response {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            delivery: Delivery::Whole,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delivery(mut self, delivery: Delivery) -> Response {
        self.delivery = delivery;
        self
    }
}

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Response>>,
    log: Mutex<Vec<String>>,
    sent: Mutex<HashMap<String, u64>>,
    gets: Mutex<HashMap<String, u32>>,
    stop: AtomicBool,
}

pub struct FakeRegistry {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    pub fn start() -> Result<FakeRegistry> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if for_thread.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&for_thread);
                thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        let registry = FakeRegistry {
            port,
            shared,
            acceptor: Some(acceptor),
        };
        registry.route(
            "/v2/",
            Response::ok("application/json", b"{}".to_vec())
                .header("Docker-Distribution-Api-Version", "registry/2.0"),
        );
        Ok(registry)
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Answers GET and HEAD of `path` with `response` (replacing any earlier one).
    pub fn route(&self, path: &str, response: Response) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), response);
    }

    /// Serves `image` as `<repo>:<tag>` and `<repo>@<digest>`, and its blobs.
    pub fn serve_image(&self, repo: &str, tag: &str, image: &OciImage) {
        let manifest = Response::ok(OCI_MANIFEST, image.manifest.clone())
            .header("Docker-Content-Digest", &image.manifest_digest());
        self.route(&format!("/v2/{repo}/manifests/{tag}"), manifest.clone());
        self.route(
            &format!("/v2/{repo}/manifests/{}", image.manifest_digest()),
            manifest,
        );
        for (digest, blob) in &image.blobs {
            self.route(
                &format!("/v2/{repo}/blobs/{digest}"),
                Response::ok("application/octet-stream", blob.clone())
                    .header("Docker-Content-Digest", digest),
            );
        }
    }

    /// Every request line seen so far (`GET /v2/...`).
    pub fn requests(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Body bytes sent so far for `path`, over all requests.
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.shared
            .sent
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut range_start = None;
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.to_ascii_lowercase().as_str() {
                    "range" => {
                        range_start = value
                            .strip_prefix("bytes=")
                            .and_then(|r| r.split('-').next())
                            .and_then(|n| n.parse::<usize>().ok());
                    }
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        // Drain any request body (clients do not send one to a read-only registry).
        if content_length > 0 {
            let mut body = vec![0; content_length];
            std::io::Read::read_exact(&mut reader, &mut body)?;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        shared
            .log
            .lock()
            .unwrap()
            .push(format!("{method} {target}"));
        let path = target.split('?').next().unwrap_or("").to_string();
        let response = shared.routes.lock().unwrap().get(&path).cloned();
        let Some(mut response) = response.filter(|_| method == "GET" || method == "HEAD") else {
            let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"not served by the fake registry"}]}"#;
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n",
                body.len()
            )?;
            if method != "HEAD" {
                stream.write_all(body)?;
            }
            continue;
        };
        let mut status = format!("{} OK", response.status);
        let mut start_offset = 0;
        let earlier_gets = if method == "GET" {
            let mut gets = shared.gets.lock().unwrap();
            let n = gets.entry(path.clone()).or_default();
            *n += 1;
            *n - 1
        } else {
            0
        };
        if let (Some(start), 200) = (range_start, response.status) {
            if start < response.body.len() {
                let total = response.body.len();
                start_offset = start;
                response.body.drain(..start);
                status = "206 Partial Content".to_string();
                response.headers.push((
                    "Content-Range".into(),
                    format!("bytes {start}-{}/{total}", total - 1),
                ));
            }
        }
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n",
            response.body.len()
        );
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Docker-Distribution-Api-Version: registry/2.0\r\n\r\n");
        stream.write_all(head.as_bytes())?;
        if method == "HEAD" {
            continue;
        }
        let count = |n: usize| {
            *shared.sent.lock().unwrap().entry(path.clone()).or_default() += n as u64;
        };
        let delivery = match response.delivery {
            Delivery::CutOnce(cut) if earlier_gets == 0 => Delivery::CutAfter(cut),
            Delivery::CutOnce(_) => Delivery::Whole,
            other => other,
        };
        match delivery {
            Delivery::Whole | Delivery::CutOnce(_) => {
                stream.write_all(&response.body)?;
                count(response.body.len());
            }
            Delivery::CutAfter(cut) => {
                let n = cut.saturating_sub(start_offset).min(response.body.len());
                stream.write_all(&response.body[..n])?;
                count(n);
                stream.flush()?;
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Delivery::Throttled(rate) => {
                let started = Instant::now();
                let chunk = 64 * 1024;
                let mut written = 0usize;
                for piece in response.body.chunks(chunk) {
                    stream.write_all(piece)?;
                    written += piece.len();
                    count(piece.len());
                    let due = Duration::from_secs_f64(written as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        thread::sleep(wait);
                    }
                }
            }
        }
    }
}
