//! What `SeccompProgram::compile` accepts, skips and refuses (no filter is loaded here).

mod common;

use berth_seccomp::{SeccompError, SeccompProgram};
use common::profile;
use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use serde_json::json;

fn compile(json: serde_json::Value) -> Result<SeccompProgram, SeccompError> {
    SeccompProgram::compile(&profile(json))
}

#[test]
fn unknown_syscall_names_are_skipped_and_recorded() {
    let program = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["read", "berth_no_such_syscall", "write", "aaa_unknown"],
                       "action": "SCMP_ACT_ALLOW" },
                     // Known to libseccomp for x86 only: resolved, not skipped.
                     { "names": ["socketcall"], "action": "SCMP_ACT_ALLOW" }]
    }))
    .unwrap();
    assert_eq!(
        program.unknown_syscalls(),
        ["aaa_unknown", "berth_no_such_syscall"]
    );
}

#[test]
fn rules_repeating_the_default_action_are_skipped() {
    // libseccomp refuses such rules (EACCES); runc skips them and so do we.
    let program = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
                     { "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    }))
    .unwrap();
    assert!(program.instruction_count() > 0);
}

#[test]
fn listener_fields_are_kept() {
    let program = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "opaque",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }))
    .unwrap();
    assert!(program.returns_listener());
    assert_eq!(
        program.listener_path(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
    assert_eq!(program.listener_metadata(), Some("opaque"));
}

#[test]
#[cfg(target_arch = "x86_64")]
fn architectures_libseccomp_does_not_know_are_refused_by_name() {
    let known = berth_seccomp::supported_archs();
    assert!(known.contains(&Arch::ScmpArchX86_64));
    let all = [
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
    let little_endian = [
        Arch::ScmpArchAarch64,
        Arch::ScmpArchArm,
        Arch::ScmpArchLoongarch64,
        Arch::ScmpArchMipsel,
        Arch::ScmpArchMipsel64,
        Arch::ScmpArchMipsel64n32,
        Arch::ScmpArchPpc64le,
        Arch::ScmpArchRiscv64,
        Arch::ScmpArchSh,
        Arch::ScmpArchX32,
        Arch::ScmpArchX86,
        Arch::ScmpArchX86_64,
    ];
    for arch in all {
        let result = compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [arch],
            "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
        }));
        if known.contains(&arch) && little_endian.contains(&arch) {
            result.unwrap_or_else(|e| panic!("{arch}: {e}"));
        } else if known.contains(&arch) {
            let error = result.unwrap_err();
            assert!(
                matches!(&error, SeccompError::ArchByteOrder { arch: a, native } if *a == arch && native == "SCMP_ARCH_X86_64"),
                "{arch}: {error:?}"
            );
            assert!(error.to_string().contains(&arch.to_string()), "{error}");
        } else {
            let error = result.unwrap_err();
            assert!(
                matches!(error, SeccompError::UnsupportedArch { arch: a, .. } if a == arch),
                "{arch}: {error:?}"
            );
            assert!(error.to_string().contains(&arch.to_string()), "{error}");
        }
    }
}

#[test]
fn errno_ret_on_actions_without_a_return_value_is_refused() {
    let error =
        compile(json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 })).unwrap_err();
    assert!(
        matches!(&error, SeccompError::ErrnoRetUnused { field, action: LinuxSeccompAction::ScmpActAllow, errno_ret: 1 }
            if field == "linux.seccomp.defaultErrnoRet"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "linux.seccomp.defaultErrnoRet is 1 but the action is SCMP_ACT_ALLOW: only \
         SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value"
    );

    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" },
                     { "names": ["mkdir"], "action": "SCMP_ACT_LOG", "errnoRet": 13 }]
    }))
    .unwrap_err();
    assert!(
        matches!(&error, SeccompError::ErrnoRetUnused { field, action: LinuxSeccompAction::ScmpActLog, errno_ret: 13 }
            if field == "linux.seccomp.syscalls[1].errnoRet"),
        "{error:?}"
    );
}

