//! [`VolumeStore`]: the volumes under one root, their references and mounts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{
    openat2, renameat2, Flock, FlockArg, OFlag, OpenHow, RenameFlags, ResolveFlag, AT_FDCWD,
};

use crate::copy;
use crate::error::{Result, VolumeError};
use crate::filters::{labels_match, ListFilters, PruneFilters, ANONYMOUS_LABEL};
use crate::local::{self, needs_mount, validate_name, validate_options, DRIVER};
use crate::mountinfo;
use crate::record::{self, Record, DATA_DIR, RECORD_TEMP};
use crate::tree;

/// Held (`flock`) while a store is open, so two daemons never share a root.
const LOCK_FILE: &str = ".lock";
/// A volume being created: `.tmp-<random>/{_data,volume.json}`, renamed to `<name>` when whole.
const TEMP_PREFIX: &str = ".tmp-";
/// A volume being removed: `<name>` renamed to `.trash-<random>`, then deleted.
const TRASH_PREFIX: &str = ".trash-";

/// A volume as the API shows it (`docker volume inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// The host directory holding the volume's files (`<root>/<name>/_data`); for a volume
    /// with mount options, where its file system is mounted while it is in use.
    pub mountpoint: PathBuf,
    /// RFC 3339, UTC, seconds: `2026-11-23T14:29:07Z`.
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    /// The local driver's options (`type`, `device`, `o`).
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// Created without a name; carries the label [`ANONYMOUS_LABEL`], which is what makes it
    /// anonymous (as in Docker, where prune by default removes only these).
    pub anonymous: bool,
}

/// The answer to `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeList {
    /// Sorted by name.
    pub volumes: Vec<Volume>,
    /// Entries of the root that opening the store could not make sense of and left alone.
    pub warnings: Vec<String>,
}

/// The answer to `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub volumes_deleted: Vec<String>,
    /// Bytes of the removed volumes' files, counted as [`VolumeStore::usage`] does.
    pub space_reclaimed: u64,
}

/// The named volumes under one directory, as Docker's `local` driver keeps them.
///
/// Every method takes `&self`; share the store in an `Arc`. See the crate documentation for
/// the lifecycle, the layout on disk and what survives a restart.
pub struct VolumeStore {
    root: PathBuf,
    /// Lock order: an entry's `state`, then this map; never the map while waiting for a state.
    volumes: Mutex<BTreeMap<String, Arc<Entry>>>,
    warnings: Vec<String>,
    _lock: Flock<fs::File>,
}

struct Entry {
    record: Record,
    /// `<root>/<name>`.
    dir: PathBuf,
    /// `<root>/<name>/_data`.
    data: PathBuf,
    state: Mutex<State>,
}

