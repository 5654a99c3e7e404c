//! Limits on cgroup v1 hierarchies (pure v1 and hybrid hosts).
//!
//! Each resource goes to the hierarchy of its controller, wherever that is
//! mounted (cpu and cpuacct may be separate or co-mounted). On a hybrid host
//! the controllers that only the unified mount holds (hugetlb on this build
//! host, rdma on some) are driven through their v2 files there, as are
//! `unified` keys of those controllers.

use std::io;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
};

use crate::devices;
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_field};
use crate::manager::{CgroupManager, Hierarchy};
use crate::mounts::Layout;
use crate::v2;

pub(crate) fn apply(m: &CgroupManager, r: &LinuxResources) -> Result<()> {
    if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        if m.layout() != Layout::Hybrid {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.unified".into(),
                reason: format!(
                    "this host has only cgroup v1; unified keys ({}) need cgroup v2",
                    unified.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    if let Some(cpu) = r.cpu() {
        apply_cpuset(m, cpu)?;
        apply_cpu(m, cpu)?;
    }
    if let Some(devs) = r.devices() {
        let rules = devices::parse_rules(devs)?;
        devices::apply_v1(m.v1_dir("devices", "linux.resources.devices")?, &rules)?;
    }
    if let Some(mem) = r.memory() {
        apply_memory(m, mem)?;
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        if limit != 0 {
            let v = if limit > 0 {
                limit.to_string()
            } else {
                "max".into()
            };
            let field = "linux.resources.pids.limit";
            write_field(m.v1_dir("pids", field)?, "pids.max", &v, field)?;
        }
    }
    if let Some(io) = r.block_io() {
        apply_blkio(m, io)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        apply_hugetlb(m, limits)?;
    }
    if let Some(net) = r.network() {
        apply_network(m, net)?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        if let Some(h) = m.v1("rdma") {
            for line in v2::rdma_lines(rdma) {
                write_field(&h.dir, "rdma.max", &line, "linux.resources.rdma")?;
            }
        } else {
            let u = unified_only(m, "rdma", "linux.resources.rdma")?;
            v2::apply_rdma(&u.dir, rdma)?;
        }
    }
    if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        apply_unified_hybrid(m, unified)?;
    }
    Ok(())
}

/// On a hybrid host: the unified hierarchy, with `controller` enabled down
/// to the container, when no v1 hierarchy has that controller.
fn unified_only<'a>(m: &'a CgroupManager, controller: &str, field: &str) -> Result<&'a Hierarchy> {
    let unsupported = |reason: String| CgroupError::Unsupported {
        field: field.to_string(),
        reason,
    };
    let u = m.unified().ok_or_else(|| {
        unsupported(format!(
            "the {controller} cgroup controller is not mounted on this host"
        ))
    })?;
    if !v2::root_controllers(u)?.iter().any(|c| c == controller) {
        return Err(unsupported(format!(
            "the {controller} cgroup controller is neither mounted as v1 nor offered by {}",
            u.mount_point.display()
        )));
    }
    v2::enable_controllers(u, &[controller.to_string()], true)?;
    Ok(u)
}

fn apply_cpuset(m: &CgroupManager, cpu: &LinuxCpu) -> Result<()> {
    for (file, value, field) in [
        ("cpuset.cpus", cpu.cpus(), "linux.resources.cpu.cpus"),
        ("cpuset.mems", cpu.mems(), "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = value.as_deref().filter(|s| !s.is_empty()) {
            write_field(m.v1_dir("cpuset", field)?, file, v, field)?;
        }
    }
    Ok(())
}

