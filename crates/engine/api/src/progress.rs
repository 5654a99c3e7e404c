//! Docker's JSON progress stream: one JSON object per line, e.g.
//! `{"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[=>  ] 1kB/4kB","id":"a3ed95caeb02"}`,
//! ending with `{"errorDetail":{"message":"..."},"error":"..."}` when the operation fails.

use std::future::Future;

use berth_image::progress::{Event, Progress};
use bytes::Bytes;
use hyper::Response;
use serde_json::{json, Value};

use crate::body::{self, Body};
use crate::error::ApiError;

/// Runs `op` with a progress sink and streams its events, then its error if it fails.
pub fn stream_response<F, Fut>(op: F) -> Response<Body>
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let (tx, resp) = body::channel("application/json");
    let (progress, mut rx) = Progress::channel();
    tokio::spawn(async move {
        let work = tokio::spawn(op(progress));
        while let Some(ev) = rx.recv().await {
            if tx.send(Ok(line(&event_json(&ev)))).await.is_err() {
                // The client went away: the operation goes on (a pull still lands), unheard.
                while rx.recv().await.is_some() {}
                break;
            }
        }
        let outcome = match work.await {
            Ok(r) => r,
            Err(join) => Err(ApiError::new(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                format!("operation failed: {join}"),
            )),
        };
        if let Err(e) = outcome {
            let _ = tx
                .send(Ok(line(
                    &json!({"errorDetail": {"message": e.message}, "error": e.message}),
                )))
                .await;
        }
    });
    resp
}

fn line(v: &Value) -> Bytes {
    let mut s = serde_json::to_vec(v).expect("json values serialize");
    s.extend_from_slice(b"\r\n");
    Bytes::from(s)
}

pub fn event_json(ev: &Event) -> Value {
    match ev {
        Event::Status {
            id: Some(id),
            status,
        } => json!({"status": status, "progressDetail": {}, "id": id}),
        Event::Status { id: None, status } => json!({"status": status}),
        Event::Bytes {
            id,
            status,
            current,
            total,
        } => {
            let mut detail = json!({"current": current});
            if let Some(t) = total {
                detail["total"] = json!(t);
            }
            json!({"status": status, "progressDetail": detail, "progress": bar(*current, *total), "id": id})
        }
        Event::Aux(v) => json!({"progressDetail": {}, "aux": v}),
        Event::Stream(s) => json!({"stream": s}),
    }
}

/// The text bar docker clients print when they cannot draw their own.
fn bar(current: u64, total: Option<u64>) -> String {
    match total {
        Some(t) if t > 0 => {
            let width = 50u64;
            let filled = (current.min(t) * width / t) as usize;
            let arrow = if filled < width as usize { ">" } else { "=" };
            let eq = "=".repeat(filled.saturating_sub(1));
            let pad = " ".repeat(width as usize - filled.max(1));
            format!("[{eq}{arrow}{pad}] {}/{}", human(current), human(t))
        }
        _ => human(current),
    }
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[i]).replace(".000", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_events_look_like_dockers() {
        let v = event_json(&Event::Bytes {
            id: "abc".into(),
            status: "Downloading".into(),
            current: 500,
            total: Some(1000),
        });
        assert_eq!(v["progressDetail"]["current"], 500);
        assert_eq!(v["progressDetail"]["total"], 1000);
        assert_eq!(v["id"], "abc");
        let bar = v["progress"].as_str().unwrap();
        assert!(bar.starts_with("[========================>"), "{bar}");
        assert!(bar.ends_with("500B/1kB"), "{bar}");
    }

    #[test]
    fn status_without_id_has_no_id() {
        let v = event_json(&Event::Status {
            id: None,
            status: "Digest: sha256:x".into(),
        });
        assert!(v.get("id").is_none());
    }
}
