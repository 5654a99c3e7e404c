//! The flags `run` and `create` share, and the `POST /containers/create` body they become,
//! built the way the docker CLI builds it (its `cli/command/container/opts.go` and `opts/`):
//!
//! - `-v /data` (no host part) is an anonymous volume in `Config.Volumes`; `-v a:/b[:ro]` and
//!   `-v ./dir:/b` (made absolute) go to `HostConfig.Binds` as written;
//! - `--mount` becomes `HostConfig.Mounts` (type defaults to volume; `src=.` is made absolute);
//! - `-m 10m` and the other memory flags are binary units in bytes (`--memory-swap -1` is
//!   unlimited), `--cpus 1.5` is `NanoCpus`, `--restart on-failure:3` a policy with a count;
//! - `-e NAME` takes NAME's value from our environment (kept bare when unset), `--env-file`
//!   lines come first, and a bare name there is dropped when unset;
//! - capabilities are upper-cased with a `CAP_` prefix (except `ALL`) and sorted;
//! - `--security-opt seccomp=FILE` sends the file's compacted JSON;
//!   `systempaths=unconfined` becomes empty `MaskedPaths` and `ReadonlyPaths`.
//!
//! Docker also sends every other field, at its zero value or its default (`NetworkMode:
//! "default"`, restart policy `no`, `MemorySwappiness: -1`, `Dns: []`, ...): [`wire_body`] puts
//! the flags' fields over those, so the daemon gets the very body docker would send.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::netopts::{
    network_config, parse_dns, parse_dns_search, parse_extra_host, parse_network, ports,
    EndpointFlags, NetworkAttachment,
};
use crate::commands::key_values;
use anyhow::{anyhow, bail, Context, Result};
use bollard_stubs::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType, MountVolumeOptions,
    MountVolumeOptionsDriverConfig, NetworkingConfig, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use serde_json::Value;

/// Container configuration flags (`docker run` and `docker create`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct CreateFlags {
    /// Assign a name to the container
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Set meta data on a container
    #[arg(short, long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_name = "BOOL")]
    pub init: Option<bool>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long, value_name = "[SOURCE:]TARGET[:MODE]")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "type=..,source=..,target=..", value_parser = parse_mount_flag)]
    pub mount: Vec<MountSpec>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Ulimit options
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = parse_ulimit)]
    pub ulimit: Vec<Ulimit>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(
        long = "stop-timeout",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub stop_timeout: Option<i64>,
    /// Restart policy to apply when a container exits (no, always, on-failure[:N],
    /// unless-stopped)
    #[arg(long, value_name = "POLICY", default_value = "no", value_parser = parse_restart)]
    pub restart: Restart,
    /// Connect a container to a network (a name, none, host, container:<name|id>, or
    /// name=NAME,alias=..,ip=..,ip6=..)
    #[arg(long, visible_alias = "net", value_name = "NETWORK", value_parser = parse_network)]
    pub network: Vec<NetworkAttachment>,
    /// Add network-scoped alias for the container
    #[arg(
        long = "network-alias",
        visible_alias = "net-alias",
        value_name = "ALIAS"
    )]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "ADDRESS")]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "ADDRESS")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long, value_name = "[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "PORT[-PORT][/PROTO]")]
    pub expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP", value_parser = parse_extra_host)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "IP", value_parser = parse_dns)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "DOMAIN", value_parser = parse_dns_search)]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = "dns-opt", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Memory limit
    #[arg(short, long, value_name = "BYTES", value_parser = parse_ram)]
    pub memory: Option<i64>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true,
          value_parser = parse_mem_swap)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "BYTES", value_parser = parse_ram)]
    pub memory_reservation: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "DECIMAL", value_parser = parse_nano_cpus)]
    pub cpus: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "INT")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "INT", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "INT")]
    pub cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "MEMS")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "INT", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "UINT16")]
    pub blkio_weight: Option<u16>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(
        long = "oom-score-adj",
        value_name = "INT",
        allow_negative_numbers = true
    )]
    pub oom_score_adj: Option<i64>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
}

