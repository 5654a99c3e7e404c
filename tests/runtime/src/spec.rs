//! The config.json every scenario starts from, and a builder to change it.
//!
//! The template is `runc spec` output with two changes: hostname "berth" and
//! `terminal: false`, so a container's stdio is plain files the test can read.
//! Scenarios change only what they test, through named setters or through
//! [`Spec::set`] with a JSON pointer for anything else.

use serde_json::{json, Value};

/// `runc spec` (runc 1.1.5) with hostname "berth" and terminal false.
const TEMPLATE: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["sh"],
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm"
    ],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "berth",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
      "options": ["nosuid", "noexec", "nodev"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": ["nosuid", "noexec", "nodev", "ro"] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
      "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
  ],
  "linux": {
    "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
    "namespaces": [
      { "type": "pid" },
      { "type": "network" },
      { "type": "ipc" },
      { "type": "uts" },
      { "type": "mount" }
    ],
    "maskedPaths": [
      "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
    ],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}"#;

/// A config.json under construction. Setters consume and return it, so a
/// scenario reads as one expression: `Spec::new().args(&["true"]).hostname("x")`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    value: Value,
}

impl Default for Spec {
    fn default() -> Self {
        Self::new()
    }
}

impl Spec {
    /// The template: `runc spec` with hostname "berth" and terminal false.
    pub fn new() -> Self {
        let value = serde_json::from_str(TEMPLATE).expect("the built-in template is valid JSON");
        Spec { value }
    }

