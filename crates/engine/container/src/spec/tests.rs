//! Whole specs: what [`build`] writes for typical `docker run` flags, that berth-runc's
//! bundle checks accept it, and one container actually run from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_core::{ErrorKind, HasKind};
use bollard_stubs::models::{
    ContainerConfig, DeviceMapping, HostConfig, HostConfigCgroupnsModeEnum, ResourcesUlimits,
};
use oci_spec::runtime::{
    Capability, LinuxDeviceType, LinuxNamespaceType, LinuxSeccompAction, Mount, PosixRlimitType,
    Spec,
};

use super::*;

/// A container directory: a rootfs with passwd and group files, and the files moby mounts
/// over /etc/hostname, /etc/hosts and /etc/resolv.conf.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nwheel:x:10:app\napp:x:1000:\n",
        )
        .unwrap();
        for f in ["hostname", "hosts", "resolv.conf"] {
            std::fs::write(dir.path().join(f), format!("{f}\n")).unwrap();
        }
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// This host, but holding every capability, so results do not depend on where tests run.
fn host() -> Host {
    let mut h = Host::current().unwrap();
    h.caps = caps::known();
    h.hostname = "the-host".into();
    h
}

fn config(cmd: &[&str]) -> ContainerConfig {
    ContainerConfig {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

/// The init binary the tests configure (never executed: only mounted).
const TINI: &str = "/usr/bin/tini-static";

fn build_with(
    fx: &Fixture,
    config: &ContainerConfig,
    hc: &HostConfig,
    mounts: &[MountSpec],
    h: &Host,
) -> Result<Spec> {
    build_init(fx, config, hc, mounts, h, Some(Path::new(TINI)))
}

fn build_init(
    fx: &Fixture,
    config: &ContainerConfig,
    hc: &HostConfig,
    mounts: &[MountSpec],
    h: &Host,
    init_path: Option<&Path>,
) -> Result<Spec> {
    let rootfs = fx.path("rootfs");
    let hostname = fx.path("hostname");
    let hosts = fx.path("hosts");
    let resolv = fx.path("resolv.conf");
    let input = SpecInput {
        id: ID,
        rootfs: &rootfs,
        config,
        host_config: hc,
        mounts,
        hostname_path: &hostname,
        hosts_path: &hosts,
        resolv_conf_path: &resolv,
        cgroups_path: format!("/berth/{ID}"),
        init_path,
        cgroup_v2: false,
    };
    build_on(&input, h)
}

fn spec_of(config: &ContainerConfig, hc: &HostConfig) -> Spec {
    let fx = Fixture::new();
    build_with(&fx, config, hc, &[], &host()).unwrap()
}

fn mount_at<'a>(spec: &'a Spec, dest: &str) -> Option<&'a Mount> {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(dest))
}

fn options(spec: &Spec, dest: &str) -> Vec<String> {
    mount_at(spec, dest)
        .unwrap()
        .options()
        .clone()
        .unwrap_or_default()
}

fn destinations(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect()
}

fn namespaces_of(spec: &Spec) -> Vec<LinuxNamespaceType> {
    let linux = spec.linux().as_ref().unwrap();
    linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect()
}

