//! `berth image inspect IMAGE...`: `GET /images/{name}/json`, printed as an indented JSON array
//! in the daemon's key order, or through `--format`.

use anyhow::Result;

use crate::commands::inspect::{inspect, Kind};
use crate::commands::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    inspect(ctx, &[Kind::Image], &args.images, args.format.as_deref()).await
}
