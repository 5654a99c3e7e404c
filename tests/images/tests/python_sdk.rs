//! The docker SDK for Python (docker-py) against `berth daemon`. Each test runs
//! one script that asserts as it goes and prints `RESULT <json>` last; the
//! test checks the exit status and the result.

use anyhow::{bail, ensure, Context, Result};
use berth_image_tests::fixtures::{self, layout_config_digest, registry_digest, Format};
use berth_image_tests::{Daemon, Registry};
use serde_json::Value;

const PRELUDE: &str = r#"
import io, json, os, sys, tarfile
import docker
client = docker.from_env(version="auto", timeout=120)

def tiny_tar(text):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        body = text.encode()
        info = tarfile.TarInfo("hello")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return data.getvalue()

def result(value):
    print("RESULT " + json.dumps(value))
"#;

/// Runs `script` (after [`PRELUDE`], with `{REG}` replaced) and returns what it
/// passed to `result(...)`.
fn python(daemon: &Daemon, registry: Option<&Registry>, script: &str) -> Result<Value> {
    let host = registry.map(Registry::host).unwrap_or_default();
    let text = format!("{PRELUDE}\n{}", script.replace("{REG}", &host));
    let out = daemon.python(&text)?;
    if !out.success() {
        bail!(
            "python script failed: {out}\n--- daemon log ---\n{}",
            daemon.log()
        );
    }
    let line = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("the script printed no RESULT: {out}"))?;
    Ok(serde_json::from_str(line)?)
}

#[test]
fn version_ping_and_df() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(&registry, "base", "base:1", Format::Oci, None)?;
    let value = python(
        &daemon,
        Some(&registry),
        r#"
assert client.ping() is True
v = client.version()
assert v["ApiVersion"].startswith("1."), v
assert v["Os"] == "linux", v
before = client.df()
assert before["Images"] in ([], None), before
client.images.pull("{REG}/base", tag="1")
after = client.df()
assert len(after["Images"]) == 1, after
assert after["LayersSize"] > 500000, after
result({"version": v["Version"], "api": v["ApiVersion"], "image": after["Images"][0]["Id"], "size": after["Images"][0]["Size"]})
"#,
    )?;
    ensure!(
        value["image"] == layout_config_digest("base")?.as_str(),
        "df lists the pulled image: {value}"
    );
    ensure!(
        value["size"].as_u64().unwrap_or(0) > 500_000,
        "df size: {value}"
    );
    Ok(())
}

#[test]
fn pull_list_get_tag() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(&registry, "multi", "multi:1", Format::Oci, None)?;
    let value = python(
        &daemon,
        Some(&registry),
        r#"
img = client.images.pull("{REG}/multi", tag="1")
assert img.tags == ["{REG}/multi:1"], img.tags
ids = [i.id for i in client.images.list()]
assert ids == [img.id], ids
got = client.images.get("{REG}/multi:1")
assert got.id == img.id
assert got.attrs["Config"]["Cmd"] == ["/bin/sh"], got.attrs["Config"]
assert len(got.attrs["RootFS"]["Layers"]) == 4, got.attrs["RootFS"]
assert img.tag("mine/app", "2") is True
again = client.images.get("mine/app:2")
assert again.id == img.id
assert sorted(again.tags) == sorted(["{REG}/multi:1", "mine/app:2"]), again.tags
named = client.images.list(name="mine/app")
assert [i.id for i in named] == [img.id], named
assert client.images.list(filters={"dangling": True}) == []
try:
    client.images.get("nope:1")
    raise AssertionError("get of a missing image succeeded")
except docker.errors.ImageNotFound as e:
    missing = str(e)
result({"id": img.id, "digests": got.attrs["RepoDigests"], "missing": missing})
"#,
    )?;
    ensure!(
        value["id"] == layout_config_digest("multi")?.as_str(),
        "Id: {value}"
    );
    let expected = format!(
        "{}@{}",
        registry.image("multi"),
        registry_digest(&registry, "multi:1", None)?
    );
    ensure!(
        value["digests"] == serde_json::json!([expected]),
        "RepoDigests: {value}"
    );
    ensure!(
        value["missing"]
            .as_str()
            .unwrap_or("")
            .contains("No such image"),
        "{value}"
    );
    Ok(())
}

#[test]
fn push_streams_progress_and_digest() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(&registry, "base", "base:1", Format::Oci, None)?;
    let value = python(
        &daemon,
        Some(&registry),
        r#"
img = client.images.pull("{REG}/base", tag="1")
assert img.tag("{REG}/sdk-pushed", "7")
events = list(client.images.push("{REG}/sdk-pushed", tag="7", stream=True, decode=True))
errors = [e for e in events if "error" in e or "errorDetail" in e]
assert not errors, errors
aux = [e["aux"] for e in events if "aux" in e]
assert aux and aux[-1]["Tag"] == "7", events
again = list(client.images.push("{REG}/sdk-pushed", tag="7", stream=True, decode=True))
statuses = [e.get("status", "") for e in again]
assert any("already exists" in s for s in statuses), statuses
result({"digest": aux[-1]["Digest"], "size": aux[-1]["Size"]})
"#,
    )?;
    let remote = registry_digest(&registry, "sdk-pushed:7", None)?;
    ensure!(
        value["digest"] == remote.as_str(),
        "push aux digest {} != registry {remote}",
        value["digest"]
    );
    Ok(())
}

#[test]
fn save_remove_load() -> Result<()> {
    let registry = Registry::open()?;
    let daemon = Daemon::start_with(&[&registry.host()])?;
    fixtures::push(&registry, "multi", "multi:1", Format::Oci, None)?;
    python(
        &daemon,
        Some(&registry),
        r#"
img = client.images.pull("{REG}/multi", tag="1")
data = b"".join(img.save(named=True))
assert len(data) > 1000000, len(data)
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    names = tar.getnames()
assert "manifest.json" in names, names
client.images.remove("{REG}/multi:1")
assert client.images.list() == []
try:
    client.images.remove("{REG}/multi:1")
    raise AssertionError("second remove succeeded")
except docker.errors.ImageNotFound:
    pass
loaded = client.images.load(data)
assert [i.id for i in loaded] == [img.id], loaded
assert client.images.get("{REG}/multi:1").id == img.id
ids = [i.id for i in client.images.list()]
assert ids == [img.id], ids
result({"id": img.id})
"#,
    )?;
    Ok(())
}

#[test]
fn prune_dangling_then_unused() -> Result<()> {
    let daemon = Daemon::start()?;
    python(
        &daemon,
        None,
        r#"
def imported(text, tag):
    out = client.api.import_image_from_data(tiny_tar(text), repository="tiny", tag=tag)
    return json.loads(out.strip().splitlines()[-1])["status"]
old = imported("first", "1")
new = imported("second", "1")
keep = imported("third", "keep")
assert old != new
dangling = [i.id for i in client.images.list(filters={"dangling": True})]
assert dangling == [old], dangling
report = client.images.prune(filters={"dangling": True})
deleted = [d.get("Deleted") for d in report["ImagesDeleted"] or []]
assert old in deleted, report
assert report["SpaceReclaimed"] >= 0, report
assert sorted(i.id for i in client.images.list()) == sorted([new, keep])
report = client.images.prune(filters={"dangling": False})
deleted = [d.get("Deleted") for d in report["ImagesDeleted"] or []]
assert new in deleted and keep in deleted, report
assert client.images.list() == []
result({"ok": True})
"#,
    )?;
    Ok(())
}
