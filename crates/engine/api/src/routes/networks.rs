//! `/networks/...`: create, list, inspect, remove, prune bridge networks; connect and
//! disconnect containers.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_network::{NetworkError, NetworkRecord};
use bollard_stubs::models::EndpointSettings;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::filter_args;
use crate::body;
use crate::error::ApiError;
use crate::router::Query;
use crate::server::{Backend, HandlerResult};

fn err(e: NetworkError) -> ApiError {
    ApiError::from_kind(&e)
}

async fn network_blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(err),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )),
    }
}

/// Docker's network document; `containers` only for inspect.
fn network_json(n: &NetworkRecord, containers: Option<Value>) -> Value {
    let config: Vec<Value> = n
        .subnets
        .iter()
        .map(|s| json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()}))
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver.as_str(),
        "EnableIPv4": true,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers.unwrap_or(json!({})),
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn containers_json(backend: &Backend, n: &NetworkRecord) -> Value {
    let mut out = serde_json::Map::new();
    for (id, name, ep) in backend.networks.endpoints_of(&n.id) {
        out.insert(
            id,
            json!({
                "Name": name,
                "EndpointID": ep.endpoint_id,
                "MacAddress": ep.mac,
                "IPv4Address": ep.ipv4.map(|i| i.to_string()).unwrap_or_default(),
                "IPv6Address": ep.ipv6.map(|i| i.to_string()).unwrap_or_default(),
            }),
        );
    }
    Value::Object(out)
}

pub async fn list(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = filter_args(q)?;
    for key in filters.keys() {
        if !["driver", "id", "label", "name", "scope", "type", "dangling"].contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    let mut out = Vec::new();
    for n in backend.networks.list() {
        if matches(backend, &n, &filters)? {
            out.push(network_json(&n, None));
        }
    }
    Ok(body::json(StatusCode::OK, &Value::Array(out)))
}

fn matches(
    backend: &Backend,
    n: &NetworkRecord,
    filters: &BTreeMap<String, Vec<String>>,
) -> Result<bool, ApiError> {
    for (key, vals) in filters {
        let ok = match key.as_str() {
            "driver" => vals.iter().any(|v| v == n.driver.as_str()),
            "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
            "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
            "scope" => vals.iter().any(|v| v == "local"),
            "type" => {
                for v in vals {
                    if v != "custom" && v != "builtin" {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter: 'type'='{v}'"
                        )));
                    }
                }
                vals.iter().any(|v| (v == "builtin") == n.predefined())
            }
            "label" => vals.iter().all(|v| match v.split_once('=') {
                Some((k, want)) => n.labels.get(k).map(|x| x == want).unwrap_or(false),
                None => n.labels.contains_key(v),
            }),
            "dangling" => {
                let want = match vals.first().map(String::as_str) {
                    Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'dangling={other}'"
                        )))
                    }
                    None => true,
                };
                let dangling = !n.predefined() && !backend.containers.network_in_use(&n.name);
                dangling == want
            }
            _ => true,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub async fn inspect(backend: &Arc<Backend>, id: &str, _q: &Query) -> HandlerResult {
    let n = backend.networks.get(id).map_err(err)?;
    let containers = containers_json(backend, &n);
    Ok(body::json(
        StatusCode::OK,
        &network_json(&n, Some(containers)),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default, rename = "IPRange")]
    ip_range: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    config: Option<Vec<IpamConfig>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    internal: Option<bool>,
    #[serde(default)]
    attachable: Option<bool>,
    #[serde(default)]
    ingress: Option<bool>,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    config_only: Option<bool>,
}

