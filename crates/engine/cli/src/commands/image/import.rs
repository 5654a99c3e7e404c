//! `berth import FILE|URL|- [REPOSITORY[:TAG]]`: `POST /images/create?fromSrc=..` with the
//! tarball as the body (or a URL for the daemon to fetch).

use std::path::Path;

use anyhow::Result;
use berth_core::Reference;
use hyper::Method;

use crate::client::{empty, Query};
use crate::commands::Ctx;
use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "CHANGE")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long, value_name = "MESSAGE")]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    repository: Option<String>,
}

pub fn query(args: &Args) -> Result<String> {
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let mut q = Query::new().add("fromSrc", if is_url { &args.source } else { "-" });
    if let Some(r) = &args.repository {
        let named = Reference::parse_named(r)?;
        if named.digest().is_some() {
            anyhow::bail!("invalid reference format: cannot import to a digest");
        }
        q = q.add("repo", &named.repository());
        if let Some(t) = named.tag() {
            q = q.add("tag", t);
        }
    }
    if let Some(m) = &args.message {
        q = q.add("message", m);
    }
    for c in &args.change {
        q = q.add("changes", c);
    }
    if let Some(p) = &args.platform {
        q = q.add("platform", p);
    }
    Ok(q.finish())
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let q = query(&args)?;
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let body = if is_url {
        empty()
    } else if args.source == "-" {
        super::load::input_body(None).await?
    } else {
        super::load::input_body(Some(Path::new(&args.source))).await?
    };
    let resp = ctx
        .client
        .request(
            Method::POST,
            &format!("/images/create{q}"),
            &[("Content-Type", "application/x-tar".to_string())],
            body,
        )
        .await?;
    let mut sink = progress::stdout_sink(false);
    progress::display(resp, sink.as_mut()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn query_carries_repo_changes_and_message() {
        let t = T::parse_from(["import", "-c", "CMD [\"sh\"]", "-m", "hi", "-", "bb:1"]);
        assert_eq!(
            query(&t.args).unwrap(),
            "?fromSrc=-&repo=docker.io%2Flibrary%2Fbb&tag=1&message=hi&changes=CMD%20%5B%22sh%22%5D"
        );
        let t = T::parse_from(["import", "http://h/x.tar"]);
        assert_eq!(query(&t.args).unwrap(), "?fromSrc=http%3A%2F%2Fh%2Fx.tar");
    }
}
