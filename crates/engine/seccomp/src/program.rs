//! [`SeccompProgram`]: a `linux.seccomp` profile compiled to a kernel BPF program.
//!
//! Compiling runs libseccomp in the runtime's parent; what is kept is the exported program and
//! the `seccomp(2)` flags, so [`SeccompProgram::load`] in the forked init is a single syscall on
//! memory that fork copied. The libseccomp context is freed before `compile` returns: nothing of
//! libseccomp runs after fork.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::error::SeccompError;

/// The largest `errnoRet` for `SCMP_ACT_ERRNO`: libseccomp wants it below the kernel's
/// `MAX_ERRNO` (4095), the largest value the kernel returns as given.
pub const MAX_ERRNO: u32 = 4094;

/// The longest classic-BPF program the kernel accepts (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

/// Syscalls the container init makes after [`SeccompProgram::load`] to hand the listener fd to
/// the runtime parent (`write` on the sync socket, `sendmsg` with `SCM_RIGHTS`). Notifying them
/// would block the init on an agent that cannot have the fd yet, so `compile` refuses it.
pub const NOTIFY_HANDOFF_SYSCALLS: &[&str] = &["write", "sendmsg"];

/// The errno that `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` return when the profile gives none, as
/// in runc.
const DEFAULT_ERRNO_RET: u32 = libc::EPERM as u32;

/// libseccomp's binary-tree layout is worth it (and safe: libseccomp <= 2.5.4 misbehaves with it
/// on empty filters) above this many syscall names, as runc chose.
const BINARY_TREE_MIN_SYSCALLS: usize = 32;

/// A `linux.seccomp` profile, validated and compiled to the BPF program the kernel will run.
pub struct SeccompProgram {
    /// The exported program.
    pub(crate) instructions: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(2)`, already probed against this kernel.
    pub(crate) kernel_flags: libc::c_ulong,
    /// Whether a rule uses `SCMP_ACT_NOTIFY`, so loading returns a listener fd.
    returns_listener: bool,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
    /// Names libseccomp could not resolve, skipped.
    unknown_syscalls: Vec<String>,
}

impl std::fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeccompProgram")
            .field("instructions", &self.instructions.len())
            .field("kernel_flags", &format_args!("{:#x}", self.kernel_flags))
            .field("returns_listener", &self.returns_listener)
            .field("listener_path", &self.listener_path)
            .field("listener_metadata", &self.listener_metadata)
            .field("unknown_syscalls", &self.unknown_syscalls)
            .finish()
    }
}

impl SeccompProgram {
    /// Validates and compiles `linux.seccomp` in the runtime's parent process, before any fork,
    /// so a bad profile fails early with an error naming the bad field.
    ///
    /// Follows runc where the spec leaves room: `SCMP_ACT_KILL` kills the thread;
    /// `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` without `errnoRet` return `EPERM`; rules whose
    /// action equals the default action are redundant and skipped; a rule that compares the
    /// same argument twice becomes one rule per comparison (they match when any does); syscall
    /// names libseccomp cannot resolve are skipped and listed by [`Self::unknown_syscalls`].
    ///
    /// Refuses what it cannot honour: `errnoRet`/`defaultErrnoRet` on an action that returns
    /// no value, or out of range ([`MAX_ERRNO`] for `SCMP_ACT_ERRNO`, 65535 for
    /// `SCMP_ACT_TRACE`); nonzero `valueTwo` on an operator other than `SCMP_CMP_MASKED_EQ`
    /// (runc ignores it); argument indexes past 5; architectures the linked libseccomp does not
    /// know, or whose byte order differs from the native one; flags this kernel refuses; `SCMP_ACT_NOTIFY` as the default action, on
    /// [`NOTIFY_HANDOFF_SYSCALLS`], or without `listenerPath`.
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` only means something with a listener; it is
    /// passed to the kernel when a rule notifies, as libseccomp does.
    ///
    /// libseccomp takes about 20 ms for podman's default profile; see
    /// [`Self::compile_cached`] to pay that once per profile rather than once per container.
    pub fn compile(seccomp: &LinuxSeccomp) -> Result<Self, SeccompError> {
        let checked = CheckedProfile::check(seccomp)?;
        let (instructions, unknown_syscalls) = checked.build()?;
        Ok(checked.into_program(instructions, unknown_syscalls))
    }

