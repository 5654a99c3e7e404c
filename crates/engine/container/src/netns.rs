//! A container's network namespace, made by the engine before the runtime runs: Docker's
//! sandbox. It is bound to a file in the container's monitor directory (so it outlives
//! any process in it, and the runtime joins it by path) and has its loopback up, as every
//! Docker container's does (`--network none` included).

use std::ffi::CString;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{ContainerError, Result};

/// Makes a new network namespace bound at `path`, loopback up. On failure nothing is
/// left at `path`.
pub fn create(path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    // unshare(CLONE_NEWNET) changes the calling thread only: a thread of its own does it
    // and ends, leaving the namespace alive through the bind mount.
    std::thread::spawn(move || -> Result<()> {
        let made = bind_new(&path);
        if made.is_err() {
            remove(&path);
        }
        made
    })
    .join()
    .map_err(|_| ContainerError::Runtime("the network namespace thread panicked".into()))?
}

fn bind_new(path: &Path) -> Result<()> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: nix::Error| ContainerError::io(what)(e.into())
    };
    std::fs::File::create(path)
        .map_err(ContainerError::io(format!("creating {}", path.display())))?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(err("unshare(CLONE_NEWNET)"))?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(err("binding the network namespace"))?;
    loopback_up().map_err(ContainerError::io("bringing the loopback up"))
}

/// Unbinds and deletes a namespace file made by [`create`]; missing is fine.
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// SIOCGIFFLAGS / SIOCSIFFLAGS on `lo` in the calling thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket call; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        // SAFETY: ifreq is plain data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = CString::new("lo").expect("no NUL");
        for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes_with_nul()) {
            *dst = *src as libc::c_char;
        }
        // SAFETY: fd is an open socket and req a valid ifreq for these ioctls.
        if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the flags member is the one SIOCGIFFLAGS filled.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: as above.
        if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}
