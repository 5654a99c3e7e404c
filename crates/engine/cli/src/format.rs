//! Output formatting shared by the commands: Go-template-like `--format` strings, the `table`
//! and `json` list formats, docker's tab-aligned columns, and human sizes and durations.
//!
//! Templates are evaluated against JSON values: `{{.Repository}}`, `{{.Config.Env}}`,
//! `{{json .Config}}`, `{{index .RepoTags 0}}`, `{{join .RepoTags ", "}}`, `{{upper .Tag}}`,
//! `{{lower .Tag}}`, `{{len .RepoTags}}`, and `{{.}}`.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Arg>),
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B`; empty for `.`
    Path(Vec<String>),
    Str(String),
    Int(i64),
    Func(String),
}

/// A parsed `--format` template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self> {
        let mut nodes = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                nodes.push(Node::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow!("template parsing error: unclosed action in {src:?}"))?;
            nodes.push(Node::Action(parse_action(after[..end].trim())?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        Ok(Template { nodes })
    }

    pub fn render(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(args) => out.push_str(&to_text(&eval(args, data)?)),
            }
        }
        Ok(out)
    }
}

fn parse_action(src: &str) -> Result<Vec<Arg>> {
    let mut args = Vec::new();
    let mut chars = src.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(other) => s.push(other),
                        None => bail!("template parsing error: unterminated string in {src:?}"),
                    },
                    Some(other) => s.push(other),
                    None => bail!("template parsing error: unterminated string in {src:?}"),
                }
            }
            args.push(Arg::Str(s));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            args.push(if let Some(path) = word.strip_prefix('.') {
                if path.is_empty() {
                    Arg::Path(Vec::new())
                } else {
                    Arg::Path(path.split('.').map(str::to_string).collect())
                }
            } else if let Ok(n) = word.parse::<i64>() {
                Arg::Int(n)
            } else if matches!(
                word.as_str(),
                "json" | "index" | "join" | "upper" | "lower" | "len"
            ) {
                Arg::Func(word)
            } else {
                bail!("template parsing error: function {word:?} not defined");
            });
        }
    }
    if args.is_empty() {
        bail!("template parsing error: missing value for command");
    }
    Ok(args)
}

fn lookup(data: &Value, path: &[String]) -> Result<Value> {
    let mut cur = data;
    for field in path {
        match cur {
            Value::Object(map) => match map.get(field) {
                Some(v) => cur = v,
                None => bail!("template: can't evaluate field {field}"),
            },
            Value::Null => return Ok(Value::Null),
            _ => bail!("template: can't evaluate field {field} in a non-object value"),
        }
    }
    Ok(cur.clone())
}

fn operand(arg: &Arg, data: &Value) -> Result<Value> {
    match arg {
        Arg::Path(p) => lookup(data, p),
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Int(n) => Ok(Value::from(*n)),
        Arg::Func(f) => bail!("template: {f} is a function, not a value"),
    }
}

fn eval(args: &[Arg], data: &Value) -> Result<Value> {
    let Arg::Func(func) = &args[0] else {
        if args.len() > 1 {
            bail!("template: can't give argument to non-function");
        }
        return operand(&args[0], data);
    };
    let vals = args[1..]
        .iter()
        .map(|a| operand(a, data))
        .collect::<Result<Vec<_>>>()?;
    let want = |n: usize| -> Result<()> {
        if vals.len() != n {
            bail!(
                "template: wrong number of args for {func}: want {n} got {}",
                vals.len()
            );
        }
        Ok(())
    };
    match func.as_str() {
        "json" => {
            want(1)?;
            Ok(Value::String(go_json(&vals[0])))
        }
        "index" => {
            want(2)?;
            match (&vals[0], &vals[1]) {
                (Value::Array(a), Value::Number(n)) => {
                    let i = n
                        .as_u64()
                        .ok_or_else(|| anyhow!("template: bad index {n}"))?;
                    a.get(i as usize)
                        .cloned()
                        .ok_or_else(|| anyhow!("template: index out of range: {i}"))
                }
                (Value::Object(m), Value::String(k)) => {
                    Ok(m.get(k).cloned().unwrap_or(Value::Null))
                }
                (Value::Null, _) => Ok(Value::Null),
                _ => bail!("template: can't index item"),
            }
        }
        "join" => {
            want(2)?;
            let Value::String(sep) = &vals[1] else {
                bail!("template: join separator must be a string");
            };
            match &vals[0] {
                Value::Array(a) => Ok(Value::String(
                    a.iter().map(to_text).collect::<Vec<_>>().join(sep),
                )),
                Value::Null => Ok(Value::String(String::new())),
                _ => bail!("template: join needs a list"),
            }
        }
        "upper" => {
            want(1)?;
            Ok(Value::String(to_text(&vals[0]).to_uppercase()))
        }
        "lower" => {
            want(1)?;
            Ok(Value::String(to_text(&vals[0]).to_lowercase()))
        }
        "len" => {
            want(1)?;
            match &vals[0] {
                Value::Array(a) => Ok(Value::from(a.len())),
                Value::Object(m) => Ok(Value::from(m.len())),
                Value::String(s) => Ok(Value::from(s.len())),
                Value::Null => Ok(Value::from(0)),
                _ => bail!("template: len of a non-collection"),
            }
        }
        other => bail!("template: function {other:?} not defined"),
    }
}

/// A value as Go's `fmt` prints it: strings bare, lists `[a b]`, maps `map[k:v]`.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(to_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let items: Vec<_> = keys
                .iter()
                .map(|k| format!("{k}:{}", to_text(&m[*k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// JSON as Go's encoder writes it: compact, with `<`, `>` and `&` escaped.
pub fn go_json(v: &Value) -> String {
    escape_html(&serde_json::to_string(v).unwrap_or_default())
}

fn escape_html(s: &str) -> String {
    // These characters appear only inside JSON strings, where the escapes mean the same.
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Re-indents raw JSON with four spaces per level, keeping the daemon's key order (as
/// `docker inspect` prints).
pub fn indent_json(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    out.push(chars.next().unwrap_or(']'));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// How a list command prints its rows.
pub enum ListFormat {
    /// Aligned columns under a header row.
    Table(Template),
    /// One JSON object per row.
    Json,
    /// A template per row, no header.
    Raw(Template),
}

impl ListFormat {
    /// `table` (or empty) → `default_table`; `table TEMPLATE`; `json`; else a bare template.
    /// `\t` and `\n` written literally in the flag become a tab and a newline, as in docker.
    pub fn parse(flag: &str, default_table: &str) -> Result<Self> {
        let flag = flag.replace("\\t", "\t").replace("\\n", "\n");
        if flag.is_empty() || flag == "table" {
            Ok(ListFormat::Table(Template::parse(default_table)?))
        } else if flag == "json" {
            Ok(ListFormat::Json)
        } else if let Some(t) = flag.strip_prefix("table ") {
            Ok(ListFormat::Table(Template::parse(t)?))
        } else {
            Ok(ListFormat::Raw(Template::parse(&flag)?))
        }
    }

    /// Renders `rows`; `headers` maps field names to column titles for table output.
    pub fn render(&self, rows: &[Value], headers: &Value) -> Result<String> {
        match self {
            ListFormat::Json => Ok(rows.iter().map(|r| go_json(r) + "\n").collect()),
            ListFormat::Raw(t) => {
                let mut out = String::new();
                for row in rows {
                    out.push_str(&t.render(row)?);
                    out.push('\n');
                }
                Ok(out)
            }
            ListFormat::Table(t) => {
                let mut text = t.render(headers)?;
                text.push('\n');
                for row in rows {
                    text.push_str(&t.render(row)?);
                    text.push('\n');
                }
                Ok(tabwrite(&text))
            }
        }
    }
}

/// Aligns tab-separated cells like docker's tabwriter (minimum width 10, padding 3). The last
/// cell of a line is not padded.
pub fn tabwrite(text: &str) -> String {
    tabwrite_with(text, 10, 3)
}

/// Aligns tab-separated cells like Go's tabwriter with `min_width` and `padding`: each column
/// is as wide as its widest cell plus the padding, and at least `min_width`.
pub fn tabwrite_with(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (cell.chars().count() + padding).max(min_width);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for cells in &lines {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `%.{precision}g` of `value` followed by a decimal unit, as go-units' HumanSizeWithPrecision.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[i])
}

/// go-units' HumanSize (4 significant digits).
pub fn human_size(size: i64) -> String {
    human_size_precision(size as f64, 4)
}

/// Go's `%.{p}g` for values in [0, 1000): `p` significant digits, trailing zeros dropped.
fn format_g(v: f64, p: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (p as i32 - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub use berth_core::units::human_duration;

/// "3 hours ago" for a unix timestamp, relative to `now`.
pub fn since(created: i64, now: i64) -> String {
    format!("{} ago", human_duration(now - created))
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Civil date and time (UTC) of a unix timestamp.
fn civil(ts: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = ts.div_euclid(86400);
    let secs = ts.rem_euclid(86400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// Go's `time.Time.String()` in UTC: `2024-01-02 03:04:05 +0000 UTC`.
pub fn go_time_string(ts: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// RFC 3339 in UTC: `2024-01-02T03:04:05Z`.
pub fn rfc3339(ts: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `sha256:0123...` → `0123456789ab` (docker's short ID), unless `no_trunc`.
/// A `Labels` object as list templates show it: `k=v` pairs, sorted, comma-joined.
pub fn labels_text(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

pub fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_string();
    }
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_follow_paths_and_functions() {
        let data = json!({"Id": "sha256:ab", "RepoTags": ["a:1", "b:2"],
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"z": "1", "a": "<2>"}, "Cmd": null}});
        let r = |t: &str| Template::parse(t).unwrap().render(&data).unwrap();
        assert_eq!(r("{{.Id}}"), "sha256:ab");
        assert_eq!(r("id={{ .Id }}!"), "id=sha256:ab!");
        assert_eq!(r("{{.Config.Env}}"), "[A=1 B=2]");
        assert_eq!(r("{{.Config.Labels}}"), "map[a:<2> z:1]");
        assert_eq!(
            r("{{json .Config.Labels}}"),
            r#"{"a":"\u003c2\u003e","z":"1"}"#
        );
        assert_eq!(r("{{index .RepoTags 1}}"), "b:2");
        assert_eq!(r("{{index .Config.Labels \"z\"}}"), "1");
        assert_eq!(r("{{join .RepoTags \", \"}}"), "a:1, b:2");
        assert_eq!(r("{{len .RepoTags}} {{upper .Id}}"), "2 SHA256:AB");
        assert_eq!(r("{{.Config.Cmd}}"), "<nil>");
        assert!(Template::parse("{{.Id").is_err());
        assert!(Template::parse("{{nosuchfunc .Id}}").is_err());
        assert!(Template::parse("{{.Nope}}").unwrap().render(&data).is_err());
        assert!(Template::parse("{{index .RepoTags 5}}")
            .unwrap()
            .render(&data)
            .is_err());
    }

    #[test]
    fn tables_align_like_tabwriter() {
        let f = ListFormat::parse("", "{{.Repository}}\t{{.Tag}}\t{{.Size}}").unwrap();
        let rows = vec![
            json!({"Repository": "busybox", "Tag": "latest", "Size": "4.26MB"}),
            json!({"Repository": "localhost:5000/some/long", "Tag": "1", "Size": "0B"}),
        ];
        let headers = json!({"Repository": "REPOSITORY", "Tag": "TAG", "Size": "SIZE"});
        assert_eq!(
            f.render(&rows, &headers).unwrap(),
            "REPOSITORY                 TAG       SIZE\n\
             busybox                    latest    4.26MB\n\
             localhost:5000/some/long   1         0B\n"
        );
        let raw = ListFormat::parse("{{.Repository}}:{{.Tag}}", "").unwrap();
        assert_eq!(
            raw.render(&rows, &headers).unwrap(),
            "busybox:latest\nlocalhost:5000/some/long:1\n"
        );
        let custom = ListFormat::parse("table {{.Tag}}\\t{{.Size}}", "").unwrap();
        assert_eq!(
            custom.render(&rows[..1], &headers).unwrap(),
            "TAG       SIZE\nlatest    4.26MB\n"
        );
        let j = ListFormat::parse("json", "").unwrap();
        assert_eq!(
            j.render(&[json!({"Tag": "<none>"})], &headers).unwrap(),
            "{\"Tag\":\"\\u003cnone\\u003e\"}\n"
        );
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(999.0, 3), "999B");
        assert_eq!(human_size_precision(1000.0, 3), "1kB");
        assert_eq!(human_size_precision(1234.0, 3), "1.23kB");
        assert_eq!(human_size_precision(4_261_000.0, 3), "4.26MB");
        assert_eq!(human_size_precision(123_456_789.0, 3), "123MB");
        assert_eq!(human_size(4_261_234), "4.261MB");
        assert_eq!(human_size(2_100_000_000), "2.1GB");
    }

    #[test]
    fn times_and_ids() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_709_251_199),
            "2024-02-29 23:59:59 +0000 UTC"
        );
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(short_id("sha256:0123456789abcdef", false), "0123456789ab");
        assert_eq!(
            short_id("sha256:0123456789abcdef", true),
            "sha256:0123456789abcdef"
        );
    }

    #[test]
    fn indents_keeping_key_order() {
        let raw = br#"[{"Id":"x","B":[],"A":{"k":"a,b:{}"},"L":[1,2]}]"#;
        assert_eq!(
            indent_json(raw),
            "[\n    {\n        \"Id\": \"x\",\n        \"B\": [],\n        \"A\": {\n            \"k\": \"a,b:{}\"\n        },\n        \"L\": [\n            1,\n            2\n        ]\n    }\n]"
        );
    }
}
