//! Lifecycle hooks: programs the config asks to run at fixed points, each fed
//! the container's state JSON on stdin.
//!
//! | phase            | who runs it             | when                                         |
//! |------------------|-------------------------|----------------------------------------------|
//! | prestart         | runtime, host namespaces| during create, after namespaces, before pivot |
//! | createRuntime    | runtime, host namespaces| right after prestart                          |
//! | createContainer  | init, container ns      | before pivot_root                             |
//! | startContainer   | init, container ns      | at start, before the user process runs        |
//! | poststart        | runtime, host namespaces| after start                                   |
//! | poststop         | runtime, host namespaces| at delete                                     |
//!
//! A failing hook before the user process starts fails the operation; failures
//! of poststart and poststop are reported but do not undo what already happened.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    #[allow(deprecated)]
    pub fn hooks(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            Phase::Prestart => hooks.prestart(),
            Phase::CreateRuntime => hooks.create_runtime(),
            Phase::CreateContainer => hooks.create_container(),
            Phase::StartContainer => hooks.start_container(),
            Phase::Poststart => hooks.poststart(),
            Phase::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

const ALL: [Phase; 6] = [
    Phase::Prestart,
    Phase::CreateRuntime,
    Phase::CreateContainer,
    Phase::StartContainer,
    Phase::Poststart,
    Phase::Poststop,
];

/// Every hook of every phase (for validation).
pub fn all(hooks: &Hooks) -> impl Iterator<Item = &Hook> {
    ALL.iter().flat_map(move |p| p.hooks(hooks).iter())
}

/// Run the hooks of one phase in order, stopping at the first failure.
pub fn run(phase: Phase, hooks: Option<&Hooks>, state_json: &[u8]) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    for hook in phase.hooks(hooks) {
        run_one(phase, hook, state_json)?;
    }
    Ok(())
}

fn run_one(phase: Phase, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let fail = |reason: String| Error::Hook {
        phase: phase.name(),
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some([argv0, rest @ ..]) = hook.args().as_deref() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may ignore its stdin and exit early: a broken pipe is fine.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    // Drain stderr on a thread so a chatty hook never blocks on a full pipe.
    let stderr_reader = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
            s
        })
    });
    let status = loop {
        if deadline.is_none() {
            break child.wait().map_err(|e| fail(format!("waiting: {e}")))?;
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(fail(format!("waiting: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let stderr = stderr_reader
        .and_then(|t| t.join().ok())
        .unwrap_or_default();
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    };
    let stderr = stderr.trim();
    Err(fail(if stderr.is_empty() {
        how
    } else {
        format!("{how}: {stderr}")
    }))
}
