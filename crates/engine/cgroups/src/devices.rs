//! Device access rules: `linux.resources.devices` to the v1 devices
//! controller, or to the state an eBPF filter enforces on v2.
//!
//! The rules are applied in order, with the kernel's v1 semantics, which we
//! emulate so v2 behaves like v1:
//! - a rule of type `a` resets everything: allow-all (`allow: true`) or
//!   deny-all (`allow: false`), dropping every exception;
//! - otherwise a rule that agrees with the default removes those access bits
//!   from the exception with exactly the same type/major/minor;
//! - a rule that differs from the default adds an exception (merging access
//!   bits with an identical one).
//!
//! Both v1 and v2 start from deny-all (v1 writes `a` to devices.deny first).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{CgroupError, Result};
use crate::fsutil;

pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// A concrete device type (what the kernel checks against).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DevType {
    Char,
    Block,
}

impl DevType {
    fn letter(self) -> char {
        match self {
            DevType::Char => 'c',
            DevType::Block => 'b',
        }
    }
}

/// One validated spec rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    /// `None` is type `a` (all devices).
    pub typ: Option<DevType>,
    /// `None` is the `*` wildcard.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    /// The line the v1 devices.allow / devices.deny files take.
    pub(crate) fn v1_line(&self) -> String {
        match self.typ {
            None => "a".to_string(),
            Some(t) => format!(
                "{} {}:{} {}",
                t.letter(),
                num_or_star(self.major),
                num_or_star(self.minor),
                access_string(self.access)
            ),
        }
    }
}

fn num_or_star(n: Option<u32>) -> String {
    n.map_or_else(|| "*".to_string(), |n| n.to_string())
}

pub(crate) fn access_string(a: u8) -> String {
    let mut s = String::with_capacity(3);
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// Validate the spec's rules. A missing or empty `access` means "rwm"; a
/// missing or negative major/minor is the `*` wildcard; type `u` is a
/// character device.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = |what: &str| format!("linux.resources.devices[{i}].{what}");
            let typ = match r.typ() {
                None | Some(LinuxDeviceType::A) => None,
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DevType::Char),
                Some(LinuxDeviceType::B) => Some(DevType::Block),
                Some(LinuxDeviceType::P) => {
                    return Err(CgroupError::InvalidValue {
                        field: field("type"),
                        value: "p".into(),
                        reason: "FIFOs are not governed by the devices cgroup; use a, b, c or u"
                            .into(),
                    })
                }
            };
            let number = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
                match v {
                    None => Ok(None),
                    Some(n) if n < 0 => Ok(None),
                    // The kernel's dev_t has 12-bit majors and 20-bit minors;
                    // anything above i32::MAX cannot name a device.
                    Some(n) if n <= i64::from(i32::MAX) => Ok(Some(n as u32)),
                    Some(n) => Err(CgroupError::InvalidValue {
                        field: field(what),
                        value: n.to_string(),
                        reason: "not a device number".into(),
                    }),
                }
            };
            let major = number(r.major(), "major")?;
            let minor = number(r.minor(), "minor")?;
            let access = match r.access().as_deref() {
                None | Some("") => ACC_ALL,
                Some(s) => {
                    let mut a = 0;
                    for c in s.chars() {
                        a |= match c {
                            'r' => ACC_READ,
                            'w' => ACC_WRITE,
                            'm' => ACC_MKNOD,
                            _ => {
                                return Err(CgroupError::InvalidValue {
                                    field: field("access"),
                                    value: s.to_string(),
                                    reason: "access is a combination of r, w and m".into(),
                                })
                            }
                        };
                    }
                    a
                }
            };
            Ok(Rule {
                allow: r.allow(),
                typ,
                major,
                minor,
                access,
            })
        })
        .collect()
}

/// An entry of the kernel's exception list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Exception {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// The effective access policy: a default and the exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceState {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

/// Apply rules, in order, to a deny-all start, exactly as the v1 kernel does.
pub(crate) fn emulate(rules: &[Rule]) -> DeviceState {
    let mut st = DeviceState {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for r in rules {
        let Some(typ) = r.typ else {
            st.default_allow = r.allow;
            st.exceptions.clear();
            continue;
        };
        let same = |e: &Exception| e.typ == typ && e.major == r.major && e.minor == r.minor;
        if r.allow == st.default_allow {
            // dev_exception_rm: drop these bits from the identical exception.
            if let Some(pos) = st.exceptions.iter().position(same) {
                st.exceptions[pos].access &= !r.access;
                if st.exceptions[pos].access == 0 {
                    st.exceptions.remove(pos);
                }
            }
        } else if let Some(e) = st.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= r.access;
        } else if r.access != 0 {
            st.exceptions.push(Exception {
                typ,
                major: r.major,
                minor: r.minor,
                access: r.access,
            });
        }
    }
    st
}

