//! The image's config under the request's: what `docker create` stores as the container's
//! `Config`.
//!
//! The rules are moby's `merge` (daemon/commit.go) followed by the check of
//! `mergeAndVerifyConfig`: the request wins wherever it says something; lists and maps the
//! image also has are unioned; `Entrypoint`/`Cmd` follow the table of the Dockerfile
//! reference ("Understand how CMD and ENTRYPOINT interact"):
//!
//! - the request has neither: the image's `Entrypoint` and `Cmd`;
//! - the request has a `Cmd` only (`docker run image args...`): the image's `Entrypoint`,
//!   the request's `Cmd`;
//! - the request has an `Entrypoint` (`--entrypoint`): the image's `Cmd` is not used, since it
//!   was written for the image's entrypoint. `--entrypoint ""` (sent as `[""]`) clears the
//!   entrypoint, leaving the request's `Cmd` alone.
//!
//! Environment variables keep moby's order, which `docker inspect` shows: the request's
//! variables first, then the image's whose names the request does not set.

use bollard_stubs::models::ContainerConfig;

use super::error::{Error, Result};

/// Fill in `config`, as the client sent it, from the image's config.
pub fn merge_image_config(
    config: &mut ContainerConfig,
    image: &berth_image::manifest::ContainerConfig,
) {
    if is_empty_str(&config.user) {
        config.user = image.user.clone();
    }
    if let Some(ports) = &image.exposed_ports {
        union_into(&mut config.exposed_ports, ports.keys());
    }
    if let Some(image_env) = image.env.as_deref().filter(|e| !e.is_empty()) {
        let env = config.env.get_or_insert_with(Vec::new);
        let requested: Vec<String> = env.iter().map(|e| env_key(e).to_owned()).collect();
        for var in image_env {
            if !requested.iter().any(|k| k == env_key(var)) {
                env.push(var.clone());
            }
        }
    }
    if let Some(image_labels) = &image.labels {
        let labels = config.labels.get_or_insert_with(Default::default);
        for (k, v) in image_labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if config.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            config.cmd = image.cmd.clone();
        }
        // An explicitly empty entrypoint (`[]`) is kept: only a missing one is inherited.
        if config.entrypoint.is_none() {
            config.entrypoint = image.entrypoint.clone();
        }
    }
    if is_empty_str(&config.working_dir) {
        config.working_dir = image.working_dir.clone();
    }
    if let Some(volumes) = &image.volumes {
        union_into(&mut config.volumes, volumes.keys());
    }
    if is_empty_str(&config.stop_signal) {
        config.stop_signal = image.stop_signal.clone();
    }
    if is_cleared_entrypoint(config.entrypoint.as_deref()) {
        config.entrypoint = None;
    }
}

/// The process to run: `Entrypoint` followed by `Cmd`. Docker refuses a container with
/// neither.
pub fn args(config: &ContainerConfig) -> Result<Vec<String>> {
    let entrypoint = config
        .entrypoint
        .as_deref()
        .filter(|e| !is_cleared_entrypoint(Some(e)))
        .unwrap_or_default();
    let cmd = config.cmd.as_deref().unwrap_or_default();
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(args)
}

/// `--entrypoint ""`, which the docker CLI sends as `[""]`.
fn is_cleared_entrypoint(entrypoint: Option<&[String]>) -> bool {
    matches!(entrypoint, Some([only]) if only.is_empty())
}

