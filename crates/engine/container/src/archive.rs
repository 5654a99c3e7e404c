//! A container's files from outside: `commit` (its layer becomes an image layer), `diff`,
//! `export` (its whole root as a tar) and `cp` (`GET`/`HEAD`/`PUT .../archive`).
//!
//! All of them see the container's root as mounted by the daemon: the image's layers, the
//! init layer and the container's layer. Volumes and bind mounts live in the container's
//! own mount namespace and are not part of that view.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use berth_core::{Digest, Reference};
use berth_snapshot::{mount_all, unmount, DiffSource};
use serde::Serialize;

use crate::error::{ContainerError, Result};
use crate::rootfs;
use crate::service::{Container, ContainerService};

/// One line of `docker diff`: 0 modified, 1 added, 2 deleted (Docker's `Kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Kind")]
    pub kind: u8,
}

/// What `docker commit` asks besides the container.
#[derive(Debug, Default)]
pub struct CommitOptions {
    pub reference: Option<Reference>,
    /// Dockerfile instructions (`CMD ["x"]`, `ENV A=b`) applied to the new config.
    pub changes: Vec<String>,
    pub comment: String,
    pub author: String,
    /// A container config whose non-null fields replace the container's.
    pub config_override: Option<serde_json::Value>,
    /// Freeze the container while its layer is read.
    pub pause: bool,
}

