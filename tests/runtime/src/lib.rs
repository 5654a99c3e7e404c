//! Conformance harness: the same scenarios judge berth-runc and runc.
//!
//! A scenario is a function from a [`Runtime`] to `anyhow::Result<()>`,
//! written once with [`conformance!`] (`conformance!(name, |rt| { ... })`, a
//! form rustfmt formats), which turns it into one `#[test]` per
//! runtime (`<scenario>::berth_runc` and `<scenario>::runc`). So a test that
//! fails only for berth-runc points at berth, not at the test.
//!
//! A scenario's life:
//! 1. [`Bundle::new`] copies a busybox rootfs (built once by
//!    scripts/make-busybox-rootfs.sh) into a fresh directory and writes a
//!    [`Spec`]: `runc spec` output with hostname "berth" and no terminal.
//! 2. [`Container::new`] picks a unique id `berth-t-<test>-<random>`; the
//!    guard runs `delete --force <id>` when dropped, even on panic, then
//!    kills and removes whatever the runtime still left ([`host::sweep`]).
//! 3. The scenario drives the runtime's command line (`create`, `start`,
//!    `state`, `exec`, ...) with `--root` in a private temporary directory,
//!    and checks what the container and the host saw.
//! 4. [`host::assert_nothing_left`] checks that no state, cgroup, mount or
//!    process of the container remains.
//!
//! Selecting runtimes: `RUNTIMES=runc` or `RUNTIMES=berth-runc` (comma
//! separated; default both). berth-runc is `$BERTH_RUNC` or built with
//! `cargo build -p berth-runc`; if it cannot be built its tests fail. runc
//! missing makes its tests skip, loudly, on stderr.

pub mod bundle;
pub mod console;
pub mod container;
pub mod host;
pub mod runtime;
pub mod spec;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use bundle::Bundle;
pub use container::Container;
pub use runtime::{
    run_host, runtime, runtimes, Availability, Io, Outcome, Runtime, BERTH_RUNC, RUNC,
};
pub use spec::Spec;

/// Returned by a scenario that cannot run on this host (a missing host tool):
/// reported as a loud skip for that runtime, not as a pass or a failure.
#[derive(Debug)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

impl std::error::Error for Skip {}

/// Runs `spec` in the foreground (`run`) in a fresh bundle, checks the
/// container left nothing behind, and returns the outcome unchecked: its exit
/// code and output are the container process's.
pub fn run_spec(rt: &Runtime, spec: &Spec, test: &str) -> anyhow::Result<Outcome> {
    let bundle = Bundle::new()?;
    bundle.write_spec(spec)?;
    let container = Container::new(rt, &bundle, test);
    let outcome = container.run()?;
    container.assert_nothing_left()?;
    Ok(outcome)
}

/// [`run_spec`], failing unless the process exits 0; returns its stdout.
pub fn run_spec_stdout(rt: &Runtime, spec: &Spec, test: &str) -> anyhow::Result<String> {
    Ok(run_spec(rt, spec, test)?.ok()?.stdout)
}

/// Runs one scenario for one runtime: skips loudly if the runtime is not
/// available, panics with the runtime's name on any failure.
pub fn run_scenario(name: &'static str, test: &str, scenario: fn(&Runtime) -> anyhow::Result<()>) {
    let rt = match runtime::runtime(name) {
        Availability::Ready(rt) => rt,
        Availability::Skip(reason) => {
            runtime::skip_loudly(name, test, &reason);
            return;
        }
    };
    match catch_unwind(AssertUnwindSafe(|| scenario(&rt))) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => match error.downcast_ref::<Skip>() {
            Some(Skip(reason)) => runtime::skip_loudly(name, test, reason),
            None => panic!("[{name}] {test} failed: {error:#}"),
        },
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(non-text panic)");
            panic!("[{name}] {test} panicked: {message}");
        }
    }
}

/// Declares a scenario once and a `#[test]` for each runtime:
///
/// ```ignore
/// conformance!(hostname_is_set, |rt| {
///     let bundle = Bundle::new()?;
///     ...
///     Ok(())
/// });
/// ```
///
/// makes `hostname_is_set::berth_runc` and `hostname_is_set::runc`.
#[macro_export]
macro_rules! conformance {
    ($(#[$meta:meta])* $name:ident, |$rt:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn scenario($rt: &$crate::Runtime) -> ::anyhow::Result<()> $body

            #[test]
            fn berth_runc() {
                $crate::run_scenario($crate::BERTH_RUNC, stringify!($name), scenario);
            }

            #[test]
            fn runc() {
                $crate::run_scenario($crate::RUNC, stringify!($name), scenario);
            }
        }
    };
}