pub async fn create(backend: &Arc<Backend>, req: Request<Incoming>) -> HandlerResult {
    let b: CreateBody = body::collect_json(req.into_body()).await?;
    if b.ingress == Some(true) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ingress networks are a swarm feature, which berth does not have",
        ));
    }
    if b.config_only == Some(true) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "config-only networks are not supported by berth",
        ));
    }
    let ipam = b.ipam.unwrap_or_default();
    if let Some(d) = ipam
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "default")
    {
        return Err(ApiError::not_found(format!(
            "plugin \"{d}\" not found: berth has the default IPAM driver only"
        )));
    }
    let mut subnets = Vec::new();
    for c in ipam.config.unwrap_or_default() {
        if c.auxiliary_addresses
            .as_ref()
            .is_some_and(|a| !a.is_empty())
        {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "--aux-address is not supported by berth",
            ));
        }
        subnets.push((
            c.subnet.unwrap_or_default(),
            c.gateway.unwrap_or_default(),
            c.ip_range.unwrap_or_default(),
        ));
    }
    let request = berth_network::CreateRequest {
        name: b.name,
        driver: b.driver.unwrap_or_default(),
        internal: b.internal.unwrap_or(false),
        attachable: b.attachable.unwrap_or(false),
        enable_ipv6: b.enable_ipv6.unwrap_or(false),
        ipam: subnets,
        labels: b.labels.unwrap_or_default(),
        options: b.options.unwrap_or_default(),
    };
    let svc = backend.networks.clone();
    let id = network_blocking(move || svc.create(request)).await?;
    if let Ok(n) = backend.networks.get(&id) {
        backend.containers.emit_network(&n, "create", "");
    }
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warning": ""}),
    ))
}

pub async fn remove(backend: &Arc<Backend>, id: &str) -> HandlerResult {
    let n = backend.networks.get(id).map_err(err)?;
    let svc = backend.networks.clone();
    let nid = n.id.clone();
    network_blocking(move || svc.remove(&nid)).await?;
    backend.containers.emit_network(&n, "destroy", "");
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// Removes user-defined networks no container names (running or not).
pub async fn prune(backend: &Arc<Backend>, q: &Query) -> HandlerResult {
    let filters = filter_args(q)?;
    let until = match filters.get("until").and_then(|v| v.first()) {
        Some(v) => Some(super::parse_time_filter(v)?),
        None => None,
    };
    let mut deleted = Vec::new();
    for n in backend.networks.list() {
        if n.predefined() || backend.containers.network_in_use(&n.name) {
            continue;
        }
        if let Some(until) = until {
            if berth_image::time::parse_rfc3339_secs(&n.created).unwrap_or(0) >= until {
                continue;
            }
        }
        let labels: std::collections::HashMap<String, String> =
            n.labels.clone().into_iter().collect();
        if !super::labels_match(&labels, &filters) {
            continue;
        }
        let svc = backend.networks.clone();
        let nid = n.id.clone();
        match network_blocking(move || svc.remove(&nid)).await {
            Ok(()) => {
                backend.containers.emit_network(&n, "destroy", "");
                deleted.push(n.name.clone());
            }
            // A container started on it meanwhile: it is in use, not an error.
            Err(_) => continue,
        }
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"NetworksDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConnectBody {
    #[serde(default)]
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointSettings>,
    #[serde(default)]
    force: Option<bool>,
}

pub async fn connect(backend: &Arc<Backend>, id: &str, req: Request<Incoming>) -> HandlerResult {
    let b: ConnectBody = body::collect_json(req.into_body()).await?;
    let n = backend.networks.get(id).map_err(err)?;
    let request = match &b.endpoint_config {
        Some(s) => {
            berth_container::network::endpoint_request(s).map_err(|e| ApiError::from_kind(&e))?
        }
        None => Default::default(),
    };
    backend
        .containers
        .connect(&b.container, &n.id, request)
        .await
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::OK))
}

pub async fn disconnect(backend: &Arc<Backend>, id: &str, req: Request<Incoming>) -> HandlerResult {
    let b: ConnectBody = body::collect_json(req.into_body()).await?;
    let _ = b.force;
    let n = backend.networks.get(id).map_err(err)?;
    backend
        .containers
        .disconnect(&b.container, &n.id)
        .await
        .map_err(|e| ApiError::from_kind(&e))?;
    Ok(body::status(StatusCode::OK))
}
