//! `berth history IMAGE`: `GET /images/{name}/history`, newest layer first.

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::path_name;
use crate::commands::{print, Ctx};
use crate::format::{human_size_precision, rfc3339, short_id, since, ListFormat};

#[derive(clap::Args)]
pub struct Args {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or TEMPLATE
    #[arg(long, value_name = "FORMAT", default_value = "")]
    format: String,
    #[arg(value_name = "IMAGE")]
    image: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub comment: String,
}

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

pub fn row_value(h: &HistoryItem, args: &Args, now: i64) -> Value {
    let id = if h.id == "<missing>" {
        h.id.clone()
    } else {
        short_id(&h.id, args.no_trunc)
    };
    let created_by = h.created_by.replace('\t', " ");
    json!({
        "ID": id,
        "CreatedSince": if args.human { since(h.created, now) } else { rfc3339(h.created) },
        "CreatedAt": rfc3339(h.created),
        "CreatedBy": if args.no_trunc { created_by } else { ellipsis(&created_by, 45) },
        "Size": if args.human { human_size_precision(h.size as f64, 3) } else { h.size.to_string() },
        "Comment": h.comment,
    })
}

pub fn render(items: &[HistoryItem], args: &Args, now: i64) -> Result<String> {
    let format = if args.quiet {
        "{{.ID}}"
    } else {
        args.format.as_str()
    };
    let list = ListFormat::parse(
        format,
        "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    )?;
    let created = if args.human { "CREATED" } else { "CREATED AT" };
    let headers = json!({"ID": "IMAGE", "CreatedSince": created, "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    let rows: Vec<Value> = items.iter().map(|h| row_value(h, args, now)).collect();
    list.render(&rows, &headers)
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let items: Vec<HistoryItem> = ctx
        .client
        .get_json(&format!("/images/{}/history", path_name(&args.image)))
        .await?;
    print(&render(&items, &args, crate::format::now_unix())?)
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

    #[test]
    fn table_and_flags() {
        let items: Vec<HistoryItem> = serde_json::from_value(json!([
            {"Id": "sha256:abcdefabcdef0123", "Created": 100, "CreatedBy":
             "/bin/sh -c #(nop)\tCMD [\"sh\"] and a very long tail of words here", "Size": 0,
             "Comment": ""},
            {"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 4261000, "Comment": "Imported from -"}
        ]))
        .unwrap();
        let r = |argv: &[&str]| {
            let t = T::parse_from(["history"].iter().chain(argv).chain(&["img"]));
            render(&items, &t.args, 100 + 3 * 86400).unwrap()
        };
        assert_eq!(
            r(&[]),
            "IMAGE          CREATED      CREATED BY                                      SIZE      COMMENT\n\
             abcdefabcdef   3 days ago   /bin/sh -c #(nop) CMD [\"sh\"] and a very long…   0B        \n\
             <missing>      3 days ago                                                   4.26MB    Imported from -\n"
        );
        assert_eq!(r(&["-q"]), "abcdefabcdef\n<missing>\n");
        let raw = r(&["-H=false", "--format", "{{.CreatedSince}} {{.Size}}"]);
        assert_eq!(
            raw,
            "1970-01-01T00:01:40Z 0\n1970-01-01T00:00:00Z 4261000\n"
        );
    }
}
