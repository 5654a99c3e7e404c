//! `/containers/...`: create, list, inspect, the lifecycle verbs, wait, rename, prune.
//! Streams (attach, logs, exec) are in [`super::streams`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_container::record::{ContainerRecord, MountType, Status, ZERO_TIME};
use berth_container::service::StopOptions;
use bollard_stubs::models::{ContainerConfig, HostConfig};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::{container_blocking, filter_args};
use crate::body;
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

/// `POST /containers/create?name=`.
pub async fn create(backend: &Arc<Backend>, q: &Query, req: Request<Incoming>) -> HandlerResult {
    let raw: Value = body::collect_json(req.into_body()).await?;
    let config: ContainerConfig = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid container config: {e}")))?;
    if let Some(p) = raw.get("HostConfig").and_then(|h| h.get("RestartPolicy")) {
        check_restart_policy(p)?;
    }
    let host_config: HostConfig = match raw.get("HostConfig") {
        None | Some(Value::Null) => HostConfig::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
    };
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
        if !p.starts_with("linux") {
            return Err(ApiError::bad_request(format!(
                "image platform {p} is not supported by this daemon (linux)"
            )));
        }
    }
    let name = q.get("name").map(str::to_string);
    let svc = backend.containers.clone();
    let (id, warnings) =
        container_blocking(move || svc.create(name.as_deref(), config, host_config)).await?;
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

