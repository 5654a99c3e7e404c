//! The copying snapshotter: every snapshot is a full tree, made by copying its parent's.
//! Slower and larger than overlay, but works on any file system (and reflinks on btrfs/xfs).

use std::fs;
use std::path::{Path, PathBuf};

use crate::store::{Snapshot, Store};
use crate::{
    fsutil, DiffSource, Info, Kind, LayerTarget, Mount, SnapshotError, Snapshotter, Usage,
};

/// Full copies, mounted with a bind: the fallback where overlay does not work.
pub struct NativeSnapshotter {
    store: Store,
}

impl NativeSnapshotter {
    /// Opens (or creates) a snapshotter rooted at `root`.
    pub fn new(root: &Path) -> Result<Self, SnapshotError> {
        Ok(NativeSnapshotter {
            store: Store::open(root)?,
        })
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.store.dir(id).join("fs")
    }

    fn mounts_of(&self, s: &Snapshot) -> Vec<Mount> {
        let mode = if s.record.kind == Kind::Active {
            "rw"
        } else {
            "ro"
        };
        vec![Mount {
            kind: "bind".into(),
            source: self.fs_dir(s.record.id).to_string_lossy().into_owned(),
            options: vec!["rbind".into(), mode.into()],
        }]
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let s = self.store.create(key, parent, kind, &|dir, parents| {
            let fs_dir = dir.join("fs");
            fs::create_dir(&fs_dir).map_err(|e| SnapshotError::io("create", &fs_dir, e))?;
            match parents.first() {
                Some(parent) => fsutil::copy_tree(&parent.join("fs"), &fs_dir),
                None => Ok(()),
            }
        })?;
        Ok(self.mounts_of(&s))
    }
}

impl Snapshotter for NativeSnapshotter {
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::Active)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        Ok(self.mounts_of(&self.store.get(key)?))
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        self.store.commit(name, key)
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        self.store.remove(key)
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        self.store.stat(key)
    }

    fn list(&self) -> Result<Vec<Info>, SnapshotError> {
        self.store.list()
    }

    fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        fsutil::usage(&self.fs_dir(self.store.get(key)?.record.id))
    }

    fn layer_target(&self, key: &str) -> Result<LayerTarget, SnapshotError> {
        let s = self.store.get_active(key)?;
        Ok(LayerTarget {
            dir: self.fs_dir(s.record.id),
            overlay_whiteouts: false,
        })
    }

    fn diff_source(&self, key: &str) -> Result<DiffSource, SnapshotError> {
        let s = self.store.get_active(key)?;
        Ok(DiffSource::Trees {
            lower: s.parents.first().map(|&p| self.fs_dir(p)),
            upper: self.fs_dir(s.record.id),
        })
    }
}
