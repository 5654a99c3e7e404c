//! `/images/...`: list, pull and import, push, tag, inspect, history, remove, prune, save, load.

use std::sync::Arc;

use berth_core::Reference;
use berth_image::service::{ImageFilters, ImageSummary, Removed};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::blocking;
use super::system::registry_auth_header;
use crate::body::{self, ChannelWriter};
use crate::error::ApiError;
use crate::progress::stream_response;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

pub(crate) fn summary_json(s: &ImageSummary) -> Value {
    json!({
        "Id": s.id.to_string(),
        "ParentId": s.parent,
        "RepoTags": s.repo_tags,
        "RepoDigests": s.repo_digests,
        "Created": s.created,
        "Size": s.size,
        "SharedSize": -1,
        "Labels": s.labels,
        "Containers": -1,
    })
}

/// Docker's `filters` parameter: `{"key":["v1","v2"]}` or the older `{"key":{"v1":true}}`.
fn parse_filters(q: &Query) -> Result<ImageFilters, ApiError> {
    let mut f = ImageFilters::default();
    for (key, vals) in super::filter_args(q)? {
        match key.as_str() {
            "dangling" => {
                for v in &vals {
                    f.dangling = Some(match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter 'dangling={other}': must be true or false"
                            )))
                        }
                    });
                }
            }
            "reference" => f.reference.extend(vals),
            "label" => f.label.extend(vals),
            "before" => f.before = vals.into_iter().next(),
            "since" => f.since = vals.into_iter().next(),
            "until" => f.until = vals.into_iter().next(),
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    Ok(f)
}

pub async fn list(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = parse_filters(q)?;
    let images = backend.images.clone();
    let list = blocking(move || images.list(&filters)).await?;
    let out: Vec<Value> = list.iter().map(summary_json).collect();
    Ok(body::json(StatusCode::OK, &out))
}

/// `POST /images/create`: `fromImage` pulls, `fromSrc=-` imports the request body.
pub async fn create(backend: &Arc<Backend>, q: &Query, req: Request<Incoming>) -> HandlerResult {
    if let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()) {
        let tag = q.get("tag").unwrap_or("");
        let name = if tag.is_empty() {
            from.to_string()
        } else if tag.contains(':') {
            format!("{from}@{tag}")
        } else {
            format!("{from}:{tag}")
        };
        let reference = Reference::parse(&name)?;
        let auth = registry_auth_header(&req)?;
        let platform = q
            .get("platform")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let images = backend.images.clone();
        return Ok(stream_response(move |progress| async move {
            images
                .pull(&reference, platform.as_deref(), auth, &progress)
                .await?;
            Ok(())
        }));
    }
    match q.get("fromSrc") {
        Some("-") => {}
        Some(src) if !src.is_empty() => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("importing from a URL ({src}) is not supported by berth; send the tarball in the request body"),
            ))
        }
        _ => return Err(ApiError::bad_request("fromImage or fromSrc is required")),
    }
    let reference = match q.get("repo").filter(|s| !s.is_empty()) {
        None => None,
        Some(repo) => {
            let tag = q.get("tag").filter(|s| !s.is_empty());
            Some(Reference::parse(&match tag {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            })?)
        }
    };
    let changes = q.all("changes");
    let message = q.get("message").unwrap_or("").to_string();
    let platform = q
        .get("platform")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let reader = body::reader(req.into_body());
    let images = backend.images.clone();
    Ok(stream_response(move |progress| async move {
        let id = blocking(move || {
            images.import(
                reader,
                reference.as_ref(),
                &changes,
                &message,
                platform.as_deref(),
            )
        })
        .await?;
        progress.status(None, id.to_string());
        Ok(())
    }))
}

pub fn push(
    backend: &Arc<Backend>,
    name: &str,
    q: &Query,
    req: &Request<Incoming>,
) -> HandlerResult {
    let repo = Reference::parse_named(name)?;
    let tag = q.get("tag").filter(|s| !s.is_empty()).map(str::to_string);
    let auth = registry_auth_header(req)?;
    let images = backend.images.clone();
    Ok(stream_response(move |progress| async move {
        images.push(&repo, tag.as_deref(), auth, &progress).await?;
        Ok(())
    }))
}

pub async fn tag(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let repo = q
        .get("repo")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("repo is required"))?;
    let target = match q.get("tag").filter(|s| !s.is_empty()) {
        Some(t) => Reference::parse_named(repo)?.with_tag(t)?,
        None => Reference::parse(repo)?,
    };
    if target.digest().is_some() {
        return Err(ApiError::bad_request(
            "refusing to create a tag with a digest reference",
        ));
    }
    let images = backend.images.clone();
    let source = name.to_string();
    blocking(move || images.tag(&source, &target)).await?;
    Ok(body::status(StatusCode::CREATED))
}

