//! End-to-end harness for berth's image side: the real docker CLI (28) and the
//! docker SDK for Python drive `berth daemon`, against a real registry
//! (distribution's `docker-registry`) and a fake one that lies.
//!
//! A test's life:
//! 1. [`Registry::start`] (or [`FakeRegistry::start`]) on a free loopback port,
//!    then [`Daemon::start_with`] naming it as an insecure registry.
//! 2. Images come from [`fixtures`]: a busybox rootfs built by
//!    scripts/make-busybox-rootfs.sh, OCI layouts made with umoci and copied
//!    into the registry with skopeo in the format under test; or hand-made
//!    archives from [`tarball`].
//! 3. The test drives the daemon ([`Daemon::docker`], [`Daemon::python`]) and
//!    checks what berth reports against what skopeo and the registry say.
//! 4. Dropping the guards stops each process by its pid and removes its
//!    `/tmp/berth-it-*` directory (after unmounting anything left inside).

pub mod cmd;
pub mod daemon;
pub mod fakereg;
pub mod fixtures;
pub mod python;
pub mod registry;
pub mod tarball;

pub use cmd::{digest, tmp_dir, unique, Outcome};
pub use daemon::Daemon;
pub use fakereg::{Delivery, FakeRegistry, Response};
pub use fixtures::Format;
pub use registry::{Registry, RegistryConfig};
pub use tarball::{docker_archive, OciImage, TarWriter};

/// Fails with a message unless `haystack` contains `needle` (case-insensitive).
pub fn assert_mentions(haystack: &str, needle: &str, what: &str) -> anyhow::Result<()> {
    if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
        anyhow::bail!("{what}: expected to mention {needle:?}, got:\n{haystack}");
    }
    Ok(())
}
