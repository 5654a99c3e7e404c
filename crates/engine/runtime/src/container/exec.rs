//! `exec`: run another process inside a running container: same namespaces,
//! same cgroup, same seccomp filter, the capabilities and user it asks for.

use std::path::PathBuf;

use berth_seccomp::SeccompProgram;
use oci_spec::runtime::Process;

use super::create::{connect_console, namespace_types, write_pid_file};
use super::Container;
use crate::error::{Error, Result};
use crate::process::{init::namespaces_of, spawn, SpawnHooks, SpawnRequest, Spawned, Stage};
use crate::state::StateRoot;

#[derive(Debug, Default)]
pub struct ExecOptions {
    pub id: String,
    /// A whole process document (`--process`); otherwise the container's own
    /// process with the overrides below.
    pub process: Option<Process>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<(u32, u32)>,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub cap_add: Vec<String>,
    pub no_new_privs: bool,
    pub console_socket: Option<PathBuf>,
    /// An already connected console socket (see `CreateOptions::console_fd`).
    pub console_fd: Option<std::os::fd::OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

pub fn exec(root: &StateRoot, mut opts: ExecOptions) -> Result<Spawned> {
    let c = Container::load(root, &opts.id)?;
    let status = c.status();
    if !status.can_exec() {
        return Err(c.wrong_state(status, "exec"));
    }
    let spec = c.spec()?;
    let process = build_process(&spec, &opts)?;
    crate::spec::validate_process(&process)?;
    let linux = spec.linux().as_ref();
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| SeccompProgram::compile_cached(s, &root.seccomp_cache()).map(|(p, _)| p))
        .transpose()?;
    let console_socket = connect_console(
        process.terminal().unwrap_or(false),
        opts.console_socket.as_deref(),
        opts.console_fd.take(),
    )?;
    let cgroup = c.cgroup()?;
    let request = SpawnRequest {
        id: &opts.id,
        spec: &spec,
        process: &process,
        namespaces: namespaces_of(c.record.pid, &namespace_types(&spec)),
        stage: Stage::Exec,
        console_socket,
        seccomp: seccomp.as_ref(),
        preserve_fds: opts.preserve_fds,
        cgroup: &cgroup,
    };
    let spawned = spawn(&request, &mut ExecHooks)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, spawned.pid)?;
    }
    Ok(spawned)
}

struct ExecHooks;

impl SpawnHooks for ExecHooks {
    fn runtime_hooks(&mut self, _: i32) -> Result<String> {
        Err(Error::Init("exec does not run create hooks".into()))
    }
    fn seccomp_listener(&mut self, _: i32, _: std::os::fd::OwnedFd) -> Result<()> {
        // runc hands exec'd processes' listeners to no one either: the container's
        // agent got the listener of init, which shares the filter.
        Ok(())
    }
}

fn build_process(spec: &oci_spec::runtime::Spec, opts: &ExecOptions) -> Result<Process> {
    if let Some(p) = &opts.process {
        return Ok(p.clone());
    }
    if opts.args.is_empty() {
        return Err(Error::InvalidArgument(
            "exec needs a command (or --process)".into(),
        ));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(opts.args.clone()));
    p.set_terminal(Some(opts.tty));
    if !opts.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &opts.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some((uid, gid)) = opts.user {
        let mut u = p.user().clone();
        u.set_uid(uid);
        u.set_gid(gid);
        p.set_user(u);
    }
    if !opts.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(opts.additional_gids.clone()));
        p.set_user(u);
    }
    if opts.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !opts.cap_add.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &opts.cap_add {
            let full = if name.starts_with("CAP_") {
                name.clone()
            } else {
                format!("CAP_{name}")
            };
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(full.clone()))
                    .map_err(|_| Error::InvalidArgument(format!("unknown capability {name:?}")))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    _ => caps.set_permitted(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
