//! Leaks: many create/start/stop/rm cycles through the API (the SDK, two
//! clients at once), then nothing of them may be left on the host: no mount
//! under the daemon's directory, no `berth/<id>` cgroup, no monitor process,
//! no state under the exec root, no container directory, no descriptors
//! piling up in the daemon.
//!
//! `BERTH_CYCLES` sets the number of cycles (default 500).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use berth_container_tests::{eventually, host, Engine};
use berth_image_tests::daemon::mounts_under;

/// Cycles per SDK script, so each stays well within the client time limit.
const BATCH: usize = 100;

fn cycles() -> Result<usize> {
    match std::env::var("BERTH_CYCLES") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("BERTH_CYCLES={text:?} is not a number")),
        Err(_) => Ok(500),
    }
}

/// Two clients, each creating, starting, stopping and removing containers;
/// prints `ID <id>` for each container it went through.
const SCRIPT: &str = r#"
N = __N__
ids, errors, lock = [], [], threading.Lock()

def work(k):
    c = docker.from_env(version="auto", timeout=120)
    try:
        for _ in range(k):
            x = c.containers.create("busybox", ["sleep", "1000"])
            x.start()
            x.stop(timeout=0)
            x.reload()
            assert x.status == "exited", x.status
            x.remove(v=True)
            with lock:
                ids.append(x.id)
    except Exception as err:
        errors.append(repr(err))

threads = [threading.Thread(target=work, args=(k,)) for k in (N // 2, N - N // 2)]
for t in threads: t.start()
for t in threads: t.join()
for i in ids: print("ID", i)
if errors:
    print("ERRORS", errors)
    sys.exit(1)
"#;

/// Entries of a directory that name state (not `@`-prefixed runtime caches).
fn state_entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('@'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn create_start_stop_rm_cycles_leave_nothing_behind() -> Result<()> {
    let total = cycles()?;
    let e = Engine::start()?;
    let daemon_pid = e.pid().context("the daemon runs")? as i32;
    // Warm up (first container, runtime caches), then count the daemon's descriptors.
    e.docker_ok(&["run", "--rm", "busybox", "true"])?;
    let fds_before = host::fd_count(daemon_pid);

    let started = Instant::now();
    let mut ids = Vec::new();
    let mut done = 0;
    while done < total {
        let n = BATCH.min(total - done);
        let out = e.python(&SCRIPT.replace("__N__", &n.to_string()))?;
        ids.extend(
            out.lines()
                .filter_map(|l| l.strip_prefix("ID "))
                .map(str::to_string),
        );
        done += n;
    }
    let took = started.elapsed();
    eprintln!(
        "{total} cycles in {took:.1?} ({:.0} ms per cycle, two clients)",
        took.as_millis() as f64 / total.max(1) as f64
    );
    ensure!(
        ids.len() == total,
        "{} of {total} cycles reported an ID",
        ids.len()
    );

    let listed = e.container_ids()?;
    ensure!(listed.is_empty(), "containers left after rm: {listed:?}");

    let prefix = format!(
        "{}/",
        e.data_root()
            .parent()
            .context("data root has a parent")?
            .display()
    );
    let mounts = mounts_under(&prefix);
    ensure!(mounts.is_empty(), "mounts left under {prefix}: {mounts:?}");

    let cgroups: Vec<_> = ids.iter().flat_map(|id| host::cgroups_left(id)).collect();
    ensure!(
        cgroups.is_empty(),
        "{} cgroups left, e.g. {:?}",
        cgroups.len(),
        cgroups.iter().take(5).collect::<Vec<_>>()
    );

    let exec_root = e.exec_root();
    let exec_root_text = exec_root.to_string_lossy().into_owned();
    let monitors = || -> Vec<(i32, String)> {
        host::processes()
            .into_iter()
            .filter(|(_, cmdline)| {
                cmdline.contains("berth-monitor") && cmdline.contains(&exec_root_text)
            })
            .collect()
    };
    // A monitor may take a moment to exit after its container is removed.
    let _ = eventually("monitors to exit", Duration::from_secs(10), || {
        Ok(monitors().is_empty().then_some(()))
    });
    let left = monitors();
    ensure!(
        left.is_empty(),
        "{} berth-monitor processes left: {:?}",
        left.len(),
        left.iter().take(5).collect::<Vec<_>>()
    );
    for sub in ["m", "x", "runtime"] {
        let left = state_entries(&exec_root.join(sub));
        ensure!(
            left.is_empty(),
            "{} entries left under {}/{sub}: {:?}",
            left.len(),
            exec_root.display(),
            left.iter().take(5).collect::<Vec<_>>()
        );
    }
    let left = state_entries(&e.data_root().join("containers"));
    ensure!(
        left.is_empty(),
        "{} container directories left: {:?}",
        left.len(),
        left.iter().take(5).collect::<Vec<_>>()
    );

    let fds_after = host::fd_count(daemon_pid);
    ensure!(
        fds_after <= fds_before + 16,
        "the daemon's open descriptors grew from {fds_before} to {fds_after} over {total} cycles"
    );
    // The daemon still serves.
    let out = e.docker_ok(&["run", "--rm", "busybox", "echo", "still here"])?;
    ensure!(out.stdout == "still here\n", "{out}");
    Ok(())
}
