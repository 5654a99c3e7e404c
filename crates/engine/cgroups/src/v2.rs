//! Limits on the unified (cgroup v2) hierarchy.
//!
//! The OCI resources were designed for v1; the conversions follow runc so a
//! spec means the same thing under both runtimes:
//! - cpu.weight = 1 + ((shares - 2) * 9999) / 262142
//! - io.weight  = 1 + ((blkio weight - 10) * 9999) / 990 (io.bfq.weight takes the v1 value)
//! - memory.swap.max = swap - limit (OCI swap is memory+swap)
//!
//! Devices have no interface files on v2: an eBPF program does the job (see
//! [`crate::bpf`]). memory.oom.group is left at the kernel default (off)
//! unless `unified` sets it.
//!
//! On a hybrid host the same functions drive the controllers that only the
//! unified mount holds (hugetlb on this build host).

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxRdma, LinuxResources,
};

use crate::bpf;
use crate::devices;
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_field};
use crate::manager::Hierarchy;

/// Controllers the hierarchy's root offers (its cgroup.controllers).
pub(crate) fn root_controllers(h: &Hierarchy) -> Result<Vec<String>> {
    let content = fsutil::read(&h.mount_point.join("cgroup.controllers"))?;
    Ok(content.split_whitespace().map(str::to_string).collect())
}

/// Enable `controllers` in cgroup.subtree_control of every ancestor of the
/// container, top-down. `strict`: fail if that is impossible. Otherwise it
/// is best effort (as runc): an ancestor holding processes cannot enable
/// controllers, and a missing controller is reported when its file is written.
pub(crate) fn enable_controllers(
    h: &Hierarchy,
    controllers: &[String],
    strict: bool,
) -> Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let value = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    for dir in h.ancestors() {
        let file = dir.join("cgroup.subtree_control");
        if let Err(source) = fsutil::write_raw(&file, &value) {
            if strict {
                return Err(fsutil::write_error(&file, &value, source));
            }
            for c in controllers {
                let _ = fsutil::write_raw(&file, &format!("+{c}"));
            }
        }
    }
    Ok(())
}

/// Apply every resource on a pure v2 host.
pub(crate) fn apply(h: &Hierarchy, r: &LinuxResources) -> Result<()> {
    let dir = h.dir.as_path();
    if let Some(cpu) = r.cpu() {
        apply_cpu(dir, cpu)?;
    }
    if let Some(mem) = r.memory() {
        apply_memory(dir, mem)?;
    }
    if let Some(pids) = r.pids() {
        apply_pids(dir, pids.limit())?;
    }
    if let Some(io) = r.block_io() {
        apply_io(dir, io)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        apply_hugetlb(dir, limits)?;
    }
    if let Some(net) = r.network() {
        if net.class_id().is_some() || net.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.network".into(),
                reason: "net_cls and net_prio exist only in cgroup v1".into(),
            });
        }
    }
    if let Some(rdma) = r.rdma() {
        apply_rdma(dir, rdma)?;
    }
    if let Some(devs) = r.devices() {
        let rules = devices::parse_rules(devs)?;
        bpf::apply_device_filter(dir, &devices::emulate(&rules))?;
    }
    if let Some(unified) = r.unified() {
        apply_unified(dir, unified)?;
    }
    Ok(())
}

