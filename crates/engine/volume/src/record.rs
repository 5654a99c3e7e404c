//! A volume's metadata on disk, `<root>/<name>/volume.json`, and how files and names are made.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// File name of the metadata inside a volume's directory.
pub(crate) const RECORD_FILE: &str = "volume.json";
/// Where the metadata is written before it is renamed into place.
pub(crate) const RECORD_TEMP: &str = "volume.json.tmp";
/// Directory of the volume's files inside its directory (Docker's name).
pub(crate) const DATA_DIR: &str = "_data";

/// Everything about a volume that outlives the daemon. It never changes after create (Docker
/// has no volume update for the local driver), so it is written once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub name: String,
    pub driver: String,
    /// RFC 3339, UTC, seconds: `2026-11-23T14:29:07Z`.
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl Record {
    pub(crate) fn read(dir: &Path) -> io::Result<Record> {
        let bytes = fs::read(dir.join(RECORD_FILE))?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes `dir/volume.json` atomically: a temporary file, flushed, renamed over, and the
    /// directory flushed, so a crash leaves the old file, the new one, or a temporary file
    /// that opening the store deletes.
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let temp = dir.join(RECORD_TEMP);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&temp, dir.join(RECORD_FILE))?;
        sync_dir(dir)
    }
}

/// Flushes a directory's entries (a rename or create in it) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `2026-11-23T14:29:07Z`, as Docker formats `CreatedAt` (`time.RFC3339`, UTC).
pub(crate) fn rfc3339_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// When a directory was last changed, for a volume adopted without metadata (Docker's local
/// driver reports the volume directory's ctime as its creation time).
pub(crate) fn changed_at(meta: &fs::Metadata) -> SystemTime {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; n];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A name for an anonymous volume: 64 hex digits, like Docker's `stringid.GenerateRandomID`,
/// which never lets the 12-character short form be all digits (it would read as a number).
pub(crate) fn anonymous_name() -> io::Result<String> {
    loop {
        let id = random_hex(32)?;
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Record {
            name: "vol".into(),
            driver: "local".into(),
            created_at: rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(1_795_444_147)),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            options: BTreeMap::new(),
        };
        assert_eq!(r.created_at, "2026-11-23T14:29:07Z");
        r.write(dir.path()).unwrap();
        assert_eq!(Record::read(dir.path()).unwrap(), r);
        r.labels.clear();
        r.write(dir.path()).unwrap();
        assert_eq!(Record::read(dir.path()).unwrap(), r);
        assert!(!dir.path().join(RECORD_TEMP).exists());
    }

    #[test]
    fn anonymous_names_are_64_hex() {
        let a = anonymous_name().unwrap();
        let b = anonymous_name().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
