//! The docker SDK for Python (`import docker`), installed with pip if missing.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};

use crate::cmd::run;

/// The SDK version installed when none is present.
pub const DOCKER_SDK: &str = "docker==7.1.0";

/// Makes sure `python3 -c "import docker"` works; installs [`DOCKER_SDK`] with
/// pip once if it does not. Never a skip: failing to install fails the test.
pub fn require_docker_sdk() -> Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let check = || {
                run("python3", &["-c", "import docker"])
                    .map(|o| o.success())
                    .unwrap_or(false)
            };
            if check() {
                return Ok(());
            }
            let pip = run("python3", &["-m", "pip", "install", "--quiet", DOCKER_SDK])
                .map_err(|e| format!("{e:#}"))?;
            if !pip.success() || !check() {
                return Err(format!("cannot install the docker SDK for Python: {pip}"));
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}
