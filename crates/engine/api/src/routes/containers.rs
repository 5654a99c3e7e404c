//! `/containers/...`: create, list, inspect, the lifecycle verbs, wait, rename, prune.
//! Streams (attach, logs, exec) are in [`super::streams`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_container::record::{ContainerRecord, MountType, Status, ZERO_TIME};
use berth_container::service::StopOptions;
use bollard_stubs::models::{ContainerConfig, HostConfig, NetworkingConfig};
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
    let networking: Option<NetworkingConfig> = match raw.get("NetworkingConfig") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid NetworkingConfig: {e}")))?,
        ),
    };
    let name = q.get("name").map(str::to_string);
    let svc = backend.containers.clone();
    let (id, warnings) =
        container_blocking(move || svc.create(name.as_deref(), config, host_config, networking))
            .await?;
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

/// What a container's record says of one network: Docker's `EndpointSettings`.
fn endpoint_json(
    rec: &ContainerRecord,
    network: &str,
    req: Option<&berth_network::EndpointRequest>,
    network_id: &dyn Fn(&str) -> String,
) -> Value {
    let ep = rec.endpoints.iter().find(|e| e.network_name == network);
    let ipam = req
        .filter(|r| r.ipv4.is_some() || r.ipv6.is_some())
        .map(|r| {
            json!({
                "IPv4Address": r.ipv4.map(|i| i.to_string()).unwrap_or_default(),
                "IPv6Address": r.ipv6.map(|i| i.to_string()).unwrap_or_default(),
            })
        })
        .unwrap_or(Value::Null);
    let aliases = req
        .filter(|r| !r.aliases.is_empty())
        .map(|r| json!(r.aliases))
        .unwrap_or(Value::Null);
    let s = |v: Option<String>| v.unwrap_or_default();
    json!({
        "IPAMConfig": ipam,
        "Links": null,
        "Aliases": aliases,
        "MacAddress": s(ep.map(|e| e.mac.clone())),
        "DriverOpts": null,
        "GwPriority": 0,
        "NetworkID": ep.map(|e| e.network_id.clone()).unwrap_or_else(|| network_id(network)),
        "EndpointID": s(ep.map(|e| e.endpoint_id.clone())),
        "Gateway": s(ep.and_then(|e| e.gateway4).map(|g| g.to_string())),
        "IPAddress": s(ep.and_then(|e| e.ipv4).map(|i| i.addr().to_string())),
        "IPPrefixLen": ep.and_then(|e| e.ipv4).map(|i| i.prefix_len()).unwrap_or(0),
        "IPv6Gateway": s(ep.and_then(|e| e.gateway6).map(|g| g.to_string())),
        "GlobalIPv6Address": s(ep.and_then(|e| e.ipv6).map(|i| i.addr().to_string())),
        "GlobalIPv6PrefixLen": ep.and_then(|e| e.ipv6).map(|i| i.prefix_len()).unwrap_or(0),
        "DNSNames": ep.filter(|e| !e.dns_names.is_empty()).map(|e| json!(e.dns_names)).unwrap_or(Value::Null),
    })
}

/// `NetworkSettings.Networks`: the record's networks (or the `none` / `host` mode).
fn networks_json(rec: &ContainerRecord, network_id: &dyn Fn(&str) -> String) -> Value {
    let mut out = serde_json::Map::new();
    if rec.networks.is_empty() {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode == "none" || mode == "host" {
            out.insert(mode.clone(), endpoint_json(rec, &mode, None, network_id));
        }
    }
    for (name, req) in &rec.networks {
        out.insert(
            name.clone(),
            endpoint_json(rec, name, Some(req), network_id),
        );
    }
    Value::Object(out)
}

/// `NetworkSettings.Ports`: published ports with their bindings, exposed ones as null.
fn ports_json(rec: &ContainerRecord) -> Value {
    let mut out = serde_json::Map::new();
    if !rec.state.status.is_live() {
        return Value::Object(out);
    }
    for key in rec.config.exposed_ports.iter().flatten() {
        out.insert(key.clone(), Value::Null);
    }
    for p in &rec.ports {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let entry = out.entry(key).or_insert_with(|| json!([]));
        if entry.is_null() {
            *entry = json!([]);
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}));
        }
    }
    Value::Object(out)
}

