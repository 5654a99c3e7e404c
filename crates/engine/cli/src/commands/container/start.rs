//! `berth start [-a] [-i] CONTAINER...`: `POST /containers/{id}/start` for each container; with
//! `-a` or `-i`, one container is attached first and followed to its exit, like `run`.

use anyhow::{bail, Result};
use serde_json::Value;

use super::session::{self, Attach, TtyOf, Waiter};
use crate::client::encode;
use crate::commands::{print, Ctx};
use crate::stream::{Ended, Session};
use crate::terminal;

#[derive(clap::Args)]
pub struct Args {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if !(args.attach || args.interactive) {
        let mut failed = Vec::new();
        for c in &args.containers {
            match session::start(ctx, c).await {
                Ok(()) => print(&format!("{c}\n"))?,
                Err(e) => {
                    eprintln!("{e:#}");
                    failed.push(c.as_str());
                }
            }
        }
        if !failed.is_empty() {
            bail!("Error: failed to start containers: {}", failed.join(", "));
        }
        return Ok(());
    }
    if args.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let inspect: Value = ctx
        .client
        .get_json(&format!("/containers/{}/json", encode(&args.containers[0])))
        .await?;
    let id = inspect["Id"]
        .as_str()
        .unwrap_or(&args.containers[0])
        .to_string();
    let tty = inspect["Config"]["Tty"] == true;
    let auto_remove = inspect["HostConfig"]["AutoRemove"] == true;
    let detach_keys = session::detach_keys_setting(ctx, args.detach_keys.as_deref());
    let attach = Attach {
        stdin: args.interactive && inspect["Config"]["OpenStdin"] == true,
        stdout: true,
        stderr: true,
        detach_keys: detach_keys.as_deref(),
    };
    let conn = session::attach(ctx, &id, &attach).await?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let waiter = Waiter::register(ctx, &id, Some(condition)).await;
    if let Err(e) = session::start(ctx, &id).await {
        drop(conn);
        if auto_remove {
            if let Ok(w) = waiter {
                let _ = w.exit_code().await;
            }
        }
        return Err(e);
    }
    let session = Session {
        stdin: attach.stdin,
        tty,
        detach_keys: session::detach_keys(detach_keys.as_deref()),
    };
    let resize = (tty && terminal::stdout_is_terminal()).then_some(TtyOf::Container(&id));
    let signals = (!tty).then_some(id.as_str());
    if session::stream_session(ctx, conn, &session, resize, signals).await? == Ended::Detached {
        return Ok(());
    }
    Waiter::finish(waiter).await
}
