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
