//! Progress of long operations (pull, push, load), reported as events the API turns into
//! Docker's JSON progress stream and the CLI into progress bars.

use tokio::sync::mpsc;

/// One thing worth telling the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A status line, per layer when `id` is set: "Pulling fs layer", "Download complete", ...
    Status { id: Option<String>, status: String },
    /// Bytes done of a layer: "Downloading", "Extracting", "Pushing".
    Bytes {
        id: String,
        status: String,
        current: u64,
        total: Option<u64>,
    },
    /// A machine-readable result (push: tag, digest, size).
    Aux(serde_json::Value),
    /// Free text (load: "Loaded image: ...").
    Stream(String),
}

/// Where events go; cheap to clone; a `Progress::none()` drops them.
#[derive(Debug, Clone)]
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl Progress {
    pub fn none() -> Self {
        Progress { tx: None }
    }

    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress { tx: Some(tx) }, rx)
    }

    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }

    pub fn status(&self, id: Option<&str>, status: impl Into<String>) {
        self.send(Event::Status {
            id: id.map(str::to_string),
            status: status.into(),
        });
    }

    pub fn bytes(&self, id: &str, status: &str, current: u64, total: Option<u64>) {
        self.send(Event::Bytes {
            id: id.to_string(),
            status: status.to_string(),
            current,
            total,
        });
    }

    pub fn aux(&self, v: serde_json::Value) {
        self.send(Event::Aux(v));
    }

    pub fn stream(&self, line: impl Into<String>) {
        self.send(Event::Stream(line.into()));
    }
}

/// The short id docker shows for a layer: 12 hex digits of its digest.
pub fn short_id(digest: &berth_core::Digest) -> String {
    digest.digest().chars().take(12).collect()
}
