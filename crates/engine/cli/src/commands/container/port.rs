//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: `GET /containers/{id}/json`, then the
//! container's published ports from `NetworkSettings.Ports` as docker prints them
//! (`80/tcp -> 0.0.0.0:8080`, or only `0.0.0.0:8080` for one port), in natural order.

use anyhow::{bail, Result};
use serde_json::Value;

use crate::client::encode;
use crate::commands::volume::natural_cmp;
use crate::commands::{print, Ctx};

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn frontends(bindings: &Value) -> impl Iterator<Item = String> + '_ {
    bindings.as_array().into_iter().flatten().map(|b| {
        join_host_port(
            b["HostIp"].as_str().unwrap_or(""),
            b["HostPort"].as_str().unwrap_or(""),
        )
    })
}

/// What `port` prints for `container` (inspected), `name` being how the user named it.
pub fn render(container: &Value, name: &str, port: Option<&str>) -> Result<String> {
    let ports = &container["NetworkSettings"]["Ports"];
    let mut out: Vec<String> = match port {
        Some(spec) => {
            let (number, proto) = spec.split_once('/').unwrap_or((spec, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if number.parse::<u16>().is_err() {
                let why = if !number.is_empty() && number.bytes().all(|c| c.is_ascii_digit()) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                bail!(
                    "Error: invalid port ({number}): strconv.ParseUint: parsing {number:?}: {why}"
                );
            }
            let found: Vec<String> = frontends(&ports[format!("{number}/{proto}")]).collect();
            if found.is_empty() {
                bail!("Error: No public port '{spec}' published for {name}");
            }
            found
        }
        None => ports
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(from, b)| frontends(b).map(move |f| format!("{from} -> {f}")))
            .collect(),
    };
    if out.is_empty() {
        return Ok(String::new());
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out.join("\n") + "\n")
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let container: Value = ctx
        .client
        .get_json(&format!("/containers/{}/json", encode(&args.container)))
        .await?;
    print(&render(&container, &args.container, args.port.as_deref())?)
}
