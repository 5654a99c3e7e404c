//! From a Docker container config to an OCI runtime spec.
//!
//! `docker create` merges the image's config into the request ([`merge::merge_image_config`])
//! and rejects what Docker rejects ([`validate_host_config`]). `docker start` then turns the
//! stored record into the `config.json` of a bundle ([`build`]), the way moby's
//! `createSpec` (daemon/oci_linux.go) does on top of `oci.DefaultLinuxSpec()`:
//!
//! 1. the process: `Entrypoint ++ Cmd` ([`merge::args`]), behind `/sbin/docker-init --` with
//!    `--init`; Docker's environment (`process.rs`); the user and groups looked up in the
//!    image's own passwd and group files ([`user::resolve`]); the working directory;
//!    capabilities, Docker's 14 or all with `--privileged` ([`caps`]); ulimits;
//!    `no-new-privileges`; the OOM score;
//! 2. namespaces from the network, IPC, PID, UTS and cgroup modes (`namespaces.rs`);
//! 3. mounts: the default filesystems, the user's mounts and the container's hostname,
//!    hosts and resolv.conf files, sorted by depth (`mounts.rs`);
//! 4. devices and the device cgroup (`devices.rs`), resources (`resources.rs`), sysctls;
//! 5. masked and read-only paths, and Docker's seccomp profile converted for this
//!    container's capabilities and this host ([`seccomp`]).
//!
//! AppArmor and SELinux options are accepted and ignored; berth applies neither.

pub mod caps;
mod devices;
mod error;
pub mod merge;
mod mounts;
mod namespaces;
mod process;
mod resources;
pub mod seccomp;
mod security;
pub mod user;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard_stubs::models::{ContainerConfig, HostConfig};
use oci_spec::runtime::{
    Linux, LinuxDevice, LinuxDeviceCgroup, LinuxSeccomp, Mount, Process, Root, Spec, User,
};

pub use error::{Error, Result};
pub use mounts::{MountKind, MountSpec, DEFAULT_SHM_SIZE, INIT_PATH};
pub use process::DEFAULT_PATH;
pub use resources::MIN_MEMORY;
pub use seccomp::SeccompHost;
pub use user::ResolvedUser;

use mounts::RootPropagation;
use namespaces::IpcMode;
use security::SeccompChoice;

/// The resource limits of `hc` alone (no device rules), for `docker update` on a running
/// container.
pub fn resources(hc: &HostConfig) -> Result<oci_spec::runtime::LinuxResources> {
    let mut r = resources::linux_resources(hc, Vec::new())?;
    r.set_devices(None);
    Ok(r)
}

/// The capability sets of a privileged process run as `uid` (`docker exec --privileged`):
/// every capability the daemon holds.
pub fn privileged_capabilities(uid: u32) -> Result<oci_spec::runtime::LinuxCapabilities> {
    Ok(caps::process_capabilities(&caps::current()?, uid))
}

/// The terminal's first size (`HostConfig.ConsoleSize`, `[height, width]`), so a shell
/// draws right before the first resize arrives.
pub fn console_size(size: Option<&[usize]>, tty: bool) -> Option<oci_spec::runtime::Box> {
    match size {
        Some([h, w]) if tty && *h > 0 && *w > 0 => oci_spec::runtime::BoxBuilder::default()
            .height(*h as u64)
            .width(*w as u64)
            .build()
            .ok(),
        _ => None,
    }
}

/// The OCI runtime-spec version written.
pub const OCI_VERSION: &str = "1.2.0";

