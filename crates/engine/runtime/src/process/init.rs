//! The children's side of container setup: stage-1, then init.
//!
//! Both run between fork and execve in a single-threaded copy of the runtime, so
//! they only touch memory they own and report every failure to the parent as a
//! message before exiting: a failure here is never silent.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{sethostname, setsid, Gid, Uid};
use oci_spec::runtime::{
    LinuxNamespaceType, LinuxPersonality, LinuxPersonalityDomain, PosixRlimitType, Process, Spec,
};

use super::capabilities::CapSets;
use super::channel::{Channel, Message};
use super::rootfs::{self, RootfsContext};
use super::{console, SpawnRequest, Stage};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Phase};
use crate::spec::{clone_flag, proc_ns_name};

/// Fork the calling (single-threaded) process. `flags` may add CLONE_PARENT.
/// Returns 0 in the child and the child's pid in the caller.
pub fn fork_with(flags: libc::c_ulong) -> Result<i32> {
    // SAFETY: raw clone without CLONE_VM and without a new stack behaves like
    // fork(2); the runtime is single-threaded here, so the child owns a full,
    // consistent copy of its memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(Error::io("clone", std::io::Error::last_os_error()));
    }
    Ok(r as i32)
}

/// Stage-1: in the runtime's namespaces, with the container's cgroup already joined.
pub fn stage1(req: &SpawnRequest, chan: &Channel) -> ! {
    let result = (|| -> Result<i32> {
        // Everything up to the cgroup namespace overlaps with the parent moving
        // this process into the container's cgroup.
        let mut cgroup_joined = false;
        join_namespaces(req)?;
        let ns = &req.namespaces;
        let new = |t| ns.iter().any(|(typ, path)| *typ == t && path.is_none());
        if new(LinuxNamespaceType::User) {
            unshare(CloneFlags::CLONE_NEWUSER).context(|| "unshare user namespace".into())?;
            chan.send(&Message::NeedIdMaps)?;
            chan.wait_for(&Message::IdMapsWritten, &mut cgroup_joined)?;
            become_root_in_userns()?;
        }
        let mut flags = CloneFlags::empty();
        for (t, path) in ns {
            if path.is_none()
                && !matches!(*t, LinuxNamespaceType::User | LinuxNamespaceType::Cgroup)
            {
                flags |= clone_flag(*t);
            }
        }
        if !flags.is_empty() {
            unshare(flags).context(|| format!("unshare namespaces {flags:?}"))?;
        }
        if new(LinuxNamespaceType::Time) {
            write_time_offsets(req.spec)?;
        }
        chan.wait_for(&Message::CgroupJoined, &mut cgroup_joined)?;
        if new(LinuxNamespaceType::Cgroup) {
            unshare(CloneFlags::CLONE_NEWCGROUP).context(|| "unshare cgroup namespace".into())?;
        }
        let pid = fork_with(libc::CLONE_PARENT as libc::c_ulong)?;
        if pid == 0 {
            init(req, chan);
        }
        Ok(pid)
    })();
    match result {
        Ok(pid) => {
            let _ = chan.send(&Message::InitPid(pid));
            // SAFETY: _exit skips destructors and atexit handlers that belong to the parent.
            unsafe { libc::_exit(0) }
        }
        Err(e) => fail(chan, e),
    }
}

fn fail(chan: &Channel, e: Error) -> ! {
    // After `start`, no one listens on the channel any more: then the container's
    // own stderr is the only place the error can go (runc does the same).
    if chan.send(&Message::Error(e.to_string())).is_err() {
        eprintln!("berth-runc: {e}");
    }
    // SAFETY: see stage1.
    unsafe { libc::_exit(1) }
}

/// Join every namespace given by path: the user namespace first (it decides what
/// the others may do), the mount namespace last (it changes how paths resolve).
fn join_namespaces(req: &SpawnRequest) -> Result<()> {
    let mut joins: Vec<(LinuxNamespaceType, OwnedFd)> = Vec::new();
    for (t, path) in &req.namespaces {
        if let Some(p) = path {
            let fd = nix::fcntl::open(
                p.as_path(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| {
                Error::sys(
                    format!("opening {} namespace {}", proc_ns_name(*t), p.display()),
                    e,
                )
            })?;
            joins.push((*t, fd));
        }
    }
    let rank = |t: &LinuxNamespaceType| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    };
    joins.sort_by_key(|(t, _)| rank(t));
    for (t, fd) in &joins {
        if *t == LinuxNamespaceType::User && same_ns(fd, "user") {
            continue;
        }
        setns(fd, clone_flag(*t))
            .map_err(|e| Error::sys(format!("joining {} namespace", proc_ns_name(*t)), e))?;
        if *t == LinuxNamespaceType::User {
            become_root_in_userns()?;
        }
    }
    Ok(())
}

