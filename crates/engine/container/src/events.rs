//! Engine events as `GET /events` streams them (Docker's `events.Message`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::record::ContainerRecord;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `container`, `image`, `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    // The pre-1.22 fields the docker CLI still reads for containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Event {
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let nanos = berth_image::time::now_nanos();
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            status: None,
            id: None,
            from: None,
        }
    }

    /// A container event: its name, image and labels as attributes, plus `extra`.
    pub fn container(rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) -> Event {
        let mut attrs: BTreeMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.insert("name".into(), rec.name.clone());
        attrs.insert("image".into(), rec.image.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        let mut e = Event::new("container", action, &rec.id, attrs);
        e.status = Some(action.into());
        e.id = Some(rec.id.clone());
        e.from = Some(rec.image.clone());
        e
    }
}

/// How many past events `GET /events?since=` can replay (Docker keeps 256).
const KEPT: usize = 256;

/// The engine's event stream: the latest events kept for `since`, and live subscribers.
pub struct EventLog {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            tx: broadcast::channel(1024).0,
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }
}

impl EventLog {
    pub fn publish(&self, e: Event) {
        let mut recent = self.recent.lock().expect("events lock");
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(e.clone());
        let _ = self.tx.send(e);
    }

    /// The kept events and a subscription to the ones after them, with no gap and no
    /// event twice.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let recent = self.recent.lock().expect("events lock");
        (recent.iter().cloned().collect(), self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_latest_and_hands_over_without_gaps() {
        let log = EventLog::default();
        for i in 0..300 {
            log.publish(Event::new(
                "volume",
                "create",
                &format!("v{i}"),
                BTreeMap::new(),
            ));
        }
        let (past, mut rx) = log.subscribe();
        assert_eq!(past.len(), KEPT);
        assert_eq!(past[0].actor.id, "v44");
        log.publish(Event::new("volume", "destroy", "v299", BTreeMap::new()));
        assert_eq!(rx.try_recv().unwrap().action, "destroy");
    }
}
