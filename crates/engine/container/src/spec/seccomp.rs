//! Docker-format seccomp profiles turned into the OCI `linux.seccomp` of one container.
//!
//! A Docker profile (the default one, or the JSON text `--security-opt seccomp=<file>`
//! sends) is written for every architecture and every capability set: `archMap` lists
//! architectures with their sub-architectures, and each syscall rule may apply only
//! `includes` (or except `excludes`) some capabilities, architectures or kernel versions.
//! Conversion (moby's `setupSeccomp`) keeps the host's architecture entry and the rules that
//! apply to this container's bounding set on this host; the runtime then compiles the result.
//!
//! The default is Docker's own profile (moby's `profiles/seccomp/default.json`), embedded as
//! `seccomp_default.json`: an allow list, everything else failing with EPERM.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::error::{Error, Result};

/// Docker's default profile.
pub const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

/// What the rules are matched against: the host's architecture (Go's name for it, as
/// profiles spell it: `amd64`, `arm64`, ...) and kernel version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompHost {
    pub arch: &'static str,
    pub kernel: (u64, u64, u64),
}

impl SeccompHost {
    /// This machine: the architecture berth was built for, the running kernel's release.
    pub fn current() -> Result<Self> {
        let uname = nix::sys::utsname::uname().map_err(|e| Error::Host {
            what: "uname".into(),
            source: e.into(),
        })?;
        let release = uname.release().to_string_lossy().into_owned();
        let kernel = parse_kernel_version(&release).ok_or_else(|| Error::Host {
            what: format!("kernel release {release:?}"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a version"),
        })?;
        Ok(SeccompHost {
            arch: native_arch(),
            kernel,
        })
    }
}

/// The Go name of the architecture berth runs on.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips" => "mips",
        other => other,
    }
}

/// The libseccomp architecture of a Go architecture name (moby's `goToNative` and
/// `nativeToSeccomp` in one).
fn seccomp_arch(go_arch: &str) -> Option<Arch> {
    Some(match go_arch {
        "amd64" => Arch::ScmpArchX86_64,
        "386" | "x86" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "mips64" => Arch::ScmpArchMips64,
        "mips64le" => Arch::ScmpArchMipsel64,
        "mipsle" => Arch::ScmpArchMipsel,
        "mips" => Arch::ScmpArchMips,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        _ => return None,
    })
}

