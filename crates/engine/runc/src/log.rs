//! Error reporting as runc does it: a line on stderr, and with `--log` a line in
//! the log file, as text or as JSON (`{"level","msg","time"}`, which containerd's
//! shim and conmon read back to explain a failure). `--debug` adds debug lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::LogFormat;

pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

impl Logger {
    pub fn new(file: Option<&Path>, format: LogFormat, debug: bool) -> Logger {
        Logger {
            file: file.map(Path::to_owned),
            format,
            debug,
        }
    }

    pub fn error(&self, msg: &str) {
        let msg = msg.replace('\n', " ");
        eprintln!("berth-runc: {msg}");
        self.write("error", &msg);
    }

    /// With `--debug`: to the log file if there is one, else to stderr.
    pub fn debug(&self, msg: &str) {
        if !self.debug {
            return;
        }
        if self.file.is_none() {
            eprintln!("berth-runc: debug: {msg}");
        }
        self.write("debug", msg);
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let time = berth_runtime::state::now_rfc3339();
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
            }
            LogFormat::Text => format!("time=\"{time}\" level={level} msg={msg:?}"),
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
