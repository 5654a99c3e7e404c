//! One module per command (group). Each has an `Args` (clap) and an async `run`.

pub mod container;
pub mod daemon;
pub mod image;
pub mod inspect;
pub mod login;
pub mod network;
pub mod system;
pub mod volume;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use hyper::Method;
use serde::de::DeserializeOwned;

use crate::client::{empty, read_json, Client, Query};
use crate::format::human_size;

/// What every command gets: the daemon client and the docker config directory.
pub struct Ctx {
    pub client: Client,
    pub config_dir: PathBuf,
}

/// Ends the process with this code, the messages having been printed already.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

impl Exit {
    /// Success for 0, otherwise ends the process with `code` (a container's or a process's exit
    /// status, passed on as `docker run` and `docker exec` do).
    pub fn status(code: i64) -> Result<()> {
        match code {
            0 => Ok(()),
            code => Err(Exit(code as u8).into()),
        }
    }
}

/// Success when nothing failed, else one error whose message is each failure on its own line
/// (commands that go on past failures, as docker's do, and report them at the end).
pub fn failures(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(errors.join("\n"))
    }
}

/// `KEY<sep>VALUE` items as a map; an item without `sep` has an empty value (`-l name`).
pub fn key_values(items: &[String], sep: char) -> HashMap<String, String> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once(sep).unwrap_or((i, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The prune commands' shared part: ask `warning` unless `force`, then
/// `POST /<what>s/prune[?filters=..]` and decode the report.
pub async fn prune<T: DeserializeOwned>(
    ctx: &Ctx,
    what: &str,
    warning: &str,
    force: bool,
    filters: &[String],
) -> Result<T> {
    if !force && !confirm(warning)? {
        anyhow::bail!("{what} prune has been cancelled");
    }
    let mut query = Query::new();
    if let Some(f) = filters_json(filters)? {
        query = query.add("filters", &f);
    }
    let resp = ctx
        .client
        .request(
            Method::POST,
            &format!("/{what}s/prune{}", query.finish()),
            &[],
            empty(),
        )
        .await?;
    read_json(resp).await
}

/// A prune report as docker prints it: `Deleted <title>:` and the lines when there are any,
/// then the space reclaimed.
pub fn prune_report(title: &str, lines: &str, space_reclaimed: i64) -> String {
    let mut out = String::new();
    if !lines.is_empty() {
        out.push_str(&format!("Deleted {title}:\n{lines}\n"));
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(space_reclaimed)
    ));
    out
}

/// Refuses `flag` when the daemon speaks an API older than `min`, as the docker CLI refuses
/// flags newer than the daemon (rather than sending what the daemon would ignore).
pub async fn require_api(ctx: &Ctx, flag: &str, min: &str) -> Result<()> {
    if ctx.client.api_at_least(min).await? {
        return Ok(());
    }
    anyhow::bail!(
        "\"{flag}\" requires API version {min}, but the daemon API version is {}",
        ctx.client.api_version().await?
    )
}

/// One item per line.
pub fn lines(items: &[String]) -> String {
    items.iter().map(|i| format!("{i}\n")).collect()
}

/// Parses `argv` into a command's flags, for tests.
#[cfg(test)]
pub fn parse_args<A: clap::Args + clap::FromArgMatches>(argv: &[&str]) -> Result<A> {
    let cmd = A::augment_args(clap::Command::new("berth"));
    let matches = cmd.try_get_matches_from(std::iter::once("berth").chain(argv.iter().copied()))?;
    Ok(A::from_arg_matches(&matches)?)
}

/// Writes to stdout; a closed pipe (`berth images | head -1`) is not an error.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `--filter key=value` flags as the Engine API's `filters` JSON (`{"key":{"value":true}}`).
pub fn filters_json(filters: &[String]) -> Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value)");
        };
        let entry = map
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(values) = entry {
            values.insert(v.trim().to_string(), serde_json::Value::Bool(true));
        }
    }
    Ok(Some(serde_json::Value::Object(map).to_string()))
}

/// Asks `question [y/N]` on the terminal; true only for `y` or `Y`.
pub fn confirm(question: &str) -> Result<bool> {
    let mut out = std::io::stdout();
    write!(out, "{question}\nAre you sure you want to continue? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_engine_api_json() {
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert_eq!(
            filters_json(&["dangling=true".into(), "label=a=b".into(), "label=c".into()])
                .unwrap()
                .unwrap(),
            r#"{"dangling":{"true":true},"label":{"a=b":true,"c":true}}"#
        );
        assert!(filters_json(&["dangling".into()]).is_err());
    }
}
