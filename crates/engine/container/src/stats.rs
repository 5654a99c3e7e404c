//! `GET /containers/{id}/stats`: a container's cgroup counters as Docker's stats JSON.
//!
//! The life of `docker stats`:
//! 1. once a second (once for `stream=false`), the daemon calls [`container_stats`] with the
//!    container's cgroup (`/berth/<id>`) and the sample it sent before;
//! 2. berth-cgroups reads the counters from the v1 hierarchies or the v2 one, whichever
//!    this host has, and [`HostSample`] reads the host's totals from /proc;
//! 3. [`stats_response`] shapes them as moby does (`statsV1`/`statsV2` in
//!    daemon/daemon_unix.go); the previous sample's CPU counters become `precpu_stats`;
//! 4. the docker CLI computes from that: CPU % = Δ`cpu_usage.total_usage` /
//!    Δ`system_cpu_usage` × `online_cpus` × 100; MEM USAGE = `memory_stats.usage` minus
//!    `stats.total_inactive_file` (v1) or `stats.inactive_file` (v2), over `limit`; BLOCK
//!    I/O = the read and write entries of `io_service_bytes_recursive`; PIDS =
//!    `pids_stats.current`.
//!
//! Networks are left out: berth containers have no network counters yet.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use berth_cgroups::{BlkioEntry, CgroupError, CgroupManager, Layout, Stats};
use berth_core::{ErrorKind, HasKind};
use bollard_stubs::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
    ContainerMemoryStats, ContainerPidsStats, ContainerStatsResponse, ContainerThrottlingData,
};

use crate::logs::rfc3339_nano;

/// Go's zero `time.Time`, what Docker sends as `preread` before there is a previous sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The memory.stat keys moby reports on cgroup v1 (missing ones as 0).
const V1_MEMORY_KEYS: [&str; 32] = [
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
];