/// The v2 spelling of a limit: 0 is unset, -1 is "max".
fn num_to_str(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

pub(crate) fn cpu_shares_to_weight(shares: u64) -> u64 {
    // The kernel clamps v1 shares to [2, 262144].
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

/// OCI swap is memory+swap; memory.swap.max is swap alone.
pub(crate) fn swap_to_v2(swap: i64, memory: i64) -> std::result::Result<i64, &'static str> {
    match (swap, memory) {
        (0, -1) => Ok(-1),
        (-1 | 0, _) => Ok(swap),
        (_, -1) => Ok(swap),
        (_, 0) => Err("a swap limit needs a memory limit"),
        (_, m) if m < 0 => Err("the memory limit is negative"),
        (s, m) if s < m => Err("memory+swap must be at least the memory limit"),
        (s, m) => Ok(s - m),
    }
}

fn apply_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        let w = cpu_shares_to_weight(shares).to_string();
        write_field(dir, "cpu.weight", &w, "linux.resources.cpu.shares")?;
    }
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push(' ');
            v.push_str(&period.to_string());
        }
        write_field(dir, "cpu.max", &v, "linux.resources.cpu.quota")?;
    }
    if let Some(burst) = cpu.burst() {
        write_field(
            dir,
            "cpu.max.burst",
            &burst.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    if let Some(idle) = cpu.idle() {
        write_field(
            dir,
            "cpu.idle",
            &idle.to_string(),
            "linux.resources.cpu.idle",
        )?;
    }
    if cpu.realtime_runtime().is_some_and(|v| v != 0)
        || cpu.realtime_period().is_some_and(|v| v != 0)
    {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.cpu.realtimeRuntime".into(),
            reason: "cgroup v2 has no per-cgroup realtime budget".into(),
        });
    }
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_field(dir, "cpuset.cpus", cpus, "linux.resources.cpu.cpus")?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        write_field(dir, "cpuset.mems", mems, "linux.resources.cpu.mems")?;
    }
    Ok(())
}

fn apply_memory(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    if mem.swappiness().is_some() {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.memory.swappiness".into(),
            reason: "cgroup v2 has no per-cgroup swappiness".into(),
        });
    }
    if mem.disable_oom_killer() == Some(true) {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.memory.disableOOMKiller".into(),
            reason: "cgroup v2 cannot disable the OOM killer".into(),
        });
    }
    if mem.use_hierarchy() == Some(false) {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.memory.useHierarchy".into(),
            reason: "cgroup v2 is always hierarchical".into(),
        });
    }
    // kernel and kernelTCP are ignored, as runc does: the kernel dropped them.
    let limit = mem.limit().unwrap_or(0);
    let swap = mem.swap().unwrap_or(0);
    let reservation = mem.reservation().unwrap_or(0);
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    if mem.check_before_update() == Some(true) && limit > 0 {
        let current = fsutil::read_u64(&dir.join("memory.current"))?;
        if (limit as u64) < current {
            return Err(CgroupError::MemoryBelowUsage {
                path: dir.join("memory.max"),
                limit,
                usage: current,
                peak: fsutil::read_u64_optional(&dir.join("memory.peak"))?.unwrap_or(current),
            });
        }
    }
    let swap_v2 = swap_to_v2(swap, limit).map_err(|reason| CgroupError::InvalidValue {
        field: "linux.resources.memory.swap".into(),
        value: swap.to_string(),
        reason: reason.into(),
    })?;
    let swap_str = match num_to_str(swap_v2) {
        // memory == swap: no swap at all.
        None if swap > 0 => Some("0".to_string()),
        s => s,
    };
    if let Some(s) = swap_str {
        let file = dir.join("memory.swap.max");
        match fsutil::write_raw(&file, &s) {
            Ok(()) => {}
            // No swap accounting: "no limit" and "no swap" need nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && (s == "max" || s == "0") => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CgroupError::Unsupported {
                    field: "linux.resources.memory.swap".into(),
                    reason: format!("{} does not exist: swap accounting is off", file.display()),
                })
            }
            Err(source) => return Err(fsutil::write_error(&file, &s, source)),
        }
    }
    if let Some(v) = num_to_str(limit) {
        write_field(dir, "memory.max", &v, "linux.resources.memory.limit")?;
    }
    if let Some(v) = num_to_str(reservation) {
        write_field(dir, "memory.low", &v, "linux.resources.memory.reservation")?;
    }
    Ok(())
}

fn apply_pids(dir: &Path, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    let v = if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    };
    write_field(dir, "pids.max", &v, "linux.resources.pids.limit")
}