/// Everything [`build`] needs to know about one container.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// The mounted root filesystem (absolute).
    pub rootfs: &'a Path,
    /// The container's config, already merged with its image's.
    pub config: &'a ContainerConfig,
    pub host_config: &'a HostConfig,
    /// Binds, named volumes (their host directories) and tmpfs mounts.
    pub mounts: &'a [MountSpec],
    /// The container's files mounted at /etc/hostname, /etc/hosts and /etc/resolv.conf
    /// (unless a user mount covers one; a missing file is skipped, as moby does).
    pub hostname_path: &'a Path,
    pub hosts_path: &'a Path,
    pub resolv_conf_path: &'a Path,
    /// `linux.cgroupsPath`, e.g. `/berth/<id>`.
    pub cgroups_path: String,
    /// The host's init binary for `--init` (tini), mounted read-only at [`INIT_PATH`].
    pub init_path: Option<&'a Path>,
    /// Whether the host runs cgroup v2 (the default cgroup namespace mode depends on it).
    pub cgroup_v2: bool,
}

/// What the spec depends on about the machine it is built on.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// CPUs the daemon may run on (Go's `runtime.NumCPU`).
    pub ncpus: usize,
    /// The capabilities the daemon holds: what "all" means.
    pub caps: Vec<String>,
    pub seccomp: SeccompHost,
    /// Whether the kernel has seccomp at all.
    pub seccomp_supported: bool,
    /// The daemon's own hostname, for containers on the host's network or UTS namespace.
    pub hostname: String,
    /// Whether the daemon runs in a user namespace (no ping sysctl then, as moby).
    pub in_user_namespace: bool,
    /// `/sys/devices/system/cpu/cpu<N>/thermal_throttle` of each possible CPU that has one.
    pub thermal_throttle: Vec<String>,
    /// The host's `/dev`, walked for `--privileged`.
    pub dev: PathBuf,
}

impl Host {
    pub(crate) fn current() -> Result<Host> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(Error::host("reading /proc/self/status"))?;
        let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        Ok(Host {
            ncpus: host_cpus(),
            caps: caps::current()?,
            seccomp: SeccompHost::current()?,
            seccomp_supported: status.lines().any(|l| l.starts_with("Seccomp:")),
            hostname: nix::unistd::gethostname()
                .map_err(|e| Error::host("gethostname")(e.into()))?
                .to_string_lossy()
                .into_owned(),
            in_user_namespace: !uid_map
                .split_whitespace()
                .eq(["0", "0", "4294967295"].iter().copied()),
            thermal_throttle: thermal_throttle_paths(),
            dev: PathBuf::from("/dev"),
        })
    }
}

/// The CPUs this process may run on (its affinity mask), as Go's `runtime.NumCPU` counts.
pub fn host_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

fn thermal_throttle_paths() -> Vec<String> {
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    let mut cpus = Vec::new();
    for item in possible.trim().split(',').filter(|s| !s.is_empty()) {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<u32>(), hi.parse::<u32>()) {
            cpus.extend(lo..=hi.min(lo.saturating_add(4096)));
        }
    }
    cpus.into_iter()
        .map(|cpu| format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle"))
        .filter(|p| Path::new(p).exists())
        .collect()
}

/// What Docker masks in every unprivileged container (moby's `DefaultLinuxSpec`).
const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// What Docker makes read-only in every unprivileged container.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Sysctls Docker sets for a container with its own network namespace: ping without
/// CAP_NET_RAW and binding low ports without CAP_NET_BIND_SERVICE.
const NETWORK_SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ping_group_range", "0 2147483647"),
    ("net.ipv4.ip_unprivileged_port_start", "0"),
];

/// The checks `docker create` makes of a host config, on a host with `ncpus` CPUs: resource
/// limits, modes, capabilities, ulimits, security options, device rules.
pub fn validate_host_config(hc: &HostConfig, ncpus: usize) -> Result<()> {
    validate_on(hc, ncpus, &caps::current()?)
}

