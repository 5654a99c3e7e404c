//! A container's files from outside: `cp` both ways (stopped and running),
//! `export`, `diff`, `commit` (and that the init layer's files stay out of
//! the image), `system df`, `system prune`, and `rmi` of an image in use.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_container_tests::{cmd, ensure_contains, unique, Engine, BUSYBOX};

/// The entries of a tar file (`tar -tf`), without a leading `./`.
fn tar_entries(path: &std::path::Path) -> Result<Vec<String>> {
    let out = cmd::run("tar", &["-tf", &path.to_string_lossy()])?.ok()?;
    Ok(out
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect())
}

#[test]
fn cp_into_and_out_of_stopped_and_running_containers() -> Result<()> {
    let e = Engine::start()?;
    let dir = e.scratch("cp")?;
    fs::write(dir.join("in.txt"), "to the container\n")?;
    fs::create_dir_all(dir.join("tree/sub"))?;
    fs::write(dir.join("tree/a"), "a\n")?;
    fs::write(dir.join("tree/sub/b"), "b\n")?;

    // Into a created container, before it ever ran.
    let stopped = unique("cpstopped");
    e.docker_ok(&[
        "create",
        "--name",
        &stopped,
        BUSYBOX,
        "sh",
        "-c",
        "cat /tmp/in.txt /tmp/tree/a /tmp/tree/sub/b",
    ])?;
    e.docker_ok(&[
        "cp",
        &dir.join("in.txt").to_string_lossy(),
        &format!("{stopped}:/tmp/in.txt"),
    ])?;
    e.docker_ok(&[
        "cp",
        &dir.join("tree").to_string_lossy(),
        &format!("{stopped}:/tmp/"),
    ])?;
    let out = e.docker_ok(&["start", "-a", &stopped])?;
    ensure!(
        out.stdout == "to the container\na\nb\n",
        "cp into a created container: {out}"
    );

    // Out of the stopped container: a file and a directory.
    let back = dir.join("back.txt");
    e.docker_ok(&[
        "cp",
        &format!("{stopped}:/tmp/in.txt"),
        &back.to_string_lossy(),
    ])?;
    ensure!(
        fs::read_to_string(&back)? == "to the container\n",
        "cp out of a stopped container"
    );
    let tree_back = dir.join("tree-back");
    e.docker_ok(&[
        "cp",
        &format!("{stopped}:/tmp/tree"),
        &tree_back.to_string_lossy(),
    ])?;
    ensure!(
        fs::read_to_string(tree_back.join("sub/b"))? == "b\n",
        "cp of a directory out"
    );

    // A running container, both ways.
    let running = unique("cprunning");
    e.start_script(&running, "echo made-inside > /made; sleep 1000")?;
    e.docker_ok(&[
        "cp",
        &dir.join("tree").to_string_lossy(),
        &format!("{running}:/srv"),
    ])?;
    let out = e.docker_ok(&["exec", &running, "cat", "/srv/a", "/srv/sub/b"])?;
    ensure!(
        out.stdout == "a\nb\n",
        "cp of a directory to a new path copies its content there: {out}"
    );
    let made = dir.join("made");
    berth_container_tests::eventually(
        "the container's file",
        std::time::Duration::from_secs(20),
        || {
            let out = e.docker(&["cp", &format!("{running}:/made"), &made.to_string_lossy()])?;
            Ok(out.success().then_some(()))
        },
    )?;
    ensure!(
        fs::read_to_string(&made)? == "made-inside\n",
        "cp out of a running container"
    );

    // Errors: Docker's wording.
    let out = e.docker_fails(&[
        "cp",
        &format!("{running}:/nonexistent"),
        &dir.to_string_lossy(),
    ])?;
    ensure_contains(
        &out.stderr,
        &format!("Could not find the file /nonexistent in container {running}"),
        "cp of a missing path",
    )?;
    // The daemon must answer (404) even though the client is still sending
    // the tar: asked ten times, since a daemon that closes early loses a race.
    let source = dir.join("in.txt").to_string_lossy().into_owned();
    for attempt in 1..=10 {
        let out = e.docker_fails(&["cp", &source, "nosuchcontainer:/tmp"])?;
        ensure_contains(
            &out.stderr,
            "Error response from daemon: No such container: nosuchcontainer",
            &format!("cp to an unknown container, attempt {attempt}"),
        )?;
    }
    slow_upload_to_an_unknown_container(&e)
}