/// Parse v1 devices.list. In allow-all mode the kernel prints only
/// `a *:* rwm` and hides its exceptions, so that state is not comparable
/// and yields `None`; so does anything unexpected.
fn parse_devices_list(content: &str) -> Option<Vec<Exception>> {
    let mut out = Vec::new();
    for line in content.lines() {
        let mut it = line.split_whitespace();
        let typ = match it.next()? {
            "c" => DevType::Char,
            "b" => DevType::Block,
            _ => return None,
        };
        let (maj, min) = it.next()?.split_once(':')?;
        let num = |s: &str| -> Option<Option<u32>> {
            if s == "*" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        let mut access = 0;
        for c in it.next()?.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => return None,
            };
        }
        out.push(Exception {
            typ,
            major: num(maj)?,
            minor: num(min)?,
            access,
        });
    }
    Some(out)
}

/// Program the v1 devices controller in `dir`: deny everything, then replay
/// the rules. When devices.list already shows the wanted deny-mode state
/// (an `update` with unchanged devices), nothing is written, so running
/// processes never see a moment of deny-all.
pub(crate) fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    let target = emulate(rules);
    if !target.default_allow {
        let list = fsutil::file(dir, "devices.list");
        if let Some(mut current) = fsutil::read_optional(&list)?
            .as_deref()
            .and_then(parse_devices_list)
        {
            let mut want = target.exceptions.clone();
            current.sort();
            want.sort();
            if current == want {
                return Ok(());
            }
        }
    }

    let open = |name: &str| {
        let path = fsutil::file(dir, name);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .map(|f| (f, path.clone()))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => CgroupError::Unsupported {
                    field: "linux.resources.devices".into(),
                    reason: format!("{} does not exist", path.display()),
                },
                _ => fsutil::write_error(&path, "", e),
            })
    };
    let (mut deny, deny_path) = open("devices.deny")?;
    let (mut allow, allow_path) = open("devices.allow")?;
    deny.write_all(b"a")
        .map_err(|e| fsutil::write_error(&deny_path, "a", e))?;
    for r in rules {
        let line = r.v1_line();
        let (f, p) = if r.allow {
            (&mut allow, &allow_path)
        } else {
            (&mut deny, &deny_path)
        };
        f.write_all(line.as_bytes())
            .map_err(|e| fsutil::write_error(p, &line, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    fn rules(json: &[&str]) -> Vec<Rule> {
        let v: Vec<LinuxDeviceCgroup> = json.iter().map(|j| rule(j)).collect();
        parse_rules(&v).unwrap()
    }

    #[test]
    fn parses_and_formats_v1_lines() {
        let r = rules(&[
            r#"{"allow": false, "access": "rwm"}"#,
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}"#,
            r#"{"allow": true, "type": "c", "major": 136, "access": "rwm"}"#,
            r#"{"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"}"#,
            r#"{"allow": true, "type": "u", "major": 5, "minor": 0}"#,
        ]);
        let lines: Vec<String> = r.iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            ["a", "c 1:3 rw", "c 136:* rwm", "b *:* m", "c 5:0 rwm"]
        );
    }

    #[test]
    fn rejects_bad_rules_naming_the_field() {
        let bad = [rule(
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}"#,
        )];
        let e = parse_rules(&bad).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.devices[0].access"),
            "{e}"
        );
        let fifo = [rule(r#"{"allow": true, "type": "p"}"#)];
        assert!(parse_rules(&fifo).is_err());
        let huge = [rule(r#"{"allow": true, "type": "c", "major": 4294967296}"#)];
        assert!(parse_rules(&huge).is_err());
    }

    #[test]
    fn emulation_follows_kernel_semantics() {
        let st = emulate(&rules(&[
            r#"{"allow": false, "access": "rwm"}"#,
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}"#,
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "w"}"#,
            r#"{"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}"#,
            r#"{"allow": false, "type": "c", "major": 1, "minor": 5, "access": "w"}"#,
            r#"{"allow": true, "type": "c", "major": 1, "minor": 7, "access": "r"}"#,
            r#"{"allow": false, "type": "c", "major": 1, "minor": 7, "access": "r"}"#,
        ]));
        assert!(!st.default_allow);
        assert_eq!(
            st.exceptions,
            vec![
                Exception {
                    typ: DevType::Char,
                    major: Some(1),
                    minor: Some(3),
                    access: ACC_READ | ACC_WRITE
                },
                Exception {
                    typ: DevType::Char,
                    major: Some(1),
                    minor: Some(5),
                    access: ACC_READ | ACC_MKNOD
                },
            ]
        );

        // Allow-all, then deny one device: a deny exception.
        let st = emulate(&rules(&[
            r#"{"allow": true, "access": "rwm"}"#,
            r#"{"allow": false, "type": "b", "major": 8, "minor": 0, "access": "w"}"#,
        ]));
        assert!(st.default_allow);
        assert_eq!(st.exceptions.len(), 1);

        // A later "a" rule wipes earlier exceptions.
        let st = emulate(&rules(&[
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3}"#,
            r#"{"allow": false}"#,
        ]));
        assert!(!st.default_allow);
        assert!(st.exceptions.is_empty());
    }

    #[test]
    fn devices_list_parsing() {
        let l = parse_devices_list("c 1:3 rwm\nc 136:* rw\nb *:* m\n").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].minor, None);
        assert_eq!(l[2].access, ACC_MKNOD);
        assert_eq!(parse_devices_list("a *:* rwm\n"), None);
        assert_eq!(parse_devices_list(""), Some(vec![]));
    }
}
