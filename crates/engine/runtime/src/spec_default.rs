//! The example `config.json` that `berth-runc spec` writes into a new bundle.
//!
//! It is, field for field, what `runc spec` (and `runc spec --rootless`) writes: runc's
//! `specconv.Example` and `specconv.ToRootless`, with hostname "berth" instead of "runc".
//! Like runc, it asks the host one thing: whether `/sys/fs/cgroup` is cgroup v2, which adds a
//! cgroup namespace (with v1, a cgroup namespace would show the host's hierarchy paths).
//!
//! Built from scratch rather than from oci-spec's `Default` impls, which carry youki's choices
//! (inheritable and ambient capabilities, an empty devices list, a "youki" hostname).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};

/// The runtime-spec version the example claims; the newest `features` reports.
pub const EXAMPLE_OCI_VERSION: &str = "1.2.0";

/// The hostname of the example container.
pub const EXAMPLE_HOSTNAME: &str = "berth";

/// What `runc spec` writes, with hostname "berth"; with `rootless`, what `runc spec --rootless`
/// writes for the calling user: a user namespace mapping container root to the effective
/// uid/gid, no network namespace, the host's `/sys` bind-mounted (a new sysfs needs a network
/// namespace the user owns), no `uid=`/`gid=` mount options, and no cgroup device rules.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version(EXAMPLE_OCI_VERSION.to_string())
        .set_process(Some(example_process()))
        .set_root(Some(example_root()))
        .set_hostname(Some(EXAMPLE_HOSTNAME.to_string()))
        .set_domainname(None)
        .set_mounts(Some(example_mounts()))
        .set_annotations(None)
        .set_hooks(None)
        .set_linux(Some(example_linux(cgroup2_unified())));
    if rootless {
        to_rootless(
            &mut spec,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
    }
    spec
}

fn example_process() -> Process {
    let caps: Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    let mut capabilities = LinuxCapabilities::default();
    capabilities
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps))
        .set_inheritable(None)
        .set_ambient(None);

    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect("every PosixRlimit field has a default");

    let mut process = Process::default();
    process
        .set_terminal(Some(true))
        .set_console_size(None)
        .set_user(User::default())
        .set_args(Some(vec!["sh".to_string()]))
        .set_env(Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "TERM=xterm".to_string(),
        ]))
        .set_cwd(PathBuf::from("/"))
        .set_capabilities(Some(capabilities))
        .set_rlimits(Some(vec![nofile]))
        .set_no_new_privileges(Some(true))
        .set_apparmor_profile(None)
        .set_selinux_label(None)
        .set_scheduler(None)
        .set_io_priority(None)
        .set_exec_cpu_affinity(None);
    process
}

fn example_root() -> Root {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"))
        .set_readonly(Some(true));
    root
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount
        .set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(if options.is_empty() {
            None
        } else {
            Some(options.iter().map(|o| o.to_string()).collect())
        });
    mount
}

fn example_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

fn namespace(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut namespace = LinuxNamespace::default();
    namespace.set_typ(typ).set_path(None);
    namespace
}

fn example_linux(cgroup2: bool) -> Linux {
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all
        .set_allow(false)
        .set_typ(None)
        .set_major(None)
        .set_minor(None)
        .set_access(Some("rwm".to_string()));
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![deny_all]));

    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid),
        namespace(LinuxNamespaceType::Network),
        namespace(LinuxNamespaceType::Ipc),
        namespace(LinuxNamespaceType::Uts),
        namespace(LinuxNamespaceType::Mount),
    ];
    if cgroup2 {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup));
    }

    let mut linux = Linux::default();
    linux
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_sysctl(None)
        .set_resources(Some(resources))
        .set_cgroups_path(None)
        .set_namespaces(Some(namespaces))
        .set_devices(None)
        .set_rootfs_propagation(None)
        .set_masked_paths(Some(strings(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
            "/sys/devices/virtual/tpm",
        ])))
        .set_readonly_paths(Some(strings(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ])))
        .set_mount_label(None)
        .set_seccomp(None)
        .set_intel_rdt(None)
        .set_personality(None)
        .set_time_offsets(None);
    linux
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// runc's `ToRootless`: user namespace with the caller mapped to root, no network namespace,
/// `/sys` bound from the host, no `uid=`/`gid=` mount options, no cgroup resources.
fn to_rootless(spec: &mut Spec, euid: u32, egid: u32) {
    if let Some(linux) = spec.linux_mut() {
        let mut namespaces: Vec<LinuxNamespace> = linux
            .namespaces()
            .iter()
            .flatten()
            .filter(|ns| {
                !matches!(
                    ns.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::User
                )
            })
            .cloned()
            .collect();
        namespaces.push(namespace(LinuxNamespaceType::User));
        linux
            .set_namespaces(Some(namespaces))
            .set_uid_mappings(Some(vec![id_mapping(euid)]))
            .set_gid_mappings(Some(vec![id_mapping(egid)]))
            .set_resources(None);
    }
    if let Some(mounts) = spec.mounts_mut() {
        for mount in mounts.iter_mut() {
            if Path::new("/sys") == mount.destination().as_path() {
                *mount = self::mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
                continue;
            }
            if let Some(options) = mount.options_mut() {
                options.retain(|o| !o.starts_with("uid=") && !o.starts_with("gid="));
            }
        }
    }
}

fn id_mapping(host_id: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(host_id)
        .size(1u32)
        .build()
        .expect("every LinuxIdMapping field has a default")
}