/// The race above made certain: an upload whose body comes late, chunked as
/// the CLI sends it. Docker's server answers 404 and keeps reading the (small)
/// body, so the client can finish sending and then read the answer; a daemon
/// that closes at once makes the client's write fail (EPIPE), which the CLI
/// reports instead of the 404.
fn slow_upload_to_an_unknown_container(e: &Engine) -> Result<()> {
    let chunk = |len: usize| format!("{len:x}\r\n{}\r\n", "\0".repeat(len));
    let mut stream = UnixStream::connect(e.socket())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // Headers, then the body in pieces, as the CLI's tar writer produces it.
    write!(
        stream,
        "PUT /containers/nosuchcontainer/archive?path=/tmp HTTP/1.1\r\nHost: berth\r\n\
         Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
    )?;
    for (i, piece) in [chunk(512), chunk(1536), "0\r\n\r\n".to_string()]
        .iter()
        .enumerate()
    {
        thread::sleep(Duration::from_millis(100));
        stream.write_all(piece.as_bytes()).with_context(|| {
            format!(
                "the daemon closed the connection before reading the upload it refused (piece {i})"
            )
        })?;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("No such container") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    ensure!(
        reply.starts_with("HTTP/1.1 404") && reply.contains("No such container: nosuchcontainer"),
        "a slow upload to an unknown container: {reply:?}"
    );
    Ok(())
}

#[test]
fn export_writes_the_whole_filesystem() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("export");
    e.run_script(&name, "echo hi > /exported.txt; rm /bin/vi")?;
    let file = e.scratch("export")?.join("c.tar");
    e.docker_ok(&["export", "-o", &file.to_string_lossy(), &name])?;
    let entries = tar_entries(&file)?;
    for wanted in ["bin/busybox", "etc/passwd", "exported.txt"] {
        ensure!(
            entries.iter().any(|e| e == wanted),
            "export lacks {wanted}: {} entries",
            entries.len()
        );
    }
    ensure!(
        !entries.iter().any(|e| e == "bin/vi"),
        "export lists a deleted file"
    );
    ensure!(
        !entries
            .iter()
            .any(|e| e.starts_with(".wh.") || e.contains("/.wh.")),
        "export holds whiteouts"
    );
    let text = cmd::run("tar", &["-xOf", &file.to_string_lossy(), "exported.txt"]);
    let text = match text {
        Ok(out) if out.success() => out.stdout,
        _ => {
            cmd::run("tar", &["-xOf", &file.to_string_lossy(), "./exported.txt"])?
                .ok()?
                .stdout
        }
    };
    ensure!(text == "hi\n", "the exported file's content: {text:?}");
    Ok(())
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("diff");
    e.run_script(
        &name,
        "touch /newfile; echo x >> /etc/passwd; rm /bin/vi; mkdir /newdir; touch /newdir/f",
    )?;
    let out = e.docker_ok(&["diff", &name])?;
    let lines = out.lines();
    for wanted in [
        "A /newfile",
        "C /etc",
        "C /etc/passwd",
        "C /bin",
        "D /bin/vi",
        "A /newdir",
        "A /newdir/f",
    ] {
        ensure!(
            lines.iter().any(|l| l == wanted),
            "diff lacks {wanted:?}:\n{}",
            out.stdout
        );
    }
    for unwanted in [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/.dockerenv",
        "/proc",
        "/sys",
        "/dev",
    ] {
        ensure!(
            !lines.iter().any(|l| l.get(2..) == Some(unwanted)),
            "diff lists {unwanted}, which is the daemon's, not the container's:\n{}",
            out.stdout
        );
    }
    ensure!(
        lines.len() == 7,
        "diff lists exactly the seven changes:\n{}",
        out.stdout
    );
    let untouched = unique("untouched");
    e.docker_ok(&["run", "--name", &untouched, BUSYBOX, "true"])?;
    let out = e.docker_ok(&["diff", &untouched])?;
    ensure!(
        out.stdout.trim().is_empty(),
        "a container that changed nothing has no diff: {out}"
    );
    Ok(())
}

