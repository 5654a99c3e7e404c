//! Mounts from the spec: filesystem types with options, bind mounts with
//! flags, recursive binds, and propagation.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Result};
use berth_runtime_tests::host::wait_until;
use berth_runtime_tests::{
    conformance, run_host, run_spec, run_spec_stdout, Bundle, Container, Spec,
};

/// The mountinfo line for `point` printed by the container, split into
/// (mount options, super options, fs type).
fn mount_line<'a>(out: &'a str, point: &str) -> Option<(&'a str, &'a str, &'a str)> {
    out.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        if fields.get(4) != Some(&point) {
            return None;
        }
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1)?;
        Some((fields[5], super_options, fstype))
    })
}

fn has(options: &str, option: &str) -> bool {
    options.split(',').any(|o| o == option)
}

conformance!(tmpfs_with_options, |rt| {
    let spec = Spec::new()
        .mount(
            "/scratch",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "size=1m", "mode=1777"],
        )
        .shell("grep ' /scratch ' /proc/self/mountinfo; stat -c %a /scratch");
    let out = run_spec_stdout(rt, &spec, "tmpfs")?;
    let (options, super_options, fstype) = mount_line(&out, "/scratch")
        .ok_or_else(|| anyhow::anyhow!("[{rt}] /scratch is not mounted: {out:?}"))?;
    ensure!(fstype == "tmpfs", "[{rt}] /scratch type: {out:?}");
    for flag in ["nosuid", "nodev", "noexec"] {
        ensure!(has(options, flag), "[{rt}] /scratch lacks {flag}: {out:?}");
    }
    ensure!(
        has(super_options, "size=1024k"),
        "[{rt}] /scratch size=1m not applied: {out:?}"
    );
    ensure!(
        out.lines().last() == Some("1777"),
        "[{rt}] /scratch mode=1777 not applied: {out:?}"
    );
    Ok(())
});

conformance!(bind_readonly, |rt| {
    let bundle = Bundle::new()?;
    let data = bundle.dir("data")?;
    fs::write(data.join("hello"), "from-host\n")?;
    let spec = Spec::new()
        .mount("/data", "bind", &data.to_string_lossy(), &["rbind", "ro"])
        .shell("cat /data/hello; if touch /data/new 2>/dev/null; then echo WROTE; fi");
    bundle.write_spec(&spec)?;
    let c = Container::new(rt, &bundle, "bindro");
    let out = c.run()?.ok()?;
    ensure!(
        out.stdout.contains("from-host"),
        "[{rt}] cannot read the bind mount: {out}"
    );
    ensure!(
        !out.stdout.contains("WROTE"),
        "[{rt}] wrote to a read-only bind mount: {out}"
    );
    ensure!(
        !data.join("new").exists(),
        "[{rt}] the write reached the host"
    );
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(bind_nosuid_noexec, |rt| {
    let bundle = Bundle::new()?;
    let tools = bundle.dir("tools")?;
    fs::copy(bundle.rootfs().join("bin/busybox"), tools.join("busybox"))?;
    let script = "grep ' /tools ' /proc/self/mountinfo; \
                  if /tools/busybox true 2>/dev/null; then echo EXECUTED; fi";
    let flagged = Spec::new()
        .mount(
            "/tools",
            "bind",
            &tools.to_string_lossy(),
            &["bind", "nosuid", "noexec"],
        )
        .shell(script);
    bundle.write_spec(&flagged)?;
    let c = Container::new(rt, &bundle, "noexec");
    let out = c.run()?.ok()?.stdout;
    let (options, ..) = mount_line(&out, "/tools")
        .ok_or_else(|| anyhow::anyhow!("[{rt}] /tools is not mounted: {out:?}"))?;
    ensure!(
        has(options, "nosuid") && has(options, "noexec"),
        "[{rt}] /tools flags: {out:?}"
    );
    ensure!(
        !out.contains("EXECUTED"),
        "[{rt}] ran a binary from a noexec mount: {out:?}"
    );

    // The same mount without noexec runs it: the failure above was the flag.
    let plain = Spec::new()
        .mount("/tools", "bind", &tools.to_string_lossy(), &["bind"])
        .shell(script);
    bundle.write_spec(&plain)?;
    let d = Container::new(rt, &bundle, "exec");
    let out = d.run()?.ok()?.stdout;
    ensure!(
        out.contains("EXECUTED"),
        "[{rt}] a plain bind mount must allow exec: {out:?}"
    );
    Ok(())
});

/// A mount made on the host for a test, unmounted on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> Result<HostMount> {
        fs::create_dir_all(at)?;
        run_host("mount", &["-t", "tmpfs", "tmpfs", &at.to_string_lossy()])?.ok()?;
        Ok(HostMount(at.to_path_buf()))
    }

    /// Bind-mounts a directory on itself and makes it a shared peer group.
    fn shared(at: &Path) -> Result<HostMount> {
        let path = at.to_string_lossy();
        run_host("mount", &["--bind", &path, &path])?.ok()?;
        let mount = HostMount(at.to_path_buf());
        run_host("mount", &["--make-rshared", &path])?.ok()?;
        Ok(mount)
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = run_host("umount", &["-l", &self.0.to_string_lossy()]);
    }
}