    /// The document as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The document as pretty JSON text, as written to config.json.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.value).expect("a Value always serializes")
    }

    /// Sets the value at a JSON pointer (`/process/cwd`), creating missing
    /// objects on the way.
    pub fn set(mut self, pointer: &str, value: Value) -> Self {
        let mut node = &mut self.value;
        let mut keys = pointer.split('/').skip(1).peekable();
        while let Some(key) = keys.next() {
            if !node.is_object() {
                *node = json!({});
            }
            let map = node.as_object_mut().expect("made an object above");
            if keys.peek().is_none() {
                map.insert(key.to_string(), value);
                return self;
            }
            node = map.entry(key.to_string()).or_insert_with(|| json!({}));
        }
        self.value = value;
        self
    }

    /// Removes the value at a JSON pointer, if present.
    pub fn remove(mut self, pointer: &str) -> Self {
        if let Some((parent, key)) = pointer.rsplit_once('/') {
            if let Some(Value::Object(map)) = self.value.pointer_mut(parent) {
                map.remove(key);
            }
        }
        self
    }

    /// The value at a JSON pointer.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }

    /// Appends to the array at a JSON pointer, creating it if missing.
    pub fn push(mut self, pointer: &str, item: Value) -> Self {
        if !matches!(self.value.pointer(pointer), Some(Value::Array(_))) {
            self = self.set(pointer, json!([]));
        }
        if let Some(Value::Array(items)) = self.value.pointer_mut(pointer) {
            items.push(item);
        }
        self
    }

    /// process.args
    pub fn args(self, args: &[&str]) -> Self {
        self.set("/process/args", json!(args))
    }

    /// Shorthand for `args(["sh", "-c", script])`.
    pub fn shell(self, script: &str) -> Self {
        self.args(&["sh", "-c", script])
    }

    /// Appends `KEY=value` to process.env.
    pub fn env(self, entry: &str) -> Self {
        self.push("/process/env", json!(entry))
    }

    /// process.cwd
    pub fn cwd(self, cwd: &str) -> Self {
        self.set("/process/cwd", json!(cwd))
    }

    /// process.user uid and gid, with no additional gids.
    pub fn user(self, uid: u32, gid: u32) -> Self {
        self.set("/process/user", json!({ "uid": uid, "gid": gid }))
    }

    /// process.user.additionalGids
    pub fn additional_gids(self, gids: &[u32]) -> Self {
        self.set("/process/user/additionalGids", json!(gids))
    }

    /// process.terminal
    pub fn terminal(self, on: bool) -> Self {
        self.set("/process/terminal", json!(on))
    }

    /// The same capability list in all five sets (bounding, effective,
    /// permitted, inheritable, ambient).
    pub fn capabilities(self, caps: &[&str]) -> Self {
        self.set(
            "/process/capabilities",
            json!({
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": caps, "ambient": caps,
            }),
        )
    }

    /// root.readonly
    pub fn readonly_root(self, on: bool) -> Self {
        self.set("/root/readonly", json!(on))
    }

    /// hostname
    pub fn hostname(self, name: &str) -> Self {
        self.set("/hostname", json!(name))
    }

    /// Adds a namespace of `kind` (`pid`, `network`, `user`, ...), replacing
    /// one of the same kind; `path` joins an existing namespace.
    pub fn namespace(self, kind: &str, path: Option<&str>) -> Self {
        let entry = match path {
            Some(path) => json!({ "type": kind, "path": path }),
            None => json!({ "type": kind }),
        };
        self.without_namespace(kind)
            .push("/linux/namespaces", entry)
    }

    /// Removes the namespace of `kind`: the container shares the host's.
    pub fn without_namespace(mut self, kind: &str) -> Self {
        if let Some(Value::Array(list)) = self.value.pointer_mut("/linux/namespaces") {
            list.retain(|ns| ns["type"] != kind);
        }
        self
    }

    /// Adds a user namespace mapping container ids 0..size to host ids
    /// host..host+size, for both uids and gids.
    pub fn user_namespace(self, host: u32, size: u32) -> Self {
        let map = json!([{ "containerID": 0, "hostID": host, "size": size }]);
        self.namespace("user", None)
            .set("/linux/uidMappings", map.clone())
            .set("/linux/gidMappings", map)
    }

    /// Appends a mount.
    pub fn mount(self, destination: &str, kind: &str, source: &str, options: &[&str]) -> Self {
        self.push(
            "/mounts",
            json!({
                "destination": destination, "type": kind, "source": source, "options": options,
            }),
        )
    }

    /// Appends a hook to `hooks.<phase>`: `sh -c script` with the host's
    /// /bin/sh (or the container's for startContainer hooks).
    pub fn hook(self, phase: &str, script: &str) -> Self {
        self.push(
            &format!("/hooks/{phase}"),
            json!({ "path": "/bin/sh", "args": ["sh", "-c", script] }),
        )
    }

    /// Sets linux.resources.<key> (e.g. `memory`, `pids`, `cpu`).
    pub fn resources(self, key: &str, value: Value) -> Self {
        self.set(&format!("/linux/resources/{key}"), value)
    }

    /// Adds an annotation.
    pub fn annotation(self, key: &str, value: &str) -> Self {
        let mut spec = self;
        if !matches!(spec.value.pointer("/annotations"), Some(Value::Object(_))) {
            spec = spec.set("/annotations", json!({}));
        }
        if let Some(Value::Object(map)) = spec.value.pointer_mut("/annotations") {
            map.insert(key.to_string(), json!(value));
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_runc_spec_with_berth_hostname_and_no_terminal() {
        let spec = Spec::new();
        assert_eq!(spec.get("/hostname"), Some(&json!("berth")));
        assert_eq!(spec.get("/process/terminal"), Some(&json!(false)));
        assert_eq!(spec.get("/root/path"), Some(&json!("rootfs")));
    }

    #[test]
    fn set_creates_missing_objects() {
        let spec = Spec::new().set("/linux/resources/pids/limit", json!(5));
        assert_eq!(
            spec.get("/linux/resources/pids"),
            Some(&json!({ "limit": 5 }))
        );
    }

    #[test]
    fn namespace_replaces_one_of_the_same_kind() {
        let spec = Spec::new().namespace("network", Some("/run/netns/x"));
        let list = spec.get("/linux/namespaces").unwrap().as_array().unwrap();
        let nets: Vec<_> = list.iter().filter(|ns| ns["type"] == "network").collect();
        assert_eq!(
            nets,
            vec![&json!({ "type": "network", "path": "/run/netns/x" })]
        );
    }

    #[test]
    fn remove_and_push() {
        let spec = Spec::new().remove("/process/rlimits").env("A=b");
        assert_eq!(spec.get("/process/rlimits"), None);
        assert_eq!(spec.get("/process/env/2"), Some(&json!("A=b")));
    }
}