/// moby's `validateRestartPolicy`, on the request as sent (the typed config cannot hold an
/// unknown policy name).
fn check_restart_policy(p: &Value) -> Result<(), ApiError> {
    let name = p.get("Name").and_then(Value::as_str).unwrap_or("");
    let count = p
        .get("MaximumRetryCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let bad = |m: &str| {
        Err(ApiError::bad_request(format!(
            "invalid restart policy: {m}"
        )))
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if count != 0 => {
            bad("maximum retry count can only be used with 'on-failure'")
        }
        "" | "no" | "always" | "unless-stopped" => Ok(()),
        "on-failure" if count < 0 => bad("maximum retry count cannot be negative"),
        "on-failure" => Ok(()),
        other => bad(&format!(
            "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )),
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn secs_of(rfc3339: &str) -> i64 {
    berth_image::time::parse_rfc3339_secs(rfc3339).unwrap_or(0)
}

use berth_core::units::human_duration;

/// The `Status` column of `docker ps`.
fn status_text(rec: &ContainerRecord) -> String {
    let now = now_secs();
    let st = &rec.state;
    match st.status {
        Status::Running => format!("Up {}", human_duration(now - secs_of(&st.started_at))),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - secs_of(&st.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(now - secs_of(&st.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created | Status::Exited => {
            if st.finished_at == ZERO_TIME {
                "Created".into()
            } else {
                format!(
                    "Exited ({}) {} ago",
                    st.exit_code,
                    human_duration(now - secs_of(&st.finished_at))
                )
            }
        }
    }
}

fn mounts_json(rec: &ContainerRecord) -> Vec<Value> {
    rec.mounts
        .iter()
        .map(|m| {
            let mut v = json!({
                "Type": m.kind.as_str(),
                "Source": m.source,
                "Destination": m.destination,
                "Mode": m.mode,
                "RW": m.read_write,
                "Propagation": m.propagation,
            });
            if m.kind == MountType::Volume {
                v["Name"] = json!(m.name);
                v["Driver"] = json!("local");
            }
            v
        })
        .collect()
}

/// The `Command` column as moby writes it: arguments with spaces in single quotes.
fn command_text(rec: &ContainerRecord) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    parts.join(" ")
}

pub(crate) fn summary_json(rec: &ContainerRecord) -> Value {
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image,
        "ImageID": rec.image_id,
        "Command": command_text(rec),
        "Created": secs_of(&rec.created),
        "Ports": [],
        "Labels": rec.config.labels.clone().unwrap_or_default(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts_json(rec),
    })
}

pub(crate) fn inspect_json(rec: &ContainerRecord, exec_ids: Vec<String>, rootfs: &str) -> Value {
    let st = &rec.state;
    let mut host_config = serde_json::to_value(&rec.host_config).unwrap_or(json!({}));
    // Docker's documents always carry these; clients (docker-py) index into them.
    for (k, d) in [
        ("Binds", Value::Null),
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("NetworkMode", json!("none")),
        ("PortBindings", json!({})),
        (
            "RestartPolicy",
            json!({"Name": "no", "MaximumRetryCount": 0}),
        ),
        ("AutoRemove", json!(false)),
        ("VolumeDriver", json!("")),
        ("VolumesFrom", Value::Null),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        ("Dns", json!([])),
        ("DnsOptions", json!([])),
        ("DnsSearch", json!([])),
        ("ExtraHosts", Value::Null),
        ("Privileged", json!(false)),
        ("PublishAllPorts", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("SecurityOpt", Value::Null),
        ("ShmSize", json!(67108864)),
        ("Runtime", json!("berth-runc")),
        ("Memory", json!(0)),
        ("MemorySwap", json!(0)),
        ("MemoryReservation", json!(0)),
        ("NanoCpus", json!(0)),
        ("CpuShares", json!(0)),
        ("CpuPeriod", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpusetCpus", json!("")),
        ("CpusetMems", json!("")),
        ("BlkioWeight", json!(0)),
        ("PidsLimit", Value::Null),
        ("OomKillDisable", json!(false)),
        ("Ulimits", Value::Null),
        ("Init", Value::Null),
    ] {
        if host_config.get(k).is_none() {
            host_config[k] = d;
        }
    }
    let mut config = serde_json::to_value(&rec.config).unwrap_or(json!({}));
    for (k, d) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", json!([])),
        ("Cmd", Value::Null),
        ("Image", json!(rec.image)),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", json!({})),
    ] {
        if config.get(k).is_none() {
            config[k] = d;
        }
    }
    json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": st.status.as_str(),
            "Running": st.status.is_live(),
            "Paused": st.status == Status::Paused,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == Status::Dead,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at,
            "FinishedAt": st.finished_at,
        },
        "Image": rec.image_id,
        "ResolvConfPath": rec.resolv_conf_path,
        "HostnamePath": rec.hostname_path,
        "HostsPath": rec.hosts_path,
        "LogPath": rec.log_path,
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": rec.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) },
        "HostConfig": host_config,
        "GraphDriver": {"Name": rec.driver, "Data": {"MergedDir": rootfs}},
        "Mounts": mounts_json(rec),
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": {},
            "Networks": {},
        },
    })
}

/// Docker's `ps` filters on one record.
fn matches(
    rec: &ContainerRecord,
    filters: &BTreeMap<String, Vec<String>>,
    svc: &berth_container::ContainerService,
) -> Result<bool, ApiError> {
    for (key, vals) in filters {
        let ok = match key.as_str() {
            "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
            "name" => vals
                .iter()
                .any(|v| rec.name.contains(v.trim_start_matches('/'))),
            "status" => {
                for v in vals {
                    if ![
                        "created",
                        "restarting",
                        "running",
                        "removing",
                        "paused",
                        "exited",
                        "dead",
                    ]
                    .contains(&v.as_str())
                    {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'status={v}'"
                        )));
                    }
                }
                vals.iter().any(|v| v == rec.state.status.as_str())
            }
            "label" => {
                let labels = rec.config.labels.clone().unwrap_or_default();
                vals.iter().all(|v| match v.split_once('=') {
                    Some((k, want)) => labels.get(k).map(|x| x == want).unwrap_or(false),
                    None => labels.contains_key(v),
                })
            }
            "exited" => {
                let mut any = false;
                for v in vals {
                    let code: i64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid filter 'exited={v}'"))
                    })?;
                    any |= rec.state.status == Status::Exited && rec.state.exit_code == code;
                }
                any
            }
            "ancestor" => vals.iter().any(|v| {
                rec.image == *v
                    || svc
                        .images
                        .resolve(v)
                        .map(|id| id.to_string() == rec.image_id)
                        .unwrap_or(false)
            }),
            "volume" => vals.iter().any(|v| {
                rec.mounts
                    .iter()
                    .any(|m| m.name == *v || m.destination == *v || m.source == *v)
            }),
            "network" => vals
                .iter()
                .any(|v| rec.host_config.network_mode.as_deref() == Some(v.as_str())),
            "before" | "since" => {
                let mut ok = true;
                for v in vals {
                    let other = svc.get(v).map_err(|e| ApiError::from_kind(&e))?.record();
                    ok &= if key == "before" {
                        rec.created < other.created
                    } else {
                        rec.created > other.created
                    };
                }
                ok
            }
            // No health checks, published ports or swarm tasks in berth.
            "health" => vals.iter().any(|v| v == "none"),
            "is-task" => vals.iter().any(|v| v == "false"),
            "publish" | "expose" => false,
            "isolation" => vals.iter().any(|v| v == "default"),
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /containers/json`.
pub async fn list(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = filter_args(q)?;
    let all = q.flag("all");
    let limit: i64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(-1);
    let svc = &backend.containers;
    let mut recs: Vec<ContainerRecord> = svc.all().iter().map(|c| c.record()).collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let mut out = Vec::new();
    let show_all = all || limit > 0;
    for rec in recs {
        if !show_all && !rec.state.status.is_live() && rec.state.status != Status::Restarting {
            continue;
        }
        if !matches(&rec, &filters, svc)? {
            continue;
        }
        out.push(summary_json(&rec));
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
    }
    Ok(body::json(StatusCode::OK, &out))
}

/// `GET /containers/{id}/json`.
pub async fn inspect(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    let svc = &backend.containers;
    let c = svc.get(name).map_err(|e| ApiError::from_kind(&e))?;
    let rec = c.record();
    let execs = svc.exec_ids_of(&c.id);
    let root = svc.rootfs_dir(&c.id).to_string_lossy().to_string();
    Ok(body::json(
        StatusCode::OK,
        &inspect_json(&rec, execs, &root),
    ))
}

/// `POST /containers/{id}/start`.
pub async fn start(backend: &Arc<Backend>, name: &str) -> HandlerResult {
    match backend.containers.start(name).await {
        Ok(true) => Ok(body::status(StatusCode::NO_CONTENT)),
        Ok(false) => Ok(body::status(StatusCode::NOT_MODIFIED)),
        Err(e) => Err(ApiError::from_kind(&e)),
    }
}

fn stop_options(q: &Query) -> Result<StopOptions, ApiError> {
    let timeout = match q.get("t").or_else(|| q.get("timeout")) {
        Some(t) if !t.is_empty() => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}")))?,
        ),
        _ => None,
    };
    Ok(StopOptions {
        timeout,
        signal: q.get("signal").map(str::to_string),
    })
}

/// `POST /containers/{id}/stop`.
pub async fn stop(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let opts = stop_options(q)?;
    match backend.containers.stop(name, &opts).await {
        Ok(true) => Ok(body::status(StatusCode::NO_CONTENT)),
        Ok(false) => Ok(body::status(StatusCode::NOT_MODIFIED)),
        Err(e) => Err(ApiError::from_kind(&e)),
    }
}

/// `POST /containers/{id}/restart`.
pub async fn restart(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let opts = stop_options(q)?;
    backend
        .containers
        .restart(name, &opts)
        .await
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill`.
pub async fn kill(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    backend
        .containers
        .kill(name, q.get("signal"))
        .await
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub async fn pause(backend: &Arc<Backend>, name: &str, pause: bool) -> HandlerResult {
    backend
        .containers
        .pause(name, pause)
        .await
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    backend
        .containers
        .remove(name, q.flag("force"), q.flag("v"))
        .await
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/wait?condition=`.
pub async fn wait(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let condition = q.get("condition").unwrap_or("not-running").to_string();
    if !["not-running", "next-exit", "removed", ""].contains(&condition.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid condition: \"{condition}\""
        )));
    }
    // Resolve now, so a missing container is a 404 rather than a stream.
    let c = backend
        .containers
        .get(name)
        .map_err(|e| ApiError::from_kind(&e))?;
    let svc = backend.containers.clone();
    let id = c.id.clone();
    // Docker sends the headers at once and the body when the condition holds; clients
    // start the container in between.
    let (tx, resp) = body::channel("application/json");
    tokio::spawn(async move {
        let body = match svc.wait(&id, &condition).await {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        let _ = tx.send(Ok(bytes::Bytes::from(format!("{body}\n")))).await;
    });
    Ok(resp)
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let new = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Neither old nor new names may be empty"))?;
    backend
        .containers
        .rename(name, new)
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /containers/prune`: every stopped container (filters `until`, `label`).
pub async fn prune(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = filter_args(q)?;
    let svc = backend.containers.clone();
    let until = filters
        .get("until")
        .and_then(|v| v.first())
        .map(|u| super::parse_time_filter(u))
        .transpose()?;
    let mut deleted = Vec::new();
    let mut reclaimed: u64 = 0;
    for c in svc.all() {
        let rec = c.record();
        if rec.state.status.is_live() || rec.state.status == Status::Restarting {
            continue;
        }
        if let Some(u) = until {
            if secs_of(&rec.created) >= u {
                continue;
            }
        }
        let mut lf = BTreeMap::new();
        for k in ["label", "label!"] {
            if let Some(v) = filters.get(k) {
                lf.insert(k.to_string(), v.clone());
            }
        }
        if !super::labels_match(&rec.config.labels.clone().unwrap_or_default(), &lf) {
            continue;
        }
        let size = svc.rw_size(&c.id);
        if svc.remove(&c.id, false, false).await.is_ok() {
            deleted.push(c.id.clone());
            reclaimed += size;
        }
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
    ))
}

/// `POST /containers/{id}/update`: resources and restart policy.
pub async fn update(backend: &Arc<Backend>, name: &str, req: Request<Incoming>) -> HandlerResult {
    let patch: Value = body::collect_json(req.into_body()).await?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("the update must be a JSON object"));
    }
    let svc = backend.containers.clone();
    let name = name.to_string();
    let warnings = container_blocking(move || svc.update(&name, patch)).await?;
    Ok(body::json(StatusCode::OK, &json!({"Warnings": warnings})))
}

/// `GET /containers/{id}/top?ps_args=`: the container's processes, as `ps` shows them.
pub async fn top(backend: &Arc<Backend>, name: &str, q: &Query) -> HandlerResult {
    let svc = backend.containers.clone();
    let ps_args = q.get("ps_args").unwrap_or("-ef").to_string();
    let name = name.to_string();
    let (titles, procs) = container_blocking(move || svc.top(&name, &ps_args)).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"Titles": titles, "Processes": procs}),
    ))
}
