//! `berth save [-o FILE] IMAGE...`: `GET /images/get?names=..` streamed to a file or stdout.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use hyper::Method;
use tokio::io::AsyncWriteExt;

use crate::client::{body_stream, empty, Query};
use crate::commands::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut query = Query::new();
    for image in &args.images {
        query = query.add("names", image);
    }
    let resp = ctx
        .client
        .request(
            Method::GET,
            &format!("/images/get{}", query.finish()),
            &[],
            empty(),
        )
        .await?;
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match &args.output {
        // Written next to the target and renamed at the end, so a failed save leaves no
        // half-written archive behind.
        Some(path) => Box::new(
            tokio::fs::File::create(temp_path(path))
                .await
                .with_context(|| format!("failed to save image: creating {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let mut body = body_stream(resp);
    let copied = async {
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    drop(out);
    if let Some(path) = &args.output {
        match copied {
            Ok(()) => tokio::fs::rename(temp_path(path), path).await?,
            Err(e) => {
                let _ = tokio::fs::remove_file(temp_path(path)).await;
                return Err(e.context("failed to save image"));
            }
        }
    }
    copied
}

fn temp_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".berth-tmp");
    path.with_file_name(name)
}
