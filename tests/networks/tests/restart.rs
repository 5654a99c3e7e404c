//! After `kill -9` of the daemon and a restart: published ports still answer, names still
//! resolve, new containers get fresh addresses, the DNAT rule is still there.

use anyhow::{ensure, Result};
use berth_network_tests::{
    container_ip, create_network, ensure_contains, eventually, nft_table, remove_networks,
    start_idle, start_web, wait_exec_get, wait_host_get, Engine, WAIT,
};

#[test]
fn networking_survives_a_daemon_crash() -> Result<()> {
    let mut e = Engine::start()?;
    create_network(&e, &["n1"])?;
    start_web(
        &e,
        &["--name", "web", "--network", "n1", "-p", "8080:80"],
        "web-before",
    )?;
    start_idle(&e, &["--name", "client", "--network", "n1"])?;
    start_idle(&e, &["--name", "other", "--network", "n1"])?;
    wait_host_get(&e, "http://127.0.0.1:8080/", "web-before")?;
    wait_exec_get(&e, "client", "http://web/", "web-before")?;
    let before: Vec<String> = ["web", "client", "other"]
        .iter()
        .map(|n| container_ip(&e, n, "n1"))
        .collect::<Result<_>>()?;

    e.kill9()?;
    // While the daemon is down the rules stay (the containers keep running).
    wait_host_get(&e, "http://127.0.0.1:8080/", "web-before")?;
    e.restart()?;

    let result = (|| -> Result<()> {
        wait_host_get(&e, "http://127.0.0.1:8080/", "web-before")?;
        let table = nft_table(&e)?.unwrap_or_default();
        ensure_contains(
            &table,
            "tcp dport 8080 dnat ip to",
            "the DNAT rule after restart",
        )?;
        ensure_contains(
            &table,
            &format!("{}:80", before[0]),
            "the DNAT target after restart",
        )?;
        // The embedded DNS answers again, for the old containers.
        wait_exec_get(&e, "client", "http://web/", "web-before")?;
        let out = e.docker_ok(&["exec", "client", "nslookup", "other", "127.0.0.11"])?;
        ensure_contains(&out.stdout, &before[2], "nslookup other after restart")?;
        // Addresses kept, and a new container gets none of them.
        for (name, ip) in ["web", "client", "other"].iter().zip(&before) {
            ensure!(
                &container_ip(&e, name, "n1")? == ip,
                "{name} changed address across the restart"
            );
        }
        start_idle(&e, &["--name", "new", "--network", "n1"])?;
        let new_ip = container_ip(&e, "new", "n1")?;
        ensure!(
            !before.contains(&new_ip),
            "the new container got {new_ip}, already used by {before:?}"
        );
        let out = e.docker_ok(&["exec", "new", "ip", "-o", "-4", "addr", "show", "eth0"])?;
        ensure_contains(&out.stdout, &format!("inet {new_ip}/"), "new's eth0")?;
        // The new one resolves and reaches the old ones and vice versa.
        wait_exec_get(&e, "new", "http://web/", "web-before")?;
        let out = e.docker_ok(&["exec", "client", "nslookup", "new", "127.0.0.11"])?;
        ensure_contains(&out.stdout, &new_ip, "nslookup new from an old container")?;
        // A second restart, graceful this time, keeps it all too.
        e.restart()?;
        wait_host_get(&e, "http://127.0.0.1:8080/", "web-before")?;
        eventually("the embedded DNS after a graceful restart", WAIT, || {
            let out = e.docker(&["exec", "client", "nslookup", "new", "127.0.0.11"])?;
            Ok(out.stdout.contains(&new_ip).then_some(()))
        })?;
        e.docker_ok(&["rm", "-f", "web", "client", "other", "new"])?;
        let table = nft_table(&e)?.unwrap_or_default();
        ensure!(
            !table.contains("dport 8080"),
            "the rule outlived web:\n{table}"
        );
        Ok(())
    })();
    remove_networks(&e, &["n1"]);
    result
}