fn env_of(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

/// The names a seccomp filter allows without conditions.
fn seccomp_allows(spec: &Spec, syscall: &str) -> bool {
    let seccomp = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    seccomp.syscalls().iter().flatten().any(|r| {
        r.action() == LinuxSeccompAction::ScmpActAllow
            && r.args().is_none()
            && r.names().iter().any(|n| n == syscall)
    })
}

/// berth-runc's own checks of a bundle, as `create` makes them (with a rootfs of the
/// bundle's own, the fixture's being gone by now).
fn runtime_accepts(spec: &Spec) {
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let mut spec = spec.clone();
    spec.root_mut().as_mut().unwrap().set_path(rootfs);
    std::fs::write(
        bundle.path().join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    berth_runtime::spec::Bundle::load(bundle.path()).unwrap();
}

#[test]
fn defaults_are_dockers() {
    let spec = spec_of(&config(&["sh"]), &HostConfig::default());
    assert_eq!(spec.version(), OCI_VERSION);
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));

    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_deref().unwrap(), ["sh"]);
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[0][..]));
    assert_eq!(p.oom_score_adj(), Some(0));
    assert_eq!(p.no_new_privileges(), None);
    assert!(p.rlimits().is_none());
    assert_eq!(
        env_of(&spec),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=0123456789ab",
            "HOME=/root"
        ]
    );
    let c = p.capabilities().as_ref().unwrap();
    let default: std::collections::HashSet<Capability> = caps::DEFAULT
        .iter()
        .map(|n| serde_json::from_value(serde_json::json!(n)).unwrap())
        .collect();
    assert_eq!(c.bounding().as_ref(), Some(&default));
    assert_eq!(c.effective().as_ref(), Some(&default));
    assert_eq!(c.permitted().as_ref(), Some(&default));
    assert!(c.inheritable().is_none() && c.ambient().is_none());

    assert_eq!(
        destinations(&spec),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts"
        ]
    );
    assert_eq!(
        options(&spec, "/dev/pts"),
        [
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ]
    );
    assert_eq!(options(&spec, "/sys"), ["nosuid", "noexec", "nodev", "ro"]);
    assert_eq!(
        options(&spec, "/sys/fs/cgroup"),
        ["ro", "nosuid", "noexec", "nodev"]
    );
    assert_eq!(
        options(&spec, "/dev/shm"),
        ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]
    );
    assert_eq!(options(&spec, "/etc/hosts"), ["rbind", "rprivate"]);
    let fx_hosts = mount_at(&spec, "/etc/hosts").unwrap();
    assert!(fx_hosts.source().as_ref().unwrap().ends_with("hosts"));

    use LinuxNamespaceType as T;
    assert_eq!(
        namespaces_of(&spec),
        [T::Mount, T::Network, T::Uts, T::Pid, T::Ipc]
    );
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new(&format!("/berth/{ID}")))
    );
    let masked = linux.masked_paths().as_ref().unwrap();
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/proc/interrupts",
    ] {
        assert!(masked.iter().any(|m| m == p), "{p}");
    }
    assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert_eq!(rules, &devices::default_rules());
    assert!(linux.devices().as_ref().unwrap().is_empty());
    assert!(seccomp_allows(&spec, "read"));
    assert!(!seccomp_allows(&spec, "mount"));
    let sysctl = linux.sysctl().clone().unwrap_or_default();
    if Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start").exists() {
        assert_eq!(sysctl["net.ipv4.ip_unprivileged_port_start"], "0");
    }
    let root = spec.root().as_ref().unwrap();
    assert!(root.path().ends_with("rootfs") && root.readonly().is_none());
    runtime_accepts(&spec);
}

#[test]
fn cgroup_namespace_follows_the_host_and_the_mode() {
    let fx = Fixture::new();
    let cfg = config(&["sh"]);
    let rootfs = fx.path("rootfs");
    let with_v2 = |hc: &HostConfig, v2: bool| {
        let input = SpecInput {
            id: ID,
            rootfs: &rootfs,
            config: &cfg,
            host_config: hc,
            mounts: &[],
            hostname_path: &rootfs,
            hosts_path: &rootfs,
            resolv_conf_path: &rootfs,
            cgroups_path: "/x".into(),
            init_path: None,
            cgroup_v2: v2,
        };
        namespaces_of(&build_on(&input, &host()).unwrap())
    };
    assert!(with_v2(&HostConfig::default(), true).contains(&LinuxNamespaceType::Cgroup));
    assert!(!with_v2(&HostConfig::default(), false).contains(&LinuxNamespaceType::Cgroup));
    let host_mode = HostConfig {
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
        ..Default::default()
    };
    assert!(!with_v2(&host_mode, true).contains(&LinuxNamespaceType::Cgroup));
}