/// Is `fd` the namespace this process already is in? (setns to one's own user
/// namespace fails.)
fn same_ns(fd: &OwnedFd, name: &str) -> bool {
    let theirs = nix::sys::stat::fstat(fd).ok();
    let ours = nix::sys::stat::stat(format!("/proc/self/ns/{name}").as_str()).ok();
    matches!((theirs, ours), (Some(a), Some(b)) if a.st_ino == b.st_ino && a.st_dev == b.st_dev)
}

fn become_root_in_userns() -> Result<()> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .context(|| "setgid 0 in the user namespace (is 0 mapped?)".into())?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .context(|| "setuid 0 in the user namespace (is 0 mapped?)".into())
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref());
    let mut text = String::new();
    for (clock, off) in offsets.into_iter().flatten() {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        fs::write("/proc/self/timens_offsets", text).map_err(|e| Error::InvalidField {
            field: "linux.timeOffsets".into(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Init: in all the container's namespaces. Never returns: it execs the
/// container's program or exits after reporting why it could not.
fn init(req: &SpawnRequest, chan: &Channel) -> ! {
    let err = match init_inner(req, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    fail(chan, err)
}

enum Never {}

fn init_inner(req: &SpawnRequest, chan: &Channel) -> Result<Never> {
    let process = req.process;
    setsid().context(|| "setsid".into())?;
    if let Some(adj) = process.oom_score_adj() {
        fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            Error::InvalidField {
                field: "process.oomScoreAdj".into(),
                reason: format!("{adj}: {e} (lowering it needs CAP_SYS_RESOURCE)"),
            }
        })?;
    }
    let mut hook_state = Vec::new();
    match &req.stage {
        Stage::Create {
            rootfs,
            cgroup_path,
            no_pivot,
            new_keyring,
            ..
        } => {
            if *new_keyring {
                join_session_keyring(req.id)?;
            }
            let ctx = RootfsContext {
                spec: req.spec,
                rootfs,
                cgroup_path,
                in_user_ns: req.in_user_ns(),
                new_cgroup_ns: req.new_ns(LinuxNamespaceType::Cgroup),
            };
            rootfs::prepare(&ctx)?;
            chan.send(&Message::NeedRuntimeHooks)?;
            hook_state = match chan.recv()? {
                Some((Message::HookState(s), _)) => s.into_bytes(),
                Some((Message::Error(e), _)) => return Err(Error::Init(e)),
                _ => return Err(Error::Init("the runtime went away during setup".into())),
            };
            hooks::run(
                Phase::CreateContainer,
                req.spec.hooks().as_ref(),
                &hook_state,
            )?;
            rootfs::pivot(rootfs, *no_pivot)?;
            setup_console(req, true)?;
            rootfs::finalize(req.spec)?;
            set_uts(req.spec)?;
        }
        Stage::Exec => setup_console(req, false)?,
    }
    if let Some(p) = req
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        // SAFETY: personality takes a plain integer.
        if unsafe { libc::personality(personality_value(p)?) } < 0 {
            return Err(Error::io("personality", std::io::Error::last_os_error()));
        }
    }
    set_rlimits(process)?;
    set_io_priority(process)?;

    let nnp = process.no_new_privileges().unwrap_or(false);
    if !nnp {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it before
        // the capabilities go.
        load_seccomp(req, chan)?;
    }
    let caps = CapSets::from_spec(process.capabilities().as_ref())?;
    caps.drop_bounding()?;
    let cwd_early = nix::unistd::chdir(process.cwd()).is_ok();
    switch_user(req, process)?;
    caps.apply()?;
    if !cwd_early || nix::unistd::chdir(process.cwd()).is_err() {
        nix::unistd::chdir(process.cwd()).map_err(|e| Error::InvalidField {
            field: "process.cwd".into(),
            reason: format!("{}: {e}", process.cwd().display()),
        })?;
    }
    if nnp {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::io("no_new_privs", std::io::Error::last_os_error()));
        }
        load_seccomp(req, chan)?;
    }

    let args = process.args().as_deref().unwrap_or_default();
    let env: Vec<&str> = process.env().iter().flatten().map(String::as_str).collect();
    let program = find_program(&args[0], &env)?;
    let argv = cstrings(args.iter().map(String::as_str))?;
    let envp = cstrings(env.iter().copied())?;
    close_inherited_fds(req.preserve_fds)?;

    if let Stage::Create { fifo, .. } = &req.stage {
        chan.send(&Message::Ready)?;
        if let Some(fifo) = fifo {
            wait_for_start(fifo)?;
        }
        hooks::run(
            Phase::StartContainer,
            req.spec.hooks().as_ref(),
            &hook_state,
        )?;
    }
    reset_signals();
    let e = nix::unistd::execve(&program, &argv, &envp).unwrap_err();
    Err(Error::InvalidField {
        field: "process.args".into(),
        reason: format!("exec {}: {e}", program.to_string_lossy()),
    })
}

