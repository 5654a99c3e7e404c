//! Protection against a container overwriting the runtime through /proc/self/exe.
//!
//! A process inside a container can reach the runtime's binary through
//! `/proc/<pid>/exe` of any runtime process that enters the container (init
//! before its execve, an `exec`'d process, or a container program that is
//! itself `/proc/self/exe`), and reopen it for writing once the runtime exits:
//! CVE-2019-5736. Before it forks anything into a container, the runtime
//! re-executes itself from a sealed, anonymous memfd copy: what the container
//! can reach is then a file that no one can write, and the binary on disk is
//! never in the container's reach.
//!
//! Cost: one copy of the binary inside the kernel (copy_file_range/sendfile) and
//! one extra execve; BENCHMARKS.md has the measured figure.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Result};

const MEMFD_NAME: &std::ffi::CStr = c"berth-runc";

/// Is this process running from the sealed copy?
pub fn is_cloned() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.as_os_str().as_bytes().starts_with(b"/memfd:berth-runc"))
        .unwrap_or(false)
}

/// Re-exec from a sealed memfd copy of the binary, with the same arguments and
/// environment. Returns only if already running from such a copy.
pub fn ensure_cloned_binary() -> Result<()> {
    if is_cloned() {
        return Ok(());
    }
    let fail = |what: &str, e: std::io::Error| Error::io(format!("cloning the runtime binary: {what}"), e);
    let src = std::fs::File::open("/proc/self/exe").map_err(|e| fail("open /proc/self/exe", e))?;
    let len = src.metadata().map_err(|e| fail("stat", e))?.len();
    // SAFETY: memfd_create with a valid NUL-terminated name.
    let raw = unsafe { libc::memfd_create(MEMFD_NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(fail("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut copied: u64 = 0;
    while copied < len {
        // SAFETY: both descriptors are open; sendfile advances the source offset itself.
        let n = unsafe {
            libc::sendfile(memfd.as_raw_fd(), src.as_raw_fd(), std::ptr::null_mut(), (len - copied) as usize)
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
            memfd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(fail("execveat", std::io::Error::last_os_error()))
}
