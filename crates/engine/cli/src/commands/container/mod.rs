//! `berth container ...` and its top-level shortcuts (`run`, `ps`, `exec`, `logs`, ...).
//!
//! [`opts`] turns the `run`/`create` flags into the create body; [`session`] is the
//! attach-wait-start-stream flow that `run`, `start -a` and `exec` share; the other modules are
//! one command (or a small group of them) each.

pub mod exec;
pub mod lifecycle;
pub mod logs;
pub mod netopts;
pub mod opts;
pub mod port;
pub mod prune;
pub mod ps;
pub mod run;
pub mod session;
pub mod start;
pub mod top;

use anyhow::Result;

use super::inspect::Kind;
use super::Ctx;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a new container
    Create(run::CreateArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(start::Args),
    /// Stop one or more running containers
    Stop(lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(lifecycle::KillArgs),
    /// Restart one or more containers
    Restart(lifecycle::StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(lifecycle::RmArgs),
    /// Pause all processes within one or more containers
    Pause(lifecycle::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(lifecycle::ContainersArgs),
    /// Rename a container
    Rename(lifecycle::RenameArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(lifecycle::ContainersArgs),
    /// List containers
    #[command(visible_alias = "ps", visible_alias = "list")]
    Ls(ps::Args),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Display the running processes of a container
    Top(top::Args),
    /// Remove all stopped containers
    Prune(prune::Args),
    /// List port mappings or a specific mapping for the container
    Port(port::Args),
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Create(a) => run::create(ctx, a).await,
        Command::Run(a) => run::run(ctx, a).await,
        Command::Start(a) => start::run(ctx, a).await,
        Command::Stop(a) => lifecycle::stop(ctx, a).await,
        Command::Kill(a) => lifecycle::kill(ctx, a).await,
        Command::Restart(a) => lifecycle::restart(ctx, a).await,
        Command::Rm(a) => lifecycle::rm(ctx, a).await,
        Command::Pause(a) => lifecycle::pause(ctx, a).await,
        Command::Unpause(a) => lifecycle::unpause(ctx, a).await,
        Command::Rename(a) => lifecycle::rename(ctx, a).await,
        Command::Wait(a) => lifecycle::wait(ctx, a).await,
        Command::Ls(a) => ps::run(ctx, a).await,
        Command::Inspect(a) => {
            super::inspect::inspect(ctx, &[Kind::Container], &a.containers, a.format.as_deref())
                .await
        }
        Command::Logs(a) => logs::run(ctx, a).await,
        Command::Exec(a) => exec::run(ctx, a).await,
        Command::Top(a) => top::run(ctx, a).await,
        Command::Prune(a) => prune::run(ctx, a).await,
        Command::Port(a) => port::run(ctx, a).await,
    }
}