#[test]
fn errno_ret_out_of_range_is_refused() {
    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4096 }]
    }))
    .unwrap_err();
    assert!(
        matches!(
            error,
            SeccompError::ErrnoRetOutOfRange {
                errno_ret: 4096,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("linux.seccomp.syscalls[0].errnoRet"),
        "{error}"
    );

    let error = compile(json!({ "defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 70000 }))
        .unwrap_err();
    assert!(
        matches!(
            error,
            SeccompError::ErrnoRetOutOfRange {
                errno_ret: 70000,
                ..
            }
        ),
        "{error:?}"
    );

    compile(json!({ "defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 65535 })).unwrap();
    compile(json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4094 })).unwrap();
    let error =
        compile(json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095 })).unwrap_err();
    assert!(
        matches!(
            error,
            SeccompError::ErrnoRetOutOfRange {
                errno_ret: 4095,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn bad_argument_comparisons_are_refused() {
    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["personality"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }]
    }))
    .unwrap_err();
    assert!(
        matches!(&error, SeccompError::ArgIndexOutOfRange { index: 0, syscall, arg_index: 6 } if syscall == "personality"),
        "{error:?}"
    );

    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["personality"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_GE" }] }]
    }))
    .unwrap_err();
    assert!(
        matches!(
            &error,
            SeccompError::ValueTwoUnused {
                op: LinuxSeccompOperator::ScmpCmpGe,
                value_two: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("SCMP_CMP_GE"), "{error}");

    // Even on a name that is skipped as unknown: the profile is wrong wherever it runs.
    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["berth_no_such_syscall"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 9, "value": 1, "op": "SCMP_CMP_EQ" }] }]
    }))
    .unwrap_err();
    assert!(
        matches!(error, SeccompError::ArgIndexOutOfRange { .. }),
        "{error:?}"
    );
}

#[test]
fn empty_names_are_refused() {
    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }]
    }))
    .unwrap_err();
    assert!(
        matches!(error, SeccompError::EmptySyscallNames { index: 0 }),
        "{error:?}"
    );
    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["read", ""], "action": "SCMP_ACT_ERRNO" }]
    }))
    .unwrap_err();
    assert!(
        matches!(error, SeccompError::EmptySyscallName { index: 0 }),
        "{error:?}"
    );
}

#[test]
fn notify_that_cannot_work_is_refused() {
    let error =
        compile(json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a" })).unwrap_err();
    assert!(
        matches!(error, SeccompError::NotifyAsDefaultAction),
        "{error:?}"
    );

    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/a",
        "syscalls": [{ "names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY" }]
    }))
    .unwrap_err();
    assert!(
        matches!(&error, SeccompError::NotifyOnHandoffSyscall { index: 0, syscall } if syscall == "write"),
        "{error:?}"
    );

    let error = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" },
                     { "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }))
    .unwrap_err();
    assert!(
        matches!(error, SeccompError::NotifyWithoutListenerPath { index: 1 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("listenerPath"), "{error}");
}

#[test]
fn every_known_flag_compiles_on_a_kernel_that_supports_it() {
    let supported = berth_seccomp::supported_flags();
    for flag in berth_seccomp::FLAGS {
        let result = compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": [flag],
            "listenerPath": "/a",
            "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
        }));
        if supported.contains(&flag.to_string()) {
            result.unwrap_or_else(|e| panic!("{flag}: {e}"));
        } else {
            assert!(
                matches!(result, Err(SeccompError::UnsupportedFlag { flag: f, .. }) if f == flag),
                "{flag}: {result:?}"
            );
        }
    }
    // WAIT_KILLABLE_RECV without a notifying rule has nothing to wait for; it is accepted.
    if supported.contains(&LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv.to_string()) {
        compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        }))
        .unwrap();
    }
}

#[test]
fn unknown_flags_actions_and_operators_do_not_parse() {
    // The spec's closed sets are enums in oci-spec: an unknown name fails when config.json is
    // read, naming the value, before compile is reached.
    for bad in [
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"] }),
        json!({ "defaultAction": "SCMP_ACT_BOGUS" }),
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] }),
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_XX" }] }] }),
    ] {
        let error = serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(bad).unwrap_err();
        assert!(error.to_string().contains("unknown variant"), "{error}");
    }
}

#[test]
fn features_lists() {
    assert_eq!(
        berth_seccomp::known_actions(),
        [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP",
        ]
    );
    assert_eq!(
        berth_seccomp::known_operators(),
        [
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE",
        ]
    );
    assert_eq!(
        berth_seccomp::known_flags(),
        [
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ]
    );
    let archs = berth_seccomp::known_archs();
    for arch in [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390X",
    ] {
        assert!(
            archs.iter().any(|a| a == arch),
            "{arch} missing from {archs:?}"
        );
    }
    // Every name listed parses back as the spec's type.
    for arch in &archs {
        serde_json::from_value::<Arch>(json!(arch)).unwrap();
    }
    let supported = berth_seccomp::supported_flags();
    let known = berth_seccomp::known_flags();
    assert!(supported.iter().all(|f| known.contains(f)));
    // TSYNC, LOG and SPEC_ALLOW are older than any kernel a container runtime supports.
    for flag in [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ] {
        assert!(
            supported.iter().any(|f| f == flag),
            "{flag} missing from {supported:?}"
        );
    }
    assert!(berth_seccomp::libseccomp_version().starts_with("2."));
}
