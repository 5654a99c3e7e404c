//! berth-daemon: builds the engine's services from the data root and serves them.
//!
//! `run` is the whole wiring: lock the data root (one daemon per root), open the image
//! stores (which collect what a crash left behind), the volume store and the container
//! store (which finds running containers again through their monitors), gather the host
//! facts `/info` reports, bind the unix socket root-only, and serve the Docker Engine API
//! until SIGINT/SIGTERM. Stopping the daemon leaves containers running.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use berth_api::{Backend, SystemFacts};
use berth_container::ContainerService;
pub use berth_image::service::SnapshotterKind;
use berth_image::{ImageService, ServiceOptions};
use berth_network::NetworkService;
use berth_volume::VolumeStore;

/// How `berth daemon` was asked to run.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where to listen, as `unix:///path/to.sock` (default `unix:///run/berth/berth.sock`).
    pub hosts: Vec<String>,
    /// Where images, layers and metadata live (default `/var/lib/berth`).
    pub data_root: PathBuf,
    /// Registries to reach over plain HTTP or unverified TLS (loopback ones always are).
    pub insecure_registries: Vec<String>,
    /// Which snapshotter keeps layers: overlayfs, native copies, or `Auto` (overlayfs when
    /// the data root supports it).
    pub storage_driver: SnapshotterKind,
    /// Log every request.
    pub debug: bool,
    /// Where running state lives: monitors' sockets and the runtime's state (tmpfs).
    pub exec_root: PathBuf,
    /// The OCI runtime (runc-compatible CLI); default: `berth-runc` next to this binary.
    pub runtime: Option<PathBuf>,
    /// `--bip`: the default bridge's gateway address and prefix.
    pub bip: Option<String>,
    /// `--default-address-pool base=CIDR,size=N`.
    pub default_address_pools: Vec<String>,
    /// The default bridge's interface name (`berth0`), or `none`: no default network.
    pub bridge_name: String,
    pub mtu: Option<u32>,
    /// `nftables` or `iptables`; `None`: nftables when `nft` works.
    pub firewall_backend: Option<String>,
}

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";

/// A companion program: next to this binary first (an install or a cargo target dir),
/// then on PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The container service: records under the data root, running state under the exec root.
fn open_containers(
    opts: &DaemonOptions,
    images: Arc<ImageService>,
    volumes: Arc<VolumeStore>,
    networks: Arc<NetworkService>,
    facts: &SystemFacts,
) -> anyhow::Result<Arc<ContainerService>> {
    // Monitor sockets live at <exec-root>/m/<64-hex id>/console.sock (the longest): keep
    // that under the 108 bytes a unix socket path may have.
    let longest = opts
        .exec_root
        .join("m")
        .join("x".repeat(64))
        .join("console.sock");
    if longest.as_os_str().len() >= 108 {
        bail!(
            "--exec-root {} is too long: monitor sockets under it would exceed the 107 bytes a unix socket path may have",
            opts.exec_root.display()
        );
    }
    let runtime = match &opts.runtime {
        Some(p) => p.clone(),
        None => find_program("berth-runc")
            .context("the OCI runtime berth-runc was found neither next to berth nor on PATH (or pass --runtime)")?,
    };
    let monitor = find_program("berth-monitor")
        .context("berth-monitor was found neither next to berth nor on PATH")?;
    let cfg = berth_container::Config {
        root: opts.data_root.join("containers"),
        exec_root: opts.exec_root.clone(),
        monitor,
        runtime: berth_container::runtime::Runtime {
            path: runtime,
            root: opts.exec_root.join("runtime"),
            // berth-runc found next to this binary is this build's: its library is ours.
            in_process: opts.runtime.is_none(),
        },
        init: find_program("docker-init").or_else(|| {
            let t = PathBuf::from("/usr/bin/tini-static");
            t.is_file().then_some(t)
        }),
        cgroup_v2: facts.cgroup_version == "2",
        ncpu: facts.ncpu,
    };
    ContainerService::open(cfg, images, volumes, networks).context("opening the container store")
}

