//! `berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`: `POST /images/{src}/tag?repo=..&tag=..`.

use anyhow::{bail, Result};
use berth_core::Reference;
use hyper::Method;

use crate::client::{empty, path_name, Query};
use crate::commands::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let target = Reference::parse_named(&args.target)?;
    if target.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    let mut query = Query::new().add("repo", &target.repository());
    if let Some(t) = target.tag() {
        query = query.add("tag", t);
    }
    let path = format!("/images/{}/tag{}", path_name(&args.source), query.finish());
    ctx.client
        .request(Method::POST, &path, &[], empty())
        .await?;
    Ok(())
}