#[test]
fn commit_makes_an_image_of_the_container() -> Result<()> {
    let e = Engine::start()?;
    let name = unique("commit");
    e.docker_ok(&[
        "run",
        "--name",
        &name,
        "--hostname",
        "committed-host",
        "-e",
        "FROM_CONTAINER=1",
        BUSYBOX,
        "sh",
        "-c",
        "echo committed-file > /added.txt",
    ])?;
    let out = e.docker_ok(&[
        "commit",
        "--change",
        r#"CMD ["echo","committed"]"#,
        "-m",
        "a message",
        "-a",
        "an author",
        &name,
        "committed:1",
    ])?;
    let image_id = out.stdout.trim().to_string();
    ensure!(
        image_id.starts_with("sha256:") && image_id.len() == 71,
        "commit prints the image ID: {out}"
    );
    let out = e.docker_ok(&["run", "--rm", "committed:1"])?;
    ensure!(out.stdout == "committed\n", "the new CMD: {out}");
    let out = e.docker_ok(&["run", "--rm", "committed:1", "cat", "/added.txt"])?;
    ensure!(out.stdout == "committed-file\n", "the added file: {out}");

    let image = e.inspect("committed:1")?;
    ensure!(image["Id"] == image_id.as_str(), "Id: {}", image["Id"]);
    ensure!(
        image["Comment"] == "a message" && image["Author"] == "an author",
        "Comment/Author: {} {}",
        image["Comment"],
        image["Author"]
    );
    ensure!(
        image["Config"]["Cmd"] == serde_json::json!(["echo", "committed"]),
        "Cmd: {}",
        image["Config"]["Cmd"]
    );
    let env = image["Config"]["Env"].to_string();
    ensure!(
        env.contains("FROM_CONTAINER=1"),
        "the container's Env is kept: {env}"
    );
    let layers = image["RootFS"]["Layers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    ensure!(layers == 2, "busybox's layer plus one: {}", image["RootFS"]);
    let container_id = e.container_id(&name)?;
    ensure!(
        image["Container"] == container_id.as_str() || image["Container"].is_null(),
        "Container: {}",
        image["Container"]
    );

    // The committed layer: the added file, and none of the init layer's
    // files (/etc/hostname, /etc/hosts, /etc/resolv.conf, /.dockerenv).
    let dir = e.scratch("commit")?;
    let saved = dir.join("saved.tar");
    e.docker_ok(&["save", "-o", &saved.to_string_lossy(), "committed:1"])?;
    let manifest: serde_json::Value = serde_json::from_str(
        &cmd::run("tar", &["-xOf", &saved.to_string_lossy(), "manifest.json"])?
            .ok()?
            .stdout,
    )?;
    let top = manifest[0]["Layers"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l.as_str())
        .context("manifest.json lists no layers")?
        .to_string();
    let layer = dir.join("top.tar");
    let extracted = std::process::Command::new("tar")
        .args(["-xOf", &saved.to_string_lossy(), &top])
        .output()?;
    fs::write(&layer, &extracted.stdout)?;
    let entries = tar_entries(&layer)?;
    ensure!(
        entries.iter().any(|e| e == "added.txt"),
        "the top layer lacks added.txt: {entries:?}"
    );
    for unwanted in ["etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"] {
        ensure!(
            !entries.iter().any(|e| e == unwanted),
            "the committed layer holds {unwanted}: {entries:?}"
        );
    }
    let history = e.docker_ok(&["history", "-q", "committed:1"])?.lines();
    ensure!(history.len() == 2, "history: {history:?}");
    Ok(())
}

#[test]
fn system_df_counts_containers_and_volumes() -> Result<()> {
    let e = Engine::start()?;
    let running = unique("dfrun");
    let stopped = unique("dfstop");
    let vol = unique("dfvol");
    e.run_detached(&[
        "--name",
        &running,
        "-v",
        &format!("{vol}:/data"),
        BUSYBOX,
        "sh",
        "-c",
        "echo data > /data/f; sleep 1000",
    ])?;
    e.run_script(&stopped, "echo x > /x")?;
    let out = e.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}",
    ])?;
    let lines = out.lines();
    ensure!(
        lines.contains(&"Images|1|1".to_string()),
        "Images row: {out}"
    );
    ensure!(
        lines.contains(&"Containers|2|1".to_string()),
        "Containers row: {out}"
    );
    ensure!(
        lines.contains(&"Local Volumes|1|1".to_string()),
        "Local Volumes row: {out}"
    );
    let verbose = e.docker_ok(&["system", "df", "-v"])?;
    ensure_contains(&verbose.stdout, "Containers space usage:", "system df -v")?;
    ensure_contains(&verbose.stdout, &running, "system df -v lists containers")?;
    ensure_contains(&verbose.stdout, &stopped, "system df -v lists containers")?;
    ensure_contains(&verbose.stdout, &vol, "system df -v lists volumes")?;
    Ok(())
}