    /// Loads the program into the kernel for the calling thread (all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). Called in the container's init after fork, right before
    /// execve: it is one `seccomp(2)` call and allocates nothing on success.
    ///
    /// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN` (the kernel answers
    /// `EACCES` otherwise). Returns the user-notification listener fd when a rule uses
    /// `SCMP_ACT_NOTIFY`.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let program = libc::sock_fprog {
            // `compile` refused programs longer than BPF_MAXINSNS (4096), which fits in u16.
            len: self.instructions.len() as libc::c_ushort,
            filter: self.instructions.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at `self.instructions`, which lives for the whole call and
        // holds `len` instructions; the kernel only reads it. The flags were probed in `compile`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.kernel_flags,
                &program as *const libc::sock_fprog,
            )
        };
        if ret < 0 {
            return Err(SeccompError::Load {
                flags: self.kernel_flags,
                errno: Errno::last(),
            });
        }
        if self.returns_listener {
            // With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the new listener fd.
            let fd = RawFd::try_from(ret).map_err(|_| SeccompError::Load {
                flags: self.kernel_flags,
                errno: Errno::EBADF,
            })?;
            // SAFETY: the kernel just created `fd` for us and nothing else owns it.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        if ret > 0 {
            // With SECCOMP_FILTER_FLAG_TSYNC a positive return is the thread that could not be
            // synchronised, and the filter was not attached.
            return Err(SeccompError::TsyncFailed { tid: ret });
        }
        Ok(None)
    }

    /// `linux.seccomp.listenerPath`: where the agent for `SCMP_ACT_NOTIFY` listens.
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    /// `linux.seccomp.listenerMetadata`: opaque data for the agent.
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// Whether [`Self::load`] returns a listener fd (a rule uses `SCMP_ACT_NOTIFY`).
    pub fn returns_listener(&self) -> bool {
        self.returns_listener
    }

    /// Syscall names in the profile that libseccomp could not resolve and that were therefore
    /// skipped, sorted, for a debug log.
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown_syscalls
    }

    /// The number of BPF instructions [`Self::load`] gives the kernel.
    pub fn instruction_count(&self) -> usize {
        self.instructions.len()
    }

    /// The `ContainerProcessState` JSON the agent receives with the listener fd: `fds` is
    /// `["seccompFd"]`, `metadata` is `listenerMetadata`, `pid` the container process as the
    /// runtime sees it, and `state` the container's state.
    pub fn process_state_json(
        &self,
        pid: i32,
        state: &oci_spec::runtime::State,
    ) -> Result<Vec<u8>, SeccompError> {
        let mut process_state = oci_spec::runtime::ContainerProcessState::default();
        process_state
            .set_version(state.version().clone())
            .set_fds(vec![oci_spec::runtime::SECCOMP_FD_NAME.to_string()])
            .set_pid(pid)
            .set_metadata(self.listener_metadata.clone())
            .set_state(state.clone());
        serde_json::to_vec(&process_state)
            .map_err(|source| SeccompError::SerializeProcessState { source })
    }
}

/// A profile that passed every check that does not need libseccomp, with what those checks
/// computed. [`SeccompProgram::compile`] builds it with libseccomp; the cache (`cache.rs`) reuses
/// a program built earlier from the same profile.
pub(crate) struct CheckedProfile<'a> {
    pub(crate) seccomp: &'a LinuxSeccomp,
    default_action: ScmpAction,
    rules: Vec<CheckedRule<'a>>,
    returns_listener: bool,
    pub(crate) kernel_flags: libc::c_ulong,
}

/// One entry of `linux.seccomp.syscalls`, converted to libseccomp's terms.
struct CheckedRule<'a> {
    index: usize,
    rule: &'a LinuxSyscall,
    action: ScmpAction,
    conditions: Vec<ScmpArgCompare>,
}