/// `X-Docker-Container-Path-Stat`: what `docker cp` learns about a path before copying.
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl ContainerService {
    /// Runs `f` with the container's root mounted (mounting it for the call when the
    /// container is not running). Blocking.
    fn with_rootfs<T>(&self, c: &Container, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let root = self.rootfs_dir(&c.id);
        let was_mounted = rootfs::is_mountpoint(&root);
        if !was_mounted {
            rootfs::mount(self.images.snapshots(), &c.id, &root)?;
        }
        let out = f(&root);
        if !was_mounted && !c.status().is_live() {
            let _ = rootfs::unmount_root(&root);
        }
        out
    }

    /// The container's layer as an uncompressed tar diff (overlay whiteouts become OCI
    /// ones), spooled to an unnamed temp file. Blocking.
    fn layer_diff(&self, id: &str) -> Result<std::fs::File> {
        let tmp = tempfile::tempfile_in(&self.cfg.root)
            .map_err(ContainerError::io("creating a spool file"))?;
        let source = self.images.snapshots().diff_source(&rootfs::rw_key(id))?;
        let mut f = match source {
            DiffSource::OverlayUpper(upper) => berth_archive::write_overlay_diff(&upper, tmp),
            DiffSource::Trees {
                lower: Some(lower),
                upper,
            } => berth_archive::write_tree_diff(&lower, &upper, tmp),
            DiffSource::Trees { lower: None, upper } => berth_archive::write_tree(&upper, tmp),
        }
        .map_err(|e| ContainerError::Runtime(format!("computing the container's changes: {e}")))?;
        f.flush().map_err(ContainerError::io("writing the diff"))?;
        f.rewind()
            .map_err(ContainerError::io("rewinding the diff"))?;
        Ok(f)
    }

    /// `POST /commit?container=`: the container's layer as a new image. The container is
    /// frozen meanwhile when `pause` and it runs.
    pub fn commit(&self, name: &str, opts: CommitOptions) -> Result<Digest> {
        let CommitOptions {
            reference,
            changes,
            comment,
            author,
            config_override,
            pause,
        } = opts;
        let reference = reference.as_ref();
        let (changes, comment, author) = (&changes[..], &comment[..], &author[..]);
        let c = self.get(name)?;
        let rec = c.record();
        let frozen = pause
            && rec.state.status == crate::record::Status::Running
            && self.cfg.runtime.pause(&c.id).is_ok();
        let diff = self.layer_diff(&c.id);
        if frozen {
            let _ = self.cfg.runtime.resume(&c.id);
        }
        let diff = diff?;
        let mut config = serde_json::to_value(&rec.config).unwrap_or_default();
        if let Some(serde_json::Value::Object(over)) = config_override {
            for (k, v) in over {
                if !v.is_null() {
                    config[k] = v;
                }
            }
        }
        // The engine's per-container settings are not the image's.
        if let Some(o) = config.as_object_mut() {
            o.remove("Hostname");
            o.remove("Image");
        }
        let parent: Digest = rec.image_id.parse().map_err(|_| {
            ContainerError::Invalid(format!("container {} has a malformed image id", c.id))
        })?;
        let mut created_by = vec![rec.path.clone()];
        created_by.extend(rec.args.iter().cloned());
        let id = self.images.commit(
            &berth_image::commit::CommitRequest {
                parent: &parent,
                config,
                changes,
                comment,
                author,
                created_by: created_by.join(" "),
                reference,
            },
            std::io::BufReader::new(diff),
        )?;
        self.emit(&rec, "commit", &[]);
        Ok(id)
    }

    /// `GET /containers/{id}/changes`: what the container added, changed and deleted.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let c = self.get(name)?;
        let diff = self.layer_diff(&c.id)?;
        // Whether a path existed below the container's layer decides added vs modified.
        let view_key = format!("{}-diff-{}", c.id, std::process::id());
        let lower_dir = self.container_dir(&c.id).join("diff-lower");
        let mounts = self.images.snapshots().view(
            &view_key,
            rootfs::init_of(self.images.snapshots(), &c.id)?.as_deref(),
        )?;
        let result = (|| {
            std::fs::create_dir_all(&lower_dir)
                .map_err(ContainerError::io("creating a mount point"))?;
            mount_all(&mounts, &lower_dir)?;
            let listed = list_changes(diff, &lower_dir);
            unmount(&lower_dir)?;
            listed
        })();
        let _ = std::fs::remove_dir(&lower_dir);
        let _ = self.images.snapshots().remove(&view_key);
        result
    }

    /// `GET /containers/{id}/export`: the container's whole root as a tar.
    pub fn export(&self, name: &str, w: impl Write) -> Result<()> {
        let c = self.get(name)?;
        self.with_rootfs(&c, |root| {
            berth_archive::write_tree(root, w)
                .map(drop)
                .map_err(|e| ContainerError::Runtime(format!("exporting: {e}")))
        })?;
        let rec = c.record();
        self.emit(&rec, "export", &[]);
        Ok(())
    }

    /// `HEAD /containers/{id}/archive?path=`: what is at `path` in the container.
    pub fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat> {
        let c = self.get(name)?;
        let rec = c.record();
        self.with_rootfs(&c, |root| stat_in(&rec, root, path))
    }

    /// `GET /containers/{id}/archive?path=`: `path` as a tar (a directory with its contents,
    /// named by its base name, as `docker cp` expects), and its stat.
    pub fn archive_get(&self, name: &str, path: &str, w: impl Write) -> Result<()> {
        let c = self.get(name)?;
        let rec = c.record();
        self.with_rootfs(&c, |root| {
            stat_in(&rec, root, path)?;
            let (_, base) = split_parent(path);
            let source = entry_path(&rec, root, path);
            // The entry itself is taken as it is (a symlink stays a link), never followed.
            berth_archive::write_entry(&source, base.as_bytes(), w)
                .map(drop)
                .map_err(|e| ContainerError::Runtime(format!("archiving {path}: {e}")))?;
            Ok(())
        })
    }

    /// `PUT /containers/{id}/archive?path=`: extracts a tar into directory `path`.
    pub fn archive_put(&self, name: &str, path: &str, tar: impl Read + Send) -> Result<()> {
        let c = self.get(name)?;
        if c.record().host_config.readonly_rootfs == Some(true) {
            return Err(ContainerError::Forbidden(
                "container rootfs is marked read-only".into(),
            ));
        }
        let rec = c.record();
        self.with_rootfs(&c, |root| {
            let target = host_path(&rec, root, path);
            let meta = std::fs::metadata(&target).map_err(|_| ContainerError::NoSuchPath {
                path: path.to_string(),
                container: name.to_string(),
            })?;
            if !meta.is_dir() {
                return Err(ContainerError::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )));
            }
            let opts = berth_archive::ApplyOptions::new(berth_archive::Whiteouts::Apply);
            berth_archive::apply_layer(tar, &target, &opts)
                .map(drop)
                .map_err(|e| ContainerError::Invalid(format!("extracting into {path}: {e}")))
        })
    }
}

