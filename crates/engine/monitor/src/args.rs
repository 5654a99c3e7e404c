//! The command line, parsed by hand (no clap: the monitor stays small).

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: berth-monitor --runtime PATH --runtime-root DIR --id ID --dir DIR --mode container|exec
                     [--bundle DIR]             (container mode)
                     [--process FILE]           (exec mode: an OCI process.json)
                     [--terminal] [--stdin]
                     [--log-path FILE --log-max-size BYTES --log-max-files N]  (container mode)
                     [--sync-fd N]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create and start a container from a bundle.
    Container,
    /// Run one more process in a running container.
    Exec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub path: PathBuf,
    /// Rotate before the file would grow past this many bytes; 0: never.
    pub max_size: u64,
    /// How many files to keep, the live one included (at least 1).
    pub max_files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub id: String,
    /// The monitor's own directory: sock, pid, exit, monitor.pid, runtime.log.
    pub dir: PathBuf,
    pub mode: Mode,
    pub bundle: Option<PathBuf>,
    pub process: Option<PathBuf>,
    pub terminal: bool,
    pub stdin: bool,
    pub log: Option<LogOptions>,
    pub sync_fd: Option<i32>,
}

/// Parse the arguments after the program name. Paths are made absolute, since the
/// monitor moves to `/` once it is on its own.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut runtime = None;
    let mut runtime_root = None;
    let mut id = None;
    let mut dir = None;
    let mut mode = None;
    let mut bundle = None;
    let mut process = None;
    let mut terminal = false;
    let mut stdin = false;
    let mut log_path = None;
    let mut log_max_size = None;
    let mut log_max_files = None;
    let mut sync_fd = None;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("unknown argument {a:?}"))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(OsString::from(v))),
            _ => (arg, None),
        };
        match flag.as_str() {
            "--terminal" | "--stdin" if inline.is_some() => {
                return Err(format!("{flag} takes no value"));
            }
            "--terminal" => terminal = true,
            "--stdin" => stdin = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            _ => {
                let value = match inline {
                    Some(v) => v,
                    None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
                };
                let path = || absolute(&flag, &value);
                let text = || {
                    value
                        .to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{flag}: not UTF-8: {value:?}"))
                };
                match flag.as_str() {
                    "--runtime" => runtime = Some(path()?),
                    "--runtime-root" => runtime_root = Some(path()?),
                    "--id" => id = Some(text()?),
                    "--dir" => dir = Some(path()?),
                    "--mode" => {
                        mode = Some(match text()?.as_str() {
                            "container" => Mode::Container,
                            "exec" => Mode::Exec,
                            other => {
                                return Err(format!("--mode {other:?}: expected container or exec"))
                            }
                        })
                    }
                    "--bundle" => bundle = Some(path()?),
                    "--process" => process = Some(path()?),
                    "--log-path" => log_path = Some(path()?),
                    "--log-max-size" => log_max_size = Some(number(&flag, &text()?)?),
                    "--log-max-files" => log_max_files = Some(number(&flag, &text()?)?),
                    "--sync-fd" => sync_fd = Some(number(&flag, &text()?)?),
                    _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
                }
            }
        }
    }

    let need = |name: &str| format!("{name} is required\n{USAGE}");
    let mode = mode.ok_or_else(|| need("--mode"))?;
    let id = id.ok_or_else(|| need("--id"))?;
    if id.is_empty() || id.contains('/') {
        return Err(format!("--id {id:?}: not a container id"));
    }
    match mode {
        Mode::Container if bundle.is_none() => return Err(need("--bundle (container mode)")),
        Mode::Container if process.is_some() => {
            return Err("--process is for exec mode".into());
        }
        Mode::Exec if process.is_none() => return Err(need("--process (exec mode)")),
        Mode::Exec if bundle.is_some() || log_path.is_some() => {
            return Err("--bundle and --log-path are for container mode".into());
        }
        _ => {}
    }
    let log = match log_path {
        Some(path) => Some(LogOptions {
            path,
            max_size: log_max_size.unwrap_or(0),
            max_files: match log_max_files.unwrap_or(1) {
                0 => 1,
                n => u32::try_from(n).map_err(|_| "--log-max-files: too large".to_owned())?,
            },
        }),
        None if log_max_size.is_some() || log_max_files.is_some() => {
            return Err("--log-max-size and --log-max-files need --log-path".into());
        }
        None => None,
    };
    let sync_fd = sync_fd
        .map(|fd| i32::try_from(fd).map_err(|_| format!("--sync-fd {fd}: not a descriptor")))
        .transpose()?;
    if sync_fd.is_some_and(|fd| fd <= 2) {
        return Err("--sync-fd must not be stdin, stdout or stderr".into());
    }
    Ok(Options {
        runtime: runtime.ok_or_else(|| need("--runtime"))?,
        runtime_root: runtime_root.ok_or_else(|| need("--runtime-root"))?,
        id,
        dir: dir.ok_or_else(|| need("--dir"))?,
        mode,
        bundle,
        process,
        terminal,
        stdin,
        log,
        sync_fd,
    })
}

