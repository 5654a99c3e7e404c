//! `berth pull NAME[:TAG|@DIGEST]`: `POST /images/create?fromImage=..&tag=..`, with progress.

use anyhow::Result;
use berth_core::Reference;
use hyper::Method;

use crate::client::{empty, Query};
use crate::commands::{print, Ctx};
use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let named = Reference::parse_named(&args.name)?;
    let reference = Reference::parse(&args.name)?;
    if named.tag().is_none() && named.digest().is_none() && !args.quiet {
        print("Using default tag: latest\n")?;
    }
    let mut sink = progress::stdout_sink(args.quiet);
    pull(ctx, &reference, args.platform.as_deref(), sink.as_mut()).await?;
    drop(sink);
    print(&format!("{}\n", full_name(&reference)))
}

/// `POST /images/create?fromImage=..&tag=..` for `reference`, its progress shown on `sink`.
pub async fn pull(
    ctx: &Ctx,
    reference: &Reference,
    platform: Option<&str>,
    sink: &mut dyn progress::Sink,
) -> Result<()> {
    // Reference::parse gives every reference a tag or a digest; the digest wins, as in docker.
    let tag_or_digest = match reference.digest() {
        Some(d) => d.as_ref().to_string(),
        None => reference.tag().unwrap_or("latest").to_string(),
    };
    let mut query = Query::new()
        .add("fromImage", &reference.familiar_repository())
        .add("tag", &tag_or_digest);
    if let Some(p) = platform {
        query = query.add("platform", p);
    }
    let auth = super::registry_auth(ctx, reference)?;
    let resp = ctx
        .client
        .request(
            Method::POST,
            &format!("/images/create{}", query.finish()),
            &[auth],
            empty(),
        )
        .await?;
    progress::display(resp, sink).await?;
    Ok(())
}

/// `docker.io/library/busybox:latest`: how docker names what it pulled.
pub fn full_name(reference: &Reference) -> String {
    let mut s = reference.repository();
    if let Some(d) = reference.digest() {
        s.push('@');
        s.push_str(d.as_ref());
    } else if let Some(t) = reference.tag() {
        s.push(':');
        s.push_str(t);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names() {
        assert_eq!(
            full_name(&Reference::parse("busybox").unwrap()),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full_name(&Reference::parse("localhost:5000/a/b:1").unwrap()),
            "localhost:5000/a/b:1"
        );
    }
}