pub async fn inspect(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    let images = backend.images.clone();
    let name = name.to_string();
    let d = blocking(move || images.inspect(&name)).await?;
    let cfg = &d.raw_config;
    let mut config = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
        "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": null
    });
    if let Some(Value::Object(c)) = cfg.get("config") {
        for (k, v) in c {
            config[k] = v.clone();
        }
    }
    let s = &d.summary;
    let out = json!({
        "Id": s.id.to_string(),
        "RepoTags": s.repo_tags,
        "RepoDigests": s.repo_digests,
        "Parent": s.parent,
        "Comment": cfg.get("comment").cloned().unwrap_or(json!("")),
        "Created": cfg.get("created").cloned().unwrap_or(json!("0001-01-01T00:00:00Z")),
        "DockerVersion": cfg.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": cfg.get("author").cloned().unwrap_or(json!("")),
        "Config": config,
        "Architecture": cfg.get("architecture").cloned().unwrap_or(json!("")),
        "Variant": cfg.get("variant").cloned(),
        "Os": cfg.get("os").cloned().unwrap_or(json!("")),
        "Size": s.size,
        "GraphDriver": {"Name": d.graph_driver, "Data": d.graph_data},
        "RootFS": {"Type": "layers", "Layers": cfg.pointer("/rootfs/diff_ids").cloned().unwrap_or(json!([]))},
        "Metadata": {"LastTagTime": d.last_tag_time.map(berth_image::time::rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())},
    });
    Ok(body::json(StatusCode::OK, &out))
}

pub async fn history(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    let images = backend.images.clone();
    let name = name.to_string();
    let h = blocking(move || images.history(&name)).await?;
    let out: Vec<Value> = h
        .iter()
        .map(|e| {
            json!({"Id": e.id, "Created": e.created, "CreatedBy": e.created_by, "Tags": e.tags, "Size": e.size, "Comment": e.comment})
        })
        .collect();
    Ok(body::json(StatusCode::OK, &out))
}

fn removed_json(r: &[Removed]) -> Vec<Value> {
    r.iter()
        .map(|x| match x {
            Removed::Untagged(s) => json!({"Untagged": s}),
            Removed::Deleted(s) => json!({"Deleted": s}),
        })
        .collect()
}

pub async fn remove(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let images = backend.images.clone();
    let name = name.to_string();
    let force = q.flag("force");
    let prune = !q.flag("noprune");
    in_use_conflict(backend, &name, force)?;
    let removed = blocking(move || images.remove(&name, force, prune)).await?;
    Ok(body::json(StatusCode::OK, &removed_json(&removed)))
}

/// Docker refuses to remove an image containers were made from: always while one runs,
/// without `force` otherwise. Removing one tag of several is always fine.
fn in_use_conflict(backend: &Backend, name: &str, force: bool) -> Result<(), ApiError> {
    let Ok(id) = backend.images.resolve(name) else {
        return Ok(());
    };
    let users = backend.containers.users_of_image(id.as_ref());
    let Some(first) = users.first() else {
        return Ok(());
    };
    let short = |s: &str| {
        s.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>()
    };
    let tags = backend
        .images
        .inspect(name)
        .map(|d| d.summary.repo_tags)
        .unwrap_or_default();
    let by_reference = Reference::parse(name)
        .map(|r| tags.contains(&r.familiar()))
        .unwrap_or(false);
    if by_reference && tags.len() > 1 {
        return Ok(());
    }
    let running = users.iter().find(|u| {
        backend
            .containers
            .get(u)
            .map(|c| c.status().is_live())
            .unwrap_or(false)
    });
    let conflict = |m: String| Err(ApiError::new(StatusCode::CONFLICT, m));
    match (by_reference, running) {
        (false, Some(r)) => conflict(format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            short(id.as_ref()),
            short(r)
        )),
        (true, _) if !force => conflict(format!(
            "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
            short(first),
            short(id.as_ref())
        )),
        (false, None) if !force => conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
            short(id.as_ref()),
            short(first)
        )),
        _ => Ok(()),
    }
}

pub async fn prune(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = parse_filters(q)?;
    let images = backend.images.clone();
    let report = blocking(move || images.prune(&filters)).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"ImagesDeleted": removed_json(&report.removed), "SpaceReclaimed": report.space_reclaimed}),
    ))
}

pub async fn save(backend: &Arc<Backend>, names: Vec<String>) -> HandlerResult {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given to save"));
    }
    // Resolve first so that an unknown name is a 404, not a broken tar.
    let images = backend.images.clone();
    let plan = {
        let names = names.clone();
        blocking(move || images.plan_save(&names)).await?
    };
    let (tx, resp) = body::channel("application/x-tar");
    let images = backend.images.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        if let Err(e) = images.save(&plan, &mut w) {
            w.fail(std::io::Error::other(e.to_string()));
        }
    });
    Ok(resp)
}

/// `quiet` only silences progress, and `load` reports none; the "Loaded image" lines always come.
pub async fn load(backend: &Arc<Backend>, req: Request<Incoming>) -> HandlerResult {
    let reader = body::reader(req.into_body());
    let images = backend.images.clone();
    Ok(stream_response(move |progress| async move {
        let loaded = blocking(move || images.load(reader)).await?;
        for name in loaded {
            progress.stream(format!(
                "Loaded image{}: {name}\n",
                if name.starts_with("sha256:") {
                    " ID"
                } else {
                    ""
                }
            ));
        }
        Ok(())
    }))
}
