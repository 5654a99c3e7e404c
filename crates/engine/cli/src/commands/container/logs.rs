//! `berth logs CONTAINER`: `GET /containers/{id}/json` (does it have a TTY?), then
//! `GET /containers/{id}/logs?stdout=1&stderr=1&tail=..`; the output is raw for a TTY and
//! stdcopy-framed otherwise. `--since`/`--until` take durations (`10m`), RFC 3339 times and
//! unix timestamps, sent as docker's `GetTimestamp` computes them.

use anyhow::{Context as _, Result};
use futures_util::StreamExt;
use hyper::Method;
use serde_json::Value;

use crate::client::{body_stream, empty, encode, Query};
use crate::commands::Ctx;
use crate::stream::{write_out, Demux, Stream};
use crate::timestamp::{get_timestamp, local_offset, now_ns};

#[derive(clap::Args)]
pub struct Args {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42
    /// minutes)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for
    /// 42 minutes)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

/// The logs query, keys in the order Go's `url.Values` encodes them.
pub fn query(args: &Args, now_ns: i128, offset: i64) -> Result<String> {
    let mut q = Query::new().flag("follow", args.follow);
    if let Some(s) = &args.since {
        let ts = get_timestamp(s, now_ns, offset).context("invalid value for \"since\"")?;
        q = q.add("since", &ts);
    }
    q = q
        .add("stderr", "1")
        .add("stdout", "1")
        .add("tail", &args.tail);
    q = q.flag("timestamps", args.timestamps);
    if let Some(u) = &args.until {
        let ts = get_timestamp(u, now_ns, offset).context("invalid value for \"until\"")?;
        q = q.add("until", &ts);
    }
    Ok(q.finish())
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inspect: Value = ctx
        .client
        .get_json(&format!("/containers/{}/json", encode(&args.container)))
        .await?;
    let id = inspect["Id"]
        .as_str()
        .unwrap_or(&args.container)
        .to_string();
    let tty = inspect["Config"]["Tty"] == true;
    let now = now_ns();
    let q = query(&args, now, local_offset((now / 1_000_000_000) as i64))?;
    let resp = ctx
        .client
        .request(
            Method::GET,
            &format!("/containers/{}/logs{q}", encode(&id)),
            &[],
            empty(),
        )
        .await?;
    let mut body = body_stream(resp);
    let mut demux = Demux::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if tty {
            write_out(Stream::Stdout, &chunk)?;
            continue;
        }
        demux.push(&chunk);
        while let Some((stream, payload)) = demux.next_frame()? {
            write_out(stream, &payload)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parse_args;

    fn q(argv: &[&str]) -> Result<String> {
        query(&parse_args(argv)?, 1_795_445_505_000_000_000, 0)
    }

    #[test]
    fn query_like_the_docker_cli() {
        // What docker sent for `logs --since 10m --until 2025-01-01T00:00:00Z --tail 5 -t`.
        assert_eq!(
            q(&[
                "--since",
                "10m",
                "--until",
                "2025-01-01T00:00:00Z",
                "--tail",
                "5",
                "-t",
                "c1"
            ])
            .unwrap(),
            "?since=1795444905&stderr=1&stdout=1&tail=5&timestamps=1&until=1735689600.000000000"
        );
        assert_eq!(
            q(&["-f", "c1"]).unwrap(),
            "?follow=1&stderr=1&stdout=1&tail=all"
        );
        assert_eq!(
            q(&["--since", "1700000000", "-n", "2", "c1"]).unwrap(),
            "?since=1700000000&stderr=1&stdout=1&tail=2"
        );
        assert_eq!(
            format!("{:#}", q(&["--since", "soon", "c1"]).unwrap_err()),
            "invalid value for \"since\": failed to parse value as time or duration: \"soon\""
        );
    }
}
