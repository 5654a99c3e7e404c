//! `docker exec`: another process in a running container, with a monitor of its own.
//!
//! Exec instances live in memory only, as in Docker: created by `POST
//! /containers/{id}/exec`, run by `POST /exec/{id}/start`, inspected until their container
//! goes. The process is the container's own process (from its bundle) with the exec's
//! command, environment, user and working directory.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bollard_stubs::models::ExecConfig;
use oci_spec::runtime::{Process, Spec};

use crate::error::{ContainerError, Result};
use crate::monitor::{self, Conn, Launch, Mode};
use crate::service::ContainerService;

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
    pub done: tokio::sync::watch::Sender<bool>,
}

impl Exec {
    pub fn state(&self) -> ExecState {
        self.state.lock().expect("exec lock").clone()
    }

    /// Records the exit the monitor reported (its EXIT frame's payload).
    pub fn record_exit(&self, payload: &[u8]) {
        let status =
            berth_monitor::protocol::ExitStatus::parse(&String::from_utf8_lossy(payload)).ok();
        let mut st = self.state.lock().expect("exec lock");
        st.running = false;
        st.pid = 0;
        st.exit_code = Some(status.map(|s| exit_code(&s)).unwrap_or(126));
    }
}

/// Docker's exit code for an ended process (a failed start reports -1 in the record: 126).
fn exit_code(s: &berth_monitor::protocol::ExitStatus) -> i64 {
    if s.exit_code < 0 {
        126
    } else {
        s.exit_code as i64
    }
}

