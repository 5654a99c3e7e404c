//! One function per command: parse what the flags say, call the library, print.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::container::{self, CreateOptions, ExecOptions};
use berth_runtime::state::{StateRoot, Status};
use oci_spec::runtime::{LinuxResources, Process};

use crate::cli::{Cli, Command, CreateArgs, Format};
use crate::tty;

/// Print a line to stdout; a reader that went away (`| head`) ends the output
/// quietly instead of failing the command.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }};
}

/// Run the command; the exit code to leave with.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: systemd is not available to manage cgroups here; berth drives cgroupfs directly");
    }
    let root = StateRoot::new(&cli.root);
    match &cli.command {
        Command::Create(args) => {
            berth_runtime::selfexe::ensure_protected_binary(&root.path)?;
            container::create(&root, create_options(args, None, false))?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => run(&root, create, *detach, *keep),
        Command::Start { id } => {
            container::start(&root, id)?;
            Ok(0)
        }
        Command::State { id } => {
            let c = container::Container::load(&root, id)?;
            out!("{}", c.state_json());
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            let sig = container::parse_signal(signal)?;
            container::kill(&root, id, sig, *all)?;
            Ok(0)
        }
        Command::Delete { id, force } => {
            container::delete(&root, id, *force)?;
            Ok(0)
        }
        Command::Exec { .. } => exec(&root, &cli.command),
        Command::Ps {
            id,
            format,
            ps_args,
        } => ps(&root, id, *format, ps_args),
        Command::List { format, quiet } => list(&root, *format, *quiet),
        Command::Pause { id } => {
            container::pause(&root, id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            container::resume(&root, id)?;
            Ok(0)
        }
        Command::Update { .. } => update(&root, &cli.command),
        Command::Events {
            id,
            stats,
            interval,
        } => {
            if *stats {
                out!("{}", container::stats_event(&root, id)?);
            } else {
                let every = parse_duration(interval)?;
                container::events(&root, id, every, &mut std::io::stdout())?;
            }
            Ok(0)
        }
        Command::Spec { bundle, rootless } => {
            let dir = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                bail!("{}: file already exists", path.display());
            }
            let spec = berth_runtime::spec_default::default_spec(*rootless);
            let text = serde_json::to_string_pretty(&spec)?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
        Command::Features => {
            out!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime::features::features())?
            );
            Ok(0)
        }
        Command::Checkpoint { .. } | Command::Restore { .. } => {
            bail!("checkpoint/restore needs CRIU, which berth-runc does not support")
        }
    }
}

fn create_options(
    args: &CreateArgs,
    console_fd: Option<OwnedFd>,
    start_now: bool,
) -> CreateOptions {
    CreateOptions {
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        console_fd,
        preserve_fds: args.preserve_fds,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        start_now,
    }
}

/// `run`: create + start, and without --detach wait for the program, forwarding
/// signals to it, then delete the container and leave with its exit status.
fn run(root: &StateRoot, args: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    berth_runtime::selfexe::ensure_protected_binary(&root.path)?;
    // A foreground run with a terminal and no console socket: berth-runc holds
    // the terminal itself and relays it to its own stdio.
    let (console_fd, relay) = terminal_relay(
        !detach && args.console_socket.is_none() && bundle_wants_terminal(&args.bundle),
    )?;
    // No exec fifo and no separate start: the program runs as soon as it is set up.
    let c = container::create(root, create_options(args, console_fd, true))?;
    let pid = c.record.pid;
    if let Err(e) = container::run_poststart_hooks(&c) {
        let _ = container::delete(root, &args.id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = match relay {
        Some(sock) => tty::relay_until_exit(sock, pid)?,
        None => berth_runtime::process::wait::forward_signals_and_wait(pid)?,
    };
    if !keep {
        container::delete(root, &args.id, true)?;
    }
    Ok(code)
}

/// When berth-runc holds the terminal itself: a connected socket pair, one end
/// for init to send the pty master over, the other for `tty::relay_until_exit`.
fn terminal_relay(
    wanted: bool,
) -> Result<(Option<OwnedFd>, Option<std::os::unix::net::UnixStream>)> {
    if !wanted {
        return Ok((None, None));
    }
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().context("console socket pair")?;
    Ok((Some(OwnedFd::from(theirs)), Some(ours)))
}

fn bundle_wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.pointer("/process/terminal").and_then(|t| t.as_bool()))
        .unwrap_or(false)
}

