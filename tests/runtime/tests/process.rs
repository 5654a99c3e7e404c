//! The container process: what the spec's `process` and the process-related
//! `linux` fields make it see from the inside.

use anyhow::{ensure, Result};
use berth_runtime_tests::{conformance, run_spec, run_spec_stdout, Skip, Spec};
use serde_json::json;

conformance!(env_is_set, |rt| {
    let spec = Spec::new().env("BERTH_GREETING=hello world").args(&["env"]);
    let out = run_spec_stdout(rt, &spec, "env")?;
    ensure!(
        out.lines().any(|l| l == "BERTH_GREETING=hello world"),
        "[{rt}] env: {out:?}"
    );
    ensure!(
        out.lines().any(|l| l.starts_with("PATH=/usr/local/sbin")),
        "[{rt}] PATH lost: {out:?}"
    );
    Ok(())
});

conformance!(cwd_is_set, |rt| {
    let out = run_spec_stdout(rt, &Spec::new().cwd("/tmp").args(&["pwd"]), "cwd")?;
    ensure!(out.trim() == "/tmp", "[{rt}] pwd: {out:?}");
    Ok(())
});

conformance!(user_and_groups, |rt| {
    let spec = Spec::new()
        .user(1000, 1000)
        .additional_gids(&[5, 65534])
        .shell("id -u; id -g; id -G");
    let out = run_spec_stdout(rt, &spec, "user")?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() == 3, "[{rt}] id output: {out:?}");
    ensure!(
        lines[0] == "1000" && lines[1] == "1000",
        "[{rt}] uid/gid must be 1000/1000: {out:?}"
    );
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    for gid in ["5", "65534"] {
        ensure!(
            groups.contains(&gid),
            "[{rt}] additional gid {gid} missing from {groups:?}"
        );
    }
    ensure!(
        !groups.contains(&"0"),
        "[{rt}] the process kept root's group 0: {groups:?}"
    );
    Ok(())
});

conformance!(umask_is_set, |rt| {
    let spec = Spec::new()
        .set("/process/user/umask", json!(0o077))
        .args(&["sh", "-c", "umask"]);
    let out = run_spec_stdout(rt, &spec, "umask")?;
    ensure!(out.trim() == "0077", "[{rt}] umask: {out:?}");
    Ok(())
});

conformance!(rlimits_are_set, |rt| {
    let spec = Spec::new()
        .set(
            "/process/rlimits",
            json!([{ "type": "RLIMIT_NOFILE", "hard": 512, "soft": 256 }]),
        )
        .shell("ulimit -n; ulimit -Hn");
    let out = run_spec_stdout(rt, &spec, "rlimits")?;
    ensure!(
        out.lines().collect::<Vec<_>>() == ["256", "512"],
        "[{rt}] ulimit -n / -Hn: {out:?}"
    );
    Ok(())
});

conformance!(no_new_privileges, |rt| {
    for (flag, expected) in [(true, "1"), (false, "0")] {
        let spec = Spec::new()
            .set("/process/noNewPrivileges", json!(flag))
            .args(&["grep", "NoNewPrivs", "/proc/self/status"]);
        let out = run_spec_stdout(rt, &spec, "nnp")?;
        let value = out.split(':').nth(1).unwrap_or("").trim().to_string();
        ensure!(value == expected, "[{rt}] noNewPrivileges {flag}: {out:?}");
    }
    Ok(())
});

/// Capability numbers from linux/capability.h.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn mask(caps: &[&str]) -> u64 {
    caps.iter()
        .map(|name| {
            CAPABILITIES
                .iter()
                .position(|c| c == name)
                .expect("known capability")
        })
        .fold(0, |mask, bit| mask | (1 << bit))
}

/// CapInh/CapPrm/CapEff/CapBnd/CapAmb of the container's process.
fn capability_sets(rt: &berth_runtime_tests::Runtime, spec: Spec) -> Result<Vec<(String, u64)>> {
    let out = run_spec_stdout(
        rt,
        &spec.args(&["grep", "^Cap", "/proc/self/status"]),
        "caps",
    )?;
    out.lines()
        .map(|line| {
            let (name, hex) = line.split_once(':').unwrap_or((line, ""));
            Ok((name.to_string(), u64::from_str_radix(hex.trim(), 16)?))
        })
        .collect()
}

conformance!(capabilities_match_spec, |rt| {
    let template = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let custom = ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SETUID"];
    for (spec, caps) in [
        (Spec::new(), &template[..]),
        (Spec::new().capabilities(&custom), &custom[..]),
    ] {
        let expected = mask(caps);
        let sets = capability_sets(rt, spec)?;
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            let found = sets.iter().find(|(name, _)| name == set).map(|(_, m)| *m);
            ensure!(
                found == Some(expected),
                "[{rt}] {set} must be {expected:016x} ({caps:?}), got {found:016x?}; all: {sets:x?}"
            );
        }
    }
    Ok(())
});

