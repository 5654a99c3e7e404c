//! Small helpers for cgroupfs files: one `open` + one `write` per value,
//! errors that carry the path and value, and the "max" spelling of unlimited.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Write `value` to an existing cgroup file. Cgroup files take one value per
/// write(2); the file is never created or truncated.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// [`write_raw`] with the error carrying the path and value.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    write_raw(path, value).map_err(|source| write_error(path, value, source))
}

pub(crate) fn write_error(path: &Path, value: &str, source: io::Error) -> CgroupError {
    CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    }
}

/// Write a controller file of a spec field. A missing file means the
/// controller (or that knob of it) is not available for this cgroup, which is
/// reported as [`CgroupError::Unsupported`] naming the field.
pub(crate) fn write_field(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let path = dir.join(file);
    match write_raw(&path, value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CgroupError::Unsupported {
            field: field.to_string(),
            reason: format!(
                "{} does not exist (controller or kernel feature missing)",
                path.display()
            ),
        }),
        Err(source) => Err(write_error(&path, value, source)),
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a file that may legitimately be absent (an optional kernel feature).
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parse one unsigned value; "max" (cgroup v2 for "no limit") is `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse()
        .map_err(|_| parse_error(path, format!("expected a number, found {s:?}")))
}

pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let s = read(path)?;
    parse_u64(path, &s)
}

pub(crate) fn read_u64_optional(path: &Path) -> Result<Option<u64>> {
    match read_optional(path)? {
        Some(s) => parse_u64(path, &s).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn parse_error(path: &Path, detail: String) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        detail,
    }
}

/// Iterate the `key value` lines of a flat-keyed file (cpu.stat, memory.stat,
/// memory.events, ...), parsing the values.
pub(crate) fn parse_flat_keyed(path: &Path, content: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for line in content.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        out.push((k.to_string(), parse_u64(path, v)?));
    }
    Ok(out)
}

/// The value for `key` in a flat-keyed file, if present.
pub(crate) fn flat_keyed_value(path: &Path, content: &str, key: &str) -> Result<Option<u64>> {
    for line in content.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            if let Some(v) = it.next() {
                return parse_u64(path, v).map(Some);
            }
        }
    }
    Ok(None)
}

/// `dir.join(file)` for the many call sites that build a file path.
pub(crate) fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_parsing() {
        let p = Path::new("/x/cpu.stat");
        let kv = parse_flat_keyed(p, "nr_periods 3\nnr_throttled 2\nthrottled_time 10\n").unwrap();
        assert_eq!(kv[1], ("nr_throttled".to_string(), 2));
        assert_eq!(
            flat_keyed_value(p, "populated 1\nfrozen 0\n", "frozen").unwrap(),
            Some(0)
        );
        assert_eq!(
            flat_keyed_value(p, "populated 1\n", "frozen").unwrap(),
            None
        );
        assert_eq!(parse_u64(p, "max\n").unwrap(), u64::MAX);
        assert!(parse_u64(p, "lots").is_err());
    }
}
