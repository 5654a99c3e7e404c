//! Whether the kernel's OOM killer struck in a container's cgroup: `oom_kill` in v1's
//! `memory.oom_control` or v2's `memory.events`, read before the runtime deletes the cgroup.

use std::path::Path;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `cgroups_path` is the spec's `cgroupsPath` (`/berth/<id>`).
pub fn killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let root = Path::new(CGROUP_ROOT);
    [
        root.join("memory").join(rel).join("memory.oom_control"),
        root.join(rel).join("memory.events"),
        root.join("unified").join(rel).join("memory.events"),
    ]
    .iter()
    .any(|p| {
        std::fs::read_to_string(p)
            .map(|s| oom_kills(&s) > 0)
            .unwrap_or(false)
    })
}

fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_oom_kill_counters() {
        assert_eq!(
            super::oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            super::oom_kills("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n"),
            0
        );
    }
}
