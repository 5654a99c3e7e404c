//! `berth version`, `berth info`, and `berth system df|info`.

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{print, Ctx};
use crate::client::MAX_API_VERSION;
use crate::format::{human_size, human_size_precision, short_id, since, tabwrite, Template};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show berth disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(InfoArgs),
}

#[derive(clap::Args)]
pub struct VersionArgs {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Format output using a custom template ('json' or a TEMPLATE)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
}

#[derive(clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Df(a) => df(ctx, a).await,
        Command::Info(a) => info(ctx, a).await,
    }
}

/// Renders `value` through `--format` (`json` → compact JSON).
fn formatted(format: &str, value: &Value) -> Result<String> {
    if format == "json" {
        return Ok(crate::format::go_json(value) + "\n");
    }
    Ok(Template::parse(format)?.render(value)? + "\n")
}

fn client_version() -> Value {
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": MAX_API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
    })
}

pub async fn version(ctx: &Ctx, args: VersionArgs) -> Result<()> {
    let client = client_version();
    let server: Result<Value> = ctx.client.get_json("/version").await;
    if let Some(f) = &args.format {
        let value = json!({"Client": client, "Server": server.as_ref().ok()});
        print(&formatted(f, &value)?)?;
        return server.map(|_| ());
    }
    let api = match ctx.client.api_version().await {
        Ok(v) if v != MAX_API_VERSION => format!("{v} (downgraded from {MAX_API_VERSION})"),
        _ => MAX_API_VERSION.to_string(),
    };
    let mut out = format!(
        "Client:\n Version:\t{}\n API version:\t{api}\n OS/Arch:\t{}/{}\n",
        client["Version"].as_str().unwrap_or(""),
        client["Os"].as_str().unwrap_or(""),
        client["Arch"].as_str().unwrap_or(""),
    );
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            print(&tabwrite_version(&out))?;
            return Err(e);
        }
    };
    let s = |k: &str| server[k].as_str().unwrap_or("").to_string();
    out.push_str(&format!(
        "\nServer:\n Engine:\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  Git commit:\t{}\n  OS/Arch:\t{}/{}\n",
        s("Version"),
        s("ApiVersion"),
        s("MinAPIVersion"),
        s("GitCommit"),
        s("Os"),
        s("Arch"),
    ));
    for c in server["Components"].as_array().into_iter().flatten() {
        let name = c["Name"].as_str().unwrap_or("");
        if name == "Engine" {
            continue;
        }
        out.push_str(&format!(
            " {name}:\n  Version:\t{}\n",
            c["Version"].as_str().unwrap_or("")
        ));
    }
    print(&tabwrite_version(&out))
}

