//! What this crate can do, for `berth-runc features` (`linux.seccomp` in the runtime-spec's
//! features document): the actions, operators, architectures and flags `compile` accepts, and
//! which flags the running kernel supports.

use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext, ScmpVersion};
use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};

use crate::program::{add_arch, kernel_accepts, probe_bits};

/// Every action [`crate::SeccompProgram::compile`] accepts.
pub const ACTIONS: [LinuxSeccompAction; 9] = [
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

/// Every argument comparison operator [`crate::SeccompProgram::compile`] accepts.
pub const OPERATORS: [LinuxSeccompOperator; 7] = [
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
    LinuxSeccompOperator::ScmpCmpNe,
];

/// Every filter flag [`crate::SeccompProgram::compile`] knows; the kernel may support fewer
/// ([`supported_flags`]).
pub const FLAGS: [LinuxSeccompFilterFlag; 4] = [
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
];

/// Every architecture the spec names, except `SCMP_ARCH_NATIVE`; [`known_archs`] keeps those
/// the linked libseccomp supports.
pub(crate) const ARCHS: [Arch; 23] = [
    Arch::ScmpArchAarch64,
    Arch::ScmpArchArm,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
    Arch::ScmpArchX32,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
];

/// The `SCMP_ACT_*` names [`crate::SeccompProgram::compile`] accepts.
pub fn known_actions() -> Vec<String> {
    ACTIONS.iter().map(ToString::to_string).collect()
}

/// The `SCMP_CMP_*` names [`crate::SeccompProgram::compile`] accepts.
pub fn known_operators() -> Vec<String> {
    OPERATORS.iter().map(ToString::to_string).collect()
}

/// The `SCMP_ARCH_*` names the linked libseccomp knows. [`crate::SeccompProgram::compile`]
/// accepts those of them that share the native byte order.
pub fn known_archs() -> Vec<String> {
    supported_archs().iter().map(ToString::to_string).collect()
}

/// The architectures the linked libseccomp knows (each tried alone in an empty filter).
pub fn supported_archs() -> Vec<Arch> {
    ARCHS
        .into_iter()
        .filter(|&arch| {
            let Ok(mut filter) = ScmpFilterContext::new(ScmpAction::Allow) else {
                return false;
            };
            filter.remove_arch(ScmpArch::native()).is_ok() && add_arch(&mut filter, arch).is_ok()
        })
        .collect()
}

/// The `SECCOMP_FILTER_FLAG_*` names [`crate::SeccompProgram::compile`] knows.
pub fn known_flags() -> Vec<String> {
    FLAGS.iter().map(ToString::to_string).collect()
}

/// The known flags the running kernel accepts (asked with a `seccomp(2)` call that loads
/// nothing).
pub fn supported_flags() -> Vec<String> {
    FLAGS
        .into_iter()
        .filter(|&flag| kernel_accepts(probe_bits(flag)).is_ok())
        .map(|flag| flag.to_string())
        .collect()
}

/// The version of the linked libseccomp, e.g. "2.5.4".
pub fn libseccomp_version() -> String {
    match ScmpVersion::current() {
        Ok(version) => format!("{}.{}.{}", version.major, version.minor, version.micro),
        Err(_) => "unknown".to_string(),
    }
}