/// What the body is built from besides the flags: the image, the command, and the caller's
/// environment and working directory (for `-e NAME` and relative bind sources).
pub struct Invocation<'a> {
    pub image: &'a str,
    pub command: &'a [String],
    pub lookup_env: &'a dyn Fn(&str) -> Option<String>,
    pub cwd: &'a Path,
}

/// `std::env::var` as a lookup for [`Context`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl CreateFlags {
    /// The create body, with stdin/stdout/stderr attached as for a foreground `run`.
    pub fn body(&self, ctx: &Invocation<'_>) -> Result<ContainerCreateBody> {
        let env = read_env(&self.env_file, &self.env, ctx.lookup_env)?;
        let labels = key_values(&self.label, '=');
        let (binds, volumes) = split_volumes(&self.volume, ctx.cwd)?;
        let tmpfs = key_values(&self.tmpfs, ':');
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let log_config = key_values(&self.log_opt, '=');
        let (security_opt, masked, readonly) = security_opts(&self.security_opt)?;
        if self.rm && !self.restart.is_none() {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        let mounts: Vec<Mount> = self
            .mount
            .iter()
            .map(|m| m.to_mount(ctx.cwd))
            .collect::<Result<_>>()?;
        let mut ulimits: BTreeMap<&str, &Ulimit> = BTreeMap::new();
        for u in &self.ulimit {
            ulimits.insert(&u.name, u);
        }
        let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
        let (exposed, port_bindings) = ports(&self.publish, &self.expose)?;
        let (network_mode, endpoints) = network_config(
            &self.network,
            &EndpointFlags {
                aliases: &self.network_alias,
                ipv4: self.ip.as_deref(),
                ipv6: self.ip6.as_deref(),
                mac: self.mac_address.as_deref(),
            },
        )?;
        let host_config = HostConfig {
            binds: non_empty(binds),
            log_config: (!log_config.is_empty()).then_some(HostConfigLogConfig {
                typ: None,
                config: Some(log_config),
            }),
            network_mode: Some(network_mode),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            publish_all_ports: self.publish_all.then_some(true),
            dns: non_empty(self.dns.clone()),
            dns_search: non_empty(self.dns_search.clone()),
            dns_options: non_empty(self.dns_option.clone()),
            extra_hosts: non_empty(self.add_host.clone()),
            restart_policy: Some(self.restart.policy()),
            auto_remove: self.rm.then_some(true),
            cap_add: non_empty(normalize_caps(&self.cap_add)),
            cap_drop: non_empty(normalize_caps(&self.cap_drop)),
            oom_score_adj: self.oom_score_adj,
            privileged: self.privileged.then_some(true),
            readonly_rootfs: self.read_only.then_some(true),
            security_opt: non_empty(security_opt),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            cpu_shares: self.cpu_shares,
            memory: self.memory,
            nano_cpus: self.cpus,
            blkio_weight: self.blkio_weight,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            memory_reservation: self.memory_reservation,
            memory_swap: self.memory_swap,
            oom_kill_disable: self.oom_kill_disable.then_some(true),
            pids_limit: self.pids_limit,
            ulimits: (!ulimits.is_empty()).then(|| {
                ulimits
                    .values()
                    .map(|u| ResourcesUlimits {
                        name: Some(u.name.clone()),
                        soft: Some(u.soft),
                        hard: Some(u.hard),
                    })
                    .collect()
            }),
            mounts: (!mounts.is_empty()).then_some(mounts),
            masked_paths: masked,
            readonly_paths: readonly,
            init: self.init,
            ..Default::default()
        };
        Ok(ContainerCreateBody {
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            attach_stdin: self.interactive.then_some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: self.tty.then_some(true),
            open_stdin: self.interactive.then_some(true),
            // When stdin is attached, the daemon closes it when the client disconnects.
            stdin_once: self.interactive.then_some(true),
            env: non_empty(env),
            cmd: non_empty(ctx.command.to_vec()),
            image: Some(ctx.image.to_string()),
            volumes: non_empty(volumes),
            exposed_ports: (!exposed.is_empty()).then(|| exposed.into_iter().collect()),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: (!labels.is_empty()).then_some(labels),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        })
    }
}

