//! `docker run`'s resource flags: checked as `docker create` checks them (moby's
//! `verifyPlatformContainerResources`), then written as `linux.resources` (moby's
//! `getMemoryResources`, `getCPUResources`, `getPidsLimit`, blkio devices).

use std::os::unix::fs::MetadataExt;

use bollard_stubs::models::{HostConfig, ResourcesBlkioWeightDevice, ThrottleDevice};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxPids, LinuxResources,
    LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDevice, LinuxWeightDeviceBuilder,
};

use super::error::{Error, Result};

/// Docker's floor for a memory limit or reservation: room for a container to start.
pub const MIN_MEMORY: i64 = 6 << 20;

/// The CFS period `--cpus` uses: 100 ms, in microseconds.
pub const NANO_CPUS_PERIOD: u64 = 100_000;

fn val(v: Option<i64>) -> i64 {
    v.unwrap_or(0)
}

/// Swappiness -1 means "the default", as if unset (moby's `fixMemorySwappiness`).
fn swappiness(hc: &HostConfig) -> Option<i64> {
    hc.memory_swappiness.filter(|s| *s != -1)
}

/// The resource checks of `docker create`, on a host with `ncpus` CPUs.
pub(crate) fn validate(hc: &HostConfig, ncpus: usize) -> Result<()> {
    let memory = val(hc.memory);
    let swap = val(hc.memory_swap);
    let reservation = val(hc.memory_reservation);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(Error::MemoryBelowMinimum);
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(Error::SwapBelowMemory);
    }
    if memory == 0 && swap > 0 {
        return Err(Error::SwapWithoutMemory);
    }
    if let Some(s) = swappiness(hc) {
        if !(0..=100).contains(&s) {
            return Err(Error::Swappiness(s));
        }
    }
    if reservation > 0 && reservation < MIN_MEMORY {
        return Err(Error::ReservationBelowMinimum);
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(Error::MemoryBelowReservation);
    }

    let nano = val(hc.nano_cpus);
    let period = val(hc.cpu_period);
    let quota = val(hc.cpu_quota);
    if nano > 0 && period > 0 {
        return Err(Error::NanoCpusWithPeriod);
    }
    if nano > 0 && quota > 0 {
        return Err(Error::NanoCpusWithQuota);
    }
    if nano != 0 && (nano < 0 || nano > ncpus as i64 * 1_000_000_000) {
        return Err(Error::CpusOutOfRange { available: ncpus });
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(Error::CpuPeriodRange);
    }
    if quota > 0 && quota < 1000 {
        return Err(Error::CpuQuotaMinimum);
    }
    if val(hc.cpu_shares) < 0 {
        return Err(Error::CpuShares(val(hc.cpu_shares)));
    }
    if let Some(cpus) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        let highest = parse_cpuset(cpus).ok_or_else(|| Error::CpusetSyntax {
            what: "cpus",
            value: cpus.to_string(),
        })?;
        if highest >= ncpus as u64 {
            return Err(Error::CpusUnavailable {
                requested: cpus.to_string(),
                available: if ncpus > 1 {
                    format!("0-{}", ncpus - 1)
                } else {
                    "0".to_string()
                },
            });
        }
    }
    if let Some(mems) = hc.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        parse_cpuset(mems).ok_or_else(|| Error::CpusetSyntax {
            what: "mems",
            value: mems.to_string(),
        })?;
    }

    let weight = hc.blkio_weight.unwrap_or(0);
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(Error::BlkioWeight);
    }
    if val(hc.io_maximum_bandwidth) != 0 || val(hc.io_maximum_iops) != 0 {
        return Err(Error::IoMaximum);
    }
    Ok(())
}

/// The highest number of a cpuset list ("0-3,8,10-11"); `None` when it is not one (the
/// syntax of moby's `ParseUintList`).
fn parse_cpuset(list: &str) -> Option<u64> {
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut highest = 0;
    for item in list.split(',') {
        let top = match item.split_once('-') {
            None => number(item)?,
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if hi < lo {
                    return None;
                }
                hi
            }
        };
        highest = highest.max(top);
    }
    Some(highest)
}

