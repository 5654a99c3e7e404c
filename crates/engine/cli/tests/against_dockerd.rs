//! Drives the real `berth` binary against a private dockerd (the Docker Engine API the berth
//! daemon also serves) and compares its output with the docker CLI's on the same daemon.
//!
//! Needs root, `dockerd`, a `docker` CLI, busybox-static (for a base image), and optionally
//! `docker-registry` and `htpasswd` for push, pull and login. Whatever is missing is reported on
//! stderr and the affected part is skipped. `BERTH_IT_DAEMON=berth` runs the same checks against
//! `berth daemon`. Everything started here (dockerd, registries, their
//! directories) is stopped and removed when the test ends, also when it fails.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{
    agree, enter_netns, err, find, listening_in, ok, run, skip, sorted_lines, start_daemon,
    wait_for, Env, Proc, BERTH,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry inside the daemon's network namespace (where the daemon reaches it).
fn start_registry(env: &Env, name: &str, htpasswd: Option<&Path>) -> Option<(Proc, u16)> {
    let dir = &env.dir;
    let registry = find(&["docker-registry"])?;
    let port = free_port();
    let mut cfg = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join(name).display()
    );
    if let Some(h) = htpasswd {
        cfg.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            h.display()
        ));
    }
    let cfg_path = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut cmd = Command::new(registry);
    let ns = enter_netns(&env.netns, &mut cmd);
    let child = cmd
        .arg("serve")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    drop(ns);
    let proc = Proc(child);
    wait_for("registry", || listening_in(&env.netns, port));
    Some((proc, port))
}

#[test]
fn cannot_connect_is_reported_like_docker() {
    let o = run(
        Command::new(BERTH).args(["-H", "unix:///nonexistent/berth.sock", "images"]),
        None,
    );
    assert_eq!(
        err(&o),
        "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the daemon running?\n"
    );
}
#[test]
fn image_commands_match_the_docker_cli() {
    let Some(daemon) = start_daemon("it") else {
        return;
    };
    exercise(&daemon.env, &daemon.tarball);
}