/// The memory.stat keys moby reports on cgroup v2 (missing ones as 0).
const V2_MEMORY_KEYS: [&str; 31] = [
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The container's cgroup does not exist: it is not running.
    #[error("cgroup {path} does not exist: the container is not running")]
    NoCgroup { path: String },

    /// Reading the cgroup's counters failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),

    /// A host file (/proc/stat, /proc/meminfo) could not be read.
    #[error("cannot read {path}: {source}")]
    HostRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A host file did not have the expected format.
    #[error("cannot parse {path}: {detail}")]
    HostParse { path: PathBuf, detail: &'static str },
}

impl HasKind for StatsError {
    fn kind(&self) -> ErrorKind {
        match self {
            StatsError::NoCgroup { .. } => ErrorKind::Conflict,
            StatsError::Cgroup(_) | StatsError::HostRead { .. } | StatsError::HostParse { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

/// One sample of the container whose cgroup is `cgroups_path` (as the runtime resolved it,
/// e.g. `/berth/<id>`), taken at `read_time`. `previous` is the sample sent before, if
/// any: its CPU counters become `precpu_stats`. `id` and `name` are left to the caller.
pub fn container_stats(
    cgroups_path: &str,
    previous: Option<&ContainerStatsResponse>,
    read_time: SystemTime,
) -> Result<ContainerStatsResponse, StatsError> {
    let cgroup = CgroupManager::open(cgroups_path)?;
    if !cgroup.exists() {
        return Err(StatsError::NoCgroup {
            path: cgroups_path.to_string(),
        });
    }
    let counters = cgroup.stats()?;
    let host = HostSample::read()?;
    Ok(stats_response(
        cgroup.layout(),
        &counters,
        &host,
        previous,
        read_time,
    ))
}

/// What the host says at the time of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSample {
    /// CPU time of the whole host in nanoseconds, as moby computes it: the first seven
    /// fields of /proc/stat's `cpu` line (user to softirq), ticks converted with CLK_TCK.
    pub system_cpu_usage: u64,
    /// The `cpuN` lines of /proc/stat.
    pub online_cpus: u32,
    /// MemTotal of /proc/meminfo, in bytes: the limit shown for an unlimited container.
    pub memory_total: u64,
}

impl HostSample {
    pub fn read() -> Result<Self, StatsError> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| StatsError::HostRead {
                path: path.into(),
                source,
            })
        };
        let bad = |path: &str, detail| StatsError::HostParse {
            path: path.into(),
            detail,
        };
        let (system_cpu_usage, online_cpus) =
            parse_proc_stat(&read("/proc/stat")?, clock_ticks_per_second())
                .ok_or_else(|| bad("/proc/stat", "no \"cpu\" line with seven numbers"))?;
        let memory_total = parse_mem_total(&read("/proc/meminfo")?)
            .ok_or_else(|| bad("/proc/meminfo", "no \"MemTotal: <n> kB\" line"))?;
        Ok(HostSample {
            system_cpu_usage,
            online_cpus,
            memory_total,
        })
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&hz| hz > 0).unwrap_or(100)
}

/// /proc/stat: (the `cpu` line's first seven fields in nanoseconds, the `cpuN` lines).
fn parse_proc_stat(content: &str, ticks_per_second: u64) -> Option<(u64, u32)> {
    let mut usage = None;
    let mut cpus = 0;
    // The cpu lines come first (as glibc assumes too).
    for rest in content.lines().map_while(|l| l.strip_prefix("cpu")) {
        if rest.starts_with(' ') {
            let fields = rest
                .split_whitespace()
                .take(7)
                .map(|f| f.parse::<u64>().ok())
                .collect::<Option<Vec<u64>>>()?;
            if fields.len() < 7 {
                return None;
            }
            let ticks: u128 = fields.iter().map(|&f| u128::from(f)).sum();
            let nanos = ticks * 1_000_000_000 / u128::from(ticks_per_second);
            usage = Some(u64::try_from(nanos).unwrap_or(u64::MAX));
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus += 1;
        }
    }
    Some((usage?, cpus))
}

/// /proc/meminfo's MemTotal in bytes.
fn parse_mem_total(content: &str) -> Option<u64> {
    let line = content.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// A sample shaped as Docker's stats JSON from the cgroup's counters (`layout` says which
/// cgroup version they came from: hybrid hosts count as v1) and the host's.
pub fn stats_response(
    layout: Layout,
    counters: &Stats,
    host: &HostSample,
    previous: Option<&ContainerStatsResponse>,
    read_time: SystemTime,
) -> ContainerStatsResponse {
    let v2 = layout == Layout::V2;
    ContainerStatsResponse {
        os_type: Some("linux".into()),
        read: Some(rfc3339_nano(read_time)),
        preread: Some(
            previous
                .and_then(|p| p.read.clone())
                .unwrap_or_else(|| ZERO_TIME.into()),
        ),
        cpu_stats: Some(cpu_stats(counters, host, v2)),
        precpu_stats: Some(
            previous
                .and_then(|p| p.cpu_stats.clone())
                .unwrap_or_else(zero_cpu_stats),
        ),
        memory_stats: Some(memory_stats(counters, host, v2)),
        pids_stats: Some(ContainerPidsStats {
            current: nonzero(counters.pids.current),
            limit: nonzero(counters.pids.limit),
        }),
        blkio_stats: Some(blkio_stats(counters, v2)),
        num_procs: Some(0),
        ..Default::default()
    }
}

/// Go's `omitempty` on a number: zero is left out.
fn nonzero<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

fn cpu_stats(counters: &Stats, host: &HostSample, v2: bool) -> ContainerCpuStats {
    let usage = &counters.cpu.usage;
    let throttling = &counters.cpu.throttling;
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(usage.total),
            // Per-CPU usage exists on v1 only.
            percpu_usage: (!v2 && !usage.percpu.is_empty()).then(|| usage.percpu.clone()),
            usage_in_kernelmode: Some(usage.kernel),
            usage_in_usermode: Some(usage.user),
        }),
        system_cpu_usage: nonzero(host.system_cpu_usage),
        online_cpus: nonzero(host.online_cpus),
        throttling_data: Some(ContainerThrottlingData {
            periods: Some(throttling.periods),
            throttled_periods: Some(throttling.throttled_periods),
            throttled_time: Some(throttling.throttled_time),
        }),
    }
}

