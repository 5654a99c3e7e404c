//! The one error type of this crate. Every variant names the file, field or
//! path involved, so a failed `create` tells the operator what to look at.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file (or /proc file) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A value could not be written to a cgroup file.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    /// A cgroup directory could not be created.
    #[error("cannot create cgroup directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A cgroup directory could not be removed.
    #[error("cannot remove cgroup directory {path}: {source}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A kernel file did not have the format we expect.
    #[error("cannot parse {path}: {detail}")]
    Parse { path: PathBuf, detail: String },

    /// The requested `linux.cgroupsPath` (or a path from a state file) is unusable.
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// A systemd `slice:prefix:name` path was given; berth drives cgroupfs itself.
    #[error(
        "cgroupsPath {path:?} is a systemd \"slice:prefix:name\" path, but this host has no \
         systemd cgroup manager; use a cgroupfs path such as \"/berth-runc/<id>\""
    )]
    SystemdPath { path: String },

    /// /proc/self/mountinfo lists no cgroup or cgroup2 filesystem.
    #[error("no cgroup filesystem is mounted (according to {mountinfo})")]
    NoCgroupMounts { mountinfo: PathBuf },

    /// A relative cgroupsPath needs our own cgroup in a hierarchy that /proc/self/cgroup omits.
    #[error("hierarchy {hierarchy} has no entry in {path}, cannot resolve a relative cgroupsPath")]
    OwnCgroupMissing { hierarchy: String, path: PathBuf },

    /// The cgroup lies outside the part of the hierarchy that is mounted here.
    #[error("cgroup {cgroup} of hierarchy {hierarchy} is not visible under its mount {mount_point} (mount root {mount_root})")]
    OutsideMount {
        hierarchy: String,
        cgroup: String,
        mount_point: PathBuf,
        mount_root: String,
    },

    /// The spec asks for something this host (or berth) cannot do.
    #[error("{field} is not supported here: {reason}")]
    Unsupported { field: String, reason: String },

    /// A spec value is out of range or malformed.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },

    /// The kernel refused a memory limit below what the cgroup already uses.
    #[error("cannot set memory limit {limit} in {path}: current usage is {usage} (peak {peak})")]
    MemoryBelowUsage {
        path: PathBuf,
        limit: i64,
        usage: u64,
        peak: u64,
    },

    /// The kernel accepted a write but clamped the value.
    #[error("{path}: wrote {wanted} but the kernel set {actual}")]
    ValueNotApplied {
        path: PathBuf,
        wanted: String,
        actual: String,
    },

    /// The freezer did not reach FROZEN in time (the cgroup is thawed again).
    #[error("{path} did not report frozen within {waited:?}")]
    FreezeTimeout { path: PathBuf, waited: Duration },

    /// A process of the cgroup could not be signalled.
    #[error("cannot send signal {signal} to pid {pid}: {source}")]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: nix::Error,
    },

    /// A bpf(2) call for the v2 device filter failed.
    #[error("bpf {op} for {path} failed: {source}{}", verifier_suffix(.verifier_log))]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        verifier_log: String,
    },
}

fn verifier_suffix(log: &str) -> String {
    let log = log.trim();
    if log.is_empty() {
        String::new()
    } else {
        // Keep the Display to one line: the verifier log is multi-line.
        format!(" (verifier: {})", log.replace('\n', "; "))
    }
}

/// Shorthand used across the crate.
pub(crate) type Result<T> = std::result::Result<T, CgroupError>;