fn setup_console(req: &SpawnRequest, bind_dev_console: bool) -> Result<()> {
    if !req.process.terminal().unwrap_or(false) {
        return Ok(());
    }
    let socket = req.console_socket.as_ref().ok_or_else(|| {
        Error::InvalidArgument("process.terminal is set but no --console-socket was given".into())
    })?;
    let (slave, path) = console::create(socket, req.process.console_size())?;
    if bind_dev_console {
        rootfs::bind_console(&path)?;
    }
    console::become_stdio(&slave)
}

fn set_uts(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sethostname(h).map_err(|e| Error::InvalidField {
            field: "hostname".into(),
            reason: e.to_string(),
        })?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = CString::new(d).map_err(|_| Error::InvalidField {
            field: "domainname".into(),
            reason: "NUL byte".into(),
        })?;
        // SAFETY: the pointer and length describe a live buffer.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(Error::InvalidField {
                field: "domainname".into(),
                reason: std::io::Error::last_os_error().to_string(),
            });
        }
    }
    Ok(())
}

pub fn personality_value(p: &LinuxPersonality) -> Result<libc::c_ulong> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Unsupported {
            field: "linux.personality.flags".into(),
            reason: "personality flags are not supported".into(),
        });
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

fn rlimit_resource(t: PosixRlimitType) -> Result<libc::__rlimit_resource_t> {
    use PosixRlimitType as T;
    Ok(match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    })
}

fn set_rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(rl.typ())?, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::InvalidField {
                field: "process.rlimits".into(),
                reason: format!(
                    "{:?} soft={} hard={}: {e}{}",
                    rl.typ(),
                    rl.soft(),
                    rl.hard(),
                    if e.raw_os_error() == Some(libc::EPERM) {
                        " (raising a hard limit needs CAP_SYS_RESOURCE)"
                    } else {
                        ""
                    }
                ),
            });
        }
    }
    Ok(())
}

fn set_io_priority(process: &Process) -> Result<()> {
    let Some(p) = process.io_priority() else {
        return Ok(());
    };
    use oci_spec::runtime::IOPriorityClass as C;
    let class: i64 = match p.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::InvalidField {
            field: "process.ioPriority.priority".into(),
            reason: format!("{} is outside 0..7", p.priority()),
        });
    }
    let value = (class << 13) | p.priority();
    // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, value) takes integers only.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) } != 0 {
        return Err(Error::InvalidField {
            field: "process.ioPriority".into(),
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(())
}

fn load_seccomp(req: &SpawnRequest, chan: &Channel) -> Result<()> {
    let Some(program) = req.seccomp else {
        return Ok(());
    };
    if let Some(fd) = program.load()? {
        chan.send_with_fd(
            &Message::SeccompListener,
            Some(std::os::fd::AsFd::as_fd(&fd)),
        )?;
    }
    Ok(())
}

fn switch_user(req: &SpawnRequest, process: &Process) -> Result<()> {
    let user = process.user();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    let setgroups_allowed = !req.in_user_ns()
        || fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() != "deny")
            .unwrap_or(true);
    if setgroups_allowed {
        nix::unistd::setgroups(&groups).map_err(|e| Error::InvalidField {
            field: "process.user.additionalGids".into(),
            reason: e.to_string(),
        })?;
    } else if !groups.is_empty() {
        return Err(Error::InvalidField {
            field: "process.user.additionalGids".into(),
            reason: "setgroups is denied in this user namespace".into(),
        });
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| Error::InvalidField {
        field: "process.user.gid".into(),
        reason: format!("{}: {e}", user.gid()),
    })?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| Error::InvalidField {
        field: "process.user.uid".into(),
        reason: format!("{}: {e}", user.uid()),
    })?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// Resolve the program like execvp would, with the container's PATH, so a