/// The CPU counters before the first sample.
fn zero_cpu_stats() -> ContainerCpuStats {
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(0),
            percpu_usage: None,
            usage_in_kernelmode: Some(0),
            usage_in_usermode: Some(0),
        }),
        system_cpu_usage: None,
        online_cpus: None,
        throttling_data: Some(ContainerThrottlingData {
            periods: Some(0),
            throttled_periods: Some(0),
            throttled_time: Some(0),
        }),
    }
}

fn memory_stats(counters: &Stats, host: &HostSample, v2: bool) -> ContainerMemoryStats {
    let memory = &counters.memory;
    let keys: &[&str] = if v2 { &V2_MEMORY_KEYS } else { &V1_MEMORY_KEYS };
    // No memory.stat: no memory controller in the container's cgroup.
    let stats = (!memory.raw.is_empty()).then(|| {
        keys.iter()
            .map(|k| (k.to_string(), memory.raw.get(*k).copied().unwrap_or(0)))
            .collect::<HashMap<_, _>>()
    });
    // An unlimited container shows the host's memory.
    let limit = match host.memory_total {
        0 => memory.usage.limit,
        total => memory.usage.limit.min(total),
    };
    ContainerMemoryStats {
        usage: nonzero(memory.usage.usage),
        // v2 has memory.peak, but moby reports no maximum there.
        max_usage: if v2 { None } else { nonzero(memory.usage.max) },
        stats,
        failcnt: nonzero(memory.usage.failcnt),
        limit: nonzero(limit),
        ..Default::default()
    }
}