impl<'a> CheckedProfile<'a> {
    /// Runs every check on `seccomp` that needs no libseccomp filter, including asking the
    /// kernel about the flags.
    pub(crate) fn check(seccomp: &'a LinuxSeccomp) -> Result<Self, SeccompError> {
        let default_action = default_action(seccomp)?;
        let syscalls = seccomp.syscalls().as_deref().unwrap_or_default();
        let notify_rule = check_notify(seccomp, syscalls)?;
        let rules = syscalls
            .iter()
            .enumerate()
            .map(|(index, rule)| check_rule(index, rule))
            .collect::<Result<Vec<_>, _>>()?;
        let kernel_flags = kernel_flags(
            seccomp.flags().as_deref().unwrap_or_default(),
            notify_rule.is_some(),
        )?;
        Ok(Self {
            seccomp,
            default_action,
            rules,
            returns_listener: notify_rule.is_some(),
            kernel_flags,
        })
    }

    /// Has libseccomp build the filter and exports it: the program, and the syscall names
    /// libseccomp could not resolve (sorted).
    pub(crate) fn build(&self) -> Result<(Vec<libc::sock_filter>, Vec<String>), SeccompError> {
        let mut filter = ScmpFilterContext::new(self.default_action).map_err(|source| {
            SeccompError::DefaultAction {
                action: self.seccomp.default_action(),
                source,
            }
        })?;
        for &arch in self.seccomp.architectures().as_deref().unwrap_or_default() {
            add_arch(&mut filter, arch)?;
        }
        let name_count: usize = self.rules.iter().map(|r| r.rule.names().len()).sum();
        if name_count > BINARY_TREE_MIN_SYSCALLS {
            // Only the layout of the generated program changes, not what it decides; a
            // libseccomp without the attribute still produces a correct (linear) program.
            let _ = filter.set_ctl_optimize(2);
        }
        let mut unknown_syscalls = Vec::new();
        for rule in &self.rules {
            if rule.action != self.default_action {
                rule.add_to(&mut filter, &mut unknown_syscalls)?;
            }
        }
        unknown_syscalls.sort();
        unknown_syscalls.dedup();
        Ok((export(&filter)?, unknown_syscalls))
    }

    /// The program, from instructions built from this profile.
    pub(crate) fn into_program(
        self,
        instructions: Vec<libc::sock_filter>,
        unknown_syscalls: Vec<String>,
    ) -> SeccompProgram {
        SeccompProgram {
            instructions,
            kernel_flags: self.kernel_flags,
            returns_listener: self.returns_listener,
            listener_path: self.seccomp.listener_path().clone(),
            listener_metadata: self.seccomp.listener_metadata().clone(),
            unknown_syscalls,
        }
    }
}

/// Checks `defaultAction` and `defaultErrnoRet`.
fn default_action(seccomp: &LinuxSeccomp) -> Result<ScmpAction, SeccompError> {
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyAsDefaultAction);
    }
    scmp_action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        || "linux.seccomp.defaultErrnoRet".to_string(),
    )
}

/// Checks that notifying rules can be honoured; returns the index of the first one.
fn check_notify(
    seccomp: &LinuxSeccomp,
    syscalls: &[LinuxSyscall],
) -> Result<Option<usize>, SeccompError> {
    let mut first = None;
    for (index, rule) in syscalls.iter().enumerate() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        first.get_or_insert(index);
        if let Some(name) = rule
            .names()
            .iter()
            .find(|name| NOTIFY_HANDOFF_SYSCALLS.contains(&name.as_str()))
        {
            return Err(SeccompError::NotifyOnHandoffSyscall {
                index,
                syscall: name.clone(),
            });
        }
    }
    match first {
        Some(index) if seccomp.listener_path().is_none() => {
            Err(SeccompError::NotifyWithoutListenerPath { index })
        }
        _ => Ok(first),
    }
}

/// Converts an OCI action and its `errnoRet` to libseccomp's, refusing values it would not
/// return as given. `field` names the errnoRet field for errors.
fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: impl Fn() -> String,
) -> Result<ScmpAction, SeccompError> {
    let value_for = |max: u32| match errno_ret {
        None => Ok(DEFAULT_ERRNO_RET),
        Some(errno_ret) if errno_ret <= max => Ok(errno_ret),
        Some(errno_ret) => Err(SeccompError::ErrnoRetOutOfRange {
            field: field(),
            action,
            errno_ret,
        }),
    };
    let no_value = |scmp: ScmpAction| match errno_ret {
        None => Ok(scmp),
        Some(errno_ret) => Err(SeccompError::ErrnoRetUnused {
            field: field(),
            action,
            errno_ret,
        }),
    };
    match action {
        LinuxSeccompAction::ScmpActErrno => {
            // MAX_ERRNO (4095) fits in i32.
            Ok(ScmpAction::Errno(value_for(MAX_ERRNO)? as i32))
        }
        LinuxSeccompAction::ScmpActTrace => {
            // Checked against u16::MAX just above.
            Ok(ScmpAction::Trace(value_for(u32::from(u16::MAX))? as u16))
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            no_value(ScmpAction::KillThread)
        }
        LinuxSeccompAction::ScmpActKillProcess => no_value(ScmpAction::KillProcess),
        LinuxSeccompAction::ScmpActTrap => no_value(ScmpAction::Trap),
        LinuxSeccompAction::ScmpActNotify => no_value(ScmpAction::Notify),
        LinuxSeccompAction::ScmpActLog => no_value(ScmpAction::Log),
        LinuxSeccompAction::ScmpActAllow => no_value(ScmpAction::Allow),
    }
}

