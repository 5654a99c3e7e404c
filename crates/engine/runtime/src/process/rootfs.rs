//! Giving the container its own files.
//!
//! Runs in init, inside the new mount namespace, in three steps:
//! 1. [`prepare`]: stop mount events from leaking to the host (`/` becomes a
//!    slave or private tree), bind the rootfs onto itself, mount what config.json
//!    lists (each destination resolved inside the rootfs without following a
//!    symlink out of it), create device nodes and the usual /dev links.
//! 2. [`pivot`]: pivot_root into the rootfs and detach the old root, so nothing
//!    of the host's tree stays reachable (or `chroot` after MS_MOVE with --no-pivot).
//! 3. [`finalize`]: mask and write-protect what the config says, apply sysctls,
//!    and make `/` read-only if asked.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, umask, Mode, SFlag};
use nix::unistd::{chdir, chown, chroot, pivot_root, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::mount::{propagation_flag, MountOptions};
use crate::error::{Context, Error, Result};

/// What `prepare` needs besides the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    /// The container's cgroup path inside each hierarchy.
    pub cgroup_path: &'a str,
    /// Device nodes cannot be created in a user namespace: bind them instead.
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
}

fn mount_err(what: &str, target: &Path, e: nix::Error) -> Error {
    Error::sys(format!("mount {what} on {}", target.display()), e)
}

/// Step 1: everything before pivot_root.
pub fn prepare(ctx: &RootfsContext) -> Result<()> {
    let linux = ctx.spec.linux().as_ref();
    let requested = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag);
    // Private only if asked; slave otherwise, so host mounts still propagate in
    // while nothing done here propagates out.
    let initial = match requested {
        Some(f) if f.contains(MsFlags::MS_PRIVATE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, initial, None::<&str>)
        .map_err(|e| mount_err("propagation", Path::new("/"), e))?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err("rootfs", ctx.rootfs, e))?;

    let mut dev_is_mounted = false;
    for m in ctx.spec.mounts().iter().flatten() {
        if m.destination() == Path::new("/dev") {
            dev_is_mounted = true;
        }
        mount_one(ctx, m).map_err(|e| match e {
            Error::InvalidField { .. } | Error::Unsupported { .. } => e,
            other => Error::InvalidField {
                field: "mounts".into(),
                reason: format!("{}: {other}", m.destination().display()),
            },
        })?;
    }
    create_devices(ctx, dev_is_mounted)?;
    Ok(())
}

/// Resolve `unsafe_path` inside `root` as if `root` were `/`: symlinks are followed
/// but can never lead outside `root`, and `..` stops at `root`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = components(unsafe_path);
    pending.reverse();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::InvalidArgument(format!(
                        "{}: too many levels of symbolic links",
                        unsafe_path.display()
                    )));
                }
                let target = fs::read_link(&candidate)
                    .context(|| format!("reading link {}", candidate.display()))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(&c),
        }
    }
    Ok(root.join(resolved))
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn mount_one(ctx: &RootfsContext, m: &Mount) -> Result<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = secure_join(ctx.rootfs, m.destination())?;
    let source = m.source().as_deref();

    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, &dest, &opts);
    }
    let is_bind = opts.is_bind() || typ == "bind";
    if is_bind {
        let src = source.ok_or_else(|| Error::InvalidField {
            field: "mounts".into(),
            reason: format!("{}: a bind mount needs a source", m.destination().display()),
        })?;
        let src_md = fs::metadata(src).context(|| format!("bind source {}", src.display()))?;
        make_mount_point(&dest, src_md.is_dir())?;
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(src),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| mount_err(&src.display().to_string(), &dest, e))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&dest, extra)?;
        }
    } else {
        make_mount_point(&dest, true)?;
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        if opts.tmpcopyup && typ == "tmpfs" {
            mount_tmpfs_copyup(&dest, opts.flags, data)?;
        } else {
            let flags = opts.flags & !MsFlags::MS_REMOUNT;
            if let Err(e) = mount(
                source.or(Some(Path::new(typ))),
                &dest,
                Some(typ),
                flags,
                data,
            ) {
                // In a user namespace without its own network (or ipc) namespace the
                // kernel refuses a fresh sysfs (or mqueue); bind the host's instead.
                let host = match typ {
                    "sysfs" => Some("/sys"),
                    "mqueue" => Some("/dev/mqueue"),
                    _ => None,
                };
                match host {
                    Some(h) if e == nix::Error::EPERM && ctx.in_user_ns => {
                        mount(
                            Some(h),
                            &dest,
                            None::<&str>,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None::<&str>,
                        )
                        .map_err(|e| mount_err(h, &dest, e))?;
                        let extra = flags
                            & (MsFlags::MS_RDONLY
                                | MsFlags::MS_NOSUID
                                | MsFlags::MS_NODEV
                                | MsFlags::MS_NOEXEC);
                        if !extra.is_empty() {
                            remount_bind(&dest, extra)?;
                        }
                    }
                    _ => return Err(mount_err(typ, &dest, e)),
                }
            }
        }
    }
    for p in &opts.propagation {
        mount(None::<&str>, &dest, None::<&str>, *p, None::<&str>)
            .map_err(|e| mount_err("propagation", &dest, e))?;
    }
    Ok(())
}

