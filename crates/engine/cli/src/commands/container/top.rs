//! `berth top CONTAINER [ps OPTIONS]`: `GET /containers/{id}/top[?ps_args=..]`, the process
//! table aligned as docker aligns it.

use anyhow::Result;
use serde::Deserialize;

use crate::client::{encode, Query};
use crate::commands::{print, Ctx};
use crate::format::tabwrite_with;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Options for ps
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    ps_args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    #[serde(default)]
    titles: Vec<String>,
    #[serde(default)]
    processes: Vec<Vec<String>>,
}

/// Columns at least 20 wide, 3 spaces apart (docker's tabwriter for `top`).
pub fn render(top: &Top) -> String {
    let mut text = top.titles.join("\t");
    text.push('\n');
    for p in &top.processes {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    tabwrite_with(&text, 20, 3)
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let q = if args.ps_args.is_empty() {
        String::new()
    } else {
        Query::new()
            .add("ps_args", &args.ps_args.join(" "))
            .finish()
    };
    let top: Top = ctx
        .client
        .get_json(&format!("/containers/{}/top{q}", encode(&args.container)))
        .await?;
    print(&render(&top))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_docker() {
        let top: Top = serde_json::from_str(
            r#"{"Titles":["UID","PID","PPID","C","STIME","TTY","TIME","CMD"],
                "Processes":[["root","8112","8092","9","14:52","?","00:00:00","sleep 100"]]}"#,
        )
        .unwrap();
        assert_eq!(
            render(&top),
            "UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD\n\
             root                8112                8092                9                   14:52               ?                   00:00:00            sleep 100\n"
        );
    }
}
