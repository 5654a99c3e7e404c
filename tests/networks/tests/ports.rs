//! Published ports: `-p host:container`, `-p ip:host:container`, `-P`, `/udp`; reachable
//! from the host's loopback and its own address, from another container and from the
//! outside host; shown by `port` and `ps`; DNAT rules and no proxy process listening.

use anyhow::{ensure, Result};
use berth_network_tests::{
    ensure_contains, host_get, nft_table, start_idle, start_web, start_web_image, wait_host_get,
    Engine, Outside, HOST_IP,
};

/// `docker port <name>` lines; Docker 28 adds a `[::]` line next to `0.0.0.0` when the
/// host has IPv6, so that one is optional.
fn port_lines(e: &Engine, name: &str) -> Result<Vec<String>> {
    Ok(e.docker_ok(&["port", name])?.lines())
}

fn ensure_port_lines(lines: &[String], want: &str, v6: &str) -> Result<()> {
    ensure!(
        lines.first().map(String::as_str) == Some(want)
            && lines.iter().all(|l| l == want || l == v6),
        "docker port: want {want:?} (and maybe {v6:?}), got {lines:?}"
    );
    Ok(())
}

#[test]
fn published_ports_answer_everywhere_without_a_proxy() -> Result<()> {
    let e = Engine::start()?;
    let outside = Outside::new(&e)?;

    start_web(&e, &["--name", "web", "-p", "8080:80"], "web-8080")?;
    // From the host: loopback and its own address.
    wait_host_get(&e, "http://127.0.0.1:8080/", "web-8080")?;
    wait_host_get(&e, &format!("http://{HOST_IP}:8080/"), "web-8080")?;
    // From the outside host, to the host's address.
    let out = outside.get(&format!("http://{HOST_IP}:8080/"))?;
    ensure!(
        out.success() && out.stdout.contains("web-8080"),
        "the outside host cannot reach {HOST_IP}:8080: {out}"
    );
    // From another container on the bridge, through the host's address (hairpin).
    let out = berth_network_tests::run_get(&e, &[], &format!("http://{HOST_IP}:8080/"))?;
    ensure!(
        out.success() && out.stdout.contains("web-8080"),
        "another container cannot reach {HOST_IP}:8080: {out}"
    );
    // The container itself, through its own published port (hairpin mode on its port).
    let out = e.docker(&[
        "exec",
        "web",
        "sh",
        "-c",
        &format!("timeout 5 wget -qO- http://{HOST_IP}:8080/"),
    ])?;
    ensure!(
        out.success() && out.stdout.contains("web-8080"),
        "the container cannot reach its own {HOST_IP}:8080: {out}"
    );

    // `docker port` and `docker ps` in Docker's format.
    ensure_port_lines(
        &port_lines(&e, "web")?,
        "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> [::]:8080",
    )?;
    let one = e.docker_ok(&["port", "web", "80/tcp"])?.lines();
    ensure!(
        one.first().map(String::as_str) == Some("0.0.0.0:8080"),
        "docker port web 80/tcp: {one:?}"
    );
    let ps = e.docker_ok(&["ps", "--filter", "name=web", "--format", "{{.Ports}}"])?;
    ensure_contains(&ps.stdout, "0.0.0.0:8080->80/tcp", "docker ps PORTS")?;
    let c = e.container("web")?;
    let binding = &c["NetworkSettings"]["Ports"]["80/tcp"][0];
    ensure!(
        binding["HostIp"] == "0.0.0.0" && binding["HostPort"] == "8080",
        "NetworkSettings.Ports: {}",
        c["NetworkSettings"]["Ports"]
    );

    // No proxy: nothing listens on 8080 in the host's namespace; the rule does the work.
    let ss = e.in_netns("ss", &["-Hltn"])?.ok()?;
    ensure!(
        !ss.stdout.lines().any(|l| l.contains(":8080 ")),
        "something listens on 8080 (a proxy?):\n{}",
        ss.stdout
    );
    let table = nft_table(&e)?.unwrap_or_default();
    ensure_contains(
        &table,
        "tcp dport 8080 dnat ip to",
        "the DNAT rule for 8080",
    )?;

    // Bound to 127.0.0.1 only.
    start_web(
        &e,
        &["--name", "local", "-p", "127.0.0.1:8081:80"],
        "local-8081",
    )?;
    wait_host_get(&e, "http://127.0.0.1:8081/", "local-8081")?;
    let out = host_get(&e, &format!("http://{HOST_IP}:8081/"))?;
    ensure!(
        !out.success() && !out.stdout.contains("local-8081"),
        "a port published on 127.0.0.1 answered on {HOST_IP}: {out}"
    );
    let out = outside.get(&format!("http://{HOST_IP}:8081/"))?;
    ensure!(
        !out.success() && !out.stdout.contains("local-8081"),
        "a port published on 127.0.0.1 answered the outside host: {out}"
    );
    let lines = port_lines(&e, "local")?;
    ensure!(
        lines == ["80/tcp -> 127.0.0.1:8081"],
        "docker port local: {lines:?}"
    );

    // -P: a random host port for the image's EXPOSE 80.
    e.import("busybox-web:latest", &[r#"CMD ["sh"]"#, "EXPOSE 80"])?;
    start_web_image(
        &e,
        &["--name", "random", "-P"],
        "busybox-web:latest",
        "random-port",
    )?;
    let lines = port_lines(&e, "random")?;
    let first = lines.first().cloned().unwrap_or_default();
    let port: u16 = first
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("docker port random: {lines:?}"))?;
    ensure_port_lines(
        &lines,
        &format!("80/tcp -> 0.0.0.0:{port}"),
        &format!("80/tcp -> [::]:{port}"),
    )?;
    ensure!(port >= 1024, "-P chose a privileged port {port}");
    wait_host_get(&e, &format!("http://127.0.0.1:{port}/"), "random-port")?;
    let ps = e.docker_ok(&["ps", "--filter", "name=random", "--format", "{{.Ports}}"])?;
    ensure_contains(
        &ps.stdout,
        &format!("0.0.0.0:{port}->80/tcp"),
        "docker ps PORTS of -P",
    )?;

    // UDP: busybox's nc has no -u and the image has no UDP server, so only the
    // publication itself is checked (port, ps, the DNAT rule), not a datagram.
    start_idle(&e, &["--name", "udp", "-p", "5353:53/udp"])?;
    ensure_port_lines(
        &port_lines(&e, "udp")?,
        "53/udp -> 0.0.0.0:5353",
        "53/udp -> [::]:5353",
    )?;
    let ps = e.docker_ok(&["ps", "--filter", "name=udp", "--format", "{{.Ports}}"])?;
    ensure_contains(&ps.stdout, "0.0.0.0:5353->53/udp", "docker ps PORTS of udp")?;
    let table = nft_table(&e)?.unwrap_or_default();
    ensure_contains(
        &table,
        "udp dport 5353 dnat ip to",
        "the DNAT rule for 5353/udp",
    )?;

    // A range.
    start_idle(&e, &["--name", "range", "-p", "9001-9002:7001-7002"])?;
    let lines = port_lines(&e, "range")?;
    for want in ["7001/tcp -> 0.0.0.0:9001", "7002/tcp -> 0.0.0.0:9002"] {
        ensure!(
            lines.iter().any(|l| l == want),
            "docker port range lacks {want}: {lines:?}"
        );
    }

    // Removing the container takes its rule away and frees the port.
    e.docker_ok(&["rm", "-f", "web"])?;
    let table = nft_table(&e)?.unwrap_or_default();
    ensure!(
        !table.contains("dport 8080 "),
        "the rule for 8080 outlived its container:\n{table}"
    );
    let out = host_get(&e, "http://127.0.0.1:8080/")?;
    ensure!(!out.success(), "8080 still answers after rm: {out}");
    start_web(&e, &["--name", "again", "-p", "8080:80"], "again-8080")?;
    wait_host_get(&e, "http://127.0.0.1:8080/", "again-8080")?;
    drop(outside);
    Ok(())
}