#[test]
fn system_prune_removes_stopped_containers() -> Result<()> {
    let e = Engine::start()?;
    let running = e.run_detached(&[BUSYBOX, "sleep", "1000"])?;
    let stopped = unique("pruned");
    let vol = unique("kept");
    e.docker_ok(&[
        "run",
        "--name",
        &stopped,
        "-v",
        &format!("{vol}:/data"),
        BUSYBOX,
        "true",
    ])?;
    let stopped_id = e.container_id(&stopped)?;
    let out = e.docker_ok(&["system", "prune", "-f"])?;
    ensure_contains(&out.stdout, "Deleted Containers:", "system prune")?;
    ensure_contains(
        &out.stdout,
        &stopped_id,
        "system prune lists the stopped container",
    )?;
    ensure!(
        e.container_ids()? == vec![running],
        "only the running container is left"
    );
    let volumes = e.docker_ok(&["volume", "ls", "-q"])?.lines();
    ensure!(
        volumes == vec![vol],
        "system prune without --volumes keeps volumes: {volumes:?}"
    );
    ensure!(
        !e.docker_ok(&["images", "-q"])?.lines().is_empty(),
        "busybox is in use and must stay"
    );
    Ok(())
}

#[test]
fn rmi_of_an_image_in_use_is_a_conflict() -> Result<()> {
    let e = Engine::start()?;
    let image_id = e.inspect(BUSYBOX)?["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let short_image = &image_id[7..19];
    let name = unique("user");
    e.docker_ok(&["create", "--name", &name, BUSYBOX])?;
    let id = e.container_id(&name)?;

    let out = e.docker_fails(&["rmi", BUSYBOX])?;
    ensure_contains(
        &out.stderr,
        &format!(
            "conflict: unable to remove repository reference \"{BUSYBOX}\" (must force) - container {} is using its referenced image {short_image}",
            &id[..12]
        ),
        "rmi of a tag in use",
    )?;
    let (status, body) = e.request("DELETE", "/images/busybox:latest")?;
    ensure!(
        status == 409,
        "DELETE /images of an image in use: {status} {body}"
    );
    let out = e.docker_fails(&["rmi", &image_id])?;
    ensure_contains(
        &out.stderr,
        &format!("image is being used by stopped container {}", &id[..12]),
        "rmi by ID of an image in use",
    )?;
    ensure!(
        e.inspect(BUSYBOX)?["Id"] == image_id.as_str(),
        "the refused rmi removed the image"
    );
    e.docker_ok(&["rm", &name])?;
    e.docker_ok(&["rmi", BUSYBOX])?;
    ensure!(
        e.docker_ok(&["images", "-q"])?.lines().is_empty(),
        "rmi once unused"
    );
    Ok(())
}
