//! `GET /events`: the engine's events as a stream of JSON documents, filtered like Docker
//! (`type`, `container`, `event`, `image`, `label`), from `since` (the last 256 are kept) and
//! ending at `until` when given.

use std::sync::Arc;
use std::time::Duration;

use berth_container::events::Event;
use bytes::Bytes;

use super::{filter_args, parse_time_filter};
use crate::body;
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

fn wanted(e: &Event, filters: &std::collections::BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, vals)| match key.as_str() {
        "type" => vals.contains(&e.kind),
        "event" => vals
            .iter()
            .any(|v| e.action == *v || e.action.starts_with(&format!("{v}:"))),
        "container" => {
            e.kind == "container"
                && vals.iter().any(|v| {
                    e.actor.id.starts_with(v.as_str()) || e.actor.attributes.get("name") == Some(v)
                })
        }
        "image" => vals
            .iter()
            .any(|v| e.actor.attributes.get("image") == Some(v)),
        "volume" => e.kind == "volume" && vals.contains(&e.actor.id),
        "label" => vals.iter().all(|v| match v.split_once('=') {
            Some((k, want)) => e
                .actor
                .attributes
                .get(k)
                .map(|x| x == want)
                .unwrap_or(false),
            None => e.actor.attributes.contains_key(v.as_str()),
        }),
        _ => true,
    })
}

pub async fn events(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = filter_args(q)?;
    for key in filters.keys() {
        if ![
            "type",
            "event",
            "container",
            "image",
            "volume",
            "label",
            "network",
            "daemon",
            "plugin",
            "node",
            "service",
            "secret",
            "config",
            "scope",
        ]
        .contains(&key.as_str())
        {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    let time = |k: &str| {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(parse_time_filter)
            .transpose()
    };
    let (since, until) = (time("since")?, time("until")?);
    let (past, mut rx) = backend.containers.events.subscribe();
    // `since`: the kept events from then on come first (Docker keeps the last 256).
    let replay: Vec<Event> = match since {
        Some(s) => past
            .into_iter()
            .filter(|e| e.time >= s && until.is_none_or(|u| e.time <= u))
            .collect(),
        None => Vec::new(),
    };
    let (tx, resp) = body::channel("application/json");
    tokio::spawn(async move {
        let send = |e: &Event| Bytes::from(serde_json::to_string(e).unwrap_or_default() + "\n");
        for e in replay.iter().filter(|e| wanted(e, &filters)) {
            if tx.send(Ok(send(e))).await.is_err() {
                return;
            }
        }
        loop {
            let next = match until {
                Some(u) => {
                    let now = berth_image::time::now_nanos() / 1_000_000_000;
                    if now >= u {
                        return;
                    }
                    match tokio::time::timeout(Duration::from_secs((u - now) as u64), rx.recv())
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
                None => tokio::select! {
                    r = rx.recv() => r,
                    _ = tx.closed() => return,
                },
            };
            let e = match next {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            if !wanted(&e, &filters) {
                continue;
            }
            if tx.send(Ok(send(&e))).await.is_err() {
                return;
            }
        }
    });
    Ok(resp)
}
