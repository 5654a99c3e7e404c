//! Seccomp for berth's OCI runtime: a bundle's `linux.seccomp`, turned into a kernel filter.
//!
//! A profile goes through three steps as `berth-runc create` runs a container:
//!
//! 1. **Compile, in the runtime's parent, before any fork.** [`SeccompProgram::compile`] checks
//!    the profile (actions and their errno values, architectures, argument comparisons, filter
//!    flags against this kernel, notify settings), has libseccomp build the filter and exports
//!    the finished BPF program into memory. A bad profile fails here with an error naming the
//!    field, before anything was forked or mounted. Syscall names libseccomp cannot resolve are
//!    skipped, as runc does, and listed by [`SeccompProgram::unknown_syscalls`] for a debug log.
//! 2. **Load, in the container init, right before execve.** [`SeccompProgram::load`] is a
//!    single `seccomp(SECCOMP_SET_MODE_FILTER)` call on the program from step 1, which fork
//!    copied: no libseccomp, no allocation, no locks, so it is safe in a child forked from a
//!    multi-threaded parent. The init must have set `no_new_privs` or still hold
//!    `CAP_SYS_ADMIN`. The listener fd it may return is close-on-exec.
//! 3. **Hand the notify listener to the agent.** When a rule uses `SCMP_ACT_NOTIFY`, `load`
//!    returns the listener fd. The init passes it to the runtime parent over the socket it
//!    already has (so `write` and `sendmsg` may not be notified, see
//!    [`NOTIFY_HANDOFF_SYSCALLS`]), and the parent gives it to the agent at `listenerPath` with
//!    [`send_listener_fd`] and [`SeccompProgram::process_state_json`].
//!
//! Cost, measured on the 2-core test machine with podman 4.3's default profile (437 syscall
//! names for x86-64, x86 and x32, 1426 BPF instructions; `tests/fixtures/`, timed by the
//! `podman_profile` test): libseccomp needs about 20 ms to compile it, most of it generating
//! the BPF, which is more than the whole 15 ms budget of a container run. So the runtime should
//! call [`SeccompProgram::compile_cached`], which keeps compiled programs in a directory it
//! owns: a hit costs about 0.1 ms (0.5 ms in a debug build). Loading costs about 0.3 ms in the
//! child, nearly all of it the kernel checking, converting and pre-evaluating the program (it
//! precomputes which syscalls the filter always allows, so those skip it at run time).
//!
//! [`known_actions`], [`known_operators`], [`known_archs`], [`known_flags`] and
//! [`supported_flags`] describe this crate for `berth-runc features`.

mod cache;
mod error;
mod features;
mod listener;
mod program;

pub use cache::CacheOutcome;
pub use error::{LibseccompError, SeccompError};
pub use features::{
    known_actions, known_archs, known_flags, known_operators, libseccomp_version, supported_archs,
    supported_flags, ACTIONS, FLAGS, OPERATORS,
};
pub use listener::send_listener_fd;
pub use program::{SeccompProgram, BPF_MAXINSNS, MAX_ERRNO, NOTIFY_HANDOFF_SYSCALLS};
