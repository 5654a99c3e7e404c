//! `berth image ...` and its top-level shortcuts (`pull`, `images`, `rmi`, ...).

pub mod history;
pub mod import;
pub mod inspect;
pub mod load;
pub mod ls;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rm;
pub mod save;
pub mod tag;

use anyhow::Result;
use berth_core::Reference;

use super::Ctx;
use crate::config::ConfigFile;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Download an image from a registry
    Pull(pull::Args),
    /// Upload an image to a registry
    Push(push::Args),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ls::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::Args),
    /// Remove one or more images
    #[command(visible_alias = "remove", visible_alias = "rmi")]
    Rm(rm::Args),
    /// Display detailed information on one or more images
    Inspect(inspect::Args),
    /// Show the history of an image
    History(history::Args),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::Args),
    /// Load an image from a tar archive or STDIN
    Load(load::Args),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::Args),
    /// Remove unused images
    Prune(prune::Args),
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Pull(a) => pull::run(ctx, a).await,
        Command::Push(a) => push::run(ctx, a).await,
        Command::Ls(a) => ls::run(ctx, a).await,
        Command::Tag(a) => tag::run(ctx, a).await,
        Command::Rm(a) => rm::run(ctx, a).await,
        Command::Inspect(a) => inspect::run(ctx, a).await,
        Command::History(a) => history::run(ctx, a).await,
        Command::Save(a) => save::run(ctx, a).await,
        Command::Load(a) => load::run(ctx, a).await,
        Command::Import(a) => import::run(ctx, a).await,
        Command::Prune(a) => prune::run(ctx, a).await,
    }
}

/// The `X-Registry-Auth` header for `reference`'s registry, from the stored credentials.
pub fn registry_auth(ctx: &Ctx, reference: &Reference) -> Result<(&'static str, String)> {
    let config = ConfigFile::load(&ctx.config_dir)?;
    Ok((
        "X-Registry-Auth",
        config.auth_for(reference.domain()).header(),
    ))
}