/// `linux.resources` for a host config; `devices` are the device cgroup rules.
pub(crate) fn linux_resources(
    hc: &HostConfig,
    devices: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources> {
    let mut res = LinuxResources::default();
    res.set_devices(Some(devices))
        .set_memory(memory(hc))
        .set_cpu(cpu(hc)?)
        .set_pids(pids(hc))
        .set_block_io(block_io(hc)?)
        .set_hugepage_limits(None)
        .set_network(None)
        .set_rdma(None)
        .set_unified(None);
    Ok(res)
}

fn memory(hc: &HostConfig) -> Option<LinuxMemory> {
    let mut m = LinuxMemory::default();
    let positive = |v: Option<i64>| v.filter(|v| *v > 0);
    m.set_limit(positive(hc.memory))
        .set_reservation(positive(hc.memory_reservation))
        // -1 is "unlimited swap", which the spec says the same way; 0 is "unset".
        .set_swap(hc.memory_swap.filter(|s| *s > 0 || *s == -1))
        .set_swappiness(swappiness(hc).map(|s| s as u64))
        .set_disable_oom_killer(hc.oom_kill_disable);
    (m != LinuxMemory::default()).then_some(m)
}

fn cpu(hc: &HostConfig) -> Result<Option<LinuxCpu>> {
    let mut c = LinuxCpu::default();
    let shares = val(hc.cpu_shares);
    if shares < 0 {
        return Err(Error::CpuShares(shares));
    }
    if shares != 0 {
        c.set_shares(Some(shares as u64));
    }
    c.set_cpus(hc.cpuset_cpus.clone().filter(|s| !s.is_empty()))
        .set_mems(hc.cpuset_mems.clone().filter(|s| !s.is_empty()));
    let nano = val(hc.nano_cpus);
    if nano > 0 {
        c.set_period(Some(NANO_CPUS_PERIOD))
            .set_quota(Some(nano * NANO_CPUS_PERIOD as i64 / 1_000_000_000));
    }
    if val(hc.cpu_period) != 0 {
        c.set_period(Some(val(hc.cpu_period) as u64));
    }
    if val(hc.cpu_quota) != 0 {
        c.set_quota(hc.cpu_quota);
    }
    if val(hc.cpu_realtime_period) != 0 {
        c.set_realtime_period(Some(val(hc.cpu_realtime_period) as u64));
    }
    if val(hc.cpu_realtime_runtime) != 0 {
        c.set_realtime_runtime(hc.cpu_realtime_runtime);
    }
    Ok((c != LinuxCpu::default()).then_some(c))
}

/// `--pids-limit`: zero or less means unlimited, which runc wants as -1.
fn pids(hc: &HostConfig) -> Option<LinuxPids> {
    let limit = hc.pids_limit?;
    let mut p = LinuxPids::default();
    p.set_limit(if limit <= 0 { -1 } else { limit });
    Some(p)
}

/// The major and minor numbers of the device node at `path` (following symlinks).
fn device_numbers(path: &str) -> Result<(i64, i64)> {
    let meta = std::fs::metadata(path).map_err(|source| Error::StatDevice {
        path: path.to_string(),
        source,
    })?;
    let rdev = meta.rdev();
    Ok((
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
    ))
}

fn weight_device(d: &ResourcesBlkioWeightDevice) -> Result<LinuxWeightDevice> {
    let (major, minor) = device_numbers(d.path.as_deref().unwrap_or_default())?;
    let mut w = LinuxWeightDeviceBuilder::default()
        .major(major)
        .minor(minor);
    if let Some(weight) = d.weight {
        w = w.weight(weight.min(u16::MAX as usize) as u16);
    }
    Ok(w.build().expect("major and minor are set"))
}

fn throttle_devices(
    list: &Option<Vec<ThrottleDevice>>,
) -> Result<Option<Vec<LinuxThrottleDevice>>> {
    let Some(list) = list.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    list.iter()
        .map(|d| {
            let (major, minor) = device_numbers(d.path.as_deref().unwrap_or_default())?;
            Ok(LinuxThrottleDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .rate(d.rate.unwrap_or(0).max(0) as u64)
                .build()
                .expect("every field is set"))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn block_io(hc: &HostConfig) -> Result<Option<LinuxBlockIo>> {
    let weight_devices = hc
        .blkio_weight_device
        .iter()
        .flatten()
        .map(weight_device)
        .collect::<Result<Vec<_>>>()?;
    let mut b = LinuxBlockIo::default();
    b.set_weight(hc.blkio_weight.filter(|w| *w > 0))
        .set_leaf_weight(None)
        .set_weight_device((!weight_devices.is_empty()).then_some(weight_devices))
        .set_throttle_read_bps_device(throttle_devices(&hc.blkio_device_read_bps)?)
        .set_throttle_write_bps_device(throttle_devices(&hc.blkio_device_write_bps)?)
        .set_throttle_read_iops_device(throttle_devices(&hc.blkio_device_read_iops)?)
        .set_throttle_write_iops_device(throttle_devices(&hc.blkio_device_write_iops)?);
    Ok((b != LinuxBlockIo::default()).then_some(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig::default();
        f(&mut h);
        h
    }

    fn message(h: HostConfig) -> String {
        validate(&h, 2).unwrap_err().to_string()
    }

    #[test]
    fn docker_messages() {
        let cases: Vec<(HostConfig, &str)> = vec![
            (hc(|h| h.memory = Some(4 << 20)), "Minimum memory limit allowed is 6MB"),
            (
                hc(|h| {
                    h.memory = Some(64 << 20);
                    h.memory_swap = Some(32 << 20);
                }),
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ),
            (
                hc(|h| h.memory_swap = Some(64 << 20)),
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ),
            (
                hc(|h| h.memory_swappiness = Some(101)),
                "Invalid value: 101, valid memory swappiness range is 0-100",
            ),
            (
                hc(|h| h.memory_reservation = Some(1 << 20)),
                "Minimum memory reservation allowed is 6MB",
            ),
            (
                hc(|h| {
                    h.memory = Some(64 << 20);
                    h.memory_reservation = Some(128 << 20);
                }),
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ),
            (
                hc(|h| {
                    h.nano_cpus = Some(1_000_000_000);
                    h.cpu_period = Some(100_000);
                }),
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ),
            (
                hc(|h| {
                    h.nano_cpus = Some(1_000_000_000);
                    h.cpu_quota = Some(50_000);
                }),
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
            ),
            (
                hc(|h| h.nano_cpus = Some(3_000_000_000)),
                "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
            ),
            (
                hc(|h| h.nano_cpus = Some(-1)),
                "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
            ),
            (
                hc(|h| h.cpu_period = Some(999)),
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ),
            (hc(|h| h.cpu_quota = Some(999)), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
            (
                hc(|h| h.cpuset_cpus = Some("0-".into())),
                "Invalid value 0- for cpuset cpus: invalid format: 0-",
            ),
            (
                hc(|h| h.cpuset_cpus = Some("3-1".into())),
                "Invalid value 3-1 for cpuset cpus: invalid format: 3-1",
            ),
            (
                hc(|h| h.cpuset_cpus = Some("0,4".into())),
                "Requested CPUs are not available - requested 0,4, available: 0-1",
            ),
            (
                hc(|h| h.cpuset_mems = Some("a".into())),
                "Invalid value a for cpuset mems: invalid format: a",
            ),
            (hc(|h| h.blkio_weight = Some(5)), "Range of blkio weight is from 10 to 1000"),
            (hc(|h| h.blkio_weight = Some(1001)), "Range of blkio weight is from 10 to 1000"),
            (
                hc(|h| h.io_maximum_iops = Some(10)),
                "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
            ),
        ];
        for (h, want) in cases {
            assert_eq!(message(h), want);
        }
    }

    #[test]
    fn valid_settings_pass() {
        let ok = hc(|h| {
            h.memory = Some(6 << 20);
            h.memory_swap = Some(-1);
            h.memory_swappiness = Some(-1);
            h.memory_reservation = Some(6 << 20);
            h.nano_cpus = Some(2_000_000_000);
            h.cpuset_cpus = Some("0-1".into());
            h.cpuset_mems = Some("0".into());
            h.blkio_weight = Some(10);
        });
        validate(&ok, 2).unwrap();
        validate(&HostConfig::default(), 1).unwrap();
        // Swap without memory is allowed when it means "unlimited".
        validate(&hc(|h| h.memory_swap = Some(-1)), 1).unwrap();
    }

    #[test]
    fn memory_conversion() {
        let r = linux_resources(
            &hc(|h| {
                h.memory = Some(64 << 20);
                h.memory_swap = Some(128 << 20);
                h.memory_reservation = Some(32 << 20);
                h.memory_swappiness = Some(10);
                h.oom_kill_disable = Some(true);
            }),
            vec![],
        )
        .unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(128 << 20));
        assert_eq!(m.reservation(), Some(32 << 20));
        assert_eq!(m.swappiness(), Some(10));
        assert_eq!(m.disable_oom_killer(), Some(true));

        let unlimited = linux_resources(
            &hc(|h| {
                h.memory = Some(64 << 20);
                h.memory_swap = Some(-1);
                h.memory_swappiness = Some(-1);
            }),
            vec![],
        )
        .unwrap();
        let m = unlimited.memory().as_ref().unwrap();
        assert_eq!((m.swap(), m.swappiness()), (Some(-1), None));
        let unset = linux_resources(&hc(|h| h.memory_swap = Some(0)), vec![]).unwrap();
        assert!(unset.memory().is_none());
    }

    #[test]
    fn cpu_conversion() {
        let r = linux_resources(
            &hc(|h| {
                h.nano_cpus = Some(1_500_000_000);
                h.cpu_shares = Some(512);
                h.cpuset_cpus = Some("0".into());
            }),
            vec![],
        )
        .unwrap();
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(100_000), Some(150_000)));
        assert_eq!(c.shares(), Some(512));
        assert_eq!(c.cpus().as_deref(), Some("0"));

        let r = linux_resources(
            &hc(|h| {
                h.cpu_period = Some(50_000);
                h.cpu_quota = Some(25_000);
            }),
            vec![],
        )
        .unwrap();
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(50_000), Some(25_000)));
        assert!(linux_resources(&hc(|h| h.cpu_shares = Some(-2)), vec![]).is_err());
        assert!(linux_resources(&HostConfig::default(), vec![])
            .unwrap()
            .cpu()
            .is_none());
    }

    #[test]
    fn pids_and_blkio_conversion() {
        let limit = |v| {
            linux_resources(&hc(|h| h.pids_limit = Some(v)), vec![])
                .unwrap()
                .pids()
                .unwrap()
                .limit()
        };
        assert_eq!(limit(100), 100);
        assert_eq!(limit(0), -1);
        assert_eq!(limit(-5), -1);
        assert!(linux_resources(&HostConfig::default(), vec![])
            .unwrap()
            .pids()
            .is_none());

        let r = linux_resources(
            &hc(|h| {
                h.blkio_weight = Some(300);
                h.blkio_device_read_bps = Some(vec![ThrottleDevice {
                    path: Some("/dev/null".into()),
                    rate: Some(1 << 20),
                }]);
            }),
            vec![],
        )
        .unwrap();
        let b = r.block_io().as_ref().unwrap();
        assert_eq!(b.weight(), Some(300));
        let t = &b.throttle_read_bps_device().as_ref().unwrap()[0];
        assert_eq!((t.major(), t.minor(), t.rate()), (1, 3, 1 << 20));
        let err = linux_resources(
            &hc(|h| {
                h.blkio_weight_device = Some(vec![ResourcesBlkioWeightDevice {
                    path: Some("/dev/nope".into()),
                    weight: Some(10),
                }])
            }),
            vec![],
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("stat /dev/nope: "), "{err}");
    }

    #[test]
    fn cpusets_parse() {
        assert_eq!(parse_cpuset("0-3,8,10-11"), Some(11));
        assert_eq!(parse_cpuset("5"), Some(5));
        for bad in ["", "1,", "-1", "a", "1-2-3", "2-1", " 1"] {
            assert_eq!(parse_cpuset(bad), None, "{bad:?}");
        }
    }
}