/// What is known about a volume only while the daemon runs.
#[derive(Default)]
struct State {
    /// Removed from the store; whoever still holds the entry must treat it as gone.
    removed: bool,
    /// Containers using the volume; it cannot be removed while there are any.
    refs: BTreeSet<String>,
    /// Holders of a mount ([`VolumeStore::mount`]); the file system stays mounted while any.
    mounts: BTreeSet<String>,
    /// The volume's own file system (from its options) is mounted at `_data`.
    mounted: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Entry {
    fn new(root: &Path, record: Record) -> Entry {
        let dir = root.join(&record.name);
        Entry {
            data: dir.join(DATA_DIR),
            dir,
            record,
            state: Mutex::default(),
        }
    }

    fn volume(&self) -> Volume {
        let r = &self.record;
        Volume {
            name: r.name.clone(),
            driver: r.driver.clone(),
            mountpoint: self.data.clone(),
            created_at: r.created_at.clone(),
            labels: r.labels.clone(),
            options: r.options.clone(),
            scope: "local".to_string(),
            anonymous: r.labels.contains_key(ANONYMOUS_LABEL),
        }
    }

    fn needs_mount(&self) -> bool {
        needs_mount(&self.record.options)
    }
}

impl VolumeStore {
    /// Opens the store at `root`, creating the directory if needed, and finishes what a crash
    /// left: half-created (`.tmp-*`) and half-removed (`.trash-*`) volumes are deleted, a
    /// stray `volume.json.tmp` is deleted, a volume directory with `_data` but no metadata (a
    /// Docker volumes directory, a restored backup) is adopted as a volume without labels or
    /// options, and an empty directory without either is deleted. Anything else that is not
    /// a volume is left alone and reported in [`VolumeList::warnings`]. A volume with mount
    /// options whose `_data` is still mounted (the daemon stopped while it was in use) is
    /// known to be mounted, with no holders.
    ///
    /// Fails with [`VolumeError::Locked`] while another store has `root` open.
    pub fn open(root: &Path) -> Result<VolumeStore> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(root)
            .map_err(VolumeError::io("create", root))?;
        let root = fs::canonicalize(root).map_err(VolumeError::io("resolve", root))?;
        let lock_path = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(VolumeError::io("open", &lock_path))?;
        let flock =
            Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
                Errno::EWOULDBLOCK => VolumeError::Locked { root: root.clone() },
                e => VolumeError::io("lock", &lock_path)(e.into()),
            })?;
        let mounts =
            mountinfo::mount_points().map_err(VolumeError::io("read", "/proc/self/mountinfo"))?;
        let mut volumes = BTreeMap::new();
        let mut warnings = Vec::new();
        let listing = fs::read_dir(&root).map_err(VolumeError::io("read", &root))?;
        for ent in listing {
            let ent = ent.map_err(VolumeError::io("read", &root))?;
            let path = ent.path();
            let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                warnings.push(format!("ignoring {}: not a volume", path.display()));
                continue;
            };
            if name == LOCK_FILE {
                continue;
            }
            if name.starts_with(TEMP_PREFIX) || name.starts_with(TRASH_PREFIX) {
                if let Err(e) = discard(&root, &name) {
                    warnings.push(format!("could not remove {}: {e}", path.display()));
                }
                continue;
            }
            match load(&path, &name) {
                Ok(Some(record)) => {
                    let entry = Entry::new(&root, record);
                    if entry.needs_mount() && mounts.contains(&entry.data) {
                        lock(&entry.state).mounted = true;
                    }
                    volumes.insert(name, Arc::new(entry));
                }
                Ok(None) => {}
                Err(warning) => warnings.push(warning),
            }
        }
        Ok(VolumeStore {
            root,
            volumes: Mutex::new(volumes),
            warnings,
            _lock: flock,
        })
    }

    /// The store's directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a volume, or returns the existing one of that name unchanged (Docker's create
    /// is idempotent, and ignores differing options and labels). Without a name (or with an
    /// empty one) the volume is anonymous: a random 64-hex name and the label
    /// [`ANONYMOUS_LABEL`] = `""`. `driver` must be absent, empty or `local`.
    ///
    /// The volume is made under a temporary name and renamed into place once its `_data` and
    /// metadata are on disk, so a crash never leaves half a volume under its real name.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        driver_opts: BTreeMap<String, String>,
        mut labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let given = name.filter(|n| !n.is_empty());
        if let Some(n) = given {
            validate_name(n).map_err(|reason| VolumeError::InvalidName {
                name: n.to_string(),
                reason,
            })?;
        }
        let mut volumes = lock(&self.volumes);
        let name = match given {
            Some(n) => n.to_string(),
            None => loop {
                let n =
                    record::anonymous_name().map_err(VolumeError::io("read", "/dev/urandom"))?;
                if !volumes.contains_key(&n) {
                    break n;
                }
            },
        };
        if let Some(d) = driver.filter(|d| !d.is_empty() && *d != DRIVER) {
            return Err(VolumeError::DriverNotFound {
                name,
                driver: d.to_string(),
            });
        }
        if let Some(existing) = volumes.get(&name) {
            return Ok(existing.volume());
        }
        validate_options(&driver_opts).map_err(|reason| VolumeError::InvalidOption {
            name: name.clone(),
            reason,
        })?;
        if given.is_none() {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        let record = Record {
            name: name.clone(),
            driver: DRIVER.to_string(),
            created_at: record::rfc3339_seconds(SystemTime::now()),
            labels,
            options: driver_opts,
        };
        self.make(&record)?;
        let entry = Entry::new(&self.root, record);
        let volume = entry.volume();
        volumes.insert(name, Arc::new(entry));
        Ok(volume)
    }

    /// Writes a new volume's directory: `.tmp-<random>/` with `_data/` (mode 0755) and
    /// `volume.json`, flushed, then renamed to `<name>` (never over an existing entry).
    fn make(&self, record: &Record) -> Result<()> {
        let suffix = record::random_hex(8).map_err(VolumeError::io("read", "/dev/urandom"))?;
        let temp_name = format!("{TEMP_PREFIX}{suffix}");
        let temp = self.root.join(&temp_name);
        let target = self.root.join(&record.name);
        let build = || -> Result<()> {
            let data = temp.join(DATA_DIR);
            for dir in [&temp, &data] {
                fs::create_dir(dir).map_err(VolumeError::io("create", dir))?;
                // Explicitly, whatever the umask: containers running as any user reach _data.
                fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                    .map_err(VolumeError::io("chmod", dir))?;
            }
            record
                .write(&temp)
                .map_err(VolumeError::io("write metadata in", &temp))?;
            record::sync_dir(&temp).map_err(VolumeError::io("sync", &temp))?;
            match renameat2(
                AT_FDCWD,
                &temp,
                AT_FDCWD,
                &target,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    return Err(VolumeError::Exists {
                        name: record.name.clone(),
                        path: target.clone(),
                    })
                }
                Err(e) => return Err(VolumeError::io("rename", &temp)(e.into())),
            }
            record::sync_dir(&self.root).map_err(VolumeError::io("sync", &self.root))
        };
        let result = build();
        if result.is_err() {
            let _ = discard(&self.root, &temp_name);
        }
        result
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        Ok(self.entry(name)?.volume())
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>> {
        lock(&self.volumes)
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::not_found(name))
    }

    /// Runs `f` on the volume's run-time state, under its lock, if the volume still exists.
    fn with_state<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Entry, &mut State) -> Result<T>,
    ) -> Result<T> {
        let entry = self.entry(name)?;
        let mut state = lock(&entry.state);
        if state.removed {
            return Err(VolumeError::not_found(name));
        }
        f(&entry, &mut state)
    }

    /// The volumes `filters` select, sorted by name, with the warnings from opening the store.
    pub fn list(&self, filters: &ListFilters) -> VolumeList {
        let entries: Vec<Arc<Entry>> = lock(&self.volumes).values().cloned().collect();
        let mut volumes = Vec::new();
        for e in entries {
            let r = &e.record;
            if !filters.name.is_empty() && !filters.name.iter().any(|n| r.name.contains(n.as_str()))
            {
                continue;
            }
            if !filters.driver.is_empty() && !filters.driver.contains(&r.driver) {
                continue;
            }
            if !labels_match(&filters.label, &r.labels) {
                continue;
            }
            {
                let state = lock(&e.state);
                if state.removed {
                    continue;
                }
                if filters.dangling.is_some_and(|d| d != state.refs.is_empty()) {
                    continue;
                }
            }
            volumes.push(e.volume());
        }
        VolumeList {
            volumes,
            warnings: self.warnings.clone(),
        }
    }

    /// Records that `container_id` uses the volume: it is no longer dangling and cannot be
    /// removed until the reference goes. Adding the same reference twice is one reference.
    ///
    /// References live in memory only: after a restart the daemon adds them again from its
    /// container records.
    pub fn add_ref(&self, name: &str, container_id: &str) -> Result<()> {
        self.with_state(name, |_, st| {
            st.refs.insert(container_id.to_string());
            Ok(())
        })
    }

    /// Drops `container_id`'s reference; dropping one that is not there does nothing.
    pub fn remove_ref(&self, name: &str, container_id: &str) -> Result<()> {
        self.with_state(name, |_, st| {
            st.refs.remove(container_id);
            Ok(())
        })
    }

    /// The containers referencing the volume, sorted.
    pub fn refs(&self, name: &str) -> Result<Vec<String>> {
        self.with_state(name, |_, st| Ok(st.refs.iter().cloned().collect()))
    }

    /// Makes the volume's files available and returns the host directory to bind into a
    /// container (its `_data`). A volume with mount options is mounted by its first holder;
    /// later holders share the mount. Each `ref_id` (a container id, say) holds at most one
    /// mount, and must give it back with [`VolumeStore::unmount`].
    pub fn mount(&self, name: &str, ref_id: &str) -> Result<PathBuf> {
        self.with_state(name, |e, st| {
            if e.needs_mount() && !st.mounted {
                local::mount(&e.record.options, &e.data)?;
                st.mounted = true;
            }
            st.mounts.insert(ref_id.to_string());
            Ok(e.data.clone())
        })
    }

    /// Gives back `ref_id`'s mount. When no holder is left, the volume's own file system (if
    /// it has one) is unmounted; that includes one found mounted when the store was opened.
    pub fn unmount(&self, name: &str, ref_id: &str) -> Result<()> {
        self.with_state(name, |e, st| {
            st.mounts.remove(ref_id);
            if st.mounts.is_empty() && st.mounted {
                local::unmount(&e.data)?;
                st.mounted = false;
            }
            Ok(())
        })
    }

    /// Removes the volume and deletes its files. Refused while containers reference it
    /// ([`VolumeError::InUse`], Docker's `volume is in use - [ids]`) or while it is mounted
    /// for someone ([`VolumeError::ActiveMounts`]). `force` only makes an unknown volume not
    /// an error, as in Docker; it never removes a volume in use.
    ///
    /// The volume's file system is unmounted first; if anything is still mounted inside its
    /// directory, nothing is deleted ([`VolumeError::StillMounted`]). The directory is renamed
    /// to `.trash-<random>` (from then on the volume is gone) and deleted without following
    /// symlinks or entering other file systems; if that deletion fails, the error is returned
    /// and opening the store again retries it.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        match self.with_state(name, |e, st| self.remove_locked(e, st)) {
            Err(VolumeError::NotFound { .. }) if force => Ok(()),
            r => r,
        }
    }

    fn remove_locked(&self, e: &Entry, st: &mut State) -> Result<()> {
        let name = &e.record.name;
        if !st.refs.is_empty() {
            return Err(VolumeError::InUse {
                name: name.clone(),
                refs: st.refs.iter().cloned().collect(),
            });
        }
        if !st.mounts.is_empty() {
            return Err(VolumeError::ActiveMounts { name: name.clone() });
        }
        if st.mounted || e.needs_mount() {
            local::unmount(&e.data)?;
            st.mounted = false;
        }
        let inside = mountinfo::mounts_under(&e.dir)
            .map_err(VolumeError::io("read", "/proc/self/mountinfo"))?;
        if let Some(m) = inside.into_iter().next() {
            return Err(VolumeError::StillMounted {
                name: name.clone(),
                mount_point: m,
            });
        }
        let suffix = record::random_hex(8).map_err(VolumeError::io("read", "/dev/urandom"))?;
        let trash_name = format!("{TRASH_PREFIX}{suffix}");
        {
            let mut volumes = lock(&self.volumes);
            fs::rename(&e.dir, self.root.join(&trash_name))
                .map_err(VolumeError::io("rename", &e.dir))?;
            volumes.remove(name);
            st.removed = true;
        }
        let synced = record::sync_dir(&self.root).map_err(VolumeError::io("sync", &self.root));
        discard(&self.root, &trash_name)
            .map_err(VolumeError::io("delete", self.root.join(&trash_name)))?;
        synced
    }

    /// Removes the volumes no container references that `filters` select: by default only
    /// anonymous ones, all of them with `all`. As in Docker, volumes with mount options are
    /// never pruned (their files are not on this host's disk to reclaim), and neither is one
    /// mounted for someone. A volume that cannot be removed is left in place and not reported.
    pub fn prune(&self, filters: &PruneFilters) -> PruneReport {
        let labels = filters.effective_labels();
        let candidates: Vec<Arc<Entry>> = lock(&self.volumes)
            .values()
            .filter(|e| {
                let r = &e.record;
                r.driver == DRIVER
                    && r.options.is_empty()
                    && labels_match(&labels, &r.labels)
                    && (filters.label_not.is_empty()
                        || !labels_match(&filters.label_not, &r.labels))
            })
            .cloned()
            .collect();
        let mut report = PruneReport::default();
        for e in candidates {
            let mut st = lock(&e.state);
            if st.removed || !st.refs.is_empty() || !st.mounts.is_empty() {
                continue;
            }
            let size = data_size(&e).unwrap_or(0);
            // Once the directory is renamed away the volume is gone, even if deleting its
            // files then fails (the next open retries).
            let _ = self.remove_locked(&e, &mut st);
            if st.removed {
                report.volumes_deleted.push(e.record.name.clone());
                report.space_reclaimed += size;
            }
        }
        report
    }

    /// Bytes in the volume's `_data` as `docker system df` counts them: apparent file sizes,
    /// each hard-linked file once, without following symlinks.
    pub fn usage(&self, name: &str) -> Result<u64> {
        data_size(&*self.entry(name)?)
    }

    /// Docker's copy-up: if the volume's `_data` is empty, copies the tree at `source_dir`
    /// into it, keeping owners, modes, extended attributes, times, symlinks (as symlinks),
    /// hard links within the tree, devices, fifos and sockets, then gives `_data` the owner
    /// and mode of `source_dir`. Returns whether it copied (`false`: the volume was not empty,
    /// or `source_dir` does not exist).
    ///
    /// Nothing below `source_dir` is followed; `source_dir` itself must not be a symlink
    /// ([`VolumeError::SourceIsSymlink`]), but the components above it are trusted. For a
    /// path inside a container's root file system, use
    /// [`VolumeStore::copy_up_in_root`], which resolves it as the container would.
    ///
    /// A volume with mount options is mounted for the copy and unmounted after it unless
    /// someone holds it: mount it first when its file system does not keep files (tmpfs).
    pub fn copy_up(&self, source_dir: &Path, volume_name: &str) -> Result<bool> {
        match open_source(volume_name, source_dir)? {
            Some(src) => self.copy_from(&src, volume_name),
            None => Ok(false),
        }
    }

    /// [`VolumeStore::copy_up`] from `path` inside the root file system `rootfs`, resolved
    /// with `rootfs` as `/` (`openat2` with `RESOLVE_IN_ROOT`): a symlink on the way, absolute
    /// or full of `..`, stays inside `rootfs`, as it does for the container, and the copy
    /// comes from where the volume will really be mounted.
    pub fn copy_up_in_root(&self, rootfs: &Path, path: &Path, volume_name: &str) -> Result<bool> {
        let root = tree::open_dir(rootfs).map_err(VolumeError::io("open", rootfs))?;
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let src = match openat2(&root, path, how) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(false),
            Err(Errno::ENOTDIR) => {
                return Err(VolumeError::SourceNotDirectory {
                    name: volume_name.to_string(),
                    path: path.display().to_string(),
                })
            }
            Err(e) => return Err(VolumeError::io("open", rootfs.join(path))(e.into())),
        };
        self.copy_from(&src, volume_name)
    }

    fn copy_from(&self, src: &OwnedFd, name: &str) -> Result<bool> {
        self.with_state(name, |e, st| {
            let temporary = e.needs_mount() && !st.mounted;
            if temporary {
                local::mount(&e.record.options, &e.data)?;
                st.mounted = true;
            }
            let copied = tree::open_dir(&e.data)
                .map_err(VolumeError::io("open", &e.data))
                .and_then(|dst| copy::copy_into_empty(name, src.as_fd(), dst.as_fd()));
            if temporary && st.mounts.is_empty() {
                let released = local::unmount(&e.data);
                if released.is_ok() {
                    st.mounted = false;
                }
                let copied = copied?;
                released?;
                return Ok(copied);
            }
            copied
        })
    }
}

