//! `berth image prune [-a] [-f]`: `POST /images/prune`, after asking unless `-f`.

use anyhow::Result;
use hyper::Method;
use serde::Deserialize;

use super::rm::{report, DeleteResponseItem};
use crate::client::{empty, read_json, Query};
use crate::commands::{confirm, filters_json, print, Ctx};
use crate::format::human_size;

#[derive(clap::Args)]
pub struct Args {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>")
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    #[serde(default)]
    pub images_deleted: Option<Vec<DeleteResponseItem>>,
    #[serde(default)]
    pub space_reclaimed: i64,
}

pub fn render(r: &PruneReport) -> String {
    let mut out = String::new();
    let deleted = r.images_deleted.as_deref().unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        out.push_str(&report(deleted, "untagged", "deleted"));
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(r.space_reclaimed)
    ));
    out
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(warning)? {
        anyhow::bail!("image prune has been cancelled");
    }
    let mut filters = args.filter.clone();
    filters.push(format!("dangling={}", !args.all));
    let mut query = Query::new();
    if let Some(f) = filters_json(&filters)? {
        query = query.add("filters", &f);
    }
    let resp = ctx
        .client
        .request(
            Method::POST,
            &format!("/images/prune{}", query.finish()),
            &[],
            empty(),
        )
        .await?;
    let r: PruneReport = read_json(resp).await?;
    print(&render(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_like_docker() {
        let r: PruneReport = serde_json::from_str(
            r#"{"ImagesDeleted":[{"Untagged":"bb:latest"},{"Deleted":"sha256:ab"}],"SpaceReclaimed":4261234}"#,
        )
        .unwrap();
        assert_eq!(
            render(&r),
            "Deleted Images:\nuntagged: bb:latest\ndeleted: sha256:ab\n\nTotal reclaimed space: 4.261MB\n"
        );
        let none: PruneReport =
            serde_json::from_str(r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#).unwrap();
        assert_eq!(render(&none), "Total reclaimed space: 0B\n");
    }
}