fn apply_io(dir: &Path, io: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = io.weight().filter(|&w| w != 0) {
        // BFQ takes the v1 weight as is; otherwise convert for io.weight.
        match fsutil::write_raw(&dir.join("io.bfq.weight"), &w.to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let v = blkio_weight_to_io_weight(w).to_string();
                write_field(dir, "io.weight", &v, "linux.resources.blockIO.weight")?;
            }
            Err(source) => {
                return Err(fsutil::write_error(
                    &dir.join("io.bfq.weight"),
                    &w.to_string(),
                    source,
                ))
            }
        }
    }
    if io.leaf_weight().is_some_and(|w| w != 0) {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.blockIO.leafWeight".into(),
            reason: "cgroup v2 has no leaf weight".into(),
        });
    }
    for (i, d) in io.weight_device().iter().flatten().enumerate() {
        if d.leaf_weight().is_some() {
            return Err(CgroupError::Unsupported {
                field: format!("linux.resources.blockIO.weightDevice[{i}].leafWeight"),
                reason: "cgroup v2 has no leaf weight".into(),
            });
        }
        if let Some(w) = d.weight() {
            let v = format!("{}:{} {}", d.major(), d.minor(), w);
            write_field(
                dir,
                "io.bfq.weight",
                &v,
                &format!("linux.resources.blockIO.weightDevice[{i}]"),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "rbps",
            io.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            io.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            io.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            io.throttle_write_iops_device(),
        ),
    ];
    for (name, key, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            let v = format!("{}:{} {key}={rate}", d.major(), d.minor());
            write_field(
                dir,
                "io.max",
                &v,
                &format!("linux.resources.blockIO.{name}[{i}]"),
            )?;
        }
    }
    Ok(())
}

/// Check an OCI hugepage size ("2MB", "1GB", "64KB").
pub(crate) fn check_page_size(i: usize, size: &str) -> Result<()> {
    let digits = size.trim_end_matches(|c: char| !c.is_ascii_digit());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !["B", "KB", "MB", "GB", "TB", "PB"].contains(&unit)
    {
        return Err(CgroupError::InvalidValue {
            field: format!("linux.resources.hugepageLimits[{i}].pageSize"),
            value: size.to_string(),
            reason: "expected a size such as 2MB or 1GB".into(),
        });
    }
    Ok(())
}

pub(crate) fn apply_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for (i, l) in limits.iter().enumerate() {
        let size = l.page_size();
        check_page_size(i, size)?;
        let v = if l.limit() < 0 {
            "max".to_string()
        } else {
            l.limit().to_string()
        };
        let field = format!("linux.resources.hugepageLimits[{i}]");
        write_field(dir, &format!("hugetlb.{size}.max"), &v, &field)?;
        // Also limit reservations where the kernel has them (Linux 5.7+), so a
        // mapping fails at mmap time rather than with SIGBUS on fault.
        let rsvd = dir.join(format!("hugetlb.{size}.rsvd.max"));
        match fsutil::write_raw(&rsvd, &v) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(fsutil::write_error(&rsvd, &v, source)),
        }
    }
    Ok(())
}

/// rdma.max lines ("mlx5_0 hca_handle=2 hca_object=2000"); same format on v1.
pub(crate) fn rdma_lines(rdma: &std::collections::HashMap<String, LinuxRdma>) -> Vec<String> {
    let sorted: BTreeMap<_, _> = rdma.iter().collect();
    sorted
        .into_iter()
        .filter_map(|(dev, l)| {
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            (line.len() > dev.len()).then_some(line)
        })
        .collect()
}

pub(crate) fn apply_rdma(
    dir: &Path,
    rdma: &std::collections::HashMap<String, LinuxRdma>,
) -> Result<()> {
    for line in rdma_lines(rdma) {
        write_field(dir, "rdma.max", &line, "linux.resources.rdma")?;
    }
    Ok(())
}

/// Validate a `unified` key: a file name of the cgroup directory.
pub(crate) fn check_unified_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(CgroupError::InvalidValue {
            field: "linux.resources.unified".into(),
            value: key.to_string(),
            reason: "keys are cgroup v2 interface file names such as \"memory.high\"".into(),
        });
    }
    Ok(())
}

