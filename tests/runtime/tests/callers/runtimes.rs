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
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::command::{self, find_program};

pub const BERTH_RUNC: &str = "berth-runc";
pub const RUNC: &str = "runc";

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
pub fn runtime(name: &'static str) -> Result<Runtime> {
    let selected = std::env::var("RUNTIMES").unwrap_or_default();
    if !selected.trim().is_empty() && !selected.split(',').any(|w| w.trim() == name) {
        return Err(Skip(format!("not selected by RUNTIMES={selected:?}")).into());
    }
    let bin = match name {
        BERTH_RUNC => berth_runc_binary().map_err(|e| anyhow::anyhow!("{e}"))?,
        RUNC => match find_program("runc") {
            Some(bin) => bin,
            None => return Err(Skip("runc is not installed (apt-get install runc)".into()).into()),
        },
        other => bail!("unknown runtime {other:?}"),
    };
    let bin = bin
        .canonicalize()
        .with_context(|| format!("[{name}] {} does not exist", bin.display()))?;
    Ok(Runtime { name, bin })
}

/// Checks that every tool is installed: an error naming the package, or a
/// [`Skip`] under `BERTH_SKIP_CALLERS=1`.
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
    let line = format!("\n*** SKIP [{runtime}] callers::{test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The workspace this crate lives in.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$BERTH_RUNC`, or `cargo build -p berth-runc` once per test binary and
/// `<target>/debug/berth-runc`.
fn berth_runc_binary() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("BERTH_RUNC") {
            let bin = PathBuf::from(bin);
            return if bin.is_file() {
                Ok(bin)
            } else {
                Err(format!(
                    "[{BERTH_RUNC}] BERTH_RUNC={} is not a file",
                    bin.display()
                ))
            };
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "berth-runc"])
            .current_dir(workspace_dir());
        let outcome = command::run(build)
            .map_err(|e| format!("cannot run `cargo build -p berth-runc`: {e:#}"))?;
        if !outcome.success() {
            return Err(format!(
                "[{BERTH_RUNC}] cannot be tested: set BERTH_RUNC=/path/to/berth-runc or \
                 RUNTIMES=runc; {outcome}"
            ));
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|dir| workspace_dir().join(dir))
            .unwrap_or_else(|| workspace_dir().join("target"));
        Ok(target.join("debug/berth-runc"))
    })
    .clone()
}

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