fn absolute(flag: &str, value: &OsString) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("{flag}: empty path"));
    }
    std::path::absolute(value).map_err(|e| format!("{flag} {value:?}: {e}"))
}

fn number(flag: &str, text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{flag} {text:?}: expected a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Options, String> {
        parse(s.split_whitespace().map(OsString::from))
    }

    #[test]
    fn container_mode_with_everything() {
        let o = parse_str(
            "--runtime /usr/bin/runc --runtime-root /run/r --id c1 --dir /d --mode container \
             --bundle /b --terminal --stdin --log-path /l/c1.log --log-max-size 1000 \
             --log-max-files=3 --sync-fd 5",
        )
        .unwrap();
        assert_eq!(o.mode, Mode::Container);
        assert_eq!(o.runtime, PathBuf::from("/usr/bin/runc"));
        assert_eq!(o.bundle, Some(PathBuf::from("/b")));
        assert!(o.terminal && o.stdin);
        assert_eq!(
            o.log,
            Some(LogOptions {
                path: "/l/c1.log".into(),
                max_size: 1000,
                max_files: 3
            })
        );
        assert_eq!(o.sync_fd, Some(5));
    }

    #[test]
    fn exec_mode_defaults_and_relative_paths() {
        let o =
            parse_str("--runtime r --runtime-root /r --id c --dir d --mode exec --process p.json")
                .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(o.runtime, cwd.join("r"));
        assert_eq!(o.process, Some(cwd.join("p.json")));
        assert_eq!(o.dir, cwd.join("d"));
        assert!(!o.terminal && !o.stdin && o.log.is_none() && o.sync_fd.is_none());
    }

    #[test]
    fn log_files_default_to_one() {
        let o = parse_str(
            "--runtime r --runtime-root /r --id c --dir /d --mode container --bundle /b \
             --log-path /l --log-max-files 0",
        )
        .unwrap();
        assert_eq!(o.log.unwrap().max_files, 1);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let base = "--runtime r --runtime-root /r --dir /d";
        for bad in [
            format!("{base} --id c --mode container"),
            format!("{base} --id c --mode exec"),
            format!("{base} --id c --mode exec --process p --log-path /l"),
            format!("{base} --id c --mode container --bundle /b --process p"),
            format!("{base} --id c --mode both --bundle /b"),
            format!("{base} --mode container --bundle /b"),
            format!("{base} --id a/b --mode container --bundle /b"),
            format!("{base} --id c --mode container --bundle /b --sync-fd 1"),
            format!("{base} --id c --mode container --bundle /b --sync-fd x"),
            format!("{base} --id c --mode container --bundle /b --log-max-size 5"),
            format!("{base} --id c --mode container --bundle /b --frobnicate 1"),
            format!("{base} --id c --mode container --bundle"),
            format!("{base} --id c --mode container --bundle /b --terminal=yes"),
        ] {
            assert!(parse_str(&bad).is_err(), "accepted: {bad}");
        }
    }
}