/// Remount a bind mount with new flags, keeping the flags the kernel locked on it
/// (a user namespace cannot clear nosuid/nodev/noexec/ro inherited from the host).
fn remount_bind(dest: &Path, flags: MsFlags) -> Result<()> {
    let locked = nix::sys::statvfs::statvfs(dest)
        .map(|s| statvfs_to_msflags(s.flags()))
        .unwrap_or(MsFlags::empty());
    mount(
        None::<&str>,
        dest,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .map_err(|e| mount_err("remount", dest, e))
}

fn statvfs_to_msflags(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags as S;
    let mut m = MsFlags::empty();
    for (s, ms) in [
        (S::ST_RDONLY, MsFlags::MS_RDONLY),
        (S::ST_NOSUID, MsFlags::MS_NOSUID),
        (S::ST_NODEV, MsFlags::MS_NODEV),
        (S::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (S::ST_NOATIME, MsFlags::MS_NOATIME),
        (S::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (S::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            m |= ms;
        }
    }
    m
}

fn make_mount_point(dest: &Path, dir: bool) -> Result<()> {
    if dir {
        if !dest.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dest)
                .context(|| format!("creating mount point {}", dest.display()))?;
        }
    } else if !dest.exists() {
        if let Some(parent) = dest.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .context(|| format!("creating {}", parent.display()))?;
        }
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dest)
            .context(|| format!("creating mount point {}", dest.display()))?;
    }
    Ok(())
}

/// A tmpfs that starts with a copy of what the directory under it held.
fn mount_tmpfs_copyup(dest: &Path, flags: MsFlags, data: Option<&str>) -> Result<()> {
    let staging = std::env::temp_dir().join(format!("berth-copyup-{}", std::process::id()));
    fs::create_dir_all(&staging).context(|| format!("creating {}", staging.display()))?;
    let result = (|| {
        mount(Some("tmpfs"), &staging, Some("tmpfs"), flags, data)
            .map_err(|e| mount_err("tmpfs", &staging, e))?;
        copy_tree(dest, &staging)?;
        mount(
            Some(&staging),
            dest,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| mount_err("tmpcopyup", dest, e))
    })();
    if result.is_err() {
        let _ = umount2(&staging, MntFlags::MNT_DETACH);
    }
    let _ = fs::remove_dir(&staging);
    result
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).context(|| format!("reading {}", from.display()))? {
        let entry = entry.context(|| format!("reading {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let md = fs::symlink_metadata(&src).context(|| format!("stat {}", src.display()))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            symlink(
                fs::read_link(&src).context(|| src.display().to_string())?,
                &dst,
            )
            .context(|| format!("creating {}", dst.display()))?;
        } else if ft.is_dir() {
            fs::create_dir(&dst).context(|| format!("creating {}", dst.display()))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).context(|| format!("copying {}", src.display()))?;
        } else {
            continue;
        }
        let _ = nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &dst,
            Some(Uid::from_raw(md.uid())),
            Some(Gid::from_raw(md.gid())),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if !ft.is_symlink() {
            let _ = fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777));
        }
    }
    Ok(())
}

