//! `berth image prune [-a] [-f]`: `POST /images/prune`, after asking unless `-f`.

use anyhow::Result;
use serde::Deserialize;

use super::rm::{report, DeleteResponseItem};
use crate::commands::{print, prune, prune_report, Ctx};

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
    let deleted = r.images_deleted.as_deref().unwrap_or_default();
    prune_report(
        "Images",
        &report(deleted, "untagged", "deleted"),
        r.space_reclaimed,
    )
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    let mut filters = args.filter.clone();
    filters.push(format!("dangling={}", !args.all));
    let r: PruneReport = prune(ctx, "image", warning, args.force, &filters).await?;
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
