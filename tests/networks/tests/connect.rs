//! `docker network connect` / `disconnect` on a running container take effect live: an
//! `eth1` with an address on the second network, names resolving there, and
//! `network inspect` listing (and then unlisting) the container.

use anyhow::{ensure, Result};
use berth_network_tests::{
    container_ip, create_network, exec_get, in_subnet, ipv4_config, network, parse_ipv4_addrs,
    remove_networks, start_idle, start_web, wait_exec_get, Engine,
};

fn members(e: &Engine, net: &str) -> Result<Vec<String>> {
    let net = network(e, net)?;
    Ok(net["Containers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

#[test]
fn connect_and_disconnect_take_effect_live() -> Result<()> {
    let e = Engine::start()?;
    create_network(&e, &["n1"])?;
    create_network(&e, &["--subnet", "10.213.0.0/24", "n2"])?;
    let result = (|| -> Result<()> {
        let c = start_idle(&e, &["--name", "box", "--network", "n1"])?;
        start_web(&e, &["--name", "peer", "--network", "n2"], "peer-on-n2")?;
        let peer_ip = container_ip(&e, "peer", "n2")?;
        let (n2_subnet, _) = ipv4_config(&network(&e, "n2")?)?;

        // Before: no eth1, peer unreachable by name and address.
        let out = e.docker(&["exec", "box", "ip", "link", "show", "eth1"])?;
        ensure!(!out.success(), "c has an eth1 before connect: {out}");
        let out = exec_get(&e, "box", &format!("http://{peer_ip}/"))?;
        ensure!(!out.success(), "c reached peer on n2 before connect: {out}");
        ensure!(
            !members(&e, "n2")?.contains(&c),
            "n2 lists c before connect"
        );

        e.docker_ok(&["network", "connect", "n2", "box"])?;
        let out = e.docker_ok(&["exec", "box", "ip", "-o", "-4", "addr", "show", "eth1"])?;
        let addrs = parse_ipv4_addrs(&out.stdout);
        ensure!(
            addrs.len() == 1 && in_subnet(&addrs[0], &n2_subnet),
            "c's eth1 after connect must be in {n2_subnet}: {out}"
        );
        let c_n2 = container_ip(&e, "box", "n2")?;
        ensure!(
            addrs[0].starts_with(&format!("{c_n2}/")),
            "inspect says {c_n2} on n2, eth1 has {addrs:?}"
        );
        ensure!(
            members(&e, "n2")?.contains(&c),
            "n2 does not list c after connect"
        );
        // eth0 on n1 is untouched.
        let out = e.docker_ok(&["exec", "box", "ip", "-o", "-4", "addr", "show", "eth0"])?;
        let c_n1 = container_ip(&e, "box", "n1")?;
        ensure!(
            parse_ipv4_addrs(&out.stdout)
                .iter()
                .any(|a| a.starts_with(&format!("{c_n1}/"))),
            "c's eth0 lost its n1 address: {out}"
        );
        wait_exec_get(&e, "box", "http://peer/", "peer-on-n2")?;
        wait_exec_get(&e, "box", "http://peer.n2/", "peer-on-n2")?;
        // And the other way: peer resolves c by name on n2.
        let out = e.docker_ok(&["exec", "peer", "nslookup", "box", "127.0.0.11"])?;
        ensure!(
            out.stdout.contains(&c_n2),
            "peer resolves box to {c_n2}: {out}"
        );

        e.docker_ok(&["network", "disconnect", "n2", "box"])?;
        let out = e.docker(&["exec", "box", "ip", "link", "show", "eth1"])?;
        ensure!(
            !out.success(),
            "eth1 is still there after disconnect: {out}"
        );
        let out = exec_get(&e, "box", "http://peer/")?;
        ensure!(
            !out.success(),
            "c still reaches peer by name after disconnect: {out}"
        );
        let out = exec_get(&e, "box", &format!("http://{peer_ip}/"))?;
        ensure!(
            !out.success(),
            "c still reaches peer's address after disconnect: {out}"
        );
        ensure!(
            !members(&e, "n2")?.contains(&c),
            "n2 still lists c after disconnect"
        );
        let inspect = e.container("box")?;
        ensure!(
            inspect["NetworkSettings"]["Networks"].get("n2").is_none(),
            "inspect still shows n2: {}",
            inspect["NetworkSettings"]["Networks"]
        );
        // Connecting twice is an error, as in Docker.
        e.docker_ok(&["network", "connect", "n2", "box"])?;
        let out = e.docker_fails(&["network", "connect", "n2", "box"])?;
        ensure!(
            out.stderr.contains("already exists in network n2")
                || out.stderr.contains("is already attached to network n2"),
            "a second connect: {out}"
        );
        e.docker_ok(&["network", "disconnect", "n2", "box"])?;
        // A container that is not connected: Docker's message.
        let out = e.docker_fails(&["network", "disconnect", "n2", "box"])?;
        ensure!(
            out.stderr.contains("is not connected to network n2"),
            "disconnect of a container not connected: {out}"
        );
        e.docker_ok(&["rm", "-f", "box", "peer"])?;
        Ok(())
    })();
    remove_networks(&e, &["n1", "n2"]);
    result
}