/// Size of a volume's `_data` (see [`VolumeStore::usage`]).
fn data_size(e: &Entry) -> Result<u64> {
    let dir = tree::open_dir(&e.data).map_err(VolumeError::io("open", &e.data))?;
    tree::apparent_size(dir.as_fd()).map_err(VolumeError::io("measure", &e.data))
}

/// Opens the copy-up source without following a symlink in its last component.
fn open_source(volume: &str, path: &Path) -> Result<Option<OwnedFd>> {
    let (parent, last) = match (path.parent(), path.file_name()) {
        (Some(p), Some(l)) if !p.as_os_str().is_empty() => (p, l),
        (Some(_), Some(l)) => (Path::new("."), l),
        // `/` or a path ending in `..`: nothing to refuse in its last component.
        _ => (path, ".".as_ref()),
    };
    let dir = match tree::open_dir(parent) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VolumeError::io("open", parent)(e)),
    };
    match tree::open_child_dir(dir.as_fd(), last.as_bytes()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            Err(if is_link {
                VolumeError::SourceIsSymlink {
                    name: volume.to_string(),
                    path: path.to_path_buf(),
                }
            } else {
                VolumeError::SourceNotDirectory {
                    name: volume.to_string(),
                    path: path.display().to_string(),
                }
            })
        }
        Err(e) => Err(VolumeError::io("open", path)(e.into())),
    }
}

