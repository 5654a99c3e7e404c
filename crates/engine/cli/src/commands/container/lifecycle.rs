//! The commands that act on a list of containers by name or ID and print each one that worked:
//! `stop`, `kill`, `restart`, `rm`, `pause`, `unpause`, and `wait` (which prints exit codes),
//! plus `rename`. As in docker, the containers are handled concurrently, the output keeps the
//! order given, and the failures are reported together at the end (exit 1).

use anyhow::{bail, Result};
use futures_util::future::join_all;
use hyper::Method;

use super::session::Waiter;
use crate::client::{empty, encode, DaemonError, Query};
use crate::commands::{failures, print, require_api, Ctx};

#[derive(clap::Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long, value_name = "SIGNAL")]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    timeout: Option<i64>,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, value_name = "SIGNAL")]
    signal: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct ContainersArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
}

/// What became of one container.
enum Outcome {
    /// Done: its name is printed.
    Done,
    /// Nothing to do, already reported on stderr.
    Skipped,
}

/// Runs `op` on every container at once; prints each that was done, in the order given, and
/// fails with all the errors (one per line) if any failed.
async fn each<F, Fut>(containers: &[String], op: F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let results = join_all(containers.iter().map(|c| op(c.clone()))).await;
    let mut errors = Vec::new();
    for (name, result) in containers.iter().zip(results) {
        match result {
            Ok(Outcome::Done) => print(&format!("{name}\n"))?,
            Ok(Outcome::Skipped) => {}
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    failures(errors)
}

async fn post(ctx: &Ctx, path: String) -> Result<Outcome> {
    ctx.client
        .request(Method::POST, &path, &[], empty())
        .await
        .map(|_| Outcome::Done)
}

/// The `signal` and `t` query of `stop` and `restart` (the daemon reads `signal` from API 1.42
/// on).
async fn stop_query(ctx: &Ctx, signal: Option<&str>, timeout: Option<i64>) -> Result<String> {
    let mut q = Query::new();
    if let Some(s) = signal.filter(|s| !s.is_empty()) {
        require_api(ctx, "--signal", "1.42").await?;
        q = q.add("signal", s);
    }
    if let Some(t) = timeout {
        q = q.add("t", &t.to_string());
    }
    Ok(q.finish())
}

pub async fn stop(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let q = stop_query(ctx, args.signal.as_deref(), args.timeout).await?;
    each(&args.containers, |c| {
        post(ctx, format!("/containers/{}/stop{q}", encode(&c)))
    })
    .await
}

pub async fn restart(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let q = stop_query(ctx, args.signal.as_deref(), args.timeout).await?;
    each(&args.containers, |c| {
        post(ctx, format!("/containers/{}/restart{q}", encode(&c)))
    })
    .await
}

pub async fn kill(ctx: &Ctx, args: KillArgs) -> Result<()> {
    let q = match args.signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Query::new().add("signal", s).finish(),
        None => String::new(),
    };
    each(&args.containers, |c| {
        post(ctx, format!("/containers/{}/kill{q}", encode(&c)))
    })
    .await
}

pub async fn pause(ctx: &Ctx, args: ContainersArgs) -> Result<()> {
    each(&args.containers, |c| {
        post(ctx, format!("/containers/{}/pause", encode(&c)))
    })
    .await
}

pub async fn unpause(ctx: &Ctx, args: ContainersArgs) -> Result<()> {
    each(&args.containers, |c| {
        post(ctx, format!("/containers/{}/unpause", encode(&c)))
    })
    .await
}

/// `DELETE /containers/{id}?force=1&v=1`. With `-f`, a container that does not exist is
/// reported but is not a failure.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<()> {
    let q = Query::new()
        .flag("force", args.force)
        .flag("v", args.volumes)
        .finish();
    let force = args.force;
    each(&args.containers, |c| {
        let q = &q;
        async move {
            let name = c.trim_matches('/');
            if name.is_empty() {
                bail!("Container name cannot be empty");
            }
            let path = format!("/containers/{}{q}", encode(name));
            match ctx
                .client
                .request(Method::DELETE, &path, &[], empty())
                .await
            {
                Ok(_) => Ok(Outcome::Done),
                Err(e)
                    if force
                        && e.downcast_ref::<DaemonError>()
                            .is_some_and(|d| d.status == hyper::StatusCode::NOT_FOUND) =>
                {
                    eprintln!("{e:#}");
                    Ok(Outcome::Skipped)
                }
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// `POST /containers/{id}/wait` for each container in turn, printing its exit code.
pub async fn wait(ctx: &Ctx, args: ContainersArgs) -> Result<()> {
    let mut errors = Vec::new();
    for c in &args.containers {
        let code = async { Waiter::register(ctx, c, None).await?.status_code().await };
        match code.await {
            Ok(code) => print(&format!("{code}\n"))?,
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    failures(errors)
}

pub async fn rename(ctx: &Ctx, args: RenameArgs) -> Result<()> {
    let (old, new) = (args.container.trim(), args.new_name.trim());
    if old.is_empty() || new.is_empty() {
        bail!("Error: Neither old nor new names may be empty");
    }
    let path = format!(
        "/containers/{}/rename{}",
        encode(old),
        Query::new().add("name", new).finish()
    );
    if let Err(e) = post(ctx, path).await {
        eprintln!("{e:#}");
        bail!("Error: failed to rename container named {old}");
    }
    Ok(())
}