/// The `Ports` of `docker ps`: published ports, then exposed ones without a binding.
fn port_list_json(rec: &ContainerRecord) -> Value {
    let mut out = Vec::new();
    let mut published = std::collections::BTreeSet::new();
    if rec.state.status.is_live() {
        for p in &rec.ports {
            published.insert((p.container_port, p.proto));
            out.push(json!({
                "IP": p.host_ip.to_string(),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.proto.as_str(),
            }));
        }
    }
    for key in rec.config.exposed_ports.iter().flatten() {
        if let Ok((port, proto)) = berth_network::ports::parse_port_key(key) {
            if !published.contains(&(port, proto)) {
                out.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
            }
        }
    }
    Value::Array(out)
}

pub(crate) fn summary_json(rec: &ContainerRecord) -> Value {
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image,
        "ImageID": rec.image_id,
        "Command": command_text(rec),
        "Created": secs_of(&rec.created),
        "Ports": port_list_json(rec),
        "Labels": rec.config.labels.clone().unwrap_or_default(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": networks_json(rec, &|_| String::new())},
        "Mounts": mounts_json(rec),
    })
}

pub(crate) fn inspect_json(
    rec: &ContainerRecord,
    exec_ids: Vec<String>,
    rootfs: &str,
    sandbox_key: &str,
    network_id: &dyn Fn(&str) -> String,
) -> Value {
    let st = &rec.state;
    let mut host_config = serde_json::to_value(&rec.host_config).unwrap_or(json!({}));
    // Docker's documents always carry these; clients (docker-py) index into them.
    for (k, d) in [
        ("Binds", Value::Null),
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("NetworkMode", json!("bridge")),
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
        "NetworkSettings": network_settings_json(rec, sandbox_key, network_id),
    })
}

/// Inspect's `NetworkSettings`, with the deprecated top-level fields of the default
/// bridge's endpoint that older clients still read.
fn network_settings_json(
    rec: &ContainerRecord,
    sandbox_key: &str,
    network_id: &dyn Fn(&str) -> String,
) -> Value {
    let live = rec.state.status.is_live();
    let bridge = rec.endpoints.iter().find(|e| e.network_name == "bridge");
    let s = |v: Option<String>| v.unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": if live && !sandbox_key.is_empty() { berth_core::sha256_digest(sandbox_key.as_bytes()).to_string()[7..].to_string() } else { String::new() },
        "SandboxKey": if live { sandbox_key } else { "" },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_json(rec),
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": s(bridge.map(|e| e.endpoint_id.clone())),
        "Gateway": s(bridge.and_then(|e| e.gateway4).map(|g| g.to_string())),
        "GlobalIPv6Address": s(bridge.and_then(|e| e.ipv6).map(|i| i.addr().to_string())),
        "GlobalIPv6PrefixLen": bridge.and_then(|e| e.ipv6).map(|i| i.prefix_len()).unwrap_or(0),
        "IPAddress": s(bridge.and_then(|e| e.ipv4).map(|i| i.addr().to_string())),
        "IPPrefixLen": bridge.and_then(|e| e.ipv4).map(|i| i.prefix_len()).unwrap_or(0),
        "IPv6Gateway": s(bridge.and_then(|e| e.gateway6).map(|g| g.to_string())),
        "MacAddress": s(bridge.map(|e| e.mac.clone())),
        "Networks": networks_json(rec, network_id),
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
            "network" => vals.iter().any(|v| {
                rec.host_config.network_mode.as_deref() == Some(v.as_str())
                    || rec.networks.iter().any(|(n, _)| n == v)
                    || rec
                        .endpoints
                        .iter()
                        .any(|e| e.network_id.starts_with(v.as_str()))
            }),
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
        &inspect_json(
            &rec,
            execs,
            &root,
            &svc.monitor_dir(&c.id).join("netns").to_string_lossy(),
            &|name| backend.networks.get(name).map(|n| n.id).unwrap_or_default(),
        ),
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
