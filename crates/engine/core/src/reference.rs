//! Image references, normalised as the Docker CLI does (distribution/reference):
//!
//! ```text
//! busybox                      -> docker.io/library/busybox:latest
//! me/app:1.0                   -> docker.io/me/app:1.0
//! localhost:5000/app           -> localhost:5000/app:latest
//! app@sha256:<hex>             -> docker.io/library/app@sha256:<hex>   (no tag added)
//! ```
//!
//! The first path component is a registry domain when it contains `.` or `:`, is `localhost`,
//! or has upper-case letters; otherwise the domain is `docker.io`, and a one-component name on
//! docker.io gets the `library/` prefix.

use std::fmt;

use crate::Digest;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// Why a string is not an image reference. The message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: repository name must not be empty")]
    Empty,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    UpperCase(String),
    #[error("invalid reference format: {0:?} is not a valid repository name")]
    BadName(String),
    #[error("invalid reference format: {0:?} is not a valid tag")]
    BadTag(String),
    #[error("invalid reference format: {0:?} is not a valid digest")]
    BadDigest(String),
    #[error("invalid reference format: repository name must not be longer than 255 characters")]
    TooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
}

impl crate::HasKind for ReferenceError {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

/// A normalised image reference: domain, repository path, and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `s`; adds the `latest` tag when there is neither tag nor digest.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises `s` without adding a default tag (for `docker pull -a`-style
    /// repository names, `images <repo>` filters, and `docker tag` sources).
    pub fn parse_named(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let digest: Digest = d
                    .parse()
                    .map_err(|_| ReferenceError::BadDigest(d.to_string()))?;
                validate_digest_hex(&digest, d)?;
                (n, Some(digest))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(ReferenceError::BadTag(t.clone()));
            }
        }
        if name.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if name.len() == 64
            && name
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(ReferenceError::HexName(name.to_string()));
        }
        let (domain, path) = split_domain(name);
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::UpperCase(name.to_string()));
        }
        if !valid_domain(&domain) || !valid_path(&path) {
            return Err(ReferenceError::BadName(name.to_string()));
        }
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong);
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Registry domain as named (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short name the Docker CLI shows: `busybox`, `me/app`, `localhost:5000/app`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// The familiar form with tag and digest (`busybox:latest`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_ref());
        }
        s
    }

    /// The host to contact for this reference's registry (`registry-1.docker.io` for docker.io).
    pub fn registry_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            &self.domain
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::BadTag(tag.to_string()));
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest (and no tag): a "repo digest".
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone, with neither tag nor digest.
    pub fn without_tag_or_digest(&self) -> Self {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    (domain, path)
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`.
fn valid_path(p: &str) -> bool {
    p.split('/').all(|comp| {
        let b = comp.as_bytes();
        if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric()
        {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return false;
            }
            if i < b.len() && !(b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
                return false;
            }
        }
        true
    })
}

fn validate_digest_hex(d: &Digest, raw: &str) -> Result<(), ReferenceError> {
    let want = match d.algorithm().as_ref() {
        "sha256" => 64,
        "sha512" => 128,
        "sha384" => 96,
        _ => return Ok(()),
    };
    if d.digest().len() == want && d.digest().bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ReferenceError::BadDigest(raw.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("me/app", "docker.io/me/app:latest", "me/app:latest"),
            (
                "index.docker.io/me/app:v1",
                "docker.io/me/app:v1",
                "me/app:v1",
            ),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("localhost/bb", "localhost/bb:latest", "localhost/bb:latest"),
            (
                "localhost:5000/a/b:c",
                "localhost:5000/a/b:c",
                "localhost:5000/a/b:c",
            ),
            (
                "127.0.0.1:5000/x",
                "127.0.0.1:5000/x:latest",
                "127.0.0.1:5000/x:latest",
            ),
            (
                "quay.io/a/b-c__d.e",
                "quay.io/a/b-c__d.e:latest",
                "quay.io/a/b-c__d.e:latest",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
    }

    #[test]
    fn digest_references_get_no_default_tag() {
        let r = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        let r = Reference::parse(&format!("localhost:5000/bb:1@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest().unwrap().digest(), HEX);
    }

    #[test]
    fn registry_host_of_docker_hub() {
        assert_eq!(
            Reference::parse("busybox").unwrap().registry_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("localhost:5000/x")
                .unwrap()
                .registry_host(),
            "localhost:5000"
        );
    }

    #[test]
    fn refuses_bad_references_with_a_reason() {
        assert!(matches!(Reference::parse(""), Err(ReferenceError::Empty)));
        assert!(matches!(
            Reference::parse("BusyBox"),
            Err(ReferenceError::UpperCase(_))
        ));
        assert!(matches!(
            Reference::parse("busybox:"),
            Err(ReferenceError::BadTag(_))
        ));
        assert!(matches!(
            Reference::parse("busybox:-x"),
            Err(ReferenceError::BadTag(_))
        ));
        assert!(matches!(
            Reference::parse("bu..sy"),
            Err(ReferenceError::BadName(_))
        ));
        assert!(matches!(
            Reference::parse("a//b"),
            Err(ReferenceError::BadName(_))
        ));
        assert!(matches!(
            Reference::parse("-a"),
            Err(ReferenceError::BadName(_))
        ));
        assert!(matches!(
            Reference::parse("busybox@sha256:abc"),
            Err(ReferenceError::BadDigest(_))
        ));
        assert!(matches!(
            Reference::parse("busybox@md5"),
            Err(ReferenceError::BadDigest(_))
        ));
        assert!(matches!(
            Reference::parse(HEX),
            Err(ReferenceError::HexName(_))
        ));
        assert!(matches!(
            Reference::parse(&"a".repeat(300)),
            Err(ReferenceError::TooLong)
        ));
        assert!(matches!(
            Reference::parse("localhost:x/a"),
            Err(ReferenceError::BadName(_))
        ));
    }

    #[test]
    fn retagging_keeps_the_repository() {
        let r = Reference::parse("localhost:5000/a:1").unwrap();
        assert_eq!(r.with_tag("2").unwrap().to_string(), "localhost:5000/a:2");
        assert!(r.with_tag("bad tag").is_err());
    }
}
