//! Outbound traffic: a container reaches a test "outside host" (a namespace joined to
//! the daemon's by a veth) masqueraded to the host's address; an `--internal` network
//! reaches nothing outside and has no default route.

use std::time::Duration;

use anyhow::{ensure, Result};
use berth_network_tests::{
    create_network, peer_echo_server, remove_networks, Engine, Outside, BUSYBOX, HOST_IP,
    OUTSIDE_IP,
};

#[test]
fn outbound_is_masqueraded_and_internal_networks_stay_inside() -> Result<()> {
    let e = Engine::start()?;
    let outside = Outside::new(&e)?;
    let server = peer_echo_server(&outside, 7000)?;
    let connect = format!("echo hi | nc -w 5 {OUTSIDE_IP} 7000");

    // Default bridge: the outside host sees the host's address, not the container's.
    let out = e.docker(&["run", "--rm", BUSYBOX, "sh", "-c", &connect])?;
    ensure!(
        out.success() && out.stdout.trim() == format!("peer {HOST_IP}"),
        "from the default bridge, the outside host must see {HOST_IP}: {out}\nserver: {}",
        server.stdout()
    );
    // A user-defined network too.
    create_network(&e, &["n1"])?;
    create_network(&e, &["--internal", "inside"])?;
    let result = (|| -> Result<()> {
        let out = e.docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            BUSYBOX,
            "sh",
            "-c",
            &connect,
        ])?;
        ensure!(
            out.success() && out.stdout.trim() == format!("peer {HOST_IP}"),
            "from n1, the outside host must see {HOST_IP}: {out}"
        );
        let seen_before = server.stdout().matches("peer ").count();

        // --internal: no default route, and the connection fails.
        let net = berth_network_tests::network(&e, "inside")?;
        ensure!(net["Internal"] == true, "inspect Internal: {net}");
        let out = e.docker(&[
            "run",
            "--rm",
            "--network",
            "inside",
            BUSYBOX,
            "sh",
            "-c",
            &format!("ip route; echo ---; {connect}"),
        ])?;
        let (routes, reply) = out.stdout.split_once("---").unwrap_or_default();
        ensure!(
            !routes.contains("default"),
            "a container on an internal network has a default route:\n{routes}"
        );
        ensure!(
            !reply.contains("peer"),
            "a container on an internal network reached the outside host: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            server.stdout().matches("peer ").count() == seen_before,
            "the outside host saw a connection from the internal network:\n{}",
            server.stdout()
        );
        let (_, gateway) = berth_network_tests::ipv4_config(&net)?;
        // Even with a route added by hand inside (NET_ADMIN), the host drops it.
        let out = e.docker(&[
            "run",
            "--rm",
            "--cap-add",
            "NET_ADMIN",
            "--network",
            "inside",
            BUSYBOX,
            "sh",
            "-c",
            &format!("ip route add default via {gateway}; {connect}"),
        ])?;
        ensure!(
            !out.stdout.contains("peer"),
            "an internal network's traffic was forwarded outside: {out}"
        );
        // Containers on the internal network still reach each other.
        e.docker_ok(&[
            "run",
            "-d",
            "--name",
            "in1",
            "--network",
            "inside",
            BUSYBOX,
            "sh",
            "-c",
            &berth_network_tests::web_script("inside-web"),
        ])?;
        berth_network_tests::eventually(
            "in1 to answer on the internal network",
            berth_network_tests::WAIT,
            || {
                let out =
                    berth_network_tests::run_get(&e, &["--network", "inside"], "http://in1/")?;
                Ok((out.success() && out.stdout.contains("inside-web")).then_some(()))
            },
        )?;
        e.docker_ok(&["rm", "-f", "in1"])?;
        Ok(())
    })();
    remove_networks(&e, &["n1", "inside"]);
    drop(server);
    drop(outside);
    result
}
