//! Capabilities: the container's process ends up with exactly the five sets the
//! config lists, and nothing else.

use std::collections::HashSet;
use std::str::FromStr;

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// The capability sets as bit masks, ready for capset(2) and prctl(2).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(set: Option<&HashSet<Capability>>) -> Result<u64> {
    let mut m = 0u64;
    for cap in set.into_iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        let name = name.unwrap_or_default();
        let c = caps::Capability::from_str(&name).map_err(|_| Error::InvalidField {
            field: "process.capabilities".into(),
            reason: format!("unknown capability {name:?}"),
        })?;
        m |= c.bitmask();
    }
    Ok(m)
}

impl CapSets {
    /// No `capabilities` in the config means no capabilities at all.
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<CapSets> {
        let Some(c) = c else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: mask(c.bounding().as_ref())?,
            effective: mask(c.effective().as_ref())?,
            permitted: mask(c.permitted().as_ref())?,
            inheritable: mask(c.inheritable().as_ref())?,
            ambient: mask(c.ambient().as_ref())?,
        })
    }

    /// Drop every capability outside the bounding set (needs CAP_SETPCAP, so
    /// this runs while the process is still fully privileged).
    pub fn drop_bounding(&self) -> Result<()> {
        let last = last_cap();
        for cap in 0..=last {
            if self.bounding & (1u64 << cap) == 0 {
                // SAFETY: prctl with integer arguments only.
                let r =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if r != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINVAL) {
                        return Err(Error::io(
                            format!("dropping capability {cap} from the bounding set"),
                            e,
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Set effective, permitted and inheritable in one capset(2), then the ambient set.
    pub fn apply(&self) -> Result<()> {
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: self.effective as u32,
                permitted: self.permitted as u32,
                inheritable: self.inheritable as u32,
            },
            CapData {
                effective: (self.effective >> 32) as u32,
                permitted: (self.permitted >> 32) as u32,
                inheritable: (self.inheritable >> 32) as u32,
            },
        ];
        // SAFETY: header and data are valid for the v3 ABI (two data elements).
        let r =
            unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
        if r != 0 {
            return Err(Error::InvalidField {
                field: "process.capabilities".into(),
                reason: format!("capset: {}", std::io::Error::last_os_error()),
            });
        }
        // SAFETY: prctl with integer arguments only.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        };
        for cap in 0..=last_cap() {
            if self.ambient & (1u64 << cap) != 0 {
                // The kernel only raises an ambient capability that is also permitted
                // and inheritable; configs written for runc (whose `spec` lists ambient
                // without inheritable) expect the others to be skipped, as runc does.
                // Skipping never grants more than the config asked for.
                // SAFETY: prctl with integer arguments only.
                unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
            }
        }
        Ok(())
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_from_names() {
        let caps: HashSet<Capability> = [Capability::Chown, Capability::Kill].into_iter().collect();
        let m = mask(Some(&caps)).unwrap();
        assert_eq!(m, (1 << 0) | (1 << 5));
    }

    #[test]
    fn absent_means_none() {
        assert_eq!(CapSets::from_spec(None).unwrap(), CapSets::default());
    }
}