/// What docker 28 sends for every field the flags leave alone (its body for `docker create
/// IMAGE`, with the image and the attached streams taken out).
const DOCKER_DEFAULTS: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,
"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,
"Env":null,"Cmd":null,"Image":"","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,
"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},
"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,
"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,
"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",
"Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,
"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,
"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],
"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,
"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",
"Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,
"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],
"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,
"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;

/// An endpoint with no settings, as docker 28 sends it.
const DOCKER_ENDPOINT_DEFAULTS: &str = r#"{"IPAMConfig":null,"Links":null,"Aliases":null,
"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"",
"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,
"DNSNames":null}"#;

/// The create body as the docker CLI sends it: `body` over docker's values for everything else
/// (a daemon may read a missing field differently from docker's zero: berth's daemon once gave
/// a missing `ShmSize` its default but kept an explicit 0).
pub fn wire_body(body: &ContainerCreateBody) -> Result<Value> {
    let mut wire: Value = serde_json::from_str(DOCKER_DEFAULTS)?;
    overlay(&mut wire, serde_json::to_value(body)?);
    if let Some(Value::Object(endpoints)) = wire.pointer_mut("/NetworkingConfig/EndpointsConfig") {
        for endpoint in endpoints.values_mut() {
            let mut full: Value = serde_json::from_str(DOCKER_ENDPOINT_DEFAULTS)?;
            overlay(&mut full, endpoint.take());
            *endpoint = full;
        }
    }
    Ok(wire)
}

/// Puts `top` over `base`: objects merge key by key, anything else replaces.
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (k, v) in top {
                match base.get_mut(&k) {
                    Some(b) => overlay(b, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}

/// `--env-file` lines, then `-e` flags, as docker's `ReadKVEnvStrings`.
pub fn read_env(
    files: &[PathBuf],
    flags: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read(file)
            .with_context(|| format!("open {}", file.display()))
            .map(|b| {
                String::from_utf8(b)
                    .map_err(|_| anyhow!("env file {} contains invalid utf8 bytes", file.display()))
            })??;
        out.extend(parse_env_file(&text, lookup)?);
    }
    for e in flags {
        out.push(validate_env(e, lookup)?);
    }
    Ok(out)
}

/// One `-e` value: `NAME=VALUE` as is, a bare `NAME` filled in from our environment if set.
fn validate_env(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let (name, has_value) = match value.split_once('=') {
        Some((n, _)) => (n, true),
        None => (value, false),
    };
    if name.is_empty() {
        bail!("invalid environment variable: {value}");
    }
    if has_value {
        return Ok(value.to_string());
    }
    Ok(match lookup(name) {
        Some(v) => format!("{name}={v}"),
        None => value.to_string(),
    })
}

/// An env file as docker reads it: blank lines and `#` comments skipped, leading whitespace
/// trimmed, `NAME=VALUE` passed through untouched, a bare `NAME` filled in from our environment
/// or dropped when unset.
pub fn parse_env_file(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let variable = variable.trim_start_matches([' ', '\t']);
        if variable.contains([' ', '\t']) {
            bail!("poorly formatted environment: variable '{variable}' contains whitespaces");
        }
        if variable.is_empty() {
            bail!("poorly formatted environment: no variable name on line '{line}'");
        }
        match value {
            Some(v) => out.push(format!("{variable}={v}")),
            None => {
                if let Some(v) = lookup(variable) {
                    out.push(format!("{}={v}", variable.trim()));
                }
            }
        }
    }
    Ok(out)
}