fn validate_on(hc: &HostConfig, ncpus: usize, available_caps: &[String]) -> Result<()> {
    resources::validate(hc, ncpus)?;
    if hc.shm_size.unwrap_or(0) < 0 {
        return Err(Error::ShmSize);
    }
    let oom = hc.oom_score_adj.unwrap_or(0);
    if !(-1000..=1000).contains(&oom) {
        return Err(Error::OomScoreAdj(oom));
    }
    namespaces::modes(hc, false)?;
    caps::validate(
        hc.cap_add.as_deref().unwrap_or_default(),
        hc.cap_drop.as_deref().unwrap_or_default(),
        available_caps,
    )?;
    process::rlimits(hc.ulimits.as_deref().unwrap_or_default())?;
    let security = security::parse(hc.security_opt.as_deref().unwrap_or_default())?;
    if let SeccompChoice::Profile(json) = &security.seccomp {
        seccomp::check(json)?;
    }
    for rule in hc.device_cgroup_rules.iter().flatten() {
        devices::parse_cgroup_rule(rule)?;
    }
    Ok(())
}

/// The OCI spec of a container, as Docker would run it on this host.
pub fn build(input: &SpecInput) -> Result<Spec> {
    build_on(input, &Host::current()?)
}

pub(crate) fn build_on(input: &SpecInput, host: &Host) -> Result<Spec> {
    let hc = input.host_config;
    let config = input.config;
    validate_on(hc, host.ncpus, &host.caps)?;
    let security = security::parse(hc.security_opt.as_deref().unwrap_or_default())?;
    let modes = namespaces::modes(hc, input.cgroup_v2)?;
    let privileged = hc.privileged.unwrap_or(false);
    let read_only = hc.readonly_rootfs.unwrap_or(false);

    let user = user::resolve(
        input.rootfs,
        config.user.as_deref().unwrap_or_default(),
        hc.group_add.as_deref().unwrap_or_default(),
    )?;

    let mut args = merge::args(config)?;
    // An init only makes sense as pid 1 of the container's own pid namespace.
    let init = match (hc.init == Some(true) && !modes.pid_host, input.init_path) {
        (false, _) => None,
        (true, None) => return Err(Error::InitMissing),
        (true, Some(path)) => Some(path),
    };
    if init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }

    let hostname = match config.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None if modes.net_host || modes.uts_host => host.hostname.clone(),
        None => input.id.chars().take(12).collect(),
    };
    let cwd = config
        .working_dir
        .as_deref()
        .filter(|w| !w.is_empty())
        .unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(Error::RelativeWorkingDir(cwd.to_string()));
    }

    let cap_list = caps::tweak(
        hc.cap_add.as_deref().unwrap_or_default(),
        hc.cap_drop.as_deref().unwrap_or_default(),
        privileged,
        &host.caps,
    )?;

    let mut process = Process::default();
    let mut process_user = User::default();
    process_user
        .set_uid(user.uid)
        .set_gid(user.gid)
        .set_umask(None)
        .set_additional_gids(Some(user.additional_gids.clone()))
        .set_username(None);
    let rlimits = process::rlimits(hc.ulimits.as_deref().unwrap_or_default())?;
    process
        .set_terminal(Some(config.tty.unwrap_or(false)))
        .set_console_size(console_size(
            hc.console_size.as_deref(),
            config.tty == Some(true),
        ))
        .set_user(process_user)
        .set_args(Some(args))
        .set_command_line(None)
        .set_env(Some(process::environment(
            config.env.as_deref().unwrap_or_default(),
            &hostname,
            config.tty.unwrap_or(false),
            user.home.as_deref(),
        )))
        .set_cwd(PathBuf::from(cwd))
        .set_capabilities(Some(caps::process_capabilities(&cap_list, user.uid)))
        .set_rlimits((!rlimits.is_empty()).then_some(rlimits))
        .set_no_new_privileges(security.no_new_privileges.then_some(true))
        .set_apparmor_profile(None)
        .set_oom_score_adj(Some(hc.oom_score_adj.unwrap_or(0) as i32))
        .set_selinux_label(None)
        .set_io_priority(None)
        .set_scheduler(None)
        .set_exec_cpu_affinity(None);

    let (spec_mounts, propagation) = assemble_mounts(
        input,
        &modes,
        init,
        privileged,
        read_only,
        security.writable_cgroups,
    )?;

    let (linux_devices, rules) = device_rules(hc, privileged, host)?;
    let sysctl = sysctls(hc, &modes, host);
    let seccomp = seccomp_filter(&security.seccomp, privileged, &cap_list, host)?;

    let masked = match &hc.masked_paths {
        Some(paths) => Some(paths.clone()),
        None if privileged => None,
        None => Some(
            MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .chain(host.thermal_throttle.iter().cloned())
                .collect(),
        ),
    };
    let readonly = match &hc.readonly_paths {
        Some(paths) => Some(paths.clone()),
        None if privileged => None,
        None => Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()),
    };

    let mut linux = Linux::default();
    linux
        .set_net_devices(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_sysctl((!sysctl.is_empty()).then_some(sysctl))
        .set_resources(Some(resources::linux_resources(hc, rules)?))
        .set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)))
        .set_namespaces(Some(namespaces::namespaces(&modes)))
        .set_devices(Some(linux_devices))
        .set_seccomp(seccomp)
        .set_rootfs_propagation(propagation)
        .set_masked_paths(masked)
        .set_readonly_paths(readonly)
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_memory_policy(None)
        .set_personality(None)
        .set_time_offsets(None);

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf())
        .set_readonly(read_only.then_some(true));

    let domainname = config
        .domainname
        .clone()
        .filter(|d| !d.is_empty() && !modes.uts_host);
    let annotations = hc.annotations.clone().filter(|a| !a.is_empty());
    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string())
        .set_process(Some(process))
        .set_root(Some(root))
        .set_hostname((!modes.uts_host).then_some(hostname))
        .set_domainname(domainname)
        .set_mounts(Some(spec_mounts))
        .set_hooks(None)
        .set_annotations(annotations)
        .set_linux(Some(linux));
    Ok(spec)
}

