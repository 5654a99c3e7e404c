//! The metadata and directory bookkeeping both snapshotters share.
//!
//! One redb table maps each key to a [`Record`] (JSON); a counter hands out numeric ids that
//! never repeat once committed. Creating a snapshot happens inside one write transaction:
//! allocate the id, fill `snapshots/tmp-<id>`, rename it to `snapshots/<id>`, insert the
//! record, commit. A crash before the commit leaves only a directory no record owns, which
//! [`Store::open`] deletes; the uncommitted id is then free again. Removing commits first and
//! deletes the directory afterwards, so a crash in between leaves again only an orphan dir.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{fsutil, Info, Kind, SnapshotError};

const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const NEXT_ID: &str = "next_id";
const TMP_PREFIX: &str = "tmp-";

/// What is stored per snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: u64,
    pub kind: Kind,
    pub parent: Option<String>,
    pub created: i64,
}

/// A snapshot looked up with its ancestry.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub record: Record,
    /// Ids of the parent chain, nearest parent first.
    pub parents: Vec<u64>,
}

/// Fills a new snapshot's (temporary) directory, given the parent chain's directories,
/// nearest first.
pub(crate) type Fill = dyn Fn(&Path, &[PathBuf]) -> Result<(), SnapshotError>;

pub(crate) struct Store {
    root: PathBuf,
    db: Database,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn check_key(key: &str) -> Result<(), SnapshotError> {
    if key.is_empty() {
        return Err(SnapshotError::InvalidKey {
            key: key.to_string(),
            reason: "empty",
        });
    }
    Ok(())
}

fn decode(key: &str, bytes: &[u8]) -> Result<Record, SnapshotError> {
    serde_json::from_slice(bytes).map_err(|source| SnapshotError::Corrupt {
        key: key.to_string(),
        source,
    })
}

fn encode(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("a record always serialises")
}

/// Reads `key` and its parent chain from any table handle.
fn lookup(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Snapshot, SnapshotError> {
    let record = match table.get(key)? {
        Some(v) => decode(key, v.value())?,
        None => {
            return Err(SnapshotError::NotFound {
                key: key.to_string(),
            })
        }
    };
    let mut parents = Vec::new();
    let mut next = record.parent.clone();
    while let Some(p) = next {
        let parent = match table.get(p.as_str())? {
            Some(v) => decode(&p, v.value())?,
            None => return Err(SnapshotError::NotFound { key: p }),
        };
        parents.push(parent.id);
        next = parent.parent;
    }
    Ok(Snapshot { record, parents })
}

impl Store {
    /// Opens (or creates) the store at `root` and deletes what a crash left behind.
    pub fn open(root: &Path) -> Result<Store, SnapshotError> {
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(|e| SnapshotError::io("create", &snapshots, e))?;
        let root = fs::canonicalize(root).map_err(|e| SnapshotError::io("resolve", root, e))?;
        // Overlay options are separated by ',' and lower dirs by ':'; a root containing either
        // could not be expressed in a mount.
        let text = root.to_str().ok_or(SnapshotError::InvalidRoot {
            path: root.clone(),
            reason: "not UTF-8",
        })?;
        if text.contains([',', ':']) {
            return Err(SnapshotError::InvalidRoot {
                path: root.clone(),
                reason: "contains ',' or ':', which overlay options cannot express",
            });
        }
        let db_path = root.join("metadata.db");
        let db = Database::create(&db_path)?;
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(COUNTERS)?;
        txn.commit()?;
        let store = Store { root, db };
        store.clean()?;
        Ok(store)
    }

    /// The directory of snapshot `id`.
    pub fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// Deletes temporary dirs and dirs that no record owns.
    fn clean(&self) -> Result<(), SnapshotError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let mut live = HashSet::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            live.insert(decode(k.value(), v.value())?.id);
        }
        let snapshots = self.root.join("snapshots");
        let entries =
            fs::read_dir(&snapshots).map_err(|e| SnapshotError::io("read", &snapshots, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SnapshotError::io("read", &snapshots, e))?;
            let name = entry.file_name();
            let owned = name
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|id| live.contains(&id));
            if !owned {
                fsutil::remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Creates snapshot `key` of `kind` on top of committed `parent`. `fill` gets the new
    /// (temporary) directory and the parent chain's directories, nearest first.
    pub fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        fill: &Fill,
    ) -> Result<Snapshot, SnapshotError> {
        check_key(key)?;
        let txn = self.db.begin_write()?;
        let snapshot;
        {
            let mut table = txn.open_table(SNAPSHOTS)?;
            if table.get(key)?.is_some() {
                return Err(SnapshotError::AlreadyExists {
                    key: key.to_string(),
                });
            }
            let mut parents = Vec::new();
            if let Some(p) = parent {
                let ps = lookup(&table, p)?;
                if ps.record.kind != Kind::Committed {
                    return Err(SnapshotError::ParentNotCommitted {
                        key: key.to_string(),
                        parent: p.to_string(),
                        kind: ps.record.kind,
                    });
                }
                parents.push(ps.record.id);
                parents.extend(ps.parents);
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let id = counters.get(NEXT_ID)?.map(|v| v.value()).unwrap_or(1);
            counters.insert(NEXT_ID, id + 1)?;

            let tmp = self
                .root
                .join("snapshots")
                .join(format!("{TMP_PREFIX}{id}"));
            let dir = self.dir(id);
            // Left over by an earlier attempt in this process whose transaction aborted.
            fsutil::remove_tree(&tmp)?;
            fsutil::remove_tree(&dir)?;
            fs::create_dir(&tmp).map_err(|e| SnapshotError::io("create", &tmp, e))?;
            let parent_dirs: Vec<PathBuf> = parents.iter().map(|&p| self.dir(p)).collect();
            if let Err(e) = fill(&tmp, &parent_dirs) {
                let _ = fsutil::remove_tree(&tmp);
                return Err(e);
            }
            if let Err(e) = fs::rename(&tmp, &dir) {
                let _ = fsutil::remove_tree(&tmp);
                return Err(SnapshotError::io("rename", &tmp, e));
            }
            // The rename must be on disk before the record that points at it.
            sync_dir(&self.root.join("snapshots"))?;
            let record = Record {
                id,
                kind,
                parent: parent.map(str::to_string),
                created: now(),
            };
            table.insert(key, encode(&record).as_slice())?;
            snapshot = Snapshot { record, parents };
        }
        if let Err(e) = txn.commit() {
            let _ = fsutil::remove_tree(&self.dir(snapshot.record.id));
            return Err(e.into());
        }
        Ok(snapshot)
    }

    pub fn get(&self, key: &str) -> Result<Snapshot, SnapshotError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        lookup(&table, key)
    }

    /// `get`, and `NotActive` unless the snapshot is active.
    pub fn get_active(&self, key: &str) -> Result<Snapshot, SnapshotError> {
        let s = self.get(key)?;
        if s.record.kind != Kind::Active {
            return Err(SnapshotError::NotActive {
                key: key.to_string(),
                kind: s.record.kind,
            });
        }
        Ok(s)
    }

    pub fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        check_key(name)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let mut record = match table.get(key)? {
                Some(v) => decode(key, v.value())?,
                None => {
                    return Err(SnapshotError::NotFound {
                        key: key.to_string(),
                    })
                }
            };
            if record.kind != Kind::Active {
                return Err(SnapshotError::NotActive {
                    key: key.to_string(),
                    kind: record.kind,
                });
            }
            if table.get(name)?.is_some() {
                return Err(SnapshotError::AlreadyExists {
                    key: name.to_string(),
                });
            }
            record.kind = Kind::Committed;
            record.created = now();
            table.remove(key)?;
            table.insert(name, encode(&record).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let txn = self.db.begin_write()?;
        let id;
        {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let record = match table.get(key)? {
                Some(v) => decode(key, v.value())?,
                None => {
                    return Err(SnapshotError::NotFound {
                        key: key.to_string(),
                    })
                }
            };
            let mut children = 0;
            for entry in table.iter()? {
                let (k, v) = entry?;
                if decode(k.value(), v.value())?.parent.as_deref() == Some(key) {
                    children += 1;
                }
            }
            if children > 0 {
                return Err(SnapshotError::HasChildren {
                    key: key.to_string(),
                    children,
                });
            }
            table.remove(key)?;
            id = record.id;
        }
        txn.commit()?;
        // The record is gone; if this fails (say, something is mounted inside), the next open
        // retries it.
        fsutil::remove_tree(&self.dir(id))
    }

    pub fn list(&self) -> Result<Vec<Info>, SnapshotError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let r = decode(k.value(), v.value())?;
            out.push(info(k.value(), r));
        }
        Ok(out)
    }

    pub fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        Ok(info(key, self.get(key)?.record))
    }
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| SnapshotError::io("sync", dir, e))
}

fn info(key: &str, r: Record) -> Info {
    Info {
        name: key.to_string(),
        parent: r.parent,
        kind: r.kind,
        created: r.created,
    }
}