fn exec(root: &StateRoot, cmd: &Command) -> Result<i32> {
    let Command::Exec {
        id,
        command,
        process,
        tty: want_tty,
        detach,
        pid_file,
        cwd,
        env,
        user,
        additional_gids,
        console_socket,
        cap,
        no_new_privs,
        preserve_fds,
        process_label,
        apparmor,
        cgroup,
        ignore_paused: _,
    } = cmd
    else {
        unreachable!()
    };
    if process_label.as_deref().is_some_and(|l| !l.is_empty()) {
        bail!("--process-label: SELinux is not enabled");
    }
    if apparmor.as_deref().is_some_and(|l| !l.is_empty()) {
        bail!("--apparmor: AppArmor is not enabled");
    }
    if !cgroup.is_empty() {
        bail!("--cgroup: exec into a sub-cgroup is not supported");
    }
    berth_runtime::selfexe::ensure_protected_binary(&root.path)?;
    let process: Option<Process> = match process {
        Some(p) => {
            let bytes = read_file_or_stdin(p)?;
            Some(berth_runtime::spec::parse_json(p, &bytes)?)
        }
        None => None,
    };
    let wants_tty = process
        .as_ref()
        .map(|p| p.terminal().unwrap_or(false))
        .unwrap_or(*want_tty);
    let (console_fd, relay) = terminal_relay(wants_tty && !*detach && console_socket.is_none())?;
    let user = user.as_deref().map(parse_user).transpose()?;
    let spawned = container::exec(
        root,
        ExecOptions {
            id: id.clone(),
            process,
            args: command.clone(),
            env: env.clone(),
            cwd: cwd.clone(),
            user,
            additional_gids: additional_gids.clone(),
            tty: *want_tty,
            cap_add: cap.clone(),
            no_new_privs: *no_new_privs,
            console_socket: console_socket.clone(),
            console_fd,
            pid_file: pid_file.clone(),
            preserve_fds: *preserve_fds,
        },
    )?;
    if *detach {
        return Ok(0);
    }
    match relay {
        Some(sock) => tty::relay_until_exit(sock, spawned.pid),
        None => Ok(berth_runtime::process::wait::forward_signals_and_wait(
            spawned.pid,
        )?),
    }
}

fn parse_user(s: &str) -> Result<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, "0"));
    let uid = u
        .parse()
        .map_err(|_| anyhow!("--user {s:?}: expected uid[:gid] as numbers"))?;
    let gid = g
        .parse()
        .map_err(|_| anyhow!("--user {s:?}: expected uid[:gid] as numbers"))?;
    Ok((uid, gid))
}

fn read_file_or_stdin(p: &Path) -> Result<Vec<u8>> {
    if p == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        Ok(b)
    } else {
        std::fs::read(p).with_context(|| format!("reading {}", p.display()))
    }
}

fn ps(root: &StateRoot, id: &str, format: Format, ps_args: &[String]) -> Result<i32> {
    let pids = container::pids(root, id)?;
    if format == Format::Json {
        out!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps output has no PID column"))?;
    out!("{header}");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out!("{line}");
        }
    }
    Ok(0)
}

fn list(root: &StateRoot, format: Format, quiet: bool) -> Result<i32> {
    let all = container::list(root)?;
    if quiet {
        for (c, _) in &all {
            out!("{}", c.id());
        }
        return Ok(0);
    }
    if format == Format::Json {
        let docs: Vec<serde_json::Value> = all
            .iter()
            .map(|(c, s)| {
                let r = &c.record;
                serde_json::json!({
                    "ociVersion": berth_runtime::state::OCI_VERSION,
                    "id": r.id,
                    "pid": if *s == Status::Stopped { 0 } else { r.pid },
                    "status": s.as_str(),
                    "bundle": r.bundle,
                    "rootfs": r.rootfs,
                    "created": r.created,
                    "owner": owner_of(&c.dir()),
                })
            })
            .collect();
        out!("{}", serde_json::to_string(&docs)?);
        return Ok(0);
    }
    out!(
        "{:<12} {:<10} {:<10} {:<40} {:<31} OWNER",
        "ID",
        "PID",
        "STATUS",
        "BUNDLE",
        "CREATED"
    );
    for (c, s) in &all {
        let r = &c.record;
        let pid = if *s == Status::Stopped { 0 } else { r.pid };
        out!(
            "{:<12} {:<10} {:<10} {:<40} {:<31} {}",
            r.id,
            pid,
            s.as_str(),
            r.bundle.display(),
            r.created,
            owner_of(&c.dir())
        );
    }
    Ok(0)
}

