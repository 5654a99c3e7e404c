//! `create`: from a bundle to an init process waiting for `start`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use berth_cgroups::CgroupManager;
use berth_seccomp::SeccompProgram;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxNamespaceType, LinuxResources};

use super::Container;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Phase};
use crate::process::{spawn, SpawnHooks, SpawnRequest, Stage};
use crate::spec::Bundle;
use crate::state::{
    now_rfc3339, proc_start_time, Record, StateRoot, Status, CONFIG_FILE, EXEC_FIFO,
};

#[derive(Debug, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// An already connected console socket (`run` in the foreground relays the
    /// terminal itself).
    pub console_fd: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Start the program as soon as it is set up, with no exec fifo and no
    /// separate `start` (what `run` does); poststart hooks are the caller's.
    pub start_now: bool,
}

/// Undo a half-made container if anything fails before `create` returns.
struct Cleanup<'a> {
    root: &'a StateRoot,
    id: &'a str,
    cgroup: Option<CgroupManager>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        let _ = self.root.remove(self.id);
    }
}

pub fn create(root: &StateRoot, mut opts: CreateOptions) -> Result<Container> {
    crate::state::validate_id(&opts.id)?;
    // Everything that can be checked is checked before anything is made.
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let process = spec.process().as_ref().expect("validated");
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| SeccompProgram::compile_cached(s, &root.seccomp_cache()).map(|(p, _)| p))
        .transpose()?;
    let cgroup = CgroupManager::new(linux.cgroups_path().as_deref(), &opts.id)?;
    let console_socket = connect_console(
        process.terminal().unwrap_or(false),
        opts.console_socket.as_deref(),
        opts.console_fd.take(),
    )?;

    let dir = root.reserve(&opts.id)?;
    let mut cleanup = Cleanup {
        root,
        id: &opts.id,
        cgroup: None,
        armed: true,
    };
    std::fs::write(dir.join(CONFIG_FILE), &bundle.raw)
        .context(|| format!("writing {}", dir.display()))?;
    if cgroup.exists() && !cgroup.pids()?.is_empty() {
        return Err(Error::InvalidField {
            field: "linux.cgroupsPath".into(),
            reason: format!("{} is already in use by other processes", cgroup.path()),
        });
    }
    cgroup.create()?;
    cleanup.cgroup = Some(cgroup.clone());
    cgroup.apply(&with_default_devices(linux))?;

    let fifo = if opts.start_now {
        None
    } else {
        Some(make_exec_fifo(&dir.join(EXEC_FIFO))?)
    };

    let mut record = Record {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: now_rfc3339(),
        owner: String::new(),
        cgroup_path: cgroup.path().to_owned(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        has_hooks: spec.hooks().is_some(),
    };
    let namespaces = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| (n.typ(), n.path().clone()))
        .collect::<Vec<_>>();
    let request = SpawnRequest {
        id: &opts.id,
        spec,
        process,
        namespaces,
        stage: Stage::Create {
            rootfs: bundle.rootfs.clone(),
            cgroup_path: cgroup.path().to_owned(),
            no_pivot: opts.no_pivot,
            new_keyring: !opts.no_new_keyring,
            fifo,
        },
        console_socket,
        seccomp: seccomp.as_ref(),
        preserve_fds: opts.preserve_fds,
        cgroup: &cgroup,
    };
    let mut parent_hooks = CreateHooks {
        record: &mut record,
        spec,
    };
    let spawned = spawn(&request, &mut parent_hooks)?;
    record.pid = spawned.pid;
    record.pid_start_time = proc_start_time(spawned.pid).unwrap_or(0);
    root.save(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, spawned.pid)?;
    }
    cleanup.armed = false;
    drop(cleanup);
    Ok(Container {
        root: root.clone(),
        record,
    })
}

fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::sys(format!("mkfifo {}", path.display()), e))?;
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("opening {}", path.display()), e))
}

struct CreateHooks<'a> {
    record: &'a mut Record,
    spec: &'a oci_spec::runtime::Spec,
}

impl SpawnHooks for CreateHooks<'_> {
    fn runtime_hooks(&mut self, init_pid: i32) -> Result<String> {
        self.record.pid = init_pid;
        let state =
            serde_json::to_vec(&self.record.oci_state(Status::Creating)).expect("serializes");
        hooks::run(Phase::Prestart, self.spec.hooks().as_ref(), &state)?;
        hooks::run(Phase::CreateRuntime, self.spec.hooks().as_ref(), &state)?;
        Ok(serde_json::to_string(&self.record.oci_state(Status::Created)).expect("serializes"))
    }

    fn seccomp_listener(&mut self, init_pid: i32, fd: OwnedFd) -> Result<()> {
        let linux = self.spec.linux().as_ref();
        let Some(seccomp) = linux.and_then(|l| l.seccomp().as_ref()) else {
            return Ok(());
        };
        let Some(path) = seccomp.listener_path() else {
            return Err(Error::InvalidField {
                field: "linux.seccomp.listenerPath".into(),
                reason: "SCMP_ACT_NOTIFY needs a listenerPath".into(),
            });
        };
        self.record.pid = init_pid;
        let state = serde_json::json!({
            "ociVersion": crate::state::OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": init_pid,
            "metadata": seccomp.listener_metadata().clone().unwrap_or_default(),
            "state": self.record.oci_state(Status::Creating),
        });
        let bytes = serde_json::to_vec(&state).expect("serializes");
        berth_seccomp::send_listener_fd(path, std::os::fd::AsFd::as_fd(&fd), &bytes)?;
        Ok(())
    }
}

/// The config's resources, with the device rules every container needs appended
/// (as runc does): mknod of any node, the default devices, ptys, tun, and each
/// device the config itself creates. Rules apply in order, so a config's
/// deny-all followed by these allows exactly these.
pub(crate) fn with_default_devices(linux: &oci_spec::runtime::Linux) -> LinuxResources {
    use oci_spec::runtime::LinuxDeviceType as T;
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let rule = |typ: T, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_owned()));
        r
    };
    rules.push(rule(T::C, None, None, "m"));
    rules.push(rule(T::B, None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(T::C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(T::C, Some(136), None, "rwm"));
    for d in linux.devices().iter().flatten() {
        let typ = if d.typ() == T::U { T::C } else { d.typ() };
        rules.push(rule(typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    res.set_devices(Some(rules));
    res
}

/// Connect to the caller's console socket now, in the runtime's own mount
/// namespace, so init can hand the pty master over it later.
pub(crate) fn connect_console(
    terminal: bool,
    socket: Option<&Path>,
    connected: Option<OwnedFd>,
) -> Result<Option<OwnedFd>> {
    if let Some(fd) = connected {
        return Ok(terminal.then_some(fd));
    }
    match (terminal, socket) {
        (false, Some(_)) => Err(Error::InvalidArgument(
            "--console-socket was given but process.terminal is false".into(),
        )),
        (false, None) => Ok(None),
        (true, None) => Err(Error::InvalidArgument(
            "process.terminal is true: a --console-socket is needed to receive the terminal".into(),
        )),
        (true, Some(p)) => {
            let s = UnixStream::connect(p)
                .context(|| format!("connecting to console socket {}", p.display()))?;
            // Keep it close-on-exec: init closes it after sending the master.
            debug_assert!(s.as_raw_fd() > 2);
            Ok(Some(OwnedFd::from(s)))
        }
    }
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).context(|| path.display().to_string())?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string()).context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).context(|| format!("writing {}", path.display()))
}

/// Types of the namespaces the container has, for `exec` to join.
pub(crate) fn namespace_types(spec: &oci_spec::runtime::Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}
