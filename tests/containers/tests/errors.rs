//! Bad requests: Docker's status codes and messages, and nothing changed
//! afterwards (no container, no volume, the image list as it was).

use anyhow::{ensure, Result};
use berth_container_tests::{ensure_contains, unique, Engine, BUSYBOX};

/// Fails unless the daemon holds no container and no volume, and the same images.
fn ensure_unchanged(e: &Engine, images: &[String]) -> Result<()> {
    let containers = e.container_ids()?;
    ensure!(
        containers.is_empty(),
        "a refused request left containers: {containers:?}"
    );
    let volumes = e.docker_ok(&["volume", "ls", "-q"])?.lines();
    ensure!(
        volumes.is_empty(),
        "a refused request left volumes: {volumes:?}"
    );
    ensure!(
        e.image_table()? == images,
        "a refused request changed the images"
    );
    Ok(())
}

#[test]
fn unknown_containers_are_404_no_such_container() -> Result<()> {
    let e = Engine::start()?;
    for (method, path) in [
        ("GET", "/containers/nosuch/json"),
        ("POST", "/containers/nosuch/start"),
        ("POST", "/containers/nosuch/stop"),
        ("POST", "/containers/nosuch/restart"),
        ("POST", "/containers/nosuch/kill"),
        ("POST", "/containers/nosuch/pause"),
        ("POST", "/containers/nosuch/wait"),
        ("GET", "/containers/nosuch/logs?stdout=1"),
        ("GET", "/containers/nosuch/top"),
        ("DELETE", "/containers/nosuch"),
    ] {
        let (status, body) = e.request(method, path)?;
        ensure!(status == 404, "{method} {path}: {status} {body}");
        let message: serde_json::Value = serde_json::from_str(&body)
            .map_err(|err| anyhow::anyhow!("{method} {path}: body is not JSON ({err}): {body}"))?;
        ensure!(
            message["message"] == "No such container: nosuch",
            "{method} {path}: {body}"
        );
    }
    for args in [
        vec!["start", "nosuch"],
        vec!["stop", "nosuch"],
        vec!["kill", "nosuch"],
        vec!["rm", "nosuch"],
        vec!["logs", "nosuch"],
        vec!["exec", "nosuch", "true"],
        vec!["wait", "nosuch"],
        vec!["restart", "nosuch"],
    ] {
        let out = e.docker_fails(&args)?;
        ensure_contains(&out.stderr, "No such container: nosuch", &args.join(" "))?;
    }
    Ok(())
}

#[test]
fn bad_create_requests_change_nothing() -> Result<()> {
    let e = Engine::start()?;
    let images = e.image_table()?;
    let taken = unique("taken");
    let out = e.python(&format!(
        r#"
import docker.errors

problems = []

def refused(status, needle, **kwargs):
    image = kwargs.pop("image", "busybox")
    try:
        created = client.api.create_container(image, "true", **kwargs)
    except docker.errors.APIError as err:
        if err.status_code != status or needle not in err.explanation:
            problems.append("%r: want %d %r, got %d %r" % (kwargs, status, needle, err.status_code, err.explanation))
        return
    problems.append("%r: created, want %d %r" % (kwargs, status, needle))
    client.api.remove_container(created["Id"], force=True)

hc = client.api.create_host_config
refused(404, "No such image: nosuchimage:1", image="nosuchimage:1")
refused(400, "invalid volume specification: '/a:/b:/c:/d'", host_config=hc(binds=["/a:/b:/c:/d"]))
refused(400, "can't create 'AutoRemove' container with restart policy",
        host_config=hc(auto_remove=True, restart_policy={{"Name": "always"}}))
refused(400, "invalid restart policy: unknown policy 'sometimes'",
        host_config=hc(restart_policy={{"Name": "sometimes"}}))
refused(400, "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        host_config=hc(restart_policy={{"Name": "always", "MaximumRetryCount": 3}}))
refused(400, "Minimum memory limit allowed is 6MB", host_config=hc(mem_limit=1024))
refused(400, "Invalid container name", name="bad/name")

# A name in use: 409, and the first container stays the only one.
first = client.api.create_container("busybox", "true", name="{taken}")
refused(409, 'The container name "/{taken}" is already in use', name="{taken}")
assert [c["Id"] for c in client.api.containers(all=True)] == [first["Id"]]
client.api.remove_container(first["Id"])

try:
    client.containers.create("nosuchimage:1")
    raise AssertionError("created from a missing image")
except docker.errors.ImageNotFound as err:
    assert err.status_code == 404
for p in problems:
    print("PROBLEM", p)
sys.exit(1 if problems else 0)
"#
    ))?;
    ensure!(out.trim().is_empty(), "{out}");
    ensure_unchanged(&e, &images)?;
    Ok(())
}

#[test]
fn bad_cli_requests_give_dockers_messages() -> Result<()> {
    let e = Engine::start()?;
    let images = e.image_table()?;
    let cases: [(&[&str], &str); 6] = [
        (&["run", "--rm", "--pull", "never", "nosuchimage:1"], "No such image: nosuchimage:1"),
        (
            &["run", "-d", "--restart", "sometimes", BUSYBOX],
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'",
        ),
        (
            &["run", "-d", "--restart", "always:3", BUSYBOX],
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            &["run", "-d", "--restart", "on-failure:-1", BUSYBOX],
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (&["run", "--rm", "-v", "/src:/dst:bogus", BUSYBOX], "invalid mode: bogus"),
        (&["run", "--rm", "--name", "bad/name", BUSYBOX], "Invalid container name (bad/name)"),
    ];
    for (args, message) in cases {
        let out = e.docker(args)?;
        ensure!(out.code == Some(125), "{args:?} must exit 125: {out}");
        ensure_contains(&out.stderr, message, &args.join(" "))?;
    }
    // The CLI itself refuses --rm with a restart policy.
    let out = e.docker(&["run", "--rm", "--restart", "always", BUSYBOX])?;
    ensure!(!out.success(), "{out}");
    ensure_unchanged(&e, &images)?;

    // Conflicts on a real container: 409 and Docker's words.
    let name = unique("stopped");
    e.docker_ok(&["create", "--name", &name, BUSYBOX])?;
    let out = e.docker_fails(&["exec", &name, "true"])?;
    ensure_contains(&out.stderr, "is not running", "exec in a created container")?;
    let out = e.docker_fails(&["pause", &name])?;
    ensure_contains(
        &out.stderr,
        "is not running",
        "pause of a created container",
    )?;
    let (status, body) = e.request("POST", &format!("/containers/{name}/pause"))?;
    ensure!(
        status == 409,
        "pause of a created container: {status} {body}"
    );
    let (status, body) = e.request("POST", &format!("/containers/{name}/kill"))?;
    ensure!(
        status == 409,
        "kill of a created container: {status} {body}"
    );
    // Starting a running container is 304, stopping a stopped one too.
    let running = e.run_detached(&[BUSYBOX, "sleep", "1000"])?;
    let (status, _) = e.request("POST", &format!("/containers/{running}/start"))?;
    ensure!(status == 304, "start of a running container: {status}");
    let (status, _) = e.request("POST", &format!("/containers/{name}/stop"))?;
    ensure!(status == 304, "stop of a stopped container: {status}");
    Ok(())
}
