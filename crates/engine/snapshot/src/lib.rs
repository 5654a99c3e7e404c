//! berth-snapshot: image layers unpacked once, shared by every image, with containers on top.
//!
//! The model is containerd's snapshotter: a handful of verbs ([`Snapshotter::prepare`],
//! [`Snapshotter::view`], [`Snapshotter::commit`], [`Snapshotter::remove`]) that return
//! [`Mount`]s instead of mounting anything themselves. Whoever needs the files calls
//! [`mount_all`] on a target of their choosing and [`unmount`] when done.
//!
//! # Importing a layer
//!
//! An image with layers `L0, L1` (bottom first) has chain ids `C0 = chain(L0)` and
//! `C1 = chain(L0, L1)` (see [`berth_core::digest::chain_ids`]). The image service unpacks each
//! layer at most once:
//!
//! 1. `stat("C1")` succeeds: the layer is already there, nothing to do.
//! 2. Otherwise `prepare("extract-<random>", Some("C0"))` makes an active snapshot on top of the
//!    parent layer (`None` for the bottom one).
//! 3. [`Snapshotter::layer_target`] says where the tar diff can be written without mounting and
//!    how its whiteouts must be written: into the overlay upper dir as overlay whiteouts
//!    (character device 0:0, `trusted.overlay.opaque=y`), or, for the copying snapshotter, into
//!    the full tree as plain deletions.
//! 4. `commit("C1", "extract-<random>")` turns it into the committed, read-only layer `C1`.
//!    If another pull committed `C1` first, commit fails with `AlreadyExists`; the loser removes
//!    its active snapshot and uses the existing layer.
//!
//! # Running a container
//!
//! `prepare("<container id>", Some("C1"))` returns the container's root file system: for the
//! overlay snapshotter an `overlay` mount whose lower dirs are the layer chain (top first) and
//! whose upper dir belongs to the container. The runtime mounts it at the bundle's rootfs with
//! [`mount_all`]. Layers shared by many containers are mounted many times, read-only, at once.
//! [`Snapshotter::view`] gives a read-only root instead (for `docker cp` out of an image, say).
//!
//! # Committing a container (`docker commit`)
//!
//! [`Snapshotter::diff_source`] tells the image service what to diff: the overlay upper dir (its
//! contents are the diff, whiteouts included), or the pair of full trees for the copying
//! snapshotter. The resulting tar is a new layer, imported as above.
//!
//! # Removing
//!
//! [`Snapshotter::remove`] refuses to remove a committed layer that is still the parent of
//! another snapshot (`Conflict`): layers go top down. Removing deletes the snapshot's
//! directories. Mounts are the caller's business: unmount a container's root before removing
//! its snapshot, or the kernel keeps using files whose directory entries are gone (and the
//! directory removal may fail, in which case the next [`OverlaySnapshotter::new`] retries it).
//!
//! # On disk
//!
//! `root/metadata.db` (redb) records every snapshot: its key, kind, parent and a short numeric
//! id; `root/snapshots/<id>/{fs,work}` hold the files. Keys are arbitrary strings and are never
//! used in paths, and the short ids keep `lowerdir=` lists short. Every change is one redb
//! transaction; directories are made under a temporary name and renamed into place before the
//! transaction commits, so a crash at any point leaves a root that opens, and opening deletes
//! whatever the crash left behind (temporary dirs and dirs no record owns).
//!
//! # Testing
//!
//! [`testsuite`] holds the checks every implementation must pass (chains, whiteouts through
//! real mounts, container changes, removal rules, a 128-layer stack, restart, crash leftovers,
//! metadata fidelity, racing commits); `tests/suite.rs` runs them against both snapshotters and
//! adds a kill -9 test.

mod error;
mod fsutil;
mod mount;
mod native;
mod overlay;
mod store;
pub mod testsuite;

use std::path::PathBuf;

pub use error::SnapshotError;
pub use mount::{mount_all, overlay_supported, unmount, MAX_MOUNT_DATA};
pub use native::NativeSnapshotter;
pub use overlay::OverlaySnapshotter;

/// One mount, like containerd's `mount.Mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `"overlay"` or `"bind"`.
    pub kind: String,
    /// The device or directory: `"overlay"` for overlays, the directory for binds.
    pub source: String,
    /// Overlay: `lowerdir=`, `upperdir=`, `workdir=`, `index=off`, ...; bind: `rbind` and
    /// `ro` or `rw`.
    pub options: Vec<String>,
}

/// What a snapshot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A read-only snapshot of a committed parent; cannot be committed.
    View,
    /// A writable snapshot: a layer being unpacked or a container's root.
    Active,
    /// A read-only layer that other snapshots may use as parent.
    Committed,
}

/// What [`Snapshotter::stat`] and [`Snapshotter::list`] report about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The key (active, view) or name (committed).
    pub name: String,
    /// The committed parent, if any.
    pub parent: Option<String>,
    pub kind: Kind,
    /// Creation (or, for committed snapshots, commit) time, seconds since the Unix epoch.
    pub created: i64,
}

/// Disk use of a snapshot's own files (not its parents').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Allocated bytes (hard links counted once).
    pub size: u64,
    /// Distinct inodes, the snapshot's top directory included.
    pub inodes: u64,
}

/// Where to write a layer diff straight into an active snapshot, without mounting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTarget {
    /// The directory to unpack into.
    pub dir: PathBuf,
    /// `true`: write whiteouts the overlay way (`.wh.x` becomes a character device 0:0 named
    /// `x`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory). `false`: `dir`
    /// holds the whole tree, so apply whiteouts by deleting what they name.
    pub overlay_whiteouts: bool,
}

/// What to compare to compute the diff of an active snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffSource {
    /// An overlay upper dir: its contents are the diff, with overlay-style whiteouts.
    OverlayUpper(PathBuf),
    /// Two full trees: the parent's (none for a snapshot without parent) and the snapshot's.
    Trees {
        lower: Option<PathBuf>,
        upper: PathBuf,
    },
}

/// The snapshot store: four verbs that return mounts, and a few queries.
///
/// Keys and names are arbitrary non-empty strings (chain ids such as `sha256:...`, container
/// ids); one namespace holds active, view and committed snapshots alike.
pub trait Snapshotter: Send + Sync {
    /// A writable snapshot `key` on top of committed `parent` (`None`: empty). Returns the
    /// mounts of its root. `AlreadyExists` if `key` exists, `NotFound` if `parent` does not,
    /// `InvalidArgument` if `parent` is not committed.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;
    /// A read-only snapshot `key` of committed `parent`. Same errors as `prepare`.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;
    /// The mounts of an existing snapshot; read-only ones for views and committed layers.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;
    /// Turns active `key` into committed `name` (a chain id for layers). `AlreadyExists` if
    /// `name` exists, `Conflict` if `key` is not active. `key` is gone afterwards.
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;
    /// Removes a snapshot and its files; `Conflict` if other snapshots have it as parent.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;
    /// Every snapshot, in key order.
    fn list(&self) -> Result<Vec<Info>, SnapshotError>;
    /// Bytes and inodes of the snapshot's own directory: the upper layer for the overlay
    /// snapshotter, the whole tree for the copying one.
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;
    /// Where a layer diff can be written straight into active `key` (see [`LayerTarget`]).
    fn layer_target(&self, key: &str) -> Result<LayerTarget, SnapshotError>;
    /// What computing the diff of active `key` needs (see [`DiffSource`]).
    fn diff_source(&self, key: &str) -> Result<DiffSource, SnapshotError>;
}
