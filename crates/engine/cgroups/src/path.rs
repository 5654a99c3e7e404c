//! From `linux.cgroupsPath` to one cgroup path per hierarchy, and back from
//! the string the runtime keeps in its state file.
//!
//! - none or empty: `/berth-runc/<id>`;
//! - absolute: the same path in every hierarchy, under the hierarchy's root;
//! - relative: under the caller's own cgroup, which /proc/self/cgroup gives
//!   per hierarchy (they can differ: on this host our memory cgroup is nested
//!   while the others are "/");
//! - `slice:prefix:name`: the systemd driver's syntax, refused with a clear error.
//!
//! The resolved paths are encoded into one string: the common path, followed
//! by `;<hierarchy>:<path>` for each hierarchy where the path differs. In the
//! usual case (absolute path) that is just the path, e.g. `/berth-runc/abc`.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{CgroupError, Result};

/// The parent of containers that name no cgroupsPath.
/// Where containers without a `linux.cgroupsPath` get their cgroup.
pub const DEFAULT_PARENT: &str = "/berth-runc";

/// What the spec asked for, cleaned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Under each hierarchy's root.
    Absolute(String),
    /// Under the caller's own cgroup of each hierarchy (kept rooted: "/a/b").
    Relative(String),
}

pub(crate) fn request(cgroups_path: Option<&Path>, id: &str) -> Result<Request> {
    let raw = match cgroups_path {
        None => "",
        Some(p) => p.to_str().ok_or_else(|| CgroupError::InvalidPath {
            path: p.to_string_lossy().into_owned(),
            reason: "not valid UTF-8",
        })?,
    };
    if raw.is_empty() {
        let path = format!("{DEFAULT_PARENT}/{id}");
        if id.is_empty() || id == "." || id == ".." || id.contains('/') {
            return Err(CgroupError::InvalidPath {
                path,
                reason: "the container id must be a single path component",
            });
        }
        check_chars(&path)?;
        return Ok(Request::Absolute(path));
    }
    check_chars(raw)?;
    if !raw.starts_with('/') && raw.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath {
            path: raw.to_string(),
        });
    }
    let cleaned = clean(raw);
    if cleaned == "/" {
        return Err(CgroupError::InvalidPath {
            path: raw.to_string(),
            reason: "a container cannot use the root cgroup",
        });
    }
    Ok(if raw.starts_with('/') {
        Request::Absolute(cleaned)
    } else {
        Request::Relative(cleaned)
    })
}

fn check_chars(path: &str) -> Result<()> {
    if path.contains([';', '\n', '\0']) {
        return Err(CgroupError::InvalidPath {
            path: path.to_string(),
            reason: "contains ';', a newline or NUL",
        });
    }
    Ok(())
}

/// Lexically clean a path as if rooted: no empty, "." or ".." components, so
/// that a path can never climb out of the hierarchy (or out of our own cgroup).
pub(crate) fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(p.len() + 1);
    for c in &parts {
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `base` + `rel`, cleaned; `rel` cannot climb above `base`.
pub(crate) fn join(base: &str, rel: &str) -> String {
    let rel = clean(rel);
    if base == "/" {
        rel
    } else {
        format!("{}{}", clean(base), if rel == "/" { "" } else { &rel })
    }
}

/// Encode per-hierarchy paths (key, path) into one string: the most common
/// path first, then `;key:path` for the exceptions.
pub(crate) fn encode(paths: &[(String, String)]) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, p) in paths {
        *counts.entry(p.as_str()).or_default() += 1;
    }
    // Most common; ties go to the first hierarchy listed.
    let mut common = paths.first().map(|(_, p)| p.as_str()).unwrap_or("/");
    for (_, p) in paths {
        if counts[p.as_str()] > counts[common] {
            common = p;
        }
    }
    let mut out = common.to_string();
    for (k, p) in paths {
        if p != common {
            out.push(';');
            out.push_str(k);
            out.push(':');
            out.push_str(p);
        }
    }
    out
}

