//! `/volumes/...`: create, list, inspect, remove, prune named volumes.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_volume::Volume;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::filter_args;
use crate::body;
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

fn volume_json(v: &Volume) -> Value {
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": v.mountpoint,
        "CreatedAt": v.created_at,
        "Labels": v.labels,
        "Scope": v.scope,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

fn err(e: berth_volume::VolumeError) -> ApiError {
    ApiError::from_kind(&e)
}

pub async fn create(backend: &Arc<Backend>, req: Request<Incoming>) -> HandlerResult {
    let b: CreateBody = body::collect_json(req.into_body()).await?;
    let volumes = backend.volumes.clone();
    let name = b.name.filter(|n| !n.is_empty());
    let v = tokio::task::spawn_blocking(move || {
        volumes.create(
            name.as_deref(),
            b.driver.as_deref().filter(|d| !d.is_empty()),
            b.driver_opts.unwrap_or_default(),
            b.labels.unwrap_or_default(),
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(err)?;
    backend.emit_volume(&v.name, "create");
    Ok(body::json(StatusCode::CREATED, &volume_json(&v)))
}

pub async fn list(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let args = filter_args(q)?;
    let filters = berth_volume::ListFilters::from_args(&args).map_err(err)?;
    let list = backend.volumes.list(&filters);
    let out: Vec<Value> = list.volumes.iter().map(volume_json).collect();
    Ok(body::json(
        StatusCode::OK,
        &json!({"Volumes": out, "Warnings": list.warnings}),
    ))
}

pub async fn inspect(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    let v = backend.volumes.get(name).map_err(err)?;
    Ok(body::json(StatusCode::OK, &volume_json(&v)))
}

pub async fn remove(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let volumes = backend.volumes.clone();
    let force = q.flag("force");
    let n = name.to_string();
    tokio::task::spawn_blocking(move || volumes.remove(&n, force))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(err)?;
    backend.emit_volume(name, "destroy");
    Ok(body::status(StatusCode::NO_CONTENT))
}

pub async fn prune(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let args = filter_args(q)?;
    let filters = berth_volume::PruneFilters::from_args(&args).map_err(err)?;
    let volumes = backend.volumes.clone();
    let report = tokio::task::spawn_blocking(move || volumes.prune(&filters))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (removed, reclaimed) = (report.volumes_deleted, report.space_reclaimed);
    for n in &removed {
        backend.emit_volume(n, "destroy");
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"VolumesDeleted": if removed.is_empty() { Value::Null } else { json!(removed) }, "SpaceReclaimed": reclaimed}),
    ))
}
