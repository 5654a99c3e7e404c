//! berth's OCI runtime: the part of berth that turns a bundle (a rootfs and a
//! config.json) into a bounded process.
//!
//! The life of a container, and where each step lives:
//! 1. `create` ([`container::create`]) reads and checks the bundle ([`spec`]),
//!    reserves the state directory ([`state`]), makes the cgroup
//!    ([`berth_cgroups`]), and spawns init ([`process`]): stage-1 enters the
//!    namespaces, init builds the rootfs, the console, the user and its
//!    capabilities, loads seccomp, and blocks on the exec fifo.
//! 2. `start` ([`container::start`]) writes to the fifo: init execs the program.
//! 3. While it runs: `state`, `kill`, `exec`, `pause`/`resume`, `update`, `ps`,
//!    `events` act on it through its pid and its cgroup.
//! 4. When init exits the container is stopped; `delete`
//!    ([`container::delete`]) kills what is left, removes the cgroup and the
//!    state, and runs poststop hooks.
//!
//! The runtime keeps no daemon: every command is a short process that reads the
//! state directory and the kernel.

pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod process;
pub mod selfexe;
pub mod spec;
pub mod spec_default;
pub mod state;

pub use error::{Error, Result};
