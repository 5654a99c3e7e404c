//! `berth`: the Docker-compatible command line.
//!
//! Every command except `daemon` talks to `berth daemon` over the Docker Engine API on a unix
//! socket (see [`client`]). One module per command under [`commands`]; output formatting lives
//! in [`format`], progress streams in [`progress`], stored credentials in [`config`].

mod client;
mod commands;
mod config;
mod format;
mod progress;
mod stream;
mod terminal;
mod timestamp;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{container, daemon, image, inspect, login, network, system, volume, Ctx};

pub const DEFAULT_HOST: &str = berth_daemon::DEFAULT_HOST;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A Docker-compatible container platform",
    disable_help_subcommand = true
)]
struct Cli {
    /// Daemon socket to connect to (unix:///path); defaults to $BERTH_HOST, $DOCKER_HOST, or
    /// unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    host: Option<String>,
    /// Location of client config files (default ~/.docker)
    #[arg(long, value_name = "DIR")]
    config: Option<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the berth daemon
    Daemon(daemon::Args),
    /// Download an image from a registry
    Pull(image::pull::Args),
    /// Upload an image to a registry
    Push(image::push::Args),
    /// List images
    Images(image::ls::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::tag::Args),
    /// Remove one or more images
    Rmi(image::rm::Args),
    /// Show the history of an image
    History(image::history::Args),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::save::Args),
    /// Load an image from a tar archive or STDIN
    Load(image::load::Args),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::import::Args),
    /// Manage images
    #[command(subcommand)]
    Image(image::Command),
    /// Create and run a new container from an image
    Run(container::run::RunArgs),
    /// Create a new container
    Create(container::run::CreateArgs),
    /// Start one or more stopped containers
    Start(container::start::Args),
    /// Stop one or more running containers
    Stop(container::lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(container::lifecycle::KillArgs),
    /// Restart one or more containers
    Restart(container::lifecycle::StopArgs),
    /// Remove one or more containers
    Rm(container::lifecycle::RmArgs),
    /// Pause all processes within one or more containers
    Pause(container::lifecycle::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::lifecycle::ContainersArgs),
    /// Rename a container
    Rename(container::lifecycle::RenameArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::lifecycle::ContainersArgs),
    /// List containers
    Ps(container::ps::Args),
    /// Return low-level information on containers, images or volumes
    Inspect(inspect::Args),
    /// Fetch the logs of a container
    Logs(container::logs::Args),
    /// Execute a command in a running container
    Exec(container::exec::Args),
    /// Display the running processes of a container
    Top(container::top::Args),
    /// List port mappings or a specific mapping for the container
    Port(container::port::Args),
    /// Manage containers
    #[command(subcommand)]
    Container(container::Command),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::Command),
    /// Manage networks
    #[command(subcommand)]
    Network(network::Command),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Manage berth
    #[command(subcommand)]
    System(system::Command),
    /// Show the berth version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
}

/// docker's status for a command line it cannot parse (the container's own codes are below it).
const USAGE_ERROR: u8 = 125;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(USAGE_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Daemon(args) => daemon::run(args, cli.debug),
        command => {
            let host = cli
                .host
                .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
                .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
                .unwrap_or_else(|| DEFAULT_HOST.to_string());
            let config_dir = cli.config.unwrap_or_else(config::default_dir);
            match client::Client::new(&host, cli.debug) {
                Ok(client) => {
                    let ctx = Ctx { client, config_dir };
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(dispatch(&ctx, command)),
                        Err(e) => Err(e.into()),
                    }
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<commands::Exit>() {
                return ExitCode::from(exit.0);
            }
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Daemon(_) => unreachable!("handled before the runtime starts"),
        Command::Pull(a) => image::pull::run(ctx, a).await,
        Command::Push(a) => image::push::run(ctx, a).await,
        Command::Images(a) => image::ls::run(ctx, a).await,
        Command::Tag(a) => image::tag::run(ctx, a).await,
        Command::Rmi(a) => image::rm::run(ctx, a).await,
        Command::History(a) => image::history::run(ctx, a).await,
        Command::Save(a) => image::save::run(ctx, a).await,
        Command::Load(a) => image::load::run(ctx, a).await,
        Command::Import(a) => image::import::run(ctx, a).await,
        Command::Image(c) => image::run(ctx, c).await,
        Command::Run(a) => container::run::run(ctx, a).await,
        Command::Create(a) => container::run::create(ctx, a).await,
        Command::Start(a) => container::start::run(ctx, a).await,
        Command::Stop(a) => container::lifecycle::stop(ctx, a).await,
        Command::Kill(a) => container::lifecycle::kill(ctx, a).await,
        Command::Restart(a) => container::lifecycle::restart(ctx, a).await,
        Command::Rm(a) => container::lifecycle::rm(ctx, a).await,
        Command::Pause(a) => container::lifecycle::pause(ctx, a).await,
        Command::Unpause(a) => container::lifecycle::unpause(ctx, a).await,
        Command::Rename(a) => container::lifecycle::rename(ctx, a).await,
        Command::Wait(a) => container::lifecycle::wait(ctx, a).await,
        Command::Ps(a) => container::ps::run(ctx, a).await,
        Command::Inspect(a) => inspect::run(ctx, a).await,
        Command::Logs(a) => container::logs::run(ctx, a).await,
        Command::Exec(a) => container::exec::run(ctx, a).await,
        Command::Top(a) => container::top::run(ctx, a).await,
        Command::Port(a) => container::port::run(ctx, a).await,
        Command::Container(c) => container::run(ctx, c).await,
        Command::Volume(c) => volume::run(ctx, c).await,
        Command::Network(c) => network::run(ctx, c).await,
        Command::Login(a) => login::login(ctx, a).await,
        Command::Logout(a) => login::logout(ctx, a).await,
        Command::System(c) => system::run(ctx, c).await,
        Command::Version(a) => system::version(ctx, a).await,
        Command::Info(a) => system::info(ctx, a).await,
    }
}
