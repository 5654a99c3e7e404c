//! What a test leaves on the host, and taking it away: mounts under its
//! temporary directory, the cgroups it named, processes it started.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A name no other test (in this process or another) uses:
/// `berth-callers-<pid>-<counter><time>`, short enough for socket paths.
pub fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "berth-callers-{}-{n}{:x}",
        std::process::id(),
        nanos & 0xffff
    )
}

/// Lines of /proc/self/mountinfo split into fields.
fn mountinfo() -> Vec<Vec<String>> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(unescape).collect())
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo()
        .into_iter()
        .filter_map(|fields| fields.get(4).map(PathBuf::from))
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily unmounts everything left mounted at or below `dir`.
pub fn unmount_all_under(dir: &Path) {
    for point in mounts_under(dir) {
        let _ = umount2(&point, MntFlags::MNT_DETACH);
    }
}

/// Every cgroup hierarchy's mount point (v1 controllers and the v2 mount).
fn cgroup_mounts() -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|fields| {
            let sep = fields.iter().position(|f| f == "-");
            sep.and_then(|i| fields.get(i + 1))
                .is_some_and(|fstype| fstype == "cgroup" || fstype == "cgroup2")
        })
        .filter_map(|fields| fields.get(4).map(PathBuf::from))
        .collect()
}

/// Removes the cgroup `name` (a path relative to each hierarchy's root) and
/// every cgroup below it, in all hierarchies. Processes still inside were
/// started by this test (through the caller): they are killed by pid first.
///
/// Also removes `/sys/fs/cgroup/<dir>/<name>` where `<dir>` is a plain
/// directory on the tmpfs rather than a mounted hierarchy (a stray
/// `/sys/fs/cgroup/hugetlb` left by an unmounted one, say): podman creates
/// its conmon cgroup, `tasks` file and all, in every such directory.
/// Returns what could not be removed.
pub fn remove_cgroup_tree(name: &str) -> Vec<PathBuf> {
    let name = name.trim_start_matches('/');
    let hierarchies = cgroup_mounts();
    let mut left = Vec::new();
    for top in hierarchies.iter().map(|mount| mount.join(name)) {
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            if !remove_cgroup(&dir) {
                left.push(dir);
            }
        }
    }
    let cgroup_root = Path::new("/sys/fs/cgroup");
    if hierarchies.iter().any(|mount| mount == cgroup_root) {
        return left; // pure cgroup v2: every directory there is a cgroup
    }
    let plain_dirs = fs::read_dir(cgroup_root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| dir.is_dir() && !hierarchies.contains(dir));
    for top in plain_dirs.map(|dir| dir.join(name)) {
        if top.is_dir() && fs::remove_dir_all(&top).is_err() {
            left.push(top);
        }
    }
    left
}

fn collect_dirs(dir: &Path, into: &mut Vec<PathBuf>) {
    into.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), into);
            }
        }
    }
}

fn remove_cgroup(dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for pid in fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of processes whose command line contains `needle` as one argument,
/// e.g. the shims of one containerd, found by that daemon's private socket.
pub fn pids_with_argument(needle: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == needle.as_bytes()))
        })
        .collect()
}