/// The cgroup filesystem as the container sees it.
///
/// With its own cgroup namespace on a pure v2 host, a fresh cgroup2 mount shows
/// exactly the container's subtree. Otherwise each hierarchy's directory for the
/// container is bound in (under a tmpfs on v1), which shows the same subtree
/// without exposing the host's.
fn mount_cgroup(ctx: &RootfsContext, dest: &Path, opts: &MountOptions) -> Result<()> {
    make_mount_point(dest, true)?;
    let flags = opts.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = opts.flags & MsFlags::MS_RDONLY;
    let hierarchies = cgroup_mounts()?;
    let unified_only = hierarchies.len() == 1 && hierarchies[0].1;
    if unified_only {
        let (host_mount, _) = &hierarchies[0];
        if ctx.new_cgroup_ns {
            mount(
                Some("cgroup2"),
                dest,
                Some("cgroup2"),
                flags | ro,
                None::<&str>,
            )
            .map_err(|e| mount_err("cgroup2", dest, e))?;
        } else {
            let src = host_mount.join(ctx.cgroup_path.trim_start_matches('/'));
            mount(
                Some(&src),
                dest,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| mount_err("cgroup", dest, e))?;
            remount_bind(dest, flags | ro)?;
        }
        return Ok(());
    }
    mount(Some("tmpfs"), dest, Some("tmpfs"), flags, Some("mode=755"))
        .map_err(|e| mount_err("tmpfs", dest, e))?;
    for (host_mount, _) in &hierarchies {
        let Some(name) = host_mount.file_name() else {
            continue;
        };
        let target = dest.join(name);
        make_mount_point(&target, true)?;
        let src = host_mount.join(ctx.cgroup_path.trim_start_matches('/'));
        if !src.is_dir() {
            continue;
        }
        mount(
            Some(&src),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err("cgroup", &target, e))?;
        remount_bind(&target, flags | ro)?;
    }
    // Co-mounted controllers (cpu,cpuacct) are reachable by each name, as on the host.
    for (host_mount, _) in &hierarchies {
        let Some(name) = host_mount.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.contains(',') {
            for part in name.split(',') {
                let link = dest.join(part);
                if !link.exists() {
                    let _ = symlink(name, &link);
                }
            }
        }
    }
    if !ro.is_empty() {
        remount_bind_tmpfs_ro(dest, flags)?;
    }
    Ok(())
}

fn remount_bind_tmpfs_ro(dest: &Path, flags: MsFlags) -> Result<()> {
    mount(
        None::<&str>,
        dest,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
        Some("mode=755"),
    )
    .map_err(|e| mount_err("remount", dest, e))
}

/// (mount point, is cgroup2) of every cgroup hierarchy the host has mounted.
fn cgroup_mounts() -> Result<Vec<(PathBuf, bool)>> {
    let info =
        fs::read_to_string("/proc/self/mountinfo").context(|| "/proc/self/mountinfo".into())?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if let Some(mp) = left.split(' ').nth(4) {
            let mp = PathBuf::from(unescape_mountinfo(mp));
            if !out.iter().any(|(p, _)| p == &mp) {
                out.push((mp, fstype == "cgroup2"));
            }
        }
    }
    Ok(out)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

struct Dev {
    path: &'static str,
    major: u64,
    minor: u64,
}

/// The devices every container gets, as runc gives them.
const DEFAULT_DEVICES: [Dev; 6] = [
    Dev {
        path: "/dev/null",
        major: 1,
        minor: 3,
    },
    Dev {
        path: "/dev/zero",
        major: 1,
        minor: 5,
    },
    Dev {
        path: "/dev/full",
        major: 1,
        minor: 7,
    },
    Dev {
        path: "/dev/tty",
        major: 5,
        minor: 0,
    },
    Dev {
        path: "/dev/urandom",
        major: 1,
        minor: 9,
    },
    Dev {
        path: "/dev/random",
        major: 1,
        minor: 8,
    },
];