fn blkio_stats(counters: &Stats, v2: bool) -> ContainerBlkioStats {
    let blkio = &counters.blkio;
    let entries = |list: &[BlkioEntry]| {
        Some(
            list.iter()
                .map(|e| ContainerBlkioStatEntry {
                    major: Some(e.major),
                    minor: Some(e.minor),
                    // moby writes v2's io.stat operations in lower case.
                    op: Some(if v2 {
                        e.op.to_ascii_lowercase()
                    } else {
                        e.op.clone()
                    }),
                    value: Some(e.value),
                })
                .collect(),
        )
    };
    if v2 {
        // io.stat gives bytes and operations; moby reports the bytes only.
        return ContainerBlkioStats {
            io_service_bytes_recursive: entries(&blkio.io_service_bytes_recursive),
            ..Default::default()
        };
    }
    ContainerBlkioStats {
        io_service_bytes_recursive: entries(&blkio.io_service_bytes_recursive),
        io_serviced_recursive: entries(&blkio.io_serviced_recursive),
        io_queue_recursive: entries(&blkio.io_queued_recursive),
        io_service_time_recursive: entries(&blkio.io_service_time_recursive),
        io_wait_time_recursive: entries(&blkio.io_wait_time_recursive),
        io_merged_recursive: entries(&blkio.io_merged_recursive),
        io_time_recursive: entries(&blkio.io_time_recursive),
        sectors_recursive: entries(&blkio.sectors_recursive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::thread::sleep;
    use std::time::Duration;

    use crate::logs::parse_rfc3339;

    /// `docker stats`' CPU % (docker/cli calculateCPUPercentUnix).
    fn cli_cpu_percent(s: &ContainerStatsResponse) -> f64 {
        let cpu = s.cpu_stats.as_ref().unwrap();
        let pre = s.precpu_stats.as_ref().unwrap();
        let total = |c: &ContainerCpuStats| c.cpu_usage.as_ref().unwrap().total_usage.unwrap_or(0);
        let cpu_delta = total(cpu) as f64 - total(pre) as f64;
        let system_delta =
            cpu.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
        let mut online = f64::from(cpu.online_cpus.unwrap_or(0));
        if online == 0.0 {
            online = cpu
                .cpu_usage
                .as_ref()
                .unwrap()
                .percpu_usage
                .as_ref()
                .map_or(0, Vec::len) as f64;
        }
        if system_delta > 0.0 && cpu_delta > 0.0 {
            cpu_delta / system_delta * online * 100.0
        } else {
            0.0
        }
    }

    /// `docker stats`' MEM USAGE (docker/cli calculateMemUsageUnixNoCache).
    fn cli_mem_usage(s: &ContainerStatsResponse) -> u64 {
        let m = s.memory_stats.as_ref().unwrap();
        let usage = m.usage.unwrap_or(0);
        let stats = m.stats.clone().unwrap_or_default();
        if let Some(&v) = stats.get("total_inactive_file") {
            if v < usage {
                return usage - v;
            }
        }
        match stats.get("inactive_file").copied().unwrap_or(0) {
            v if v < usage => usage - v,
            _ => usage,
        }
    }

    /// `docker stats`' BLOCK I/O (docker/cli calculateBlockIO).
    fn cli_block_io(s: &ContainerStatsResponse) -> (u64, u64) {
        let mut rw = (0, 0);
        let b = s.blkio_stats.as_ref().unwrap();
        for e in b.io_service_bytes_recursive.iter().flatten() {
            match e.op.as_deref().and_then(|o| o.bytes().next()) {
                Some(b'r' | b'R') => rw.0 += e.value.unwrap(),
                Some(b'w' | b'W') => rw.1 += e.value.unwrap(),
                _ => {}
            }
        }
        rw
    }

    const HOST: HostSample = HostSample {
        system_cpu_usage: 1_000_000_000_000,
        online_cpus: 4,
        memory_total: 8 << 30,
    };

    #[test]
    fn parses_proc_files() {
        let stat = "cpu  100 5 50 1000 10 1 2 7 0 0\n\
                    cpu0 50 2 25 500 5 1 1 3 0 0\n\
                    cpu1 50 3 25 500 5 0 1 4 0 0\n\
                    intr 12345\n\
                    cpu9 this is not a cpu line\n";
        // (100+5+50+1000+10+1+2) ticks at 100 Hz; steal (7) is not counted.
        assert_eq!(parse_proc_stat(stat, 100), Some((11_680_000_000, 2)));
        assert_eq!(parse_proc_stat(stat, 1000), Some((1_168_000_000, 2)));
        assert_eq!(parse_proc_stat("cpu  1 2 3\n", 100), None);
        assert_eq!(parse_proc_stat("cpu  1 2 x 4 5 6 7\n", 100), None);
        assert_eq!(parse_proc_stat("intr 1\n", 100), None);
        // Years of uptime on many CPUs do not overflow.
        let big = format!("cpu  {} 0 0 0 0 0 0\n", u64::MAX / 10);
        assert_eq!(parse_proc_stat(&big, 100), Some((u64::MAX, 0)));

        let meminfo = "MemTotal:       16318916 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(16_318_916 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);

        let host = HostSample::read().unwrap();
        assert!(host.system_cpu_usage > 0 && host.online_cpus > 0 && host.memory_total > 0);
    }

    /// Counters shaped as runc prints them (the cgroup crate's own format).
    fn counters(json: serde_json::Value) -> Stats {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn v1_sample_has_what_the_docker_cli_reads() {
        let first = counters(serde_json::json!({
            "cpu": {"usage": {"total": 2_000_000_000u64, "percpu": [1_500_000_000u64, 500_000_000u64],
                              "kernel": 300_000_000u64, "user": 1_700_000_000u64},
                    "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 5000}},
            "memory": {"usage": {"usage": 100 << 20, "max": 120 << 20, "failcnt": 1,
                                 "limit": 9_223_372_036_854_771_712u64},
                       "raw": {"cache": 30 << 20, "rss": 60 << 20, "total_inactive_file": 20 << 20,
                               "shmem": 0}},
            "pids": {"current": 3},
            "blkio": {"ioServiceBytesRecursive": [
                {"major": 254, "minor": 0, "op": "Read", "value": 4096},
                {"major": 254, "minor": 0, "op": "Write", "value": 8192},
                {"major": 254, "minor": 0, "op": "Total", "value": 12288}]}
        }));
        let t1 = parse_rfc3339("2026-11-23T14:29:07.5Z").unwrap();
        let s1 = stats_response(Layout::Hybrid, &first, &HOST, None, t1);
        assert_eq!(s1.read.as_deref(), Some("2026-11-23T14:29:07.5Z"));
        assert_eq!(s1.preread.as_deref(), Some(ZERO_TIME));
        assert_eq!(s1.num_procs, Some(0));
        assert_eq!(s1.networks, None);
        let cpu = s1.cpu_stats.as_ref().unwrap();
        let usage = cpu.cpu_usage.as_ref().unwrap();
        assert_eq!(usage.total_usage, Some(2_000_000_000));
        assert_eq!(
            usage.percpu_usage.as_deref(),
            Some(&[1_500_000_000, 500_000_000][..])
        );
        assert_eq!(usage.usage_in_kernelmode, Some(300_000_000));
        assert_eq!(usage.usage_in_usermode, Some(1_700_000_000));
        assert_eq!(cpu.system_cpu_usage, Some(HOST.system_cpu_usage));
        assert_eq!(cpu.online_cpus, Some(4));
        let throttling = cpu.throttling_data.as_ref().unwrap();
        assert_eq!(
            (
                throttling.periods,
                throttling.throttled_periods,
                throttling.throttled_time
            ),
            (Some(10), Some(2), Some(5000))
        );
        // No previous sample: zeros, so the first CPU % is 0 as with Docker.
        assert_eq!(s1.precpu_stats, Some(zero_cpu_stats()));

        let mem = s1.memory_stats.as_ref().unwrap();
        assert_eq!(mem.usage, Some(100 << 20));
        assert_eq!(mem.max_usage, Some(120 << 20));
        assert_eq!(mem.failcnt, Some(1));
        // Unlimited: the host's memory.
        assert_eq!(mem.limit, Some(8 << 30));
        let stats = mem.stats.as_ref().unwrap();
        assert_eq!(stats.len(), V1_MEMORY_KEYS.len());
        assert_eq!(stats["cache"], 30 << 20);
        assert_eq!(stats["total_unevictable"], 0);
        assert!(!stats.contains_key("shmem"));
        assert_eq!(cli_mem_usage(&s1), 80 << 20);

        let blkio = s1.blkio_stats.as_ref().unwrap();
        assert_eq!(blkio.io_service_bytes_recursive.as_ref().unwrap().len(), 3);
        assert_eq!(blkio.sectors_recursive.as_deref(), Some(&[][..]));
        assert_eq!(cli_block_io(&s1), (4096, 8192));
        assert_eq!(s1.pids_stats.as_ref().unwrap().current, Some(3));
        assert_eq!(s1.pids_stats.as_ref().unwrap().limit, None);

        // A second later: one of the four CPUs was busy half the time.
        let mut second = first.clone();
        second.cpu.usage.total += 500_000_000;
        second.memory.usage.limit = 1 << 30;
        let host = HostSample {
            system_cpu_usage: HOST.system_cpu_usage + 4_000_000_000,
            ..HOST
        };
        let t2 = parse_rfc3339("2026-11-23T14:29:08.5Z").unwrap();
        let s2 = stats_response(Layout::V1, &second, &host, Some(&s1), t2);
        assert_eq!(s2.preread, s1.read);
        assert_eq!(s2.precpu_stats, s1.cpu_stats);
        assert!((cli_cpu_percent(&s2) - 50.0).abs() < 1e-9);
        // A limit below the host's memory is kept.
        assert_eq!(s2.memory_stats.as_ref().unwrap().limit, Some(1 << 30));
    }

    #[test]
    fn v2_sample_is_shaped_as_moby_does() {
        let v2 = counters(serde_json::json!({
            "cpu": {"usage": {"total": 7_000_000u64, "kernel": 2_000_000u64, "user": 5_000_000u64},
                    "throttling": {}},
            "memory": {"usage": {"usage": 50 << 20, "max": 70 << 20, "limit": u64::MAX},
                       "raw": {"anon": 40 << 20, "file": 10 << 20, "inactive_file": 8 << 20,
                               "workingset_refault_anon": 1}},
            "pids": {"current": 1, "limit": 100},
            "blkio": {"ioServiceBytesRecursive": [
                          {"major": 8, "minor": 0, "op": "Read", "value": 100},
                          {"major": 8, "minor": 0, "op": "Write", "value": 200}],
                      "ioServicedRecursive": [
                          {"major": 8, "minor": 0, "op": "Read", "value": 1}]}
        }));
        let s = stats_response(Layout::V2, &v2, &HOST, None, SystemTime::UNIX_EPOCH);
        assert_eq!(s.read.as_deref(), Some("1970-01-01T00:00:00Z"));
        let usage = s.cpu_stats.as_ref().unwrap().cpu_usage.clone().unwrap();
        assert_eq!(usage.total_usage, Some(7_000_000));
        assert_eq!(usage.percpu_usage, None);
        let mem = s.memory_stats.as_ref().unwrap();
        assert_eq!(mem.max_usage, None);
        assert_eq!(mem.limit, Some(8 << 30));
        let stats = mem.stats.as_ref().unwrap();
        assert_eq!(stats.len(), V2_MEMORY_KEYS.len());
        assert_eq!((stats["anon"], stats["file"]), (40 << 20, 10 << 20));
        assert!(!stats.contains_key("total_inactive_file"));
        assert_eq!(cli_mem_usage(&s), 42 << 20);
        let blkio = s.blkio_stats.as_ref().unwrap();
        let ops: Vec<_> = blkio
            .io_service_bytes_recursive
            .iter()
            .flatten()
            .map(|e| e.op.clone().unwrap())
            .collect();
        assert_eq!(ops, ["read", "write"]);
        assert_eq!(blkio.io_serviced_recursive, None);
        assert_eq!(cli_block_io(&s), (100, 200));
        assert_eq!(s.pids_stats.as_ref().unwrap().limit, Some(100));

        // The JSON the API sends.
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(json["cpu_stats"]["throttling_data"]["throttled_time"], 0);
        assert!(json["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert!(json.get("networks").is_none());
        assert_eq!(json["os_type"], "linux");

        // No memory controller: no memory figures at all.
        let bare = Stats::default();
        let s = stats_response(
            Layout::V2,
            &bare,
            &HostSample {
                memory_total: 0,
                ..HOST
            },
            None,
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(s.memory_stats, Some(ContainerMemoryStats::default()));
    }

    /// A process in a test cgroup, killed and the cgroup removed when dropped.
    struct Subject {
        cgroup: CgroupManager,
        child: Option<Child>,
        /// Directories made by hand, removed after the cgroup's.
        made: Vec<PathBuf>,
    }

    impl Subject {
        /// Owns `cgroup` (and `made`) from now on, to clean up.
        fn new(cgroup: CgroupManager, made: Vec<PathBuf>) -> Subject {
            Subject {
                cgroup,
                child: None,
                made,
            }
        }

        /// Start a shell that joins the cgroup, then holds a 16 MB string and spins.
        fn start(&mut self) {
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    r#"read go; a=$(head -c 16000000 /dev/zero | tr '\0' x); while :; do :; done"#,
                ])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let mut stdin = child.stdin.take().unwrap();
            self.child = Some(child);
            self.cgroup.add_pid(pid).unwrap();
            // Only now, inside the cgroup, does it allocate and spin.
            stdin.write_all(b"go\n").unwrap();
        }
    }

    impl Drop for Subject {
        fn drop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            if let Err(e) = self.cgroup.destroy() {
                eprintln!("cleanup: {e}");
            }
            for dir in self.made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    /// Two samples of the subject, half a second apart.
    fn two_samples(path: &str) -> (ContainerStatsResponse, ContainerStatsResponse) {
        // Time for the string to be built and the loop to start.
        sleep(Duration::from_millis(700));
        let first = container_stats(path, None, SystemTime::now()).unwrap();
        sleep(Duration::from_millis(500));
        let second = container_stats(path, Some(&first), SystemTime::now()).unwrap();
        (first, second)
    }

    fn cpu_usage(s: &ContainerStatsResponse) -> &ContainerCpuUsage {
        s.cpu_stats.as_ref().unwrap().cpu_usage.as_ref().unwrap()
    }

    fn total_usage(s: &ContainerStatsResponse) -> u64 {
        cpu_usage(s).total_usage.unwrap_or(0)
    }

    /// The CPU figures a busy process must move, on any layout.
    fn check_cpu(first: &ContainerStatsResponse, second: &ContainerStatsResponse) {
        assert!(total_usage(first) > 0, "{first:?}");
        assert!(total_usage(second) > total_usage(first));
        assert_eq!(second.precpu_stats, first.cpu_stats);
        assert_eq!(second.preread, first.read);
        let read = |s: &ContainerStatsResponse| parse_rfc3339(s.read.as_deref().unwrap()).unwrap();
        assert!(read(second) > read(first));
        // One spinning shell: at most one CPU's worth (100 %, less on a busy host).
        let percent = cli_cpu_percent(second);
        assert!(percent > 1.0 && percent < 110.0, "CPU {percent} %");
    }

    /// A busy process in a real cgroup of this host (v1, hybrid or v2), with limits.
    #[test]
    fn a_busy_process_moves_the_counters() {
        let path = format!("/berth-test-stats-{}", std::process::id());
        let cgroup = CgroupManager::new(Some(Path::new(&path)), "stats-test").unwrap();
        assert!(!cgroup.exists(), "{path} is left over from an earlier run");
        let layout = cgroup.layout();
        let mut subject = Subject::new(cgroup, Vec::new());
        subject.cgroup.create().unwrap();
        let resources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 256 << 20},
            "pids": {"limit": 50}
        }))
        .unwrap();
        subject.cgroup.apply(&resources).unwrap();
        subject.start();
        let (first, second) = two_samples(&path);
        check_cpu(&first, &second);

        let usage = cpu_usage(&second);
        assert_eq!(usage.percpu_usage.is_some(), layout != Layout::V2);
        let pids = second.pids_stats.as_ref().unwrap();
        assert!(pids.current >= Some(1), "{pids:?}");
        assert_eq!(pids.limit, Some(50));
        let mem = second.memory_stats.as_ref().unwrap();
        assert_eq!(mem.limit, Some(256 << 20));
        let stats = mem.stats.as_ref().unwrap();
        let key = if layout == Layout::V2 {
            "inactive_file"
        } else {
            "total_inactive_file"
        };
        assert!(stats.contains_key(key), "{stats:?}");
        // The 16 MB string (held as the shell's variable) is in the container's memory.
        let used = cli_mem_usage(&second);
        assert!((16_000_000..256 << 20).contains(&used), "{used} bytes");

        drop(subject);
        assert!(matches!(
            container_stats(&path, None, SystemTime::now()),
            Err(StatsError::NoCgroup { .. })
        ));
    }

    /// Set in the child process of the v2 test below.
    const V2_CHILD: &str = "BERTH_STATS_TEST_V2_CHILD";

    /// On a hybrid host, a mount namespace where only the cgroup2 mount is left is a v2
    /// host: the v2 path runs against real kernel files (cpu.stat; this host's cgroup2
    /// mount holds no memory, pids or io controller).
    #[test]
    fn v2_in_a_mount_namespace_with_only_cgroup2() {
        if std::env::var_os(V2_CHILD).is_some() {
            return v2_child();
        }
        let layout = berth_cgroups::detect_layout().unwrap();
        if layout != Layout::Hybrid {
            // v1 has no cgroup2 mount to keep; a v2 host runs the test above on v2.
            return;
        }
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "stats::tests::v2_in_a_mount_namespace_with_only_cgroup2",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(V2_CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }

    fn v2_child() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut unified = None;
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let point = pre.split(' ').nth(4).unwrap().to_string();
            match post.split(' ').next() {
                Some("cgroup") => {
                    nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH).unwrap()
                }
                Some("cgroup2") => unified = Some(PathBuf::from(point)),
                _ => {}
            }
        }
        assert_eq!(berth_cgroups::detect_layout().unwrap(), Layout::V2);
        let path = format!("/berth-test-stats-{}-v2", std::process::id());
        // Made by hand: the cgroup crate's create would enable controllers at the root.
        let dir = unified.unwrap().join(path.trim_start_matches('/'));
        let cgroup = CgroupManager::open(&path).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let mut subject = Subject::new(cgroup, vec![dir]);
        subject.start();
        let (first, second) = two_samples(&path);
        check_cpu(&first, &second);
        let usage = cpu_usage(&second);
        assert_eq!(usage.percpu_usage, None);
        assert!(usage.usage_in_usermode.unwrap() > 0);
        let blkio = second.blkio_stats.as_ref().unwrap();
        assert_eq!(blkio.io_serviced_recursive, None);
    }
}
