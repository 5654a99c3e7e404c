//! Storage a container sees besides its root: bind mounts (`-v`, `--mount`,
//! read-only), named and anonymous volumes (create, ls, inspect, rm, prune,
//! `rm -v`), copy-up of image content into a new volume, tmpfs mounts, and
//! the errors Docker gives for volumes in use and bad specs.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{ensure, Result};
use berth_container_tests::{cmd, ensure_contains, fixtures, unique, Engine, BUSYBOX};

fn volume_names(e: &Engine) -> Result<Vec<String>> {
    let mut names = e.docker_ok(&["volume", "ls", "-q"])?.lines();
    names.sort();
    Ok(names)
}

#[test]
fn bind_mounts_share_files_with_the_host() -> Result<()> {
    let e = Engine::start()?;
    let dir = e.scratch("bind")?;
    fs::write(dir.join("from-host.txt"), "host\n")?;
    let spec = format!("{}:/data", dir.display());
    let out = e.run_rm(&[
        "-v",
        &spec,
        BUSYBOX,
        "sh",
        "-c",
        "cat /data/from-host.txt; echo inside > /data/f",
    ])?;
    ensure!(out == "host\n", "the host's file inside: {out:?}");
    ensure!(
        fs::read_to_string(dir.join("f"))? == "inside\n",
        "a file written inside appears on the host"
    );

    let ro = format!("{}:/data:ro", dir.display());
    let out = e.docker(&["run", "--rm", "-v", &ro, BUSYBOX, "touch", "/data/nope"])?;
    ensure!(out.code == Some(1), ":ro refuses writes: {out}");
    ensure_contains(&out.stderr, "Read-only file system", ":ro")?;
    ensure!(
        !dir.join("nope").exists(),
        "the refused write reached the host"
    );
    ensure!(
        e.run_rm(&["-v", &ro, BUSYBOX, "cat", "/data/f"])? == "inside\n",
        ":ro still reads"
    );

    let mount = format!("type=bind,source={},target=/mnt/m", dir.display());
    let out = e.run_rm(&[
        "--mount",
        &mount,
        BUSYBOX,
        "sh",
        "-c",
        "echo via-mount > /mnt/m/g; cat /mnt/m/f",
    ])?;
    ensure!(out == "inside\n", "--mount type=bind: {out:?}");
    ensure!(
        fs::read_to_string(dir.join("g"))? == "via-mount\n",
        "--mount wrote through"
    );
    let mount_ro = format!("{mount},readonly");
    let out = e.docker(&[
        "run",
        "--rm",
        "--mount",
        &mount_ro,
        BUSYBOX,
        "touch",
        "/mnt/m/nope",
    ])?;
    ensure!(out.code == Some(1), "--mount readonly: {out}");

    // A single file can be bound too.
    let file_spec = format!("{}:/etc/motd:ro", dir.join("f").display());
    ensure!(
        e.run_rm(&["-v", &file_spec, BUSYBOX, "cat", "/etc/motd"])? == "inside\n",
        "file bind"
    );

    // -v creates a missing host directory; --mount refuses it.
    let missing = dir.join("made-by-v");
    let spec = format!("{}:/data", missing.display());
    e.run_rm(&["-v", &spec, BUSYBOX, "true"])?;
    ensure!(
        missing.is_dir(),
        "-v must create the missing host directory {}",
        missing.display()
    );
    let absent = dir.join("absent");
    let mount = format!("type=bind,source={},target=/data", absent.display());
    let out = e.docker(&["run", "--rm", "--mount", &mount, BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "--mount of a missing source: {out}");
    ensure_contains(
        &out.stderr,
        &format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            absent.display()
        ),
        "--mount of a missing source",
    )?;
    ensure!(!absent.exists(), "--mount must not create its source");

    let name = unique("binds");
    let spec = format!("{}:/data:ro", dir.display());
    e.docker_ok(&["create", "--name", &name, "-v", &spec, BUSYBOX])?;
    let mounts = e.container(&name)?["Mounts"].clone();
    ensure!(
        mounts[0]["Type"] == "bind"
            && mounts[0]["Source"] == dir.to_string_lossy().as_ref()
            && mounts[0]["Destination"] == "/data"
            && mounts[0]["RW"] == false,
        "Mounts: {mounts}"
    );
    Ok(())
}

