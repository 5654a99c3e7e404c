//! The container service: every container's record and task, and the operations of the
//! Docker API on them. One [`Container`] per record; lifecycle operations on a container
//! take its `op` lock so create/start/stop/remove never interleave.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_image::ImageService;
use berth_network::NetworkService;
use berth_volume::VolumeStore;
use bollard_stubs::models::{ContainerConfig, HostConfig, NetworkingConfig, RestartPolicyNameEnum};
use tokio::sync::{oneshot, watch};

use crate::error::{ContainerError, Result};
use crate::events::{Event, EventLog};
use crate::monitor::{self, Conn, Launch, Mode};
use crate::network::Mode as NetMode;
use crate::record::{ContainerRecord, State, Status, ZERO_TIME};
use crate::runtime::Runtime;
use crate::{mounts, names, netns, network, rootfs, spec};

/// Where things live and which programs run containers.
#[derive(Debug, Clone)]
pub struct Config {
    /// `<data-root>/containers`: records, logs, hostname/hosts/resolv.conf files.
    pub root: PathBuf,
    /// `<exec-root>`: monitor directories (`m/<id>`) and the runtime's state (`runtime`).
    pub exec_root: PathBuf,
    pub monitor: PathBuf,
    pub runtime: Runtime,
    /// Host path of the init for `--init` (tini-static / docker-init), if there is one.
    pub init: Option<PathBuf>,
    pub cgroup_v2: bool,
    pub ncpu: usize,
}

/// What waiters watch: how often the container exited, its last exit code, and whether it
/// is gone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watch {
    pub exits: u64,
    pub exit_code: i64,
    pub running: bool,
    pub removed: bool,
}

/// An attach that arrived before its container started: told the monitor's directory at
/// start, it connects and answers on `ready` before the process is let go.
pub struct PendingAttach {
    pub dir: PathBuf,
    pub ready: oneshot::Sender<()>,
}

pub struct Container {
    pub id: String,
    pub(crate) record: Mutex<ContainerRecord>,
    pub(crate) watch: watch::Sender<Watch>,
    pub(crate) op: tokio::sync::Mutex<()>,
    pub(crate) attach_waiters: Mutex<Vec<oneshot::Sender<PendingAttach>>>,
}

impl Container {
    pub fn record(&self) -> ContainerRecord {
        self.record.lock().expect("record lock").clone()
    }

    pub fn status(&self) -> Status {
        self.record.lock().expect("record lock").state.status
    }

    pub fn subscribe(&self) -> watch::Receiver<Watch> {
        self.watch.subscribe()
    }

    /// Waits to be told the monitor's directory when the container starts.
    pub fn wait_for_start(&self) -> oneshot::Receiver<PendingAttach> {
        let (tx, rx) = oneshot::channel();
        self.attach_waiters.lock().expect("attach lock").push(tx);
        rx
    }
}

pub struct ContainerService {
    pub cfg: Config,
    pub images: Arc<ImageService>,
    pub volumes: Arc<VolumeStore>,
    pub networks: Arc<NetworkService>,
    pub(crate) containers: RwLock<HashMap<String, Arc<Container>>>,
    pub(crate) execs: Mutex<HashMap<String, Arc<crate::exec::Exec>>>,
    pub events: EventLog,
}

/// Options of `docker stop` / `restart`.
#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    pub timeout: Option<i64>,
    pub signal: Option<String>,
}

