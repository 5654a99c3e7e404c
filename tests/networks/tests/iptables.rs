//! The iptables backend end to end (`berth daemon --firewall-backend iptables`, as on a host
//! without nftables): published ports and masquerading work through `BERTH-*` chains, no
//! `inet berth` table is made, and the chains lose their rules with the objects that
//! needed them.

use anyhow::{ensure, Result};
use berth_network_tests::{
    nft_table, peer_echo_server, start_web, wait_host_get, Engine, Outside, BUSYBOX, HOST_IP,
    OUTSIDE_IP,
};

fn iptables_save(e: &Engine, table: &str) -> Result<String> {
    Ok(e.in_netns("iptables-save", &["-t", table])?.ok()?.stdout)
}

#[test]
fn iptables_backend_publishes_and_masquerades() -> Result<()> {
    let e = Engine::start_with_args(&["--firewall-backend", "iptables"])?;
    let outside = Outside::new(&e)?;

    start_web(&e, &["--name", "web", "-p", "8080:80"], "web-ipt")?;
    wait_host_get(&e, "http://127.0.0.1:8080/", "web-ipt")?;
    wait_host_get(&e, &format!("http://{HOST_IP}:8080/"), "web-ipt")?;
    let got = outside.get(&format!("http://{HOST_IP}:8080/"))?;
    ensure!(
        got.success() && got.stdout.contains("web-ipt"),
        "the outside host cannot reach {HOST_IP}:8080: {got}"
    );
    let nat = iptables_save(&e, "nat")?;
    ensure!(
        nat.contains(":BERTH-PORTS") && nat.contains("--dport 8080") && nat.contains("DNAT"),
        "no DNAT rule in BERTH-PORTS:\n{nat}"
    );
    ensure!(
        nft_table(&e)?.is_none(),
        "the iptables backend made an inet berth table"
    );

    // Outbound: the outside host sees the host's address.
    let server = peer_echo_server(&outside, 7001)?;
    let out = e.docker(&[
        "run",
        "--rm",
        BUSYBOX,
        "sh",
        "-c",
        &format!("echo hi | nc -w 5 {OUTSIDE_IP} 7001"),
    ])?;
    ensure!(
        out.success() && out.stdout.trim() == format!("peer {HOST_IP}"),
        "masquerading through iptables: {out}\nserver: {}",
        server.stdout()
    );

    // The port's rule goes with its container.
    e.docker_ok(&["rm", "-f", "web"])?;
    let nat = iptables_save(&e, "nat")?;
    ensure!(
        !nat.contains("--dport 8080"),
        "the DNAT rule outlived its container:\n{nat}"
    );
    Ok(())
}