/// Where `path` of the container is on the host: inside a bind mount, a volume or one of
/// the engine's /etc files when one covers it (the deepest wins), else inside `root`;
/// symlinks are resolved within whichever base it is.
fn host_path(rec: &crate::record::ContainerRecord, root: &Path, path: &str) -> PathBuf {
    let clean = rootfs::secure_join(Path::new("/"), path);
    let clean = clean.to_string_lossy().to_string();
    let mut bases: Vec<(String, PathBuf)> = rec
        .mounts
        .iter()
        .filter(|m| !m.source.is_empty() && m.kind != crate::record::MountType::Tmpfs)
        .map(|m| (m.destination.clone(), PathBuf::from(&m.source)))
        .collect();
    for (dst, src) in [
        ("/etc/hostname", &rec.hostname_path),
        ("/etc/hosts", &rec.hosts_path),
        ("/etc/resolv.conf", &rec.resolv_conf_path),
    ] {
        if !bases.iter().any(|(d, _)| d == dst) {
            bases.push((dst.to_string(), PathBuf::from(src)));
        }
    }
    bases.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
    for (dst, src) in bases {
        if clean == dst {
            return src;
        }
        if let Some(rest) = clean.strip_prefix(&format!("{dst}/")) {
            return rootfs::secure_join(&src, rest);
        }
    }
    rootfs::secure_join(root, &clean)
}

/// The host path of the entry at `path` itself: its parent resolved, its last component
/// taken as it is (a symlink stays a link), or a mount's source when `path` is where a
/// mount is.
fn entry_path(rec: &crate::record::ContainerRecord, root: &Path, path: &str) -> PathBuf {
    let (parent, base) = split_parent(path);
    if base == "." {
        return host_path(rec, root, &parent);
    }
    let clean = rootfs::secure_join(Path::new("/"), path);
    let is_mount = rec
        .mounts
        .iter()
        .any(|m| Path::new(&m.destination) == clean)
        || ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
            .iter()
            .any(|d| Path::new(d) == clean);
    if is_mount {
        host_path(rec, root, path)
    } else {
        host_path(rec, root, &parent).join(&base)
    }
}

fn split_parent(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((p, b)) if !b.is_empty() => (
            if p.is_empty() {
                "/".into()
            } else {
                p.to_string()
            },
            b.to_string(),
        ),
        _ => ("/".into(), ".".into()),
    }
}

fn stat_in(rec: &crate::record::ContainerRecord, root: &Path, path: &str) -> Result<PathStat> {
    use std::os::unix::fs::MetadataExt;
    let (_, base) = split_parent(path);
    let full = entry_path(rec, root, path);
    let m = std::fs::symlink_metadata(&full).map_err(|_| ContainerError::NoSuchPath {
        path: path.to_string(),
        container: rec.name.clone(),
    })?;
    let link_target = if m.file_type().is_symlink() {
        std::fs::read_link(&full)
            .map(|t| t.to_string_lossy().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(PathStat {
        name: base,
        size: m.size() as i64,
        mode: go_file_mode(m.mode()),
        mtime: berth_image::time::rfc3339(m.mtime() * 1_000_000_000 + m.mtime_nsec()),
        link_target,
    })
}

/// Go's `os.FileMode` bits from a Unix mode (what docker cp decodes).
fn go_file_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    match mode & libc::S_IFMT {
        libc::S_IFDIR => m |= 1 << 31,
        libc::S_IFLNK => m |= 1 << 27,
        libc::S_IFIFO => m |= 1 << 25,
        libc::S_IFSOCK => m |= 1 << 24,
        libc::S_IFBLK => m |= 1 << 26,
        libc::S_IFCHR => m |= (1 << 26) | (1 << 21),
        _ => {}
    }
    if mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m
}

/// Reads a tar diff: `.wh.` entries are deletions, the rest added or modified depending on
/// whether they exist in `lower`.
fn list_changes(diff: std::fs::File, lower: &Path) -> Result<Vec<Change>> {
    let mut archive = tar::Archive::new(diff);
    let mut out = Vec::new();
    let entries = archive
        .entries()
        .map_err(ContainerError::io("reading the diff"))?;
    for entry in entries {
        let entry = entry.map_err(ContainerError::io("reading the diff"))?;
        let path = entry
            .path()
            .map_err(ContainerError::io("reading the diff"))?
            .to_string_lossy()
            .to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (format!("/{d}"), b.to_string()),
            None => (String::new(), path.clone()),
        };
        if base == ".wh..wh..opq" {
            continue;
        }
        if let Some(gone) = base.strip_prefix(".wh.") {
            out.push(Change {
                path: format!("{dir}/{gone}"),
                kind: 2,
            });
            continue;
        }
        let abs = format!("/{path}");
        let existed = std::fs::symlink_metadata(lower.join(&path)).is_ok();
        out.push(Change {
            path: abs,
            kind: if existed { 0 } else { 1 },
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_docker_cp() {
        assert_eq!(split_parent("/etc/hosts"), ("/etc".into(), "hosts".into()));
        assert_eq!(split_parent("/etc/"), ("/".into(), "etc".into()));
        assert_eq!(split_parent("/"), ("/".into(), ".".into()));
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
    }
}
