//! `/_ping`, `/version`, `/info`, `/system/df`, `/auth`.

use std::sync::Arc;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::blocking;
use crate::body;
use crate::error::ApiError;
use crate::server::{Backend, HandlerResult};
use crate::version::{self, MAX_VERSION, MIN_VERSION};

pub fn ping(method: &Method) -> HandlerResult {
    let body = if method == Method::HEAD {
        body::empty()
    } else {
        body::full("OK")
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Docker-Experimental", "false")
        .header("Builder-Version", "1")
        .body(body)
        .expect("valid response"))
}

pub fn version(backend: &Backend) -> HandlerResult {
    let f = &backend.facts;
    let api = version::format(MAX_VERSION);
    let min = version::format(MIN_VERSION);
    Ok(body::json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "berth"},
            "Components": [{
                "Name": "Engine",
                "Version": f.version,
                "Details": {"ApiVersion": api, "MinAPIVersion": min, "Os": "linux", "Arch": "amd64", "KernelVersion": f.kernel_version, "Experimental": "false"}
            }],
            "Version": f.version,
            "ApiVersion": api,
            "MinAPIVersion": min,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": f.kernel_version,
            "BuildTime": "",
            "Experimental": false,
        }),
    ))
}

pub async fn info(backend: &Arc<Backend>) -> HandlerResult {
    let images = backend.images.clone();
    let count = blocking(move || images.count()).await?;
    let f = &backend.facts;
    let now = humantime_now();
    let (total, running, paused, stopped) = backend.containers.count();
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map(|v| v.trim() == "1")
        .unwrap_or(false);
    let mut warnings = backend.networks.notes();
    if !forwarding {
        warnings.push("WARNING: IPv4 forwarding is disabled: containers on bridge networks cannot reach other hosts".into());
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({
            "ID": f.daemon_id,
            "Containers": total, "ContainersRunning": running, "ContainersPaused": paused, "ContainersStopped": stopped,
            "Images": count,
            "Driver": f.storage_driver,
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "OomKillDisable": true,
            "IPv4Forwarding": forwarding, "FirewallBackend": {"Driver": backend.networks.firewall_backend().unwrap_or("none")}, "Debug": backend.debug, "NFd": open_fds(), "NGoroutines": 0,
            "SystemTime": now, "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": f.cgroup_version,
            "NEventsListener": 0, "KernelVersion": f.kernel_version, "OperatingSystem": f.operating_system,
            "OSVersion": "", "OSType": "linux", "Architecture": "x86_64",
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
                "IndexConfigs": insecure_index_configs(&f.insecure_registries),
                "Mirrors": []
            },
            "NCPU": f.ncpu, "MemTotal": f.mem_total, "DockerRootDir": f.data_root, "Name": f.hostname,
            "Labels": [], "ExperimentalBuild": false, "ServerVersion": f.version,
            "Runtimes": {f.runtime_name.clone(): {"path": f.runtime_path}}, "DefaultRuntime": f.runtime_name, "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": "", "NodeAddr": "", "RemoteManagers": null, "Error": ""},
            "LiveRestoreEnabled": true, "Isolation": "", "InitBinary": f.init_binary, "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": warnings,
        }),
    ))
}

fn insecure_index_configs(regs: &[String]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    for r in regs {
        m.insert(
            r.clone(),
            json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    serde_json::Value::Object(m)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn humantime_now() -> String {
    berth_image::time::rfc3339(berth_image::time::now_nanos())
}

pub async fn disk_usage(backend: &Arc<Backend>) -> HandlerResult {
    let images = backend.images.clone();
    let du = blocking(move || images.disk_usage()).await?;
    let svc = backend.containers.clone();
    let containers = tokio::task::spawn_blocking(move || svc.disk_usage())
        .await
        .unwrap_or_default();
    let volumes = backend.volumes.clone();
    let vols: Vec<serde_json::Value> = tokio::task::spawn_blocking(move || {
        let refs = |n: &str| volumes.refs(n).map(|r| r.len()).unwrap_or(0);
        volumes
            .list(&Default::default())
            .volumes
            .iter()
            .map(|v| {
                json!({
                    "Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint,
                    "CreatedAt": v.created_at, "Labels": v.labels, "Scope": v.scope,
                    "Options": v.options,
                    "UsageData": {"Size": volumes.usage(&v.name).map(|u| u as i64).unwrap_or(-1), "RefCount": refs(&v.name)},
                })
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    let list: Vec<_> = du
        .images
        .iter()
        .map(|(s, shared)| {
            let mut v = super::images::summary_json(s);
            v["SharedSize"] = json!(shared);
            v["Containers"] = json!(containers
                .iter()
                .filter(|(c, _)| c.image_id == s.id.to_string())
                .count());
            v
        })
        .collect();
    Ok(body::json(
        StatusCode::OK,
        &json!({"LayersSize": du.layers_size, "Images": list, "Containers": containers.iter().map(|(rec, rw)| {
            let mut v = super::containers::summary_json(rec);
            v["SizeRw"] = json!(rw);
            v
        }).collect::<Vec<_>>(), "Volumes": vols, "BuildCache": []}),
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default)]
    pub auth: String,
}

impl AuthConfig {
    pub(crate) fn into_registry_auth(self) -> Option<berth_image::RegistryAuth> {
        let (mut user, mut pass) = (self.username, self.password);
        if user.is_empty() && !self.auth.is_empty() {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim()) {
                if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                    user = u.to_string();
                    pass = p.to_string();
                }
            }
        }
        if user.is_empty() && self.identity_token.is_empty() {
            return None;
        }
        Some(berth_image::RegistryAuth {
            username: user,
            password: pass,
            identity_token: self.identity_token,
        })
    }
}

/// The `X-Registry-Auth` header: base64url (padded or not) JSON of an [`AuthConfig`].
pub(crate) fn registry_auth_header<B>(
    req: &Request<B>,
) -> Result<Option<berth_image::RegistryAuth>, ApiError> {
    let Some(h) = req.headers().get("X-Registry-Auth") else {
        return Ok(None);
    };
    let raw = h
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Registry-Auth is not ASCII"))?
        .trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let trimmed = raw.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Auth is not base64: {e}")))?;
    if bytes == b"{}" || bytes.is_empty() {
        return Ok(None);
    }
    let cfg: AuthConfig = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("X-Registry-Auth is not an auth config: {e}"))
    })?;
    Ok(cfg.into_registry_auth())
}

pub async fn auth(backend: &Arc<Backend>, req: Request<Incoming>) -> HandlerResult {
    let cfg: AuthConfig = body::collect_json(req.into_body()).await?;
    let server = cfg.server_address.clone();
    let auth = cfg
        .into_registry_auth()
        .ok_or_else(|| ApiError::bad_request("login needs a username and a password"))?;
    backend.images.login(&server, auth).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}