fn exercise(env: &Env, tarball: &Path) {
    let tar = tarball.to_str().unwrap();

    // import, with changes and a message.
    let id = ok(&env.berth(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-m",
        "from berth",
        tar,
        "bb:1",
    ]));
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    ok(&env.berth(&["tag", "bb:1", "other/x"]));
    ok(&env.berth(&["image", "tag", "bb:1", "localhost:5000/bb:2"]));
    ok(&env.docker(&["import", tar, "dk:1"]));

    // images, in all the output forms, against docker's.
    for args in [
        vec!["images"],
        vec!["images", "-a", "--digests"],
        vec!["images", "-q"],
        vec!["images", "--no-trunc"],
        vec!["images", "bb"],
        vec!["images", "--filter", "reference=other/*"],
        vec![
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
        vec!["images", "--format", "table {{.Repository}}\\t{{.ID}}"],
    ] {
        agree(env, &args, sorted_lines);
    }
    let json = ok(&env.berth(&["images", "--format", "json", "bb:1"]));
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (row["Repository"].as_str(), row["Tag"].as_str()),
        (Some("bb"), Some("1"))
    );

    // inspect (whole documents and templates), history.
    for args in [
        vec!["image", "inspect", "bb:1", "dk:1"],
        vec![
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .Config.Cmd}} {{.Comment}}",
            "bb:1",
        ],
        vec!["history", "bb:1"],
        vec!["history", "--no-trunc", "-H=false", "dk:1"],
        vec!["history", "-q", "bb:1"],
        vec!["system", "df"],
    ] {
        agree(env, &args, |s| s.trim_end().to_string());
    }
    // The daemon lists images with equal creation times in no fixed order.
    agree(env, &["system", "df", "-v"], sorted_lines);
    assert_eq!(
        err(&env.berth(&["image", "inspect", "nope:1"])),
        err(&env.docker(&["image", "inspect", "nope:1"]))
    );

    // save: byte-identical to docker's archive; load it back.
    let saved = env.dir.join("saved.tar");
    ok(&env.berth(&["save", "-o", saved.to_str().unwrap(), "bb:1", "other/x"]));
    let ours = std::fs::read(&saved).unwrap();
    let theirs = env.docker(&["save", "bb:1", "other/x"]).stdout;
    assert!(ours == theirs, "save differs from docker save");
    let piped = env.berth(&["save", "bb:1", "other/x"]);
    assert!(piped.stdout == theirs, "save to a pipe differs");

    // rmi: lines like docker's, continues past failures, exit 1 at the end.
    let o = env.berth(&["rmi", "other/x", "nope", "localhost:5000/bb:2"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Untagged: other/x:latest\nUntagged: localhost:5000/bb:2\n"
    );
    assert_eq!(
        err(&o),
        "Error response from daemon: No such image: nope:latest\n"
    );
    ok(&env.berth(&["rmi", "bb:1"]));
    let loaded = ok(&env.berth(&["load", "-i", saved.to_str().unwrap()]));
    assert_eq!(loaded, "Loaded image: bb:1\nLoaded image: other/x:latest\n");
    let loaded = ok(&env.berth_in(&["load", "-q"], Some(&ours)));
    assert_eq!(loaded, "Loaded image: bb:1\nLoaded image: other/x:latest\n");

    // prune: asks first, then removes the dangling image.
    ok(&env.berth_in(&["import", "-"], Some(&std::fs::read(tarball).unwrap())));
    let o = env.berth_in(&["image", "prune"], Some(b"n\n"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(err(&o), "image prune has been cancelled\n");
    assert_eq!(
        ok(&env.berth(&["images", "-q", "-f", "dangling=true"]))
            .lines()
            .count(),
        1
    );
    let pruned = ok(&env.berth(&["image", "prune", "-f"]));
    assert!(
        pruned.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{pruned}"
    );
    assert!(
        pruned.ends_with("\n\nTotal reclaimed space: 0B\n"),
        "{pruned}"
    );
    assert_eq!(ok(&env.berth(&["images", "-q", "-f", "dangling=true"])), "");

    // version and info speak to the daemon.
    let v = ok(&env.berth(&["version", "--format", "{{.Server.ApiVersion}}"]));
    assert_eq!(
        v,
        ok(&env.docker(&["version", "--format", "{{.Server.APIVersion}}"]))
    );
    assert!(ok(&env.berth(&["info"])).contains(" Storage Driver: "));

    registries(env);
}

fn registries(env: &Env) {
    let Some((_registry, port)) = start_registry(env, "registry", None) else {
        return skip("docker-registry is not installed: push and pull not checked");
    };
    let name = format!("localhost:{port}/bb:1");
    ok(&env.berth(&["tag", "bb:1", &name]));
    let pushed = ok(&env.berth(&["push", &name]));
    assert!(
        pushed.starts_with(&format!(
            "The push refers to repository [localhost:{port}/bb]\n"
        )),
        "{pushed}"
    );
    assert!(
        pushed.contains(": Pushed\n") && pushed.contains("1: digest: sha256:"),
        "{pushed}"
    );
    ok(&env.berth(&["rmi", &name, "bb:1", "other/x"]));
    let pulled = ok(&env.berth(&["pull", &name]));
    assert!(pulled.starts_with("1: Pulling from bb\n"), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {name}\n")),
        "{pulled}"
    );
    assert!(pulled.ends_with(&format!("\n{name}\n")), "{pulled}");
    assert_eq!(ok(&env.berth(&["pull", "-q", &name])), format!("{name}\n"));
    let missing = env.berth(&["pull", &format!("localhost:{port}/bb")]);
    assert_eq!(
        String::from_utf8_lossy(&missing.stdout),
        "Using default tag: latest\n"
    );
    assert!(err(&missing).starts_with("Error response from daemon: manifest for"));

    // login: credentials stored like docker's, then used by push.
    let Some(htpasswd) = find(&["htpasswd"]) else {
        return skip("htpasswd is not installed: login not checked");
    };
    let users = env.dir.join("htpasswd");
    let o = Command::new(htpasswd)
        .args(["-Bbn", "alice", "s3cret"])
        .output()
        .unwrap();
    std::fs::write(&users, o.stdout).unwrap();
    let (_secure, sport) = start_registry(env, "secure", Some(&users)).unwrap();
    let server = format!("localhost:{sport}");
    let target = format!("{server}/bb:1");
    ok(&env.berth(&["tag", &name, &target]));
    let denied = env.berth(&["push", &target]);
    assert!(
        err(&denied).contains("no basic auth credentials"),
        "{denied:?}"
    );
    let bad = env.berth(&["login", "-u", "alice", "-p", "wrong", &server]);
    assert!(
        err(&bad).contains("Error response from daemon: "),
        "{bad:?}"
    );
    let o = env.berth_in(
        &["login", "-u", "alice", "--password-stdin", &server],
        Some(b"s3cret\n"),
    );
    assert_eq!(ok(&o), "Login Succeeded\n");
    let cfg_path = env.config.join("config.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&cfg_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    assert_eq!(cfg["auths"][&server]["auth"], "YWxpY2U6czNjcmV0");
    assert!(ok(&env.berth(&["push", &target])).contains(": Pushed\n"));
    assert_eq!(
        ok(&env.berth(&["logout", &server])),
        format!("Removing login credentials for {server}\n")
    );
    assert!(err(&env.berth(&["pull", &target])).contains("no basic auth credentials"));
}
