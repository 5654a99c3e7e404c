//! The one error type of this crate. Each variant names the part of `linux.seccomp` (or the step
//! of loading) that could not be honoured, so `berth-runc create` can print it as it is.

use std::path::PathBuf;

use nix::errno::Errno;
use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};

/// The error libseccomp's bindings return.
pub type LibseccompError = libseccomp::error::SeccompError;

/// Why a seccomp profile could not be compiled, loaded or handed to its agent.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// `defaultAction` is `SCMP_ACT_NOTIFY`: every syscall, including the ones the init makes to
    /// hand the listener fd over, would wait for an agent that does not have the fd yet.
    #[error(
        "linux.seccomp.defaultAction cannot be SCMP_ACT_NOTIFY: the container init could not \
         hand the listener fd to the agent"
    )]
    NotifyAsDefaultAction,

    /// A rule notifies a syscall the init needs, after loading, to hand the listener fd over.
    #[error(
        "linux.seccomp.syscalls[{index}]: SCMP_ACT_NOTIFY cannot be used for {syscall}: the \
         container init uses it to hand the listener fd to the runtime after the filter is loaded"
    )]
    NotifyOnHandoffSyscall {
        /// Position of the rule in `linux.seccomp.syscalls`.
        index: usize,
        /// The syscall name.
        syscall: String,
    },

    /// A rule uses `SCMP_ACT_NOTIFY` but there is nobody to send the listener fd to.
    #[error("linux.seccomp.syscalls[{index}] uses SCMP_ACT_NOTIFY but linux.seccomp.listenerPath is not set")]
    NotifyWithoutListenerPath {
        /// Position of the first notifying rule in `linux.seccomp.syscalls`.
        index: usize,
    },

    /// An errno return value was given for an action that returns none.
    #[error(
        "{field} is {errno_ret} but the action is {action}: only SCMP_ACT_ERRNO and \
         SCMP_ACT_TRACE take a return value"
    )]
    ErrnoRetUnused {
        /// `linux.seccomp.defaultErrnoRet` or `linux.seccomp.syscalls[N].errnoRet`.
        field: String,
        /// The action the value was given with.
        action: LinuxSeccompAction,
        /// The value given.
        errno_ret: u32,
    },

    /// An errno return value the kernel would not return as given.
    #[error(
        "{field} is {errno_ret}, out of range for {action} (SCMP_ACT_ERRNO takes 0..={max_errno}, \
         SCMP_ACT_TRACE 0..={max_trace})",
        max_errno = crate::program::MAX_ERRNO,
        max_trace = u16::MAX
    )]
    ErrnoRetOutOfRange {
        /// `linux.seccomp.defaultErrnoRet` or `linux.seccomp.syscalls[N].errnoRet`.
        field: String,
        /// `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE`.
        action: LinuxSeccompAction,
        /// The value given.
        errno_ret: u32,
    },

    /// A rule with no syscall names.
    #[error("linux.seccomp.syscalls[{index}].names is empty")]
    EmptySyscallNames {
        /// Position of the rule in `linux.seccomp.syscalls`.
        index: usize,
    },

    /// A rule with an empty string among its syscall names.
    #[error("linux.seccomp.syscalls[{index}].names contains an empty name")]
    EmptySyscallName {
        /// Position of the rule in `linux.seccomp.syscalls`.
        index: usize,
    },

    /// An argument comparison on an argument syscalls do not have.
    #[error(
        "linux.seccomp.syscalls[{index}].args: index {arg_index} for {syscall} is out of range \
         (syscalls have arguments 0..=5)"
    )]
    ArgIndexOutOfRange {
        /// Position of the rule in `linux.seccomp.syscalls`.
        index: usize,
        /// The rule's syscall names, comma-separated.
        syscall: String,
        /// The argument index given.
        arg_index: usize,
    },

    /// `valueTwo` given with an operator that does not use it.
    #[error(
        "linux.seccomp.syscalls[{index}].args: valueTwo {value_two} for {syscall} argument \
         {arg_index} is only used by SCMP_CMP_MASKED_EQ, not {op}"
    )]
    ValueTwoUnused {
        /// Position of the rule in `linux.seccomp.syscalls`.
        index: usize,
        /// The rule's syscall names, comma-separated.
        syscall: String,
        /// The argument index.
        arg_index: usize,
        /// The operator given.
        op: LinuxSeccompOperator,
        /// The value given.
        value_two: u64,
    },

    /// The linked libseccomp does not know an architecture from `architectures`.
    #[error(
        "linux.seccomp.architectures: {arch} is not supported by libseccomp {libseccomp_version}"
    )]
    UnsupportedArch {
        /// The architecture.
        arch: Arch,
        /// Version of the linked libseccomp.
        libseccomp_version: String,
        /// What libseccomp said.
        #[source]
        source: LibseccompError,
    },

    /// An architecture whose byte order differs from the native one: one filter cannot hold
    /// both, and the native architecture is always in it.
    #[error(
        "linux.seccomp.architectures: {arch} cannot be filtered on this {native} host: its byte \
         order differs from the native architecture's"
    )]
    ArchByteOrder {
        /// The architecture.
        arch: Arch,
        /// The native architecture.
        native: String,
    },

    /// The running kernel refuses a filter flag from `flags`.
    #[error("linux.seccomp.flags: {flag} is not supported by this kernel: {errno}")]
    UnsupportedFlag {
        /// The flag.
        flag: LinuxSeccompFilterFlag,
        /// What `seccomp(2)` answered when probed with it.
        errno: Errno,
    },

    /// The running kernel refuses the flags this profile needs together (for example
    /// `SCMP_ACT_NOTIFY` needs `SECCOMP_FILTER_FLAG_NEW_LISTENER`, Linux 5.0, and with
    /// `SECCOMP_FILTER_FLAG_TSYNC` also `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`, Linux 5.7).
    #[error("seccomp(2) flags {flags:#x} needed by linux.seccomp are not supported by this kernel: {errno}")]
    UnsupportedFlags {
        /// The `SECCOMP_FILTER_FLAG_*` bits.
        flags: libc::c_ulong,
        /// What `seccomp(2)` answered when probed with them.
        errno: Errno,
    },

    /// libseccomp refused the default action (for example one the kernel does not support).
    #[error("linux.seccomp.defaultAction {action} was refused by libseccomp")]
    DefaultAction {
        /// The action.
        action: LinuxSeccompAction,
        /// What libseccomp said.
        #[source]
        source: LibseccompError,
    },

    /// libseccomp refused a rule.
    #[error("linux.seccomp.syscalls[{index}]: libseccomp refused the {action} rule for {syscall}")]
    Rule {
        /// Position of the rule in `linux.seccomp.syscalls`.
        index: usize,
        /// The syscall name.
        syscall: String,
        /// The rule's action.
        action: LinuxSeccompAction,
        /// What libseccomp said.
        #[source]
        source: LibseccompError,
    },

    /// libseccomp failed to turn the rules into a BPF program.
    #[error("libseccomp could not export the filter as BPF")]
    Export {
        /// What libseccomp said.
        #[source]
        source: LibseccompError,
    },

    /// The memory file the BPF program is exported through could not be used.
    #[error("could not {step} the in-memory file holding the exported BPF program")]
    ExportFile {
        /// What was being done: "create", "rewind" or "read".
        step: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// libseccomp wrote something that is not a whole number of BPF instructions.
    #[error("libseccomp exported {bytes} bytes, not a whole number of 8-byte BPF instructions")]
    ExportTruncated {
        /// The number of bytes written.
        bytes: usize,
    },

    /// The compiled program is longer than the kernel accepts.
    #[error(
        "linux.seccomp compiles to {instructions} BPF instructions; the kernel accepts at most {max}",
        max = crate::program::BPF_MAXINSNS
    )]
    FilterTooLong {
        /// The program's length.
        instructions: usize,
    },

    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed in the container init. `EACCES` means neither
    /// `no_new_privs` was set nor `CAP_SYS_ADMIN` held.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) failed: {errno}")]
    Load {
        /// The `SECCOMP_FILTER_FLAG_*` bits passed.
        flags: libc::c_ulong,
        /// The error.
        errno: Errno,
    },

    /// `SECCOMP_FILTER_FLAG_TSYNC` could not synchronise a thread; the filter was not loaded.
    #[error("linux.seccomp.flags: SECCOMP_FILTER_FLAG_TSYNC could not synchronise thread {tid}")]
    TsyncFailed {
        /// The thread that could not be synchronised.
        tid: i64,
    },

    /// The container process state to send with the listener fd is not what the agent expects.
    #[error("the container process state for the seccomp agent is invalid: {reason}")]
    InvalidProcessState {
        /// What is wrong with it.
        reason: String,
    },

    /// The container process state could not be turned into JSON.
    #[error("could not serialise the container process state for the seccomp agent")]
    SerializeProcessState {
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// Connecting to the agent at `listenerPath` failed.
    #[error("could not connect to the seccomp agent at linux.seccomp.listenerPath {path}")]
    ListenerConnect {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Sending the listener fd or the process state to the agent failed.
    #[error("could not send the seccomp listener fd to the agent at {path}")]
    ListenerSend {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
