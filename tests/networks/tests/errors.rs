//! Fixed addresses and bad input: `--ip` in and outside the subnet, an address in use,
//! overlapping subnets, duplicate names, unknown networks, removing a network in use or a
//! predefined one, a port already published. Docker's messages, and nothing changed.
//! Each case is its own test, so one wrong message does not hide the others.

use anyhow::{ensure, Result};
use berth_network_tests::{
    container_ip, create_network, ensure_contains, host_get, network_names, remove_networks,
    start_idle, start_web, wait_host_get, Engine, BUSYBOX,
};

/// The names of running containers, sorted.
fn running(e: &Engine) -> Result<Vec<String>> {
    let mut names = e.docker_ok(&["ps", "--format", "{{.Names}}"])?.lines();
    names.sort();
    Ok(names)
}

/// The names of all containers, sorted.
fn all_containers(e: &Engine) -> Result<Vec<String>> {
    let mut names = e
        .docker_ok(&["ps", "-a", "--format", "{{.Names}}"])?
        .lines();
    names.sort();
    Ok(names)
}

#[test]
fn fixed_ip_is_used_held_and_freed() -> Result<()> {
    let e = Engine::start()?;
    create_network(&e, &["--subnet", "10.210.0.0/24", "fixed"])?;
    let result = (|| -> Result<()> {
        start_idle(
            &e,
            &["--name", "f1", "--network", "fixed", "--ip", "10.210.0.50"],
        )?;
        ensure!(
            container_ip(&e, "f1", "fixed")? == "10.210.0.50",
            "f1 did not get --ip"
        );
        let out = e.docker_ok(&["exec", "f1", "ip", "-o", "-4", "addr", "show", "eth0"])?;
        ensure_contains(&out.stdout, "inet 10.210.0.50/24", "f1's eth0")?;
        let c = e.container("f1")?;
        let ipam = &c["NetworkSettings"]["Networks"]["fixed"]["IPAMConfig"];
        ensure!(ipam["IPv4Address"] == "10.210.0.50", "IPAMConfig: {ipam}");
        // A container without --ip never gets the fixed one.
        start_idle(&e, &["--name", "dyn", "--network", "fixed"])?;
        ensure!(
            container_ip(&e, "dyn", "fixed")? != "10.210.0.50",
            "dyn got f1's address"
        );

        // The same --ip twice: the second start fails, the first keeps it.
        let out = e.docker_fails(&[
            "run",
            "-d",
            "--name",
            "f2",
            "--network",
            "fixed",
            "--ip",
            "10.210.0.50",
            BUSYBOX,
            "sleep",
            "60",
        ])?;
        ensure_contains(&out.stderr, "Address already in use", "the same --ip twice")?;
        ensure!(
            running(&e)? == ["dyn", "f1"],
            "after the failed f2: {:?}",
            running(&e)?
        );
        let out = e.docker_ok(&["exec", "f1", "ip", "-o", "-4", "addr", "show", "eth0"])?;
        ensure_contains(
            &out.stdout,
            "inet 10.210.0.50/24",
            "f1's eth0 after the failed f2",
        )?;
        let _ = e.docker(&["rm", "-f", "f2"]);
        // Removing the failed f2 must not free f1's address.
        start_idle(&e, &["--name", "dyn2", "--network", "fixed"])?;
        ensure!(
            container_ip(&e, "dyn2", "fixed")? != "10.210.0.50",
            "dyn2 got f1's address after the failed f2 was removed"
        );
        // Free again once f1 is gone.
        e.docker_ok(&["rm", "-f", "f1"])?;
        start_idle(
            &e,
            &["--name", "f3", "--network", "fixed", "--ip", "10.210.0.50"],
        )?;
        ensure!(
            container_ip(&e, "f3", "fixed")? == "10.210.0.50",
            "f3 did not get the freed address"
        );
        e.docker_ok(&["rm", "-f", "f3", "dyn", "dyn2"])?;
        Ok(())
    })();
    remove_networks(&e, &["fixed"]);
    result
}

#[test]
fn ip_outside_the_subnet_is_refused_at_create() -> Result<()> {
    let e = Engine::start()?;
    create_network(&e, &["--subnet", "10.210.0.0/24", "fixed"])?;
    let result = (|| -> Result<()> {
        // Docker 28 validates endpoint settings at create: 400, no container made.
        let out = e.docker_fails(&[
            "run",
            "-d",
            "--name",
            "outside-ip",
            "--network",
            "fixed",
            "--ip",
            "10.99.0.5",
            BUSYBOX,
            "true",
        ])?;
        ensure_contains(
            &out.stderr,
            "no configured subnet or ip-range contain the IP address 10.99.0.5",
            "--ip outside the subnet",
        )?;
        ensure!(
            all_containers(&e)?.is_empty(),
            "a refused --ip left a container behind: {:?}",
            all_containers(&e)?
        );
        Ok(())
    })();
    remove_networks(&e, &["fixed"]);
    result
}

#[test]
fn ip_on_the_default_bridge_is_refused() -> Result<()> {
    let e = Engine::start()?;
    let out = e.docker_fails(&["run", "--rm", "--ip", "172.17.0.50", BUSYBOX, "true"])?;
    ensure_contains(
        &out.stderr,
        "user specified IP address is supported on user defined networks only",
        "--ip on the default bridge",
    )?;
    Ok(())
}

