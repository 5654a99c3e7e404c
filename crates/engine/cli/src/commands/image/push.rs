//! `berth push NAME[:TAG]`: `POST /images/{name}/push?tag=..`, with progress.

use anyhow::{bail, Result};
use berth_core::Reference;
use hyper::Method;

use crate::client::{empty, path_name, Query};
use crate::commands::Ctx;
use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let named = Reference::parse_named(&args.name)?;
    if named.digest().is_some() {
        bail!("invalid reference format: push takes NAME[:TAG], not a digest");
    }
    let mut query = Query::new();
    if let Some(t) = named.tag() {
        query = query.add("tag", t);
    }
    let auth = super::registry_auth(ctx, &named)?;
    let path = format!(
        "/images/{}/push{}",
        path_name(&named.familiar_repository()),
        query.finish()
    );
    let resp = ctx
        .client
        .request(Method::POST, &path, &[auth], empty())
        .await?;
    let mut sink = progress::stdout_sink(args.quiet);
    progress::display(resp, sink.as_mut()).await?;
    if args.quiet {
        crate::commands::print(&format!("{}\n", named.familiar()))?;
    }
    Ok(())
}