pub(crate) fn apply_unified(
    dir: &Path,
    unified: &std::collections::HashMap<String, String>,
) -> Result<()> {
    let sorted: BTreeMap<_, _> = unified.iter().collect();
    for (k, v) in sorted {
        check_unified_key(k)?;
        write_field(dir, k, v, &format!("linux.resources.unified[{k:?}]"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(swap_to_v2(0, -1), Ok(-1));
        assert_eq!(swap_to_v2(-1, 100), Ok(-1));
        assert_eq!(swap_to_v2(0, 100), Ok(0));
        assert_eq!(swap_to_v2(300, 100), Ok(200));
        assert_eq!(swap_to_v2(100, 100), Ok(0));
        assert_eq!(swap_to_v2(500, -1), Ok(500));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn page_sizes_and_unified_keys() {
        assert!(check_page_size(0, "2MB").is_ok());
        assert!(check_page_size(0, "1GB").is_ok());
        assert!(check_page_size(0, "64KB").is_ok());
        let e = check_page_size(3, "2M").unwrap_err();
        assert!(e.to_string().contains("hugepageLimits[3].pageSize"), "{e}");
        assert!(check_page_size(0, "MB").is_err());
        assert!(check_unified_key("memory.high").is_ok());
        assert!(check_unified_key("../memory.high").is_err());
        assert!(check_unified_key("memory").is_err());
    }

    #[test]
    fn rdma_lines_skip_empty_limits() {
        let rdma: std::collections::HashMap<String, LinuxRdma> = serde_json::from_str(
            r#"{"mlx5_1": {"hcaHandles": 3}, "mlx5_0": {"hcaHandles": 2, "hcaObjects": 2000}, "x": {}}"#,
        )
        .unwrap();
        assert_eq!(
            rdma_lines(&rdma),
            ["mlx5_0 hca_handle=2 hca_object=2000", "mlx5_1 hca_handle=3"]
        );
    }
    /// The v2 writer against a directory of plain files standing in for a
    /// cgroup (this build host has no memory/cpu/io/pids on cgroup2): which
    /// value lands in which file.
    #[test]
    fn writes_v2_files_with_runc_conversions() {
        let root = std::env::temp_dir().join(format!(
            "berth-cgroups-v2-fake-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let dir = root.join("c");
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            "cpu.weight",
            "cpu.max",
            "cpu.max.burst",
            "cpuset.cpus",
            "cpuset.mems",
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "memory.high",
        ];
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let h = Hierarchy {
            key: "unified".into(),
            controllers: vec![],
            mount_point: root.clone(),
            cgroup: "/c".into(),
            dir: dir.clone(),
        };
        let r: LinuxResources = serde_json::from_str(
            r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0", "mems": "0"},
                "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
                "pids": {"limit": -1},
                "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": -1}],
                "unified": {"memory.high": "90000000"}}"#,
        )
        .unwrap();
        let result = apply(&h, &r);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let got: Vec<(&str, String)> = files.iter().map(|f| (*f, read(f))).collect();
        // A missing controller file is an error naming the spec field.
        let rdma: LinuxResources =
            serde_json::from_str(r#"{"rdma": {"mlx5_0": {"hcaHandles": 2}}}"#).unwrap();
        let rdma_err = apply(&h, &rdma).unwrap_err();
        let net: LinuxResources = serde_json::from_str(r#"{"network": {"classID": 1}}"#).unwrap();
        let net_err = apply(&h, &net).unwrap_err();
        std::fs::remove_dir_all(&root).unwrap();

        result.unwrap();
        let want = [
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "1000"),
            ("cpuset.cpus", "0"),
            ("cpuset.mems", "0"),
            ("memory.max", "104857600"),
            ("memory.low", "52428800"),
            ("memory.swap.max", "104857600"),
            ("pids.max", "max"),
            ("io.weight", "4950"),
            ("io.max", "8:0 rbps=1048576"),
            ("hugetlb.2MB.max", "max"),
            ("memory.high", "90000000"),
        ];
        let want: Vec<(&str, String)> = want.iter().map(|(f, v)| (*f, v.to_string())).collect();
        assert_eq!(got, want);
        assert!(matches!(rdma_err, CgroupError::Unsupported { .. }));
        assert!(
            rdma_err.to_string().contains("linux.resources.rdma"),
            "{rdma_err}"
        );
        assert!(
            net_err.to_string().contains("linux.resources.network"),
            "{net_err}"
        );
    }
}
