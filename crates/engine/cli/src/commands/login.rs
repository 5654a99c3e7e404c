//! `berth login [SERVER]` (`POST /auth`, then stores the credentials in config.json) and
//! `berth logout [SERVER]`.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Result};
use hyper::Method;
use serde::Deserialize;

use super::{print, Ctx};
use crate::client::{json_body, read_json};
use crate::config::{server_key, AuthConfig, ConfigFile};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AuthResponse {
    #[serde(default)]
    status: String,
    #[serde(default)]
    identity_token: String,
}

pub async fn login(ctx: &Ctx, args: LoginArgs) -> Result<()> {
    let server = server_key(args.server.as_deref().unwrap_or(""));
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if args.password_stdin {
            bail!("--password and --password-stdin are mutually exclusive");
        }
    }
    let password_from_stdin = if args.password_stdin {
        if args.username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Some(s.trim_end_matches(['\n', '\r']).to_string())
    } else {
        None
    };
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username: ")?,
    };
    if username.trim().is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let password = match password_from_stdin.or(args.password) {
        Some(p) => p,
        None => prompt_password("Password: ")?,
    };
    if password.is_empty() {
        bail!("Error: Password Required");
    }
    let mut auth = AuthConfig {
        username: username.trim().to_string(),
        password,
        serveraddress: server,
        ..Default::default()
    };
    let resp = ctx
        .client
        .request(Method::POST, "/auth", &[], json_body(&auth)?)
        .await?;
    let answer: AuthResponse = read_json(resp).await?;
    if !answer.identity_token.is_empty() {
        auth.identitytoken = answer.identity_token;
        auth.password.clear();
    }
    let mut config = ConfigFile::load(&ctx.config_dir)?;
    config.store(&auth);
    config.save()?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        config.path().display()
    );
    let status = if answer.status.is_empty() {
        "Login Succeeded"
    } else {
        answer.status.as_str()
    };
    print(&format!("{status}\n"))
}

pub async fn logout(ctx: &Ctx, args: LogoutArgs) -> Result<()> {
    let server = server_key(args.server.as_deref().unwrap_or(""));
    let mut config = ConfigFile::load(&ctx.config_dir)?;
    if !config.remove(&server) {
        return print(&format!("Not logged in to {server}\n"));
    }
    print(&format!("Removing login credentials for {server}\n"))?;
    config.save()
}

fn prompt(question: &str) -> Result<String> {
    let mut out = std::io::stdout();
    write!(out, "{question}")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a line from stdin with terminal echo turned off (when stdin is a terminal).
fn prompt_password(question: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return prompt(question);
    }
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain old data; tcgetattr fills it for the valid fd 0.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 is open (it is a terminal) and `saved` is a valid termios to write to.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: `quiet` is a termios obtained from tcgetattr with only ECHO cleared.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let answer = prompt(question);
    // SAFETY: restores the settings read above on the same fd.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    println!();
    answer
}
