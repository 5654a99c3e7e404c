//! Reading a bundle's config.json and refusing what the runtime cannot honour.
//!
//! `oci-spec` parses the document; this module checks what a parser cannot: that
//! the rootfs exists, that namespaces are not listed twice, that id maps come with
//! a user namespace, and that no field is set that berth would otherwise have to
//! skip silently. Every refusal names the field.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A parsed, checked bundle.
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// The root filesystem, absolute and canonical.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json as read, kept with the container's state.
    pub raw: Vec<u8>,
}

/// Parse a config.json document from bytes (also used for `exec --process` and `update`).
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidConfig {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

impl Bundle {
    /// Load `<dir>/config.json` and validate it for `create`.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::path::absolute(dir)
            .map_err(|e| Error::io(format!("bundle {}", dir.display()), e))?;
        let config = dir.join("config.json");
        let bytes = std::fs::read(&config).map_err(|e| Error::InvalidConfig {
            path: config.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        let spec: Spec = parse_json(&config, &bytes)?;
        let rootfs = validate(&dir, &spec)?;
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            raw: bytes,
        })
    }
}

fn unsupported(field: &str, reason: &str) -> Error {
    Error::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Check the spec; return the canonical rootfs path.
fn validate(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{version:?} is not a 1.x version"),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "is required"))?;
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| invalid("root.path", format!("{}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(invalid(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "is required"))?;
    validate_process(process)?;

    if spec.vm().is_some() {
        return Err(unsupported(
            "vm",
            "berth runs containers, not virtual machines",
        ));
    }
    if spec.windows().is_some() || spec.solaris().is_some() {
        return Err(unsupported("windows/solaris", "not a Linux configuration"));
    }
    if let Some(hooks) = spec.hooks() {
        for hook in crate::hooks::all(hooks) {
            if !hook.path().is_absolute() {
                return Err(invalid(
                    "hooks",
                    format!("{} is not absolute", hook.path().display()),
                ));
            }
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                "mounts",
                format!("destination {} is not absolute", m.destination().display()),
            ));
        }
        crate::process::mount::MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
    }

    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "is required"))?;
    let mut seen = Vec::new();
    for ns in linux.namespaces().iter().flatten() {
        if seen.contains(&ns.typ()) {
            return Err(invalid(
                "linux.namespaces",
                format!("{:?} is listed twice", ns.typ()),
            ));
        }
        seen.push(ns.typ());
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(invalid(
                    "linux.namespaces",
                    format!("{:?} path {} does not exist", ns.typ(), p.display()),
                ));
            }
        }
    }
    if !seen.contains(&LinuxNamespaceType::Mount) {
        return Err(invalid("linux.namespaces", "a mount namespace is required"));
    }
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_user && !maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uid and gid mappings",
        ));
    }
    if maps && !new_user {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a new user namespace",
        ));
    }
    if linux.time_offsets().is_some() && !seen.contains(&LinuxNamespaceType::Time) {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a time namespace",
        ));
    }
    if let Some(s) = linux.sysctl() {
        for key in s.keys() {
            validate_sysctl(key, &seen)?;
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        crate::process::mount::propagation_flag(p)
            .ok_or_else(|| invalid("linux.rootfsPropagation", format!("unknown value {p:?}")))?;
    }
    if linux.intel_rdt().is_some() {
        return Err(unsupported("linux.intelRdt", "Intel RDT is not supported"));
    }
    if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(unsupported("linux.mountLabel", "SELinux is not enabled"));
    }
    if linux.memory_policy().is_some() {
        return Err(unsupported(
            "linux.memoryPolicy",
            "memory policies are not supported",
        ));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(unsupported(
            "linux.netDevices",
            "moving network devices is not supported",
        ));
    }
    if let Some(p) = linux.personality() {
        crate::process::init::personality_value(p)?;
    }
    Ok(rootfs)
}

/// Checks shared by `create` and `exec`'s process documents.
pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must name a program"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{} is not absolute", process.cwd().display()),
        ));
    }
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(unsupported(
            "process.apparmorProfile",
            "AppArmor is not enabled",
        ));
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(unsupported(
            "process.selinuxLabel",
            "SELinux is not enabled",
        ));
    }
    if process.scheduler().is_some() {
        return Err(unsupported(
            "process.scheduler",
            "scheduling policies are not supported",
        ));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(unsupported("process.execCPUAffinity", "is not supported"));
    }
    for env in process.env().iter().flatten() {
        if !env.contains('=') {
            return Err(invalid("process.env", format!("{env:?} is not NAME=value")));
        }
    }
    for rl in process.rlimits().iter().flatten() {
        if rl.soft() > rl.hard() {
            return Err(invalid(
                "process.rlimits",
                format!(
                    "{:?}: soft limit {} is above hard limit {}",
                    rl.typ(),
                    rl.soft(),
                    rl.hard()
                ),
            ));
        }
    }
    Ok(())
}

/// A sysctl may only be set when the namespace it belongs to is the container's own.
fn validate_sysctl(key: &str, namespaces: &[LinuxNamespaceType]) -> Result<()> {
    let needs = if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key.starts_with("kernel.msg")
        || key.starts_with("kernel.sem")
        || key.starts_with("kernel.shm")
        || key.starts_with("fs.mqueue.")
    {
        LinuxNamespaceType::Ipc
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(invalid(
            "linux.sysctl",
            format!("{key} is not namespaced; refusing to set it"),
        ));
    };
    if !namespaces.contains(&needs) {
        return Err(invalid(
            "linux.sysctl",
            format!("{key} needs the container's own {needs:?} namespace"),
        ));
    }
    if key.contains("..") || key.contains('/') {
        return Err(invalid(
            "linux.sysctl",
            format!("{key} is not a sysctl name"),
        ));
    }
    Ok(())
}

/// The flag for `clone`/`unshare`/`setns` of a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> nix::sched::CloneFlags {
    use nix::sched::CloneFlags as F;
    match t {
        LinuxNamespaceType::Mount => F::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => F::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => F::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => F::CLONE_NEWIPC,
        LinuxNamespaceType::User => F::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => F::CLONE_NEWPID,
        LinuxNamespaceType::Network => F::CLONE_NEWNET,
        LinuxNamespaceType::Time => F::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a namespace under /proc/<pid>/ns.
pub fn proc_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}
