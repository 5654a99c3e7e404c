//! One module per command (group). Each has an `Args` (clap) and an async `run`.

pub mod daemon;
pub mod image;
pub mod login;
pub mod system;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::client::Client;

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