#[test]
fn named_volume_outlives_its_container() -> Result<()> {
    let e = Engine::start()?;
    let vol = unique("vol");
    let writer = unique("writer");
    let spec = format!("{vol}:/data");
    e.docker_ok(&[
        "run",
        "--name",
        &writer,
        "-v",
        &spec,
        BUSYBOX,
        "sh",
        "-c",
        "echo persisted > /data/f",
    ])?;
    ensure!(
        volume_names(&e)? == vec![vol.clone()],
        "-v name:/data creates the volume"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["volume", "inspect", &vol])?.stdout)?;
    let v = &inspect[0];
    ensure!(
        v["Name"] == vol.as_str() && v["Driver"] == "local" && v["Scope"] == "local",
        "volume inspect: {v}"
    );
    let mountpoint = PathBuf::from(v["Mountpoint"].as_str().unwrap_or_default());
    ensure!(
        mountpoint == e.data_root().join("volumes").join(&vol).join("_data"),
        "Mountpoint: {}",
        mountpoint.display()
    );
    ensure!(
        fs::read_to_string(mountpoint.join("f"))? == "persisted\n",
        "the file is in the volume on the host"
    );
    let mounts = e.container(&writer)?["Mounts"].clone();
    ensure!(
        mounts[0]["Type"] == "volume"
            && mounts[0]["Name"] == vol.as_str()
            && mounts[0]["Driver"] == "local",
        "Mounts: {mounts}"
    );

    e.docker_ok(&["rm", &writer])?;
    ensure!(
        volume_names(&e)? == vec![vol.clone()],
        "rm (even -v) keeps named volumes"
    );
    ensure!(
        e.run_rm(&["-v", &spec, BUSYBOX, "cat", "/data/f"])? == "persisted\n",
        "a second container sees it"
    );
    let mount = format!("type=volume,source={vol},target=/other");
    ensure!(
        e.run_rm(&["--mount", &mount, BUSYBOX, "cat", "/other/f"])? == "persisted\n",
        "--mount type=volume"
    );

    // Two containers at once share it.
    let a = e.run_detached(&[
        "-v",
        &spec,
        BUSYBOX,
        "sh",
        "-c",
        "echo from-a > /data/a; sleep 1000",
    ])?;
    let out = berth_container_tests::eventually(
        "the first container's write",
        std::time::Duration::from_secs(20),
        || {
            let out = e.docker(&["run", "--rm", "-v", &spec, BUSYBOX, "cat", "/data/a"])?;
            Ok(out.success().then_some(out.stdout))
        },
    )?;
    ensure!(out == "from-a\n", "{out:?}");
    e.docker_ok(&["rm", "-f", &a])?;
    ensure!(
        volume_names(&e)? == vec![vol.clone()],
        "the volume stays after its users go"
    );
    Ok(())
}

