//! `berth volume create|ls|inspect|rm|prune`: `POST /volumes/create`, `GET /volumes`,
//! `GET /volumes/{name}`, `DELETE /volumes/{name}`, `POST /volumes/prune`.

use anyhow::{bail, Result};
use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{empty, encode, json_body, read_json, Query};
use crate::commands::inspect::{inspect, Kind};
use crate::commands::{
    failures, filters_json, key_values, lines, print, prune, prune_report, require_api, Ctx,
};
use crate::format::{human_size, ListFormat};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, value_name = "DRIVER", default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "KEY[=VALUE]")]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    opt: Vec<String>,
    #[arg(value_name = "VOLUME")]
    name: Option<String>,
}

#[derive(clap::Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or TEMPLATE
    #[arg(long, value_name = "FORMAT", default_value = "")]
    format: String,
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "VOLUME", required = true)]
    volumes: Vec<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    volumes: Vec<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Create(a) => create(ctx, a).await,
        Command::Ls(a) => ls(ctx, a).await,
        Command::Inspect(a) => inspect(ctx, &[Kind::Volume], &a.volumes, a.format.as_deref()).await,
        Command::Rm(a) => rm(ctx, a).await,
        Command::Prune(a) => prune_volumes(ctx, a).await,
    }
}

/// The create body: `Driver` always, the rest only when given (as docker's `omitempty`).
pub fn create_body(args: &CreateArgs) -> Result<Value> {
    let mut body = json!({"Driver": args.driver});
    for o in &args.opt {
        if !o.contains('=') {
            bail!("invalid argument {o:?} for \"-o, --opt\" flag: invalid key value pair format");
        }
    }
    if !args.opt.is_empty() {
        body["DriverOpts"] = json!(key_values(&args.opt, '='));
    }
    if !args.label.is_empty() {
        body["Labels"] = json!(key_values(&args.label, '='));
    }
    if let Some(n) = &args.name {
        body["Name"] = json!(n);
    }
    Ok(body)
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let body = create_body(&args)?;
    let resp = ctx
        .client
        .request(
            Method::POST,
            "/volumes/create",
            &[("Content-Type", "application/json".to_string())],
            json_body(&body)?,
        )
        .await?;
    let volume: Value = read_json(resp).await?;
    print(&format!("{}\n", volume["Name"].as_str().unwrap_or("")))
}

/// Natural order, as docker sorts volume names: runs of digits compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() && !b.is_empty() {
        let (da, db) = (a[0].is_ascii_digit(), b[0].is_ascii_digit());
        if da && db {
            let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let ta = trim_zeros(&a[..la]);
            let tb = trim_zeros(&b[..lb]);
            let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
            if ord != Ordering::Equal {
                return ord;
            }
            let ord = la.cmp(&lb);
            if ord != Ordering::Equal {
                return ord;
            }
            a = &a[la..];
            b = &b[lb..];
        } else if da != db {
            // Digits sort before anything else.
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        } else {
            if a[0] != b[0] {
                return a[0].cmp(&b[0]);
            }
            a = &a[1..];
            b = &b[1..];
        }
    }
    a.len().cmp(&b.len())
}

fn trim_zeros(n: &[u8]) -> &[u8] {
    let zeros = n.iter().take_while(|&&c| c == b'0').count();
    &n[zeros..]
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VolumeList {
    #[serde(default)]
    volumes: Option<Vec<Value>>,
}

/// The template fields docker offers for a volume row.
pub fn row_value(v: &Value) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let labels = crate::format::labels_text(&v["Labels"]);
    let usage = &v["UsageData"];
    let (links, size) = if usage.is_object() {
        (
            usage["RefCount"].as_i64().unwrap_or(0).to_string(),
            human_size(usage["Size"].as_i64().unwrap_or(0)),
        )
    } else {
        ("N/A".to_string(), "N/A".to_string())
    };
    let cluster = &v["ClusterVolume"];
    let (group, availability, status) = if cluster.is_object() {
        (
            cluster["Spec"]["Group"].as_str().unwrap_or("").to_string(),
            cluster["Spec"]["AccessMode"]["Availability"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            "N/A".to_string(),
        )
    } else {
        ("N/A".into(), "N/A".into(), "N/A".into())
    };
    json!({
        "Availability": availability,
        "Driver": s("Driver"),
        "Group": group,
        "Labels": labels,
        "Links": links,
        "Mountpoint": s("Mountpoint"),
        "Name": s("Name"),
        "Scope": s("Scope"),
        "Size": size,
        "Status": status,
    })
}

fn headers() -> Value {
    json!({
        "Availability": "AVAILABILITY", "Driver": "DRIVER", "Group": "GROUP", "Labels": "LABELS",
        "Links": "LINKS", "Mountpoint": "MOUNTPOINT", "Name": "VOLUME NAME", "Scope": "SCOPE",
        "Size": "SIZE", "Status": "STATUS",
    })
}

pub fn render_ls(volumes: &[Value], args: &LsArgs) -> Result<String> {
    let format = if args.quiet {
        "{{.Name}}"
    } else {
        args.format.as_str()
    };
    let list = ListFormat::parse(format, "{{.Driver}}\t{{.Name}}")?;
    let mut rows: Vec<Value> = volumes.iter().map(row_value).collect();
    rows.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or(""),
            b["Name"].as_str().unwrap_or(""),
        )
    });
    list.render(&rows, &headers())
}

