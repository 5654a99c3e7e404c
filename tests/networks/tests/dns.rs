//! User-defined networks and the embedded DNS server at 127.0.0.11: names, aliases,
//! hostnames and `name.network` resolve on the network and nowhere else; networks are
//! isolated from each other; other names are forwarded to the resolvers `--dns` names,
//! from the daemon's namespace.

use anyhow::{ensure, Result};
use berth_network_tests::{
    container_ip, create_network, ensure_contains, fake_dns_server, network, remove_networks,
    start_web, wait_exec_get, Engine, BUSYBOX, IDLE,
};

#[test]
fn names_aliases_and_hostnames_resolve_on_the_network_only() -> Result<()> {
    let e = Engine::start()?;
    let n1 = create_network(&e, &["n1"])?;
    create_network(&e, &["n2"])?;
    let result = (|| -> Result<()> {
        start_web(
            &e,
            &[
                "--name",
                "web",
                "--network",
                "n1",
                "--network-alias",
                "www",
                "--hostname",
                "webhost",
            ],
            "hello-from-web",
        )?;
        let web_ip = container_ip(&e, "web", "n1")?;
        let c = e.container("web")?;
        let ep = &c["NetworkSettings"]["Networks"]["n1"];
        ensure!(ep["NetworkID"] == n1.as_str(), "web's n1 endpoint: {ep}");
        let aliases: Vec<&str> = ep["Aliases"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        ensure!(aliases.contains(&"www"), "web's Aliases: {ep}");
        let dns_names: Vec<&str> = ep["DNSNames"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for want in ["web", "www"] {
            ensure!(
                dns_names.contains(&want),
                "web's DNSNames lacks {want}: {ep}"
            );
        }

        // A client on n1: every name of web answers. Its upstream resolver is the host's
        // loopback, where nothing listens: names berth does not know fail at once, and no
        // query leaves the test's namespaces.
        e.docker_ok(&[
            "run",
            "-d",
            "--name",
            "client",
            "--network",
            "n1",
            "--dns",
            "127.0.0.1",
            BUSYBOX,
            "sh",
            "-c",
            IDLE,
        ])?;
        wait_exec_get(&e, "client", "http://web/", "hello-from-web")?;
        for host in ["www", "webhost", "web.n1"] {
            wait_exec_get(&e, "client", &format!("http://{host}/"), "hello-from-web")?;
        }
        let out = e.docker_ok(&["exec", "client", "nslookup", "web", "127.0.0.11"])?;
        ensure_contains(&out.stdout, &web_ip, "nslookup web 127.0.0.11")?;
        let resolv = e.docker_ok(&["exec", "client", "cat", "/etc/resolv.conf"])?;
        let servers: Vec<&str> = resolv
            .stdout
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .collect();
        ensure!(
            servers == ["nameserver 127.0.0.11"],
            "a container on a user network must use the embedded DNS only:\n{}",
            resolv.stdout
        );
        // An unknown name on the network: NXDOMAIN, not web's address.
        let out = e.docker(&["exec", "client", "nslookup", "nosuchname", "127.0.0.11"])?;
        ensure!(
            !out.success() && !out.stdout.contains(&web_ip),
            "nosuchname must not resolve: {out}"
        );

        // The default bridge has no embedded DNS: `web` is unknown there. Its resolver is
        // pointed at the container's own loopback, so nothing leaves the namespaces.
        let out = e.docker(&[
            "run",
            "--rm",
            "--dns",
            "127.0.0.1",
            BUSYBOX,
            "sh",
            "-c",
            "grep -w web /etc/hosts; nslookup web 127.0.0.11; timeout 3 wget -q -O - http://web/",
        ])?;
        ensure!(
            !out.success()
                && !out.stdout.contains("hello-from-web")
                && !out.stdout.contains(&web_ip),
            "a container on the default bridge must not resolve web: {out}"
        );

        // A container on n2 cannot reach web's address: the networks are isolated.
        let out =
            berth_network_tests::run_get(&e, &["--network", "n2"], &format!("http://{web_ip}/"))?;
        ensure!(
            !out.success() && !out.stdout.contains("hello-from-web"),
            "n2 reached web on n1 at {web_ip}: {out}"
        );
        // Nor resolve its name.
        let out = e.docker(&[
            "run",
            "--rm",
            "--network",
            "n2",
            "--dns",
            "127.0.0.1",
            BUSYBOX,
            "nslookup",
            "web",
            "127.0.0.11",
        ])?;
        ensure!(
            !out.success() && !out.stdout.contains(&web_ip),
            "n2 resolved web of n1: {out}"
        );
        // And network inspect n1 lists web and client.
        let net = network(&e, "n1")?;
        let names: Vec<&str> = net["Containers"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v["Name"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            names.contains(&"web") && names.contains(&"client") && names.len() == 2,
            "n1's Containers: {}",
            net["Containers"]
        );
        e.docker_ok(&["rm", "-f", "web", "client"])?;
        Ok(())
    })();
    remove_networks(&e, &["n1", "n2"]);
    result
}

#[test]
fn other_names_are_forwarded_to_the_dns_servers() -> Result<()> {
    let e = Engine::start()?;
    let server = fake_dns_server(&e, "203.0.113.7")?;
    create_network(&e, &["n1"])?;
    let result = (|| -> Result<()> {
        let out = e.docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "--dns",
            "127.0.0.1",
            "--dns-search",
            "corp.example",
            BUSYBOX,
            "sh",
            "-c",
            "cat /etc/resolv.conf; echo ---; nslookup outside.test",
        ])?;
        ensure!(
            out.success(),
            "nslookup outside.test through the embedded DNS: {out}\nfake server saw:\n{}",
            server.stdout()
        );
        let (resolv, lookup) = out.stdout.split_once("---").unwrap_or_default();
        ensure_contains(
            lookup,
            "203.0.113.7",
            "outside.test forwarded to 127.0.0.1 of the host",
        )?;
        ensure!(
            server.stdout().contains("query outside.test 1"),
            "the fake server never saw the A query; it printed:\n{}",
            server.stdout()
        );
        // Docker's resolv.conf for a user network: the embedded server only, the search
        // domains given, ndots:0; the --dns servers are the embedded server's upstreams.
        let lines: Vec<&str> = resolv
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        ensure!(
            lines
                .iter()
                .filter(|l| l.starts_with("nameserver"))
                .copied()
                .collect::<Vec<_>>()
                == ["nameserver 127.0.0.11"],
            "resolv.conf nameservers:\n{resolv}"
        );
        ensure!(
            lines.contains(&"search corp.example"),
            "resolv.conf search:\n{resolv}"
        );
        ensure!(
            lines.contains(&"options ndots:0"),
            "resolv.conf must have Docker's `options ndots:0`:\n{resolv}"
        );
        Ok(())
    })();
    remove_networks(&e, &["n1"]);
    result
}
