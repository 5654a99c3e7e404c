//! A container's files: `POST /commit`, `GET .../changes`, `GET .../export`, and
//! `GET`/`HEAD`/`PUT .../archive` for `docker cp`.

use std::sync::Arc;

use base64::Engine;
use berth_core::Reference;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::container_blocking;
use crate::body::{self, ChannelWriter};
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`; the body, when
/// there is one, is a container config whose fields replace the container's.
pub async fn commit(backend: &Arc<Backend>, q: &Query, req: Request<Incoming>) -> HandlerResult {
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing container"))?
        .to_string();
    let reference = match q.get("repo").filter(|r| !r.is_empty()) {
        Some(repo) => {
            let tag = q.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
            Some(Reference::parse(&format!("{repo}:{tag}")).map_err(|e| ApiError::from_kind(&e))?)
        }
        None => None,
    };
    let bytes = body::collect(req.into_body(), 1 << 20).await?;
    let config_override = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
                ApiError::bad_request(format!("invalid JSON in the request body: {e}"))
            })?,
        )
    };
    let opts = berth_container::archive::CommitOptions {
        reference,
        changes: q.all("changes"),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        config_override,
        pause: q.get("pause").map(|_| q.flag("pause")).unwrap_or(true),
    };
    let svc = backend.containers.clone();
    let id = container_blocking(move || svc.commit(&container, opts)).await?;
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": id.to_string()}),
    ))
}

/// `GET /containers/{id}/changes`.
pub async fn changes(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    let svc = backend.containers.clone();
    let name = name.to_string();
    let list = container_blocking(move || svc.changes(&name)).await?;
    Ok(body::json(StatusCode::OK, &list))
}

/// A tar produced on a blocking thread, streamed as the response body.
fn stream_tar<F>(produce: F) -> Response<body::Body>
where
    F: FnOnce(&mut ChannelWriter) -> Result<(), berth_container::ContainerError> + Send + 'static,
{
    let (tx, resp) = body::channel("application/x-tar");
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        if let Err(e) = produce(&mut w) {
            w.fail(std::io::Error::other(e.to_string()));
        }
    });
    resp
}

/// `GET /containers/{id}/export`.
pub async fn export(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    backend
        .containers
        .get(name)
        .map_err(|e| ApiError::from_kind(&e))?;
    let svc = backend.containers.clone();
    let name = name.to_string();
    Ok(stream_tar(move |w| svc.export(&name, w)))
}

fn stat_header(st: &berth_container::archive::PathStat) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(st).unwrap_or_default())
}

fn archive_path(q: &Query) -> Result<String, ApiError> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

/// `HEAD /containers/{id}/archive?path=`.
pub async fn archive_head(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let path = archive_path(q)?;
    let svc = backend.containers.clone();
    let name = name.to_string();
    let st = container_blocking(move || svc.archive_stat(&name, &path)).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("X-Docker-Container-Path-Stat", stat_header(&st))
        .body(body::empty())
        .expect("valid response"))
}

/// `GET /containers/{id}/archive?path=`.
pub async fn archive_get(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let path = archive_path(q)?;
    let svc = backend.containers.clone();
    let (n, p) = (name.to_string(), path.clone());
    let st = container_blocking(move || svc.archive_stat(&n, &p)).await?;
    let svc = backend.containers.clone();
    let name = name.to_string();
    let mut resp = stream_tar(move |w| svc.archive_get(&name, &path, w));
    resp.headers_mut().insert(
        "X-Docker-Container-Path-Stat",
        stat_header(&st)
            .parse()
            .expect("base64 is a valid header value"),
    );
    Ok(resp)
}

/// `PUT /containers/{id}/archive?path=`: the body is a tar to extract there.
pub async fn archive_put(
    backend: &Arc<Backend>,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> HandlerResult {
    let early = match archive_path(q) {
        Ok(path) => match backend.containers.get(name) {
            Ok(_) => Ok(path),
            Err(e) => Err(ApiError::from_kind(&e)),
        },
        Err(e) => Err(e),
    };
    let path = match early {
        Ok(p) => p,
        Err(e) => {
            // Read what the client is still sending (as Go's server does, up to a point)
            // so it gets the answer rather than a broken pipe.
            let _ = body::collect(req.into_body(), 8 << 20).await;
            return Err(e);
        }
    };
    let svc = backend.containers.clone();
    let name = name.to_string();
    let reader = body::reader(req.into_body());
    container_blocking(move || svc.archive_put(&name, &path, reader)).await?;
    Ok(body::status(StatusCode::OK))
}
