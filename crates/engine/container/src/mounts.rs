//! A container's mounts: `-v`/`--mount`/`--tmpfs` and the image's VOLUMEs resolved into
//! mount points at create, made ready (volumes mounted, image content copied up) at start,
//! and released at stop and removal.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use berth_volume::VolumeStore;
use bollard_stubs::models::{ContainerConfig, HostConfig, MountType as ApiMountType};

use crate::error::{ContainerError, Result};
use crate::record::{ContainerRecord, MountPoint, MountType};
use crate::spec::{MountKind, MountSpec};

fn bad_spec(spec: &str, why: &str) -> ContainerError {
    if why.is_empty() {
        ContainerError::Invalid(format!("invalid volume specification: '{spec}'"))
    } else {
        ContainerError::Invalid(format!("invalid volume specification: '{spec}': {why}"))
    }
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// Parses one `-v` bind: `src:dst[:opts]`, where a relative `src` names a volume.
fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(bad_spec(spec, "")),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(bad_spec(spec, ""));
    }
    if !dst.starts_with('/') {
        return Err(bad_spec(
            spec,
            &format!("invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"),
        ));
    }
    if clean(dst) == "/" {
        return Err(bad_spec(
            spec,
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
        ));
    }
    let mut read_write = true;
    let mut propagation = String::new();
    let mut copy = true;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_write = false,
            "rw" => read_write = true,
            "z" | "Z" => {}
            "nocopy" => copy = false,
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            _ => return Err(bad_spec(spec, &format!("invalid mode: {m}"))),
        }
    }
    let is_bind = src.starts_with('/');
    Ok(MountPoint {
        kind: if is_bind {
            MountType::Bind
        } else {
            MountType::Volume
        },
        name: if is_bind {
            String::new()
        } else {
            src.to_string()
        },
        source: if is_bind { clean(src) } else { String::new() },
        destination: clean(dst),
        read_write,
        mode: mode.to_string(),
        propagation: if is_bind && propagation.is_empty() {
            "rprivate".into()
        } else {
            propagation
        },
        options: Vec::new(),
        copy_data: !is_bind && copy,
        anonymous: false,
    })
}

/// `/a//b/../c/` -> `/a/c` (lexically, as Go's filepath.Clean).
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Resolves every mount point of a new container, creating the named volumes it names and
/// anonymous ones for the image's VOLUMEs that nothing else covers.
pub fn resolve(
    config: &ContainerConfig,
    hc: &HostConfig,
    volumes: &VolumeStore,
) -> Result<Vec<MountPoint>> {
    let mut points: Vec<MountPoint> = Vec::new();
    for b in hc.binds.iter().flatten() {
        points.push(parse_bind(b)?);
    }
    for m in hc.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        let spec = format!("{}:{}", m.source.clone().unwrap_or_default(), target);
        if !target.starts_with('/') {
            return Err(ContainerError::Invalid(format!(
                "invalid mount config: invalid mount path: '{target}' mount path must be absolute"
            )));
        }
        let read_write = m.read_only != Some(true);
        let point = match m.typ {
            Some(ApiMountType::BIND) => {
                let src = m.source.clone().unwrap_or_default();
                if !src.starts_with('/') {
                    return Err(ContainerError::Invalid(format!(
                        "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                    )));
                }
                if !Path::new(&src).exists() {
                    return Err(ContainerError::Invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                    )));
                }
                let propagation = m
                    .bind_options
                    .as_ref()
                    .and_then(|o| o.propagation.map(|p| p.to_string()))
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "rprivate".into());
                MountPoint {
                    kind: MountType::Bind,
                    name: String::new(),
                    source: clean(&src),
                    destination: clean(&target),
                    read_write,
                    mode: String::new(),
                    propagation,
                    options: Vec::new(),
                    copy_data: false,
                    anonymous: false,
                }
            }
            Some(ApiMountType::VOLUME) => {
                let name = m.source.clone().unwrap_or_default();
                let no_copy = m.volume_options.as_ref().and_then(|o| o.no_copy) == Some(true);
                MountPoint {
                    kind: MountType::Volume,
                    anonymous: name.is_empty(),
                    name,
                    source: String::new(),
                    destination: clean(&target),
                    read_write,
                    mode: String::new(),
                    propagation: String::new(),
                    options: Vec::new(),
                    copy_data: !no_copy,
                }
            }
            Some(ApiMountType::TMPFS) => {
                let mut options = Vec::new();
                if let Some(o) = &m.tmpfs_options {
                    if let Some(s) = o.size_bytes.filter(|s| *s > 0) {
                        options.push(format!("size={s}"));
                    }
                    if let Some(mode) = o.mode.filter(|m| *m > 0) {
                        options.push(format!("mode={mode:o}"));
                    }
                }
                MountPoint {
                    kind: MountType::Tmpfs,
                    name: String::new(),
                    source: String::new(),
                    destination: clean(&target),
                    read_write,
                    mode: String::new(),
                    propagation: String::new(),
                    options,
                    copy_data: false,
                    anonymous: false,
                }
            }
            other => {
                return Err(ContainerError::Invalid(format!(
                    "invalid mount config for {spec}: mount type {:?} is not supported",
                    other.map(|o| o.to_string()).unwrap_or_default()
                )))
            }
        };
        points.push(point);
    }
    for (dst, opts) in hc.tmpfs.iter().flatten() {
        if !dst.starts_with('/') {
            return Err(ContainerError::Invalid(format!(
                "invalid tmpfs mount path: '{dst}' mount path must be absolute"
            )));
        }
        let options: Vec<String> = opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        let read_write = !options.iter().any(|o| o == "ro");
        points.push(MountPoint {
            kind: MountType::Tmpfs,
            name: String::new(),
            source: String::new(),
            destination: clean(dst),
            read_write,
            mode: String::new(),
            propagation: String::new(),
            options,
            copy_data: false,
            anonymous: false,
        });
    }
    let mut seen = HashSet::new();
    for p in &points {
        if !seen.insert(p.destination.clone()) {
            return Err(ContainerError::Invalid(format!(
                "Duplicate mount point: {}",
                p.destination
            )));
        }
    }
    // The image's VOLUMEs (and `-v /path`) nothing covers become anonymous volumes.
    let mut anonymous: Vec<String> = config
        .volumes
        .iter()
        .flatten()
        .map(|d| clean(d))
        .filter(|d| !seen.contains(d))
        .collect();
    anonymous.sort();
    anonymous.dedup();
    for dst in anonymous {
        points.push(MountPoint {
            kind: MountType::Volume,
            name: String::new(),
            source: String::new(),
            destination: dst,
            read_write: true,
            mode: String::new(),
            propagation: String::new(),
            options: Vec::new(),
            copy_data: true,
            anonymous: true,
        });
    }
    // Named volumes are made (or found) now; anonymous ones get their names.
    let mut made: Vec<MountPoint> = Vec::new();
    for p in points.iter_mut().filter(|p| p.kind == MountType::Volume) {
        let name = if p.name.is_empty() {
            None
        } else {
            Some(p.name.as_str())
        };
        let existed = name.map(|n| volumes.get(n).is_ok()).unwrap_or(false);
        let labels = BTreeMap::new();
        match volumes.create(name, None, BTreeMap::new(), labels) {
            Ok(v) => {
                p.name = v.name.clone();
                p.source = v.mountpoint.to_string_lossy().to_string();
                if p.anonymous || !existed {
                    made.push(p.clone());
                }
            }
            Err(e) => {
                for m in &made {
                    if m.anonymous {
                        let _ = volumes.remove(&m.name, true);
                    }
                }
                return Err(e.into());
            }
        }
    }
    Ok(points)
}

