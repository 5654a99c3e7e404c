//! The overlay snapshotter: each snapshot owns an upper dir (`fs`) and a work dir; a stack is
//! an overlay mount of its parents' `fs` dirs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::store::{Snapshot, Store};
use crate::{
    fsutil, DiffSource, Info, Kind, LayerTarget, Mount, SnapshotError, Snapshotter, Usage,
};

/// Layers as overlayfs lower dirs, containers as an upper dir on top. Needs a kernel and a
/// root file system where overlay works (see [`crate::overlay_supported`]).
pub struct OverlaySnapshotter {
    store: Store,
    /// `index=off` when the kernel has the index feature: with it on, a lower dir that was
    /// mounted once with some upper dir refuses to be mounted with another, and our layers
    /// are shared by every container that uses them.
    index_off: bool,
    /// Options for mounts with an upper dir that keep the upper dir a plain diff: no
    /// `redirect_dir` (a renamed lower directory would be a redirect xattr instead of a copy)
    /// and no `metacopy` (a chmod would copy up metadata without the data). Each only where
    /// the kernel knows the option, since unknown options fail the mount.
    upper_options: Vec<String>,
}

impl OverlaySnapshotter {
    /// Opens (or creates) a snapshotter rooted at `root`.
    pub fn new(root: &Path) -> Result<Self, SnapshotError> {
        let param = |p: &str| Path::new("/sys/module/overlay/parameters").join(p).exists();
        let mut upper_options = Vec::new();
        if param("redirect_dir") {
            upper_options.push("redirect_dir=off".to_string());
        }
        if param("metacopy") {
            upper_options.push("metacopy=off".to_string());
        }
        Ok(OverlaySnapshotter {
            store: Store::open(root)?,
            index_off: param("index"),
            upper_options,
        })
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.store.dir(id).join("fs")
    }

    fn bind(dir: &Path, readonly: bool) -> Vec<Mount> {
        vec![Mount {
            kind: "bind".into(),
            source: dir.to_string_lossy().into_owned(),
            options: vec!["rbind".into(), if readonly { "ro" } else { "rw" }.into()],
        }]
    }

    fn lowerdir(&self, ids: &[u64]) -> String {
        let dirs: Vec<String> = ids
            .iter()
            .map(|&id| self.fs_dir(id).to_string_lossy().into_owned())
            .collect();
        format!("lowerdir={}", dirs.join(":"))
    }

    /// A read-only mount of `ids` (top first): a bind for one layer (overlay wants two or an
    /// upper dir), an overlay of lower dirs only for more.
    fn read_only(&self, ids: &[u64]) -> Vec<Mount> {
        if ids.len() == 1 {
            return Self::bind(&self.fs_dir(ids[0]), true);
        }
        let mut options = Vec::new();
        if self.index_off {
            options.push("index=off".to_string());
        }
        options.push(self.lowerdir(ids));
        options.push("ro".into());
        vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }]
    }

    fn mounts_of(&self, s: &Snapshot) -> Vec<Mount> {
        let id = s.record.id;
        match s.record.kind {
            Kind::Active if s.parents.is_empty() => Self::bind(&self.fs_dir(id), false),
            Kind::Active => {
                let mut options = Vec::new();
                if self.index_off {
                    options.push("index=off".to_string());
                }
                options.extend(self.upper_options.iter().cloned());
                let dir = self.store.dir(id);
                options.push(format!("workdir={}", dir.join("work").display()));
                options.push(format!("upperdir={}", dir.join("fs").display()));
                options.push(self.lowerdir(&s.parents));
                vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options,
                }]
            }
            Kind::View if s.parents.is_empty() => Self::bind(&self.fs_dir(id), true),
            Kind::View => self.read_only(&s.parents),
            Kind::Committed => {
                let mut ids = vec![id];
                ids.extend(&s.parents);
                self.read_only(&ids)
            }
        }
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let s = self.store.create(key, parent, kind, &|dir, _parents| {
            for sub in ["fs", "work"] {
                let p = dir.join(sub);
                fs::create_dir(&p).map_err(|e| SnapshotError::io("create", &p, e))?;
            }
            Ok(())
        })?;
        Ok(self.mounts_of(&s))
    }
}

impl Snapshotter for OverlaySnapshotter {
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
            overlay_whiteouts: true,
        })
    }

    fn diff_source(&self, key: &str) -> Result<DiffSource, SnapshotError> {
        let s = self.store.get_active(key)?;
        Ok(DiffSource::OverlayUpper(self.fs_dir(s.record.id)))
    }
}
