//! `berth ps`: `GET /containers/json[?all=1&filters=..&limit=N&size=1]`, one row per container
//! in docker's columns (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES) and with
//! its truncation: IDs to 12 characters, the command to 20 columns with an ellipsis (then
//! quoted), one name, and the image as a familiar reference without its digest.

use anyhow::Result;
use berth_core::Reference;
use serde_json::{json, Value};

use crate::client::Query;
use crate::commands::{filters_json, print, Ctx};
use crate::format::{go_time_string, human_size_precision, since, ListFormat};

#[derive(clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or TEMPLATE
    #[arg(long, value_name = "FORMAT", default_value = "")]
    format: String,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "N", default_value_t = -1,
          allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

const DEFAULT_TABLE: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The query docker sends; `.Size` in the template asks for sizes as `-s` does.
pub fn query(args: &Args) -> Result<String> {
    let limit = if args.latest && args.last == -1 {
        1
    } else {
        args.last
    };
    let size = args.size || (!args.quiet && args.format.contains(".Size"));
    let mut q = Query::new().flag("all", args.all);
    if let Some(f) = filters_json(&args.filter)? {
        q = q.add("filters", &f);
    }
    if limit > 0 {
        q = q.add("limit", &limit.to_string());
    }
    Ok(q.flag("size", size).finish())
}

/// docker's `TruncateID`: the hex after any `algo:` prefix, cut to 12 characters.
fn truncate_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`: double quotes, with `\"`, `\\` and control characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The IMAGE column: the image as given, or when truncating, its short ID if it was created
/// from one, else the familiar reference without a digest.
fn image(c: &Value, trunc: bool) -> String {
    let image = c["Image"].as_str().unwrap_or("");
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let short = truncate_id(c["ImageID"].as_str().unwrap_or(""));
    if !short.is_empty() && short == truncate_id(image) {
        return short;
    }
    match Reference::parse_named(image) {
        Ok(r) if r.digest().is_some() => match r.tag() {
            Some(t) => r
                .with_tag(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| image.to_string()),
            None => r.without_tag_or_digest().familiar(),
        },
        Ok(r) => r.familiar(),
        Err(_) => image.to_string(),
    }
}