fn is_empty_str(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// The name of a `NAME=value` environment entry (all of it when there is no `=`).
pub(crate) fn env_key(var: &str) -> &str {
    var.split_once('=').map_or(var, |(k, _)| k)
}

/// Add the image's keys (exposed ports, volumes) the request does not list yet.
fn union_into<'a>(list: &mut Option<Vec<String>>, image: impl Iterator<Item = &'a String>) {
    let list = list.get_or_insert_with(Vec::new);
    for key in image {
        if !list.contains(key) {
            list.push(key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::manifest::ContainerConfig as ImageConfig;
    use std::collections::BTreeMap;

    fn strs(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.and_then(strs),
            cmd: cmd.and_then(strs),
            ..Default::default()
        }
    }

    /// What `docker run` runs for an image and a request (its `--entrypoint` and args).
    fn run(
        image: &ImageConfig,
        entrypoint: Option<&[&str]>,
        cmd: Option<&[&str]>,
    ) -> Result<Vec<String>> {
        let mut config = ContainerConfig {
            entrypoint: entrypoint.and_then(strs),
            cmd: cmd.and_then(strs),
            ..Default::default()
        };
        merge_image_config(&mut config, image);
        args(&config)
    }

    // The Dockerfile reference's table: shell forms are stored in the image as
    // ["/bin/sh", "-c", "..."].
    const EXEC_ENTRY: &[&str] = &["exec_entry", "p1_entry"];
    const SHELL_ENTRY: &[&str] = &["/bin/sh", "-c", "exec_entry p1_entry"];
    const EXEC_CMD: &[&str] = &["exec_cmd", "p1_cmd"];
    const SHELL_CMD: &[&str] = &["/bin/sh", "-c", "exec_cmd p1_cmd"];

    #[test]
    fn dockerfile_reference_table() {
        type Case<'a> = (
            Option<&'a [&'a str]>,
            Option<&'a [&'a str]>,
            Option<&'a [&'a str]>,
        );
        let cases: &[Case] = &[
            // (ENTRYPOINT, CMD, what runs); None = error
            (None, None, None),
            (None, Some(EXEC_CMD), Some(&["exec_cmd", "p1_cmd"])),
            (
                None,
                Some(SHELL_CMD),
                Some(&["/bin/sh", "-c", "exec_cmd p1_cmd"]),
            ),
            (
                Some(SHELL_ENTRY),
                None,
                Some(&["/bin/sh", "-c", "exec_entry p1_entry"]),
            ),
            (
                Some(SHELL_ENTRY),
                Some(EXEC_CMD),
                Some(&["/bin/sh", "-c", "exec_entry p1_entry", "exec_cmd", "p1_cmd"]),
            ),
            (Some(EXEC_ENTRY), None, Some(&["exec_entry", "p1_entry"])),
            (
                Some(EXEC_ENTRY),
                Some(EXEC_CMD),
                Some(&["exec_entry", "p1_entry", "exec_cmd", "p1_cmd"]),
            ),
            (
                Some(EXEC_ENTRY),
                Some(SHELL_CMD),
                Some(&["exec_entry", "p1_entry", "/bin/sh", "-c", "exec_cmd p1_cmd"]),
            ),
        ];
        for (entry, cmd, want) in cases {
            let got = run(&image(*entry, *cmd), None, None);
            match want {
                Some(want) => assert_eq!(got.unwrap(), *want, "ENTRYPOINT {entry:?} CMD {cmd:?}"),
                None => assert!(matches!(got, Err(Error::NoCommand)), "{got:?}"),
            }
        }
    }

    // The table's shell-form ENTRYPOINT ignores CMD because /bin/sh -c takes one string;
    // the args still follow it, which is what Docker passes too.

    #[test]
    fn run_arguments_replace_the_image_cmd_but_keep_its_entrypoint() {
        let img = image(Some(EXEC_ENTRY), Some(EXEC_CMD));
        assert_eq!(
            run(&img, None, Some(&["a", "b"])).unwrap(),
            ["exec_entry", "p1_entry", "a", "b"]
        );
        let img = image(None, Some(SHELL_CMD));
        assert_eq!(
            run(&img, None, Some(&["echo", "hi"])).unwrap(),
            ["echo", "hi"]
        );
    }

    #[test]
    fn an_entrypoint_from_the_request_drops_the_image_cmd() {
        let img = image(Some(EXEC_ENTRY), Some(EXEC_CMD));
        assert_eq!(
            run(&img, Some(&["/bin/date"]), None).unwrap(),
            ["/bin/date"]
        );
        assert_eq!(
            run(&img, Some(&["/bin/echo"]), Some(&["x"])).unwrap(),
            ["/bin/echo", "x"]
        );
    }

    #[test]
    fn a_cleared_entrypoint_runs_the_request_cmd_or_nothing() {
        let img = image(Some(EXEC_ENTRY), Some(EXEC_CMD));
        assert_eq!(
            run(&img, Some(&[""]), Some(&["ls", "/"])).unwrap(),
            ["ls", "/"]
        );
        // `--entrypoint ""` alone: the image's CMD belonged to its entrypoint.
        assert!(matches!(
            run(&img, Some(&[""]), None),
            Err(Error::NoCommand)
        ));
        let mut config = ContainerConfig {
            entrypoint: strs(&[""]),
            cmd: strs(&["ls"]),
            ..Default::default()
        };
        merge_image_config(&mut config, &img);
        assert_eq!(config.entrypoint, None);
        assert_eq!(Error::NoCommand.to_string(), "no command specified");
    }

    #[test]
    fn an_explicitly_empty_entrypoint_is_not_inherited() {
        let img = image(Some(EXEC_ENTRY), Some(EXEC_CMD));
        assert_eq!(run(&img, Some(&[]), None).unwrap(), ["exec_cmd", "p1_cmd"]);
    }

    #[test]
    fn user_workdir_signal_come_from_the_image_when_unset() {
        let img = ImageConfig {
            user: Some("nobody".into()),
            working_dir: Some("/srv".into()),
            stop_signal: Some("SIGQUIT".into()),
            ..Default::default()
        };
        let mut config = ContainerConfig::default();
        merge_image_config(&mut config, &img);
        assert_eq!(config.user.as_deref(), Some("nobody"));
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));

        let mut config = ContainerConfig {
            user: Some("1000:1000".into()),
            working_dir: Some("/tmp".into()),
            stop_signal: Some("SIGTERM".into()),
            ..Default::default()
        };
        merge_image_config(&mut config, &img);
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(config.stop_signal.as_deref(), Some("SIGTERM"));

        // An empty string is "unset", as in Go.
        let mut config = ContainerConfig {
            user: Some(String::new()),
            ..Default::default()
        };
        merge_image_config(&mut config, &img);
        assert_eq!(config.user.as_deref(), Some("nobody"));
    }

    #[test]
    fn env_request_first_then_image_vars_not_overridden() {
        let img = ImageConfig {
            env: strs(&["PATH=/image/bin", "LANG=C.UTF-8", "FOO=image"]),
            ..Default::default()
        };
        let mut config = ContainerConfig {
            env: strs(&["FOO=request", "BAR=1", "UNSET"]),
            ..Default::default()
        };
        merge_image_config(&mut config, &img);
        assert_eq!(
            config.env,
            strs(&[
                "FOO=request",
                "BAR=1",
                "UNSET",
                "PATH=/image/bin",
                "LANG=C.UTF-8"
            ])
        );

        let mut config = ContainerConfig::default();
        merge_image_config(&mut config, &img);
        assert_eq!(config.env, img.env);
    }

    #[test]
    fn labels_ports_volumes_are_unioned() {
        let img = ImageConfig {
            labels: Some(BTreeMap::from([
                ("a".to_string(), "image".to_string()),
                ("b".to_string(), "image".to_string()),
            ])),
            exposed_ports: Some(BTreeMap::from([
                ("80/tcp".to_string(), serde_json::json!({})),
                ("53/udp".to_string(), serde_json::json!({})),
            ])),
            volumes: Some(BTreeMap::from([(
                "/data".to_string(),
                serde_json::json!({}),
            )])),
            ..Default::default()
        };
        let mut config = ContainerConfig {
            labels: Some([("a".to_string(), "request".to_string())].into()),
            exposed_ports: strs(&["80/tcp", "8080/tcp"]),
            volumes: strs(&["/cache"]),
            ..Default::default()
        };
        merge_image_config(&mut config, &img);
        let labels = config.labels.unwrap();
        assert_eq!(labels["a"], "request");
        assert_eq!(labels["b"], "image");
        assert_eq!(
            config.exposed_ports,
            strs(&["80/tcp", "8080/tcp", "53/udp"])
        );
        assert_eq!(config.volumes, strs(&["/cache", "/data"]));
    }
}
