//! `berth load [-i FILE]`: `POST /images/load` with the archive as the body.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hyper::Method;

use crate::client::{reader_body, Body, Query};
use crate::commands::Ctx;
use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

/// The archive as a request body: a file, or stdin (refusing an interactive terminal).
pub async fn input_body(path: Option<&std::path::Path>) -> Result<Body> {
    match path {
        Some(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .with_context(|| format!("open {}", p.display()))?;
            Ok(reader_body(f))
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Ok(reader_body(tokio::io::stdin()))
        }
    }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let body = input_body(args.input.as_deref()).await?;
    let query = Query::new().flag("quiet", args.quiet).finish();
    let resp = ctx
        .client
        .request(
            Method::POST,
            &format!("/images/load{query}"),
            &[("Content-Type", "application/x-tar".to_string())],
            body,
        )
        .await?;
    let is_json = resp
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        // `-q` still shows the "Loaded image" lines (the daemon leaves out only the progress).
        let mut sink = progress::stdout_sink(false);
        progress::display(resp, sink.as_mut()).await?;
    } else {
        use http_body_util::BodyExt;
        let bytes = resp.into_body().collect().await?.to_bytes();
        crate::commands::print(&String::from_utf8_lossy(&bytes))?;
    }
    Ok(())
}
