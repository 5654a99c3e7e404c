//! The system calls std does not wrap: fork into the background, SIGCHLD into a
//! pipe, reaping, poll, pty sizes, receiving a descriptor.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which lives across the call.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller holds open.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor the caller holds open.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

pub fn dev_null() -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
}

/// Leave the caller behind: fork, let the parent exit 0 at once, and in the child
/// start a session, become a child subreaper (orphaned descendants, the container's
/// init among them, are reparented here), ignore SIGPIPE and SIGHUP, move to `/`,
/// put stdio on /dev/null and close every other descriptor but `keep`.
pub fn daemonize(keep: Option<RawFd>) -> io::Result<()> {
    // SAFETY: the program is single-threaded here, so the child may do anything.
    match check(unsafe { libc::fork() })? {
        0 => {}
        // SAFETY: _exit ends the parent without running anything of the child's.
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: plain system calls without pointers, or with pointers to constants.
    unsafe {
        libc::setsid();
        check(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))?;
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        check(libc::chdir(c"/".as_ptr()))?;
    }
    let null = dev_null()?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        check(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    drop(null);
    match keep {
        Some(fd) if fd > 3 => {
            close_range(3, fd as u32 - 1);
            close_range(fd as u32 + 1, u32::MAX);
        }
        Some(3) => close_range(4, u32::MAX),
        _ => close_range(3, u32::MAX),
    }
    Ok(())
}

fn close_range(first: u32, last: u32) {
    // SAFETY: closes descriptors this process owns; nothing refers to them (the
    // program has opened nothing it still uses, bar stdio and the kept one).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if ret == 0 {
        return;
    }
    // Kernels before 5.9: close them one by one up to the limit of open files.
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(1024, 1 << 20) as u32;
    for fd in first..=last.min(max) {
        // SAFETY: as above.
        unsafe { libc::close(fd as RawFd) };
    }
}

/// The write end of the SIGCHLD self-pipe, for the handler.
static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; a full pipe already means "reap".
    unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
}

/// Route SIGCHLD into a non-blocking pipe; returns its read end, which becomes
/// readable whenever children are waiting to be reaped.
pub fn sigchld_pipe() -> io::Result<File> {
    let (r, w) = pipe()?;
    set_nonblocking(r.as_raw_fd())?;
    set_nonblocking(w.as_raw_fd())?;
    // The write end lives as long as the process: the handler may run at any time.
    SIGCHLD_PIPE.store(w.into_raw_fd(), Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is valid; the handler only calls write(2).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as *const () as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut sa.sa_mask);
        check(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()))?;
    }
    Ok(r)
}

/// One exited child and its wait status, if any is waiting.
pub fn reap_one() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// poll(2); an interrupted call counts as a timeout with nothing ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the slice is valid for its length across the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(n as usize)
}

/// TIOCSWINSZ on a pty master.
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize, which lives across the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// Receive one descriptor sent with SCM_RIGHTS on `sock` (as runc and berth-runc
/// send the pty master to `--console-socket`). Does not block: the runtime has
/// already sent it and gone.
pub fn recv_fd(sock: &UnixStream) -> io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a few descriptors: any beyond the first are closed below.
    let mut cmsg = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; the pointers below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: msg points at the buffers above.
    let n = unsafe {
        libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut received = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled and sized.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    received.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let mut fds = received.into_iter();
    fds.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the console socket carried no descriptor",
        )
    })
}

/// Whatever can be read from `file` without waiting (at most `limit` bytes).
pub fn read_available(file: &mut File, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if set_nonblocking(file.as_raw_fd()).is_err() {
        return out;
    }
    let mut buf = [0u8; 4096];
    while out.len() < limit {
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Replace `path` with `data` so readers see the old file or the whole new one:
/// write a temporary file beside it, fsync it, rename it over, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Unmap the pages of code and constants used so far (the executable's and the
/// shared libraries'), at the points where one-off work is over: the poll loop
/// faults back in the little it uses, and the monitor stops holding, for the
/// container's whole life, the resident pages of everything it ran once (argument
/// parsing, the runtime calls, the dynamic loader's relocation pass).
///
/// Only file-backed, read-only mappings none of whose pages are private copies
/// (`Anonymous: 0 kB`: never written, so not relro data the loader relocated) are
/// dropped. For those MADV_DONTNEED loses nothing: the next access maps the same
/// file pages again from the page cache.
pub fn release_startup_code() {
    // Read line by line: the whole file would grow the heap for good.
    let Ok(smaps) = File::open("/proc/self/smaps") else {
        return;
    };
    let mut smaps = io::BufReader::with_capacity(4096, smaps);
    let mut line = String::with_capacity(256);
    let mut candidate: Option<(usize, usize)> = None;
    loop {
        line.clear();
        match io::BufRead::read_line(&mut smaps, &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-') {
            // A mapping's header: "start-end perms offset dev inode path".
            let perms = fields.next().unwrap_or("");
            let file_backed = fields.nth(3).is_some_and(|path| path.starts_with('/'));
            candidate = match (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                (Ok(s), Ok(e)) if file_backed && (perms == "r-xp" || perms == "r--p") => {
                    Some((s, e))
                }
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let (Some((start, end)), Some("0")) = (candidate.take(), fields.next()) {
                // SAFETY: a private, read-only file mapping with no private page:
                // dropping its page table entries loses nothing.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
                };
            }
        }
    }
}
