//! Which namespaces a container gets from its `--network`, `--ipc`, `--pid`, `--uts`,
//! `--userns` and `--cgroupns` modes (moby's `WithNamespaces`).
//!
//! A container gets new mount, network, UTS, PID and IPC namespaces; `host` for any of the
//! last four leaves that one shared with the host. `--network none` still gets its own
//! (empty) network namespace. The cgroup namespace is private by default on cgroup v2 hosts
//! and shared on v1 hosts (moby's default `CgroupnsMode`). Joining another container's
//! namespace (`container:<id>`) and user namespaces are not implemented yet.

use bollard_stubs::models::{HostConfig, HostConfigCgroupnsModeEnum};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::error::{Error, Result};

/// The namespace decisions that other parts of the spec depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Modes {
    pub net_host: bool,
    pub ipc: IpcMode,
    pub pid_host: bool,
    pub uts_host: bool,
    pub cgroup_private: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpcMode {
    /// Its own IPC namespace and /dev/shm (`private`, `shareable`, or unset).
    Private,
    /// Its own IPC namespace and no /dev/shm.
    None,
    /// The host's IPC namespace and /dev/shm.
    Host,
}

/// The error for a mode that is neither the default nor `host`: `container:<id>` is not
/// implemented, anything else is invalid.
fn other_mode(value: &str, what: &'static str, flag: &str) -> Error {
    match value.strip_prefix("container:") {
        Some(id) if !id.is_empty() => Error::Unsupported(format!(
            "sharing another container's {what} namespace ({flag} {value})"
        )),
        _ => Error::InvalidMode {
            what,
            value: value.to_string(),
        },
    }
}

/// Read the modes of a host config, refusing invalid and unimplemented ones.
pub(crate) fn modes(hc: &HostConfig, cgroup_v2: bool) -> Result<Modes> {
    // A new network namespace or the host's; `container:<id>` and bridges are the
    // engine's: the container service points the spec at the namespace to join.
    let network = hc.network_mode.as_deref().unwrap_or_default();
    let ipc = match hc.ipc_mode.as_deref().unwrap_or_default() {
        "" | "private" | "shareable" => IpcMode::Private,
        "none" => IpcMode::None,
        "host" => IpcMode::Host,
        other => return Err(other_mode(other, "IPC", "--ipc")),
    };
    let pid_host = match hc.pid_mode.as_deref().unwrap_or_default() {
        "" => false,
        "host" => true,
        other => return Err(other_mode(other, "PID", "--pid")),
    };
    let uts_host = match hc.uts_mode.as_deref().unwrap_or_default() {
        "" => false,
        "host" => true,
        other => {
            return Err(Error::InvalidMode {
                what: "UTS",
                value: other.to_string(),
            })
        }
    };
    match hc.userns_mode.as_deref().unwrap_or_default() {
        "" | "host" => {}
        other => {
            return Err(Error::Unsupported(format!(
                "user namespaces (--userns {other})"
            )));
        }
    }
    let cgroup_private = match hc.cgroupns_mode {
        Some(HostConfigCgroupnsModeEnum::PRIVATE) => true,
        Some(HostConfigCgroupnsModeEnum::HOST) => false,
        Some(HostConfigCgroupnsModeEnum::EMPTY) | None => cgroup_v2,
    };
    Ok(Modes {
        net_host: network == "host",
        ipc,
        pid_host,
        uts_host,
        cgroup_private,
    })
}

/// The namespaces to create, in moby's order.
pub(crate) fn namespaces(m: &Modes) -> Vec<LinuxNamespace> {
    use LinuxNamespaceType as T;
    let wanted = [
        (T::Mount, true),
        (T::Network, !m.net_host),
        (T::Uts, !m.uts_host),
        (T::Pid, !m.pid_host),
        (T::Ipc, m.ipc != IpcMode::Host),
        (T::Cgroup, m.cgroup_private),
    ];
    wanted
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(typ, _)| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(typ).set_path(None);
            ns
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(hc: &HostConfig, v2: bool) -> Vec<LinuxNamespaceType> {
        namespaces(&modes(hc, v2).unwrap())
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    #[test]
    fn defaults_none_and_host() {
        use LinuxNamespaceType as T;
        let all = [T::Mount, T::Network, T::Uts, T::Pid, T::Ipc];
        assert_eq!(types(&HostConfig::default(), false), all);
        assert_eq!(
            types(&HostConfig::default(), true),
            [&all[..], &[T::Cgroup]].concat()
        );
        let none = HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        };
        assert_eq!(types(&none, false), all);
        let bridge = HostConfig {
            network_mode: Some("bridge".into()),
            ..Default::default()
        };
        assert_eq!(types(&bridge, false), all);
        let host = HostConfig {
            network_mode: Some("host".into()),
            pid_mode: Some("host".into()),
            ipc_mode: Some("host".into()),
            uts_mode: Some("host".into()),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
            ..Default::default()
        };
        assert_eq!(types(&host, true), [T::Mount]);
        let private_cg = HostConfig {
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            ..Default::default()
        };
        assert!(types(&private_cg, false).contains(&T::Cgroup));
    }

    #[test]
    fn container_pid_and_ipc_modes_are_not_implemented_and_bad_modes_invalid() {
        use berth_core::{ErrorKind, HasKind};
        let hc = |f: fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            modes(&h, false).unwrap_err()
        };
        assert_eq!(
            hc(|h| h.pid_mode = Some("container:x".into())).kind(),
            ErrorKind::NotImplemented
        );
        assert_eq!(
            hc(|h| h.ipc_mode = Some("container:x".into())).kind(),
            ErrorKind::NotImplemented
        );
        assert_eq!(
            hc(|h| h.ipc_mode = Some("weird".into())).to_string(),
            "invalid IPC mode: weird"
        );
        assert_eq!(
            hc(|h| h.pid_mode = Some("private".into())).to_string(),
            "invalid PID mode: private"
        );
        assert_eq!(
            hc(|h| h.uts_mode = Some("x".into())).to_string(),
            "invalid UTS mode: x"
        );
        assert_eq!(
            hc(|h| h.ipc_mode = Some("container:".into())).kind(),
            ErrorKind::InvalidArgument
        );
    }
}