/// `-v` specs split into binds (they have a source) and anonymous volumes.
fn split_volumes(specs: &[String], cwd: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for spec in specs {
        let parsed = parse_volume_spec(spec)
            .map_err(|e| anyhow!("invalid volume specification: '{spec}': {e}"))?;
        if parsed.source.is_empty() {
            if !volumes.contains(spec) {
                volumes.push(spec.clone());
            }
            continue;
        }
        let mut bind = spec.clone();
        if parsed.is_bind {
            if let Some((host, rest)) = spec.split_once(':') {
                if host.starts_with('.') {
                    bind = format!("{}:{rest}", absolute(host, cwd));
                }
            }
        }
        binds.push(bind);
    }
    Ok((binds, volumes))
}

struct VolumeSpec {
    source: String,
    is_bind: bool,
}

/// The compose loader's `ParseVolume`, as far as the CLI uses it: the source (empty for an
/// anonymous volume) and whether it names a host path.
fn parse_volume_spec(spec: &str) -> std::result::Result<VolumeSpec, &'static str> {
    if spec.is_empty() {
        return Err("invalid empty volume spec");
    }
    if spec.len() <= 2 {
        return Ok(VolumeSpec {
            source: String::new(),
            is_bind: false,
        });
    }
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty section between colons");
    }
    if parts.len() > 3 {
        return Err("too many colons");
    }
    let source = if parts.len() == 1 { "" } else { parts[0] };
    let is_bind = matches!(source.as_bytes().first(), Some(b'.' | b'/' | b'~'));
    Ok(VolumeSpec {
        source: source.to_string(),
        is_bind,
    })
}

/// `path` made absolute against `cwd` and cleaned, like Go's `filepath.Abs`.
fn absolute(path: &str, cwd: &Path) -> String {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        cwd.join(path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.to_str().unwrap_or(path).split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Upper-cased, `CAP_`-prefixed (except `ALL`), sorted and without repeats.
fn normalize_caps(caps: &[String]) -> Vec<String> {
    let mut out: Vec<String> = caps
        .iter()
        .map(|c| {
            let c = c.trim().to_uppercase();
            if c == "ALL" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `--security-opt` values as docker sends them, and the masked/readonly path lists that
/// `systempaths=unconfined` empties.
#[allow(clippy::type_complexity)]
fn security_opts(
    opts: &[String],
) -> Result<(Vec<String>, Option<Vec<String>>, Option<Vec<String>>)> {
    let mut out = Vec::new();
    let (mut masked, mut readonly) = (None, None);
    for opt in opts {
        if opt == "systempaths=unconfined" {
            masked = Some(Vec::new());
            readonly = Some(Vec::new());
            continue;
        }
        let (key, value) = match opt.split_once('=') {
            Some(kv) => kv,
            None if opt == "no-new-privileges" => (opt.as_str(), ""),
            None => opt
                .split_once(':')
                .ok_or_else(|| anyhow!("Invalid --security-opt: {opt:?}"))?,
        };
        if key == "seccomp" && value != "unconfined" {
            let raw = std::fs::read(value)
                .map_err(|e| anyhow!("opening seccomp profile ({value}) failed: {e}"))?;
            let profile: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
                anyhow!("compacting json for seccomp profile ({value}) failed: {e}")
            })?;
            out.push(format!("seccomp={}", compact_json(&profile)));
            continue;
        }
        out.push(opt.clone());
    }
    Ok((out, masked, readonly))
}

/// Compact JSON keeping the document's own key order is what Go's `json.Compact` gives; serde
/// orders object keys, which the daemon does not mind.
fn compact_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// go-units' `RAMInBytes`: a number with an optional binary unit (`b`, `k`, `m`, `g`, `t`,
/// `p`, case-insensitive, optionally followed by `b` or `ib`).
pub fn parse_ram(s: &str) -> std::result::Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, suffix) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if suffix.is_empty() {
        return Ok(size as i64);
    }
    let bad = || Err(format!("invalid suffix: '{suffix}'"));
    let sfx = suffix.to_lowercase();
    if sfx.len() > 3 {
        return bad();
    }
    let unit: f64 = match sfx.as_bytes()[0] {
        b'b' if sfx.len() == 1 => return Ok(size as i64),
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return bad(),
    };
    match &sfx[1..] {
        "" | "b" | "ib" => Ok((size * unit) as i64),
        _ => bad(),
    }
}

fn parse_mem_swap(s: &str) -> std::result::Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    parse_ram(s)
}

