//! The docker SDK for Python (docker-py 7.1) driving containers and volumes:
//! each test runs one script that asserts as it goes and prints `OK` last.

use anyhow::{ensure, Result};
use berth_container_tests::{unique, Engine};

fn script_ok(e: &Engine, script: &str) -> Result<()> {
    let out = e.python(script)?;
    ensure!(
        out.trim_end().ends_with("OK"),
        "the script did not finish: {out}"
    );
    Ok(())
}

#[test]
fn run_with_remove_returns_the_output() -> Result<()> {
    let e = Engine::start()?;
    script_ok(
        &e,
        r#"
out = client.containers.run("busybox", "echo hi", remove=True)
assert out == b"hi\n", out
assert client.containers.list(all=True) == [], client.containers.list(all=True)
out = client.containers.run("busybox", ["sh", "-c", "echo only-stderr >&2"], remove=True, stdout=False, stderr=True)
assert out == b"only-stderr\n", out
out = client.containers.run("busybox", "env", environment={"FROM_SDK": "1"}, remove=True)
assert b"FROM_SDK=1\n" in out, out
out = client.containers.run("busybox", "id -u", user="1000", working_dir="/tmp", remove=True)
assert out == b"1000\n", out
print("OK")
"#,
    )
}

#[test]
fn detached_container_logs_exec_wait_stop_remove() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("sdk");
    script_ok(
        &e,
        &r#"
import docker.errors
c = client.containers.run("busybox", ["sh", "-c", "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done"],
                          detach=True, name="NAME", labels={"suite": "sdk"})
c.reload()
assert c.status == "running", c.status
assert c.name == "NAME", c.name
assert c.labels == {"suite": "sdk"}, c.labels
assert c.image.tags == ["busybox:latest"], c.image.tags
for _ in range(100):
    if b"started" in c.logs():
        break
    time.sleep(0.1)
assert c.logs() == b"started\n", c.logs()
assert list(c.logs(stream=True, follow=False)) == [b"started\n"]

r = c.exec_run("echo x")
assert r.exit_code == 0 and r.output == b"x\n", r
r = c.exec_run(["sh", "-c", "exit 3"])
assert r.exit_code == 3, r
r = c.exec_run(["sh", "-c", "echo $V"], environment={"V": "env"})
assert r.output == b"env\n", r
r = c.exec_run("id -u", user="1000")
assert r.output == b"1000\n", r
r = c.exec_run("pwd", workdir="/tmp")
assert r.output == b"/tmp\n", r
r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
assert r.output == (b"out\n", b"err\n"), r
top = c.top()
assert any("sleep" in " ".join(p) or "sh" in " ".join(p) for p in top["Processes"]), top

c.stop(timeout=5)
res = c.wait()
assert res["StatusCode"] == 0, res
c.reload()
assert c.status == "exited", c.status
assert c.attrs["State"]["ExitCode"] == 0, c.attrs["State"]
c.remove()
try:
    client.containers.get("NAME")
    raise AssertionError("the removed container is still there")
except docker.errors.NotFound:
    pass
print("OK")
"#
        .replace("NAME", &name),
    )
}

#[test]
fn list_with_filters() -> Result<()> {
    let e = Engine::start()?;
    let a = unique("sdka");
    let b = unique("sdkb");
    script_ok(
        &e,
        &r#"
a = client.containers.run("busybox", "sleep 1000", detach=True, name="A", labels={"app": "a"})
time.sleep(1.1)
b = client.containers.create("busybox", "true", name="B", labels={"app": "b"})
ids = lambda cs: [c.id for c in cs]
listed = lambda **kw: ids(client.containers.list(**kw))
eq(listed(), [a.id], "list()")
eq(listed(all=True), [b.id, a.id], "list(all=True), newest first")
eq(listed(all=True, limit=1), [b.id], "limit=1")
eq(listed(all=True, filters={"status": "created"}), [b.id], "status=created")
eq(listed(all=True, filters={"status": "running"}), [a.id], "status=running")
eq(listed(all=True, filters={"label": "app=b"}), [b.id], "label=app=b")
eq(listed(all=True, filters={"label": ["app"]}), [b.id, a.id], "label=app")
eq(listed(all=True, filters={"name": "A"}), [a.id], "name=")
eq(listed(all=True, filters={"id": a.id[:12]}), [a.id], "id=")
eq(listed(all=True, filters={"ancestor": "busybox"}), [b.id, a.id], "ancestor=busybox")
eq(listed(all=True, filters={"before": "B"}), [a.id], "before=")
eq(listed(all=True, filters={"since": "A"}), [b.id], "since=")
eq(client.containers.get("A").id, a.id, "get by name")
eq(client.containers.get(a.id[:12]).id, a.id, "get by short ID")
pruned = client.containers.prune()
eq(pruned["ContainersDeleted"], [b.id], "prune")
eq(listed(all=True), [a.id], "list after prune")
a.remove(force=True)
eq(client.containers.list(all=True), [], "list after remove")
print("OK")
"#
        .replace("\"A\"", &format!("\"{a}\""))
        .replace("\"B\"", &format!("\"{b}\"")),
    )
}