fn apply_cpu(m: &CgroupManager, cpu: &LinuxCpu) -> Result<()> {
    let shares = cpu.shares().unwrap_or(0);
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    let rt_runtime = cpu.realtime_runtime().unwrap_or(0);
    let rt_period = cpu.realtime_period().unwrap_or(0);
    let any = shares != 0
        || quota != 0
        || period != 0
        || rt_runtime != 0
        || rt_period != 0
        || cpu.burst().is_some()
        || cpu.idle().is_some();
    if !any {
        return Ok(());
    }
    let dir = m.v1_dir("cpu", "linux.resources.cpu")?;

    if shares != 0 {
        let field = "linux.resources.cpu.shares";
        write_field(dir, "cpu.shares", &shares.to_string(), field)?;
        // The kernel clamps shares silently; say so instead.
        let file = dir.join("cpu.shares");
        let actual = fsutil::read_u64(&file)?;
        if actual != shares {
            return Err(CgroupError::ValueNotApplied {
                path: file,
                wanted: shares.to_string(),
                actual: actual.to_string(),
            });
        }
    }

    // Period first, then quota. A shorter period can be refused (EINVAL)
    // while the old quota/new period ratio exceeds the parent's; then it is
    // written again after the quota.
    let mut period_pending = None;
    if period != 0 {
        let v = period.to_string();
        let file = dir.join("cpu.cfs_period_us");
        match fsutil::write_raw(&file, &v) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota != 0 => {
                period_pending = Some(v)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return write_field(dir, "cpu.cfs_period_us", &v, "linux.resources.cpu.period")
            }
            Err(source) => return Err(fsutil::write_error(&file, &v, source)),
        }
    }
    if quota != 0 {
        write_field(
            dir,
            "cpu.cfs_quota_us",
            &quota.to_string(),
            "linux.resources.cpu.quota",
        )?;
        if let Some(v) = period_pending {
            write_field(dir, "cpu.cfs_period_us", &v, "linux.resources.cpu.period")?;
        }
    }
    if let Some(burst) = cpu.burst() {
        write_field(
            dir,
            "cpu.cfs_burst_us",
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
    if rt_period != 0 {
        write_field(
            dir,
            "cpu.rt_period_us",
            &rt_period.to_string(),
            "linux.resources.cpu.realtimePeriod",
        )?;
    }
    if rt_runtime != 0 {
        write_field(
            dir,
            "cpu.rt_runtime_us",
            &rt_runtime.to_string(),
            "linux.resources.cpu.realtimeRuntime",
        )?;
    }
    Ok(())
}

fn apply_memory(m: &CgroupManager, mem: &LinuxMemory) -> Result<()> {
    // kernel and kernelTCP are ignored, as runc does: the kernel dropped them.
    let limit = mem.limit().unwrap_or(0);
    let mut swap = mem.swap().unwrap_or(0);
    let reservation = mem.reservation().unwrap_or(0);
    let any = limit != 0
        || swap != 0
        || reservation != 0
        || mem.swappiness().is_some()
        || mem.disable_oom_killer().is_some()
        || mem.use_hierarchy().is_some();
    if !any {
        return Ok(());
    }
    let dir = m.v1_dir("memory", "linux.resources.memory")?;

    if limit > 0 && swap > 0 && swap < limit {
        return Err(CgroupError::InvalidValue {
            field: "linux.resources.memory.swap".into(),
            value: swap.to_string(),
            reason: format!("memory+swap must be at least the memory limit {limit}"),
        });
    }
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    if limit == -1 && swap == 0 {
        // Unlimited memory means unlimited memory+swap too.
        swap = -1;
    }
    if swap != 0 && !memsw.exists() {
        if swap == -1 || swap == limit {
            // Without swap accounting there is nothing to write for "no
            // limit" or for "no swap beyond the memory limit".
            swap = 0;
        } else {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.memory.swap".into(),
                reason: format!(
                    "{} does not exist: swap accounting is off (boot with swapaccount=1)",
                    memsw.display()
                ),
            });
        }
    }

    // memsw must stay >= memory at every step: raise memsw first when growing.
    let swap_first = if limit != 0 && swap != 0 {
        let current = fsutil::read_u64(&dir.join("memory.limit_in_bytes"))?;
        swap == -1 || current < swap as u64
    } else {
        false
    };
    if swap_first {
        write_field(
            dir,
            "memory.memsw.limit_in_bytes",
            &swap.to_string(),
            "linux.resources.memory.swap",
        )?;
    }
    if limit != 0 {
        set_memory_limit(dir, limit)?;
    }
    if swap != 0 && !swap_first {
        write_field(
            dir,
            "memory.memsw.limit_in_bytes",
            &swap.to_string(),
            "linux.resources.memory.swap",
        )?;
    }

    if reservation != 0 {
        write_field(
            dir,
            "memory.soft_limit_in_bytes",
            &reservation.to_string(),
            "linux.resources.memory.reservation",
        )?;
    }
    if let Some(disable) = mem.disable_oom_killer() {
        let v = if disable { "1" } else { "0" };
        write_field(
            dir,
            "memory.oom_control",
            v,
            "linux.resources.memory.disableOOMKiller",
        )?;
    }
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidValue {
                field: "linux.resources.memory.swappiness".into(),
                value: s.to_string(),
                reason: "valid swappiness is 0-100".into(),
            });
        }
        write_field(
            dir,
            "memory.swappiness",
            &s.to_string(),
            "linux.resources.memory.swappiness",
        )?;
    }
    if let Some(h) = mem.use_hierarchy() {
        let v = if h { "1" } else { "0" };
        write_field(
            dir,
            "memory.use_hierarchy",
            v,
            "linux.resources.memory.useHierarchy",
        )?;
    }
    Ok(())
}

fn set_memory_limit(dir: &Path, limit: i64) -> Result<()> {
    let file = dir.join("memory.limit_in_bytes");
    let v = limit.to_string();
    match fsutil::write_raw(&file, &v) {
        Ok(()) => Ok(()),
        // EBUSY: below current usage and the kernel could not reclaim enough.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(CgroupError::MemoryBelowUsage {
            limit,
            usage: fsutil::read_u64(&dir.join("memory.usage_in_bytes"))?,
            peak: fsutil::read_u64(&dir.join("memory.max_usage_in_bytes"))?,
            path: file,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_field(
            dir,
            "memory.limit_in_bytes",
            &v,
            "linux.resources.memory.limit",
        ),
        Err(source) => Err(fsutil::write_error(&file, &v, source)),
    }
}