impl ContainerService {
    /// Opens the store of containers and finds every container again: running ones are
    /// watched through their monitors, those that ended while the daemon was away get their
    /// exit recorded, and restart policies apply.
    pub fn open(
        cfg: Config,
        images: Arc<ImageService>,
        volumes: Arc<VolumeStore>,
        networks: Arc<NetworkService>,
    ) -> Result<Arc<ContainerService>> {
        for d in [
            &cfg.root,
            &cfg.exec_root.join("m"),
            &cfg.exec_root.join("x"),
            &cfg.runtime.root,
        ] {
            std::fs::create_dir_all(d)
                .map_err(ContainerError::io(format!("creating {}", d.display())))?;
        }
        let events = EventLog::default();
        let svc = Arc::new(ContainerService {
            cfg,
            images,
            volumes,
            networks,
            containers: RwLock::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            events,
        });
        let entries =
            std::fs::read_dir(&svc.cfg.root).map_err(ContainerError::io("listing containers"))?;
        for entry in entries.flatten() {
            let dir = entry.path();
            match ContainerRecord::load(&dir) {
                Ok(rec) => {
                    // Volume references live in memory: register them again, and the
                    // mounts a running container holds.
                    for m in &rec.mounts {
                        if m.kind == crate::record::MountType::Volume {
                            let _ = svc.volumes.add_ref(&m.name, &rec.id);
                            if rec.state.status.is_live() {
                                let _ = svc.volumes.mount(&m.name, &rec.id);
                            }
                        }
                    }
                    svc.insert(rec);
                }
                Err(_) => {
                    // A create that crashed before its record was written: nothing refers to it.
                    if !dir.join(crate::record::RECORD_FILE).exists() {
                        let id = entry.file_name().to_string_lossy().to_string();
                        let _ = rootfs::unmount_root(&dir.join("rootfs"));
                        let _ = rootfs::remove(svc.images.snapshots(), &id);
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                }
            }
        }
        Ok(svc)
    }

    /// After [`open`](Self::open), inside the async runtime and before the API answers:
    /// the exits of containers whose process ended while the daemon was away are recorded
    /// (so the first inspect already tells), running containers' monitors are watched
    /// again, and restart policies apply.
    pub async fn restore(self: &Arc<Self>) {
        // The network state of running containers comes back first, then the rules once.
        for c in self.all() {
            let rec = c.record();
            let dir = self.monitor_dir(&c.id);
            if (rec.state.status.is_live() || rec.state.status == Status::Restarting)
                && monitor::alive(&dir)
                && monitor::read_exit(&dir).is_none()
                && !rec.endpoints.is_empty()
            {
                let dns = network::dns_servers(&rec.host_config).unwrap_or_default();
                self.networks.restore(
                    &sandbox_spec(&rec, &dir.join("netns"), &[], &dns),
                    &berth_network::Attached {
                        endpoints: rec.endpoints.clone(),
                        ports: rec.ports.clone(),
                    },
                );
            }
        }
        if let Err(e) = self.networks.rebuild_rules() {
            eprintln!("berth daemon: rebuilding netfilter rules: {e}");
        }
        for c in self.all() {
            let rec = c.record();
            let dir = self.monitor_dir(&c.id);
            if rec.state.status.is_live() || rec.state.status == Status::Restarting {
                if monitor::alive(&dir) && monitor::read_exit(&dir).is_none() {
                    self.spawn_exit_watcher(c.clone(), dir);
                } else {
                    self.on_exit(&c).await;
                }
            } else if wants_restart_at_boot(&rec) {
                let svc = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = svc.start(&c.id).await {
                        eprintln!("berth daemon: restarting {}: {e}", c.id);
                    }
                });
            }
        }
    }

    fn insert(&self, rec: ContainerRecord) -> Arc<Container> {
        let w = Watch {
            exits: 0,
            exit_code: rec.state.exit_code,
            running: rec.state.status.is_live(),
            removed: false,
        };
        let c = Arc::new(Container {
            id: rec.id.clone(),
            record: Mutex::new(rec),
            watch: watch::Sender::new(w),
            op: tokio::sync::Mutex::new(()),
            attach_waiters: Mutex::new(Vec::new()),
        });
        self.containers
            .write()
            .expect("containers lock")
            .insert(c.id.clone(), c.clone());
        c
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn count(&self) -> (usize, usize, usize, usize) {
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        let all = self.all();
        for c in &all {
            match c.status() {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        (all.len(), running, paused, stopped)
    }

    /// Docker's lookup: full id, name (with or without `/`), then a unique id prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let map = self.containers.read().expect("containers lock");
        if let Some(c) = map.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.trim_start_matches('/');
        if let Some(c) = map
            .values()
            .find(|c| c.record.lock().expect("record lock").name == name)
        {
            return Ok(c.clone());
        }
        if !name_or_id.is_empty() {
            let hits: Vec<_> = map
                .values()
                .filter(|c| c.id.starts_with(name_or_id))
                .collect();
            match hits.len() {
                1 => return Ok(hits[0].clone()),
                0 => {}
                _ => {
                    return Err(ContainerError::Invalid(format!(
                        "multiple IDs found with provided prefix: {name_or_id}"
                    )))
                }
            }
        }
        Err(ContainerError::NotFound(name_or_id.to_string()))
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join(id)
    }

    pub fn monitor_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("m").join(id)
    }

    /// The container's cgroup (the spec's `cgroupsPath`), where stats and the OOM counter
    /// are read.
    pub fn cgroups_path(&self, id: &str) -> String {
        format!("/berth/{id}")
    }

    pub fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    pub fn emit(&self, c: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        self.events.publish(Event::container(c, action, extra));
    }

    /// `POST /containers/create`.
    pub fn create(
        &self,
        name: Option<&str>,
        mut config: ContainerConfig,
        mut host_config: HostConfig,
        networking: Option<NetworkingConfig>,
    ) -> Result<(String, Vec<String>)> {
        let image_name = config
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ContainerError::Invalid("No image was specified".into()))?;
        let image_id = self.images.resolve(&image_name)?;
        let image_config = self.images.config(&image_id)?;
        spec::merge::merge_image_config(&mut config, image_config.container_config());
        spec::validate_host_config(&host_config, self.cfg.ncpu)?;
        // Docker's default swap: as much again as the memory limit.
        if host_config.memory.unwrap_or(0) > 0 && host_config.memory_swap.unwrap_or(0) == 0 {
            host_config.memory_swap = host_config.memory.map(|m| m * 2);
        }
        let args = spec::merge::args(&config)?;
        if let Some(sig) = config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            parse_signal(sig)?;
        }
        if let Some(p) = &host_config.restart_policy {
            if host_config.auto_remove == Some(true)
                && !matches!(
                    p.name,
                    None | Some(RestartPolicyNameEnum::EMPTY) | Some(RestartPolicyNameEnum::NO)
                )
            {
                return Err(ContainerError::Invalid(
                    "can't create 'AutoRemove' container with restart policy".into(),
                ));
            }
        }
        let networks =
            network::resolve(&self.networks, &mut host_config, networking.as_ref(), |n| {
                Ok(self.get(n)?.id.clone())
            })?;
        network::port_requests(&config, &host_config)?;
        network::dns_servers(&host_config)?;
        let mut warnings = Vec::new();
        if network::mode(&host_config) == NetMode::Host
            && host_config
                .port_bindings
                .as_ref()
                .is_some_and(|p| !p.is_empty())
        {
            warnings.push("Published ports are discarded when using host network mode".into());
        }
        let shared = match network::mode(&host_config) {
            NetMode::Container(other) => Some(self.get(&other)?.record()),
            _ => None,
        };
        // The CLI sends `{"Type": ""}` for "the daemon's default": json-file.
        let log_config = host_config.log_config.get_or_insert_with(Default::default);
        if log_config.typ.as_deref().unwrap_or("").is_empty() {
            log_config.typ = Some("json-file".into());
        }
        log_config.config.get_or_insert_with(HashMap::new);
        let log_type = host_config
            .log_config
            .as_ref()
            .and_then(|l| l.typ.clone())
            .unwrap_or_default();
        if !(log_type.is_empty() || log_type == "json-file") {
            return Err(ContainerError::Invalid(format!(
                "logging driver {log_type:?} is not supported: berth keeps json-file logs"
            )));
        }
        crate::logopts::LogOpts::parse(host_config.log_config.as_ref())?;

        let id = names::new_id();
        let name = {
            let map = self.containers.read().expect("containers lock");
            let taken = |n: &str| {
                map.values()
                    .find(|c| c.record.lock().expect("record lock").name == n)
                    .map(|c| c.id.clone())
            };
            match name {
                Some(n) if !n.is_empty() => {
                    let n = n.trim_start_matches('/').to_string();
                    if !names::valid(&n) {
                        return Err(ContainerError::BadName(n));
                    }
                    if let Some(other) = taken(&n) {
                        return Err(ContainerError::NameInUse { name: n, id: other });
                    }
                    n
                }
                _ => loop {
                    let n = names::random_name();
                    if taken(&n).is_none() {
                        break n;
                    }
                },
            }
        };
        let mount_points = mounts::resolve(&config, &host_config, &self.volumes)?;

        let dir = self.container_dir(&id);
        std::fs::create_dir_all(&dir)
            .map_err(ContainerError::io(format!("creating {}", dir.display())))?;
        let made = (|| -> Result<ContainerRecord> {
            let hostname = config
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| {
                    if host_config.network_mode.as_deref() == Some("host") {
                        nix::unistd::gethostname()
                            .map(|h| h.to_string_lossy().to_string())
                            .unwrap_or_else(|_| id[..12].to_string())
                    } else {
                        id[..12].to_string()
                    }
                });
            config.hostname = Some(hostname.clone());
            let files = match &shared {
                // The other container's namespace, hostname and /etc files.
                Some(other) => {
                    config.hostname = other.config.hostname.clone();
                    crate::etcfiles::EtcFiles {
                        hostname: other.hostname_path.clone().into(),
                        hosts: other.hosts_path.clone().into(),
                        resolv_conf: other.resolv_conf_path.clone().into(),
                    }
                }
                None => crate::etcfiles::write_all(
                    &dir,
                    &hostname,
                    config.domainname.as_deref(),
                    &host_config,
                    network::uses_embedded_dns(&networks),
                )?,
            };
            let parent = self.images.top_layer(&image_id)?;
            rootfs::prepare(
                self.images.snapshots(),
                &id,
                parent.as_deref(),
                &dir.join("init-mnt"),
            )?;
            let (path, rest) = args.split_first().expect("args are never empty");
            let rec = ContainerRecord {
                id: id.clone(),
                name: name.clone(),
                created: berth_image::time::rfc3339(berth_image::time::now_nanos()),
                image: image_name.clone(),
                image_id: image_id.to_string(),
                config: config.clone(),
                host_config: host_config.clone(),
                path: path.clone(),
                args: rest.to_vec(),
                state: State::default(),
                mounts: mount_points.clone(),
                restart_count: 0,
                manually_stopped: false,
                driver: self.images.driver().to_string(),
                log_path: dir
                    .join(format!("{id}-json.log"))
                    .to_string_lossy()
                    .to_string(),
                hostname_path: files.hostname.to_string_lossy().to_string(),
                hosts_path: files.hosts.to_string_lossy().to_string(),
                resolv_conf_path: files.resolv_conf.to_string_lossy().to_string(),
                networks: networks.clone(),
                endpoints: Vec::new(),
                ports: Vec::new(),
            };
            rec.save(&dir)?;
            Ok(rec)
        })();
        let rec = match made {
            Ok(r) => r,
            Err(e) => {
                let _ = rootfs::remove(self.images.snapshots(), &id);
                let _ = std::fs::remove_dir_all(&dir);
                mounts::release_new_volumes(&mount_points, &self.volumes);
                return Err(e);
            }
        };
        for m in &rec.mounts {
            if m.kind == crate::record::MountType::Volume {
                let _ = self.volumes.add_ref(&m.name, &id);
            }
        }
        self.emit(&rec, "create", &[]);
        self.insert(rec);
        Ok((id, warnings))
    }

    /// `POST /containers/{id}/start`. `Ok(false)` when it was already running (Docker's 304).
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<bool> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        match c.status() {
            Status::Running | Status::Restarting => return Ok(false),
            Status::Paused => {
                return Err(ContainerError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(ContainerError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            Status::Created | Status::Exited => {}
        }
        {
            let mut r = c.record.lock().expect("record lock");
            r.manually_stopped = false;
        }
        let started = self.start_locked(&c).await;
        drop(_op);
        if let Err(e) = started {
            // A `--rm` container that cannot start is removed, as Docker does.
            if c.record().host_config.auto_remove == Some(true) {
                let _ = self.remove(&c.id, true, true).await;
            }
            return Err(e);
        }
        Ok(true)
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let id = c.id.clone();
        let dir = self.monitor_dir(&id);
        let svc = self.clone();
        let prepared = {
            let c = c.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || svc.prepare_task(&c, &dir))
                .await
                .map_err(|e| ContainerError::Runtime(format!("start: {e}")))?
        };
        let result = match prepared {
            Ok(rec) => self.run_task(c, &dir, &rec).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let msg = e.to_string();
            let svc = self.clone();
            let c2 = c.clone();
            let dir2 = dir.clone();
            let _ = tokio::task::spawn_blocking(move || svc.teardown_task(&c2, &dir2)).await;
            let rec = {
                let mut r = c.record.lock().expect("record lock");
                r.state.error = msg.clone();
                r.state.exit_code = start_failure_code(&msg);
                r.state.pid = 0;
                let _ = r.save(&self.container_dir(&id));
                r.clone()
            };
            c.watch.send_modify(|w| {
                w.running = false;
                w.exit_code = rec.state.exit_code;
            });
            return Err(e);
        }
        Ok(())
    }

    /// Mounts the rootfs and volumes, writes the bundle, and starts the monitor (which runs
    /// the runtime's create). Blocking.
    fn prepare_task(&self, c: &Container, dir: &Path) -> Result<ContainerRecord> {
        let rec = c.record();
        let root = self.rootfs_dir(&rec.id);
        // What a crashed earlier start may have left.
        netns::remove(&dir.join("netns"));
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)
            .map_err(ContainerError::io(format!("creating {}", dir.display())))?;
        rootfs::mount(self.images.snapshots(), &rec.id, &root)?;
        let specs = mounts::activate(&rec, &root, &self.volumes)?;
        if let Some(wd) = rec.config.working_dir.as_deref().filter(|w| !w.is_empty()) {
            rootfs::mkdir_all_in(&root, wd)?;
        }
        let cgroups_path = self.cgroups_path(&rec.id);
        let input = spec::SpecInput {
            id: &rec.id,
            rootfs: &root,
            config: &rec.config,
            host_config: &rec.host_config,
            mounts: &specs,
            hostname_path: Path::new(&rec.hostname_path),
            hosts_path: Path::new(&rec.hosts_path),
            resolv_conf_path: Path::new(&rec.resolv_conf_path),
            cgroups_path,
            init_path: if rec.host_config.init == Some(true) {
                Some(self.cfg.init.as_deref().ok_or_else(|| {
                    ContainerError::Invalid(
                        "--init: no init binary found (install tini: docker-init or tini-static)"
                            .into(),
                    )
                })?)
            } else {
                None
            },
            cgroup_v2: self.cfg.cgroup_v2,
        };
        let mut oci = spec::build(&input)?;
        let rec = match network::mode(&rec.host_config) {
            NetMode::Host => rec,
            NetMode::Container(other) => {
                let ns = self.monitor_dir(&other).join("netns");
                let running = self
                    .get(&other)
                    .map(|o| o.status().is_live())
                    .unwrap_or(false);
                if !running || !ns.exists() {
                    return Err(ContainerError::Conflict(format!(
                        "cannot join network namespace of a non running container: {other}"
                    )));
                }
                join_network_namespace(&mut oci, &ns);
                rec
            }
            NetMode::None | NetMode::Bridge => {
                // The engine's sandbox: the runtime joins a namespace whose loopback is up,
                // plugged into the container's networks.
                let ns = dir.join("netns");
                netns::create(&ns)?;
                join_network_namespace(&mut oci, &ns);
                if rec.networks.is_empty() {
                    rec
                } else {
                    self.plug_networks(c, &rec, &ns)?
                }
            }
        };
        let bytes = serde_json::to_vec(&oci)
            .map_err(|e| ContainerError::Invalid(format!("encoding the OCI spec: {e}")))?;
        crate::record::write_atomic(&dir.join("config.json"), &bytes)?;
        let opts = crate::logopts::LogOpts::parse(rec.host_config.log_config.as_ref())?;
        let log_path = PathBuf::from(&rec.log_path);
        monitor::launch(&Launch {
            binary: &self.cfg.monitor,
            runtime: &self.cfg.runtime,
            id: &rec.id,
            dir,
            mode: Mode::Container {
                bundle: dir,
                log_path: &log_path,
                log_max_size: opts.max_size,
                log_max_files: opts.max_files,
            },
            terminal: rec.config.tty == Some(true),
            stdin: rec.config.open_stdin == Some(true),
        })?;
        Ok(rec)
    }

    /// Attaches the namespace to the record's networks, keeps the endpoints in the record
    /// and writes the container's own addresses into its /etc/hosts.
    fn plug_networks(
        &self,
        c: &Container,
        rec: &ContainerRecord,
        ns: &Path,
    ) -> Result<ContainerRecord> {
        let ports = network::port_requests(&rec.config, &rec.host_config)?;
        let dns = network::dns_servers(&rec.host_config)?;
        let attached = self.networks.attach(&sandbox_spec(rec, ns, &ports, &dns))?;
        let own: Vec<std::net::IpAddr> = attached
            .endpoints
            .iter()
            .flat_map(|e| [e.ipv4, e.ipv6])
            .flatten()
            .map(|n| n.addr())
            .collect();
        let mut r = c.record.lock().expect("record lock");
        r.endpoints = attached.endpoints;
        r.ports = attached.ports;
        let written = crate::etcfiles::write_hosts(
            Path::new(&r.hosts_path),
            r.config.hostname.as_deref().unwrap_or(""),
            r.config.domainname.as_deref(),
            &r.host_config,
            &own,
        );
        // Not saved here: the start records the container running with them.
        if let Err(e) = written {
            let endpoints = std::mem::take(&mut r.endpoints);
            r.ports.clear();
            drop(r);
            self.networks.detach(&c.id, &endpoints);
            return Err(e);
        }
        Ok(r.clone())
    }

    /// Hands the monitor to waiting attaches, lets the process go, and records it running.
    async fn run_task(
        self: &Arc<Self>,
        c: &Arc<Container>,
        dir: &Path,
        rec: &ContainerRecord,
    ) -> Result<()> {
        let waiters: Vec<_> = std::mem::take(&mut *c.attach_waiters.lock().expect("attach lock"));
        let mut acks = Vec::new();
        for w in waiters {
            let (tx, rx) = oneshot::channel();
            if w.send(PendingAttach {
                dir: dir.to_path_buf(),
                ready: tx,
            })
            .is_ok()
            {
                acks.push(rx);
            }
        }
        for ack in acks {
            let _ = tokio::time::timeout(Duration::from_secs(5), ack).await;
        }
        let mut conn = Conn::connect(dir, monitor::FLAG_EXIT)
            .await
            .map_err(ContainerError::io("connecting to the container's monitor"))?;
        let mut early = Vec::new();
        let pid = conn.start(&mut early).await?;
        let updated = {
            let mut r = c.record.lock().expect("record lock");
            r.state = State {
                status: Status::Running,
                pid,
                exit_code: 0,
                error: String::new(),
                started_at: berth_image::time::rfc3339(berth_image::time::now_nanos()),
                finished_at: r.state.finished_at.clone(),
                oom_killed: false,
            };
            r.save(&self.container_dir(&rec.id))?;
            r.clone()
        };
        c.watch.send_modify(|w| {
            w.running = true;
            w.exit_code = 0;
        });
        self.emit(&updated, "start", &[]);
        self.watch_exit(c.clone(), conn);
        Ok(())
    }

    fn spawn_exit_watcher(self: &Arc<Self>, c: Arc<Container>, dir: PathBuf) {
        let svc = self.clone();
        tokio::spawn(async move {
            match Conn::connect(&dir, monitor::FLAG_EXIT).await {
                Ok(conn) => svc.watch_exit(c, conn),
                Err(_) => svc.on_exit(&c).await,
            }
        });
    }

    /// Waits on a monitor connection for the process's exit, then records it.
    fn watch_exit(self: &Arc<Self>, c: Arc<Container>, mut conn: Conn) {
        let svc = self.clone();
        tokio::spawn(async move {
            loop {
                match conn.reader.next().await {
                    Ok(Some((monitor::FRAME_EXIT, _))) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
            svc.on_exit(&c).await;
        });
    }

    /// The container's process ended (or its monitor vanished): collect the exit status,
    /// release the task's resources, then apply `--rm` and the restart policy.
    async fn on_exit(self: &Arc<Self>, c: &Arc<Container>) {
        let guard = c.op.lock().await;
        if !matches!(
            c.status(),
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return;
        }
        let dir = self.monitor_dir(&c.id);
        // A monitor that is still writing its exit record: give it a moment.
        let mut exit = monitor::read_exit(&dir);
        for _ in 0..50 {
            if exit.is_some() || !monitor::alive(&dir) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            exit = monitor::read_exit(&dir);
        }
        // Read before the runtime's delete removes the cgroup.
        let oom = crate::oom::killed(&self.cgroups_path(&c.id));
        let (code, finished, error) = match &exit {
            Some(e) => (e.exit_code as i64, e.finished_at.clone(), String::new()),
            None => (
                255,
                berth_image::time::rfc3339(berth_image::time::now_nanos()),
                "the container's monitor exited without recording an exit status".to_string(),
            ),
        };
        let rec = {
            let mut r = c.record.lock().expect("record lock");
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = finished;
            r.state.oom_killed = oom;
            r.state.error = error;
            r.clone()
        };
        if oom {
            self.emit(&rec, "oom", &[]);
        }
        self.emit(&rec, "die", &[("exitCode", code.to_string())]);
        // Waiters hear of the exit now; the task's resources are released after, still
        // under the container's lock, so a start or a removal waits for them. A crash in
        // between finds the monitor's exit record again at the next start.
        c.watch.send_modify(|w| {
            w.exits += 1;
            w.exit_code = code;
            w.running = false;
        });
        let svc = self.clone();
        let c2 = c.clone();
        let keep = rec.host_config.auto_remove != Some(true);
        let _ = tokio::task::spawn_blocking(move || {
            // A `--rm` container's record is about to go: no need to write it first.
            if keep {
                let _ = rec_save(&c2, &svc.container_dir(&c2.id));
            }
            svc.teardown_task(&c2, &dir);
        })
        .await;
        drop(guard);
        if rec.host_config.auto_remove == Some(true) {
            if let Err(e) = self.remove(&c.id, true, true).await {
                eprintln!("berth daemon: removing {} (--rm): {e}", c.id);
            }
            return;
        }
        if let Some(delay) = restart_delay(&rec, code) {
            self.schedule_restart(c.clone(), delay);
        }
    }

    fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, delay: Duration) {
        {
            let mut r = c.record.lock().expect("record lock");
            r.state.status = Status::Restarting;
            r.restart_count += 1;
            let _ = r.save(&self.container_dir(&c.id));
        }
        let svc = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            // A stop, kill or rm during the delay cancels the restart.
            let still = {
                let r = c.record.lock().expect("record lock");
                r.state.status == Status::Restarting && !r.manually_stopped
            };
            if !still {
                return;
            }
            if svc
                .containers
                .read()
                .expect("containers lock")
                .get(&c.id)
                .is_none()
            {
                return;
            }
            let rec = c.record();
            svc.emit(&rec, "restart", &[]);
            if let Err(e) = svc.start_locked(&c).await {
                eprintln!("berth daemon: restarting {}: {e}", c.id);
                let mut r = c.record.lock().expect("record lock");
                r.state.status = Status::Exited;
                let _ = r.save(&svc.container_dir(&c.id));
            }
        });
    }

    /// Releases what a task held: the runtime's state (and cgroup), volume mounts, the
    /// rootfs mount, the monitor's directory. Blocking; safe to repeat.
    fn teardown_task(&self, c: &Container, dir: &Path) {
        let rec = c.record();
        // Only a task that exists needs the runtime (a removal after the exit does not).
        if self.cfg.runtime.exists(&rec.id) {
            if let Err(e) = self.cfg.runtime.delete(&rec.id) {
                eprintln!(
                    "berth daemon: deleting the runtime state of {}: {e}",
                    rec.id
                );
            }
        }
        mounts::deactivate(&rec, &self.volumes);
        if let Err(e) = rootfs::unmount_root(&self.rootfs_dir(&rec.id)) {
            eprintln!("berth daemon: unmounting the rootfs of {}: {e}", rec.id);
        }
        self.networks.detach(&rec.id, &rec.endpoints);
        {
            let mut r = c.record.lock().expect("record lock");
            if !r.endpoints.is_empty() || !r.ports.is_empty() {
                r.endpoints.clear();
                r.ports.clear();
                // A `--rm` container's record is about to go: no need to write it.
                let cdir = self.container_dir(&r.id);
                if r.host_config.auto_remove != Some(true) && cdir.exists() {
                    let _ = r.save(&cdir);
                }
            }
        }
        netns::remove(&dir.join("netns"));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    /// `Ok(false)` when it was not running (Docker's 304).
    pub async fn stop(self: &Arc<Self>, name: &str, opts: &StopOptions) -> Result<bool> {
        let c = self.get(name)?;
        let rec = {
            let mut r = c.record.lock().expect("record lock");
            r.manually_stopped = true;
            if r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
            }
            let _ = r.save(&self.container_dir(&c.id));
            r.clone()
        };
        if !rec.state.status.is_live() {
            return Ok(false);
        }
        let signal = match opts.signal.as_deref().or(rec.config.stop_signal.as_deref()) {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc::SIGTERM,
        };
        let timeout = opts.timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let mut rx = c.subscribe();
        let exits = rx.borrow().exits;
        if rec.state.status == Status::Paused {
            let _ = self.cfg.runtime.resume(&c.id);
        }
        if let Err(e) = self.signal(&c, signal) {
            eprintln!("berth daemon: stop {}: {e}", c.id);
        }
        let exited = |w: &Watch| w.exits > exits || !w.running;
        let waited = if timeout < 0 {
            rx.wait_for(exited).await.is_ok()
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), rx.wait_for(exited))
                .await
                .is_ok()
        };
        if !waited {
            let _ = self.signal(&c, libc::SIGKILL);
            let _ = rx.wait_for(exited).await;
        }
        let rec = c.record();
        self.emit(&rec, "stop", &[]);
        Ok(true)
    }

    fn signal(&self, c: &Container, signal: i32) -> Result<()> {
        let id = c.id.clone();
        self.cfg.runtime.kill(&id, signal, false)
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(name)?;
        let sig = match signal {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc::SIGKILL,
        };
        let rec = c.record();
        if !rec.state.status.is_live() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                name, c.id
            )));
        }
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            let mut r = c.record.lock().expect("record lock");
            r.manually_stopped = true;
            let _ = r.save(&self.container_dir(&c.id));
        }
        let svc = self.clone();
        let c2 = c.clone();
        tokio::task::spawn_blocking(move || svc.signal(&c2, sig))
            .await
            .map_err(|e| ContainerError::Runtime(e.to_string()))??;
        self.emit(&rec, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(self: &Arc<Self>, name: &str, opts: &StopOptions) -> Result<()> {
        let c = self.get(name)?;
        self.stop(&c.id, opts).await?;
        {
            let mut r = c.record.lock().expect("record lock");
            r.manually_stopped = false;
        }
        self.start(&c.id).await?;
        self.emit(&c.record(), "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(self: &Arc<Self>, name: &str, pause: bool) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        let status = c.status();
        match (pause, status) {
            (true, Status::Running) | (false, Status::Paused) => {}
            (true, Status::Paused) => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            (false, _) => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not paused",
                    c.id
                )))
            }
            (true, _) => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        let svc = self.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || {
            if pause {
                svc.cfg.runtime.pause(&id)
            } else {
                svc.cfg.runtime.resume(&id)
            }
        })
        .await
        .map_err(|e| ContainerError::Runtime(e.to_string()))??;
        let rec = {
            let mut r = c.record.lock().expect("record lock");
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
            r.save(&self.container_dir(&c.id))?;
            r.clone()
        };
        self.emit(&rec, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `DELETE /containers/{id}`: with `force` a running container is killed first; with
    /// `volumes` its anonymous volumes go too.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.get(name)?;
        if c.status().is_live() || c.status() == Status::Restarting {
            if !force {
                let what = if c.status() == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    c.record().name
                )));
            }
            {
                let mut r = c.record.lock().expect("record lock");
                r.manually_stopped = true;
                if r.state.status == Status::Restarting {
                    r.state.status = Status::Exited;
                }
            }
            if c.status().is_live() {
                let mut rx = c.subscribe();
                if c.status() == Status::Paused {
                    let _ = self.cfg.runtime.resume(&c.id);
                }
                let _ = self.cfg.runtime.kill(&c.id, libc::SIGKILL, false);
                let _ = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|w| !w.running))
                    .await;
            }
        }
        let _op = c.op.lock().await;
        if self
            .containers
            .read()
            .expect("containers lock")
            .get(&c.id)
            .is_none()
        {
            return Ok(());
        }
        if c.status().is_live() {
            return Err(ContainerError::Conflict(format!(
                "cannot remove container {}: it could not be stopped",
                c.id
            )));
        }
        let rec = {
            let mut r = c.record.lock().expect("record lock");
            r.state.status = Status::Removing;
            r.clone()
        };
        // The container is gone once its record is: the layer and the directory (log
        // included) are deleted after the answer. A crash in between leaves a directory
        // without a record, which the next start of the daemon removes with its layer.
        let svc = self.clone();
        let c2 = c.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let dir = svc.monitor_dir(&c2.id);
            svc.teardown_task(&c2, &dir);
            let cdir = svc.container_dir(&c2.id);
            let record = cdir.join(crate::record::RECORD_FILE);
            std::fs::remove_file(&record)
                .map_err(ContainerError::io(format!("removing {}", record.display())))?;
            mounts::release(&rec, &svc.volumes, volumes);
            Ok(())
        })
        .await
        .map_err(|e| ContainerError::Runtime(e.to_string()))??;
        let svc = self.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = rootfs::remove(svc.images.snapshots(), &id) {
                eprintln!("berth daemon: removing the layer of {id}: {e}");
            }
            let _ = std::fs::remove_dir_all(svc.container_dir(&id));
        });
        self.containers
            .write()
            .expect("containers lock")
            .remove(&c.id);
        self.execs
            .lock()
            .expect("execs lock")
            .retain(|_, e| e.container_id != c.id);
        self.emit(&c.record(), "destroy", &[]);
        c.watch.send_modify(|w| w.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: the exit code once `condition` holds.
    pub async fn wait(self: &Arc<Self>, name: &str, condition: &str) -> Result<i64> {
        let c = self.get(name)?;
        let mut rx = c.subscribe();
        let start = *rx.borrow();
        let done = |w: &Watch| match condition {
            "next-exit" => w.exits > start.exits || w.removed,
            "removed" => w.removed,
            _ => !w.running || w.removed,
        };
        let w = match rx.wait_for(done).await {
            Ok(w) => Some(*w),
            // The sender is gone with the container: removed.
            Err(_) => None,
        };
        Ok(w.unwrap_or_else(|| *rx.borrow()).exit_code)
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let c = self.get(name)?;
        let new_name = new_name.trim_start_matches('/');
        if !names::valid(new_name) {
            return Err(ContainerError::BadName(new_name.to_string()));
        }
        let map = self.containers.read().expect("containers lock");
        if let Some(other) = map
            .values()
            .find(|o| o.record.lock().expect("record lock").name == new_name)
        {
            if other.id == c.id {
                return Err(ContainerError::Conflict(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            return Err(ContainerError::NameInUse {
                name: new_name.to_string(),
                id: other.id.clone(),
            });
        }
        let rec = {
            let mut r = c.record.lock().expect("record lock");
            let old = std::mem::replace(&mut r.name, new_name.to_string());
            let endpoints = r.endpoints.clone();
            for ep in &mut r.endpoints {
                for n in &mut ep.dns_names {
                    if *n == old {
                        *n = new_name.to_string();
                    }
                }
            }
            if let Err(e) = r.save(&self.container_dir(&c.id)) {
                r.name = old;
                r.endpoints = endpoints;
                return Err(e);
            }
            self.networks.rename(&c.id, new_name);
            r.clone()
        };
        drop(map);
        self.emit(&rec, "rename", &[]);
        Ok(())
    }

    /// `docker network connect`: the network joins the record's list; a running
    /// container gets its new interface at once.
    pub async fn connect(
        self: &Arc<Self>,
        name: &str,
        network: &str,
        req: berth_network::EndpointRequest,
    ) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        match network::mode(&rec.host_config) {
            NetMode::Bridge => {}
            NetMode::None => {
                return Err(ContainerError::Forbidden(
                    "container cannot be connected to other networks with network mode none"
                        .into(),
                ))
            }
            NetMode::Host | NetMode::Container(_) => {
                return Err(ContainerError::Forbidden(
                    "container sharing network namespace with another container or host cannot be connected to any other network".into(),
                ))
            }
        }
        let net = self.networks.get(network)?;
        if rec.networks.iter().any(|(n, _)| *n == net.name) {
            return Err(ContainerError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        if net.predefined() && (req.ipv4.is_some() || req.ipv6.is_some()) {
            return Err(ContainerError::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let ep = if rec.state.status.is_live() {
            let svc = self.networks.clone();
            let (id, n, r) = (c.id.clone(), net.id.clone(), req.clone());
            Some(
                tokio::task::spawn_blocking(move || svc.connect(&id, &n, &r))
                    .await
                    .map_err(|e| ContainerError::Runtime(format!("connect: {e}")))??,
            )
        } else {
            None
        };
        {
            let mut r = c.record.lock().expect("record lock");
            r.networks.push((net.name.clone(), req));
            r.endpoints.extend(ep);
            r.save(&self.container_dir(&c.id))?;
        }
        self.emit_network(&net, "connect", &c.id);
        Ok(())
    }

    /// `docker network disconnect`: the network leaves the record's list; a running
    /// container loses that interface at once.
    pub async fn disconnect(self: &Arc<Self>, name: &str, network: &str) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        let net = self.networks.get(network)?;
        let rec = c.record();
        if !rec.networks.iter().any(|(n, _)| *n == net.name) {
            return Err(ContainerError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, net.name
            )));
        }
        if rec.state.status.is_live() {
            let svc = self.networks.clone();
            let (id, n) = (c.id.clone(), net.id.clone());
            tokio::task::spawn_blocking(move || svc.disconnect(&id, &n))
                .await
                .map_err(|e| ContainerError::Runtime(format!("disconnect: {e}")))??;
        }
        {
            let mut r = c.record.lock().expect("record lock");
            r.networks.retain(|(n, _)| *n != net.name);
            r.endpoints.retain(|e| e.network_id != net.id);
            r.save(&self.container_dir(&c.id))?;
        }
        self.emit_network(&net, "disconnect", &c.id);
        Ok(())
    }

    /// Whether any container (running or not) names the network: `network prune` keeps it.
    pub fn network_in_use(&self, name: &str) -> bool {
        self.all()
            .iter()
            .any(|c| c.record().networks.iter().any(|(n, _)| n == name))
    }

    pub fn emit_network(&self, net: &berth_network::NetworkRecord, action: &str, container: &str) {
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("name".to_string(), net.name.clone());
        attrs.insert("type".to_string(), net.driver.as_str().to_string());
        if !container.is_empty() {
            attrs.insert("container".to_string(), container.to_string());
        }
        self.events
            .publish(Event::new("network", action, &net.id, attrs));
    }

    /// Bytes in the container's own writable layer.
    pub fn rw_size(&self, id: &str) -> u64 {
        self.images
            .snapshots()
            .usage(&rootfs::rw_key(id))
            .map(|u| u.size)
            .unwrap_or(0)
    }

    /// The container half of `system df`: every record with its writable layer's size.
    pub fn disk_usage(&self) -> Vec<(ContainerRecord, u64)> {
        self.all()
            .iter()
            .map(|c| (c.record(), self.rw_size(&c.id)))
            .collect()
    }

    /// Ids of the exec instances of a container.
    pub fn exec_ids_of(&self, id: &str) -> Vec<String> {
        self.execs
            .lock()
            .expect("execs lock")
            .values()
            .filter(|e| e.container_id == id)
            .map(|e| e.id.clone())
            .collect()
    }

    /// `GET /containers/{id}/top`: `ps` on the host, narrowed to the container's processes.
    pub fn top(&self, name: &str, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let c = self.get(name)?;
        if !c.status().is_live() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let pids = self.cfg.runtime.pids(&c.id)?;
        let out = std::process::Command::new("ps")
            .args(ps_args.split_whitespace())
            .output()
            .map_err(ContainerError::io("running ps"))?;
        if !out.status.success() {
            return Err(ContainerError::Invalid(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        crate::top::parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `POST /containers/{id}/update`: new resource limits and restart policy, applied to
    /// the running container through the runtime and kept in its record.
    pub fn update(&self, name: &str, patch: serde_json::Value) -> Result<Vec<String>> {
        let c = self.get(name)?;
        let rec = c.record();
        let num = |k: &str| patch.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
        let (memory, swap) = (num("Memory"), num("MemorySwap"));
        let current_swap = rec.host_config.memory_swap.unwrap_or(0);
        if memory > 0 && swap == 0 && current_swap > 0 && memory > current_swap {
            return Err(ContainerError::Invalid(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        let mut hc = serde_json::to_value(&rec.host_config).unwrap_or_default();
        if let (Some(dst), serde_json::Value::Object(src)) = (hc.as_object_mut(), patch) {
            for (k, v) in src {
                // Zero values leave a limit as it is, as in Docker.
                let unset = v.is_null() || v == serde_json::json!(0) || v == serde_json::json!("");
                if !unset {
                    dst.insert(k, v);
                }
            }
        }
        let new_hc: HostConfig = serde_json::from_value(hc)
            .map_err(|e| ContainerError::Invalid(format!("invalid update: {e}")))?;
        spec::validate_host_config(&new_hc, self.cfg.ncpu)?;
        if new_hc.auto_remove == Some(true)
            && !matches!(
                new_hc.restart_policy.as_ref().and_then(|p| p.name),
                None | Some(RestartPolicyNameEnum::EMPTY) | Some(RestartPolicyNameEnum::NO)
            )
        {
            return Err(ContainerError::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        if rec.state.status.is_live() {
            let resources = spec::resources(&new_hc)?;
            let path = self.monitor_dir(&c.id).join("update.json");
            let bytes = serde_json::to_vec(&resources)
                .map_err(|e| ContainerError::Invalid(format!("encoding resources: {e}")))?;
            crate::record::write_atomic(&path, &bytes)?;
            let applied = self.cfg.runtime.update(&c.id, &path);
            let _ = std::fs::remove_file(&path);
            applied.map_err(|e| {
                ContainerError::Runtime(format!("Cannot update container {}: {e}", c.id))
            })?;
        }
        let updated = {
            let mut r = c.record.lock().expect("record lock");
            r.host_config = new_hc;
            r.save(&self.container_dir(&c.id))?;
            r.clone()
        };
        self.emit(&updated, "update", &[]);
        Ok(Vec::new())
    }

    /// The ids of containers made from image `image_id`.
    pub fn users_of_image(&self, image_id: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| c.record.lock().expect("record lock").image_id == image_id)
            .map(|c| c.id.clone())
            .collect()
    }
}

/// Saves the container's record as it is now.
fn rec_save(c: &Container, dir: &Path) -> Result<()> {
    c.record.lock().expect("record lock").save(dir)
}

/// The network service's view of a container.
fn sandbox_spec<'a>(
    rec: &'a ContainerRecord,
    ns: &'a Path,
    ports: &'a [berth_network::PortRequest],
    dns: &'a [std::net::IpAddr],
) -> berth_network::SandboxSpec<'a> {
    berth_network::SandboxSpec {
        container_id: &rec.id,
        name: &rec.name,
        hostname: rec
            .config
            .hostname
            .as_deref()
            .filter(|h| !rec.id.starts_with(*h)),
        netns: ns,
        networks: &rec.networks,
        ports,
        dns,
    }
}

/// Points the spec's network namespace at the file `ns`.
fn join_network_namespace(spec: &mut oci_spec::runtime::Spec, ns: &Path) {
    use oci_spec::runtime::LinuxNamespaceType;
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let Some(namespaces) = linux.namespaces_mut() else {
        return;
    };
    for n in namespaces.iter_mut() {
        if n.typ() == LinuxNamespaceType::Network {
            n.set_path(Some(ns.to_path_buf()));
        }
    }
}

/// Docker's exit code for a start that failed: 127 when the command was not found, 126
/// when it could not be run, 128 otherwise.
pub(crate) fn start_failure_code(msg: &str) -> i64 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        128
    }
}

/// A signal by name (`SIGHUP`, `HUP`) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ContainerError::Invalid(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| ContainerError::Invalid(format!("Invalid signal: {s}")))
}

/// The restart policy's answer to an exit: restart after this delay, or not.
fn restart_delay(rec: &ContainerRecord, exit_code: i64) -> Option<Duration> {
    if rec.manually_stopped {
        return None;
    }
    let policy = rec.host_config.restart_policy.as_ref()?;
    let restart = match policy.name {
        Some(RestartPolicyNameEnum::ALWAYS) | Some(RestartPolicyNameEnum::UNLESS_STOPPED) => true,
        Some(RestartPolicyNameEnum::ON_FAILURE) => {
            let max = policy.maximum_retry_count.unwrap_or(0);
            exit_code != 0 && (max <= 0 || rec.restart_count < max)
        }
        _ => false,
    };
    if !restart {
        return None;
    }
    // Docker's back-off: 100 ms doubling per restart, at most a minute.
    let ms = 100u64.saturating_mul(1u64 << rec.restart_count.clamp(0, 10) as u32);
    Some(Duration::from_millis(ms.min(60_000)))
}

/// Containers Docker starts when the daemon starts.
fn wants_restart_at_boot(rec: &ContainerRecord) -> bool {
    let Some(p) = &rec.host_config.restart_policy else {
        return false;
    };
    match p.name {
        Some(RestartPolicyNameEnum::ALWAYS) => true,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => !rec.manually_stopped,
        _ => false,
    }
}

impl ContainerRecord {
    /// Whether the container has never started.
    pub fn never_started(&self) -> bool {
        self.state.started_at == ZERO_TIME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("SIGHUP").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("hup").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn start_failures_map_to_dockers_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_failure_code("exec /x: permission denied"), 126);
        assert_eq!(start_failure_code("cgroup: boom"), 128);
    }
}
