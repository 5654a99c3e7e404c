//! A real registry: Debian's `docker-registry serve` (distribution 2.8) on a
//! free 127.0.0.1 port, storage in `/tmp/berth-it-registry-XXXX/`, optionally
//! behind htpasswd basic auth. Stopped by its pid when dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::cmd::{self, require_tool};

/// How a registry is set up.
#[derive(Debug, Default, Clone)]
pub struct RegistryConfig {
    /// `(user, password)`: require basic auth with this one account.
    pub auth: Option<(String, String)>,
}

pub struct Registry {
    dir: TempDir,
    child: Option<Child>,
    port: u16,
}

impl Registry {
    /// A registry without auth.
    pub fn open() -> Result<Registry> {
        Self::start(RegistryConfig::default())
    }

    pub fn start(config: RegistryConfig) -> Result<Registry> {
        require_tool("docker-registry", "docker-registry")?;
        let dir = cmd::tmp_dir("registry")?;
        let port = cmd::free_port()?;
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage)?;
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = &config.auth {
            require_tool("htpasswd", "apache2-utils")?;
            let line = cmd::run("htpasswd", &["-Bbn", user, password])?.ok()?;
            let file = dir.path().join("htpasswd");
            fs::write(&file, line.stdout.trim())?;
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-it\n    path: {}\n",
                file.display()
            ));
        }
        let config_file = dir.path().join("config.yml");
        fs::write(&config_file, yaml)?;
        let log = fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot run docker-registry")?;
        let mut registry = Registry {
            dir,
            child: Some(child),
            port,
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait()? {
                self.child = None;
                bail!("docker-registry exited with {status}; log:\n{}", self.log());
            }
            if let Ok(status) = self.get_status("/v2/") {
                if status == 200 || status == 401 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not answer on port {}; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The status code of a plain GET to the registry.
    pub fn get_status(&self, path: &str) -> Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        )?;
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("not an HTTP reply")
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/<repo_tag>`
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
