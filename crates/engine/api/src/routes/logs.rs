//! `GET /containers/{id}/logs` (json-file logs, followed across rotations) and
//! `GET /containers/{id}/stats` (cgroup figures, one sample or a stream).

use std::sync::Arc;
use std::time::Duration;

use berth_container::logs::{self, LogOptions};
use bytes::Bytes;

use crate::body;
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

pub async fn logs(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let svc = &backend.containers;
    let c = svc.get(name).map_err(|e| ApiError::from_kind(&e))?;
    let rec = c.record();
    let stdout = q.flag("stdout");
    let stderr = q.flag("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let time = |k: &str| -> Result<_, ApiError> {
        match q.get(k) {
            Some(v) => logs::parse_api_time(v).map_err(|e| ApiError::bad_request(e.to_string())),
            None => Ok(None),
        }
    };
    let tail = match q.get("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for tail: {t}")))?,
        )
        .map(|n| n.max(0) as usize),
    };
    let opts = LogOptions {
        stdout,
        stderr,
        since: time("since")?,
        until: time("until")?,
        tail,
        follow: q.flag("follow") && c.status().is_live(),
        timestamps: q.flag("timestamps"),
    };
    let tty = rec.config.tty == Some(true);
    let timestamps = opts.timestamps;
    let mut watch = c.subscribe();
    let (entries_tx, mut entries) = tokio::sync::mpsc::channel(256);
    let path = rec.log_path.clone();
    tokio::spawn(async move {
        let stopped = async move {
            let _ = watch.wait_for(|w| !w.running).await;
        };
        let _ = logs::follow_logs(path, opts, stopped, entries_tx).await;
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (tx, resp) = body::channel(ct);
    tokio::spawn(async move {
        while let Some(e) = entries.recv().await {
            let chunk = logs::encode_entry(&e, timestamps, tty);
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
    });
    Ok(resp)
}

pub async fn stats(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let svc = backend.containers.clone();
    let c = svc.get(name).map_err(|e| ApiError::from_kind(&e))?;
    // `stream` defaults to true; `one-shot` skips the priming sample.
    let stream = q.get("stream").map(|_| q.flag("stream")).unwrap_or(true);
    let one_shot = q.flag("one-shot");
    let rec = c.record();
    let cgroup = svc.cgroups_path(&c.id);
    let (tx, resp) = body::channel("application/json");
    let running = move || c.status().is_live();
    tokio::spawn(async move {
        let mut previous = None;
        if !stream && !one_shot {
            // Docker primes `precpu_stats` with a sample taken a second earlier.
            if running() {
                previous = berth_container::stats::container_stats(
                    &cgroup,
                    None,
                    std::time::SystemTime::now(),
                )
                .ok();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        loop {
            let mut s = if running() {
                berth_container::stats::container_stats(
                    &cgroup,
                    previous.as_ref(),
                    std::time::SystemTime::now(),
                )
                .map(|s| serde_json::to_value(&s).unwrap_or_default())
                .unwrap_or_else(|_| serde_json::json!({}))
            } else {
                serde_json::json!({})
            };
            s["name"] = serde_json::json!(format!("/{}", rec.name));
            s["id"] = serde_json::json!(rec.id);
            let line = format!("{s}\n");
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                return;
            }
            if !stream {
                return;
            }
            previous = serde_json::from_value(s).ok();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(resp)
}