conformance!(readonly_root, |rt| {
    let denied = run_spec(rt, &Spec::new().args(&["touch", "/x"]), "rootro")?;
    ensure!(
        !denied.success(),
        "[{rt}] touch /x on a readonly root must fail: {denied}"
    );
    let allowed = run_spec(
        rt,
        &Spec::new().readonly_root(false).args(&["touch", "/x"]),
        "rootrw",
    )?;
    ensure!(
        allowed.success(),
        "[{rt}] touch /x on a writable root must work: {allowed}"
    );
    Ok(())
});

conformance!(masked_paths, |rt| {
    // Template paths that exist on this host (kernels differ: /proc/kcore
    // may be absent), plus one added here.
    let candidates = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/acpi",
        "/sys/firmware",
    ];
    let mut paths: Vec<&str> = candidates
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    paths.push("/etc/group");
    let script = format!(
        "for p in {}; do \
           if [ -d $p ]; then echo \"$p $(ls -A $p | wc -l)\"; \
           elif [ -e $p ]; then echo \"$p $(wc -c < $p)\"; \
           else echo \"$p missing\"; fi; done",
        paths.join(" ")
    );
    let spec = Spec::new()
        .push("/linux/maskedPaths", json!("/etc/group"))
        .shell(&script);
    let out = run_spec_stdout(rt, &spec, "masked")?;
    for path in &paths {
        let line = out.lines().find(|l| l.split(' ').next() == Some(*path));
        ensure!(
            line == Some(&format!("{path} 0")),
            "[{rt}] masked path {path} must read empty inside: {out:?}"
        );
    }
    Ok(())
});

conformance!(readonly_paths, |rt| {
    let script = "grep ' /proc/sys ' /proc/self/mountinfo; \
                  if echo x > /proc/sys/kernel/hostname; then echo WRITABLE; fi";
    let out = run_spec(rt, &Spec::new().shell(script), "ropaths")?;
    let line = out.stdout.lines().next().unwrap_or("");
    let options = line.split(' ').nth(5).unwrap_or("");
    ensure!(
        options.split(',').any(|o| o == "ro"),
        "[{rt}] /proc/sys must be mounted ro: {out}"
    );
    ensure!(
        !out.stdout.contains("WRITABLE"),
        "[{rt}] /proc/sys/kernel/hostname was writable: {out}"
    );
    Ok(())
});

conformance!(hostname_is_set, |rt| {
    let out = run_spec_stdout(
        rt,
        &Spec::new().hostname("box1").args(&["hostname"]),
        "hostname",
    )?;
    ensure!(out.trim() == "box1", "[{rt}] hostname: {out:?}");
    Ok(())
});

conformance!(domainname_is_set, |rt| {
    if rt.name == berth_runtime_tests::RUNC && rt.runc_older_than(1, 2)? {
        // runc learned `domainname` in 1.2; older ones ignore the field.
        return Err(Skip("runc < 1.2 ignores domainname".to_string()).into());
    }
    let spec = Spec::new()
        .set("/domainname", json!("example.org"))
        .args(&["cat", "/proc/sys/kernel/domainname"]);
    let out = run_spec_stdout(rt, &spec, "domainname")?;
    ensure!(out.trim() == "example.org", "[{rt}] domainname: {out:?}");
    Ok(())
});

conformance!(sysctl_in_network_namespace, |rt| {
    let spec = Spec::new()
        .set("/linux/sysctl", json!({ "net.ipv4.ip_forward": "1" }))
        .args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let out = run_spec_stdout(rt, &spec, "sysctl")?;
    ensure!(
        out.trim() == "1",
        "[{rt}] net.ipv4.ip_forward in the container: {out:?}"
    );
    Ok(())
});

conformance!(oom_score_adj_raised, |rt| {
    // Raising needs no privilege; lowering below the current value needs
    // CAP_SYS_RESOURCE, which root lacks on some hosts.
    let current: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")?
        .trim()
        .parse()?;
    let wanted = (current + 100).min(1000);
    let spec = Spec::new()
        .set("/process/oomScoreAdj", json!(wanted))
        .args(&["cat", "/proc/self/oom_score_adj"]);
    let out = run_spec_stdout(rt, &spec, "oomscore")?;
    ensure!(
        out.trim() == wanted.to_string(),
        "[{rt}] oom_score_adj must be {wanted}: {out:?}"
    );
    Ok(())
});
