//! Capabilities: Docker's 14 defaults, `--cap-add`/`--cap-drop`, and `--privileged`'s "all"
//! (moby's `oci/caps`).
//!
//! "All" is every capability the daemon itself holds, not every one the kernel knows: a
//! container cannot be given what its runtime does not have (Docker in a container, or a
//! host whose bounding set lacks one). A name outside the kernel's list is "unknown"; a
//! known one the daemon lacks is "not available", both refused at create.

use std::collections::HashSet;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::error::{Error, Result};

/// What every Docker container gets (moby's `caps.DefaultCapabilities`).
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL_KEYWORD: &str = "ALL";

/// Every capability Linux has (as far as the `caps` crate knows), in number order.
pub fn known() -> Vec<String> {
    let mut all: Vec<::caps::Capability> = ::caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// The daemon's effective set: what `--privileged` and `--cap-add ALL` mean here.
pub(crate) fn current() -> Result<Vec<String>> {
    let effective = ::caps::read(None, ::caps::CapSet::Effective).map_err(|e| Error::Host {
        what: "reading the daemon's capabilities".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(known()
        .into_iter()
        .filter(|name| {
            name.parse::<::caps::Capability>()
                .is_ok_and(|c| effective.contains(&c))
        })
        .collect())
}

/// Upper-case, add `CAP_`, and check each name; `ALL` passes as is.
fn normalize(names: &[String], available: &[String]) -> Result<Vec<String>> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_uppercase();
            if upper == ALL_KEYWORD {
                return Ok(upper);
            }
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if full.parse::<::caps::Capability>().is_err() {
                Err(Error::UnknownCapability(full))
            } else if !available.contains(&full) {
                Err(Error::CapabilityUnavailable(full))
            } else {
                Ok(full)
            }
        })
        .collect()
}

/// Check `--cap-add` and `--cap-drop` as `docker create` does.
pub(crate) fn validate(add: &[String], drop: &[String], available: &[String]) -> Result<()> {
    normalize(drop, available)?;
    normalize(add, available)?;
    Ok(())
}

/// The container's capability list (moby's `TweakCapabilities`).
pub(crate) fn tweak(
    add: &[String],
    drop: &[String],
    privileged: bool,
    available: &[String],
) -> Result<Vec<String>> {
    if privileged {
        return Ok(available.to_vec());
    }
    if add.is_empty() && drop.is_empty() {
        return Ok(DEFAULT.iter().map(|c| c.to_string()).collect());
    }
    let drop = normalize(drop, available)?;
    let add = normalize(add, available)?;
    let dropped = |c: &str| drop.iter().any(|d| d == c);
    Ok(if add.iter().any(|a| a == ALL_KEYWORD) {
        available.iter().filter(|c| !dropped(c)).cloned().collect()
    } else if drop.iter().any(|d| d == ALL_KEYWORD) {
        add
    } else {
        DEFAULT
            .iter()
            .filter(|c| !dropped(c))
            .map(|c| c.to_string())
            .chain(add)
            .collect()
    })
}

/// A `CAP_*` name as oci-spec's type.
fn to_oci(name: &str) -> Capability {
    let bare = name.strip_prefix("CAP_").unwrap_or(name);
    Capability::from_str(bare).expect("every kernel capability is an oci-spec capability")
}

/// The process's sets, as moby's `SetCapabilities` writes them: root gets the list as its
/// bounding, effective and permitted sets; any other user only the bounding set, which is
/// what execve would leave a non-root process. Inheritable and ambient stay empty.
pub(crate) fn process_capabilities(list: &[String], uid: u32) -> LinuxCapabilities {
    let set: Capabilities = list.iter().map(|c| to_oci(c)).collect::<HashSet<_>>();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()))
        .set_inheritable(None)
        .set_ambient(None);
    if uid == 0 {
        caps.set_effective(Some(set.clone()))
            .set_permitted(Some(set));
    } else {
        caps.set_effective(None).set_permitted(None);
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_kernel_capability_is_an_oci_capability() {
        let all = known();
        assert_eq!(all.len(), 41);
        assert_eq!(all[0], "CAP_CHOWN");
        assert_eq!(all[40], "CAP_CHECKPOINT_RESTORE");
        for name in all {
            assert_eq!(
                serde_json::to_value(to_oci(&name)).unwrap(),
                serde_json::json!(name)
            );
        }
    }

    #[test]
    fn defaults_add_drop_all() {
        let avail = known();
        assert_eq!(tweak(&[], &[], false, &avail).unwrap(), s(&DEFAULT));
        let t = tweak(
            &s(&["sys_admin", "CAP_net_admin"]),
            &s(&["mknod", "CAP_KILL"]),
            false,
            &avail,
        )
        .unwrap();
        assert!(t.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(t.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!t.contains(&"CAP_MKNOD".to_string()));
        assert!(!t.contains(&"CAP_KILL".to_string()));
        assert_eq!(t.len(), 14);
        assert_eq!(
            tweak(&s(&["chown"]), &s(&["all"]), false, &avail).unwrap(),
            s(&["CAP_CHOWN"])
        );
        let all_but = tweak(&s(&["ALL"]), &s(&["sys_admin"]), false, &avail).unwrap();
        assert_eq!(all_but.len(), 40);
        assert!(!all_but.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn privileged_and_all_mean_what_the_daemon_has() {
        let mut avail = known();
        avail.retain(|c| c != "CAP_SYS_RESOURCE");
        let p = tweak(&[], &[], true, &avail).unwrap();
        assert_eq!(p.len(), 40);
        assert!(!p.contains(&"CAP_SYS_RESOURCE".to_string()));
        let err = tweak(&s(&["sys_resource"]), &[], false, &avail).unwrap_err();
        assert_eq!(
            err.to_string(),
            "capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\""
        );
        // The daemon's own set is a subset of what the kernel knows.
        let current = current().unwrap();
        assert!(current.iter().all(|c| known().contains(c)));
    }

    #[test]
    fn unknown_names_are_refused() {
        let all = known();
        let err = validate(&s(&["fly"]), &[], &all).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FLY\"");
        assert!(validate(&[], &s(&["CAP_NOPE"]), &all).is_err());
        assert!(validate(&s(&["all", "Net_Raw"]), &s(&["ALL"]), &all).is_ok());
    }

    #[test]
    fn non_root_keeps_only_the_bounding_set() {
        let list = s(&DEFAULT);
        let root = process_capabilities(&list, 0);
        assert_eq!(root.effective().as_ref().unwrap().len(), 14);
        assert_eq!(root.permitted(), root.bounding());
        assert!(root.inheritable().is_none() && root.ambient().is_none());
        let user = process_capabilities(&list, 1000);
        assert_eq!(user.bounding().as_ref().unwrap().len(), 14);
        assert!(user.effective().is_none() && user.permitted().is_none());
    }
}