/// `--cpus`: a decimal number of CPUs as nano-CPUs (at most nine decimals).
pub fn parse_nano_cpus(s: &str) -> std::result::Result<i64, String> {
    let not_rational = || format!("failed to parse {s} as a rational number");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let (negative, int) = match int.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, int.strip_prefix('+').unwrap_or(int)),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(not_rational());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| not_rational())?
    };
    let nanos: i64 = format!("{frac:0<9}").parse().map_err(|_| not_rational())?;
    let value = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos))
        .ok_or_else(not_rational)?;
    Ok(if negative { -value } else { value })
}

/// A parsed `--ulimit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

use berth_core::units::ULIMITS as ULIMIT_NAMES;

/// go-units' `ParseUlimit`: `name=soft[:hard]`, hard defaulting to soft.
pub fn parse_ulimit(s: &str) -> std::result::Result<Ulimit, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let int = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let soft = int(soft)?;
            (soft, soft)
        }
        [soft, hard] => (int(soft)?, int(hard)?),
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// A parsed `--restart` policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Restart {
    name: String,
    count: i64,
}

impl Restart {
    fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }

    fn policy(&self) -> RestartPolicy {
        let name = match self.name.as_str() {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            "" => RestartPolicyNameEnum::EMPTY,
            _ => RestartPolicyNameEnum::NO,
        };
        RestartPolicy {
            name: Some(name),
            maximum_retry_count: Some(self.count),
        }
    }
}

/// `--restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> std::result::Result<Restart, String> {
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => {
            return Err("invalid restart policy format: no policy provided before colon".into())
        }
        Some((name, count)) => (name, count),
        None => (s, ""),
    };
    let count = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    match name {
        "no" | "" | "always" | "unless-stopped" if count != 0 => Err(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                .to_string(),
        ),
        "no" | "" | "always" | "unless-stopped" | "on-failure" => Ok(Restart {
            name: name.to_string(),
            count,
        }),
        other => Err(format!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', \
             'on-failure', or 'unless-stopped'"
        )),
    }
}

/// A parsed `--mount` (docker's `opts.MountOpt`); relative sources are made absolute when the
/// body is built.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MountSpec {
    mount: Mount,
}

impl MountSpec {
    fn to_mount(&self, cwd: &Path) -> Result<Mount> {
        let mut m = self.mount.clone();
        if let Some(src) = &m.source {
            if src == "." || src.starts_with("./") {
                m.source = Some(absolute(src, cwd));
            }
        }
        Ok(m)
    }
}

/// Splits a CSV record (`a,"b,c",d`) into fields.
pub(super) fn csv_fields(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!(
            "parse error: extraneous or missing \" in quoted-field: {s}"
        ));
    }
    fields.push(cur);
    Ok(fields)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The volume options of a mount being parsed, created empty on first use.
