//! After every container and user network is gone, nothing of them is left: no veth, no
//! bridge but `berth0`, no published-port or bridge rule; `network prune`; and nothing
//! ever appeared in the test process's own namespace.

use anyhow::{ensure, Result};
use berth_network_tests::{
    cmd, create_network, host_links, netns_links, network_names, nft_table, start_idle, start_web,
    wait_host_get, Engine, Outside,
};

fn host_tables() -> Result<String> {
    Ok(cmd::run("nft", &["list", "tables"])?.ok()?.stdout)
}

#[test]
fn removing_everything_leaves_nothing_behind() -> Result<()> {
    let host_berth_links_before: Vec<String> = host_links()?
        .into_iter()
        .filter(|l| l.starts_with("berth"))
        .collect();
    let host_had_berth_table = host_tables()?.contains("table inet berth");

    let e = Engine::start()?;
    let outside = Outside::new(&e)?;
    let baseline = netns_links(&e)?;
    let expected: Vec<&str> = vec!["berth0", "berthto0", "lo"];
    ensure!(
        baseline.iter().map(String::as_str).collect::<Vec<_>>() == expected,
        "a fresh daemon's namespace: {baseline:?}"
    );

    create_network(&e, &["n1"])?;
    create_network(&e, &["--internal", "n2"])?;
    create_network(&e, &["--ipv6", "--subnet", "fd00:be57:2::/64", "n3"])?;
    start_web(
        &e,
        &["--name", "ca", "--network", "n1", "-p", "8080:80"],
        "a-8080",
    )?;
    start_web(
        &e,
        &["--name", "cb", "-p", "8081:80", "-p", "5353:53/udp"],
        "b-8081",
    )?;
    start_idle(&e, &["--name", "cc", "--network", "n2"])?;
    start_idle(&e, &["--name", "cd", "--network", "n3"])?;
    e.docker_ok(&["network", "connect", "n1", "cc"])?;
    e.docker_ok(&["run", "--rm", "--network", "n1", "busybox:latest", "true"])?;
    wait_host_get(&e, "http://127.0.0.1:8080/", "a-8080")?;
    wait_host_get(&e, "http://127.0.0.1:8081/", "b-8081")?;
    let during = netns_links(&e)?;
    ensure!(
        during.iter().filter(|l| l.starts_with("berthv")).count() == 5,
        "five endpoints, five host veths: {during:?}"
    );
    ensure!(
        during.iter().filter(|l| l.starts_with("berth-")).count() == 3,
        "three user networks, three bridges: {during:?}"
    );

    for name in ["ca", "cb", "cc", "cd"] {
        e.docker_ok(&["rm", "-f", name])?;
    }
    e.docker_ok(&["network", "rm", "n1", "n2"])?;
    // n3 goes with prune, which keeps the predefined networks.
    let out = e.docker_ok(&["network", "prune", "-f"])?;
    ensure!(
        out.stdout.contains("Deleted Networks:") && out.stdout.contains("n3"),
        "network prune: {out}"
    );
    ensure!(
        network_names(&e)? == ["bridge", "host", "none"],
        "networks left: {:?}",
        network_names(&e)?
    );

    let after = netns_links(&e)?;
    ensure!(
        after == baseline,
        "links left in the daemon's namespace: {after:?} (fresh: {baseline:?})"
    );
    let table = nft_table(&e)?.unwrap_or_default();
    for gone in [
        " dnat ip to",
        " dnat ip6 to",
        "dport 8080",
        "dport 8081",
        "dport 5353",
        "berth-",
    ] {
        ensure!(
            !table.contains(gone),
            "berth's table still has {gone:?} after everything was removed:\n{table}"
        );
    }
    let addrs = e.in_netns("ip", &["-o", "addr", "show"])?.ok()?;
    ensure!(
        !addrs.stdout.contains("fd00:be57:2:"),
        "n3's address is left: {addrs}"
    );
    drop(outside);
    drop(e);

    // The test process's namespace: no berth link or table appeared.
    // Other engines on this machine may be making and removing links of their own at
    // this moment: only a link that stays is one left behind.
    let new_links = || -> Result<Vec<String>> {
        Ok(host_links()?
            .into_iter()
            .filter(|l| l.starts_with("berth") && !host_berth_links_before.contains(l))
            .collect())
    };
    if !new_links()?.is_empty() {
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    let new = new_links()?;
    ensure!(
        new.is_empty(),
        "links left in the host's namespace: {new:?}"
    );
    if !host_had_berth_table {
        let tables = host_tables()?;
        ensure!(
            !tables.contains("table inet berth"),
            "an `inet berth` table appeared in the host's namespace:\n{tables}"
        );
    }
    Ok(())
}