/// Write `value` to the first of `files` that exists (CFQ names, then BFQ).
fn write_first(dir: &Path, files: &[&str], value: &str, field: &str) -> Result<()> {
    for f in files {
        let path = dir.join(f);
        match fsutil::write_raw(&path, value) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(fsutil::write_error(&path, value, source)),
        }
    }
    Err(CgroupError::Unsupported {
        field: field.to_string(),
        reason: format!(
            "none of {} exists in {} (no CFQ/BFQ I/O scheduler weights)",
            files.join(", "),
            dir.display()
        ),
    })
}

fn apply_blkio(m: &CgroupManager, io: &LinuxBlockIo) -> Result<()> {
    let any = io.weight().is_some_and(|w| w != 0)
        || io.leaf_weight().is_some_and(|w| w != 0)
        || [
            io.throttle_read_bps_device(),
            io.throttle_write_bps_device(),
            io.throttle_read_iops_device(),
            io.throttle_write_iops_device(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
        || io.weight_device().as_ref().is_some_and(|l| !l.is_empty());
    if !any {
        return Ok(());
    }
    let dir = m.v1_dir("blkio", "linux.resources.blockIO")?;
    if let Some(w) = io.weight().filter(|&w| w != 0) {
        write_first(
            dir,
            &["blkio.weight", "blkio.bfq.weight"],
            &w.to_string(),
            "linux.resources.blockIO.weight",
        )?;
    }
    if let Some(w) = io.leaf_weight().filter(|&w| w != 0) {
        write_field(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "linux.resources.blockIO.leafWeight",
        )?;
    }
    for (i, d) in io.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            write_first(
                dir,
                &["blkio.weight_device", "blkio.bfq.weight_device"],
                &format!("{}:{} {}", d.major(), d.minor(), w),
                &format!("linux.resources.blockIO.weightDevice[{i}].weight"),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            write_field(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {}", d.major(), d.minor(), w),
                &format!("linux.resources.blockIO.weightDevice[{i}].leafWeight"),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            io.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            io.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            io.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            io.throttle_write_iops_device(),
        ),
    ];
    for (name, file, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let v = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            write_field(
                dir,
                file,
                &v,
                &format!("linux.resources.blockIO.{name}[{i}]"),
            )?;
        }
    }
    Ok(())
}

fn apply_hugetlb(m: &CgroupManager, limits: &[LinuxHugepageLimit]) -> Result<()> {
    let Some(h) = m.v1("hugetlb") else {
        let u = unified_only(m, "hugetlb", "linux.resources.hugepageLimits")?;
        return v2::apply_hugetlb(&u.dir, limits);
    };
    for (i, l) in limits.iter().enumerate() {
        let size = l.page_size();
        v2::check_page_size(i, size)?;
        let v = if l.limit() < 0 {
            "-1".to_string()
        } else {
            l.limit().to_string()
        };
        write_field(
            &h.dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &v,
            &format!("linux.resources.hugepageLimits[{i}]"),
        )?;
        let rsvd = h.dir.join(format!("hugetlb.{size}.rsvd.limit_in_bytes"));
        match fsutil::write_raw(&rsvd, &v) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(fsutil::write_error(&rsvd, &v, source)),
        }
    }
    Ok(())
}

fn apply_network(m: &CgroupManager, net: &LinuxNetwork) -> Result<()> {
    if let Some(id) = net.class_id() {
        let field = "linux.resources.network.classID";
        write_field(
            m.v1_dir("net_cls", field)?,
            "net_cls.classid",
            &id.to_string(),
            field,
        )?;
    }
    if let Some(prios) = net.priorities().as_ref().filter(|p| !p.is_empty()) {
        let field = "linux.resources.network.priorities";
        let dir = m.v1_dir("net_prio", field)?;
        for p in prios {
            write_field(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
                field,
            )?;
        }
    }
    Ok(())
}

/// `unified` keys on a hybrid host: allowed for the controllers only the
/// unified mount has (and for core `cgroup.*` files there).
fn apply_unified_hybrid(
    m: &CgroupManager,
    unified: &std::collections::HashMap<String, String>,
) -> Result<()> {
    let sorted: std::collections::BTreeMap<_, _> = unified.iter().collect();
    for (k, v) in sorted {
        v2::check_unified_key(k)?;
        let field = format!("linux.resources.unified[{k:?}]");
        let controller = k.split('.').next().unwrap_or_default();
        let u = if controller == "cgroup" {
            m.unified().ok_or_else(|| CgroupError::Unsupported {
                field: field.clone(),
                reason: "no cgroup2 hierarchy is mounted".into(),
            })?
        } else if m.v1(controller).is_some() {
            return Err(CgroupError::Unsupported {
                field,
                reason: format!(
                    "the {controller} controller is driven through cgroup v1 on this hybrid host; \
                     use the OCI fields for it"
                ),
            });
        } else {
            unified_only(m, controller, &field)?
        };
        write_field(&u.dir, k, v, &field)?;
    }
    Ok(())
}