/// libseccomp's token for an OCI architecture.
pub(crate) fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Adds an architecture to the filter, naming it if the linked libseccomp does not know it or
/// cannot put it in one filter with the others.
pub(crate) fn add_arch(filter: &mut ScmpFilterContext, arch: Arch) -> Result<(), SeccompError> {
    filter
        .add_arch(scmp_arch(arch))
        .map(|_| ())
        .map_err(|source| {
            if source.errno() == Some(libseccomp::error::SeccompErrno::EDOM) {
                SeccompError::ArchByteOrder {
                    arch,
                    native: native_arch(),
                }
            } else {
                SeccompError::UnsupportedArch {
                    arch,
                    libseccomp_version: crate::features::libseccomp_version(),
                    source,
                }
            }
        })
}

/// The spec's name for the architecture this runtime runs on.
fn native_arch() -> String {
    let scmp = ScmpArch::native();
    crate::features::ARCHS
        .into_iter()
        .find(|&arch| scmp_arch(arch) == scmp)
        .map_or_else(|| format!("{scmp:?}"), |arch| arch.to_string())
}

/// Checks one entry of `linux.seccomp.syscalls` and converts it to libseccomp's terms.
fn check_rule(index: usize, rule: &LinuxSyscall) -> Result<CheckedRule<'_>, SeccompError> {
    if rule.names().is_empty() {
        return Err(SeccompError::EmptySyscallNames { index });
    }
    if rule.names().iter().any(String::is_empty) {
        return Err(SeccompError::EmptySyscallName { index });
    }
    let action = scmp_action(rule.action(), rule.errno_ret(), || {
        format!("linux.seccomp.syscalls[{index}].errnoRet")
    })?;
    // Checked whether or not the rule turns out redundant or its syscalls unknown here: the
    // profile is wrong wherever it runs.
    let conditions = rule
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|arg| condition(index, rule, arg))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CheckedRule {
        index,
        rule,
        action,
        conditions,
    })
}

impl CheckedRule<'_> {
    /// Adds the rule for each of its syscall names; names libseccomp cannot resolve are
    /// pushed to `unknown_syscalls` instead.
    fn add_to(
        &self,
        filter: &mut ScmpFilterContext,
        unknown_syscalls: &mut Vec<String>,
    ) -> Result<(), SeccompError> {
        let or_conditions =
            compares_an_argument_twice(self.rule.args().as_deref().unwrap_or_default());
        for name in self.rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                unknown_syscalls.push(name.clone());
                continue;
            };
            let refused = |source| SeccompError::Rule {
                index: self.index,
                syscall: name.clone(),
                action: self.rule.action(),
                source,
            };
            if self.conditions.is_empty() {
                filter.add_rule(self.action, syscall).map_err(refused)?;
            } else if or_conditions {
                // libseccomp cannot AND two comparisons of one argument; like runc, each
                // comparison becomes its own rule, so the action applies when any matches.
                for condition in &self.conditions {
                    filter
                        .add_rule_conditional(self.action, syscall, std::slice::from_ref(condition))
                        .map_err(refused)?;
                }
            } else {
                filter
                    .add_rule_conditional(self.action, syscall, &self.conditions)
                    .map_err(refused)?;
            }
        }
        Ok(())
    }
}

/// Whether two comparisons in one rule look at the same argument.
fn compares_an_argument_twice(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = [false; 6];
    args.iter().any(|arg| {
        // `check_rule` refused indexes past 5.
        std::mem::replace(&mut seen[arg.index()], true)
    })
}

