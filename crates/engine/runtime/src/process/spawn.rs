//! The parent's side of starting a process in a container (see [`super::channel`]
//! for the conversation).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use berth_cgroups::CgroupManager;
use berth_seccomp::SeccompProgram;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Process, Spec};

use super::channel::{self, Message};
use super::init::{fork_with, stage1};
use crate::error::{Error, Result};

/// What kind of process is being started.
pub enum Stage {
    /// A new container's init: builds the rootfs, then waits on `fifo` for `start`.
    Create {
        rootfs: PathBuf,
        cgroup_path: String,
        no_pivot: bool,
        new_keyring: bool,
        /// The exec fifo, open read-write so opening it never blocks; `None` when
        /// the program starts at once (`run`).
        fifo: Option<OwnedFd>,
    },
    /// A process joining a running container.
    Exec,
}

pub struct SpawnRequest<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    /// Each namespace to be in: `None` creates it, `Some(path)` joins it.
    pub namespaces: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
    pub stage: Stage,
    /// A connected `--console-socket`, when the process has a terminal.
    pub console_socket: Option<OwnedFd>,
    pub seccomp: Option<&'a SeccompProgram>,
    pub preserve_fds: u32,
    pub cgroup: &'a CgroupManager,
}

impl SpawnRequest<'_> {
    pub fn new_ns(&self, t: LinuxNamespaceType) -> bool {
        self.namespaces
            .iter()
            .any(|(typ, p)| *typ == t && p.is_none())
    }
    pub fn in_user_ns(&self) -> bool {
        self.namespaces
            .iter()
            .any(|(typ, _)| *typ == LinuxNamespaceType::User)
    }
}

/// The parent's callbacks for the moments only it can handle.
pub trait SpawnHooks {
    /// Init has its mounts: run prestart and createRuntime hooks; return the
    /// state JSON for init's createContainer and startContainer hooks.
    fn runtime_hooks(&mut self, init_pid: i32) -> Result<String>;
    /// Init loaded a seccomp filter with a notify listener.
    fn seccomp_listener(&mut self, init_pid: i32, fd: OwnedFd) -> Result<()>;
}

pub struct Spawned {
    /// The pid of the container's process, as this (the runtime's) namespace sees it.
    pub pid: i32,
}

/// Start the process. Returns once init is ready for `start` (create) or has
/// exec'd the program (exec). On failure nothing started is left running.
pub fn spawn(req: &SpawnRequest, hooks: &mut dyn SpawnHooks) -> Result<Spawned> {
    let (parent, child) = channel::pair()?;
    let stage1_pid = fork_with(0)?;
    if stage1_pid == 0 {
        drop(parent);
        stage1(req, &child);
    }
    drop(child);
    let mut init_pid: Option<i32> = None;
    let mut stage1_alive = true;
    let result = (|| -> Result<i32> {
        req.cgroup.add_pid(stage1_pid)?;
        parent.send(&Message::CgroupJoined)?;
        // Stage-1 and init share the socket, so init's first request can overtake
        // stage-1's `InitPid`: requests that need the pid wait until it is known.
        let mut waiting: Vec<(Message, Option<OwnedFd>)> = Vec::new();
        loop {
            let Some((msg, fd)) = parent.recv()? else {
                // Both children closed their ends. For exec that means the program
                // was exec'd (the socket is close-on-exec) with no error reported.
                return match (&req.stage, init_pid) {
                    (Stage::Exec, Some(pid)) => Ok(pid),
                    _ => Err(Error::Init(
                        "the container's init exited during setup".into(),
                    )),
                };
            };
            match msg {
                Message::NeedIdMaps => {
                    write_id_maps(stage1_pid, req.spec)?;
                    parent.send(&Message::IdMapsWritten)?;
                }
                Message::InitPid(pid) => {
                    init_pid = Some(pid);
                    let _ = waitpid(Pid::from_raw(stage1_pid), None);
                    stage1_alive = false;
                    for (m, f) in waiting.drain(..) {
                        if handle_init_message(&parent, hooks, pid, m, f)? {
                            return Ok(pid);
                        }
                    }
                }
                Message::Error(e) => return Err(Error::Init(e)),
                other => match init_pid {
                    Some(pid) => {
                        if handle_init_message(&parent, hooks, pid, other, fd)? {
                            return Ok(pid);
                        }
                    }
                    None => waiting.push((other, fd)),
                },
            }
        }
    })();
    match result {
        Ok(pid) => Ok(Spawned { pid }),
        Err(e) => {
            if let Some(pid) = init_pid {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            if stage1_alive {
                let _ = kill(Pid::from_raw(stage1_pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(stage1_pid), None);
            }
            // The error from init, if one is queued, says more than ours.
            Err(e)
        }
    }
}

/// Handle one request from init; true when init reported ready.
fn handle_init_message(
    parent: &channel::Channel,
    hooks: &mut dyn SpawnHooks,
    pid: i32,
    msg: Message,
    fd: Option<OwnedFd>,
) -> Result<bool> {
    match msg {
        Message::NeedRuntimeHooks => {
            let state = hooks.runtime_hooks(pid)?;
            parent.send(&Message::HookState(state))?;
        }
        Message::SeccompListener => {
            let fd =
                fd.ok_or_else(|| Error::Init("seccomp listener without a descriptor".into()))?;
            hooks.seccomp_listener(pid, fd)?;
        }
        Message::Ready => return Ok(true),
        Message::Error(e) => return Err(Error::Init(e)),
        other => return Err(Error::Init(format!("unexpected message {other:?}"))),
    }
    Ok(false)
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let format = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, field, maps) in [
        (
            "gid_map",
            "linux.gidMappings",
            linux.and_then(|l| l.gid_mappings().as_ref()),
        ),
        (
            "uid_map",
            "linux.uidMappings",
            linux.and_then(|l| l.uid_mappings().as_ref()),
        ),
    ] {
        let text = format(maps);
        std::fs::write(format!("/proc/{pid}/{file}"), &text).map_err(|e| Error::InvalidField {
            field: field.into(),
            reason: format!("writing {:?}: {e}", text.trim_end()),
        })?;
    }
    Ok(())
}
