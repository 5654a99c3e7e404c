//! The `filters` of `GET /volumes` and `POST /volumes/prune`, checked and matched as Docker
//! does. The API layer decodes the JSON (`{"label":["a=b"]}`) into a map and hands it to
//! [`ListFilters::from_args`] or [`PruneFilters::from_args`], which refuse what Docker refuses
//! with Docker's message.

use std::collections::BTreeMap;

use crate::error::{Result, VolumeError};

/// Label Docker puts on every volume created without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What `docker volume ls --filter` selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilters {
    /// Volumes whose name contains any of these.
    pub name: Vec<String>,
    /// Volumes of any of these drivers.
    pub driver: Vec<String>,
    /// `key` or `key=value`: volumes carrying every one of these labels.
    pub label: Vec<String>,
    /// `Some(true)`: only volumes no container references; `Some(false)`: only referenced ones.
    pub dangling: Option<bool>,
}

/// What `docker volume prune --filter` selects. Prune only ever removes volumes no container
/// references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneFilters {
    /// Consider named volumes too, not only anonymous ones (`all=true`; API 1.42 made
    /// anonymous-only the default, so the API layer sets this for older clients).
    pub all: bool,
    /// `key` or `key=value`: volumes carrying every one of these labels.
    pub label: Vec<String>,
    /// `label!=...`: volumes carrying every one of these are kept.
    pub label_not: Vec<String>,
}

fn invalid(message: String) -> VolumeError {
    VolumeError::InvalidFilter(message)
}

impl ListFilters {
    /// From Docker's filter arguments (key to values); unknown keys and non-boolean
    /// `dangling` values are refused.
    pub fn from_args(args: &BTreeMap<String, Vec<String>>) -> Result<Self> {
        let mut f = ListFilters::default();
        for (key, values) in args {
            match key.as_str() {
                "name" => f.name.clone_from(values),
                "driver" => f.driver.clone_from(values),
                "label" => f.label.clone_from(values),
                "dangling" => f.dangling = Some(parse_dangling(values)?),
                _ => return Err(invalid(format!("invalid filter '{key}'"))),
            }
        }
        Ok(f)
    }
}

/// Docker's `GetBoolOrDefault`: `true`/`1` or `false`/`0`, not both.
fn parse_dangling(values: &[String]) -> Result<bool> {
    let has = |words: [&str; 2]| values.iter().any(|v| words.contains(&v.as_str()));
    let (yes, no) = (has(["true", "1"]), has(["false", "0"]));
    if yes == no {
        let mut message = "invalid filter 'dangling".to_string();
        if !values.is_empty() {
            message.push('=');
            message.push_str(&values.join(","));
        }
        message.push('\'');
        return Err(invalid(message));
    }
    Ok(yes)
}

impl PruneFilters {
    /// From Docker's filter arguments: `all` (one boolean), `label`, `label!`.
    pub fn from_args(args: &BTreeMap<String, Vec<String>>) -> Result<Self> {
        let mut f = PruneFilters::default();
        for (key, values) in args {
            match key.as_str() {
                "all" => f.all = parse_all(values)?,
                "label" => f.label.clone_from(values),
                "label!" => f.label_not.clone_from(values),
                _ => return Err(invalid(format!("invalid filter '{key}'"))),
            }
        }
        Ok(f)
    }

    /// The label filter prune applies: the given one, plus the anonymous label unless `all`.
    pub(crate) fn effective_labels(&self) -> Vec<String> {
        let mut labels = self.label.clone();
        if !self.all {
            labels.push(ANONYMOUS_LABEL.to_string());
        }
        labels
    }
}

/// Go's `strconv.ParseBool`, with Docker's messages around it.
fn parse_all(values: &[String]) -> Result<bool> {
    match values {
        [] => Ok(false),
        [v] => match v.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(invalid(format!(
                "invalid filter 'all': strconv.ParseBool: parsing \"{v}\": invalid syntax"
            ))),
        },
        _ => Err(invalid(format!(
            "invalid filter 'all=[{}]': only one value is expected",
            values.join(" ")
        ))),
    }
}

/// Docker's `MatchKVList`: true when there is no filter; otherwise every `key` or `key=value`
/// must be among `labels`.
pub(crate) fn labels_match(filter: &[String], labels: &BTreeMap<String, String>) -> bool {
    filter.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(f.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    fn message(r: Result<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn list_filters_parse_like_docker() {
        let f = ListFilters::from_args(&args(&[
            ("name", &["web"]),
            ("driver", &["local"]),
            ("label", &["a", "b=c"]),
            ("dangling", &["1"]),
        ]))
        .unwrap();
        assert_eq!(f.name, ["web"]);
        assert_eq!(f.label, ["a", "b=c"]);
        assert_eq!(f.dangling, Some(true));
        let f = ListFilters::from_args(&args(&[("dangling", &["false"])])).unwrap();
        assert_eq!(f.dangling, Some(false));
        assert_eq!(
            message(ListFilters::from_args(&args(&[("dangling", &["maybe"])]))),
            "invalid filter 'dangling=maybe'"
        );
        assert_eq!(
            message(ListFilters::from_args(&args(&[(
                "dangling",
                &["true", "false"]
            )]))),
            "invalid filter 'dangling=true,false'"
        );
        assert_eq!(
            message(ListFilters::from_args(&args(&[("until", &["1h"])]))),
            "invalid filter 'until'"
        );
    }

    #[test]
    fn prune_filters_parse_like_docker() {
        let f = PruneFilters::from_args(&args(&[])).unwrap();
        assert!(!f.all);
        assert_eq!(f.effective_labels(), [ANONYMOUS_LABEL]);
        let f =
            PruneFilters::from_args(&args(&[("all", &["True"]), ("label!", &["keep"])])).unwrap();
        assert!(f.all);
        assert!(f.effective_labels().is_empty());
        assert_eq!(f.label_not, ["keep"]);
        assert_eq!(
            message(PruneFilters::from_args(&args(&[("all", &["yes"])]))),
            "invalid filter 'all': strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            message(PruneFilters::from_args(&args(&[("all", &["1", "0"])]))),
            "invalid filter 'all=[1 0]': only one value is expected"
        );
        assert_eq!(
            message(PruneFilters::from_args(&args(&[("dangling", &["true"])]))),
            "invalid filter 'dangling'"
        );
    }

    #[test]
    fn labels_match_keys_and_values() {
        let labels: BTreeMap<String, String> = [("a", "1"), ("b", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let m = |f: &[&str]| {
            labels_match(
                &f.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &labels,
            )
        };
        assert!(m(&[]));
        assert!(m(&["a"]));
        assert!(m(&["a=1", "b"]));
        assert!(m(&["b="]));
        assert!(!m(&["a=2"]));
        assert!(!m(&["a", "c"]));
        assert!(!labels_match(&["a".to_string()], &BTreeMap::new()));
    }
}
