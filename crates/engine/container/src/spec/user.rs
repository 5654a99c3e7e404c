//! `--user` and `--group-add` to numeric ids, as Docker does it (runc's
//! `user.GetExecUser` and `GetAdditionalGroups`, then moby's `getUser`).
//!
//! The user is `""`, `name`, `uid`, `name:group` or `uid:gid` (a group by name or number).
//! Names are looked up in the container's `/etc/passwd` and `/etc/group`; a number needs no
//! entry (a uid without one gets gid 0), and missing files are fine as long as nothing has
//! to be looked up by name. Without an explicit group, the user's supplementary groups are
//! the groups of `/etc/group` that list the user by name.
//!
//! Both files come from the image, so they are opened inside the root filesystem:
//! `openat2(RESOLVE_IN_ROOT)` makes `..` and absolute symlinks (`/etc/passwd ->
//! /../../etc/shadow`) resolve as if the rootfs were `/`. On kernels without openat2 the same
//! walk is done a component at a time. Only regular files are read (an image's
//! `/etc/passwd` may be a fifo or a device), and only up to [`MAX_FILE`] bytes.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

use super::error::{Error, Result};

/// The largest passwd or group file read.
pub const MAX_FILE: u64 = 16 << 20;

/// Ids are in `0..=MAX_ID`, as runc requires.
const MAX_ID: i64 = i32::MAX as i64;