/// docker aligns `version` values with a tabwriter of minimum width 20 and padding 1.
fn tabwrite_version(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once('\t') {
            Some((k, v)) => {
                let pad = 20usize.saturating_sub(k.chars().count()).max(1);
                out.push_str(&format!("{k}{}{v}\n", " ".repeat(pad)));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

pub async fn info(ctx: &Ctx, args: InfoArgs) -> Result<()> {
    let info: Value = ctx.client.get_json("/info").await?;
    if let Some(f) = &args.format {
        return print(&formatted(f, &info)?);
    }
    print(&format!(
        "Client:\n Version:    {}\n Debug Mode: {}\n\n{}",
        env!("CARGO_PKG_VERSION"),
        ctx.client.debug(),
        render_info(&info)
    ))
}

fn render_info(i: &Value) -> String {
    let v = |k: &str| match &i[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut out = String::from("Server:\n");
    out.push_str(&format!(" Containers: {}\n", v("Containers")));
    out.push_str(&format!("  Running: {}\n", v("ContainersRunning")));
    out.push_str(&format!("  Paused: {}\n", v("ContainersPaused")));
    out.push_str(&format!("  Stopped: {}\n", v("ContainersStopped")));
    out.push_str(&format!(" Images: {}\n", v("Images")));
    out.push_str(&format!(" Server Version: {}\n", v("ServerVersion")));
    out.push_str(&format!(" Storage Driver: {}\n", v("Driver")));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        if let (Some(k), Some(val)) = (pair[0].as_str(), pair[1].as_str()) {
            out.push_str(&format!("  {k}: {val}\n"));
        }
    }
    out.push_str(&format!(" Cgroup Driver: {}\n", v("CgroupDriver")));
    out.push_str(&format!(" Cgroup Version: {}\n", v("CgroupVersion")));
    out.push_str(&format!(" Kernel Version: {}\n", v("KernelVersion")));
    out.push_str(&format!(" Operating System: {}\n", v("OperatingSystem")));
    out.push_str(&format!(" OSType: {}\n", v("OSType")));
    out.push_str(&format!(" Architecture: {}\n", v("Architecture")));
    out.push_str(&format!(" CPUs: {}\n", v("NCPU")));
    out.push_str(&format!(
        " Total Memory: {}\n",
        human_binary(i["MemTotal"].as_i64().unwrap_or(0))
    ));
    out.push_str(&format!(" Name: {}\n", v("Name")));
    out.push_str(&format!(" ID: {}\n", v("ID")));
    out.push_str(&format!(" Docker Root Dir: {}\n", v("DockerRootDir")));
    out.push_str(&format!(" Debug Mode: {}\n", v("Debug")));
    let insecure: Vec<&str> = i["RegistryConfig"]["IndexConfigs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, c)| c["Secure"] == Value::Bool(false))
        .map(|(k, _)| k.as_str())
        .chain(
            i["RegistryConfig"]["InsecureRegistryCIDRs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        )
        .collect();
    if !insecure.is_empty() {
        out.push_str(" Insecure Registries:\n");
        for r in insecure {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}

/// go-units' BytesSize: binary units with 4 significant digits (`1.944GiB`).
fn human_binary(n: i64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = n as f64;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    let s = human_size_precision(size, 4);
    format!("{}{}", s.trim_end_matches('B'), UNITS[i])
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    #[serde(default)]
    pub layers_size: i64,
    #[serde(default)]
    pub images: Option<Vec<super::image::ls::ImageSummary>>,
    #[serde(default)]
    pub containers: Option<Vec<Value>>,
    #[serde(default)]
    pub volumes: Option<Vec<Value>>,
    #[serde(default)]
    pub build_cache: Option<Vec<Value>>,
}

fn with_percent(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable)
    }
}

pub fn render_df(du: &DiskUsage, verbose: bool, now: i64) -> String {
    let images = du.images.as_deref().unwrap_or_default();
    let containers = du.containers.as_deref().unwrap_or_default();
    let volumes = du.volumes.as_deref().unwrap_or_default();
    let cache = du.build_cache.as_deref().unwrap_or_default();
    let i64_of = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);

    let active_images = images.iter().filter(|i| i.containers > 0).count();
    let used: i64 = images
        .iter()
        .filter(|i| i.containers > 0 && i.size >= 0 && i.shared_size >= 0)
        .map(|i| i.size - i.shared_size)
        .sum();
    let c_size: i64 = containers.iter().map(|c| i64_of(c, "SizeRw")).sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| i64_of(c, "SizeRw"))
        .sum();
    let v_size = |v: &Value| i64_of(&v["UsageData"], "Size").max(0);
    let v_active = volumes
        .iter()
        .filter(|v| i64_of(&v["UsageData"], "RefCount") > 0)
        .count();
    let v_total: i64 = volumes.iter().map(v_size).sum();
    let v_reclaim: i64 = volumes
        .iter()
        .filter(|v| i64_of(&v["UsageData"], "RefCount") <= 0)
        .map(v_size)
        .sum();
    let b_active = cache.iter().filter(|b| b["InUse"] == true).count();
    let b_total: i64 = cache
        .iter()
        .filter(|b| b["Shared"] != true)
        .map(|b| i64_of(b, "Size"))
        .sum();
    let b_reclaim: i64 = cache
        .iter()
        .filter(|b| b["InUse"] != true && b["Shared"] != true)
        .map(|b| i64_of(b, "Size"))
        .sum();

    if !verbose {
        let mut t = String::from("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n");
        t.push_str(&format!(
            "Images\t{}\t{active_images}\t{}\t{}\n",
            images.len(),
            human_size(du.layers_size),
            with_percent(du.layers_size - used, du.layers_size)
        ));
        t.push_str(&format!(
            "Containers\t{}\t{c_active}\t{}\t{}\n",
            containers.len(),
            human_size(c_size),
            with_percent(c_reclaim, c_size)
        ));
        t.push_str(&format!(
            "Local Volumes\t{}\t{v_active}\t{}\t{}\n",
            volumes.len(),
            human_size(v_total),
            with_percent(v_reclaim, v_total)
        ));
        t.push_str(&format!(
            "Build Cache\t{}\t{b_active}\t{}\t{}\n",
            cache.len(),
            human_size(b_total),
            human_size(b_reclaim)
        ));
        return tabwrite(&t);
    }

    let mut out = String::from("Images space usage:\n\n");
    let mut t = String::from(
        "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n",
    );
    for img in images {
        // One row per image, named by its first repository and tag, as docker shows it.
        let Some(row) = super::image::ls::rows_for(img, false).into_iter().next() else {
            continue;
        };
        let shared = img.shared_size.max(0);
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            row.repository,
            row.tag,
            short_id(&img.id, false),
            since(img.created, now),
            human_size_precision(img.size as f64, 3),
            human_size(shared),
            human_size(img.size - shared),
            img.containers.max(0)
        ));
    }
    out.push_str(&tabwrite(&t));
    out.push_str("\nContainers space usage:\n\n");
    let mut t =
        String::from("CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for c in containers {
        let name = c["Names"][0].as_str().unwrap_or("").trim_start_matches('/');
        t.push_str(&format!(
            "{}\t{}\t\"{}\"\t{}\t{}\t{}\t{}\t{}\n",
            short_id(c["Id"].as_str().unwrap_or(""), false),
            c["Image"].as_str().unwrap_or(""),
            c["Command"].as_str().unwrap_or(""),
            c["Mounts"].as_array().map_or(0, Vec::len),
            human_size(i64_of(c, "SizeRw")),
            since(i64_of(c, "Created"), now),
            c["Status"].as_str().unwrap_or(""),
            name
        ));
    }
    out.push_str(&tabwrite(&t));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
    for v in volumes {
        t.push_str(&format!(
            "{}\t{}\t{}\n",
            v["Name"].as_str().unwrap_or(""),
            i64_of(&v["UsageData"], "RefCount"),
            human_size(v_size(v))
        ));
    }
    out.push_str(&tabwrite(&t));
    out.push_str(&format!("\nBuild cache usage: {}\n\n", human_size(b_total)));
    let mut t = String::from("CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n");
    for b in cache {
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            b["ID"].as_str().unwrap_or(""),
            b["Type"].as_str().unwrap_or(""),
            human_size(i64_of(b, "Size")),
            b["CreatedAt"].as_str().unwrap_or(""),
            b["LastUsedAt"].as_str().unwrap_or(""),
            i64_of(b, "UsageCount"),
            b["Shared"] == true
        ));
    }
    out.push_str(&tabwrite(&t));
    out
}

