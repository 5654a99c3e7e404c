//! `--log-opt` for the json-file driver: `max-size` and `max-file` (plus the options Docker
//! accepts and berth records but does not act on).

use bollard_stubs::models::HostConfigLogConfig;

use crate::error::{ContainerError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOpts {
    /// Rotate when the file would exceed this many bytes; 0: never.
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_files: u32,
}

/// Options json-file accepts (Docker's list); only the size ones change what berth does.
const KNOWN: &[&str] = &[
    "max-size",
    "max-file",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "mode",
    "max-buffer-size",
];

impl LogOpts {
    pub fn parse(cfg: Option<&HostConfigLogConfig>) -> Result<LogOpts> {
        let mut opts = LogOpts {
            max_size: 0,
            max_files: 1,
        };
        let Some(map) = cfg.and_then(|c| c.config.as_ref()) else {
            return Ok(opts);
        };
        for key in map.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(ContainerError::Invalid(format!(
                    "unknown log opt '{key}' for json-file log driver"
                )));
            }
        }
        if let Some(s) = map.get("max-size").filter(|s| !s.is_empty()) {
            opts.max_size = ram_in_bytes(s)
                .ok_or_else(|| ContainerError::Invalid(format!("invalid size: '{s}'")))?;
        }
        if let Some(s) = map.get("max-file").filter(|s| !s.is_empty()) {
            let n: u32 = s.parse().map_err(|_| {
                ContainerError::Invalid(format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
            })?;
            if n < 1 {
                return Err(ContainerError::Invalid(
                    "max-file cannot be less than 1".into(),
                ));
            }
            if n > 1 && opts.max_size == 0 {
                return Err(ContainerError::Invalid(
                    "max-file cannot be set when max-size is not set".into(),
                ));
            }
            opts.max_files = n;
        }
        Ok(opts)
    }
}

/// Docker's `units.RAMInBytes`: `10m`, `1.5g`, `512k`, `100b`, `100` (binary multiples).
fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    if n < 0.0 {
        return None;
    }
    Some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> HostConfigLogConfig {
        HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
            ),
        }
    }

    #[test]
    fn sizes_and_files() {
        assert_eq!(
            LogOpts::parse(Some(&cfg(&[("max-size", "10m"), ("max-file", "3")]))).unwrap(),
            LogOpts {
                max_size: 10 << 20,
                max_files: 3
            }
        );
        assert_eq!(LogOpts::parse(None).unwrap().max_files, 1);
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert!(LogOpts::parse(Some(&cfg(&[("max-size", "ten")]))).is_err());
        assert!(LogOpts::parse(Some(&cfg(&[("max-file", "3")]))).is_err());
        assert!(LogOpts::parse(Some(&cfg(&[("bogus", "1")]))).is_err());
    }
}
