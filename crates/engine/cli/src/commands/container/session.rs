//! The foreground container session shared by `run`, `start -a` and `exec`: attach before
//! start (so no output is lost), register the wait before start (so the exit is not missed),
//! then stream stdio ([`crate::stream`]) while the terminal size follows the local window and
//! signals are passed on to the container.

use anyhow::Result;
use hyper::body::Incoming;
use hyper::{Method, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::client::{empty, encode, read_json, Query};
use crate::commands::{Ctx, Exit};
use crate::config::ConfigFile;
use crate::stream::{self, Ended, Session};
use crate::terminal;

/// Which streams to attach.
pub struct Attach<'a> {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Option<&'a str>,
}

/// `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1[&stdin=1]`, upgraded to a raw
/// stream.
pub async fn attach(
    ctx: &Ctx,
    id: &str,
    a: &Attach<'_>,
) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
    let mut q = Query::new();
    if let Some(keys) = a.detach_keys {
        q = q.add("detachKeys", keys);
    }
    let q = q
        .flag("stderr", a.stderr)
        .flag("stdin", a.stdin)
        .flag("stdout", a.stdout)
        .add("stream", "1");
    ctx.client
        .hijack(
            &format!("/containers/{}/attach{}", encode(id), q.finish()),
            &[("Content-Type", "text/plain".to_string())],
            empty(),
        )
        .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitResponse {
    status_code: i64,
    #[serde(default)]
    error: Option<WaitError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitError {
    #[serde(default)]
    message: String,
}

/// A registered `POST /containers/{id}/wait`: the daemon has answered with its headers, and
/// the body (the exit status) comes when the condition is met.
pub struct Waiter(Response<Incoming>);

impl Waiter {
    /// `condition` is `next-exit`, `removed`, or `None` for the daemon's default
    /// (`not-running`).
    pub async fn register(ctx: &Ctx, id: &str, condition: Option<&str>) -> Result<Self> {
        let q = match condition {
            Some(c) => Query::new().add("condition", c).finish(),
            None => String::new(),
        };
        let resp = ctx
            .client
            .request(
                Method::POST,
                &format!("/containers/{}/wait{q}", encode(id)),
                &[],
                empty(),
            )
            .await?;
        Ok(Waiter(resp))
    }

    /// The `StatusCode` the daemon answered, whatever else it said (as `docker wait` prints).
    pub async fn status_code(self) -> Result<i64> {
        let w: WaitResponse = read_json(self.0).await?;
        Ok(w.status_code)
    }

    /// The container's exit code, or the error the daemon reported instead of one.
    pub async fn exit_code(self) -> Result<i64> {
        let w: WaitResponse = read_json(self.0).await?;
        match w.error {
            Some(e) if !e.message.is_empty() => anyhow::bail!(e.message),
            _ => Ok(w.status_code),
        }
    }

    /// Ends `run`/`start -a` with the container's exit status: a wait that could not be
    /// registered or failed is reported and counts as 125, as in docker.
    pub async fn finish(waiter: Result<Self>) -> Result<()> {
        let code = match waiter {
            Ok(w) => w.exit_code().await,
            Err(e) => Err(e),
        };
        Exit::status(code.unwrap_or_else(|e| {
            eprintln!("Error waiting for container: {e:#}");
            125
        }))
    }
}

/// What gets a TTY resized: a container or an exec instance.
#[derive(Clone, Copy)]
pub enum TtyOf<'a> {
    Container(&'a str),
    Exec(&'a str),
}

async fn resize(ctx: &Ctx, target: TtyOf<'_>) -> Result<()> {
    let Some((h, w)) = terminal::size() else {
        return Ok(());
    };
    let (kind, id) = match target {
        TtyOf::Container(id) => ("containers", id),
        TtyOf::Exec(id) => ("exec", id),
    };
    let q = Query::new()
        .add("h", &h.to_string())
        .add("w", &w.to_string())
        .finish();
    ctx.client
        .request(
            Method::POST,
            &format!("/{kind}/{}/resize{q}", encode(id)),
            &[],
            empty(),
        )
        .await?;
    Ok(())
}

/// Sends the local terminal's size now (retrying briefly, as the process may not have its TTY
/// yet) and again on every SIGWINCH. Runs until dropped.
pub async fn follow_tty_size(ctx: &Ctx, target: TtyOf<'_>) {
    let mut sent = resize(ctx, target).await.is_ok();
    for retry in 1..=10u64 {
        if sent {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(retry * 10)).await;
        sent = resize(ctx, target).await.is_ok();
    }
    if !sent {
        eprintln!("failed to resize tty, using default size");
    }
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return std::future::pending().await;
    };
    while winch.recv().await.is_some() {
        let _ = resize(ctx, target).await;
    }
    std::future::pending().await
}

/// Passes the signals a user sends to `berth` (interrupt, terminate, hang-up, quit, USR1,
/// USR2) on to the container with `POST /containers/{id}/kill?signal=NAME`, as docker's
/// `--sig-proxy` does. Runs until dropped.
pub async fn forward_signals(ctx: &Ctx, id: &str) {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        if let Ok(s) = signal(kind) {
            streams.push((s, name));
        }
    }
    loop {
        let next = futures_util::future::select_all(
            streams
                .iter_mut()
                .map(|(s, name)| Box::pin(async move { s.recv().await.map(|_| *name) })),
        );
        let (got, _, _) = next.await;
        let Some(name) = got else {
            return std::future::pending().await;
        };
        let path = format!(
            "/containers/{}/kill{}",
            encode(id),
            Query::new().add("signal", name).finish()
        );
        if let Err(e) = ctx.client.request(Method::POST, &path, &[], empty()).await {
            if ctx.client.debug() {
                eprintln!("DEBU[berth] forwarding SIG{name}: {e:#}");
            }
        }
    }
}

