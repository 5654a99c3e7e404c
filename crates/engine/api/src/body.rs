//! Response and request bodies: whole JSON documents, streams fed from blocking work
//! (`save`, progress), and request bodies read as a blocking `Read` (`load`, `import`).

use std::io;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, BodyStream, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ApiError;

pub type Body = BoxBody<Bytes, io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("API types serialize");
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(bytes))
        .expect("valid response")
}

pub fn error(e: &ApiError) -> Response<Body> {
    json(e.status, &serde_json::json!({ "message": e.message }))
}

pub fn status(status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(empty())
        .expect("valid response")
}

/// A body fed chunk by chunk from elsewhere; dropping the sender ends it.
pub fn channel(content_type: &str) -> (mpsc::Sender<Result<Bytes, io::Error>>, Response<Body>) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .map_ok(Frame::data);
    let body = BodyExt::boxed(StreamBody::new(stream));
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type)
        .body(body)
        .expect("valid response");
    (tx, resp)
}

/// A blocking `Write` into a streamed response body (for `save`, run on a blocking thread).
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Result<Bytes, io::Error>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the body with an error the client sees as a broken transfer.
    pub fn fail(mut self, e: io::Error) {
        let _ = self.send();
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// The request body as a blocking reader; make it on the runtime, read it on a blocking thread.
pub fn reader(body: Incoming) -> impl io::Read + Send + 'static {
    let stream = BodyStream::new(body)
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(stream)))
}

/// The whole request body, refused above `limit` bytes.
pub async fn collect(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// The request body parsed as JSON; an empty body is `T::default()`-free, so it is an error.
pub async fn collect_json<T: serde::de::DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    let bytes = collect(body, 1 << 20).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}
