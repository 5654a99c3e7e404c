//! Error reporting as runc does it: a line on stderr, and with `--log` a line in
//! the log file, as text or as JSON (`{"level","msg","time"}`, which containerd's
//! shim and conmon read back to explain a failure).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::LogFormat;

pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
}

impl Logger {
    pub fn new(file: Option<&Path>, format: LogFormat, _debug: bool) -> Logger {
        Logger {
            file: file.map(Path::to_owned),
            format,
        }
    }

    pub fn error(&self, msg: &str) {
        let msg = msg.replace('\n', " ");
        eprintln!("berth-runc: {msg}");
        let Some(path) = &self.file else { return };
        let time = berth_runtime::state::now_rfc3339();
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({ "level": "error", "msg": msg, "time": time }).to_string()
            }
            LogFormat::Text => format!("time=\"{time}\" level=error msg={msg:?}"),
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