#[test]
fn volumes_create_list_remove() -> Result<()> {
    let e = Engine::start()?;
    let vol = unique("sdkvol");
    script_ok(
        &e,
        &r#"
import docker.errors
v = client.volumes.create(name="VOL", labels={"k": "v"})
assert v.name == "VOL", v.name
assert v.attrs["Driver"] == "local" and v.attrs["Labels"] == {"k": "v"}, v.attrs
assert [x.name for x in client.volumes.list()] == ["VOL"]
assert [x.name for x in client.volumes.list(filters={"label": "k=v"})] == ["VOL"]
assert [x.name for x in client.volumes.list(filters={"label": "k=other"})] == []
out = client.containers.run("busybox", ["sh", "-c", "echo data > /v/f; cat /v/f"],
                            volumes={"VOL": {"bind": "/v", "mode": "rw"}}, remove=True)
assert out == b"data\n", out
out = client.containers.run("busybox", "cat /v/f", volumes=["VOL:/v:ro"], remove=True)
assert out == b"data\n", out
c = client.containers.create("busybox", "true", volumes=["VOL:/v"])
try:
    client.volumes.get("VOL").remove()
    raise AssertionError("removed a volume in use")
except docker.errors.APIError as err:
    assert err.status_code == 409, err
c.remove()
client.volumes.get("VOL").remove()
assert client.volumes.list() == []
try:
    client.volumes.get("VOL")
    raise AssertionError("the removed volume is still there")
except docker.errors.NotFound:
    pass
anon = client.volumes.create()
pruned = client.volumes.prune()
assert pruned["VolumesDeleted"] == [anon.name], pruned
print("OK")
"#
        .replace("VOL", &vol),
    )
}

#[test]
fn a_failing_run_raises_container_error() -> Result<()> {
    let e = Engine::start()?;
    script_ok(
        &e,
        r#"
import docker.errors
try:
    client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    raise AssertionError("no ContainerError")
except docker.errors.ContainerError as err:
    assert err.exit_status == 3, err.exit_status
    assert b"bad" in err.stderr, err.stderr
assert client.containers.list(all=True) == [], "remove=True removes a failed container too"
try:
    client.containers.create("nosuchimage:1")
    raise AssertionError("created from a missing image")
except docker.errors.ImageNotFound:
    pass
print("OK")
"#,
    )
}

#[test]
fn container_methods_pause_kill_rename_archive() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("methods");
    let renamed = unique("renamed");
    script_ok(
        &e,
        &r#"
import io, tarfile
c = client.containers.run("busybox", ["sh", "-c", "trap 'echo hup' HUP; while :; do sleep 0.1; done"], detach=True, name="NAME")
c.pause(); c.reload()
assert c.status == "paused", c.status
c.unpause(); c.reload()
assert c.status == "running", c.status
time.sleep(0.3)
c.kill(signal="SIGHUP")
for _ in range(100):
    if b"hup" in c.logs():
        break
    time.sleep(0.1)
assert c.logs() == b"hup\n", c.logs()
c.rename("RENAMED"); c.reload()
assert c.name == "RENAMED", c.name

data = io.BytesIO()
with tarfile.open(fileobj=data, mode="w") as tar:
    body = b"put by the sdk\n"
    info = tarfile.TarInfo("put.txt"); info.size = len(body)
    tar.addfile(info, io.BytesIO(body))
assert c.put_archive("/tmp", data.getvalue())
r = c.exec_run("cat /tmp/put.txt")
assert r.output == b"put by the sdk\n", r
stream, stat = c.get_archive("/tmp/put.txt")
assert stat["name"] == "put.txt" and stat["size"] == 15, stat
with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
    assert tar.extractfile("put.txt").read() == b"put by the sdk\n"
changes = c.diff()
assert {"Path": "/tmp/put.txt", "Kind": 1} in changes, changes
c.update(mem_limit="64m", memswap_limit="128m")
c.reload()
assert c.attrs["HostConfig"]["Memory"] == 64 << 20, c.attrs["HostConfig"]["Memory"]
c.kill(); c.wait()
c.reload()
assert c.attrs["State"]["ExitCode"] == 137, c.attrs["State"]
c.remove()
print("OK")
"#
        .replace("RENAMED", &renamed)
        .replace("NAME", &name),
    )
}

#[test]
fn exec_run_never_loses_output() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("execs");
    e.run_detached(&["--name", &name, "busybox", "sleep", "1000"])?;
    script_ok(
        &e,
        &r#"
c = client.containers.get("NAME")
lost = []
for i in range(50):
    r = c.exec_run(["echo", str(i)])
    if r.exit_code != 0 or r.output != ("%d\n" % i).encode():
        lost.append((i, r.exit_code, r.output))
eq(lost, [], "exec_run results that lost their output (of 50)")
print("OK")
"#
        .replace("NAME", &name),
    )
}
