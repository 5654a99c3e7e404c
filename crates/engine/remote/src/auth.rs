//! Credentials, `WWW-Authenticate` challenges and docker's config.json.
//!
//! A registry answers an unauthenticated request with 401 and a challenge: `Basic realm=...`
//! (send the credentials with every request) or `Bearer realm=...,service=...,scope=...`
//! (fetch a short-lived token from the realm, sending the credentials there, then send the token
//! to the registry). The client in [`crate::client`] acts on the parsed [`Challenge`].

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use crate::RemoteError;

/// A user name and password (or access token used as password) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// How a registry wants to be authenticated, from its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No challenge seen: requests go out anonymously.
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one `WWW-Authenticate` value. Unknown schemes give `None`.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// Splits `key="quoted, value",key2=token` into pairs; quoted values may contain commas and
/// backslash escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

/// The answer of a token server; Docker's uses `token`, OAuth2 servers `access_token`.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime in seconds; the spec says 60 when absent.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The keys under which docker stores the credentials of `host`: Docker Hub goes by its legacy
/// index URL, other registries by their host with or without a scheme.
fn config_keys_match(key: &str, host: &str) -> bool {
    let is_hub = |h: &str| {
        matches!(
            h,
            "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
        )
    };
    let key_host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let key_host = key_host.split('/').next().unwrap_or(key_host);
    key_host == host || (is_hub(host) && is_hub(key_host))
}

/// Reads the credentials for `host` from a docker `config.json` (`auths.<host>.auth` =
/// base64 of `user:password`, or `username`/`password` fields). Docker Hub is stored under
/// `https://index.docker.io/v1/`; `host` may be `docker.io` or `registry-1.docker.io` for it.
/// A missing file or a host without an entry gives `Ok(None)`.
pub fn credentials_from_docker_config(
    path: &Path,
    host: &str,
) -> Result<Option<Credentials>, RemoteError> {
    let raw = match std::fs::read(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RemoteError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let bad = |reason: String| RemoteError::DockerConfig {
        path: path.to_path_buf(),
        reason,
    };
    let config: DockerConfig = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    // An exact key wins over a scheme-qualified or Docker Hub alias.
    let entry = config.auths.get(host).or_else(|| {
        let mut keys: Vec<&String> = config.auths.keys().collect();
        keys.sort();
        keys.into_iter()
            .find(|k| config_keys_match(k, host))
            .and_then(|k| config.auths.get(k))
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("auth for {host} is not base64: {e}")))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| bad(format!("auth for {host} is not UTF-8")))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad(format!("auth for {host} is not user:password")))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse("Bearer realm=http://x/t,service=svc"),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("svc".into()),
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let hub = base64::engine::general_purpose::STANDARD.encode("me:s3cret:with:colons");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{hub}"}},
                "localhost:5000":{{"username":"u","password":"p"}},
                "broken.example":{{"auth":"***"}}}}}}"#
            ),
        )
        .unwrap();
        let hub = credentials_from_docker_config(&path, "registry-1.docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "me");
        assert_eq!(hub.password, "s3cret:with:colons");
        let local = credentials_from_docker_config(&path, "localhost:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("u", "p")
        );
        assert!(credentials_from_docker_config(&path, "other:5000")
            .unwrap()
            .is_none());
        assert!(credentials_from_docker_config(&path, "broken.example").is_err());
        assert!(
            credentials_from_docker_config(&dir.path().join("missing.json"), "x")
                .unwrap()
                .is_none()
        );
        assert!(!format!("{local:?}").contains("\"p\""));
    }
}
