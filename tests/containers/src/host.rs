//! What the host says, read without berth: processes from /proc, cgroups from
//! /sys/fs/cgroup (`berth/<id>` under each v1 controller, or under the v2 root).

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The root of the cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A process that exists and is not a zombie (its `State:` is not Z or X).
pub fn alive(pid: i32) -> bool {
    let state = status_field(pid, "State").and_then(|s| s.chars().next());
    matches!(state, Some(s) if s != 'Z' && s != 'X')
}

/// One field of /proc/<pid>/status (`NoNewPrivs`, `CapEff`, ...), trimmed.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|value| value.trim().to_string())
    })
}

/// The command line of a process, its arguments joined by spaces.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

/// Every live process as (pid, command line), like `ps -ef`.
pub fn processes() -> Vec<(i32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| alive(*pid))
        .filter_map(|pid| Some((pid, cmdline(pid)?)))
        .collect()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: Signal) -> Result<()> {
    kill(Pid::from_raw(pid), signal).with_context(|| format!("kill -{signal} {pid}"))
}

/// The number of open file descriptors of a process.
pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A container's cgroup directory for a v1 `controller` (`memory`, `cpu`,
/// `cpuacct`, `pids`, `freezer`): `/sys/fs/cgroup/<controller>/berth/<id>`.
/// On a v2-only host, the unified directory `/sys/fs/cgroup/berth/<id>`.
pub fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    let v1 = PathBuf::from(CGROUP_ROOT).join(controller);
    if v1.is_dir() {
        v1.join("berth").join(id)
    } else {
        PathBuf::from(CGROUP_ROOT).join("berth").join(id)
    }
}

/// Reads one file of a container's cgroup, trimmed.
pub fn cgroup_file(controller: &str, id: &str, file: &str) -> Result<String> {
    let path = cgroup_dir(controller, id).join(file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_string()),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// A cgroup file parsed as an integer.
pub fn cgroup_number(controller: &str, id: &str, file: &str) -> Result<i64> {
    let text = cgroup_file(controller, id, file)?;
    text.parse()
        .with_context(|| format!("{controller}/{file} of {id} is not a number: {text:?}"))
}

/// One `key value` line of a flat-keyed cgroup file (`cpu.stat`, `memory.stat`).
pub fn cgroup_stat(controller: &str, id: &str, file: &str, key: &str) -> Result<i64> {
    let text = cgroup_file(controller, id, file)?;
    text.lines()
        .find_map(|line| {
            let (k, v) = line.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .with_context(|| format!("no {key} in {controller}/{file} of {id}:\n{text}"))
}

/// Every cgroup directory named `berth/<id>` that still exists, in any hierarchy.
pub fn cgroups_left(id: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let direct = PathBuf::from(CGROUP_ROOT).join("berth").join(id);
    if direct.exists() {
        left.push(direct);
    }
    if let Ok(hierarchies) = fs::read_dir(CGROUP_ROOT) {
        for hierarchy in hierarchies.flatten() {
            let dir = hierarchy.path().join("berth").join(id);
            if dir.exists() {
                left.push(dir);
            }
        }
    }
    left
}

/// Network interfaces of this process's network namespace (/proc/net/dev).
pub fn interfaces() -> Vec<String> {
    parse_net_dev(&fs::read_to_string("/proc/net/dev").unwrap_or_default())
}

/// Interface names from the text of /proc/net/dev, sorted.
pub fn parse_net_dev(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .collect();
    names.sort();
    names
}

/// Parses a hexadecimal capability mask from /proc/<pid>/status.
pub fn cap_mask(hex: &str) -> Result<u64> {
    u64::from_str_radix(hex.trim(), 16).with_context(|| format!("not a capability mask: {hex:?}"))
}
