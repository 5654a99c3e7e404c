//! `berth-runc features`: the runtime-spec's features document (`features.md`), telling a
//! caller such as containerd or podman what this runtime understands before it writes a
//! `config.json`.
//!
//! Every list here is what the code honours, not what the spec names: [`MOUNT_OPTIONS`] is the
//! list the rootfs code accepts, the seccomp lists come from `berth_seccomp`, and the
//! capabilities are the ones the running kernel knows.

use std::collections::HashMap;

use oci_spec::runtime::{
    Apparmor, Cgroup, Features, IntelRdt, LinuxFeature, LinuxNamespaceType, Seccomp, Selinux,
};

/// The oldest runtime-spec version whose `config.json` this runtime runs.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// The newest runtime-spec version whose `config.json` this runtime runs.
pub const OCI_VERSION_MAX: &str = "1.2.0";

/// The hooks this runtime runs, in the order of a container's life.
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Every mount option the runtime understands (sorted); anything else in `mounts[].options` is
/// passed to the filesystem as data (e.g. `mode=755`, `size=65536k`).
///
/// Each is one of: a `mount(2)` flag to set or clear (`ro`/`rw`, `nosuid`/`suid`,
/// `nodev`/`dev`, `noexec`/`exec`, `sync`/`async`, `dirsync`, `remount`, `mand`/`nomand`,
/// `atime`/`noatime`, `diratime`/`nodiratime`, `relatime`/`norelatime`,
/// `strictatime`/`nostrictatime`, `lazytime`/`nolazytime`, `iversion`/`noiversion`,
/// `acl`/`noacl`, `silent`/`loud`, `nosymfollow`/`symfollow`, `bind`, `rbind`, and `defaults`,
/// which changes nothing); a propagation type (`private`, `shared`, `slave`, `unbindable`, and
/// their recursive `r` forms); or `tmpcopyup` (fill a tmpfs with what the image had at its
/// mount point). The recursive `mount_setattr(2)` forms runc also takes (`rro`, `rnosuid`, ...)
/// and `idmap` are not here: they are not implemented.
pub const MOUNT_OPTIONS: &[&str] = crate::process::mount::OPTION_NAMES;

/// The namespaces a container can be given (new or joined by path).
pub const NAMESPACES: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
];

/// The annotation carrying berth's version.
pub const VERSION_ANNOTATION: &str = "io.github.berth.runtime.version";

/// The annotation carrying the linked libseccomp's version (the key runc and crun use).
pub const LIBSECCOMP_VERSION_ANNOTATION: &str = "io.github.seccomp.libseccomp.version";

/// The features document, as `berth-runc features` prints it.
pub fn features() -> Features {
    let mut features = Features::default();
    features
        .set_oci_version_min(OCI_VERSION_MIN.to_string())
        .set_oci_version_max(OCI_VERSION_MAX.to_string())
        .set_hooks(Some(HOOKS.iter().map(|h| h.to_string()).collect()))
        .set_mount_options(Some(MOUNT_OPTIONS.iter().map(|o| o.to_string()).collect()))
        .set_linux(Some(linux_features()))
        .set_annotations(Some(HashMap::from([
            (
                VERSION_ANNOTATION.to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (
                LIBSECCOMP_VERSION_ANNOTATION.to_string(),
                berth_seccomp::libseccomp_version(),
            ),
        ])))
        .set_potentially_unsafe_config_annotations(None);
    features
}

fn linux_features() -> LinuxFeature {
    let mut cgroup = Cgroup::default();
    cgroup
        .set_v1(Some(true))
        .set_v2(Some(true))
        .set_systemd(Some(false))
        .set_systemd_user(Some(false))
        .set_rdma(None);

    let mut seccomp = Seccomp::default();
    seccomp
        .set_enabled(Some(true))
        .set_actions(Some(berth_seccomp::ACTIONS.to_vec()))
        .set_operators(Some(berth_seccomp::known_operators()))
        .set_archs(Some(berth_seccomp::supported_archs()))
        .set_known_flags(Some(berth_seccomp::known_flags()))
        .set_supported_flags(Some(berth_seccomp::supported_flags()));

    let mut apparmor = Apparmor::default();
    apparmor.set_enabled(Some(false));
    let mut selinux = Selinux::default();
    selinux.set_enabled(Some(false));
    let mut intel_rdt = IntelRdt::default();
    intel_rdt.set_enabled(Some(false));

    let mut linux = LinuxFeature::default();
    linux
        .set_namespaces(Some(NAMESPACES.to_vec()))
        .set_capabilities(Some(known_capabilities()))
        .set_cgroup(Some(cgroup))
        .set_seccomp(Some(seccomp))
        .set_apparmor(Some(apparmor))
        .set_selinux(Some(selinux))
        .set_intel_rdt(Some(intel_rdt));
    linux
}

/// The capabilities the running kernel knows, in kernel order.
fn known_capabilities() -> Vec<String> {
    let mut caps: Vec<caps::Capability> =
        caps::runtime::thread_all_supported().into_iter().collect();
    caps.sort_by_key(|cap| cap.index());
    caps.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_document() {
        let features = features();
        assert_eq!(features.oci_version_min(), "1.0.0");
        assert_eq!(features.oci_version_max(), "1.2.0");
        assert_eq!(features.hooks().as_ref().unwrap().len(), 6);

        let options = features.mount_options().as_ref().unwrap();
        for option in [
            "ro",
            "rw",
            "nosuid",
            "nodev",
            "noexec",
            "bind",
            "rbind",
            "rprivate",
            "rslave",
            "tmpcopyup",
            "strictatime",
            "relatime",
        ] {
            assert!(options.iter().any(|o| o == option), "{option}");
        }
        let mut sorted = MOUNT_OPTIONS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, MOUNT_OPTIONS, "sorted, no duplicates");

        let linux = features.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 8);
        let caps = linux.capabilities().as_ref().unwrap();
        assert_eq!(caps[0], "CAP_CHOWN");
        for cap in ["CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"] {
            assert!(caps.iter().any(|c| c == cap), "{cap}");
        }
        let cgroup = linux.cgroup().as_ref().unwrap();
        assert_eq!(
            (
                cgroup.v1(),
                cgroup.v2(),
                cgroup.systemd(),
                cgroup.systemd_user()
            ),
            (&Some(true), &Some(true), &Some(false), &Some(false))
        );
        assert_eq!(linux.apparmor().as_ref().unwrap().enabled(), &Some(false));

        // As JSON, in the spec's names.
        let json = serde_json::to_value(&features).unwrap();
        let seccomp = &json["linux"]["seccomp"];
        assert_eq!(seccomp["enabled"], true);
        assert_eq!(seccomp["actions"].as_array().unwrap().len(), 9);
        assert!(seccomp["actions"]
            .as_array()
            .unwrap()
            .contains(&"SCMP_ACT_NOTIFY".into()));
        assert!(seccomp["archs"]
            .as_array()
            .unwrap()
            .contains(&"SCMP_ARCH_X86_64".into()));
        assert_eq!(seccomp["operators"].as_array().unwrap().len(), 7);
        assert_eq!(seccomp["knownFlags"].as_array().unwrap().len(), 4);
        assert!(seccomp["supportedFlags"].is_array());
        assert_eq!(json["linux"]["intelRdt"]["enabled"], false);
        assert_eq!(json["linux"]["selinux"]["enabled"], false);
        assert_eq!(
            json["annotations"][VERSION_ANNOTATION],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(json["ociVersionMin"], "1.0.0");
        assert!(json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&"network".into()));
    }
}
