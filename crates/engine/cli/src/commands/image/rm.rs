//! `berth rmi IMAGE...`: `DELETE /images/{name}` for each; reports `Untagged:`/`Deleted:` lines,
//! keeps going past failures and exits 1 at the end if any failed.

use anyhow::Result;
use hyper::Method;
use serde::Deserialize;

use crate::client::{empty, path_name, read_json, Query};
use crate::commands::{print, Ctx, Exit};

#[derive(clap::Args)]
pub struct Args {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteResponseItem {
    #[serde(rename = "Untagged", default)]
    pub untagged: Option<String>,
    #[serde(rename = "Deleted", default)]
    pub deleted: Option<String>,
}

/// `Untagged: x` / `Deleted: y` lines, in the daemon's order (`prefix_*` differ for prune).
pub fn report(items: &[DeleteResponseItem], untagged: &str, deleted: &str) -> String {
    let mut out = String::new();
    for item in items {
        if let Some(u) = item.untagged.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(&format!("{untagged}: {u}\n"));
        } else if let Some(d) = item.deleted.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(&format!("{deleted}: {d}\n"));
        }
    }
    out
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let query = Query::new()
        .flag("force", args.force)
        .flag("noprune", args.no_prune)
        .finish();
    let mut errors = Vec::new();
    for image in &args.images {
        let path = format!("/images/{}{query}", path_name(image));
        match ctx
            .client
            .request(Method::DELETE, &path, &[], empty())
            .await
        {
            Ok(resp) => {
                let items: Vec<DeleteResponseItem> = read_json(resp).await?;
                print(&report(&items, "Untagged", "Deleted"))?;
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Err(Exit(1).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_like_docker() {
        let items: Vec<DeleteResponseItem> = serde_json::from_str(
            r#"[{"Untagged":"bb:latest"},{"Deleted":"sha256:ab"},{"Untagged":""}]"#,
        )
        .unwrap();
        assert_eq!(
            report(&items, "Untagged", "Deleted"),
            "Untagged: bb:latest\nDeleted: sha256:ab\n"
        );
    }
}