#[test]
fn network_create_and_rm_errors_change_nothing() -> Result<()> {
    let e = Engine::start()?;
    create_network(&e, &["--subnet", "10.210.0.0/24", "fixed"])?;
    let result = (|| -> Result<()> {
        start_idle(&e, &["--name", "member", "--network", "fixed"])?;
        let nets_before = network_names(&e)?;
        let out = e.docker_fails(&[
            "network",
            "create",
            "--subnet",
            "10.210.0.128/25",
            "overlap",
        ])?;
        ensure_contains(
            &out.stderr,
            "invalid pool request: Pool overlaps with other one on this address space",
            "an overlapping subnet",
        )?;
        let out = e.docker_fails(&["network", "create", "fixed"])?;
        ensure_contains(
            &out.stderr,
            "network with name fixed already exists",
            "a duplicate name",
        )?;
        // `--pull never`: a 404 from create makes the CLI pull the image otherwise (Docker
        // itself creates the container and fails its start, which the CLI does not take
        // for a missing image).
        let out = e.docker_fails(&[
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "nope",
            BUSYBOX,
            "true",
        ])?;
        ensure_contains(&out.stderr, "network nope not found", "--network nope")?;
        let out = e.docker_fails(&["network", "inspect", "nope"])?;
        ensure_contains(
            &out.stderr,
            "network nope not found",
            "network inspect nope",
        )?;
        let out = e.docker_fails(&["network", "rm", "fixed"])?;
        ensure_contains(
            &out.stderr,
            "error while removing network: network fixed",
            "network rm of a network in use",
        )?;
        ensure_contains(
            &out.stderr,
            "has active endpoints",
            "network rm of a network in use",
        )?;
        for name in ["bridge", "host", "none"] {
            let out = e.docker_fails(&["network", "rm", name])?;
            ensure_contains(
                &out.stderr,
                &format!("{name} is a pre-defined network and cannot be removed"),
                "network rm of a predefined network",
            )?;
        }
        ensure!(
            network_names(&e)? == nets_before,
            "the failed commands changed the networks: {:?} -> {:?}",
            nets_before,
            network_names(&e)?
        );
        ensure!(
            all_containers(&e)? == ["member"],
            "containers after the errors: {:?}",
            all_containers(&e)?
        );
        // The member still works on the network the failed rm left alone.
        let out = e.docker_ok(&["exec", "member", "ip", "-o", "-4", "addr", "show", "eth0"])?;
        ensure_contains(&out.stdout, "inet 10.210.0.", "member's eth0")?;
        e.docker_ok(&["rm", "-f", "member"])?;
        Ok(())
    })();
    remove_networks(&e, &["fixed"]);
    result
}

#[test]
fn a_port_already_allocated_fails_the_second_start() -> Result<()> {
    let e = Engine::start()?;
    start_web(&e, &["--name", "p1", "-p", "8080:80"], "first-8080")?;
    wait_host_get(&e, "http://127.0.0.1:8080/", "first-8080")?;
    let out = e.docker_fails(&[
        "run", "-d", "--name", "p2", "-p", "8080:80", BUSYBOX, "sleep", "60",
    ])?;
    ensure_contains(
        &out.stderr,
        "Bind for 0.0.0.0:8080 failed: port is already allocated",
        "a port already published",
    )?;
    ensure!(
        running(&e)? == ["p1"],
        "after the failed p2: {:?}",
        running(&e)?
    );
    let p2 = e.container("p2")?;
    ensure!(p2["State"]["Running"] == false, "p2: {}", p2["State"]);
    let out = host_get(&e, "http://127.0.0.1:8080/")?;
    ensure!(
        out.success() && out.stdout.contains("first-8080"),
        "8080 no longer reaches p1 after the failed p2: {out}"
    );
    // Removing the failed container must not take p1's port or rule with it.
    e.docker_ok(&["rm", "-f", "p2"])?;
    let out = host_get(&e, "http://127.0.0.1:8080/")?;
    ensure!(
        out.success() && out.stdout.contains("first-8080"),
        "8080 no longer reaches p1 after rm of the failed p2: {out}"
    );
    // And a third container on the same port still fails.
    let out = e.docker_fails(&["run", "--rm", "-p", "8080:80", BUSYBOX, "true"])?;
    ensure_contains(&out.stderr, "port is already allocated", "a third -p 8080")?;
    Ok(())
}

#[test]
fn an_unknown_network_fails_the_start_not_the_create() -> Result<()> {
    // Docker 28 (daemon/create.go, validateNetworkingConfig): "The referenced network might
    // not exist when the container is created". create succeeds, start fails with
    // "network nope not found", and a start after `network create nope` works.
    let e = Engine::start()?;
    let out = e.docker(&[
        "create",
        "--pull",
        "never",
        "--name",
        "late",
        "--network",
        "nope",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    ensure!(
        out.success(),
        "create with a network that does not exist yet must succeed: {out}"
    );
    let out = e.docker_fails(&["start", "late"])?;
    ensure_contains(
        &out.stderr,
        "network nope not found",
        "start with --network nope",
    )?;
    create_network(&e, &["nope"])?;
    let result = (|| -> Result<()> {
        e.docker_ok(&["start", "late"])?;
        let ip = container_ip(&e, "late", "nope")?;
        ensure!(!ip.is_empty(), "late has no address on nope");
        e.docker_ok(&["rm", "-f", "late"])?;
        Ok(())
    })();
    remove_networks(&e, &["nope"]);
    result
}
