//! `berth exec CONTAINER COMMAND [ARG...]`: `GET /containers/{id}/json` (so a missing container
//! is reported first), `POST /containers/{id}/exec`, then `POST /exec/{id}/start` — detached
//! with `-d`, otherwise hijacked like `attach` — and the exit code from `GET /exec/{id}/json`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::opts::{process_env, read_env};
use super::session::{self, TtyOf};
use crate::client::{encode, json_body, read_json};
use crate::commands::{Ctx, Exit};
use crate::stream::Session;
use crate::terminal;

#[derive(clap::Args)]
pub struct Args {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(value_name = "CONTAINER", required = true, num_args = 2.., trailing_var_arg = true)]
    args: Vec<String>,
}

/// The `POST /containers/{id}/exec` body, as the docker CLI sends it.
pub fn exec_body(
    args: &Args,
    env: Vec<String>,
    detach_keys: &str,
    console: Option<(u16, u16)>,
) -> Value {
    let attach = !args.detach;
    let mut body = json!({
        "User": args.user.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "Tty": args.tty,
        "AttachStdin": attach && args.interactive,
        "AttachStderr": attach,
        "AttachStdout": attach,
        "Detach": false,
        "DetachKeys": detach_keys,
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Cmd": args.args[1..],
    });
    if let (true, Some((h, w))) = (args.tty, console) {
        body["ConsoleSize"] = json!([h, w]);
    }
    body
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    id: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let container = &args.args[0];
    let env = read_env(&args.env_file, &args.env, &process_env)?;
    ctx.client
        .get_json::<Value>(&format!("/containers/{}/json", encode(container)))
        .await?;
    if !args.detach && args.interactive && args.tty && !terminal::stdin_is_terminal() {
        bail!("the input device is not a TTY");
    }
    let detach_keys =
        session::detach_keys_setting(ctx, args.detach_keys.as_deref()).unwrap_or_default();
    let console = terminal::size();
    let body = exec_body(&args, env, &detach_keys, console);
    let headers = [("Content-Type", "application/json".to_string())];
    let resp = ctx
        .client
        .request(
            Method::POST,
            &format!("/containers/{}/exec", encode(container)),
            &headers,
            json_body(&body)?,
        )
        .await?;
    let created: Created = read_json(resp).await?;
    if created.id.is_empty() {
        bail!("exec ID empty");
    }
    let id = created.id;
    let start_path = format!("/exec/{}/start", encode(&id));
    let mut start = json!({"Detach": args.detach, "Tty": args.tty});
    if let Some(size) = &body.get("ConsoleSize") {
        start["ConsoleSize"] = (*size).clone();
    }
    if args.detach {
        ctx.client
            .request(Method::POST, &start_path, &headers, json_body(&start)?)
            .await?;
        return Ok(());
    }
    let conn = ctx
        .client
        .hijack(&start_path, &headers, json_body(&start)?)
        .await?;
    let session = Session {
        stdin: args.interactive,
        tty: args.tty,
        detach_keys: session::detach_keys(Some(&detach_keys)),
    };
    let resize = (args.tty && terminal::stdin_is_terminal()).then_some(TtyOf::Exec(&id));
    session::stream_session(ctx, conn, &session, resize, None).await?;
    let inspect: Value = ctx
        .client
        .get_json(&format!("/exec/{}/json", encode(&id)))
        .await?;
    Exit::status(inspect["ExitCode"].as_i64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parse_args;

    #[test]
    fn body_like_the_docker_cli() {
        let args: Args = parse_args(&[
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "c1",
            "sh",
            "-c",
            "echo $X; exit 4",
        ])
        .unwrap();
        let env = read_env(&[], &args.env, &|_| None).unwrap();
        // What docker 28 sent for the same command line.
        let docker: Value = serde_json::from_str(
            r#"{"User":"1000","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["X=1"],"WorkingDir":"/tmp","Cmd":["sh","-c","echo $X; exit 4"]}"#,
        )
        .unwrap();
        assert_eq!(exec_body(&args, env, "", Some((24, 80))), docker);

        let args: Args = parse_args(&["-it", "c1", "sh"]).unwrap();
        let body = exec_body(&args, Vec::new(), "ctrl-x", Some((24, 80)));
        assert_eq!(body["AttachStdin"], true);
        assert_eq!(body["ConsoleSize"], json!([24, 80]));
        assert_eq!(body["Env"], Value::Null);
        let args: Args = parse_args(&["-d", "c1", "sleep", "1"]).unwrap();
        let body = exec_body(&args, Vec::new(), "", None);
        assert_eq!(
            (&body["AttachStdout"], &body["Detach"]),
            (&json!(false), &json!(false))
        );
        assert!(parse_args::<Args>(&["c1"]).is_err());
    }
}
