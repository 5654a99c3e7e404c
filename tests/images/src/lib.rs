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

/// Imports the busybox rootfs tarball through stdin as `name`
/// (`docker import -c 'CMD ["/bin/sh"]' - name`); returns the printed image ID.
pub fn import_busybox(daemon: &Daemon, name: &str) -> anyhow::Result<String> {
    let tar = std::fs::read(fixtures::busybox_tar()?)?;
    let out = daemon
        .docker_stdin(&["import", "-c", r#"CMD ["/bin/sh"]"#, "-", name], tar)?
        .ok()?;
    let id = out.stdout.trim().to_string();
    if !id.starts_with("sha256:") || id.len() != 71 {
        anyhow::bail!("docker import printed no image ID: {out}");
    }
    Ok(id)
}

/// Imports a one-file tarball (`/hello` holding `text`) as `name`; returns the ID.
pub fn import_tiny(daemon: &Daemon, name: &str, text: &str) -> anyhow::Result<String> {
    let tar = TarWriter::new().file("hello", text.as_bytes()).finish();
    let out = daemon.docker_stdin(&["import", "-", name], tar)?.ok()?;
    Ok(out.stdout.trim().to_string())
}

/// A string field of a JSON value by path (`["Config", "Cmd"]`), as JSON text.
pub fn field(value: &serde_json::Value, path: &[&str]) -> String {
    path.iter().fold(value, |v, key| &v[*key]).to_string()
}

/// `docker -H unix://<daemon socket> <args>` with the daemon's private
/// `DOCKER_CONFIG`; any exit status (same as [`Daemon::docker`]).
pub fn docker<S: AsRef<std::ffi::OsStr>>(daemon: &Daemon, args: &[S]) -> anyhow::Result<Outcome> {
    daemon.docker(args)
}
