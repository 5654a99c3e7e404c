//! Protection against a container overwriting the runtime through /proc/self/exe.
//!
//! A process inside a container can reach the runtime's binary through
//! `/proc/<pid>/exe` of any runtime process that enters the container (init
//! before its execve, an `exec`'d process, or a container program that is
//! itself `/proc/self/exe`), and reopen it for writing once the runtime exits:
//! CVE-2019-5736. Before it forks anything into a container, the runtime
//! re-executes itself from a binary no one can write:
//! - first choice (as crun and runc 1.2 do): bind the binary read-only onto a
//!   scratch file, open it, detach the mount at once and exec the open file. The
//!   process's `/proc/self/exe` is then on a detached read-only mount: opening
//!   it for writing fails with EROFS, and no one can reach the mount to change
//!   that. No copy is made.
//! - fallback, where mounting is not allowed: a sealed, anonymous memfd copy.
//!
//! Cost (BENCHMARKS.md): the bind costs one extra execve, about 1.5 ms; the memfd
//! copy of a 3 MB binary about 4 ms.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Result};

const MEMFD_NAME: &std::ffi::CStr = c"berth-runc";

/// Is this process's binary one that cannot be written: on a read-only mount,
/// or the sealed memfd copy?
pub fn is_protected() -> bool {
    let on_ro_mount = nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    on_ro_mount
        || std::fs::read_link("/proc/self/exe")
            .map(|p| p.as_os_str().as_bytes().starts_with(b"/memfd:berth-runc"))
            .unwrap_or(false)
}

/// Re-exec from a binary that cannot be written, with the same arguments and
/// environment. Returns only if already running from one. `scratch` is a
/// root-owned directory for the moment the read-only bind needs a mount point.
pub fn ensure_protected_binary(scratch: &std::path::Path) -> Result<()> {
    if is_protected() {
        return Ok(());
    }
    if let Some(fd) = read_only_bind(scratch) {
        exec_fd(&fd);
    }
    let memfd = sealed_copy()?;
    exec_fd(&memfd);
    Err(Error::io(
        "re-executing the runtime from a protected copy",
        std::io::Error::last_os_error(),
    ))
}

/// Bind /proc/self/exe read-only onto a scratch file, open it, and detach the
/// mount: the descriptor keeps the (now unreachable) read-only mount alive.
fn read_only_bind(scratch: &std::path::Path) -> Option<OwnedFd> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    std::fs::create_dir_all(scratch).ok()?;
    let target = scratch.join(format!("@exe.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .ok()?;
    let fd = (|| {
        mount(
            Some("/proc/self/exe"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ok()?;
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        let remounted = mount(None::<&str>, &target, None::<&str>, ro, None::<&str>).is_ok();
        let fd = remounted
            .then(|| {
                nix::fcntl::open(
                    &target,
                    nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
            })
            .flatten();
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        fd
    })();
    let _ = std::fs::remove_file(&target);
    fd
}

/// The fallback: a sealed memfd holding a copy of the binary.
fn sealed_copy() -> Result<OwnedFd> {
    let fail =
        |what: &str, e: std::io::Error| Error::io(format!("cloning the runtime binary: {what}"), e);
    let src = std::fs::File::open("/proc/self/exe").map_err(|e| fail("open /proc/self/exe", e))?;
    let len = src.metadata().map_err(|e| fail("stat", e))?.len();
    // SAFETY: memfd_create with a valid NUL-terminated name.
    let raw = unsafe {
        libc::memfd_create(
            MEMFD_NAME.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(fail("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut copied: u64 = 0;
    while copied < len {
        // SAFETY: both descriptors are open; sendfile advances the source offset itself.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                (len - copied) as usize,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(fail("sendfile", e));
        }
        if n == 0 {
            break;
        }
        copied += n as u64;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on an owned memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(fail("sealing", std::io::Error::last_os_error()));
    }
    Ok(memfd)
}

/// execveat(fd) with this process's arguments and environment; returns only on failure.
fn exec_fd(fd: &OwnedFd) {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).expect("arguments hold no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("environment holds no NUL")
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings
    // that outlive the call; AT_EMPTY_PATH executes the descriptor itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_for_write(fd: &OwnedFd) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }

    #[test]
    fn the_read_only_bind_cannot_be_written() {
        let scratch = std::env::temp_dir().join(format!("berth-selfexe-{}", std::process::id()));
        let fd = read_only_bind(&scratch);
        // What the bind left behind, read before cleaning up so a failure leaves nothing.
        let leftovers = std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let _ = std::fs::remove_dir(&scratch);
        let fd = fd.expect("root can bind-mount here");
        // The file sits on a read-only mount: once the runtime has exited (and the
        // kernel's text-busy guard is gone), a write through /proc/<pid>/exe fails
        // with EROFS. While this test runs, the guard answers first.
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let vfs = nix::sys::statvfs::statvfs(path.as_str()).unwrap();
        assert!(vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        let err = open_for_write(&fd).expect_err("the binary must not be writable");
        assert!(
            matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{err}"
        );
        // Nothing is left: the mount is detached and the scratch file removed.
        assert_eq!(leftovers, 0);
        assert!(!mounts.contains(&scratch.display().to_string()));
    }

    #[test]
    fn the_sealed_copy_cannot_be_written() {
        let fd = sealed_copy().unwrap();
        let mut f = open_for_write(&fd).unwrap();
        use std::io::Write;
        let err = f.write_all(b"x").expect_err("sealed against writes");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
}