/// The device nodes to create and the device cgroup rules.
fn device_rules(
    hc: &HostConfig,
    privileged: bool,
    host: &Host,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut nodes = Vec::new();
    let mut rules = if privileged {
        nodes = devices::host_devices(&host.dev)?;
        devices::allow_all()
    } else {
        devices::default_rules()
    };
    for mapping in hc.devices.iter().flatten() {
        if privileged && mapping.path_on_host == mapping.path_in_container {
            // Already there: privileged containers get all of /dev.
            continue;
        }
        let (devs, dev_rules) = devices::from_mapping(mapping)?;
        nodes.extend(devs);
        if !privileged {
            rules.extend(dev_rules);
        }
    }
    if !privileged {
        for rule in hc.device_cgroup_rules.iter().flatten() {
            rules.push(devices::parse_cgroup_rule(rule)?);
        }
    }
    Ok((nodes, rules))
}

/// Docker's network sysctls for a container with its own network namespace (those this
/// kernel has), then the container's own.
fn sysctls(hc: &HostConfig, modes: &namespaces::Modes, host: &Host) -> HashMap<String, String> {
    let mut sysctl = HashMap::new();
    if !modes.net_host {
        for (key, value) in NETWORK_SYSCTLS {
            let is_ping = key == "net.ipv4.ping_group_range";
            let exists = Path::new("/proc/sys").join(key.replace('.', "/")).exists();
            if exists && !(is_ping && host.in_user_namespace) {
                sysctl.insert(key.to_string(), value.to_string());
            }
        }
    }
    sysctl.extend(hc.sysctls.clone().unwrap_or_default());
    sysctl
}