/// The networks: the predefined ones made on first start, every bridge made again, the
/// netfilter rules rebuilt.
fn open_networks(opts: &DaemonOptions) -> anyhow::Result<Arc<NetworkService>> {
    let bip = match &opts.bip {
        Some(b) => Some(
            b.parse::<ipnet::Ipv4Net>()
                .with_context(|| format!("--bip {b}: not an IPv4 address with a prefix"))?,
        ),
        None => None,
    };
    let pools = opts
        .default_address_pools
        .iter()
        .map(|p| {
            p.parse()
                .with_context(|| format!("--default-address-pool {p}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let default_bridge = match opts.bridge_name.as_str() {
        "none" => None,
        b if b.is_empty() || b.len() > 15 => {
            bail!("--bridge {b:?}: an interface name of 1 to 15 characters, or none")
        }
        b => Some(b.to_string()),
    };
    NetworkService::open(berth_network::Config {
        root: opts.data_root.join("network"),
        default_bridge,
        bip,
        pools,
        mtu: opts.mtu,
        resolv_conf: PathBuf::from("/etc/resolv.conf"),
        firewall: match opts.firewall_backend.as_deref() {
            None | Some("") => None,
            Some("nftables") => Some(berth_network::firewall::Backend::Nftables),
            Some("iptables") => Some(berth_network::firewall::Backend::Iptables),
            Some(other) => bail!("--firewall-backend {other:?}: nftables or iptables"),
        },
    })
    .context("opening the networks")
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let hosts = if opts.hosts.is_empty() {
        vec![DEFAULT_HOST.to_string()]
    } else {
        opts.hosts.clone()
    };
    let sockets: Vec<PathBuf> = hosts
        .iter()
        .map(|h| socket_path(h))
        .collect::<anyhow::Result<_>>()?;
    fs::create_dir_all(&opts.data_root)
        .with_context(|| format!("creating {}", opts.data_root.display()))?;
    fs::set_permissions(&opts.data_root, fs::Permissions::from_mode(0o711))
        .with_context(|| format!("securing {}", opts.data_root.display()))?;
    let _lock = lock_data_root(&opts.data_root)?;

    let images = ImageService::open(
        &opts.data_root.join("image"),
        ServiceOptions {
            insecure_registries: opts.insecure_registries.clone(),
            snapshotter: opts.storage_driver,
        },
    )
    .context("opening the image store")?;
    let mut facts = gather_facts(&opts, images.driver())?;
    let images = Arc::new(images);
    let volumes = Arc::new(
        VolumeStore::open(&opts.data_root.join("volumes")).context("opening the volume store")?,
    );
    fs::create_dir_all(&opts.exec_root)
        .with_context(|| format!("creating {}", opts.exec_root.display()))?;
    fs::set_permissions(&opts.exec_root, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("securing {}", opts.exec_root.display()))?;
    let networks = open_networks(&opts)?;
    let containers = open_containers(
        &opts,
        images.clone(),
        volumes.clone(),
        networks.clone(),
        &facts,
    )?;
    facts.runtime_path = containers.cfg.runtime.path.display().to_string();
    facts.init_binary = containers
        .cfg
        .init
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let backend = Arc::new(Backend {
        images,
        containers: containers.clone(),
        volumes,
        networks,
        facts,
        debug: opts.debug,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        // Running containers are found again through their monitors; restart policies apply.
        containers.restore().await;
        let mut servers = Vec::new();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        for path in &sockets {
            let listener = bind_socket(path)?;
            eprintln!("berth daemon: API listening on {}", path.display());
            let backend = backend.clone();
            let mut stop = stop_rx.clone();
            servers.push(tokio::spawn(async move {
                berth_api::serve(listener, backend, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
            }));
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("berth daemon: shutting down");
        let _ = stop_tx.send(true);
        for s in servers {
            let _ = s.await;
        }
        for path in &sockets {
            let _ = fs::remove_file(path);
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// `unix:///run/berth/berth.sock` -> `/run/berth/berth.sock`.
fn socket_path(host: &str) -> anyhow::Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        Some(p) => bail!("--host {host}: the socket path must be absolute, got {p:?}"),
        None => {
            bail!("--host {host}: berth serves the API on unix sockets only (unix:///path/to.sock)")
        }
    }
}

/// Binds a root-only socket, replacing a stale one but never a live daemon's.
fn bind_socket(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o711))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use by another daemon", path.display());
        }
        fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    // Created with no access for others from the start, then opened to root's group.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = tokio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener.with_context(|| format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))?;
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(0)),
        Some(nix::unistd::Gid::from_raw(0)),
    )
    .with_context(|| format!("chown {}", path.display()))?;
    Ok(listener)
}

/// One daemon per data root: an exclusive lock held for the daemon's life.
fn lock_data_root(root: &Path) -> anyhow::Result<fs::File> {
    let path = root.join("berth.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        bail!("{} is in use by another berth daemon", root.display());
    }
    Ok(f)
}

fn gather_facts(opts: &DaemonOptions, driver: &str) -> anyhow::Result<SystemFacts> {
    let uname = nix::sys::utsname::uname().context("uname")?;
    let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let operating_system = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    let mem_total = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    let cgroup_version = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    Ok(SystemFacts {
        version: env!("CARGO_PKG_VERSION").to_string(),
        data_root: opts.data_root.display().to_string(),
        hostname: uname.nodename().to_string_lossy().into_owned(),
        kernel_version: uname.release().to_string_lossy().into_owned(),
        operating_system,
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        mem_total,
        cgroup_version: cgroup_version.into(),
        storage_driver: driver.to_string(),
        insecure_registries: opts.insecure_registries.clone(),
        daemon_id: daemon_id(&opts.data_root)?,
        runtime_name: "berth-runc".into(),
        runtime_path: String::new(),
        init_binary: String::new(),
    })
}

/// A stable id for this data root, made once.
fn daemon_id(root: &Path) -> anyhow::Result<String> {
    let path = root.join("engine-id");
    if let Ok(id) = fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let mut seed = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))?;
    let id = hex::encode(seed);
    let tmp = root.join("engine-id.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(id.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_must_be_unix_sockets() {
        assert_eq!(
            socket_path("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(socket_path("tcp://0.0.0.0:2375")
            .unwrap_err()
            .to_string()
            .contains("unix sockets only"));
        assert!(socket_path("unix://rel.sock").is_err());
    }
}
