//! Control groups: where a container's resource limits live.
//!
//! The story of a container's cgroup:
//! 1. `create` resolves the spec's `linux.cgroupsPath` into a [`CgroupManager`]
//!    ([`CgroupManager::new`]), creates the directories ([`CgroupManager::create`]),
//!    writes the limits ([`CgroupManager::apply`]) and moves the container's first
//!    process in ([`CgroupManager::add_pid`]) before that process creates its cgroup
//!    namespace, so the namespace root is the container's own cgroup.
//! 2. While the container lives, `pause`/`resume` freeze and thaw it, `update`
//!    applies new limits, `ps` lists its pids and `events --stats` reads its counters.
//! 3. `delete` kills whatever is left ([`CgroupManager::kill_all`]) and removes the
//!    directories ([`CgroupManager::destroy`]).
//!
//! The layout (pure v1, hybrid, pure v2) is detected at run time from
//! /proc/self/mountinfo. Hybrid hosts (v1 controllers plus a cgroup2 mount that
//! holds a few controllers) are driven through their v1 hierarchies, with the
//! container's directory mirrored in the unified hierarchy.
//!
//! Where things are:
//! - `mounts`: the layout, from mountinfo ([`detect_layout`]);
//! - `path`: cgroupsPath resolution and the string kept in the state file;
//! - `v1` / `v2`: writing limits, with runc's v1-to-v2 conversions;
//! - `devices` and `bpf`: device rules, as v1 files or a v2 eBPF filter;
//! - `stats`: counters shaped like `runc events --stats`.

mod bpf;
mod devices;
mod error;
mod fsutil;
mod manager;
mod mounts;
mod path;
mod stats;
mod v1;
mod v2;

pub use error::CgroupError;
pub use manager::CgroupManager;
pub use mounts::{detect_layout, Layout};
pub use path::DEFAULT_PARENT;
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, IntelRdt, Memory, MemoryEntry,
    NetworkInterface, Pids, Stats, Throttling,
};