#[test]
fn volume_commands_create_ls_inspect_rm_prune() -> Result<()> {
    let e = Engine::start()?;
    let keep = unique("keep");
    let out = e.docker_ok(&["volume", "create", "--label", "tier=db", &keep])?;
    ensure!(
        out.stdout.trim() == keep,
        "volume create prints the name: {out}"
    );
    let anon = e
        .docker_ok(&["volume", "create"])?
        .stdout
        .trim()
        .to_string();
    ensure!(
        berth_container_tests::is_container_id(&anon),
        "an unnamed volume gets a 64-hex name: {anon:?}"
    );
    let mut expected = vec![keep.clone(), anon.clone()];
    expected.sort();
    ensure!(volume_names(&e)? == expected, "volume ls -q");
    let table = e.docker_ok(&["volume", "ls"])?;
    ensure!(
        table.stdout.starts_with("DRIVER") && table.stdout.contains("VOLUME NAME"),
        "{table}"
    );
    let labelled = e
        .docker_ok(&["volume", "ls", "-q", "--filter", "label=tier=db"])?
        .lines();
    ensure!(
        labelled == vec![keep.clone()],
        "--filter label: {labelled:?}"
    );
    let out = e.docker_ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Labels.tier}} {{.Driver}}",
        &keep,
    ])?;
    ensure!(out.stdout.trim() == "db local", "{out}");
    let out = e.docker(&["volume", "create", &keep])?;
    ensure!(
        out.success(),
        "creating an existing volume again is a no-op: {out}"
    );

    // A volume with options: a tmpfs mounted by its first user.
    let tmpfs = unique("tmpfsvol");
    e.docker_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        &tmpfs,
    ])?;
    let spec = format!("{tmpfs}:/t");
    let out = e.run_rm(&["-v", &spec, BUSYBOX, "grep", " /t ", "/proc/mounts"])?;
    ensure!(
        out.starts_with("tmpfs /t tmpfs") && out.contains("size=1024k"),
        "tmpfs volume: {out}"
    );
    e.docker_ok(&["volume", "rm", &tmpfs])?;

    // In use by a container (even a stopped one): refused with 409.
    let user = unique("user");
    let spec = format!("{keep}:/data");
    e.docker_ok(&["create", "--name", &user, "-v", &spec, BUSYBOX])?;
    let id = e.container_id(&user)?;
    let out = e.docker_fails(&["volume", "rm", &keep])?;
    ensure_contains(
        &out.stderr,
        &format!("remove {keep}: volume is in use - [{id}]"),
        "volume rm in use",
    )?;
    let (status, body) = e.request("DELETE", &format!("/volumes/{keep}"))?;
    ensure!(status == 409, "DELETE of a volume in use: {status} {body}");
    let dangling = e
        .docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"])?
        .lines();
    ensure!(
        dangling == vec![anon.clone()],
        "dangling=true: {dangling:?}"
    );

    // prune removes unused anonymous volumes; -a also unused named ones.
    let out = e.docker_ok(&["volume", "prune", "-f"])?;
    ensure_contains(&out.stdout, &anon, "volume prune")?;
    ensure!(
        volume_names(&e)? == vec![keep.clone()],
        "prune keeps named volumes and those in use"
    );
    let out = e.docker_ok(&["volume", "prune", "-a", "-f"])?;
    ensure!(
        !out.stdout.contains(&keep),
        "prune -a keeps volumes in use: {out}"
    );
    e.docker_ok(&["rm", &user])?;
    let out = e.docker_ok(&["volume", "prune", "-a", "-f"])?;
    ensure_contains(&out.stdout, &keep, "volume prune -a")?;
    ensure!(volume_names(&e)?.is_empty(), "nothing left after prune -a");
    ensure!(
        !e.data_root().join("volumes").join(&keep).exists(),
        "the pruned volume's directory remains"
    );

    let out = e.docker_fails(&["volume", "rm", "nosuchvolume"])?;
    ensure_contains(
        &out.stderr,
        "no such volume",
        "volume rm of an unknown volume",
    )?;
    let out = e.docker_fails(&["volume", "inspect", "nosuchvolume"])?;
    ensure_contains(
        &out.output(),
        "no such volume",
        "volume inspect of an unknown volume",
    )?;
    Ok(())
}