pub async fn df(ctx: &Ctx, args: DfArgs) -> Result<()> {
    let du: DiskUsage = ctx.client.get_json("/system/df").await?;
    print(&render_df(&du, args.verbose, crate::format::now_unix()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_summary_like_docker() {
        let du: DiskUsage = serde_json::from_value(json!({
            "LayersSize": 4261000,
            "Images": [{"Id": "sha256:aa", "Created": 0, "Size": 4261000, "SharedSize": -1,
                        "Containers": 0, "RepoTags": ["bb:latest"]}],
            "Containers": [], "Volumes": [], "BuildCache": []
        }))
        .unwrap();
        assert_eq!(
            render_df(&du, false, 0),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          1         0         4.261MB   4.261MB (100%)\n\
             Containers      0         0         0B        0B\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
        let v = render_df(&du, true, 3600);
        assert!(
            v.contains("bb           latest    aa         About an hour ago"),
            "{v}"
        );
        assert!(v.contains("\nBuild cache usage: 0B\n"), "{v}");
    }

    #[test]
    fn version_and_info_text() {
        assert_eq!(
            tabwrite_version("Client:\n Version:\t1\n"),
            "Client:\n Version:           1\n"
        );
        assert_eq!(human_binary(2_087_936_000), "1.945GiB");
        let info = render_info(
            &json!({"Containers": 0, "Images": 2, "ServerVersion": "0.1.0",
            "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
            "RegistryConfig": {"IndexConfigs": {"localhost:5000": {"Secure": false},
                                                "docker.io": {"Secure": true}}}}),
        );
        assert!(info.contains(" Images: 2\n Server Version: 0.1.0\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n"), "{info}");
        assert!(
            info.contains(" Insecure Registries:\n  localhost:5000\n"),
            "{info}"
        );
    }
}