/// The process's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// As moby puts them in the spec: the primary gid first, then the user's supplementary
    /// groups from `/etc/group`, then the `--group-add` groups.
    pub additional_gids: Vec<u32>,
    /// The home directory from the passwd entry, when one matched (`HOME` defaults to "/").
    pub home: Option<String>,
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Resolve `user` (Docker's `Config.User`) and `group_add` (`HostConfig.GroupAdd`) against
/// the passwd and group files of `rootfs`.
pub fn resolve(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let root = open_root(rootfs)?;
    let passwd = read_in_root(&root, "/etc/passwd")?.map(|b| parse_passwd(&b));
    let group = read_in_root(&root, "/etc/group")?.map(|b| parse_group(&b));
    resolve_with(user, group_add, passwd.as_deref(), group.as_deref())
}

/// The lookup itself; `None` for a file the rootfs does not have.
fn resolve_with(
    spec: &str,
    group_add: &[String],
    passwd: Option<&[PasswdEntry]>,
    group: Option<&[GroupEntry]>,
) -> Result<ResolvedUser> {
    let (user_arg, group_arg) = spec.split_once(':').unwrap_or((spec, ""));
    let uid_num = parse_id(user_arg);
    let gid_num = parse_id(group_arg);

    let mut uid: i64 = 0;
    let mut gid: i64 = 0;
    let mut home = None;
    let matched = passwd.unwrap_or_default().iter().find(|u| match uid_num {
        _ if user_arg.is_empty() => u.uid == 0,
        Some(n) => u.uid == n,
        None => u.name == user_arg,
    });
    match matched {
        Some(u) => {
            uid = u.uid;
            gid = u.gid;
            home = Some(u.home.clone());
        }
        None if user_arg.is_empty() => {}
        None => {
            uid = uid_num.ok_or_else(|| Error::UserNotFound(user_arg.to_string()))?;
            check_range(uid)?;
        }
    }

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() {
        let found = group.unwrap_or_default().iter().find(|g| match gid_num {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        });
        gid = match found {
            Some(g) => g.gid,
            None => {
                let n = gid_num.ok_or_else(|| Error::GroupNotFound(group_arg.to_string()))?;
                check_range(n)?;
                n
            }
        };
    } else if let Some(u) = matched {
        supplementary = group
            .unwrap_or_default()
            .iter()
            .filter(|g| g.members.contains(&u.name))
            .map(|g| g.gid)
            .collect();
    }

    let added = additional_groups(group_add, group.unwrap_or_default())?;
    let additional_gids = std::iter::once(gid)
        .chain(supplementary)
        .chain(added)
        .map(to_u32)
        .collect::<Result<Vec<u32>>>()?;
    Ok(ResolvedUser {
        uid: to_u32(uid)?,
        gid: to_u32(gid)?,
        additional_gids,
        home,
    })
}

/// `--group-add`: each a group name or gid (a gid needs no entry), without duplicates.
fn additional_groups(requested: &[String], group: &[GroupEntry]) -> Result<Vec<i64>> {
    let mut gids: Vec<i64> = Vec::new();
    for want in requested {
        let entry = group
            .iter()
            .find(|g| g.name == *want || g.gid.to_string() == *want);
        let gid = match entry {
            Some(g) => g.gid,
            None => {
                let n = want
                    .parse::<i64>()
                    .map_err(|_| Error::AdditionalGroupNotFound(want.clone()))?;
                check_range(n)?;
                n
            }
        };
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    Ok(gids)
}

fn parse_id(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

fn check_range(id: i64) -> Result<()> {
    if (0..=MAX_ID).contains(&id) {
        Ok(())
    } else {
        Err(Error::IdOutOfRange)
    }
}

fn to_u32(id: i64) -> Result<u32> {
    check_range(id)?;
    u32::try_from(id).map_err(|_| Error::IdOutOfRange)
}

/// Lines of a passwd or group file, split at `:`; blank lines and comments skipped.
fn records(bytes: &[u8]) -> impl Iterator<Item = Vec<&str>> {
    std::str::from_utf8(bytes)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// A numeric field as runc reads it: anything unparsable is 0.
fn field_id(fields: &[&str], i: usize) -> i64 {
    fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0)
}

fn parse_passwd(bytes: &[u8]) -> Vec<PasswdEntry> {
    records(bytes)
        .map(|f| PasswdEntry {
            name: f[0].to_string(),
            uid: field_id(&f, 2),
            gid: field_id(&f, 3),
            home: f.get(5).copied().unwrap_or_default().to_string(),
        })
        .collect()
}

fn parse_group(bytes: &[u8]) -> Vec<GroupEntry> {
    records(bytes)
        .map(|f| GroupEntry {
            name: f[0].to_string(),
            gid: field_id(&f, 2),
            members: f
                .get(3)
                .filter(|m| !m.is_empty())
                .map(|m| m.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::RootfsRead {
        path: rootfs.display().to_string(),
        source: e.into(),
    })
}

/// The flags of the final open: never block on a fifo, never become a controlling terminal.
fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
}

/// The content of `path` resolved inside `root`; `None` when it does not exist.
fn read_in_root(root: &OwnedFd, path: &str) -> Result<Option<Vec<u8>>> {
    let how = OpenHow::new()
        .flags(read_flags())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let opened = match nix::fcntl::openat2(root, path, how) {
        Err(Errno::ENOSYS) => open_in_root_by_walk(root, path),
        other => other,
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(e) => {
            return Err(Error::RootfsRead {
                path: path.to_string(),
                source: e.into(),
            })
        }
    };
    read_regular(fd, path).map(Some)
}

fn read_regular(fd: OwnedFd, path: &str) -> Result<Vec<u8>> {
    let rootfs_read = |e: std::io::Error| Error::RootfsRead {
        path: path.to_string(),
        source: e,
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| rootfs_read(e.into()))?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(Error::RootfsNotRegular {
            path: path.to_string(),
        });
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(rootfs_read)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Error::RootfsTooLarge {
            path: path.to_string(),
            limit: MAX_FILE,
        });
    }
    Ok(bytes)
}

/// How many symlinks one lookup may follow (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// `openat2(RESOLVE_IN_ROOT)` by hand: every component is opened with `O_NOFOLLOW`
/// relative to the directory before it; a symlink's target is spliced into the remaining
/// path, restarting at `root` when absolute; `..` never climbs above `root`.
fn open_in_root_by_walk(root: &OwnedFd, path: &str) -> nix::Result<OwnedFd> {
    let mut pending: Vec<String> = components(path).rev().collect();
    // The directories from root down to where the walk is.
    let mut dirs: Vec<OwnedFd> = vec![root.as_fd().try_clone_to_owned().map_err(io_errno)?];
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let dir = dirs.last().expect("root is never popped");
        let fd = nix::fcntl::openat(
            dir,
            name.as_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let st = nix::sys::stat::fstat(&fd)?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = nix::fcntl::readlinkat(&fd, "")?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                dirs.truncate(1);
            }
            pending.extend(components(&target).rev());
        } else if pending.is_empty() {
            // The last component, not a symlink a moment ago: O_NOFOLLOW makes a swap to
            // a symlink since then fail instead of being followed.
            return nix::fcntl::openat(
                dir,
                name.as_str(),
                read_flags() | OFlag::O_NOFOLLOW,
                Mode::empty(),
            );
        } else if kind == SFlag::S_IFDIR {
            dirs.push(fd);
        } else {
            return Err(Errno::ENOTDIR);
        }
    }
    // The path named root itself (or climbed back to it).
    Err(Errno::EISDIR)
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # a comment\n\
        \n\
        app:x:1000:1001:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root,app\n\
        audio:x:29:app\n\
        app:x:1001:\n\
        staff:x:50:\n";

    fn rootfs(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            std::fs::write(dir.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            std::fs::write(dir.path().join("etc/group"), g).unwrap();
        }
        dir
    }

    fn user(uid: u32, gid: u32, gids: &[u32], home: Option<&str>) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: gids.to_vec(),
            home: home.map(str::to_string),
        }
    }

    #[test]
    fn names_numbers_and_groups() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let r = |spec: &str| resolve(dir.path(), spec, &[]).unwrap();
        assert_eq!(r(""), user(0, 0, &[0, 10], Some("/root")));
        assert_eq!(r("root"), user(0, 0, &[0, 10], Some("/root")));
        assert_eq!(
            r("app"),
            user(1000, 1001, &[1001, 10, 29], Some("/home/app"))
        );
        assert_eq!(
            r("1000"),
            user(1000, 1001, &[1001, 10, 29], Some("/home/app"))
        );
        // An explicit group replaces the primary group and drops the supplementary ones.
        assert_eq!(r("app:staff"), user(1000, 50, &[50], Some("/home/app")));
        assert_eq!(r("app:29"), user(1000, 29, &[29], Some("/home/app")));
        assert_eq!(r("1000:4242"), user(1000, 4242, &[4242], Some("/home/app")));
        // A uid without an entry gets gid 0 and no home.
        assert_eq!(r("4000"), user(4000, 0, &[0], None));
        assert_eq!(r("4000:staff"), user(4000, 50, &[50], None));
        assert_eq!(r("4000:4001"), user(4000, 4001, &[4001], None));
    }

    #[test]
    fn unknown_names_are_docker_errors() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let err = resolve(dir.path(), "nobody", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        let err = resolve(dir.path(), "app:nogroup", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        let err = resolve(dir.path(), "app", &["video".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to find group video: no matching entries in group file"
        );
        assert!(matches!(
            resolve(dir.path(), "-1", &[]),
            Err(Error::IdOutOfRange)
        ));
        assert!(matches!(
            resolve(dir.path(), "4294967296", &[]),
            Err(Error::IdOutOfRange)
        ));
    }

    #[test]
    fn group_add_by_name_or_number_without_duplicates() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let add: Vec<String> = ["staff", "50", "7777", "audio"].map(String::from).into();
        assert_eq!(
            resolve(dir.path(), "app", &add).unwrap(),
            user(1000, 1001, &[1001, 10, 29, 50, 7777, 29], Some("/home/app"))
        );
    }

    #[test]
    fn missing_files_are_fine_for_numbers_only() {
        let dir = rootfs(None, None);
        assert_eq!(
            resolve(dir.path(), "", &[]).unwrap(),
            user(0, 0, &[0], None)
        );
        assert_eq!(
            resolve(dir.path(), "1000:1000", &["44".into()]).unwrap(),
            user(1000, 1000, &[1000, 44], None)
        );
        assert!(matches!(
            resolve(dir.path(), "app", &[]),
            Err(Error::UserNotFound(n)) if n == "app"
        ));
        assert!(matches!(
            resolve(dir.path(), "0:wheel", &[]),
            Err(Error::GroupNotFound(n)) if n == "wheel"
        ));
        assert!(matches!(
            resolve(dir.path(), "0", &["wheel".into()]),
            Err(Error::AdditionalGroupNotFound(_))
        ));
        // No /etc at all.
        let bare = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve(bare.path(), "7", &[]).unwrap(),
            user(7, 0, &[0], None)
        );
    }

    /// A host directory beside the rootfs, holding a passwd the container must never see.
    fn host_secret(parent: &Path) -> std::path::PathBuf {
        let host = parent.join("host");
        std::fs::create_dir_all(host.join("etc")).unwrap();
        std::fs::write(host.join("etc/passwd"), "evil:x:0:0::/host:/bin/sh\n").unwrap();
        host
    }

    #[test]
    fn symlinks_out_of_the_rootfs_resolve_inside_it() {
        let top = tempfile::tempdir().unwrap();
        let host = host_secret(top.path());
        let root = top.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // Absolute, relative-climbing and absolute-host-path links all land inside root.
        for target in [
            "/../../host/etc/passwd".to_string(),
            "../../host/etc/passwd".to_string(),
            host.join("etc/passwd").display().to_string(),
        ] {
            let _ = std::fs::remove_file(root.join("etc/passwd"));
            symlink(&target, root.join("etc/passwd")).unwrap();
            let err = resolve(&root, "evil", &[]).unwrap_err();
            assert!(matches!(err, Error::UserNotFound(_)), "{target}: {err}");
        }
        // The same link finds the rootfs's own file when the rootfs has one there.
        std::fs::create_dir_all(root.join("host/etc")).unwrap();
        std::fs::write(root.join("host/etc/passwd"), "inside:x:5:6::/in:/bin/sh\n").unwrap();
        let _ = std::fs::remove_file(root.join("etc/passwd"));
        symlink("/../../host/etc/passwd", root.join("etc/passwd")).unwrap();
        assert_eq!(
            resolve(&root, "inside", &[]).unwrap(),
            user(5, 6, &[6], Some("/in"))
        );
        // A symlinked /etc directory is resolved inside too.
        std::fs::remove_dir_all(root.join("etc")).unwrap();
        symlink("/host/etc", root.join("etc")).unwrap();
        assert_eq!(resolve(&root, "inside", &[]).unwrap().uid, 5);
    }

    #[test]
    fn the_walk_fallback_stays_inside_too() {
        let top = tempfile::tempdir().unwrap();
        host_secret(top.path());
        let root = top.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/passwd"), "walker:x:9:9::/w:/bin/sh\n").unwrap();
        let fd = open_root(&root).unwrap();
        let read = |p: &str| {
            let fd = open_in_root_by_walk(&fd, p)?;
            let mut s = String::new();
            File::from(fd).read_to_string(&mut s).unwrap();
            Ok::<_, Errno>(s)
        };
        symlink("/../../host/etc/passwd", root.join("etc/passwd")).unwrap();
        assert_eq!(read("/etc/passwd"), Err(Errno::ENOENT));
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        symlink("../../../real/./passwd", root.join("etc/passwd")).unwrap();
        assert!(read("/etc/passwd").unwrap().starts_with("walker:"));
        symlink("loop", root.join("etc/loop")).unwrap();
        assert_eq!(read("/etc/loop"), Err(Errno::ELOOP));
        assert_eq!(read("/real/passwd/x"), Err(Errno::ENOTDIR));
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = rootfs(None, Some(GROUP));
        nix::unistd::mkfifo(
            &dir.path().join("etc/passwd"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        // A fifo would block a plain open; this returns at once.
        assert!(matches!(
            resolve(dir.path(), "", &[]),
            Err(Error::RootfsNotRegular { .. })
        ));
    }
}