fn create_devices(ctx: &RootfsContext, dev_is_mounted: bool) -> Result<()> {
    let dev = secure_join(ctx.rootfs, Path::new("/dev"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dev)
        .context(|| dev.display().to_string())?;
    let old = umask(Mode::empty());
    let result = (|| {
        let spec_devices: &[LinuxDevice] = ctx
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default();
        for d in DEFAULT_DEVICES.iter() {
            if spec_devices.iter().any(|s| s.path() == Path::new(d.path)) {
                continue;
            }
            make_device(
                ctx,
                Path::new(d.path),
                SFlag::S_IFCHR,
                d.major,
                d.minor,
                0o666,
                0,
                0,
            )?;
        }
        for d in spec_devices {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(Error::InvalidField {
                        field: "linux.devices".into(),
                        reason: format!(
                            "{}: type 'a' is only valid in cgroup rules",
                            d.path().display()
                        ),
                    })
                }
            };
            if !d.path().starts_with("/dev") {
                return Err(Error::InvalidField {
                    field: "linux.devices".into(),
                    reason: format!("{} is not under /dev", d.path().display()),
                });
            }
            make_device(
                ctx,
                d.path(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        Ok(())
    })();
    umask(old);
    result?;
    if dev_is_mounted {
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let p = dev.join(link);
            if fs::symlink_metadata(&p).is_err() {
                symlink(target, &p).context(|| format!("creating {}", p.display()))?;
            }
        }
        if Path::new("/proc/kcore").exists() {
            let p = dev.join("core");
            if fs::symlink_metadata(&p).is_err() {
                let _ = symlink("/proc/kcore", &p);
            }
        }
        if dev.join("pts/ptmx").exists() {
            let p = dev.join("ptmx");
            let _ = fs::remove_file(&p);
            symlink("pts/ptmx", &p).context(|| format!("creating {}", p.display()))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &RootfsContext,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let dest = secure_join(ctx.rootfs, path)?;
    if let Some(parent) = dest.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .context(|| parent.display().to_string())?;
    }
    let bind_host_node = |dest: &Path| {
        make_mount_point(dest, false)?;
        mount(
            Some(path),
            dest,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err(&path.display().to_string(), dest, e))
    };
    if ctx.in_user_ns {
        // mknod is refused in a user namespace: bind the host's node instead.
        return bind_host_node(&dest);
    }
    match fs::remove_file(&dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("replacing {}", dest.display()), e)),
    }
    match mknod(
        &dest,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    ) {
        Ok(()) => {}
        // The device cgroup (or a nodev mount) may forbid creating the node: the
        // host's own node, bound in, is the same device.
        Err(nix::Error::EPERM) if path.exists() => return bind_host_node(&dest),
        Err(e) => return Err(Error::sys(format!("mknod {}", dest.display()), e)),
    }
    chown(&dest, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .map_err(|e| Error::sys(format!("chown {}", dest.display()), e))
}

/// Step 2: make the rootfs `/`.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    chdir(rootfs).map_err(|e| Error::sys(format!("chdir {}", rootfs.display()), e))?;
    if no_pivot {
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| mount_err("rootfs (move)", Path::new("/"), e))?;
        chroot(".").map_err(|e| Error::sys("chroot", e))?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one; detaching
        // it (after making it a slave so the unmount does not propagate to the
        // host) leaves only the container's tree.
        pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", e))?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| mount_err("propagation", Path::new("old root"), e))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("detaching the old root", e))?;
    }
    chdir("/").map_err(|e| Error::sys("chdir /", e))
}

/// Step 3: after pivot_root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(flag) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        if !flag.contains(MsFlags::MS_SLAVE) {
            mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
                .map_err(|e| mount_err("rootfsPropagation", Path::new("/"), e))?;
        }
    }
    if let Some(l) = linux {
        for (key, value) in l.sysctl().iter().flatten() {
            let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
            fs::write(&path, value).map_err(|e| Error::InvalidField {
                field: "linux.sysctl".into(),
                reason: format!("{key}={value}: {e}"),
            })?;
        }
        for p in l.readonly_paths().iter().flatten() {
            readonly_path(Path::new(p))?;
        }
        for p in l.masked_paths().iter().flatten() {
            mask_path(Path::new(p))?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => remount_bind(
            p,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        ),
        Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(mount_err("read-only path", p, e)),
    }
}

fn mask_path(p: &Path) -> Result<()> {
    let md = match fs::metadata(p) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("masked path {}", p.display()), e)),
    };
    let r = if md.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    r.map_err(|e| mount_err("mask", p, e))
}

/// Bind the console's pty slave onto /dev/console (after pivot_root).
pub fn bind_console(slave_path: &Path) -> Result<()> {
    let console = Path::new("/dev/console");
    make_mount_point(console, false)?;
    mount(
        Some(slave_path),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| mount_err(&slave_path.display().to_string(), console, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside() {
        let root = std::env::temp_dir().join(format!("berth-sj-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../..", root.join("a/b/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/abs/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            secure_join(&root, Path::new("/a/b/up/x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(&root, Path::new("/../../x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(&root, Path::new("/a/rel/c")).unwrap(),
            root.join("a/b/c")
        );
        symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(&root, Path::new("/loop")).is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
