//! berth-volume: the daemon's named volumes, kept as Docker's built-in `local` driver keeps
//! them.
//!
//! # A volume's life
//!
//! 1. **Create.** `docker volume create data` (or `docker run -v data:/srv` naming a volume
//!    that does not exist yet) becomes [`VolumeStore::create`]`(Some("data"), ...)`: a
//!    directory `<root>/data/_data` and its metadata. Without a name (`docker run -v /srv`)
//!    the volume is anonymous: a random 64-hex name and the label
//!    `com.docker.volume.anonymous`. Creating a name that exists returns the existing volume.
//! 2. **Reference.** When a container is created with the volume, the daemon calls
//!    [`VolumeStore::add_ref`] with the container id: the volume is no longer dangling, and
//!    `docker volume rm` answers `volume is in use - [<id>]`.
//! 3. **Copy-up.** If the image has files where the volume is mounted and the volume is empty,
//!    [`VolumeStore::copy_up_in_root`] copies them in, owners, modes, xattrs, times and links
//!    kept, without following anything the image planted.
//! 4. **Mount.** When the container starts, [`VolumeStore::mount`] returns the host directory
//!    to bind at the mount point. A volume created with options (`type=tmpfs device=tmpfs
//!    o=size=100m`, `type=none o=bind device=/srv/data`, `type=nfs ...`) has its file system
//!    mounted on `_data` by the first holder and unmounted by [`VolumeStore::unmount`] of the
//!    last; without options `_data` is the volume.
//! 5. **Release and remove.** When the container stops the daemon calls
//!    [`VolumeStore::unmount`]; when it is removed, [`VolumeStore::remove_ref`] (and, for
//!    `docker rm -v`, [`VolumeStore::remove`] of its anonymous volumes). `docker volume
//!    prune` is [`VolumeStore::prune`]: unreferenced anonymous volumes, or all unreferenced
//!    ones with `all=true`.
//!
//! # On disk
//!
//! ```text
//! <root>/.lock                  flock held while a store has the root open
//! <root>/<name>/_data/          the volume's files (Docker's layout)
//! <root>/<name>/volume.json     name, driver, created_at, labels, options
//! <root>/.tmp-<random>/         a volume being created, renamed to <name> when complete
//! <root>/.trash-<random>/       a volume being removed, renamed from <name>, then deleted
//! ```
//!
//! Every change is a rename, so a crash at any point leaves a root that opens:
//! [`VolumeStore::open`] deletes `.tmp-*` and `.trash-*` leftovers and stray
//! `volume.json.tmp` files, adopts a `<name>/_data` without metadata (as from a Docker volumes
//! directory) and reports what it cannot make sense of in [`VolumeList::warnings`].
//!
//! # What the daemon must do after a restart
//!
//! References and mount holders are kept in memory only. At startup the daemon calls
//! [`VolumeStore::add_ref`] for every volume of every container it has a record of, and
//! [`VolumeStore::mount`] for those of containers that are still running, before it serves
//! requests; otherwise a volume in use looks dangling and can be pruned. A volume with options
//! that was still mounted when the daemon stopped is found mounted by `open` and is unmounted
//! when its last re-registered holder unmounts (or when it is removed).

mod copy;
mod error;
mod filters;
mod local;
mod mountinfo;
mod record;
mod store;
mod tree;

pub use error::{NameError, OptionError, Result, VolumeError, NAME_CHARS};
pub use filters::{ListFilters, PruneFilters, ANONYMOUS_LABEL};
pub use local::{validate_name, validate_options, DRIVER};
pub use store::{PruneReport, Volume, VolumeList, VolumeStore};