impl ContainerService {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, config: ExecConfig) -> Result<String> {
        let c = self.get(name)?;
        match c.status() {
            crate::record::Status::Running => {}
            crate::record::Status::Paused => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                )))
            }
            _ => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        if config.cmd.as_ref().map(|c| c.is_empty()).unwrap_or(true) {
            return Err(ContainerError::Invalid("No exec command specified".into()));
        }
        let id = crate::names::new_id();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
            done: tokio::sync::watch::Sender::new(false),
        });
        self.execs
            .lock()
            .expect("execs lock")
            .insert(id.clone(), exec);
        let rec = c.record();
        let cmd = exec_cmd(&self.get_exec(&id)?.config);
        self.emit(
            &rec,
            &format!("exec_create: {cmd}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// The exec `id` if it can start now: not started before, its container running.
    pub fn exec_startable(&self, id: &str) -> Result<Arc<Exec>> {
        let exec = self.get_exec(id)?;
        if exec.state().started {
            return Err(ContainerError::Conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        let c = self.get(&exec.container_id)?;
        if c.status() != crate::record::Status::Running {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        Ok(exec)
    }

    pub fn get_exec(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerError::ExecNotFound(id.to_string()))
    }

    pub fn exec_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("x").join(id)
    }

    /// `POST /exec/{id}/start`: starts the process and returns a connection to its monitor
    /// (output and exit when `attach`). The exec's state is kept up to date in the background.
    /// Frames that came with the start's answer are returned alongside the connection.
    #[allow(clippy::type_complexity)]
    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        attach: bool,
    ) -> Result<Option<(Conn, Vec<(u8, Vec<u8>)>)>> {
        let exec = self.get_exec(id)?;
        {
            let mut st = exec.state.lock().expect("exec lock");
            if st.started {
                return Err(ContainerError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
        }
        let c = self.get(&exec.container_id)?;
        if c.status() != crate::record::Status::Running {
            return Err(ContainerError::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let dir = self.exec_dir(id);
        let svc = self.clone();
        let e2 = exec.clone();
        let d2 = dir.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(&d2)
                .map_err(ContainerError::io("creating the exec's directory"))?;
            let process = svc.exec_process(&e2)?;
            let path = d2.join("process.json");
            let bytes = serde_json::to_vec(&process)
                .map_err(|e| ContainerError::Invalid(format!("encoding the exec process: {e}")))?;
            crate::record::write_atomic(&path, &bytes)?;
            monitor::launch(&Launch {
                binary: &svc.cfg.monitor,
                runtime: &svc.cfg.runtime,
                id: &e2.container_id,
                dir: &d2,
                mode: Mode::Exec { process: &path },
                terminal: e2.config.tty == Some(true),
                stdin: e2.config.attach_stdin == Some(true),
            })?;
            Ok(())
        })
        .await
        .map_err(|e| ContainerError::Runtime(e.to_string()))??;

        let mut flags = monitor::FLAG_EXIT;
        if attach {
            if exec.config.attach_stdout != Some(false) {
                flags |= monitor::FLAG_STDOUT;
            }
            if exec.config.attach_stderr != Some(false) {
                flags |= monitor::FLAG_STDERR;
            }
        }
        let mut conn = Conn::connect(&dir, flags)
            .await
            .map_err(ContainerError::io("connecting to the exec's monitor"))?;
        let mut early = Vec::new();
        let pid = match conn.start(&mut early).await {
            Ok(p) => p,
            Err(e) => {
                let mut st = exec.state.lock().expect("exec lock");
                // Docker's codes: 127 not found, 126 not runnable.
                st.exit_code =
                    Some(crate::service::start_failure_code(&e.to_string()).clamp(126, 127));
                let _ = std::fs::remove_dir_all(&dir);
                exec.done.send_replace(true);
                return Err(e);
            }
        };
        {
            let mut st = exec.state.lock().expect("exec lock");
            st.running = true;
            st.pid = pid;
        }
        self.emit(
            &c.record(),
            &format!("exec_start: {}", exec_cmd(&exec.config)),
            &[("execID", id.to_string())],
        );
        // The exit is watched on a connection of its own, so an attached client that goes
        // away early does not lose it.
        let watcher = Conn::connect(&dir, monitor::FLAG_EXIT).await;
        let svc = self.clone();
        let e2 = exec.clone();
        tokio::spawn(async move {
            if let Ok(mut w) = watcher {
                while let Ok(Some((kind, _))) = w.reader.next().await {
                    if kind == monitor::FRAME_EXIT {
                        break;
                    }
                }
            }
            svc.exec_finished(&e2).await;
        });
        Ok(if attach { Some((conn, early)) } else { None })
    }

    async fn exec_finished(&self, exec: &Exec) {
        let dir = self.exec_dir(&exec.id);
        let mut status = monitor::read_exit(&dir);
        for _ in 0..50 {
            if status.is_some() || !monitor::alive(&dir) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            status = monitor::read_exit(&dir);
        }
        {
            let mut st = exec.state.lock().expect("exec lock");
            st.running = false;
            st.pid = 0;
            st.exit_code = Some(status.map(|s| exit_code(&s)).unwrap_or(126));
        }
        let _ = std::fs::remove_dir_all(&dir);
        if let Ok(c) = self.get(&exec.container_id) {
            let code = exec.state().exit_code.unwrap_or(0);
            self.emit(
                &c.record(),
                "exec_die",
                &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
            );
        }
        exec.done.send_replace(true);
    }

    /// The exec's OCI process: the container's, with the exec's command, env, user, cwd.
    fn exec_process(&self, exec: &Exec) -> Result<Process> {
        let bundle = self.monitor_dir(&exec.container_id).join("config.json");
        let spec = Spec::load(&bundle)
            .map_err(|e| ContainerError::Runtime(format!("reading {}: {e}", bundle.display())))?;
        let mut p = spec
            .process()
            .clone()
            .ok_or_else(|| ContainerError::Runtime("the container's spec has no process".into()))?;
        let cfg = &exec.config;
        p.set_args(cfg.cmd.clone());
        p.set_terminal(Some(cfg.tty == Some(true)));
        p.set_console_size(crate::spec::console_size(
            cfg.console_size.as_deref(),
            cfg.tty == Some(true),
        ));
        let mut env = p.env().clone().unwrap_or_default();
        for kv in cfg.env.iter().flatten() {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        if cfg.tty == Some(true) && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p.set_env(Some(env));
        if let Some(wd) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
            p.set_cwd(wd.into());
        }
        if let Some(user) = cfg.user.as_deref().filter(|u| !u.is_empty()) {
            let rec = self.get(&exec.container_id)?.record();
            let root = self.rootfs_dir(&rec.id);
            let groups = rec.host_config.group_add.clone().unwrap_or_default();
            let u = crate::spec::user::resolve(&root, user, &groups)?;
            let mut pu = p.user().clone();
            pu.set_uid(u.uid);
            pu.set_gid(u.gid);
            pu.set_additional_gids(Some(u.additional_gids));
            p.set_user(pu);
        }
        if cfg.privileged == Some(true) {
            let uid = p.user().uid();
            p.set_capabilities(Some(crate::spec::privileged_capabilities(uid)?));
        }
        Ok(p)
    }
}

/// The exec's command as Docker's events show it.
fn exec_cmd(cfg: &ExecConfig) -> String {
    cfg.cmd.clone().unwrap_or_default().join(" ")
}
