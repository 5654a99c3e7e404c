//! The OCI runtimes the callers are pointed at, and the callers themselves.
//!
//! `RUNTIMES=runc` or `RUNTIMES=berth-runc` (comma separated; default both)
//! selects runtimes. berth-runc is `$BERTH_RUNC`, or built once per test
//! binary with `cargo build -p berth-runc`; if it cannot be had its tests
//! fail. runc is the reference: missing, its tests skip loudly.
//!
//! A missing caller (podman, conmon, containerd, ctr, the shim) fails the test
//! with the package to install, unless `BERTH_SKIP_CALLERS=1`, which turns it
//! into a loud skip.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Result};
use berth_runtime_tests::Availability;

use crate::command::find_program;

pub use berth_runtime_tests::{BERTH_RUNC, RUNC};

/// An OCI runtime binary, by the name printed in every failure.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: &'static str,
    /// Absolute: podman and containerd get it as `--runtime` / `--runc-binary`.
    pub bin: PathBuf,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Returned by a scenario that cannot run here (not selected, or a caller
/// missing under `BERTH_SKIP_CALLERS=1`): a loud skip, not a pass.
#[derive(Debug)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

impl std::error::Error for Skip {}

/// A caller program and the Debian package that brings it.
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

pub const PODMAN: &[Tool] = &[
    Tool {
        program: "podman",
        package: "podman",
    },
    Tool {
        program: "conmon",
        package: "conmon",
    },
];

pub const CONTAINERD: &[Tool] = &[
    Tool {
        program: "containerd",
        package: "containerd",
    },
    Tool {
        program: "ctr",
        package: "containerd",
    },
    Tool {
        program: "containerd-shim-runc-v2",
        package: "containerd",
    },
];

/// The runtime called `name`: an error for berth-runc that cannot be built,
/// a [`Skip`] for one not selected or a runc not installed.
/// The runtime `name` as the conformance harness selects and builds it
/// (`RUNTIMES`, `BERTH_RUNC`, `cargo build -p berth-runc`), or why it is skipped.
pub fn runtime(name: &'static str) -> Result<Runtime> {
    match berth_runtime_tests::runtime(name) {
        Availability::Ready(rt) => Ok(Runtime {
            name,
            bin: rt.bin.clone(),
        }),
        Availability::Skip(reason) => Err(Skip(reason).into()),
    }
}

pub fn require(tools: &[Tool]) -> Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|tool| find_program(tool.program).is_none())
        .map(|tool| format!("{} (apt-get install {})", tool.program, tool.package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = format!("caller tools missing: {}", missing.join(", "));
    if std::env::var("BERTH_SKIP_CALLERS").as_deref() == Ok("1") {
        Err(Skip(format!("{what}; BERTH_SKIP_CALLERS=1")).into())
    } else {
        bail!("{what}; install them, or set BERTH_SKIP_CALLERS=1 to skip these tests")
    }
}

/// Prints a skip where a person running `cargo test` sees it: straight to
/// stderr, past the test harness's output capture.
pub fn skip_loudly(runtime: &str, test: &str, reason: &str) {
    berth_runtime_tests::runtime::skip_loudly(runtime, &format!("callers::{test}"), reason);
}

pub use berth_runtime_tests::runtime::workspace_dir;

/// Runs one scenario for one runtime: skips loudly where it cannot run,
/// panics with the runtime's name on any failure.
pub fn run_scenario(
    name: &'static str,
    test: &str,
    tools: &[Tool],
    scenario: fn(&Runtime) -> Result<()>,
) {
    let result = runtime(name).and_then(|rt| {
        require(tools)?;
        scenario(&rt)
    });
    if let Err(error) = result {
        match error.downcast_ref::<Skip>() {
            Some(Skip(reason)) => skip_loudly(name, test, reason),
            None => panic!("[{name}] callers::{test} failed: {error:#}"),
        }
    }
}
