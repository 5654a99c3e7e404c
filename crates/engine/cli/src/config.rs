//! The docker CLI's config directory (`~/.docker/config.json`): stored registry credentials,
//! and the `X-Registry-Auth` header built from them for pull and push.
//!
//! Only the `auths` key is touched; every other key in the file is kept as it was.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

/// The key docker uses for Docker Hub credentials.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// The body of `POST /auth` and, base64url-encoded, of `X-Registry-Auth`.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` header value: base64url (with padding) of the JSON, as docker sends.
    pub fn header(&self) -> String {
        URL_SAFE.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// `https://host/v1/` or `host` → `host`, as docker's `ConvertToHostname`.
pub fn hostname(server: &str) -> &str {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    s.split('/').next().unwrap_or(s)
}

/// The config key for a registry: Docker Hub's index URL for docker.io, else the hostname.
pub fn server_key(registry: &str) -> String {
    let host = hostname(registry);
    if host.is_empty()
        || matches!(
            host,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    {
        INDEX_SERVER.to_string()
    } else {
        host.to_string()
    }
}

pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl ConfigFile {
    /// Loads `<dir>/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(ConfigFile { path, doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `detachKeys` setting (the default detach sequence for `run`, `start` and `exec`).
    pub fn detach_keys(&self) -> Option<String> {
        self.doc
            .get("detachKeys")?
            .as_str()
            .filter(|k| !k.is_empty())
            .map(str::to_string)
    }

    /// The key under `auths` that matches `registry`'s hostname, if any.
    fn find_key(&self, registry: &str) -> Option<String> {
        let want = server_key(registry);
        let auths = self.doc.get("auths")?.as_object()?;
        if auths.contains_key(&want) {
            return Some(want);
        }
        auths.keys().find(|k| server_key(k) == want).cloned()
    }

    /// Stored credentials for `registry` (`docker.io`, `localhost:5000`, or a URL).
    pub fn auth_for(&self, registry: &str) -> AuthConfig {
        let key = server_key(registry);
        let Some(found) = self.find_key(registry) else {
            return AuthConfig {
                serveraddress: key,
                ..Default::default()
            };
        };
        let entry = &self.doc["auths"][&found];
        let mut auth = AuthConfig {
            serveraddress: found.clone(),
            identitytoken: entry["identitytoken"].as_str().unwrap_or("").to_string(),
            ..Default::default()
        };
        if let Some(encoded) = entry["auth"].as_str() {
            if let Some((user, pass)) = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
            {
                auth.username = user;
                auth.password = pass;
            }
        }
        auth
    }

    pub fn store(&mut self, auth: &AuthConfig) {
        let key = self
            .find_key(&auth.serveraddress)
            .unwrap_or_else(|| server_key(&auth.serveraddress));
        let mut entry = Map::new();
        let secret = if auth.identitytoken.is_empty() {
            auth.password.as_str()
        } else {
            ""
        };
        entry.insert(
            "auth".into(),
            Value::String(STANDARD.encode(format!("{}:{secret}", auth.username))),
        );
        if !auth.identitytoken.is_empty() {
            entry.insert(
                "identitytoken".into(),
                Value::String(auth.identitytoken.clone()),
            );
        }
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(map) = auths {
            map.insert(key, Value::Object(entry));
        }
    }

    /// Removes the credentials for `registry`; false when there were none.
    pub fn remove(&mut self, registry: &str) -> bool {
        let Some(key) = self.find_key(registry) else {
            return false;
        };
        self.doc
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .is_some_and(|m| m.remove(&key).is_some())
    }

    /// Writes the file (tab-indented like docker) with mode 0600, replacing it atomically.
    pub fn save(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut bytes = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
        self.doc.serialize(&mut ser)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// `--config`, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn header_is_base64url_json() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        };
        let decoded = URL_SAFE.decode(a.header()).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            r#"{"username":"u","password":"p?>","serveraddress":"localhost:5000"}"#
        );
        assert!(!a.header().contains('+') && !a.header().contains('/'));
    }

    #[test]
    fn keys_and_hostnames() {
        assert_eq!(server_key("docker.io"), INDEX_SERVER);
        assert_eq!(server_key(INDEX_SERVER), INDEX_SERVER);
        assert_eq!(server_key(""), INDEX_SERVER);
        assert_eq!(server_key("https://localhost:5000/v2/"), "localhost:5000");
        assert_eq!(hostname("http://reg.example"), "reg.example");
    }

    #[test]
    fn store_load_remove_keeps_other_keys() {
        let dir = tempdir();
        std::fs::write(
            dir.join("config.json"),
            r#"{"credsStore":"","psFormat":"x","auths":{"https://reg.example/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let mut c = ConfigFile::load(&dir).unwrap();
        let found = c.auth_for("reg.example");
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("a", "b")
        );
        assert_eq!(found.serveraddress, "https://reg.example/v1/");
        c.store(&AuthConfig {
            username: "me".into(),
            password: "pw:x".into(),
            serveraddress: "docker.io".into(),
            ..Default::default()
        });
        c.save().unwrap();
        let mode = std::fs::metadata(dir.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["psFormat"], "x");
        assert_eq!(
            doc["auths"][INDEX_SERVER]["auth"],
            STANDARD.encode("me:pw:x")
        );
        let c = ConfigFile::load(&dir).unwrap();
        assert_eq!(c.auth_for("docker.io").password, "pw:x");
        let mut c = c;
        assert!(c.remove("https://reg.example"));
        assert!(!c.remove("reg.example"));
        assert_eq!(c.auth_for("nowhere:1").serveraddress, "nowhere:1");
        assert_eq!(c.auth_for("nowhere:1").username, "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-cli-config-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