fn names(c: &Value, trunc: bool) -> String {
    let names: Vec<&str> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .collect();
    if trunc {
        if let Some(first) = names.iter().find(|n| !n.contains('/')) {
            return first.to_string();
        }
    }
    names.join(",")
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges, published ports as
/// `ip:public->private/proto`.
pub fn ports(c: &Value) -> String {
    let mut ports: Vec<(u16, String, u16, String)> = c["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["PrivatePort"].as_u64().unwrap_or(0) as u16,
                p["IP"].as_str().unwrap_or("").to_string(),
                p["PublicPort"].as_u64().unwrap_or(0) as u16,
                p["Type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ports.sort();
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let form = |key: &str, first: u16, last: u16| {
        let (ip, proto) = match key.rsplit_once('/') {
            Some((ip, proto)) => (ip, proto),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host_port(ip, &group));
        }
        format!("{group}/{proto}")
    };
    for (private, ip, public, proto) in &ports {
        let mut key = proto.clone();
        if !ip.is_empty() {
            if public != private {
                host_mappings.push(format!(
                    "{}->{private}/{proto}",
                    join_host_port(ip, &public.to_string())
                ));
                continue;
            }
            key = format!("{ip}/{proto}");
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, *private, *private)),
            Some(g) if *private == g.2.wrapping_add(1) => g.2 = *private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                *g = (key.clone(), *private, *private);
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The template fields docker offers for a container row.
pub fn row_value(c: &Value, trunc: bool, now: i64) -> Value {
    let str_of = |k: &str| c[k].as_str().unwrap_or("").to_string();
    let created = c["Created"].as_i64().unwrap_or(0);
    let command = str_of("Command");
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let labels = crate::format::labels_text(&c["Labels"]);
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty());
            let name = name.or(m["Source"].as_str()).unwrap_or("");
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let networks: Vec<&str> = c["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    let size_rw = c["SizeRw"].as_i64().unwrap_or(0);
    let size_root = c["SizeRootFs"].as_i64().unwrap_or(0);
    let mut size = human_size_precision(size_rw as f64, 3);
    if size_root > 0 {
        size = format!(
            "{size} (virtual {})",
            human_size_precision(size_root as f64, 3)
        );
    }
    let id = str_of("Id");
    json!({
        "Command": command,
        "CreatedAt": go_time_string(created),
        "ID": if trunc { truncate_id(&id) } else { id },
        "Image": image(c, trunc),
        "Labels": labels,
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": names(c, trunc),
        "Networks": networks.join(","),
        "Platform": Value::Null,
        "Ports": ports(c),
        "RunningFor": since(created, now),
        "Size": size,
        "State": str_of("State"),
        "Status": str_of("Status"),
    })
}

pub fn headers() -> Value {
    json!({
        "Command": "COMMAND", "CreatedAt": "CREATED AT", "ID": "CONTAINER ID", "Image": "IMAGE",
        "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS",
        "Names": "NAMES", "Networks": "NETWORKS", "Platform": "PLATFORM", "Ports": "PORTS",
        "RunningFor": "CREATED", "Size": "SIZE", "State": "STATE", "Status": "STATUS",
    })
}

pub fn render(containers: &[Value], args: &Args, now: i64) -> Result<String> {
    let format = if args.quiet {
        "{{.ID}}"
    } else {
        args.format.as_str()
    };
    let size = args.size || (!args.quiet && args.format.contains(".Size"));
    let default_table = if size {
        format!("{DEFAULT_TABLE}\t{{{{.Size}}}}")
    } else {
        DEFAULT_TABLE.to_string()
    };
    let list = ListFormat::parse(format, &default_table)?;
    let rows: Vec<Value> = containers
        .iter()
        .map(|c| row_value(c, !args.no_trunc, now))
        .collect();
    list.render(&rows, &headers())
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.quiet && !args.format.is_empty() {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let containers: Vec<Value> = ctx
        .client
        .get_json(&format!("/containers/json{}", query(&args)?))
        .await?;
    print(&render(&containers, &args, crate::format::now_unix())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parse_args;

    fn args(argv: &[&str]) -> Args {
        parse_args(argv).unwrap()
    }

    /// Two containers as dockerd 20.10 lists them (`GET /containers/json?all=1`).
    fn containers() -> Vec<Value> {
        serde_json::from_str(r#"[
          {"Id":"dce25a2004ba2f2e4ea8f72506db9e88159b52639f8812312c65e35440287e35","Names":["/p2"],
           "Image":"bb:1","ImageID":"sha256:01767835de3897bad5e3c09ca9b8503ad17f133518f37c7d619ec5e81c9aeb05",
           "Command":"sh -c 'echo a very long command line here'","Created":1795445651,"Ports":[],
           "Labels":{},"State":"created","Status":"Created","HostConfig":{"NetworkMode":"default"},
           "NetworkSettings":{"Networks":{"bridge":{}}},"Mounts":[]},
          {"Id":"2f2d440de4010f6fd7fae39e0c3a6d72e2af9f3330d93854203b52ecf5a122e6","Names":["/p1"],
           "Image":"bb:1","ImageID":"sha256:01767835de3897bad5e3c09ca9b8503ad17f133518f37c7d619ec5e81c9aeb05",
           "Command":"sleep 1000","Created":1795445651,"Ports":[],"Labels":{"k":"v"},
           "State":"running","Status":"Up Less than a second","HostConfig":{"NetworkMode":"default"},
           "NetworkSettings":{"Networks":{"bridge":{}}},
           "Mounts":[{"Type":"bind","Source":"/tmp","Destination":"/h","Mode":"","RW":true,"Propagation":"rslave"},
                     {"Type":"volume","Name":"vx","Source":"/var/lib/docker/volumes/vx/_data","Destination":"/vx","Driver":"local","Mode":"z","RW":true,"Propagation":""}]}
        ]"#).unwrap()
    }

    fn out(argv: &[&str]) -> String {
        render(&containers(), &args(argv), 1795445651).unwrap()
    }

    #[test]
    fn default_table_matches_docker() {
        // `docker ps -a` (docker 28.2.2) on the same two containers.
        assert_eq!(
            out(&["-a"]),
            "CONTAINER ID   IMAGE     COMMAND                  CREATED                  STATUS                  PORTS     NAMES\n\
             dce25a2004ba   bb:1      \"sh -c 'echo a very …\"   Less than a second ago   Created                           p2\n\
             2f2d440de401   bb:1      \"sleep 1000\"             Less than a second ago   Up Less than a second             p1\n"
        );
        let no_trunc = out(&["-a", "--no-trunc"]);
        assert!(no_trunc.contains(
            "dce25a2004ba2f2e4ea8f72506db9e88159b52639f8812312c65e35440287e35   bb:1      \"sh -c 'echo a very long command line here'\"   "
        ), "{no_trunc}");
        assert_eq!(out(&["-q"]), "dce25a2004ba\n2f2d440de401\n");
    }

    #[test]
    fn templates_and_json_match_docker() {
        assert_eq!(
            out(&["--format", "table {{.ID}}\\t{{.Mounts}}\\t{{.Labels}}\\t{{.LocalVolumes}}\\t{{.State}}\\t{{.Networks}}"]),
            "CONTAINER ID   MOUNTS    LABELS    LOCAL VOLUMES   STATE     NETWORKS\n\
             dce25a2004ba                       0               created   bridge\n\
             2f2d440de401   /tmp,vx   k=v       1               running   bridge\n"
        );
        let json = out(&["--format", "json"]);
        let second = json.lines().nth(1).unwrap();
        // docker 28's line for the same container.
        assert_eq!(
            second,
            r#"{"Command":"\"sleep 1000\"","CreatedAt":"2026-11-23 14:54:11 +0000 UTC","ID":"2f2d440de401","Image":"bb:1","Labels":"k=v","LocalVolumes":"1","Mounts":"/tmp,vx","Names":"p1","Networks":"bridge","Platform":null,"Ports":"","RunningFor":"Less than a second ago","Size":"0B","State":"running","Status":"Up Less than a second"}"#
        );
        assert!(out(&["-s"]).starts_with(
            "CONTAINER ID   IMAGE     COMMAND                  CREATED                  STATUS                  PORTS     NAMES     SIZE\n"
        ));
    }

    #[test]
    fn queries_like_docker() {
        assert_eq!(query(&args(&[])).unwrap(), "");
        assert_eq!(
            query(&args(&["-a", "-n", "3", "--filter", "name=c1"])).unwrap(),
            "?all=1&filters=%7B%22name%22%3A%7B%22c1%22%3Atrue%7D%7D&limit=3"
        );
        assert_eq!(query(&args(&["-l"])).unwrap(), "?limit=1");
        assert_eq!(query(&args(&["--format", "{{.Size}}"])).unwrap(), "?size=1");
        assert_eq!(query(&args(&["-q", "--format", "{{.Size}}"])).unwrap(), "");
    }

    #[test]
    fn column_rules() {
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abcd", 4), "abcd");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        let c = json!({"Image": "docker.io/library/busybox:1@sha256:0123456789012345678901234567890123456789012345678901234567890123",
                       "ImageID": "sha256:ffff"});
        assert_eq!(image(&c, true), "busybox:1");
        let c =
            json!({"Image": "sha256:01767835de3897bad5", "ImageID": "sha256:01767835de3897bad5"});
        assert_eq!(image(&c, true), "01767835de38");
        assert_eq!(image(&json!({"Image": ""}), true), "<no image>");
        let c = json!({"Names": ["/web/db", "/db"]});
        assert_eq!(names(&c, true), "db");
        assert_eq!(names(&c, false), "web/db,db");
        let c = json!({"Ports": [
            {"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"},
            {"PrivatePort": 9988, "Type": "tcp"}, {"PrivatePort": 9989, "Type": "tcp"},
            {"PrivatePort": 53, "Type": "udp"},
            {"PrivatePort": 443, "PublicPort": 443, "IP": "::", "Type": "tcp"}]});
        assert_eq!(
            ports(&c),
            "53/udp, [::]:443->443/tcp, 9988-9989/tcp, 0.0.0.0:8080->80/tcp"
        );
        // docker 28's PORTS for a container a fake daemon listed with these ports.
        let c = json!({"Ports": [
            {"PrivatePort":80,"PublicPort":8080,"IP":"0.0.0.0","Type":"tcp"},
            {"PrivatePort":80,"PublicPort":8080,"IP":"::","Type":"tcp"},
            {"PrivatePort":8000,"PublicPort":8000,"IP":"0.0.0.0","Type":"tcp"},
            {"PrivatePort":8001,"PublicPort":8001,"IP":"0.0.0.0","Type":"tcp"},
            {"PrivatePort":8000,"PublicPort":8000,"IP":"::","Type":"tcp"},
            {"PrivatePort":8001,"PublicPort":8001,"IP":"::","Type":"tcp"},
            {"PrivatePort":9000,"PublicPort":19000,"IP":"127.0.0.1","Type":"udp"},
            {"PrivatePort":9001,"PublicPort":19001,"IP":"127.0.0.1","Type":"udp"},
            {"PrivatePort":53,"Type":"udp"},{"PrivatePort":54,"Type":"udp"},
            {"PrivatePort":56,"Type":"udp"},{"PrivatePort":443,"Type":"tcp"},
            {"PrivatePort":7,"PublicPort":7,"IP":"::1","Type":"sctp"}]});
        assert_eq!(
            ports(&c),
            "53-54/udp, [::1]:7->7/sctp, 56/udp, 443/tcp, 0.0.0.0:8000-8001->8000-8001/tcp, \
             [::]:8000-8001->8000-8001/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, \
             127.0.0.1:19000->9000/udp, 127.0.0.1:19001->9001/udp"
        );
    }
}
