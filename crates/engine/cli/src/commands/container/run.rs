//! `berth create` and `berth run`.
//!
//! `create` is `POST /containers/create?name=..` with the body built from the flags
//! ([`super::opts`]); when the daemon answers 404 for the image, the image is pulled
//! (`POST /images/create`, progress on stderr) and the create is tried again.
//!
//! `run` is create, then (unless `-d`) `POST /containers/{id}/attach` hijacked into a raw stream,
//! `POST /containers/{id}/wait?condition=next-exit` (`removed` with `--rm`, where the daemon
//! removes the container itself), `POST /containers/{id}/start`, and the session streamed until
//! the output ends. Its exit status is the container's. Failures before the container runs exit
//! 125, or 126/127 when its command could not be run or found, as docker's do.

use std::path::PathBuf;

use anyhow::Result;
use berth_core::Reference;
use bollard_stubs::models::ContainerCreateBody;
use hyper::Method;
use serde::Deserialize;

use super::netopts::localhost_dns_warning;
use super::opts::{process_env, wire_body, CreateFlags, Invocation};
use super::session::{self, Attach, TtyOf, Waiter};
use crate::client::{json_body, read_json, DaemonError, Query};
use crate::commands::{print, require_api, Ctx, Exit};
use crate::stream::{Ended, Session};
use crate::{progress, terminal};

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", required = true, num_args = 1.., trailing_var_arg = true)]
    pub args: Vec<String>,
}

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    sig_proxy: bool,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", required = true, num_args = 1.., trailing_var_arg = true)]
    pub args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateResponse {
    id: String,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

/// Reports an error the way `docker run`/`docker create` do, and gives the exit status.
fn report(command: &str, err: &anyhow::Error, code: u8) -> anyhow::Error {
    eprintln!("berth: {err:#}\n\nRun 'berth {command} --help' for more information");
    Exit(code).into()
}

/// The create body for `args` (image first, then the command), `-e NAME` looked up with
/// `lookup` and relative bind sources resolved against `cwd`.
fn build_body(
    flags: &CreateFlags,
    args: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
    cwd: &std::path::Path,
) -> Result<ContainerCreateBody> {
    flags.body(&Invocation {
        image: &args[0],
        command: &args[1..],
        lookup_env: lookup,
        cwd,
    })
}

fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

impl RunArgs {
    /// The create body for `run`: as `create`'s, but with nothing attached under `-d`.
    fn body(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        cwd: &std::path::Path,
    ) -> Result<ContainerCreateBody> {
        let mut body = build_body(&self.flags, &self.args, lookup, cwd)?;
        if self.detach {
            body.attach_stdin = None;
            body.attach_stdout = None;
            body.attach_stderr = None;
            body.stdin_once = None;
        }
        Ok(body)
    }
}

/// Creates the container, pulling its image first if the daemon does not have it.
pub async fn create_container(
    ctx: &Ctx,
    name: Option<&str>,
    body: &ContainerCreateBody,
) -> Result<String> {
    let path = match name {
        Some(n) => format!("/containers/create{}", Query::new().add("name", n).finish()),
        None => "/containers/create".to_string(),
    };
    let headers = [("Content-Type", "application/json".to_string())];
    let endpoints = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref());
    if endpoints
        .into_iter()
        .flatten()
        .any(|(_, e)| e.mac_address.as_deref().is_some_and(|m| !m.is_empty()))
    {
        require_api(ctx, "specify mac-address per network", "1.44").await?;
    }
    let dns = body.host_config.as_ref().and_then(|h| h.dns.as_deref());
    if let Some(warning) = localhost_dns_warning(dns.unwrap_or_default()) {
        eprintln!("{warning}");
    }
    let wire = wire_body(body)?;
    let mut first = ctx
        .client
        .request(Method::POST, &path, &headers, json_body(&wire)?)
        .await;
    let image = body.image.as_deref().unwrap_or_default();
    if let Err(e) = &first {
        let missing = e
            .downcast_ref::<DaemonError>()
            .is_some_and(|d| d.status == hyper::StatusCode::NOT_FOUND);
        if let (true, Ok(reference)) = (missing, Reference::parse(image)) {
            eprintln!("Unable to find image '{}' locally", reference.familiar());
            let mut sink = progress::stderr_sink();
            crate::commands::image::pull::pull(ctx, &reference, None, sink.as_mut()).await?;
            drop(sink);
            first = ctx
                .client
                .request(Method::POST, &path, &headers, json_body(&wire)?)
                .await;
        }
    }
    let created: CreateResponse = read_json(first?).await?;
    for w in created.warnings.iter().flatten() {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

/// With a TTY, the container's starts at the size of ours (when stdout is a terminal).
fn set_console_size(body: &mut ContainerCreateBody) {
    if let (Some(true), Some((h, w)), Some(hc)) =
        (body.tty, terminal::size(), body.host_config.as_mut())
    {
        hc.console_size = Some(vec![usize::from(h), usize::from(w)]);
    }
}

pub async fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let mut body = build_body(&args.flags, &args.args, &process_env, &cwd())
        .map_err(|e| report("create", &e, 125))?;
    set_console_size(&mut body);
    let id = create_container(ctx, args.flags.name.as_deref(), &body)
        .await
        .map_err(|e| report("create", &e, 125))?;
    print(&format!("{id}\n"))
}

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let flags = &args.flags;
    let mut body = args
        .body(&process_env, &cwd())
        .map_err(|e| report("run", &e, 125))?;
    if !args.detach && flags.interactive && flags.tty && !terminal::stdin_is_terminal() {
        anyhow::bail!("the input device is not a TTY");
    }
    set_console_size(&mut body);
    let id = create_container(ctx, flags.name.as_deref(), &body)
        .await
        .map_err(|e| {
            let code = session::start_failure_code(&e);
            report("run", &e, code)
        })?;
    if args.detach {
        print(&format!("{id}\n"))?;
    }

    let detach_keys = session::detach_keys_setting(ctx, args.detach_keys.as_deref());
    let attach = Attach {
        stdin: !args.detach && flags.interactive,
        stdout: !args.detach,
        stderr: !args.detach,
        detach_keys: detach_keys.as_deref(),
    };
    let conn = if args.detach {
        None
    } else {
        Some(session::attach(ctx, &id, &attach).await?)
    };
    let condition = if flags.rm { "removed" } else { "next-exit" };
    let waiter = Waiter::register(ctx, &id, Some(condition)).await;

    if let Err(e) = session::start(ctx, &id).await {
        drop(conn);
        let code = session::start_failure_code(&e);
        let err = report("run", &e, code);
        if flags.rm {
            if let Ok(w) = waiter {
                let _ = w.exit_code().await;
            }
        }
        return Err(err);
    }

    let Some(conn) = conn else {
        return Ok(());
    };
    let session = Session {
        stdin: attach.stdin,
        tty: flags.tty,
        detach_keys: session::detach_keys(detach_keys.as_deref()),
    };
    let tty = (flags.tty && terminal::stdout_is_terminal()).then_some(TtyOf::Container(&id));
    let signals = (args.sig_proxy && !flags.tty).then_some(id.as_str());
    let ended = session::stream_session(ctx, conn, &session, tty, signals).await?;
    if ended == Ended::Detached {
        return Ok(());
    }
    Waiter::finish(waiter).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::Value;

    #[derive(Parser)]
    enum Cli {
        #[command(disable_help_flag = true)]
        Run(RunArgs),
        #[command(disable_help_flag = true)]
        Create(CreateArgs),
    }

    fn lookup(name: &str) -> Option<String> {
        match name {
            "X" => Some("1".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        }
    }

    /// The cwd the docker CLI ran in when the fixtures were recorded.
    const CWD: &str = "/home/user/src/cli";

    fn body_for(command: &str, args: &[String]) -> Result<ContainerCreateBody> {
        let argv = ["berth", command]
            .into_iter()
            .chain(args.iter().map(String::as_str));
        match Cli::try_parse_from(argv)? {
            Cli::Run(a) => a.body(&lookup, std::path::Path::new(CWD)),
            Cli::Create(a) => build_body(&a.flags, &a.args, &lookup, std::path::Path::new(CWD)),
        }
    }

    /// Sorts the lists docker fills from Go maps, in no fixed order.
    fn sorted(mut v: Value) -> Value {
        for list in ["/Env", "/HostConfig/Binds"] {
            if let Some(Value::Array(a)) = v.pointer_mut(list) {
                a.sort_by_key(|x| x.to_string());
            }
        }
        v
    }

    #[test]
    fn bodies_match_what_the_docker_cli_sends() {
        // Recorded from docker 28.2.2 (`docker create ...` / `docker run ...`) through a
        // logging proxy, with X=1 and HOME=/root in its environment; the networking cases
        // (-p, --expose, --network, --ip, --dns, --add-host, ...) against a fake daemon
        // speaking API 1.47.
        #[derive(serde::Deserialize)]
        struct Case {
            command: String,
            args: Vec<String>,
            body: Value,
        }
        let cases: Vec<Case> = serde_json::from_str(include_str!(
            "../../../tests/data/docker-create-bodies.json"
        ))
        .unwrap();
        assert!(cases.len() > 20);
        for case in cases {
            let ours = body_for(&case.command, &case.args)
                .unwrap_or_else(|e| panic!("{:?}: {e:#}", case.args));
            let ours = wire_body(&ours).unwrap();
            assert_eq!(
                sorted(ours.clone()),
                sorted(case.body.clone()),
                "{} {:?}\nours:   {ours}\ndocker: {}",
                case.command,
                case.args,
                case.body
            );
        }
    }

    #[test]
    fn values_docker_tells_apart_from_its_defaults() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let wire = |s: &str| wire_body(&body_for("create", &args(s)).unwrap()).unwrap();
        assert_eq!(wire("--init=false bb")["HostConfig"]["Init"], false);
        assert_eq!(wire("bb")["HostConfig"].get("Init"), None);
        let b = wire("--security-opt systempaths=unconfined bb");
        assert_eq!(b["HostConfig"]["MaskedPaths"], serde_json::json!([]));
        assert_eq!(b["HostConfig"]["ReadonlyPaths"], serde_json::json!([]));
        assert_eq!(b["HostConfig"]["SecurityOpt"], Value::Null);
        assert_eq!(
            wire("--entrypoint= bb")["Entrypoint"],
            serde_json::json!([""])
        );
        assert_eq!(wire("bb")["Entrypoint"], Value::Null);
        assert_eq!(wire("--stop-timeout 0 bb")["StopTimeout"], 0);
        assert_eq!(wire("bb").get("StopTimeout"), None);
    }

    #[test]
    fn flags_after_the_image_belong_to_the_command() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let b = body_for("run", &argv("bb:1 -d -e X")).unwrap();
        assert_eq!(b.cmd.unwrap(), ["-d", "-e", "X"]);
        assert_eq!(b.attach_stdout, Some(true));
        let b = body_for("run", &argv("-h box -d bb:1")).unwrap();
        assert_eq!(b.hostname.as_deref(), Some("box"));
        assert_eq!(b.attach_stdout, None);
        assert!(body_for("run", &argv("--bogus bb:1")).is_err());
        let sig_proxy = |s: &str| match Cli::try_parse_from(argv(s)).unwrap() {
            Cli::Run(a) => a.sig_proxy,
            Cli::Create(_) => unreachable!(),
        };
        assert!(sig_proxy("berth run bb"));
        assert!(sig_proxy("berth run --sig-proxy bb"));
        assert!(!sig_proxy("berth run --sig-proxy=false bb"));
        assert!(body_for("run", &argv("-d")).is_err());
    }

    #[test]
    fn bad_flags_are_refused() {
        let err = |s: &str| {
            let argv: Vec<String> = s.split(' ').map(String::from).collect();
            format!("{:#}", body_for("run", &argv).unwrap_err())
        };
        assert_eq!(
            err("--rm --restart always bb"),
            "conflicting options: cannot specify both --restart and --rm"
        );
        assert!(
            err("-m 10x bb").contains("invalid suffix: 'x'"),
            "{}",
            err("-m 10x bb")
        );
        assert!(err("--cpus 0.0000000001 bb").contains("value is too precise"));
        assert!(err("--cpus abc bb").contains("failed to parse abc as a rational number"));
        assert!(err("--ulimit bogus=1 bb").contains("invalid ulimit type: bogus"));
        assert!(err("--ulimit nofile=10:5 bb")
            .contains("ulimit soft limit must be less than or equal to hard limit: 10 > 5"));
        assert!(err("--restart bogus bb").contains("unknown policy 'bogus'"));
        assert!(err("--restart on-failure:x bb").contains("maximum retry count must be an integer"));
        assert!(err("--mount type=bind bb").contains("target is required"));
        assert!(err("--mount type=bind,target=/x,volume-nocopy bb")
            .contains("cannot mix 'volume-*' options with mount type 'bind'"));
        assert!(err("--mount target=/x,bogus=1 bb").contains("unexpected key 'bogus' in 'bogus=1'"));
        assert!(err("-v a:b:c:d bb").contains("too many colons"));
        assert!(err("--security-opt bogus bb").contains("Invalid --security-opt: \"bogus\""));
        assert!(err("--env-file /nonexistent/env bb").contains("/nonexistent/env"));
    }
}
