//! The docker SDK for Python: networks.create/list/get, containers.run(network=...),
//! network.reload().containers, connect/disconnect, network.remove.

use anyhow::{ensure, Result};
use berth_network_tests::Engine;

#[test]
fn sdk_networks() -> Result<()> {
    let e = Engine::start()?;
    let out = e.python(
        r#"
import docker.errors
net = client.networks.create("pynet", driver="bridge", labels={"suite": "networks"})
try:
    eq(client.networks.get("pynet").id, net.id, "networks.get")
    eq(net.attrs["Labels"], {"suite": "networks"}, "labels")
    eq([n.name for n in client.networks.list(names=["pynet"])], ["pynet"], "list(names=)")
    eq([n.name for n in client.networks.list(filters={"label": "suite=networks"})], ["pynet"], "list(label=)")
    c = client.containers.run("busybox:latest", ["sh", "-c", "while :; do sleep 0.1; done"],
                              name="pyc", network="pynet", detach=True)
    net.reload()
    eq([x.id for x in net.containers], [c.id], "network.containers")
    c.reload()
    ip = c.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
    assert ip, c.attrs["NetworkSettings"]
    out = client.containers.run("busybox:latest", ["nslookup", "pyc", "127.0.0.11"],
                                network="pynet", remove=True)
    assert ip in out.decode(), out
    other = client.networks.create("pynet2")
    other.connect(c, aliases=["second"])
    c.reload()
    assert "pynet2" in c.attrs["NetworkSettings"]["Networks"], c.attrs["NetworkSettings"]
    other.reload()
    eq([x.id for x in other.containers], [c.id], "pynet2.containers")
    other.disconnect(c)
    other.reload()
    eq(other.containers, [], "pynet2.containers after disconnect")
    other.remove()
    try:
        net.remove()
        raise AssertionError("removing a network in use succeeded")
    except docker.errors.APIError as e:
        assert "has active endpoints" in str(e), e
    c.remove(force=True)
finally:
    try:
        net.remove()
    except docker.errors.NotFound:
        pass
eq([n.name for n in client.networks.list(names=["pynet"])], [], "after remove")
try:
    client.networks.get("pynet")
    raise AssertionError("get of a removed network succeeded")
except docker.errors.NotFound:
    pass
print("ok")
"#,
    )?;
    ensure!(out.trim().ends_with("ok"), "sdk script: {out}");
    Ok(())
}