/// Decode [`encode`]'s output: the common path and the per-hierarchy exceptions.
pub(crate) fn decode(s: &str) -> Result<(String, Vec<(String, String)>)> {
    let invalid = |reason| CgroupError::InvalidPath {
        path: s.to_string(),
        reason,
    };
    let mut parts = s.split(';');
    let common = parts.next().unwrap_or("");
    check_resolved(common).map_err(invalid)?;
    let mut overrides = Vec::new();
    for part in parts {
        let (key, path) = part
            .find(":/")
            .map(|i| (&part[..i], &part[i + 1..]))
            .ok_or_else(|| invalid("a per-hierarchy entry is not \"<hierarchy>:<path>\""))?;
        if key.is_empty() {
            return Err(invalid("a per-hierarchy entry has no hierarchy name"));
        }
        check_resolved(path).map_err(invalid)?;
        overrides.push((key.to_string(), path.to_string()));
    }
    Ok((common.to_string(), overrides))
}

fn check_resolved(p: &str) -> std::result::Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("a resolved cgroup path must be absolute");
    }
    if clean(p) != p {
        return Err("a resolved cgroup path must be clean (no \"..\", \".\" or \"//\")");
    }
    if p == "/" {
        return Err("a container cannot use the root cgroup");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: Option<&str>, id: &str) -> Result<Request> {
        request(p.map(Path::new), id)
    }

    #[test]
    fn default_is_under_berth_runc() {
        assert_eq!(
            req(None, "abc").unwrap(),
            Request::Absolute("/berth-runc/abc".into())
        );
        assert_eq!(
            req(Some(""), "abc").unwrap(),
            Request::Absolute("/berth-runc/abc".into())
        );
        assert!(req(None, "a/b").is_err());
        assert!(req(None, "..").is_err());
        assert!(req(None, "").is_err());
    }

    #[test]
    fn absolute_and_relative_are_cleaned() {
        assert_eq!(
            req(Some("/a//b/./c/"), "x").unwrap(),
            Request::Absolute("/a/b/c".into())
        );
        assert_eq!(
            req(Some("/../../etc"), "x").unwrap(),
            Request::Absolute("/etc".into())
        );
        assert_eq!(
            req(Some("ctr/one"), "x").unwrap(),
            Request::Relative("/ctr/one".into())
        );
        assert_eq!(
            req(Some("../../up"), "x").unwrap(),
            Request::Relative("/up".into())
        );
        assert!(matches!(
            req(Some("/"), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            req(Some("/.."), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            req(Some("/a;b"), "x"),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn systemd_paths_are_refused_clearly() {
        let e = req(Some("system.slice:cri-containerd:abc"), "abc").unwrap_err();
        assert!(matches!(e, CgroupError::SystemdPath { .. }));
        assert!(e.to_string().contains("system.slice:cri-containerd:abc"));
        // A colon in an absolute cgroupfs path is just a name.
        assert_eq!(
            req(Some("/a:b:c"), "x").unwrap(),
            Request::Absolute("/a:b:c".into())
        );
    }

    #[test]
    fn join_stays_under_base() {
        assert_eq!(join("/", "/ctr"), "/ctr");
        assert_eq!(join("/process_api/55b", "/ctr"), "/process_api/55b/ctr");
        assert_eq!(join("/own", "/../../x"), "/own/x");
    }

    #[test]
    fn encode_decode_round_trip() {
        let same = vec![
            ("cpu".to_string(), "/berth-runc/a".to_string()),
            ("memory".to_string(), "/berth-runc/a".to_string()),
        ];
        assert_eq!(encode(&same), "/berth-runc/a");
        assert_eq!(
            decode("/berth-runc/a").unwrap(),
            ("/berth-runc/a".to_string(), vec![])
        );

        let mixed = vec![
            ("cpu".to_string(), "/c".to_string()),
            ("memory".to_string(), "/process_api/55b/c".to_string()),
            ("name=systemd".to_string(), "/c".to_string()),
            ("unified".to_string(), "/c".to_string()),
        ];
        let s = encode(&mixed);
        assert_eq!(s, "/c;memory:/process_api/55b/c");
        let (common, over) = decode(&s).unwrap();
        assert_eq!(common, "/c");
        assert_eq!(
            over,
            vec![("memory".to_string(), "/process_api/55b/c".to_string())]
        );
    }

    #[test]
    fn decode_rejects_tampered_paths() {
        assert!(decode("relative").is_err());
        assert!(decode("/a/../b").is_err());
        assert!(decode("/").is_err());
        assert!(decode("/a;memory").is_err());
        assert!(decode("/a;:/b").is_err());
    }
}
