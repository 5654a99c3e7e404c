//! `berth container prune [-f] [--filter ..]`: `POST /containers/prune`, after asking unless
//! `-f`.

use anyhow::Result;
use serde::Deserialize;

use crate::commands::{lines, print, prune, prune_report, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    #[serde(default)]
    pub containers_deleted: Option<Vec<String>>,
    #[serde(default)]
    pub space_reclaimed: i64,
}

pub fn render(r: &PruneReport) -> String {
    let deleted = r.containers_deleted.as_deref().unwrap_or_default();
    prune_report("Containers", &lines(deleted), r.space_reclaimed)
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let warning = "WARNING! This will remove all stopped containers.";
    let r: PruneReport = prune(ctx, "container", warning, args.force, &args.filter).await?;
    print(&render(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_like_docker() {
        let r: PruneReport =
            serde_json::from_str(r#"{"ContainersDeleted":["aa","bb"],"SpaceReclaimed":0}"#)
                .unwrap();
        assert_eq!(
            render(&r),
            "Deleted Containers:\naa\nbb\n\nTotal reclaimed space: 0B\n"
        );
        let none: PruneReport =
            serde_json::from_str(r#"{"ContainersDeleted":null,"SpaceReclaimed":0}"#).unwrap();
        assert_eq!(render(&none), "Total reclaimed space: 0B\n");
    }
}