/// Deletes `root/name` (a temporary or trashed volume), unless something is mounted in it.
fn discard(root: &Path, name: &str) -> io::Result<()> {
    let path = root.join(name);
    if let Some(m) = mountinfo::mounts_under(&path)?.into_iter().next() {
        return Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!("{} is mounted", m.display()),
        ));
    }
    let dir = tree::open_dir(root)?;
    tree::remove_all_at(dir.as_fd(), name.as_bytes())
}

/// Reads the volume directory `dir` found when opening: its record, `None` if it was not a
/// volume and was deleted, or a warning if it is left alone.
fn load(dir: &Path, name: &str) -> Result<Option<Record>, String> {
    let ignore = |why: String| format!("ignoring {}: {why}", dir.display());
    let meta = fs::symlink_metadata(dir).map_err(|e| ignore(e.to_string()))?;
    if !meta.is_dir() || validate_name(name).is_err() {
        return Err(ignore("not a volume".into()));
    }
    match fs::remove_file(dir.join(RECORD_TEMP)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ignore(format!("removing {RECORD_TEMP}: {e}"))),
    }
    match Record::read(dir) {
        Ok(r) if r.name == name => Ok(Some(r)),
        Ok(r) => Err(ignore(format!("its metadata names volume {:?}", r.name))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => adopt(dir, name, &meta).map_err(ignore),
        Err(e) => Err(ignore(format!("unreadable metadata: {e}"))),
    }
}

/// A directory without metadata: adopted if it has `_data`, deleted if empty.
fn adopt(dir: &Path, name: &str, meta: &fs::Metadata) -> Result<Option<Record>, String> {
    let data = dir.join(DATA_DIR);
    if fs::symlink_metadata(&data).is_ok_and(|m| m.is_dir()) {
        let record = Record {
            name: name.to_string(),
            driver: DRIVER.to_string(),
            created_at: record::rfc3339_seconds(record::changed_at(meta)),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
        };
        record
            .write(dir)
            .map_err(|e| format!("writing metadata for it: {e}"))?;
        return Ok(Some(record));
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            Err("no metadata and no _data directory".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}