fn volume_opts(v: &mut Option<MountVolumeOptions>) -> &mut MountVolumeOptions {
    v.get_or_insert_with(|| MountVolumeOptions {
        driver_config: Some(MountVolumeOptionsDriverConfig::default()),
        ..Default::default()
    })
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,volume-*|bind-*|tmpfs-*]`.
pub fn parse_mount_flag(s: &str) -> std::result::Result<MountSpec, String> {
    let mut m = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let mut volume: Option<MountVolumeOptions> = None;
    let mut bind: Option<MountBindOptions> = None;
    let mut tmpfs: Option<MountTmpfsOptions> = None;
    let invalid = |key: &str, val: &str| format!("invalid value for {key}: {val}");
    for field in csv_fields(s)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = Some(true),
                "volume-nocopy" => volume_opts(&mut volume).no_copy = Some(true),
                "bind-nonrecursive" => {
                    bind.get_or_insert_with(Default::default).non_recursive = Some(true)
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => {
                m.typ = Some(match val.to_lowercase().as_str() {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    "npipe" => MountType::NPIPE,
                    "cluster" => MountType::CLUSTER,
                    "image" => MountType::IMAGE,
                    other => return Err(format!("invalid mount type '{other}'")),
                })
            }
            "source" | "src" => m.source = Some(val),
            "target" | "dst" | "destination" => m.target = Some(val),
            "readonly" | "ro" => {
                m.read_only = Some(parse_bool(&val).ok_or_else(|| invalid(&key, &val))?)
            }
            "consistency" => m.consistency = Some(val.to_lowercase()),
            "bind-propagation" => {
                let p = match val.to_lowercase().as_str() {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    _ => return Err(invalid(&key, &val)),
                };
                bind.get_or_insert_with(Default::default).propagation = Some(p);
            }
            "bind-nonrecursive" => {
                bind.get_or_insert_with(Default::default).non_recursive =
                    Some(parse_bool(&val).ok_or_else(|| invalid(&key, &val))?)
            }
            "volume-nocopy" => {
                volume_opts(&mut volume).no_copy = Some(
                    parse_bool(&val)
                        .ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?,
                )
            }
            "volume-label" => {
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                if !k.is_empty() {
                    let labels = volume_opts(&mut volume)
                        .labels
                        .get_or_insert_with(HashMap::new);
                    labels.insert(k.to_string(), v.to_string());
                }
            }
            "volume-driver" => {
                let driver = volume_opts(&mut volume)
                    .driver_config
                    .get_or_insert_with(Default::default);
                driver.name = Some(val);
            }
            "volume-opt" => {
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                let driver = volume_opts(&mut volume)
                    .driver_config
                    .get_or_insert_with(Default::default);
                if !k.is_empty() {
                    driver
                        .options
                        .get_or_insert_with(HashMap::new)
                        .insert(k.to_string(), v.to_string());
                }
            }
            "volume-subpath" => volume_opts(&mut volume).subpath = Some(val),
            "tmpfs-size" => {
                tmpfs.get_or_insert_with(Default::default).size_bytes =
                    Some(parse_ram(&val).map_err(|_| invalid(&key, &val))?)
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&val, 8).map_err(|_| invalid(&key, &val))?;
                tmpfs.get_or_insert_with(Default::default).mode = Some(i64::from(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let typ = m.typ.unwrap_or(MountType::VOLUME);
    if m.target.as_deref().unwrap_or("").is_empty() {
        return Err("target is required".into());
    }
    let type_name = serde_json::to_value(typ).ok();
    let type_name = type_name.as_ref().and_then(|v| v.as_str()).unwrap_or("");
    if volume.is_some() && typ != MountType::VOLUME {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{type_name}'"
        ));
    }
    if bind.is_some() && typ != MountType::BIND {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{type_name}'"
        ));
    }
    if tmpfs.is_some() && typ != MountType::TMPFS {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{type_name}'"
        ));
    }
    m.volume_options = volume;
    m.bind_options = bind;
    m.tmpfs_options = tmpfs;
    Ok(MountSpec { mount: m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_in_bytes_like_go_units() {
        assert_eq!(parse_ram("10m"), Ok(10 << 20));
        assert_eq!(parse_ram("10M"), Ok(10 << 20));
        assert_eq!(parse_ram("10mb"), Ok(10 << 20));
        assert_eq!(parse_ram("10MiB"), Ok(10 << 20));
        assert_eq!(parse_ram("1.5g"), Ok(1_610_612_736));
        assert_eq!(parse_ram("100"), Ok(100));
        assert_eq!(parse_ram("100b"), Ok(100));
        assert_eq!(parse_ram("32 k"), Ok(32768));
        assert_eq!(parse_ram("10x"), Err("invalid suffix: 'x'".into()));
        assert_eq!(parse_ram("10mbb"), Err("invalid suffix: 'mbb'".into()));
        assert_eq!(parse_ram("10bb"), Err("invalid suffix: 'bb'".into()));
        assert_eq!(parse_ram("m"), Err("invalid size: 'm'".into()));
        assert_eq!(parse_mem_swap("-1"), Ok(-1));
    }

    #[test]
    fn cpus_and_ulimits() {
        assert_eq!(parse_nano_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_nano_cpus("0.001"), Ok(1_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_nano_cpus(".5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("0.1000000000"), Ok(100_000_000));
        assert!(parse_nano_cpus("0.0000000001").is_err());
        assert_eq!(
            parse_ulimit("nofile=100:200"),
            Ok(Ulimit {
                name: "nofile".into(),
                soft: 100,
                hard: 200
            })
        );
        assert_eq!(
            parse_ulimit("core=10:-1"),
            Ok(Ulimit {
                name: "core".into(),
                soft: 10,
                hard: -1
            })
        );
        assert!(parse_ulimit("nofile=1:2:3").is_err());
        assert!(parse_ulimit("nofile").is_err());
    }

    #[test]
    fn env_files_like_docker() {
        let lookup = |n: &str| (n == "HOME").then(|| "/root".to_string());
        let text = "\u{feff}FOO=bar\n# comment\n  BAZ\nEMPTY=\n\tHOME\nSPACED= a b \n\n";
        assert_eq!(
            parse_env_file(text, &lookup).unwrap(),
            ["FOO=bar", "EMPTY=", "HOME=/root", "SPACED= a b "]
        );
        assert_eq!(
            parse_env_file("A B=1", &lookup).unwrap_err().to_string(),
            "poorly formatted environment: variable 'A B' contains whitespaces"
        );
        assert!(parse_env_file("=1", &lookup).is_err());
        assert_eq!(validate_env("HOME", &lookup).unwrap(), "HOME=/root");
        assert_eq!(validate_env("NOPE", &lookup).unwrap(), "NOPE");
        assert!(validate_env("=x", &lookup).is_err());
    }

    #[test]
    fn volume_specs() {
        let cwd = Path::new("/work/dir");
        let specs: Vec<String> = [
            "/data",
            "vol:/v:ro",
            "./rel:/r",
            ".:/dot",
            "~/x:/y",
            "/data",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (binds, volumes) = split_volumes(&specs, cwd).unwrap();
        assert_eq!(
            binds,
            ["vol:/v:ro", "/work/dir/rel:/r", "/work/dir:/dot", "~/x:/y"]
        );
        assert_eq!(volumes, ["/data"]);
        assert_eq!(absolute("../a/./b/", cwd), "/work/a/b");
    }

    #[test]
    fn caps_and_security_opts() {
        let caps: Vec<String> = ["net_admin", "ALL", "CAP_chown", "net_admin"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(normalize_caps(&caps), ["ALL", "CAP_CHOWN", "CAP_NET_ADMIN"]);
        let dir = std::env::temp_dir().join(format!("berth-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let profile = dir.join("p.json");
        std::fs::write(
            &profile,
            "{ \"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [] }",
        )
        .unwrap();
        let (opts, masked, _) = security_opts(&[
            format!("seccomp={}", profile.display()),
            "seccomp=unconfined".into(),
        ])
        .unwrap();
        assert_eq!(
            opts,
            [
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
                "seccomp=unconfined"
            ]
        );
        assert_eq!(masked, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mounts_and_restart_policies() {
        let m = parse_mount_flag("type=tmpfs,dst=/t,tmpfs-mode=1770,tmpfs-size=1m").unwrap();
        let t = m.mount.tmpfs_options.unwrap();
        assert_eq!((t.mode, t.size_bytes), (Some(0o1770), Some(1 << 20)));
        let m = parse_mount_flag(r#""type=bind","source=/a,b",target=/x,readonly=false"#).unwrap();
        assert_eq!(m.mount.source.as_deref(), Some("/a,b"));
        assert_eq!(m.mount.read_only, Some(false));
        assert_eq!(
            parse_restart("on-failure:3")
                .unwrap()
                .policy()
                .maximum_retry_count,
            Some(3)
        );
        assert!(parse_restart(":3").is_err());
        assert!(parse_restart("always:3").is_err());
    }
}
