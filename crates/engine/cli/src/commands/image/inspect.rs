//! `berth image inspect IMAGE...`: `GET /images/{name}/json`, printed as an indented JSON array
//! in the daemon's key order, or through `--format`.

use anyhow::Result;
use http_body_util::BodyExt;
use hyper::Method;

use crate::client::{empty, path_name};
use crate::commands::{print, Ctx, Exit};
use crate::format::{indent_json, Template};

#[derive(clap::Args)]
pub struct Args {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let template = match args.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for image in &args.images {
        let path = format!("/images/{}/json", path_name(image));
        match ctx.client.request(Method::GET, &path, &[], empty()).await {
            Ok(resp) => found.push(resp.into_body().collect().await?.to_bytes()),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
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
            for raw in &found {
                let value: serde_json::Value = serde_json::from_slice(raw)?;
                out.push_str(&t.render(&value)?);
                out.push('\n');
            }
        }
    }
    print(&out)?;
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Err(Exit(1).into())
}
