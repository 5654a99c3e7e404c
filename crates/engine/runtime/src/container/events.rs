//! `events`: resource statistics, once (`--stats`) or every interval, with an
//! `oom` event whenever the kernel's OOM killer struck the container.

use std::io::Write;
use std::time::Duration;

use super::Container;
use crate::error::{Error, Result};
use crate::state::{StateRoot, Status};

/// One `{"type":"stats","id":..,"data":..}` document.
pub fn stats_event(root: &StateRoot, id: &str) -> Result<String> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if status == Status::Stopped {
        return Err(c.wrong_state(status, "read stats"));
    }
    let stats = c.cgroup()?.stats()?;
    let doc = serde_json::json!({ "type": "stats", "id": id, "data": stats });
    Ok(doc.to_string())
}

/// Print stats every `interval` until the container stops.
pub fn events(root: &StateRoot, id: &str, interval: Duration, out: &mut dyn Write) -> Result<()> {
    let mut last_oom: Option<u64> = None;
    loop {
        let c = Container::load(root, id)?;
        if c.status() == Status::Stopped {
            return Ok(());
        }
        let stats = c.cgroup()?.stats()?;
        let value = serde_json::to_value(&stats).expect("serializes");
        let oom = value
            .pointer("/memory/stats/oom_kill")
            .and_then(|v| v.as_u64());
        if let (Some(prev), Some(now)) = (last_oom, oom) {
            if now > prev {
                writeln!(out, "{}", serde_json::json!({ "type": "oom", "id": id }))
                    .map_err(|e| Error::io("writing events", e))?;
            }
        }
        last_oom = oom.or(last_oom);
        writeln!(
            out,
            "{}",
            serde_json::json!({ "type": "stats", "id": id, "data": value })
        )
        .map_err(|e| Error::io("writing events", e))?;
        out.flush().map_err(|e| Error::io("writing events", e))?;
        std::thread::sleep(interval);
    }
}