/// The seccomp filter: none when privileged or unconfined, else the chosen profile
/// converted for the container's capabilities.
fn seccomp_filter(
    choice: &SeccompChoice,
    privileged: bool,
    cap_list: &[String],
    host: &Host,
) -> Result<Option<LinuxSeccomp>> {
    if privileged {
        return Ok(None);
    }
    let profile = match choice {
        SeccompChoice::Unconfined => return Ok(None),
        // Without kernel support Docker runs the default unconfined (with a warning)...
        SeccompChoice::Default if !host.seccomp_supported => return Ok(None),
        // ...but refuses to ignore a profile asked for by name.
        SeccompChoice::Profile(_) if !host.seccomp_supported => {
            return Err(Error::SeccompProfile(
                "seccomp is not enabled in your kernel, cannot run a custom seccomp profile".into(),
            ))
        }
        SeccompChoice::Default => seccomp::DEFAULT_PROFILE,
        SeccompChoice::Profile(json) => json.as_str(),
    };
    seccomp::convert(profile, cap_list, &host.seccomp)
}

/// The mounts in moby's order, and the root propagation a shared or slave mount needs.
fn assemble_mounts(
    input: &SpecInput,
    modes: &namespaces::Modes,
    init: Option<&Path>,
    privileged: bool,
    read_only: bool,
    writable_cgroups: bool,
) -> Result<(Vec<Mount>, Option<String>)> {
    let hc = input.host_config;
    let shm_size = hc.shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE);

    let mut user: Vec<MountSpec> = input.mounts.to_vec();
    let covered = |user: &[MountSpec], dest: &str| {
        user.iter()
            .any(|m| Path::new(&m.destination) == Path::new(dest))
    };
    let network_files = [
        (input.resolv_conf_path, "/etc/resolv.conf"),
        (input.hostname_path, "/etc/hostname"),
        (input.hosts_path, "/etc/hosts"),
    ];
    for (source, destination) in network_files {
        if !covered(&user, destination) && source.exists() {
            user.push(MountSpec::bind(destination, source, read_only));
        }
    }
    if modes.ipc == IpcMode::Host && !covered(&user, "/dev/shm") {
        user.push(MountSpec::bind("/dev/shm", Path::new("/dev/shm"), false));
    }
    mounts::sort_by_depth(&mut user);

    let user_dev = covered(&user, "/dev");
    let mut all: Vec<Mount> = mounts::default_mounts(shm_size)
        .into_iter()
        .filter(|m| {
            let dest = m.destination().to_string_lossy();
            let replaced = covered(&user, &dest) || (user_dev && dest.starts_with("/dev/"));
            let unwanted = dest == "/dev/shm" && modes.ipc == IpcMode::None;
            !replaced && !unwanted
        })
        .collect();
    if let Some(init) = init {
        all.push(mounts::mount(INIT_PATH, "bind", init, &["bind", "ro"]));
    }
    let defaults = all.len();

    let mountinfo = if user.iter().any(|m| {
        matches!(
            m.propagation.as_deref(),
            Some("shared" | "rshared" | "slave" | "rslave")
        )
    }) {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(Error::host("reading /proc/self/mountinfo"))?
    } else {
        String::new()
    };
    let mut propagation = None;
    for m in &user {
        let (mount, needs) = mounts::to_oci(m, &mountinfo)?;
        propagation = match (propagation, needs) {
            (Some(RootPropagation::Shared), _) | (_, Some(RootPropagation::Shared)) => {
                Some(RootPropagation::Shared)
            }
            (p, n) => p.or(n),
        };
        all.push(mount);
    }

    for m in &mut all[..defaults] {
        let dest = m.destination().to_string_lossy().into_owned();
        let pseudo = matches!(
            dest.as_str(),
            "/proc" | "/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/dev"
        );
        if read_only && !pseudo && !mounts::has_option(m, "ro") {
            m.options_mut()
                .get_or_insert_with(Vec::new)
                .push("ro".to_string());
        }
        let cgroup = m.typ().as_deref() == Some("cgroup");
        if (privileged && dest == "/sys") || (cgroup && (privileged || writable_cgroups)) {
            mounts::clear_read_only(m);
        }
    }
    let propagation = propagation.map(|p| match p {
        RootPropagation::Shared => "shared".to_string(),
        RootPropagation::Slave => "rslave".to_string(),
    });
    Ok((all, propagation))
}