/// Undoes [`resolve`]'s anonymous volumes after a create that failed.
pub fn release_new_volumes(points: &[MountPoint], volumes: &VolumeStore) {
    for p in points
        .iter()
        .filter(|p| p.kind == MountType::Volume && p.anonymous)
    {
        let _ = volumes.remove(&p.name, true);
    }
}

/// Makes the mounts ready for a start: volumes mounted (when their driver options need it)
/// and filled from the image when new; returns them as the spec builder takes them.
pub fn activate(
    rec: &ContainerRecord,
    rootfs: &Path,
    volumes: &VolumeStore,
) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    for p in &rec.mounts {
        let (source, kind) = match p.kind {
            MountType::Bind => {
                let src = PathBuf::from(&p.source);
                if !src.exists() {
                    // `-v /host/dir:...` makes a missing host directory, as Docker does.
                    std::fs::create_dir_all(&src).map_err(ContainerError::io(format!(
                        "creating bind source {}",
                        src.display()
                    )))?;
                }
                (src, MountKind::Bind)
            }
            MountType::Volume => {
                let path = volumes.mount(&p.name, &rec.id)?;
                if p.copy_data {
                    volumes.copy_up_in_root(rootfs, Path::new(&p.destination), &p.name)?;
                }
                (path, MountKind::Volume)
            }
            MountType::Tmpfs => (PathBuf::from("tmpfs"), MountKind::Tmpfs),
        };
        out.push(MountSpec {
            destination: p.destination.clone(),
            source,
            kind,
            read_only: !p.read_write,
            propagation: if p.propagation.is_empty() {
                None
            } else {
                Some(p.propagation.clone())
            },
            options: p.options.clone(),
        });
    }
    Ok(out)
}

/// After the task ended: volume mounts released.
pub fn deactivate(rec: &ContainerRecord, volumes: &VolumeStore) {
    for p in rec.mounts.iter().filter(|p| p.kind == MountType::Volume) {
        let _ = volumes.unmount(&p.name, &rec.id);
    }
}

/// At removal: references dropped, anonymous volumes removed with `-v` (and `--rm`).
pub fn release(rec: &ContainerRecord, volumes: &VolumeStore, remove_anonymous: bool) {
    for p in rec.mounts.iter().filter(|p| p.kind == MountType::Volume) {
        let _ = volumes.remove_ref(&p.name, &rec.id);
        if remove_anonymous && p.anonymous {
            let _ = volumes.remove(&p.name, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_docker() {
        let b = parse_bind("/srv/data:/data:ro").unwrap();
        assert_eq!(b.kind, MountType::Bind);
        assert!(!b.read_write);
        assert_eq!(b.propagation, "rprivate");
        let v = parse_bind("cache:/var/cache:nocopy").unwrap();
        assert_eq!(v.kind, MountType::Volume);
        assert_eq!(v.name, "cache");
        assert!(!v.copy_data);
        assert!(parse_bind("/a:rel")
            .unwrap_err()
            .to_string()
            .contains("must be absolute"));
        assert!(parse_bind("/a").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
        assert_eq!(clean("/a//b/../c/"), "/a/c");
    }
}