/// `major.minor[.patch]` at the start of a kernel release ("6.1.0-18-amd64").
fn parse_kernel_version(release: &str) -> Option<(u64, u64, u64)> {
    let numeric: String = release
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').filter(|p| !p.is_empty());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Whether `profile_json` is a profile Docker could read (checked at create).
pub(crate) fn check(profile_json: &str) -> Result<()> {
    serde_json::from_str::<Profile>(profile_json)
        .map(drop)
        .map_err(|e| Error::SeccompDecode(e.to_string()))
}

/// Convert a Docker-format profile for a container whose bounding set is `bounding`.
/// `None` when the profile asks for no filter (no default action and no rules).
pub fn convert(
    profile_json: &str,
    bounding: &[String],
    host: &SeccompHost,
) -> Result<Option<LinuxSeccomp>> {
    let profile: Profile =
        serde_json::from_str(profile_json).map_err(|e| Error::SeccompDecode(e.to_string()))?;
    let rules = profile.syscalls.unwrap_or_default();
    let Some(default_action) = profile.default_action else {
        if rules.is_empty() {
            return Ok(None);
        }
        return Err(Error::SeccompProfile(
            "rules without a defaultAction".into(),
        ));
    };
    let listed = profile
        .architectures
        .as_ref()
        .is_some_and(|a| !a.is_empty());
    let mapped = profile.arch_map.as_ref().is_some_and(|a| !a.is_empty());
    if listed && mapped {
        return Err(Error::SeccompProfile(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let mut architectures = profile.architectures.unwrap_or_default();
    if let (Some(native), Some(map)) = (seccomp_arch(host.arch), &profile.arch_map) {
        if let Some(entry) = map.iter().find(|e| e.architecture == native) {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().flatten().copied());
        }
    }

    let mut syscalls = Vec::new();
    for rule in rules {
        if !applies(&rule, bounding, host)? {
            continue;
        }
        let names = match (rule.name, rule.names) {
            (Some(n), Some(ns)) if !n.is_empty() && !ns.is_empty() => {
                return Err(Error::SeccompProfile(
                    "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
                ))
            }
            (Some(n), _) if !n.is_empty() => vec![n],
            (_, Some(ns)) => ns,
            _ => Vec::new(),
        };
        let args: Vec<LinuxSeccompArg> = rule
            .args
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let arg = LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .op(a.op);
                match a.value_two {
                    Some(v) => arg.value_two(v),
                    None => arg,
                }
                .build()
                .expect("index, value and op are set")
            })
            .collect();
        let mut call = LinuxSyscall::default();
        call.set_names(names)
            .set_action(rule.action)
            .set_errno_ret(rule.errno_ret)
            .set_args((!args.is_empty()).then_some(args));
        syscalls.push(call);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp
        .set_default_action(default_action)
        .set_default_errno_ret(profile.default_errno_ret)
        .set_architectures((!architectures.is_empty()).then_some(architectures))
        .set_flags(profile.flags.filter(|f| !f.is_empty()))
        .set_listener_path(
            profile
                .listener_path
                .filter(|p| !p.is_empty())
                .map(Into::into),
        )
        .set_listener_metadata(profile.listener_metadata.filter(|m| !m.is_empty()))
        .set_syscalls((!syscalls.is_empty()).then_some(syscalls));
    Ok(Some(seccomp))
}

/// Whether a rule applies here: no `excludes` matches, every `includes` matches.
fn applies(rule: &Rule, bounding: &[String], host: &SeccompHost) -> Result<bool> {
    let has_cap = |c: &String| bounding.contains(c);
    if let Some(ex) = &rule.excludes {
        if ex.arches.iter().flatten().any(|a| a == host.arch)
            || ex.caps.iter().flatten().any(has_cap)
            || kernel_at_least(ex.min_kernel.as_deref(), host)? == Some(true)
        {
            return Ok(false);
        }
    }
    if let Some(inc) = &rule.includes {
        if inc
            .arches
            .as_ref()
            .is_some_and(|a| !a.is_empty() && !a.iter().any(|a| a == host.arch))
            || !inc.caps.iter().flatten().all(has_cap)
            || kernel_at_least(inc.min_kernel.as_deref(), host)? == Some(false)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

fn kernel_at_least(min: Option<&str>, host: &SeccompHost) -> Result<Option<bool>> {
    let Some(min) = min.filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let want = parse_kernel_version(min)
        .ok_or_else(|| Error::SeccompProfile(format!("invalid minKernel {min:?}")))?;
    Ok(Some(host.kernel >= want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::caps;

    const AMD64_6: SeccompHost = SeccompHost {
        arch: "amd64",
        kernel: (6, 1, 0),
    };

    fn default_caps() -> Vec<String> {
        caps::DEFAULT.iter().map(|c| c.to_string()).collect()
    }

    fn with(extra: &str) -> Vec<String> {
        let mut c = default_caps();
        c.push(extra.to_string());
        c
    }

    /// The rules that name `syscall`, as (action, errnoRet, has args).
    fn rules_for(s: &LinuxSeccomp, syscall: &str) -> Vec<(LinuxSeccompAction, Option<u32>, bool)> {
        s.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == syscall))
            .map(|r| (r.action(), r.errno_ret(), r.args().is_some()))
            .collect()
    }

    fn allowed_unconditionally(s: &LinuxSeccomp, syscall: &str) -> bool {
        rules_for(s, syscall)
            .iter()
            .any(|(a, _, args)| *a == LinuxSeccompAction::ScmpActAllow && !args)
    }

    #[test]
    fn the_default_profile_for_default_caps_on_amd64() {
        let s = convert(DEFAULT_PROFILE, &default_caps(), &AMD64_6)
            .unwrap()
            .unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert!(allowed_unconditionally(&s, "read"));
        assert!(allowed_unconditionally(&s, "arch_prctl"));
        assert!(
            allowed_unconditionally(&s, "chroot"),
            "CAP_SYS_CHROOT is a default"
        );
        assert!(allowed_unconditionally(&s, "ptrace"), "minKernel 4.8");
        assert!(!allowed_unconditionally(&s, "mount"));
        assert!(!allowed_unconditionally(&s, "unshare"));
        assert!(!allowed_unconditionally(&s, "set_tls"), "arm only");
        assert!(rules_for(&s, "reboot").is_empty());
        // clone only with namespace flags masked out, clone3 fails with ENOSYS so libc
        // falls back to clone.
        assert_eq!(
            rules_for(&s, "clone"),
            [(LinuxSeccompAction::ScmpActAllow, None, true)]
        );
        assert_eq!(
            rules_for(&s, "clone3"),
            [(LinuxSeccompAction::ScmpActErrno, Some(38), false)]
        );
    }

    #[test]
    fn includes_caps_open_syscalls_for_added_capabilities() {
        let s = convert(DEFAULT_PROFILE, &with("CAP_SYS_ADMIN"), &AMD64_6)
            .unwrap()
            .unwrap();
        for call in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "sethostname",
        ] {
            assert!(allowed_unconditionally(&s, call), "{call}");
        }
        // The excludes for CAP_SYS_ADMIN drop the restricted clone and the clone3 ENOSYS.
        assert_eq!(
            rules_for(&s, "clone3"),
            [(LinuxSeccompAction::ScmpActAllow, None, false)]
        );
        assert!(!rules_for(&s, "clone").iter().any(|(_, _, args)| *args));

        let s = convert(DEFAULT_PROFILE, &with("CAP_SYS_BOOT"), &AMD64_6)
            .unwrap()
            .unwrap();
        assert!(allowed_unconditionally(&s, "reboot"));
        let s = convert(DEFAULT_PROFILE, &with("CAP_SYS_TIME"), &AMD64_6)
            .unwrap()
            .unwrap();
        assert!(allowed_unconditionally(&s, "settimeofday"));
        assert!(!allowed_unconditionally(&s, "mount"));
    }

    #[test]
    fn arches_and_kernel_versions_filter_rules() {
        let arm = SeccompHost {
            arch: "arm64",
            kernel: (4, 4, 0),
        };
        let s = convert(DEFAULT_PROFILE, &default_caps(), &arm)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        assert!(allowed_unconditionally(&s, "set_tls"));
        assert!(!allowed_unconditionally(&s, "arch_prctl"));
        assert!(
            !allowed_unconditionally(&s, "ptrace"),
            "4.4 < minKernel 4.8"
        );

        let s390 = SeccompHost {
            arch: "s390x",
            kernel: (6, 1, 0),
        };
        let s = convert(DEFAULT_PROFILE, &default_caps(), &s390)
            .unwrap()
            .unwrap();
        // Only the s390 clone rule (argument 1) survives.
        let clone: Vec<_> = s
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names() == &["clone".to_string()])
            .collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
    }

    #[test]
    fn the_podman_profile_converts_and_compiles() {
        let podman = include_str!("../../../seccomp/tests/fixtures/podman-default-seccomp.json");
        let s = convert(podman, &default_caps(), &AMD64_6).unwrap().unwrap();
        assert_eq!(s.default_errno_ret(), Some(38));
        assert_eq!(s.architectures().as_ref().unwrap().len(), 3);
        assert!(allowed_unconditionally(&s, "read"));
        berth_seccomp::SeccompProgram::compile(&s).unwrap();
    }

    #[test]
    fn the_default_profile_compiles_for_this_host() {
        let host = SeccompHost::current().unwrap();
        for bounding in [default_caps(), caps::known()] {
            let s = convert(DEFAULT_PROFILE, &bounding, &host).unwrap().unwrap();
            berth_seccomp::SeccompProgram::compile(&s).unwrap();
        }
    }

    #[test]
    fn bad_profiles_are_refused() {
        let err = convert("{not json", &[], &AMD64_6).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Decoding seccomp profile failed: "),
            "{err}"
        );
        let both = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
            "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#;
        assert!(convert(both, &[], &AMD64_6)
            .unwrap_err()
            .to_string()
            .contains("use either 'architectures' or 'archMap'"));
        let both = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ERRNO"}]}"#;
        assert!(convert(both, &[], &AMD64_6)
            .unwrap_err()
            .to_string()
            .contains("use either 'name' or 'names'"));
        let action = r#"{"defaultAction":"SCMP_ACT_SOMETIMES"}"#;
        assert!(matches!(
            convert(action, &[], &AMD64_6),
            Err(Error::SeccompDecode(_))
        ));
        assert_eq!(convert("{}", &[], &AMD64_6).unwrap(), None);
    }

    #[test]
    fn single_names_and_architectures_lists_pass_through() {
        let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13,
            "args":[{"index":1,"value":448,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#;
        let s = convert(p, &[], &AMD64_6).unwrap().unwrap();
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64][..])
        );
        let rule = &s.syscalls().as_ref().unwrap()[0];
        assert_eq!(rule.names(), &["mkdir".to_string()]);
        assert_eq!(rule.errno_ret(), Some(13));
        assert_eq!(rule.args().as_ref().unwrap()[0].value_two(), Some(0));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v657"), Some((6, 18, 44)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8, 0)));
        assert_eq!(parse_kernel_version("5.10.0-rc1"), Some((5, 10, 0)));
        assert_eq!(parse_kernel_version("x"), None);
    }
}