/// Whether `/sys/fs/cgroup` is the cgroup v2 unified hierarchy.
fn cgroup2_unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destinations(spec: &Spec) -> Vec<String> {
        spec.mounts()
            .iter()
            .flatten()
            .map(|m| m.destination().display().to_string())
            .collect()
    }

    fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .iter()
            .flatten()
            .map(|ns| ns.typ())
            .collect()
    }

    #[test]
    fn matches_runc_spec() {
        let spec = default_spec(false);
        assert_eq!(spec.version(), "1.2.0");
        assert_eq!(spec.hostname().as_deref(), Some("berth"));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("rootfs"));
        assert_eq!(root.readonly(), Some(true));

        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(process.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(process.cwd(), Path::new("/"));
        assert_eq!(process.user().uid(), 0);
        assert_eq!(process.user().gid(), 0);
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(process.env().as_ref().unwrap().len(), 2);
        let caps = process.capabilities().as_ref().unwrap();
        let expected: Capabilities = [
            Capability::AuditWrite,
            Capability::Kill,
            Capability::NetBindService,
        ]
        .into_iter()
        .collect();
        assert_eq!(caps.bounding().as_ref(), Some(&expected));
        assert_eq!(caps.effective().as_ref(), Some(&expected));
        assert_eq!(caps.permitted().as_ref(), Some(&expected));
        assert_eq!(caps.inheritable(), &None);
        assert_eq!(caps.ambient(), &None);
        let rlimits = process.rlimits().as_ref().unwrap();
        assert_eq!(rlimits.len(), 1);
        assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((rlimits[0].soft(), rlimits[0].hard()), (1024, 1024));

        assert_eq!(
            destinations(&spec),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        let pts = &spec.mounts().as_ref().unwrap()[2];
        assert!(pts
            .options()
            .as_ref()
            .unwrap()
            .contains(&"gid=5".to_string()));

        let linux = spec.linux().as_ref().unwrap();
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(devices.len(), 1);
        assert!(!devices[0].allow());
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
        let mut namespaces = vec![
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
        ];
        if cgroup2_unified() {
            namespaces.push(LinuxNamespaceType::Cgroup);
        }
        assert_eq!(namespace_types(&spec), namespaces);
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
        assert!(linux.uid_mappings().is_none());
        assert!(linux.seccomp().is_none());
        assert!(spec.annotations().is_none());
    }

    #[test]
    fn serialises_like_runc_spec() {
        // runc's example as JSON (cgroup namespace and key order aside), hostname changed.
        let json = serde_json::to_value(default_spec(false)).unwrap();
        let mut caps = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .clone();
        caps.sort_by_key(|c| c.as_str().unwrap().to_string());
        assert_eq!(
            caps,
            ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(
            json["process"]["user"],
            serde_json::json!({ "uid": 0, "gid": 0 })
        );
        assert_eq!(
            json["process"]["rlimits"],
            serde_json::json!([{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }])
        );
        assert_eq!(
            json["mounts"][0],
            serde_json::json!({ "destination": "/proc", "type": "proc", "source": "proc" })
        );
        assert_eq!(
            json["linux"]["resources"],
            serde_json::json!({ "devices": [{ "allow": false, "access": "rwm" }] })
        );
        let process_keys: Vec<&String> = json["process"].as_object().unwrap().keys().collect();
        let mut process_keys: Vec<&str> = process_keys.iter().map(|k| k.as_str()).collect();
        process_keys.sort();
        assert_eq!(
            process_keys,
            [
                "args",
                "capabilities",
                "cwd",
                "env",
                "noNewPrivileges",
                "rlimits",
                "terminal",
                "user"
            ]
        );
        let mut top: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        top.sort();
        assert_eq!(
            top,
            [
                "hostname",
                "linux",
                "mounts",
                "ociVersion",
                "process",
                "root"
            ]
        );
    }

    #[test]
    fn rootless_matches_runc_spec_rootless() {
        let mut spec = default_spec(false);
        to_rootless(&mut spec, 1000, 1001);
        let linux = spec.linux().as_ref().unwrap();
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1000, 1)
        );
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (gid.container_id(), gid.host_id(), gid.size()),
            (0, 1001, 1)
        );
        assert!(linux.resources().is_none());
        let namespaces = namespace_types(&spec);
        assert!(!namespaces.contains(&LinuxNamespaceType::Network));
        assert_eq!(namespaces.last(), Some(&LinuxNamespaceType::User));

        let mounts = spec.mounts().as_ref().unwrap();
        let sys = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        assert_eq!(sys.source().as_deref(), Some(Path::new("/sys")));
        assert_eq!(
            sys.options().as_deref(),
            Some(&strings(&["rbind", "nosuid", "noexec", "nodev", "ro"])[..])
        );
        let pts = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/dev/pts"))
            .unwrap();
        assert!(!pts
            .options()
            .as_ref()
            .unwrap()
            .iter()
            .any(|o| o.starts_with("gid=")));
        // runc keeps the cgroup mount (read-only, of the container's own cgroup namespace).
        assert!(mounts
            .iter()
            .any(|m| m.destination() == Path::new("/sys/fs/cgroup")));

        let current = default_spec(true);
        let uid = &current
            .linux()
            .as_ref()
            .unwrap()
            .uid_mappings()
            .as_ref()
            .unwrap()[0];
        assert_eq!(uid.host_id(), nix::unistd::geteuid().as_raw());
    }
}
