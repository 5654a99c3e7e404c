//! The container process's environment and resource limits.
//!
//! The environment is moby's `CreateDaemonEnvironment`: `PATH` (Docker's default),
//! `HOSTNAME` and, with a terminal, `TERM=xterm`, then the container's variables, each
//! replacing a default of the same name in place or appended (`NAME` without `=` removes
//! one). `HOME` is added last when nothing set it, as runc does: the user's home from the
//! image's passwd file, or `/`.

use bollard_stubs::models::ResourcesUlimits;
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::error::{Error, Result};
use super::merge::env_key;

/// Docker's `PATH` for Linux containers.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn environment(
    config_env: &[String],
    hostname: &str,
    tty: bool,
    home: Option<&str>,
) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    // A removed entry keeps its place: setting the name again later brings it back there.
    let mut slots: Vec<(String, Option<String>)> = env
        .into_iter()
        .map(|e| (env_key(&e).to_string(), Some(e)))
        .collect();
    for var in config_env {
        let key = env_key(var);
        let value = var.contains('=').then(|| var.clone());
        match slots.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None if value.is_some() => slots.push((key.to_string(), value)),
            None => {}
        }
    }
    let mut env: Vec<String> = slots.into_iter().filter_map(|(_, v)| v).collect();
    if !env.iter().any(|e| env_key(e) == "HOME") {
        let home = home.filter(|h| !h.is_empty()).unwrap_or("/");
        env.push(format!("HOME={home}"));
    }
    env
}

use berth_core::units::ULIMITS;

fn rlimit(u: &ResourcesUlimits) -> Result<PosixRlimit> {
    let name = u.name.as_deref().unwrap_or_default().to_lowercase();
    if !ULIMITS.contains(&name.as_str()) {
        return Err(Error::UlimitType(u.name.clone().unwrap_or_default()));
    }
    let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
    // -1 is "unlimited" for both; otherwise soft may not exceed hard.
    if hard != -1 && (soft == -1 || soft > hard) {
        return Err(Error::UlimitRange { soft, hard });
    }
    let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(format!(
        "RLIMIT_{}",
        name.to_uppercase()
    )))
    .expect("every Docker ulimit is an OCI rlimit");
    // As Go's uint64(int64): -1 becomes RLIM_INFINITY.
    Ok(PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft as u64)
        .hard(hard as u64)
        .build()
        .expect("every PosixRlimit field is set"))
}

/// `--ulimit` as `process.rlimits`.
pub(crate) fn rlimits(ulimits: &[ResourcesUlimits]) -> Result<Vec<PosixRlimit>> {
    ulimits.iter().map(rlimit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_replaced_in_place_and_home_last() {
        assert_eq!(
            environment(&s(&["FOO=1", "PATH=/bin"]), "abc", false, Some("/root")),
            s(&["PATH=/bin", "HOSTNAME=abc", "FOO=1", "HOME=/root"])
        );
        assert_eq!(
            environment(&[], "h", true, None),
            s(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=h",
                "TERM=xterm",
                "HOME=/"
            ])
        );
        assert_eq!(
            environment(
                &s(&["HOME=/x", "TERM=dumb", "HOSTNAME"]),
                "h",
                true,
                Some("/root")
            ),
            s(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=dumb",
                "HOME=/x"
            ])
        );
        assert_eq!(
            environment(&s(&["A=1", "A=2"]), "h", false, Some(""))[2..],
            s(&["A=2", "HOME=/"])
        );
    }

    #[test]
    fn ulimits() {
        let u = |name: &str, soft: i64, hard: i64| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(soft),
            hard: Some(hard),
        };
        let r = rlimits(&[u("nofile", 1024, 2048), u("core", -1, -1)]).unwrap();
        assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((r[0].soft(), r[0].hard()), (1024, 2048));
        assert_eq!(
            (r[1].typ(), r[1].soft(), r[1].hard()),
            (PosixRlimitType::RlimitCore, u64::MAX, u64::MAX)
        );
        assert_eq!(
            rlimits(&[u("bogus", 1, 1)]).unwrap_err().to_string(),
            "invalid ulimit type: bogus"
        );
        assert_eq!(
            rlimits(&[u("as", 1, 1)]).unwrap_err().to_string(),
            "invalid ulimit type: as"
        );
        assert_eq!(
            rlimits(&[u("nproc", 20, 10)]).unwrap_err().to_string(),
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
        for name in ULIMITS {
            rlimits(&[u(name, 1, 1)]).unwrap();
        }
    }
}
