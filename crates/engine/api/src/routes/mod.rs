//! Handlers, one module per resource; [`dispatch`] is the only place that maps routes to them.

mod archive;
mod containers;
mod events;
mod images;
mod logs;
mod networks;
mod streams;
mod system;
mod volumes;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::router::{ContainerAction, Query, Route};
use crate::server::{Backend, HandlerResult};

pub async fn dispatch(
    backend: &Arc<Backend>,
    route: Route,
    query: Query,
    req: Request<Incoming>,
) -> HandlerResult {
    match route {
        Route::Ping => system::ping(req.method()),
        Route::Version => system::version(backend),
        Route::Info => system::info(backend).await,
        Route::SystemDf => system::disk_usage(backend).await,
        Route::Auth => system::auth(backend, req).await,
        Route::ImageList => images::list(backend, &query).await,
        Route::ImageCreate => images::create(backend, &query, req).await,
        Route::ImageLoad => images::load(backend, req).await,
        Route::ImageSaveMany => images::save(backend, query.all("names")).await,
        Route::ImagePrune => images::prune(backend, &query).await,
        Route::ImageInspect(name) => images::inspect(backend, &name).await,
        Route::ImageHistory(name) => images::history(backend, &name).await,
        Route::ImageSave(name) => images::save(backend, vec![name]).await,
        Route::ImagePush(name) => images::push(backend, &name, &query, &req),
        Route::ImageTag(name) => images::tag(backend, &name, &query).await,
        Route::ImageDelete(name) => images::remove(backend, &name, &query).await,
        Route::ContainerCreate => containers::create(backend, &query, req).await,
        Route::ContainerList => containers::list(backend, &query).await,
        Route::ContainerPrune => containers::prune(backend, &query).await,
        Route::Container(id, action) => container(backend, &id, action, query, req).await,
        Route::ExecStart(id) => streams::exec_start(backend, &id, req).await,
        Route::ExecResize(id) => {
            streams::resize(backend, streams::ResizeTarget::Exec(&id), &query).await
        }
        Route::ExecInspect(id) => streams::exec_inspect(backend, &id).await,
        Route::Events => events::events(backend, &query).await,
        Route::Commit => archive::commit(backend, &query, req).await,
        Route::NetworkList => networks::list(backend, &query).await,
        Route::NetworkCreate => networks::create(backend, req).await,
        Route::NetworkPrune => networks::prune(backend, &query).await,
        Route::NetworkInspect(id) => networks::inspect(backend, &id, &query).await,
        Route::NetworkDelete(id) => networks::remove(backend, &id).await,
        Route::NetworkConnect(id) => networks::connect(backend, &id, req).await,
        Route::NetworkDisconnect(id) => networks::disconnect(backend, &id, req).await,
        Route::BuildPrune => Ok(crate::body::json(
            hyper::StatusCode::OK,
            &serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0}),
        )),
        Route::VolumeList => volumes::list(backend, &query).await,
        Route::VolumeCreate => volumes::create(backend, req).await,
        Route::VolumePrune => volumes::prune(backend, &query).await,
        Route::VolumeInspect(name) => volumes::inspect(backend, &name).await,
        Route::VolumeDelete(name) => volumes::remove(backend, &name, &query).await,
    }
}

async fn container(
    backend: &Arc<Backend>,
    id: &str,
    action: ContainerAction,
    query: Query,
    req: Request<Incoming>,
) -> HandlerResult {
    use ContainerAction as A;
    match action {
        A::Inspect => containers::inspect(backend, id).await,
        A::Start => containers::start(backend, id).await,
        A::Stop => containers::stop(backend, id, &query).await,
        A::Restart => containers::restart(backend, id, &query).await,
        A::Kill => containers::kill(backend, id, &query).await,
        A::Pause => containers::pause(backend, id, true).await,
        A::Unpause => containers::pause(backend, id, false).await,
        A::Wait => containers::wait(backend, id, &query).await,
        A::Rename => containers::rename(backend, id, &query).await,
        A::Delete => containers::remove(backend, id, &query).await,
        A::Top => containers::top(backend, id, &query).await,
        A::Attach => streams::attach(backend, id, &query, req).await,
        A::Resize => streams::resize(backend, streams::ResizeTarget::Container(id), &query).await,
        A::Exec => streams::exec_create(backend, id, req).await,
        A::Logs => logs::logs(backend, id, &query).await,
        A::Stats => logs::stats(backend, id, &query).await,
        A::Changes => archive::changes(backend, id).await,
        A::Export => archive::export(backend, id).await,
        A::ArchiveGet => archive::archive_get(backend, id, &query).await,
        A::ArchiveHead => archive::archive_head(backend, id, &query).await,
        A::ArchivePut => archive::archive_put(backend, id, &query, req).await,
        A::Update => containers::update(backend, id, req).await,
    }
}

/// Container work that blocks (snapshots, files) run off the async threads.
pub(crate) async fn container_blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, berth_container::ContainerError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| ApiError::from_kind(&e)),
        Err(e) => Err(ApiError::new(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )),
    }
}

/// Docker's `filters` parameter, `{"key":["v1","v2"]}` or the older `{"key":{"v1":true}}`,
/// as key -> values.
pub(crate) fn filter_args(q: &Query) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(out);
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid filters: not a JSON object"))?;
    for (key, vals) in obj {
        let vals: Vec<String> = match vals {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
        };
        out.insert(key.clone(), vals);
    }
    Ok(out)
}

/// A time filter (`until`, `since`): unix seconds (with an optional fraction) or RFC 3339.
pub(crate) fn parse_time_filter(v: &str) -> Result<i64, ApiError> {
    if let Ok(f) = v.parse::<f64>() {
        return Ok(f as i64);
    }
    berth_image::time::parse_rfc3339_secs(v)
        .ok_or_else(|| ApiError::bad_request(format!("invalid time value: {v}")))
}

/// `label=k`, `label=k=v`, `label!=k`, `label!=k=v` against a label map.
pub(crate) fn labels_match(
    labels: &std::collections::HashMap<String, String>,
    filters: &BTreeMap<String, Vec<String>>,
) -> bool {
    let has = |f: &str| match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(|x| x == v).unwrap_or(false),
        None => labels.contains_key(f),
    };
    filters.get("label").into_iter().flatten().all(|f| has(f))
        && !filters.get("label!").into_iter().flatten().any(|f| has(f))
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, crate::error::ApiError>
where
    F: FnOnce() -> Result<T, berth_image::ImageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(crate::error::ApiError::new(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )),
    }
}