async fn ls(ctx: &Ctx, args: LsArgs) -> Result<()> {
    let mut q = Query::new();
    if let Some(f) = filters_json(&args.filter)? {
        q = q.add("filters", &f);
    }
    let list: VolumeList = ctx
        .client
        .get_json(&format!("/volumes{}", q.finish()))
        .await?;
    print(&render_ls(
        list.volumes.as_deref().unwrap_or_default(),
        &args,
    )?)
}

async fn rm(ctx: &Ctx, args: RmArgs) -> Result<()> {
    let q = Query::new().flag("force", args.force).finish();
    let mut errors = Vec::new();
    for v in &args.volumes {
        let path = format!("/volumes/{}{q}", encode(v));
        match ctx
            .client
            .request(Method::DELETE, &path, &[], empty())
            .await
        {
            Ok(_) => print(&format!("{v}\n"))?,
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    failures(errors)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    #[serde(default)]
    pub volumes_deleted: Option<Vec<String>>,
    #[serde(default)]
    pub space_reclaimed: i64,
}

pub fn render_prune(r: &PruneReport) -> String {
    let deleted = r.volumes_deleted.as_deref().unwrap_or_default();
    prune_report("Volumes", &lines(deleted), r.space_reclaimed)
}

async fn prune_volumes(ctx: &Ctx, args: PruneArgs) -> Result<()> {
    let mut filters = args.filter.clone();
    let warning = if args.all {
        require_api(ctx, "--all", "1.42").await?;
        if filters.iter().any(|f| f.split('=').next() == Some("all")) {
            bail!("conflicting options: cannot specify both --all and --filter all=1");
        }
        filters.push("all=true".into());
        "WARNING! This will remove all local volumes not used by at least one container."
    } else if ctx.client.api_at_least("1.42").await? {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    } else {
        // Before API 1.42 the daemon removes named volumes too.
        "WARNING! This will remove all local volumes not used by at least one container."
    };
    let r: PruneReport = prune(ctx, "volume", warning, args.force, &filters).await?;
    print(&render_prune(&r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: Command,
    }

    fn parse(argv: &[&str]) -> Command {
        T::parse_from(std::iter::once("volume").chain(argv.iter().copied())).cmd
    }

    #[test]
    fn create_body_like_docker() {
        let Command::Create(a) = parse(&[
            "create",
            "-d",
            "local",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=1m",
            "--label",
            "a=b",
            "--label",
            "c",
            "vv",
        ]) else {
            panic!()
        };
        // What docker 28 sent for the same command line.
        let docker: Value = serde_json::from_str(
            r#"{"Driver":"local","DriverOpts":{"device":"tmpfs","o":"size=1m","type":"tmpfs"},"Labels":{"a":"b","c":""},"Name":"vv"}"#,
        )
        .unwrap();
        assert_eq!(create_body(&a).unwrap(), docker);
        let Command::Create(a) = parse(&["create"]) else {
            panic!()
        };
        assert_eq!(create_body(&a).unwrap(), json!({"Driver": "local"}));
    }

    #[test]
    fn ls_like_docker() {
        let vols: Vec<Value> = serde_json::from_str(
            r#"[{"CreatedAt":"2026-11-23T14:53:09Z","Driver":"local","Labels":{"a":"b","c":""},
                 "Mountpoint":"/tmp/probe/data/volumes/vv/_data","Name":"vv","Options":{},"Scope":"local"},
                {"Driver":"local","Labels":null,"Mountpoint":"/m/v10","Name":"v10","Scope":"local"},
                {"Driver":"local","Labels":null,"Mountpoint":"/m/v9","Name":"v9","Scope":"local"}]"#,
        )
        .unwrap();
        let Command::Ls(a) = parse(&["ls"]) else {
            panic!()
        };
        assert_eq!(
            render_ls(&vols, &a).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     v9\nlocal     v10\nlocal     vv\n"
        );
        let Command::Ls(a) = parse(&["ls", "-q"]) else {
            panic!()
        };
        assert_eq!(render_ls(&vols, &a).unwrap(), "v9\nv10\nvv\n");
        let Command::Ls(a) = parse(&["ls", "--format", "json"]) else {
            panic!()
        };
        // docker 28's line for the volume `vv`.
        assert_eq!(
            render_ls(&vols, &a).unwrap().lines().nth(2).unwrap(),
            r#"{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"a=b,c=","Links":"N/A","Mountpoint":"/tmp/probe/data/volumes/vv/_data","Name":"vv","Scope":"local","Size":"N/A","Status":"N/A"}"#
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["b", "a10", "a9", "a09x", "A", "a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["A", "a", "a9", "a09x", "a10", "b"]);
    }

    #[test]
    fn prune_report_like_docker() {
        let r: PruneReport =
            serde_json::from_str(r#"{"VolumesDeleted":["vol","0cdd"],"SpaceReclaimed":0}"#)
                .unwrap();
        assert_eq!(
            render_prune(&r),
            "Deleted Volumes:\nvol\n0cdd\n\nTotal reclaimed space: 0B\n"
        );
    }
}
