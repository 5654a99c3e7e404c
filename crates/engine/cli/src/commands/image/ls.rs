//! `berth images [REPOSITORY[:TAG]]`: `GET /images/json`, one row per repository and tag.

use std::collections::BTreeMap;

use anyhow::Result;
use berth_core::Reference;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::Query;
use crate::commands::{filters_json, print, Ctx};
use crate::format::{go_time_string, human_size_precision, short_id, since, ListFormat};

#[derive(clap::Args)]
pub struct Args {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Filter output based on conditions provided (dangling, reference, before, since, label)
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or TEMPLATE
    #[arg(long, value_name = "FORMAT", default_value = "")]
    format: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    repository: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub repo_digests: Option<Vec<String>>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub size: i64,
    #[serde(default = "minus_one")]
    pub shared_size: i64,
    #[serde(default = "minus_one")]
    pub containers: i64,
}

fn minus_one() -> i64 {
    -1
}

/// One printed row: an image under one repository and tag.
#[derive(Debug, PartialEq)]
pub struct Row {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

const NONE: &str = "<none>";

/// The rows docker prints for one image (its `imageFormatTaggedAndDigest`).
pub fn rows_for(img: &ImageSummary, show_digests: bool) -> Vec<Row> {
    let tags = img.repo_tags.clone().unwrap_or_default();
    let digests = img.repo_digests.clone().unwrap_or_default();
    let dangling =
        tags.iter().all(|t| t == "<none>:<none>") && digests.iter().all(|d| d == "<none>@<none>");
    if dangling {
        return vec![Row {
            repository: NONE.into(),
            tag: NONE.into(),
            digest: NONE.into(),
        }];
    }
    let mut repo_tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut repo_digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &tags {
        if let Ok(r) = Reference::parse_named(t) {
            if let Some(tag) = r.tag() {
                repo_tags
                    .entry(r.familiar_repository())
                    .or_default()
                    .push(tag.to_string());
            }
        }
    }
    for d in &digests {
        if let Ok(r) = Reference::parse_named(d) {
            if let Some(dg) = r.digest() {
                repo_digests
                    .entry(r.familiar_repository())
                    .or_default()
                    .push(dg.as_ref().to_string());
            }
        }
    }
    let mut rows = Vec::new();
    for (repo, tags) in &repo_tags {
        let digests = repo_digests.remove(repo).unwrap_or_default();
        for tag in tags {
            if !show_digests || digests.is_empty() {
                rows.push(Row {
                    repository: repo.clone(),
                    tag: tag.clone(),
                    digest: NONE.into(),
                });
            } else {
                for d in &digests {
                    rows.push(Row {
                        repository: repo.clone(),
                        tag: tag.clone(),
                        digest: d.clone(),
                    });
                }
            }
        }
    }
    for (repo, digests) in repo_digests {
        if show_digests {
            for d in digests {
                rows.push(Row {
                    repository: repo.clone(),
                    tag: NONE.into(),
                    digest: d,
                });
            }
        } else {
            rows.push(Row {
                repository: repo,
                tag: NONE.into(),
                digest: String::new(),
            });
        }
    }
    rows
}

/// The template fields docker offers for an image row.
pub fn row_value(img: &ImageSummary, row: &Row, no_trunc: bool, now: i64) -> Value {
    let na = |n: i64| {
        if n < 0 {
            "N/A".to_string()
        } else {
            n.to_string()
        }
    };
    let shared = if img.shared_size < 0 {
        "N/A".to_string()
    } else {
        human_size_precision(img.shared_size as f64, 3)
    };
    let unique = if img.shared_size < 0 {
        "N/A".to_string()
    } else {
        human_size_precision((img.size - img.shared_size) as f64, 3)
    };
    json!({
        "Containers": na(img.containers),
        "CreatedAt": go_time_string(img.created),
        "CreatedSince": since(img.created, now),
        "Digest": row.digest,
        "ID": short_id(&img.id, no_trunc),
        "Repository": row.repository,
        "SharedSize": shared,
        "Size": human_size_precision(img.size as f64, 3),
        "Tag": row.tag,
        "UniqueSize": unique,
        "VirtualSize": human_size_precision(img.size as f64, 3),
    })
}

pub fn headers() -> Value {
    json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
        "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE", "Size": "SIZE", "Tag": "TAG", "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    })
}

pub fn render(images: &[ImageSummary], args: &Args, now: i64) -> Result<String> {
    let format = if args.quiet {
        "{{.ID}}"
    } else {
        args.format.as_str()
    };
    let default_table = if args.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let list = ListFormat::parse(format, default_table)?;
    let show_digests = args.digests || format.contains("{{.Digest}}");
    let mut values = Vec::new();
    for img in images {
        for row in rows_for(img, show_digests) {
            values.push(row_value(img, &row, args.no_trunc, now));
        }
    }
    list.render(&values, &headers())
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut filters = args.filter.clone();
    if let Some(r) = &args.repository {
        filters.push(format!("reference={r}"));
    }
    let mut query = Query::new().flag("all", args.all);
    if let Some(f) = filters_json(&filters)? {
        query = query.add("filters", &f);
    }
    let mut images: Vec<ImageSummary> = ctx
        .client
        .get_json(&format!("/images/json{}", query.finish()))
        .await?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    print(&render(&images, &args, crate::format::now_unix())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: Args,
    }

    fn images() -> Vec<ImageSummary> {
        serde_json::from_value(json!([
            {"Id": "sha256:1111111111111111aaaa", "Created": 1000, "Size": 4261000,
             "SharedSize": -1, "Containers": -1,
             "RepoTags": ["busybox:latest", "localhost:5000/bb:1", "busybox:1"],
             "RepoDigests": ["busybox@sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"]},
            {"Id": "sha256:2222222222222222bbbb", "Created": 900, "Size": 0,
             "RepoTags": null, "RepoDigests": []},
            {"Id": "sha256:3333333333333333cccc", "Created": 800, "Size": 1234,
             "RepoTags": [], "RepoDigests": ["me/app@sha256:d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3"]}
        ]))
        .unwrap()
    }

    fn out(argv: &[&str]) -> String {
        let t = T::parse_from(std::iter::once("images").chain(argv.iter().copied()));
        render(&images(), &t.args, 1000 + 7200).unwrap()
    }

    #[test]
    fn default_table() {
        assert_eq!(
            out(&[]),
            "REPOSITORY          TAG       IMAGE ID       CREATED       SIZE\n\
             busybox             latest    111111111111   2 hours ago   4.26MB\n\
             busybox             1         111111111111   2 hours ago   4.26MB\n\
             localhost:5000/bb   1         111111111111   2 hours ago   4.26MB\n\
             <none>              <none>    222222222222   2 hours ago   0B\n\
             me/app              <none>    333333333333   2 hours ago   1.23kB\n"
        );
    }

    #[test]
    fn quiet_digests_and_templates() {
        assert_eq!(
            out(&["-q", "--no-trunc"]).lines().collect::<Vec<_>>(),
            [
                "sha256:1111111111111111aaaa",
                "sha256:1111111111111111aaaa",
                "sha256:1111111111111111aaaa",
                "sha256:2222222222222222bbbb",
                "sha256:3333333333333333cccc"
            ]
        );
        let d = out(&["--digests"]);
        assert!(
            d.starts_with(&format!(
                "REPOSITORY          TAG       DIGEST{}IMAGE ID",
                " ".repeat(68)
            )),
            "{d}"
        );
        assert!(
            d.contains(&format!(
                "busybox             latest    sha256:{}   111111111111",
                "d1".repeat(32)
            )),
            "{d}"
        );
        assert!(
            d.contains(&format!(
                "me/app              <none>    sha256:{}",
                "d3".repeat(32)
            )),
            "{d}"
        );
        assert_eq!(
            out(&["--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]),
            "busybox:latest 4.26MB\nbusybox:1 4.26MB\nlocalhost:5000/bb:1 4.26MB\n\
             <none>:<none> 0B\nme/app:<none> 1.23kB\n"
        );
        let j = out(&["--format", "json"]);
        let first: Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        assert_eq!(first["Repository"], "busybox");
        assert_eq!(first["CreatedAt"], "1970-01-01 00:16:40 +0000 UTC");
        assert_eq!(first["Containers"], "N/A");
    }
}
