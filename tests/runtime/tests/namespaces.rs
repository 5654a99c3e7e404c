//! Namespaces: each kind in the spec is new (or joined by path) and the
//! container sees what that namespace should show.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_runtime_tests::host::{namespace_of, status_field, unique_id};
use berth_runtime_tests::{conformance, host, run_spec_stdout, Bundle, Container, Skip, Spec};

conformance!(every_namespace_is_new, |rt| {
    let kinds = ["pid", "uts", "ipc", "net", "mnt", "cgroup"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let spec = Spec::new().namespace("cgroup", None).shell(&script);
    let out = run_spec_stdout(rt, &spec, "allns")?;
    let inside: Vec<&str> = out.lines().collect();
    ensure!(
        inside.len() == kinds.len(),
        "[{rt}] expected {} namespace links, got {out:?}",
        kinds.len()
    );
    for (kind, link) in kinds.iter().zip(inside) {
        let host = namespace_of("self", kind)?;
        ensure!(
            link.starts_with(&format!("{kind}:[")),
            "[{rt}] odd link for {kind}: {link}"
        );
        ensure!(
            link != host,
            "[{rt}] the container shares the host's {kind} namespace ({host})"
        );
    }
    Ok(())
});

conformance!(absent_namespace_is_shared_with_host, |rt| {
    let spec = Spec::new()
        .without_namespace("network")
        .args(&["readlink", "/proc/self/ns/net"]);
    let out = run_spec_stdout(rt, &spec, "hostnet")?;
    let host = namespace_of("self", "net")?;
    ensure!(
        out.trim() == host,
        "[{rt}] without a network namespace the container uses the host's ({host}), saw {out:?}"
    );
    Ok(())
});

conformance!(pid_namespace_starts_at_one, |rt| {
    let out = run_spec_stdout(rt, &Spec::new().shell("echo $$; ps"), "pidns")?;
    let mut lines = out.lines();
    ensure!(
        lines.next() == Some("1"),
        "[{rt}] the container's shell must be pid 1: {out:?}"
    );
    let pids: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    ensure!(
        pids.contains(&"1"),
        "[{rt}] ps inside shows no pid 1: {out:?}"
    );
    ensure!(
        pids.len() <= 4,
        "[{rt}] ps inside sees host processes: {out:?}"
    );
    Ok(())
});

conformance!(uts_namespace_hostname, |rt| {
    let out = run_spec_stdout(rt, &Spec::new().args(&["hostname"]), "utsns")?;
    ensure!(
        out.trim() == "berth",
        "[{rt}] hostname must be the spec's \"berth\": {out:?}"
    );
    Ok(())
});

conformance!(network_namespace_has_only_lo, |rt| {
    let out = run_spec_stdout(
        rt,
        &Spec::new().args(&["ip", "-o", "link", "show"]),
        "netns",
    )?;
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|name| name.trim().split('@').next().unwrap_or(""))
        .collect();
    ensure!(
        names == ["lo"],
        "[{rt}] a new network namespace has only lo, saw {names:?} in {out:?}"
    );
    Ok(())
});

conformance!(cgroup_namespace_root, |rt| {
    let spec = Spec::new()
        .namespace("cgroup", None)
        .args(&["cat", "/proc/self/cgroup"]);
    let out = run_spec_stdout(rt, &spec, "cgroupns")?;
    ensure!(!out.trim().is_empty(), "[{rt}] /proc/self/cgroup is empty");
    for line in out.lines() {
        ensure!(
            line.ends_with(":/"),
            "[{rt}] in a cgroup namespace every cgroup is \"/\": {out:?}"
        );
    }
    Ok(())
});

conformance!(user_namespace_maps_ids, |rt| {
    const HOST_ID: u32 = 100_000;
    let bundle = Bundle::new()?;
    bundle.chown_rootfs(HOST_ID, HOST_ID)?;
    let spec = bundle.share(Spec::new().user_namespace(HOST_ID, 65536).shell(
        "{ id -u; id -g; cat /proc/self/uid_map; } > /shared/id.tmp; \
                 mv /shared/id.tmp /shared/id; exec sleep 300",
    ))?;
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "userns");
    c.start_running()?;
    let pid = c.pid()?;
    let uid = status_field(pid, "Uid")?;
    let gid = status_field(pid, "Gid")?;
    ensure!(
        uid.split_whitespace().all(|u| u == "100000"),
        "[{rt}] host sees Uid {uid:?}, expected 100000"
    );
    ensure!(
        gid.split_whitespace().all(|g| g == "100000"),
        "[{rt}] host sees Gid {gid:?}, expected 100000"
    );
    ensure!(
        namespace_of(&pid.to_string(), "user")? != namespace_of("self", "user")?,
        "[{rt}] no new user namespace"
    );

    let written = host::wait_until(Duration::from_secs(5), || {
        Ok(bundle.read("shared/id").unwrap_or_default().lines().count() >= 3)
    })?;
    let inside = bundle.read("shared/id").unwrap_or_default();
    ensure!(
        written,
        "[{rt}] the container did not report its ids: {inside:?}"
    );
    let lines: Vec<&str> = inside.lines().collect();
    ensure!(
        lines[0] == "0" && lines[1] == "0",
        "[{rt}] inside, id must be 0:0: {inside:?}"
    );
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    ensure!(
        map == ["0", "100000", "65536"],
        "[{rt}] uid_map: {inside:?}"
    );
    c.delete_and_check(true)?;
    Ok(())
});

/// A network namespace made with `ip netns add`, deleted on drop.
struct NetNs(String);

impl NetNs {
    fn add() -> Result<NetNs> {
        let name = unique_id("netns");
        let added = berth_runtime_tests::run_host("ip", &["netns", "add", &name])
            .map_err(|e| Skip(format!("`ip` is not usable here: {e}")))?;
        if !added.success() {
            return Err(Skip(format!("cannot make a network namespace: {added}")).into());
        }
        Ok(NetNs(name))
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = berth_runtime_tests::run_host("ip", &["netns", "delete", &self.0]);
    }
}

conformance!(join_network_namespace_by_path, |rt| {
    let netns = NetNs::add()?;
    let inode = fs::metadata(netns.path()).context("stat netns")?.ino();
    let spec = Spec::new()
        .namespace("network", Some(&netns.path()))
        .args(&["readlink", "/proc/self/ns/net"]);
    let out = run_spec_stdout(rt, &spec, "joinnet")?;
    ensure!(
        out.trim() == format!("net:[{inode}]"),
        "[{rt}] the container must join {} (net:[{inode}]), saw {out:?}",
        netns.path()
    );
    Ok(())
});
