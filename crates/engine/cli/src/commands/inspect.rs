//! `inspect` for every kind of object: `GET /containers/{id}/json`, `/images/{name}/json`,
//! `/networks/{name}`, `/volumes/{name}`, printed as one indented JSON array in the daemon's key order or through
//! `--format`. The top-level `berth inspect` tries a container, an image, a network, then a volume,
//! unless `--type` names one. Objects that are missing are reported after the output (exit 1).

use anyhow::Result;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;

use crate::client::{empty, encode, path_name, DaemonError};
use crate::commands::{print, Ctx, Exit};
use crate::format::{indent_json, Template};

/// A kind of object `inspect` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    fn path(self, name: &str) -> String {
        match self {
            Kind::Container => format!("/containers/{}/json", encode(name)),
            Kind::Image => format!("/images/{}/json", path_name(name)),
            Kind::Network => format!("/networks/{}", encode(name)),
            Kind::Volume => format!("/volumes/{}", encode(name)),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "TYPE", value_enum)]
    kind: Option<Kind>,
    #[arg(value_name = "NAME|ID", required = true)]
    names: Vec<String>,
}

/// The raw JSON of `name` as a `kind`.
async fn fetch(ctx: &Ctx, kind: Kind, name: &str, query: &str) -> Result<Bytes> {
    let resp = ctx
        .client
        .request(
            Method::GET,
            &format!("{}{query}", kind.path(name)),
            &[],
            empty(),
        )
        .await?;
    Ok(resp.into_body().collect().await?.to_bytes())
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<DaemonError>()
        .is_some_and(|d| d.status == hyper::StatusCode::NOT_FOUND)
}

/// The first of `kinds` that `name` is; with several kinds, "No such object" when none.
async fn fetch_any(ctx: &Ctx, kinds: &[Kind], name: &str, query: &str) -> Result<Bytes> {
    let mut last = None;
    for &kind in kinds {
        match fetch(ctx, kind, name, query).await {
            Ok(raw) => return Ok(raw),
            Err(e) if is_not_found(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    match last {
        Some(e) if kinds.len() == 1 => Err(e),
        _ => Err(anyhow::anyhow!("Error: No such object: {name}")),
    }
}

/// Prints the objects found as docker's `inspect` does: the whole documents as an indented
/// array (`[]` when none was found), or each through the template; errors follow on stderr.
pub fn render(found: &[Bytes], format: Option<&str>) -> Result<String> {
    let template = match format {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut out = String::new();
    match &template {
        None => {
            let joined: Vec<&str> = found
                .iter()
                .map(|b| std::str::from_utf8(b).unwrap_or("null").trim())
                .collect();
            out.push_str(&indent_json(format!("[{}]", joined.join(",")).as_bytes()));
            out.push('\n');
        }
        Some(t) => {
            for raw in found {
                let value: serde_json::Value = serde_json::from_slice(raw)?;
                out.push_str(&t.render(&value)?);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Inspects each of `names` as the first of `kinds` it is.
pub async fn inspect(
    ctx: &Ctx,
    kinds: &[Kind],
    names: &[String],
    format: Option<&str>,
) -> Result<()> {
    inspect_with(ctx, kinds, names, format, "").await
}

/// [`inspect`] with `query` (`?verbose=true`) added to each request.
pub async fn inspect_with(
    ctx: &Ctx,
    kinds: &[Kind],
    names: &[String],
    format: Option<&str>,
    query: &str,
) -> Result<()> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match fetch_any(ctx, kinds, name, query).await {
            Ok(raw) => found.push(raw),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    print(&render(&found, format)?)?;
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Err(Exit(1).into())
}

/// `berth inspect [--type TYPE] NAME...`.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let kinds = match args.kind {
        Some(k) => vec![k],
        None => vec![Kind::Container, Kind::Image, Kind::Network, Kind::Volume],
    };
    inspect(ctx, &kinds, &args.names, args.format.as_deref()).await
}