fn owner_of(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(dir).map(|m| m.uid()).unwrap_or(0);
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"))
}

fn update(root: &StateRoot, cmd: &Command) -> Result<i32> {
    let Command::Update {
        id,
        resources,
        memory,
        memory_swap,
        memory_reservation,
        kernel_memory,
        kernel_memory_tcp,
        cpu_shares,
        cpu_quota,
        cpu_period,
        cpu_rt_period,
        cpu_rt_runtime,
        cpuset_cpus,
        cpuset_mems,
        pids_limit,
        blkio_weight,
        l3_cache_schema,
        mem_bw_schema,
    } = cmd
    else {
        unreachable!()
    };
    if l3_cache_schema.is_some() || mem_bw_schema.is_some() {
        bail!("Intel RDT is not supported");
    }
    let mut doc: serde_json::Value = match resources {
        Some(p) => {
            let bytes = read_file_or_stdin(p)?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not a resources document", p.display()))?
        }
        None => serde_json::json!({}),
    };
    let mut set = |path: &[&str], v: serde_json::Value| {
        let mut cur = &mut doc;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cur[*key] = v.clone();
            } else {
                if cur.get(*key).is_none() {
                    cur[*key] = serde_json::json!({});
                }
                cur = &mut cur[*key];
            }
        }
    };
    for (flag, value, path) in [
        ("--memory", memory, ["memory", "limit"]),
        ("--memory-swap", memory_swap, ["memory", "swap"]),
        (
            "--memory-reservation",
            memory_reservation,
            ["memory", "reservation"],
        ),
        ("--kernel-memory", kernel_memory, ["memory", "kernel"]),
        (
            "--kernel-memory-tcp",
            kernel_memory_tcp,
            ["memory", "kernelTCP"],
        ),
    ] {
        if let Some(v) = value {
            set(&path, serde_json::json!(parse_bytes(flag, v)?));
        }
    }
    if let Some(v) = cpu_shares {
        set(&["cpu", "shares"], (*v).into());
    }
    if let Some(v) = cpu_quota {
        set(&["cpu", "quota"], (*v).into());
    }
    if let Some(v) = cpu_period {
        set(&["cpu", "period"], (*v).into());
    }
    if let Some(v) = cpu_rt_period {
        set(&["cpu", "realtimePeriod"], (*v).into());
    }
    if let Some(v) = cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], (*v).into());
    }
    if let Some(v) = cpuset_cpus {
        set(&["cpu", "cpus"], v.clone().into());
    }
    if let Some(v) = cpuset_mems {
        set(&["cpu", "mems"], v.clone().into());
    }
    if let Some(v) = pids_limit {
        set(&["pids", "limit"], (*v).into());
    }
    if let Some(v) = blkio_weight {
        set(&["blockIO", "weight"], (*v).into());
    }
    let res: LinuxResources = serde_json::from_value(doc).context("resources")?;
    container::update(root, id, &res)?;
    Ok(0)
}

/// `512m`, `1g`, `1048576`, `-1`.
fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("{flag} {s:?}: not a size"))?;
    if n < 0.0 {
        bail!("{flag} {s:?}: must not be negative");
    }
    Ok((n * mult as f64) as i64)
}

fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow!("--interval {s:?}: expected a duration such as 5s or 500ms");
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .ok_or_else(bad)?;
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("--memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "4096").unwrap(), 4096);
        assert_eq!(parse_bytes("--memory", "-1").unwrap(), -1);
        assert!(parse_bytes("--memory", "lots").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn users() {
        assert_eq!(parse_user("1000:1000").unwrap(), (1000, 1000));
        assert_eq!(parse_user("7").unwrap(), (7, 0));
        assert!(parse_user("bob").is_err());
    }
}