#[test]
fn network_host_and_none() {
    let host_net = HostConfig {
        network_mode: Some("host".into()),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sh"]), &host_net);
    assert!(!namespaces_of(&spec).contains(&LinuxNamespaceType::Network));
    assert_eq!(spec.hostname().as_deref(), Some("the-host"));
    assert!(env_of(&spec).contains(&"HOSTNAME=the-host".to_string()));
    let sysctl = spec
        .linux()
        .as_ref()
        .unwrap()
        .sysctl()
        .clone()
        .unwrap_or_default();
    assert!(!sysctl.keys().any(|k| k.starts_with("net.")));
    runtime_accepts(&spec);

    let none = HostConfig {
        network_mode: Some("none".into()),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sh"]), &none);
    assert!(namespaces_of(&spec).contains(&LinuxNamespaceType::Network));
    runtime_accepts(&spec);
}

#[test]
fn privileged() {
    let hc = HostConfig {
        privileged: Some(true),
        ..Default::default()
    };
    let mut h = host();
    h.caps.retain(|c| *c != "CAP_SYS_RESOURCE");
    let fx = Fixture::new();
    let spec = build_with(&fx, &config(&["sh"]), &hc, &[], &h).unwrap();
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 40);
    assert!(!caps
        .bounding()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysResource));
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
    assert_eq!(options(&spec, "/sys"), ["nosuid", "noexec", "nodev"]);
    assert_eq!(
        options(&spec, "/sys/fs/cgroup"),
        ["nosuid", "noexec", "nodev"]
    );
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules, devices::allow_all());
    let devs = linux.devices().as_ref().unwrap();
    assert!(devs
        .iter()
        .any(|d| d.path() == Path::new("/dev/null") && d.typ() == LinuxDeviceType::C));
    runtime_accepts(&spec);
}

#[test]
fn read_only_rootfs() {
    let hc = HostConfig {
        readonly_rootfs: Some(true),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sh"]), &hc);
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    for dest in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"] {
        assert!(!options(&spec, dest).contains(&"ro".to_string()), "{dest}");
    }
    assert_eq!(
        options(&spec, "/etc/resolv.conf"),
        ["rbind", "ro", "rprivate"]
    );
    assert_eq!(
        options(&spec, "/sys").iter().filter(|o| *o == "ro").count(),
        1
    );
    runtime_accepts(&spec);
}

#[test]
fn user_mounts_replace_defaults_and_sort_by_depth() {
    let fx = Fixture::new();
    let data = fx.path("data");
    std::fs::create_dir(&data).unwrap();
    let tmpfs = |dest: &str, options: &[&str]| MountSpec {
        kind: MountKind::Tmpfs,
        options: options.iter().map(|o| o.to_string()).collect(),
        ..MountSpec::bind(dest, Path::new(""), false)
    };
    let mounts = vec![
        MountSpec {
            kind: MountKind::Volume,
            ..MountSpec::bind("/srv/data/sub", &data, true)
        },
        MountSpec::bind("/srv", &data, false),
        tmpfs("/dev/shm", &["size=1m"]),
        MountSpec::bind("/etc/hosts", &data, true),
    ];
    let spec = build_with(
        &fx,
        &config(&["sh"]),
        &HostConfig::default(),
        &mounts,
        &host(),
    )
    .unwrap();
    assert_eq!(
        destinations(&spec),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/srv",
            "/dev/shm",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/srv/data/sub"
        ]
    );
    assert_eq!(
        options(&spec, "/dev/shm"),
        ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]
    );
    assert_eq!(
        mount_at(&spec, "/etc/hosts").unwrap().source().as_deref(),
        Some(data.as_path())
    );
    assert_eq!(options(&spec, "/etc/hosts"), ["rbind", "ro", "rprivate"]);
    assert_eq!(options(&spec, "/srv/data/sub"), ["rbind", "ro"]);
    runtime_accepts(&spec);

    // A user /dev takes everything below it along.
    let dev = vec![tmpfs("/dev", &[])];
    let spec = build_with(&fx, &config(&["sh"]), &HostConfig::default(), &dev, &host()).unwrap();
    assert!(!destinations(&spec).iter().any(|d| d.starts_with("/dev/")));
}

#[test]
fn ipc_modes_and_shm_size() {
    let hc = |mode: &str| HostConfig {
        ipc_mode: Some(mode.into()),
        shm_size: Some(1 << 20),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sh"]), &hc("private"));
    assert!(options(&spec, "/dev/shm").contains(&"size=1048576".to_string()));
    let spec = spec_of(&config(&["sh"]), &hc("none"));
    assert!(mount_at(&spec, "/dev/shm").is_none());
    assert!(namespaces_of(&spec).contains(&LinuxNamespaceType::Ipc));
    let spec = spec_of(&config(&["sh"]), &hc("host"));
    assert!(!namespaces_of(&spec).contains(&LinuxNamespaceType::Ipc));
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));
    assert_eq!(shm.typ().as_deref(), Some("bind"));
}