/// Converts one argument comparison.
fn condition(
    index: usize,
    rule: &LinuxSyscall,
    arg: &LinuxSeccompArg,
) -> Result<ScmpArgCompare, SeccompError> {
    let syscall = || rule.names().join(", ");
    let arg_index = arg.index();
    if arg_index > 5 {
        return Err(SeccompError::ArgIndexOutOfRange {
            index,
            syscall: syscall(),
            arg_index,
        });
    }
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // (argument & value) == valueTwo
            return Ok(ScmpArgCompare::new(
                arg_index as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ));
        }
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
    };
    // Profiles written for Docker carry `"valueTwo": 0` on every comparison; only a value that
    // would have to mean something is refused.
    match arg.value_two() {
        Some(value_two) if value_two != 0 => Err(SeccompError::ValueTwoUnused {
            index,
            syscall: syscall(),
            arg_index,
            op: arg.op(),
            value_two,
        }),
        _ => Ok(ScmpArgCompare::new(arg_index as u32, op, arg.value())),
    }
}

/// The `SECCOMP_FILTER_FLAG_*` bit for an OCI flag.
pub(crate) fn flag_bit(flag: LinuxSeccompFilterFlag) -> libc::c_ulong {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        }
    }
}

/// The flags a probe for `flag` must carry: the kernel only accepts
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` together with `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub(crate) fn probe_bits(flag: LinuxSeccompFilterFlag) -> libc::c_ulong {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            flag_bit(flag) | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        }
        _ => flag_bit(flag),
    }
}

/// Computes the `seccomp(2)` flags for the profile and checks this kernel accepts them.
fn kernel_flags(
    flags: &[LinuxSeccompFilterFlag],
    notify: bool,
) -> Result<libc::c_ulong, SeccompError> {
    let mut bits = 0;
    for &flag in flags {
        kernel_accepts(probe_bits(flag))
            .map_err(|errno| SeccompError::UnsupportedFlag { flag, errno })?;
        if flag != LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv || notify {
            bits |= flag_bit(flag);
        }
    }
    if notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // The kernel reports TSYNC failures as ESRCH instead of a thread id when the return
            // value is taken by the listener fd.
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    kernel_accepts(bits).map_err(|errno| SeccompError::UnsupportedFlags { flags: bits, errno })?;
    Ok(bits)
}

/// Asks the kernel whether `seccomp(SECCOMP_SET_MODE_FILTER)` accepts `flags`, without loading
/// anything: the kernel checks the flags before it reads the program, so a null program gives
/// `EFAULT` for accepted flags and `EINVAL` for refused ones.
pub(crate) fn kernel_accepts(flags: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the null program pointer is only handed to the kernel, which fails the copy with
    // EFAULT (after validating the flags) and attaches no filter.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    if ret >= 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::EFAULT => Ok(()),
        errno => Err(errno),
    }
}

/// Exports the filter's BPF program through an in-memory file.
fn export(filter: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let fd = memfd_create(c"berth-seccomp-bpf", MFdFlags::MFD_CLOEXEC).map_err(|errno| {
        SeccompError::ExportFile {
            step: "create",
            source: errno.into(),
        }
    })?;
    let mut file = File::from(fd);
    filter
        .export_bpf(&file)
        .map_err(|source| SeccompError::Export { source })?;
    file.seek(SeekFrom::Start(0))
        .map_err(|source| SeccompError::ExportFile {
            step: "rewind",
            source,
        })?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| SeccompError::ExportFile {
            step: "read",
            source,
        })?;

    const INSTRUCTION: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % INSTRUCTION != 0 {
        return Err(SeccompError::ExportTruncated { bytes: bytes.len() });
    }
    let instructions: Vec<libc::sock_filter> = bytes
        .chunks_exact(INSTRUCTION)
        .map(|raw| libc::sock_filter {
            // libseccomp writes `struct sock_filter` in host byte order.
            code: u16::from_ne_bytes([raw[0], raw[1]]),
            jt: raw[2],
            jf: raw[3],
            k: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
        })
        .collect();
    if instructions.len() > BPF_MAXINSNS {
        return Err(SeccompError::FilterTooLong {
            instructions: instructions.len(),
        });
    }
    Ok(instructions)
}
