//! The default bridge network `bridge` (interface `berth0`): a container's `eth0`, its
//! route and what `inspect` reports; `--network container:<name>`, `--add-host`, `info`;
//! IPv6 subnets on a user-defined network.

use anyhow::{ensure, Result};
use berth_network_tests::{
    create_network, ensure_contains, in_subnet, ipv4_config, network, parse_ipv4_addrs,
    remove_networks, start_idle, Engine, BUSYBOX,
};

#[test]
fn default_bridge_gives_eth0_an_address_and_a_route() -> Result<()> {
    let e = Engine::start()?;
    let bridge = network(&e, "bridge")?;
    ensure!(bridge["Driver"] == "bridge", "bridge's driver: {bridge}");
    ensure!(
        bridge["Options"]["com.docker.network.bridge.name"] == "berth0",
        "bridge's interface must be berth0: {}",
        bridge["Options"]
    );
    let (subnet, gateway) = ipv4_config(&bridge)?;
    ensure!(
        in_subnet(&gateway, &subnet),
        "gateway {gateway} outside {subnet}"
    );
    // The host side: berth0 holds the gateway address.
    let host = e
        .in_netns("ip", &["-o", "-4", "addr", "show", "berth0"])?
        .ok()?;
    let prefix = subnet.split('/').nth(1).unwrap_or_default();
    ensure_contains(
        &host.stdout,
        &format!("inet {gateway}/{prefix}"),
        "berth0's address",
    )?;

    let out = e.run_rm(&[
        BUSYBOX,
        "sh",
        "-c",
        "ip -o -4 addr show eth0; echo ---; ip route",
    ])?;
    let (addrs, routes) = out.split_once("---").unwrap_or((&out, ""));
    let addrs = parse_ipv4_addrs(addrs);
    ensure!(addrs.len() == 1, "eth0 must have one IPv4 address: {out}");
    ensure!(
        in_subnet(&addrs[0], &subnet) && addrs[0].ends_with(&format!("/{prefix}")),
        "eth0's {} is not in the bridge's {subnet}",
        addrs[0]
    );
    ensure_contains(
        routes,
        &format!("default via {gateway} dev eth0"),
        "the container's default route",
    )?;

    // Two running containers: inspect agrees with what is inside, and they differ.
    start_idle(&e, &["--name", "ca"])?;
    start_idle(&e, &["--name", "cb"])?;
    let mut seen = Vec::new();
    for name in ["ca", "cb"] {
        let c = e.container(name)?;
        let ns = &c["NetworkSettings"];
        let ip = ns["IPAddress"].as_str().unwrap_or_default().to_string();
        ensure!(in_subnet(&ip, &subnet), "{name}: IPAddress {ip:?}: {ns}");
        ensure!(ns["Gateway"] == gateway.as_str(), "{name}: Gateway: {ns}");
        ensure!(
            ns["IPPrefixLen"].as_u64() == prefix.parse().ok(),
            "{name}: IPPrefixLen: {ns}"
        );
        let mac = ns["MacAddress"].as_str().unwrap_or_default().to_string();
        ensure!(
            mac.len() == 17 && mac.split(':').count() == 6,
            "{name}: MacAddress {mac:?}"
        );
        let eps = &ns["Networks"]["bridge"];
        ensure!(
            eps["IPAddress"] == ip.as_str(),
            "{name}: Networks.bridge: {ns}"
        );
        ensure!(
            eps["Gateway"] == gateway.as_str(),
            "{name}: Networks.bridge: {ns}"
        );
        ensure!(
            eps["MacAddress"] == mac.as_str(),
            "{name}: Networks.bridge: {ns}"
        );
        ensure!(
            eps["NetworkID"] == bridge["Id"],
            "{name}: Networks.bridge.NetworkID: {ns}"
        );
        ensure!(
            c["HostConfig"]["NetworkMode"] == "bridge",
            "{name}: NetworkMode {}",
            c["HostConfig"]["NetworkMode"]
        );
        // What the container has is what inspect says.
        let inside = e.docker_ok(&[
            "exec",
            name,
            "sh",
            "-c",
            "ip -o -4 addr show eth0; cat /sys/class/net/eth0/address",
        ])?;
        ensure_contains(
            &inside.stdout,
            &format!("inet {ip}/{prefix}"),
            "eth0 vs inspect",
        )?;
        ensure_contains(&inside.stdout, &mac, "eth0's MAC vs inspect")?;
        seen.push(ip);
    }
    ensure!(
        seen[0] != seen[1],
        "two containers got one address: {seen:?}"
    );

    // network inspect lists both.
    let bridge = network(&e, "bridge")?;
    let listed = bridge["Containers"]
        .as_object()
        .map(|m| m.len())
        .unwrap_or(0);
    ensure!(listed == 2, "bridge's Containers: {}", bridge["Containers"]);

    // They reach each other by address.
    let out = e.docker(&["exec", "ca", "ping", "-c", "1", "-W", "5", &seen[1]])?;
    ensure!(out.success(), "ca cannot ping cb on the bridge: {out}");
    Ok(())
}