#[test]
fn init_wraps_the_command() {
    let hc = HostConfig {
        init: Some(true),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sleep", "1"]), &hc);
    let p = spec.process().as_ref().unwrap();
    assert_eq!(
        p.args().as_deref().unwrap(),
        ["/sbin/docker-init", "--", "sleep", "1"]
    );
    let init = mount_at(&spec, INIT_PATH).unwrap();
    assert_eq!(init.source().as_deref(), Some(Path::new(TINI)));
    assert_eq!(init.options().as_deref().unwrap(), ["bind", "ro"]);

    // Without an init binary configured.
    let fx = Fixture::new();
    let err = build_init(&fx, &config(&["sh"]), &hc, &[], &host(), None).unwrap_err();
    assert!(matches!(err, Error::InitMissing));

    // In the host's pid namespace there is an init already.
    let pid_host = HostConfig {
        init: Some(true),
        pid_mode: Some("host".into()),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sh"]), &pid_host);
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_deref().unwrap(),
        ["sh"]
    );
    assert!(!namespaces_of(&spec).contains(&LinuxNamespaceType::Pid));
}

#[test]
fn non_root_user_groups_and_home() {
    let cfg = ContainerConfig {
        user: Some("app".into()),
        working_dir: Some("/home/app".into()),
        tty: Some(true),
        env: Some(vec!["A=1".into()]),
        ..config(&["id"])
    };
    let hc = HostConfig {
        group_add: Some(vec!["root".into(), "4242".into()]),
        ..Default::default()
    };
    let spec = spec_of(&cfg, &hc);
    let p = spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(
        p.user().additional_gids().as_deref(),
        Some(&[1000, 10, 0, 4242][..])
    );
    assert_eq!(p.cwd(), Path::new("/home/app"));
    assert_eq!(p.terminal(), Some(true));
    let c = p.capabilities().as_ref().unwrap();
    assert_eq!(c.bounding().as_ref().unwrap().len(), 14);
    assert!(c.effective().is_none() && c.permitted().is_none());
    let env = env_of(&spec);
    assert_eq!(&env[2..], ["TERM=xterm", "A=1", "HOME=/home/app"]);

    let unknown = ContainerConfig {
        user: Some("ghost".into()),
        ..config(&["id"])
    };
    let fx = Fixture::new();
    let err = build_with(&fx, &unknown, &HostConfig::default(), &[], &host()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn security_options() {
    let with = |opts: &[&str], add: &[&str]| HostConfig {
        security_opt: Some(opts.iter().map(|s| s.to_string()).collect()),
        cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let spec = spec_of(&config(&["sh"]), &with(&["no-new-privileges"], &[]));
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    let spec = spec_of(&config(&["sh"]), &with(&["seccomp=unconfined"], &[]));
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
    let spec = spec_of(&config(&["sh"]), &with(&[], &["SYS_ADMIN"]));
    assert!(seccomp_allows(&spec, "mount"));
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert!(caps
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    let custom = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let spec = spec_of(
        &config(&["sh"]),
        &with(&[&format!("seccomp={custom}")], &[]),
    );
    let s = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(
        s.syscalls().as_ref().unwrap()[0].names(),
        &["mkdir".to_string()]
    );
}

#[test]
fn resources_rlimits_sysctls_and_more() {
    let hc = HostConfig {
        memory: Some(64 << 20),
        nano_cpus: Some(500_000_000),
        pids_limit: Some(64),
        oom_score_adj: Some(500),
        ulimits: Some(vec![ResourcesUlimits {
            name: Some("nofile".into()),
            soft: Some(100),
            hard: Some(200),
        }]),
        sysctls: Some(HashMap::from([(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "1024".to_string(),
        )])),
        annotations: Some(HashMap::from([("a".to_string(), "b".to_string())])),
        masked_paths: Some(vec!["/proc/mine".into()]),
        devices: Some(vec![DeviceMapping {
            path_on_host: Some("/dev/null".into()),
            path_in_container: Some("/dev/other-null".into()),
            cgroup_permissions: Some("rw".into()),
        }]),
        device_cgroup_rules: Some(vec!["c 42:* rmw".into()]),
        ..Default::default()
    };
    let cfg = ContainerConfig {
        domainname: Some("example.org".into()),
        ..config(&["sh"])
    };
    let spec = spec_of(&cfg, &hc);
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.oom_score_adj(), Some(500));
    let r = &p.rlimits().as_ref().unwrap()[0];
    assert_eq!(
        (r.typ(), r.soft(), r.hard()),
        (PosixRlimitType::RlimitNofile, 100, 200)
    );
    let linux = spec.linux().as_ref().unwrap();
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 64);
    let rules = res.devices().as_ref().unwrap();
    let n = devices::default_rules().len();
    assert_eq!(rules[n].access().as_deref(), Some("rw"));
    assert_eq!(
        (rules[n + 1].major(), rules[n + 1].minor()),
        (Some(42), Some(-1))
    );
    assert_eq!(
        linux.devices().as_ref().unwrap()[0].path(),
        Path::new("/dev/other-null")
    );
    assert_eq!(
        linux.sysctl().as_ref().unwrap()["net.ipv4.ip_unprivileged_port_start"],
        "1024"
    );
    assert_eq!(
        linux.masked_paths().as_deref(),
        Some(&["/proc/mine".to_string()][..])
    );
    assert_eq!(spec.annotations().as_ref().unwrap()["a"], "b");
    assert_eq!(spec.domainname().as_deref(), Some("example.org"));
    runtime_accepts(&spec);
}

#[test]
fn refused_configs() {
    let fx = Fixture::new();
    let build = |cfg: &ContainerConfig, hc: &HostConfig| build_with(&fx, cfg, hc, &[], &host());
    let small = HostConfig {
        memory: Some(1 << 20),
        ..Default::default()
    };
    assert!(matches!(
        build(&config(&["sh"]), &small),
        Err(Error::MemoryBelowMinimum)
    ));
    assert!(matches!(
        build(&ContainerConfig::default(), &HostConfig::default()),
        Err(Error::NoCommand)
    ));
    let relative = ContainerConfig {
        working_dir: Some("srv".into()),
        ..config(&["sh"])
    };
    assert_eq!(
        build(&relative, &HostConfig::default())
            .unwrap_err()
            .to_string(),
        "the working directory 'srv' is invalid, it needs to be an absolute path"
    );
}

#[test]
fn validate_host_config_messages() {
    let check = |f: fn(&mut HostConfig)| {
        let mut hc = HostConfig::default();
        f(&mut hc);
        let err = validate_on(&hc, 4, &caps::known()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        err.to_string()
    };
    assert_eq!(
        check(|h| h.cap_add = Some(vec!["WARP".into()])),
        "unknown capability: \"CAP_WARP\""
    );
    assert_eq!(
        check(|h| h.ulimits = Some(vec![ResourcesUlimits {
            name: Some("nofile".into()),
            soft: Some(10),
            hard: Some(5)
        }])),
        "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
    );
    assert_eq!(
        check(|h| h.security_opt = Some(vec!["nope".into()])),
        "invalid --security-opt 1: \"nope\""
    );
    assert!(check(|h| h.security_opt = Some(vec!["seccomp={".into()]))
        .starts_with("Decoding seccomp profile failed"));
    assert_eq!(
        check(|h| h.device_cgroup_rules = Some(vec!["z".into()])),
        "invalid device cgroup rule format: 'z'"
    );
    assert_eq!(
        check(|h| h.shm_size = Some(-1)),
        "SHM size can not be less than 0"
    );
    assert_eq!(
        check(|h| h.oom_score_adj = Some(1001)),
        "Invalid value 1001, range for oom score adj is [-1000, 1000]"
    );
    assert_eq!(
        check(|h| h.nano_cpus = Some(5_000_000_000)),
        "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"
    );
    assert_eq!(
        check(|h| h.uts_mode = Some("nope".into())),
        "invalid UTS mode: nope"
    );
    validate_host_config(&HostConfig::default(), host_cpus()).unwrap();
}

mod runtime {
    //! One container from a built spec, run by berth-runc.

    use super::*;
    use std::process::{Command, Output};

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../..")
            .canonicalize()
            .unwrap()
    }

    /// `$BERTH_RUNC`, or `cargo build -p berth-runc` and the binary in the target directory.
    fn berth_runc() -> PathBuf {
        if let Some(bin) = std::env::var_os("BERTH_RUNC") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", "berth-runc"])
            .current_dir(workspace())
            .output()
            .expect("running cargo");
        assert!(
            out.status.success(),
            "cargo build -p berth-runc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|d| workspace().join(d))
            .unwrap_or_else(|| workspace().join("target"));
        let bin = target.join("debug/berth-runc");
        assert!(
            bin.is_file(),
            "{} is missing after the build",
            bin.display()
        );
        bin
    }

    /// Deletes the container (and so its cgroup) however the test ends.
    struct Cleanup {
        runc: PathBuf,
        state: PathBuf,
        id: String,
        cgroups_path: String,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new(&self.runc)
                .arg("--root")
                .arg(&self.state)
                .args(["delete", "--force", &self.id])
                .output();
            if let Ok(cg) =
                berth_cgroups::CgroupManager::new(Some(Path::new(&self.cgroups_path)), &self.id)
            {
                if cg.exists() {
                    let _ = cg.destroy();
                }
                cg.remove_parent_if_empty();
            }
        }
    }

    fn run(
        fx: &Fixture,
        rootfs: &Path,
        config: &ContainerConfig,
        hc: &HostConfig,
        tag: &str,
    ) -> (Output, String) {
        let runc = berth_runc();
        let id = format!("berth-test-spec-{}-{tag}", std::process::id());
        let cgroups_path = format!("/berth-test-spec/{id}");
        let (hostname, hosts, resolv) = (
            fx.path("hostname"),
            fx.path("hosts"),
            fx.path("resolv.conf"),
        );
        let input = SpecInput {
            id: &id,
            rootfs,
            config,
            host_config: hc,
            mounts: &[],
            hostname_path: &hostname,
            hosts_path: &hosts,
            resolv_conf_path: &resolv,
            cgroups_path: cgroups_path.clone(),
            init_path: None,
            cgroup_v2: berth_cgroups::detect_layout().unwrap() == berth_cgroups::Layout::V2,
        };
        let spec = build(&input).unwrap();
        let bundle = fx.path(&format!("bundle-{tag}"));
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        let state = fx.path("state");
        let cleanup = Cleanup {
            runc: runc.clone(),
            state: state.clone(),
            id: id.clone(),
            cgroups_path,
        };
        let out = Command::new(&runc)
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .output()
            .unwrap();
        drop(cleanup);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, text)
    }

    /// The container's own memory limit, read from its cgroup from inside.
    const SCRIPT: &str = "id; grep CapEff /proc/self/status; \
        cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";

    #[test]
    fn busybox_runs_with_the_built_spec() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "running containers needs root"
        );
        let fx = Fixture::new();
        let rootfs = fx.path("busybox");
        let script = workspace().join("scripts/make-busybox-rootfs.sh");
        let made = Command::new(&script).arg(&rootfs).output().unwrap();
        assert!(
            made.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&made.stderr)
        );
        let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            format!("{group}wheel:x:10:berth\n"),
        )
        .unwrap();

        let hc = HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        };
        let (out, text) = run(&fx, &rootfs, &config(&["sh", "-c", SCRIPT]), &hc, "root");
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "uid=0(root) gid=0(root) groups=0(root)");
        // Docker's 14 capabilities.
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["CapEff:", "00000000a80425fb"]
        );
        assert_eq!(lines[2], (64u64 << 20).to_string());

        let user = ContainerConfig {
            user: Some("berth".into()),
            ..config(&["sh", "-c", SCRIPT])
        };
        let hc = HostConfig {
            memory: Some(32 << 20),
            group_add: Some(vec!["nogroup".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..Default::default()
        };
        let (out, text) = run(&fx, &rootfs, &user, &hc, "user");
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        // The kernel keeps supplementary groups sorted.
        assert_eq!(
            lines[0],
            "uid=1000(berth) gid=1000(berth) groups=10(wheel),1000(berth),65534(nogroup)"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["CapEff:", "0000000000000000"]
        );
        assert_eq!(lines[2], (32u64 << 20).to_string());
    }
}