conformance!(rbind_includes_submounts, |rt| {
    let bundle = Bundle::new()?;
    let tree = bundle.dir("tree")?;
    let sub = HostMount::tmpfs(&tree.join("sub"))?;
    fs::write(sub.0.join("marker"), "under-submount\n")?;
    let read = "cat /tree/sub/marker 2>/dev/null || echo NO-MARKER";
    let source = tree.to_string_lossy();

    let rbind = Spec::new()
        .mount("/tree", "bind", &source, &["rbind"])
        .shell(read);
    let out = run_spec_stdout_in(rt, &bundle, &rbind, "rbind")?;
    ensure!(
        out.contains("under-submount"),
        "[{rt}] rbind must carry the submount: {out:?}"
    );

    let bind = Spec::new()
        .mount("/tree", "bind", &source, &["bind"])
        .shell(read);
    let out = run_spec_stdout_in(rt, &bundle, &bind, "bind")?;
    ensure!(
        out.contains("NO-MARKER"),
        "[{rt}] a plain bind must not carry the submount: {out:?}"
    );
    drop(sub);
    Ok(())
});

fn run_spec_stdout_in(
    rt: &berth_runtime_tests::Runtime,
    bundle: &Bundle,
    spec: &Spec,
    test: &str,
) -> Result<String> {
    bundle.write_spec(spec)?;
    let c = Container::new(rt, bundle, test);
    Ok(c.run()?.ok()?.stdout)
}

conformance!(propagation_flags, |rt| {
    // rslave receives a mount made on the host after the container started;
    // rprivate does not.
    for (flag, receives) in [("rslave", true), ("rprivate", false)] {
        let bundle = Bundle::new()?;
        let source = bundle.dir("source")?;
        let shared_source = HostMount::shared(&source)?;
        let spec = bundle.share(
            Spec::new()
                .set("/linux/rootfsPropagation", serde_json::json!("slave"))
                .mount("/prop", "bind", &source.to_string_lossy(), &["rbind", flag])
                .shell(
                    "while true; do \
                          if [ -e /prop/late/marker ]; then echo seen > /shared/seen; fi; \
                          sleep 0.05; done",
                ),
        )?;
        bundle.write_spec(&spec)?;
        let c = Container::new(rt, &bundle, "propagation");
        c.start_running()?;
        let late = HostMount::tmpfs(&source.join("late"))?;
        fs::write(late.0.join("marker"), "")?;
        let seen = wait_until(
            Duration::from_millis(if receives { 3000 } else { 500 }),
            || Ok(bundle.file("shared/seen").exists()),
        )?;
        ensure!(
            seen == receives,
            "[{rt}] a {flag} bind mount {} see a host mount made later",
            if receives { "must" } else { "must not" }
        );
        c.rt.invoke(&["delete", "--force", &c.id])?.ok()?;
        drop(late);
        drop(shared_source);
        c.assert_nothing_left()?;
    }
    Ok(())
});

conformance!(bind_missing_destination_is_created, |rt| {
    let outcome = run_spec(
        rt,
        &Spec::new()
            .mount("/new/deep/dir", "tmpfs", "tmpfs", &["size=64k"])
            .args(&["grep", "-c", " /new/deep/dir ", "/proc/self/mountinfo"]),
        "mkdest",
    )?;
    ensure!(
        outcome.stdout.trim() == "1",
        "[{rt}] a missing mount destination must be created: {outcome}"
    );
    Ok(())
});