#[test]
fn container_network_mode_shares_eth0() -> Result<()> {
    let e = Engine::start()?;
    start_idle(&e, &["--name", "first"])?;
    let first = e.docker_ok(&["exec", "first", "ip", "-o", "-4", "addr", "show", "eth0"])?;
    let first_addrs = parse_ipv4_addrs(&first.stdout);
    ensure!(first_addrs.len() == 1, "first's eth0: {first}");

    let out = e.run_rm(&[
        "--network",
        "container:first",
        BUSYBOX,
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ])?;
    ensure!(
        parse_ipv4_addrs(&out) == first_addrs,
        "--network container:first must see first's eth0 {first_addrs:?}, got:\n{out}"
    );
    // Also by ID, and the mode is what inspect shows.
    let id = e.container_id("first")?;
    start_idle(
        &e,
        &["--name", "second", "--network", &format!("container:{id}")],
    )?;
    let second = e.container("second")?;
    ensure!(
        second["HostConfig"]["NetworkMode"] == format!("container:{id}").as_str(),
        "second's NetworkMode: {}",
        second["HostConfig"]["NetworkMode"]
    );
    let inside = e.docker_ok(&["exec", "second", "ip", "-o", "-4", "addr", "show", "eth0"])?;
    ensure!(
        parse_ipv4_addrs(&inside.stdout) == first_addrs,
        "second's eth0: {inside}"
    );

    Ok(())
}

#[test]
fn add_host_and_info() -> Result<()> {
    let e = Engine::start()?;
    let hosts = e.run_rm(&["--add-host", "db:10.1.2.3", BUSYBOX, "cat", "/etc/hosts"])?;
    ensure!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["10.1.2.3", "db"]),
        "--add-host db:10.1.2.3 missing from /etc/hosts:\n{hosts}"
    );

    let info = e.docker_ok(&["info", "--format", "{{json .}}"])?;
    let info: serde_json::Value = serde_json::from_str(&info.stdout)?;
    ensure!(
        info["IPv4Forwarding"] == true,
        "info IPv4Forwarding: {}",
        info["IPv4Forwarding"]
    );
    // And it is true: berth set it in its (the daemon's) namespace.
    let fwd = e
        .in_netns("cat", &["/proc/sys/net/ipv4/ip_forward"])?
        .ok()?;
    ensure!(
        fwd.stdout.trim() == "1",
        "ip_forward in the daemon's namespace: {fwd}"
    );
    Ok(())
}

#[test]
fn ipv6_subnet_on_a_user_network() -> Result<()> {
    let e = Engine::start()?;
    create_network(
        &e,
        &[
            "--ipv6",
            "--subnet",
            "10.212.0.0/24",
            "--subnet",
            "fd00:be57:1::/64",
            "v6net",
        ],
    )?;
    let result = (|| -> Result<()> {
        let net = network(&e, "v6net")?;
        ensure!(net["EnableIPv6"] == true, "EnableIPv6: {net}");
        let subnets: Vec<&str> = net["IPAM"]["Config"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["Subnet"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            subnets.contains(&"fd00:be57:1::/64"),
            "IPAM.Config: {}",
            net["IPAM"]
        );
        start_idle(&e, &["--name", "six", "--network", "v6net"])?;
        let c = e.container("six")?;
        let v6 = c["NetworkSettings"]["Networks"]["v6net"]["GlobalIPv6Address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(
            v6.starts_with("fd00:be57:1:"),
            "GlobalIPv6Address {v6:?}: {}",
            c["NetworkSettings"]
        );
        let inside = e.docker_ok(&["exec", "six", "ip", "-o", "-6", "addr", "show", "eth0"])?;
        ensure_contains(
            &inside.stdout,
            &format!("inet6 {v6}/64"),
            "eth0's IPv6 address",
        )?;
        // Another container reaches it over IPv6, by name (AAAA from the embedded DNS).
        let out = e.docker(&[
            "run",
            "--rm",
            "--network",
            "v6net",
            BUSYBOX,
            "ping6",
            "-c",
            "1",
            "-W",
            "5",
            &v6,
        ])?;
        ensure!(out.success(), "ping6 {v6} on v6net: {out}");
        let out = e.docker(&[
            "run",
            "--rm",
            "--network",
            "v6net",
            BUSYBOX,
            "nslookup",
            "-type=aaaa",
            "six",
            "127.0.0.11",
        ])?;
        ensure!(
            out.success() && out.stdout.contains(&v6),
            "AAAA of six must be {v6}: {out}"
        );
        e.docker_ok(&["rm", "-f", "six"])?;
        Ok(())
    })();
    remove_networks(&e, &["v6net"]);
    result
}
