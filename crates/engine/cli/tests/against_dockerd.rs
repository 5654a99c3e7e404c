//! Drives the real `berth` binary against a private dockerd (the Docker Engine API the berth
//! daemon also serves) and compares its output with the docker CLI's on the same daemon.
//!
//! Needs root, `dockerd`, a `docker` CLI, busybox-static (for a base image), and optionally
//! `docker-registry` and `htpasswd` for push, pull and login. Whatever is missing is reported on
//! stderr and the affected part is skipped. Everything started here (dockerd, registries, their
//! directories) is stopped and removed when the test ends, also when it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn find(names: &[&str]) -> Option<PathBuf> {
    for name in names {
        let p = Path::new(name);
        if p.is_absolute() {
            if p.exists() {
                return Some(p.to_path_buf());
            }
            continue;
        }
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            if dir.join(name).is_file() {
                return Some(dir.join(name));
            }
        }
    }
    None
}

/// Says why a check is skipped, on the real stderr (past the test harness's capture).
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPING part of against_dockerd: {why} !!!!!\n"
    );
}

/// A process we started, stopped by its pid (SIGTERM, then SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory removed when dropped (after the processes using it, by field order).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // dockerd unmounts its overlays on shutdown; anything still mounted would make the
        // removal fail, which we report rather than hide.
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

/// Host paths dockerd creates outside its data and exec roots (its identity key, its plugin
/// socket directory); those that did not exist before the test are removed after it.
struct HostLeftovers(Vec<PathBuf>);

impl HostLeftovers {
    fn record() -> Self {
        let paths = ["/etc/docker/key.json", "/run/docker", "/etc/docker"];
        HostLeftovers(
            paths
                .iter()
                .map(PathBuf::from)
                .filter(|p| !p.exists())
                .collect(),
        )
    }
}

impl Drop for HostLeftovers {
    fn drop(&mut self) {
        for p in &self.0 {
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            if let Err(e) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("could not remove {}: {e}", p.display());
                }
            }
        }
    }
}

struct Env {
    host: String,
    docker: PathBuf,
    config: PathBuf,
    dir: PathBuf,
}

impl Env {
    fn berth(&self, args: &[&str]) -> Output {
        self.berth_in(args, None)
    }

    fn berth_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(
            Command::new(BERTH)
                .args(["-H", &self.host, "--config"])
                .arg(&self.config)
                .args(args),
            stdin,
        )
    }

    fn docker(&self, args: &[&str]) -> Output {
        run(
            Command::new(&self.docker)
                .args(["-H", &self.host, "--config"])
                .arg(self.dir.join("docker-config"))
                .args(args),
            None,
        )
    }
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().expect("wait")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1: {o:?}");
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(dir: &Path, name: &str, htpasswd: Option<&Path>) -> Option<(Proc, u16)> {
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
    let child = Command::new(registry)
        .arg("serve")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let proc = Proc(child);
    wait_for("registry", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
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
    let Some(dockerd) = find(&["dockerd"]) else {
        return skip("dockerd is not installed (apt-get install -y docker.io)");
    };
    let Some(docker) = find(&["docker", "/usr/local/bin/docker"]) else {
        return skip("no docker CLI to compare with");
    };
    if effective_uid() != 0 {
        return skip("dockerd needs root");
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../scripts/make-busybox-rootfs.sh");
    let leftovers = HostLeftovers::record();
    let dir = PathBuf::from(format!("/tmp/berth-cli-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scratch = Scratch(dir.clone());
    let rootfs = dir.join("rootfs");
    let made = Command::new("sh").arg(&script).arg(&rootfs).status();
    if !made.is_ok_and(|s| s.success()) {
        return skip("could not build a busybox rootfs with scripts/make-busybox-rootfs.sh");
    }
    let tarball = dir.join("bb.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap()
        .success());

    let sock = dir.join("docker.sock");
    let host = format!("unix://{}", sock.display());
    let daemon = Proc(
        Command::new(dockerd)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "-H",
                &host,
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let env = Env {
        host: host.clone(),
        docker,
        config: dir.join("berth-config"),
        dir: dir.clone(),
    };
    wait_for("dockerd", || env.berth(&["version"]).status.success());

    exercise(&env, &tarball);
    drop(daemon);
    drop(scratch);
    drop(leftovers);
}

fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
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
        assert_eq!(
            sorted_lines(&ok(&env.berth(&args))),
            sorted_lines(&ok(&env.docker(&args))),
            "{args:?}"
        );
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
        assert_eq!(
            ok(&env.berth(&args)).trim_end(),
            ok(&env.docker(&args)).trim_end(),
            "{args:?}"
        );
    }
    // The daemon lists images with equal creation times in no fixed order.
    assert_eq!(
        sorted_lines(&ok(&env.berth(&["system", "df", "-v"]))),
        sorted_lines(&ok(&env.docker(&["system", "df", "-v"])))
    );
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
    let Some((_registry, port)) = start_registry(&env.dir, "registry", None) else {
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
    let (_secure, sport) = start_registry(&env.dir, "secure", Some(&users)).unwrap();
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