#[test]
fn rm_v_removes_anonymous_volumes_from_image_volume() -> Result<()> {
    let e = Engine::start()?;
    e.import("volimg", &["VOLUME /data", r#"CMD ["sh"]"#])?;
    let name = unique("anon");
    e.docker_ok(&[
        "run",
        "--name",
        &name,
        "volimg",
        "sh",
        "-c",
        "echo x > /data/x",
    ])?;
    let mounts = e.container(&name)?["Mounts"].clone();
    let anon = mounts[0]["Name"].as_str().unwrap_or_default().to_string();
    ensure!(
        mounts.as_array().map(Vec::len) == Some(1)
            && mounts[0]["Type"] == "volume"
            && mounts[0]["Destination"] == "/data"
            && berth_container_tests::is_container_id(&anon),
        "VOLUME /data gives an anonymous volume: {mounts}"
    );
    ensure!(
        volume_names(&e)? == vec![anon.clone()],
        "volume ls lists it"
    );
    e.docker_ok(&["rm", "-v", &name])?;
    ensure!(
        volume_names(&e)?.is_empty(),
        "rm -v must remove the anonymous volume"
    );

    // Without -v it stays, and a named volume given for the path is never removed.
    let kept = unique("kept");
    e.docker_ok(&["run", "--name", &kept, "volimg", "true"])?;
    let anon = e.container(&kept)?["Mounts"][0]["Name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    e.docker_ok(&["rm", &kept])?;
    ensure!(
        volume_names(&e)? == vec![anon.clone()],
        "rm without -v keeps it"
    );
    let named = unique("named");
    let over = unique("over");
    let spec = format!("{named}:/data");
    e.docker_ok(&["run", "--name", &over, "-v", &spec, "volimg", "true"])?;
    e.docker_ok(&["rm", "-v", &over])?;
    let mut expected = vec![anon, named];
    expected.sort();
    ensure!(volume_names(&e)? == expected, "rm -v keeps named volumes");
    // --rm removes anonymous volumes too.
    e.run_rm(&["volimg", "true"])?;
    ensure!(
        volume_names(&e)? == expected,
        "run --rm must remove its anonymous volume"
    );
    Ok(())
}

#[test]
fn new_volumes_are_filled_from_the_image() -> Result<()> {
    let e = Engine::start()?;
    // busybox plus /data/seed.txt (owned by 1000:1000), declared a VOLUME.
    let dir = e.scratch("seed")?;
    fs::create_dir_all(dir.join("data"))?;
    fs::write(dir.join("data/seed.txt"), "seed\n")?;
    fs::set_permissions(dir.join("data"), fs::Permissions::from_mode(0o750))?;
    fs::set_permissions(dir.join("data/seed.txt"), fs::Permissions::from_mode(0o640))?;
    let tar = dir.join("seeded.tar");
    fs::copy(fixtures::busybox_tar()?, &tar)?;
    cmd::run(
        "tar",
        &[
            "--owner=1000".to_string(),
            "--group=1000".to_string(),
            "--numeric-owner".to_string(),
            "-rf".to_string(),
            tar.to_string_lossy().into_owned(),
            "-C".to_string(),
            dir.to_string_lossy().into_owned(),
            "data".to_string(),
        ],
    )?
    .ok()?;
    e.import_tar(&tar, "seeded", &["VOLUME /data", r#"CMD ["sh"]"#])?;

    let probe = "cat /data/seed.txt; stat -c '%u:%g %a' /data /data/seed.txt";
    let expected = "seed\n1000:1000 750\n1000:1000 640\n";
    let out = e.run_rm(&["seeded", "sh", "-c", probe])?;
    ensure!(
        out == expected,
        "an anonymous volume is filled from the image: {out:?}"
    );
    let vol = unique("seedvol");
    let spec = format!("{vol}:/data");
    let out = e.run_rm(&["-v", &spec, "seeded", "sh", "-c", probe])?;
    ensure!(
        out == expected,
        "a new named volume is filled from the image: {out:?}"
    );
    let mountpoint = e.data_root().join("volumes").join(&vol).join("_data");
    let meta = fs::metadata(mountpoint.join("seed.txt"))?;
    ensure!(
        meta.uid() == 1000 && meta.gid() == 1000,
        "ownership on the host"
    );

    // A volume that holds data is not filled again.
    e.run_rm(&[
        "-v",
        &spec,
        "seeded",
        "sh",
        "-c",
        "echo changed > /data/seed.txt",
    ])?;
    let out = e.run_rm(&["-v", &spec, "seeded", "cat", "/data/seed.txt"])?;
    ensure!(
        out == "changed\n",
        "copy-up must happen only into an empty new volume: {out:?}"
    );
    // nocopy turns it off; bind mounts never copy.
    let bare = unique("bare");
    let nocopy = format!("{bare}:/data:nocopy");
    let out = e.run_rm(&["-v", &nocopy, "seeded", "ls", "-A", "/data"])?;
    ensure!(
        out.is_empty(),
        ":nocopy must leave the volume empty: {out:?}"
    );
    let host_dir = e.scratch("empty-bind")?;
    let bind = format!("{}:/data", host_dir.display());
    let out = e.run_rm(&["-v", &bind, "seeded", "ls", "-A", "/data"])?;
    ensure!(
        out.is_empty(),
        "a bind mount hides the image's files, copies none: {out:?}"
    );
    ensure!(
        fs::read_dir(&host_dir)?.next().is_none(),
        "nothing copied to the host directory"
    );
    Ok(())
}

#[test]
fn tmpfs_mounts_with_options() -> Result<()> {
    let e = Engine::start()?;
    let out = e.run_rm(&[
        "--tmpfs",
        "/run:rw,size=1m,mode=1770",
        BUSYBOX,
        "grep",
        " /run ",
        "/proc/mounts",
    ])?;
    let fields: Vec<&str> = out.split_whitespace().collect();
    ensure!(
        fields.first() == Some(&"tmpfs") && fields.get(2) == Some(&"tmpfs"),
        "--tmpfs: {out}"
    );
    let options = fields.get(3).copied().unwrap_or_default();
    for option in ["rw", "size=1024k", "mode=1770", "nosuid", "nodev", "noexec"] {
        ensure!(
            options.split(',').any(|o| o == option),
            "--tmpfs options lack {option}: {out}"
        );
    }
    let out = e.docker(&[
        "run",
        "--rm",
        "--tmpfs",
        "/run:size=1m",
        BUSYBOX,
        "dd",
        "if=/dev/zero",
        "of=/run/big",
        "bs=1M",
        "count=2",
    ])?;
    ensure!(
        !out.success(),
        "a 2 MB file must not fit a 1 MB tmpfs: {out}"
    );
    ensure_contains(&out.stderr, "No space left on device", "full tmpfs")?;
    let out = e.run_rm(&[
        "--mount",
        "type=tmpfs,target=/cache,tmpfs-size=2097152",
        BUSYBOX,
        "grep",
        " /cache ",
        "/proc/mounts",
    ])?;
    ensure!(
        out.starts_with("tmpfs /cache tmpfs") && out.contains("size=2048k"),
        "--mount type=tmpfs: {out}"
    );
    // The tmpfs is the container's own: nothing of it on the host.
    let name = unique("tmpfs");
    e.docker_ok(&[
        "run",
        "--name",
        &name,
        "--tmpfs",
        "/scratch",
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /scratch/x",
    ])?;
    let out = e.docker_ok(&["start", "-a", &name])?;
    ensure!(out.success(), "{out}");
    let out = e.docker_ok(&["diff", &name])?;
    ensure!(
        !out.stdout.contains("/scratch/x"),
        "tmpfs content in the diff: {out}"
    );
    Ok(())
}

#[test]
fn bad_volume_specs_are_refused() -> Result<()> {
    let e = Engine::start()?;
    let dir = e.scratch("spec")?;
    let bad_mode = format!("{}:/data:bogus", dir.display());
    let out = e.docker(&["run", "--rm", "-v", &bad_mode, BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "an unknown mode: {out}");
    ensure_contains(&out.stderr, "invalid mode: bogus", "-v with a bad mode")?;
    let relative = format!("{}:relative", dir.display());
    let out = e.docker(&["run", "--rm", "-v", &relative, BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "a relative target: {out}");
    ensure_contains(&out.stderr, "must be absolute", "-v with a relative target")?;
    let out = e.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,target=/data",
        BUSYBOX,
        "true",
    ])?;
    ensure!(out.code == Some(125), "--mount without a source: {out}");
    let out = e.docker(&["run", "--rm", "-v", "/:/", BUSYBOX, "true"])?;
    ensure!(out.code == Some(125), "-v onto / must be refused: {out}");
    ensure!(
        e.container_ids()?.is_empty(),
        "refused runs must create nothing"
    );
    ensure!(
        volume_names(&e)?.is_empty(),
        "refused runs must create no volume"
    );

    // Through the API: 400 with Docker's message, nothing created.
    let out = e.python(
        r#"
import docker.errors
for binds, want in ((["/a:/b:/c:/d"], "invalid volume specification: '/a:/b:/c:/d'"),
                    (["/src:/dst:bogus"], "invalid mode: bogus")):
    try:
        client.api.create_container("busybox", "true", host_config=client.api.create_host_config(binds=binds))
        print("created with", binds); sys.exit(1)
    except docker.errors.APIError as err:
        assert err.status_code == 400, (binds, err.status_code, err.explanation)
        assert want in err.explanation, (binds, err.explanation)
assert client.containers.list(all=True) == []
print("OK")
"#,
    )?;
    ensure!(out.trim() == "OK", "{out}");
    Ok(())
}