/// missing program fails `create` rather than the later `start`.
fn find_program(arg0: &str, env: &[&str]) -> Result<CString> {
    let not_found = |why: &str| Error::InvalidField {
        field: "process.args".into(),
        reason: format!("exec: {arg0:?}: {why}"),
    };
    // Executable for the container's user (this runs after the user switch), as
    // execve will judge it: a program that cannot run fails `create`, not `start`.
    let executable = |p: &Path| -> Option<std::io::Result<()>> {
        let md = fs::metadata(p).ok()?;
        if md.is_dir() {
            return Some(Err(std::io::Error::from_raw_os_error(libc::EISDIR)));
        }
        let c = CString::new(p.as_os_str().as_bytes()).ok()?;
        // SAFETY: faccessat reads a NUL-terminated path.
        let r =
            unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
        Some(if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        })
    };
    if arg0.contains('/') {
        return match executable(Path::new(arg0)) {
            None => Err(not_found("no such file or directory")),
            // Worded as runc words them: podman maps these phrases to exit codes 126/127.
            Some(Err(e)) => Err(not_found(match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => "permission denied",
                Some(libc::EISDIR) => "is a directory",
                Some(libc::ENOENT) => "no such file or directory",
                _ => "cannot be executed",
            })),
            Some(Ok(())) => CString::new(arg0).map_err(|_| not_found("NUL byte")),
        };
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Some(Ok(())) = executable(&candidate) {
            if candidate.is_file() {
                return CString::new(candidate.as_os_str().as_bytes())
                    .map_err(|_| not_found("NUL byte"));
            }
        }
    }
    Err(not_found("executable file not found in $PATH"))
}

fn cstrings<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<CString>> {
    items
        .map(|s| {
            CString::new(s).map_err(|_| Error::InvalidArgument(format!("{s:?} holds a NUL byte")))
        })
        .collect()
}

/// No descriptor of the runtime's crosses into the container: everything from
/// 3 + preserve_fds up is closed at exec; the preserved ones stay open.
fn close_inherited_fds(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as i32 {
        // SAFETY: clearing FD_CLOEXEC on a descriptor number; harmless if it is closed.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    let first = 3 + preserve;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Older kernels: walk /proc/self/fd.
        for entry in fs::read_dir("/proc/self/fd")
            .context(|| "/proc/self/fd".into())?
            .flatten()
        {
            if let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            {
                if fd >= first as i32 {
                    // SAFETY: only sets FD_CLOEXEC.
                    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
            }
        }
    }
    Ok(())
}

/// Block until `start` writes to the exec fifo.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    // SAFETY: dup gives this File its own descriptor; the original stays owned by `fifo`.
    let mut f = unsafe { fs::File::from_raw_fd(libc::dup(fifo.as_raw_fd())) };
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Init("exec fifo closed before start".into())),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("waiting for start", e)),
        }
    }
}

fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).map_err(|_| Error::InvalidId(id.into()))?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a NUL-terminated string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // No keyring support (or quota in a user namespace): the container simply
        // shares none; this is how runc behaves too.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EDQUOT) | Some(libc::EACCES)
        ) {
            return Err(Error::io("joining a session keyring", e));
        }
    }
    Ok(())
}

/// Paths to the namespaces of a running process, for `exec`.
pub fn namespaces_of(
    pid: i32,
    types: &[LinuxNamespaceType],
) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    types
        .iter()
        .map(|t| {
            (
                *t,
                Some(PathBuf::from(format!(
                    "/proc/{pid}/ns/{}",
                    proc_ns_name(*t)
                ))),
            )
        })
        .collect()
}

/// The program starts with every signal at its default and none blocked: ignored
/// dispositions survive execve, and the runtime, a Rust program, ignores SIGPIPE (so would
/// `yes | head` in the container, which then never ends).
fn reset_signals() {
    use nix::sys::signal::{
        sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
    };
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL has no handler to be unsafe about.
        let _ = unsafe { sigaction(sig, &default) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}
