//! `--security-opt`, parsed as moby's `parseSecurityOpt` does. AppArmor profiles and SELinux
//! labels are accepted and ignored: berth applies neither.

use super::error::{Error, Result};

/// Which seccomp filter the container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeccompChoice {
    /// Docker's default profile (no option, or `seccomp=builtin`).
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<profile>`: the docker CLI sends the file's JSON text.
    Profile(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecurityOptions {
    pub no_new_privileges: bool,
    /// `writable-cgroups`: the cgroup tree mounted read-write.
    pub writable_cgroups: bool,
    pub seccomp: SeccompChoice,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub(crate) fn parse(options: &[String]) -> Result<SecurityOptions> {
    let mut parsed = SecurityOptions {
        no_new_privileges: false,
        writable_cgroups: false,
        seccomp: SeccompChoice::Default,
    };
    for opt in options {
        match opt.as_str() {
            "no-new-privileges" => {
                parsed.no_new_privileges = true;
                continue;
            }
            "writable-cgroups" => {
                parsed.writable_cgroups = true;
                continue;
            }
            // A label option: SELinux labelling off.
            "disable" => continue,
            _ => {}
        }
        // `key=value`, or the deprecated `key:value`.
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(Error::SecurityOpt {
                which: 1,
                option: opt.clone(),
            });
        };
        let invalid = || Error::SecurityOpt {
            which: 2,
            option: opt.clone(),
        };
        match key {
            "label" | "apparmor" => {}
            "seccomp" => {
                parsed.seccomp = match value {
                    "unconfined" => SeccompChoice::Unconfined,
                    "builtin" | "" => SeccompChoice::Default,
                    profile => SeccompChoice::Profile(profile.to_string()),
                }
            }
            "no-new-privileges" => {
                parsed.no_new_privileges = parse_bool(value).ok_or_else(invalid)?
            }
            "writable-cgroups" => {
                parsed.writable_cgroups = parse_bool(value).ok_or_else(invalid)?
            }
            _ => return Err(invalid()),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<SecurityOptions> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options() {
        let d = p(&[]).unwrap();
        assert!(!d.no_new_privileges && d.seccomp == SeccompChoice::Default);
        assert!(p(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges=1"]).unwrap().no_new_privileges);
        assert!(
            !p(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            p(&["seccomp=unconfined"]).unwrap().seccomp,
            SeccompChoice::Unconfined
        );
        assert_eq!(
            p(&["seccomp:unconfined"]).unwrap().seccomp,
            SeccompChoice::Unconfined
        );
        // The JSON text of a profile contains ':' and '=' itself; the first '=' splits.
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","a":"b=c"}"#;
        assert_eq!(
            p(&[&format!("seccomp={json}")]).unwrap().seccomp,
            SeccompChoice::Profile(json.to_string())
        );
        assert!(p(&["apparmor=unconfined", "label=disable", "label:level:s0"]).is_ok());
        assert!(p(&["writable-cgroups=true"]).unwrap().writable_cgroups);
    }

    #[test]
    fn docker_errors() {
        assert_eq!(
            p(&["bogus"]).unwrap_err().to_string(),
            "invalid --security-opt 1: \"bogus\""
        );
        assert_eq!(
            p(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert_eq!(
            p(&["x=y"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"x=y\""
        );
    }
}
