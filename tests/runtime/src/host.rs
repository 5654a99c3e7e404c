//! What the host sees: mounts, cgroups, processes and namespaces, and the
//! check that a container left none of them behind.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::runtime::Runtime;

/// A container id no other test or run uses: `berth-t-<test>-<random>`.
pub fn unique_id(test: &str) -> String {
    let mut bytes = [0u8; 4];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    let test: String = test.chars().take(32).collect();
    format!(
        "berth-t-{}-{:08x}",
        test.replace('_', "-"),
        u32::from_le_bytes(bytes)
    )
}

/// Polls `check` every 20 ms until it returns true or the timeout passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount points under `prefix` in this process's mount table, in mount order.
pub fn mounts_under(prefix: &str) -> Vec<String> {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The inode of a namespace, as in `readlink /proc/<pid>/ns/<kind>` =
/// `<kind>:[<inode>]`.
pub fn namespace_of(pid: &str, kind: &str) -> Result<String> {
    let link = fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .with_context(|| format!("cannot read /proc/{pid}/ns/{kind}"))?;
    Ok(link.to_string_lossy().into_owned())
}

/// One line of `/proc/<pid>/status`, e.g. `field("Uid")` → `"0\t0\t0\t0"`.
pub fn status_field(pid: i32, field: &str) -> Result<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|value| value.trim().to_string())
        .with_context(|| format!("/proc/{pid}/status has no {field}"))
}

/// The directory of the cgroup that holds `pid` for `controller` (`memory`,
/// `pids`, `cpu`, ...): the v1 hierarchy with that controller if one exists,
/// else the unified (v2) hierarchy.
pub fn cgroup_dir(pid: i32, controller: &str) -> Result<PathBuf> {
    let membership = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("cannot read /proc/{pid}/cgroup"))?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = match (fields.next(), fields.next(), fields.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if controllers.split(',').any(|c| c == controller) {
            if let Some(mount) = cgroup_mount(&mountinfo, Some(controller)) {
                return Ok(mount.join(path.trim_start_matches('/')));
            }
        }
    }
    for line in membership.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            if let Some(mount) = cgroup_mount(&mountinfo, None) {
                return Ok(mount.join(path.trim_start_matches('/')));
            }
        }
    }
    bail!("no cgroup with {controller} for pid {pid} in:\n{membership}")
}

/// The mount point of the v1 hierarchy with `controller`, or of cgroup2.
fn cgroup_mount(mountinfo: &str, controller: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let options = right.nth(1)?;
        let found = match controller {
            Some(c) => fstype == "cgroup" && options.split(',').any(|o| o == c),
            None => fstype == "cgroup2",
        };
        found.then(|| PathBuf::from(point))
    })
}

/// Reads a cgroup file of a container's process, trimmed; tries each name in
/// turn (v1 name first, then v2).
pub fn cgroup_read(pid: i32, controller: &str, files: &[&str]) -> Result<String> {
    let dir = cgroup_dir(pid, controller)?;
    for file in files {
        if let Ok(text) = fs::read_to_string(dir.join(file)) {
            return Ok(text.trim().to_string());
        }
    }
    bail!("none of {files:?} in {}", dir.display())
}

/// Everything a container with this id and bundle may have left on the host.
pub fn leftovers(rt: &Runtime, id: &str, bundle: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for path in find_dirs(rt.root.path(), id, 3) {
        found.push(format!("state under --root: {}", path.display()));
    }
    if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
        for hierarchy in hierarchies.flatten() {
            for path in find_dirs(&hierarchy.path(), id, 6) {
                found.push(format!("cgroup: {}", path.display()));
            }
        }
    }
    let bundle_text = bundle.to_string_lossy();
    for point in mounts_under(&bundle_text) {
        found.push(format!("mount: {point}"));
    }
    for pid in container_processes(id, &bundle_text) {
        found.push(format!("process {pid}: {}", cmdline(pid)));
    }
    found
}

/// Fails unless [`leftovers`] becomes empty within a few seconds (a killed
/// process takes a moment to go).
pub fn assert_nothing_left(rt: &Runtime, id: &str, bundle: &Path) -> Result<()> {
    let mut last = Vec::new();
    wait_until(Duration::from_secs(3), || {
        last = leftovers(rt, id, bundle);
        Ok(last.is_empty())
    })?;
    if !last.is_empty() {
        bail!(
            "[{rt}] container {id} left behind:\n  {}",
            last.join("\n  ")
        );
    }
    Ok(())
}

/// Removes by force what a container may have left when the runtime failed
/// to: thaws and kills its processes, then removes its cgroups. Used by the
/// [`crate::Container`] guard after `delete --force`, so a failing runtime
/// does not leave its mess to the next test. Tests check with
/// [`assert_nothing_left`] first, so this hides no failure.
pub fn sweep(id: &str, bundle: &Path) {
    let bundle_text = bundle.to_string_lossy();
    let cgroups: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .map(|hierarchies| {
            hierarchies
                .flatten()
                .flat_map(|h| find_dirs(&h.path(), id, 6))
                .collect()
        })
        .unwrap_or_default();
    if cgroups.is_empty() && container_processes(id, &bundle_text).is_empty() {
        return;
    }
    // A frozen process cannot die: thaw first (v1 freezer, v2 cgroup.freeze).
    for dir in &cgroups {
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
    }
    for pid in container_processes(id, &bundle_text) {
        // SAFETY: kill(2) with a pid we found by this test's unique container
        // id; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = wait_until(Duration::from_secs(3), || {
        Ok(container_processes(id, &bundle_text).is_empty())
    });
    for dir in &cgroups {
        remove_cgroup_tree(dir);
    }
}

/// rmdir a cgroup and its children, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Directories under `dir` (at most `depth` deep) whose name contains `needle`.
fn find_dirs(dir: &Path, needle: &str, depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(needle) {
            found.push(path);
        } else if kind.is_dir() && depth > 1 {
            found.extend(find_dirs(&path, needle, depth - 1));
        }
    }
    found
}

/// Live processes whose root is inside the bundle or whose cgroup or
/// command line names the container.
fn container_processes(id: &str, bundle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && process_alive(pid))
        .filter(|&pid| {
            let root = fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            root.starts_with(bundle) || cgroup.contains(id) || cmdline(pid).contains(id)
        })
        .collect()
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}