/// Streams an attached session to its end while the TTY size is followed (when `tty` names
/// one) and signals are forwarded (when `signals` names a container).
pub async fn stream_session(
    ctx: &Ctx,
    conn: TokioIo<hyper::upgrade::Upgraded>,
    session: &Session,
    tty: Option<TtyOf<'_>>,
    signals: Option<&str>,
) -> Result<Ended> {
    let resize = async {
        match tty {
            Some(target) => follow_tty_size(ctx, target).await,
            None => std::future::pending().await,
        }
    };
    let proxy = async {
        match signals {
            Some(id) => forward_signals(ctx, id).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        ended = stream::run_session(conn, session) => ended,
        () = resize => unreachable!("follow_tty_size never returns"),
        () = proxy => unreachable!("forward_signals never returns"),
    }
}

/// The exit code docker gives a failed start: 127 when the command was not found, 126 when it
/// could not be run, 125 for anything else the daemon refused.
pub fn start_failure_code(err: &anyhow::Error) -> u8 {
    let text = format!("{err:#}");
    let text = text
        .strip_prefix("Error response from daemon: ")
        .unwrap_or(&text);
    if text.contains("executable file not found")
        || text.contains("no such file or directory")
        || text.contains("system cannot find the file specified")
    {
        127
    } else if text.contains("permission denied") || text.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `POST /containers/{id}/start`.
pub async fn start(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.client
        .request(
            Method::POST,
            &format!("/containers/{}/start", encode(id)),
            &[],
            empty(),
        )
        .await
        .map(drop)
}

/// The `--detach-keys` in force: the flag's, else the config file's `detachKeys`.
pub fn detach_keys_setting(ctx: &Ctx, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string).or_else(|| {
        ConfigFile::load(&ctx.config_dir)
            .ok()
            .and_then(|c| c.detach_keys())
    })
}

/// The detach sequence to watch for: `spec`, else ctrl-p ctrl-q; an invalid one is warned
/// about and replaced by the default, as docker does.
pub fn detach_keys(spec: Option<&str>) -> Vec<u8> {
    match spec {
        None | Some("") => stream::DEFAULT_DETACH_KEYS.to_vec(),
        Some(s) => stream::parse_detach_keys(s).unwrap_or_else(|e| {
            eprintln!("WARNING: invalid detach escape keys, using default: {e}");
            stream::DEFAULT_DETACH_KEYS.to_vec()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_exit_codes() {
        let code = |m: &str| start_failure_code(&anyhow::anyhow!("{m}"));
        assert_eq!(
            code("Error response from daemon: failed to create task: exec: \"nosuch\": executable file not found in $PATH: unknown"),
            127
        );
        assert_eq!(
            code("Error response from daemon: open /x: no such file or directory"),
            127
        );
        assert_eq!(
            code("Error response from daemon: exec: \"/etc/passwd\": permission denied: unknown"),
            126
        );
        assert_eq!(
            code("Error response from daemon: No such container: x"),
            125
        );
    }
}
