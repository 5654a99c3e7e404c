//! Image manifests, indexes and configs: what a registry or an archive hands us, checked before
//! anything is stored or unpacked.
//!
//! A pull starts with the document a tag points to. [`parse_manifest`] tells an index (OCI image
//! index, Docker manifest list) from a platform manifest (OCI manifest, Docker schema2), using
//! the `Content-Type` when there is one and the document's own `mediaType` and shape otherwise.
//! For an index, [`select_platform`] picks the manifest of the wanted [`Platform`] (the host's by
//! default). [`ManifestLayers`] is the part of a manifest the engine acts on: the config and
//! the layers with their compression. [`ImageConfig`] keeps the config's raw JSON (it is the
//! image ID's preimage and `docker inspect` shows it) with typed access to what the engine
//! needs: the diff ids that name the unpacked layers, the history, and the container defaults.
//!
//! Everything is validated on the way in: digests must be well formed, sizes non-negative and
//! sane, the layer count must match the config's diff ids, and a malformed document gives an
//! error naming the field. Docker schema1 manifests are refused.

use std::collections::BTreeMap;
use std::fmt;

use berth_core::{Digest, ErrorKind, HasKind};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;
use serde_json::Value;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_LAYER_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The largest size a descriptor may declare (1 TiB): anything bigger is a lie or an attack.
pub const MAX_DESCRIPTOR_SIZE: u64 = 1 << 40;

/// Why a manifest, index or config was refused. Messages name the document and the field.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{document} is not valid JSON: {source}")]
    Json {
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{document}: field {field}: {problem}")]
    Field {
        document: &'static str,
        field: String,
        problem: String,
    },
    #[error("schema1 manifests are not supported (media type {media_type}); push the image again with a current client to get a schema2 or OCI manifest")]
    Schema1 { media_type: String },
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    #[error("cannot tell what kind of manifest this is: no known mediaType and neither \"manifests\" nor \"layers\"")]
    UnknownKind,
    #[error("the manifest is served as {hint} but its mediaType says {declared}")]
    MediaTypeConflict { hint: String, declared: String },
    #[error("expected an image manifest but got an index ({media_type}); select a platform first")]
    NotAManifest { media_type: String },
    #[error("unsupported layer media type {media_type:?} (layer {index})")]
    UnsupportedLayer { index: usize, media_type: String },
    #[error("not a container image: config media type is {media_type:?}")]
    NotAnImage { media_type: String },
    #[error("the manifest has {layers} layers but the config has {diff_ids} diff ids")]
    LayerCountMismatch { layers: usize, diff_ids: usize },
    #[error("image config has no rootfs")]
    NoRootfs,
    #[error("image config rootfs type is {found:?}, expected \"layers\"")]
    BadRootfsType { found: String },
    #[error("no matching manifest for {wanted} in the manifest list entries (available: {})", available.join(", "))]
    NoMatchingPlatform {
        wanted: Platform,
        available: Vec<String>,
    },
    #[error("invalid platform {value:?}: {reason}")]
    InvalidPlatform { value: String, reason: &'static str },
}

impl HasKind for ManifestError {
    fn kind(&self) -> ErrorKind {
        match self {
            ManifestError::Schema1 { .. }
            | ManifestError::UnsupportedMediaType { .. }
            | ManifestError::UnsupportedLayer { .. } => ErrorKind::NotImplemented,
            ManifestError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

fn field_err(
    document: &'static str,
    field: impl Into<String>,
    problem: impl Into<String>,
) -> ManifestError {
    ManifestError::Field {
        document,
        field: field.into(),
        problem: problem.into(),
    }
}

/// A parsed top-level document: an index of platform manifests, or one image manifest.
#[derive(Debug, Clone, PartialEq)]
// A short-lived parse result, matched on at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    Index(ImageIndex),
    Manifest(ImageManifest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Index,
    Manifest,
}

/// The kind a media type names; `None` for media types that say nothing (e.g. `application/json`).
fn kind_of_media_type(media_type: &str) -> Result<Option<Kind>, ManifestError> {
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(Some(Kind::Index)),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Some(Kind::Manifest)),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(ManifestError::Schema1 {
            media_type: media_type.to_string(),
        }),
        "" | "application/json" | "text/plain" | "application/octet-stream" => Ok(None),
        other => Err(ManifestError::UnsupportedMediaType {
            media_type: other.to_string(),
        }),
    }
}

/// Parses an index or a manifest. `content_type_hint` is the HTTP `Content-Type` or the media
/// type of the descriptor that pointed here; without it the document's `mediaType` and shape
/// decide.
pub fn parse_manifest(
    bytes: &[u8],
    content_type_hint: Option<&str>,
) -> Result<Parsed, ManifestError> {
    const DOC: &str = "manifest";
    let value: Value = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
        document: DOC,
        source,
    })?;
    let obj = value
        .as_object()
        .ok_or_else(|| field_err(DOC, "(document)", "must be a JSON object"))?;
    if obj.get("schemaVersion").and_then(Value::as_u64) == Some(1) || obj.contains_key("fsLayers") {
        return Err(ManifestError::Schema1 {
            media_type: obj
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or(DOCKER_SCHEMA1)
                .to_string(),
        });
    }
    let hint = content_type_hint
        .map(|h| h.split(';').next().unwrap_or("").trim())
        .filter(|h| !h.is_empty());
    let hinted = match hint {
        Some(h) => kind_of_media_type(h)?,
        None => None,
    };
    let declared_type = match obj.get("mediaType") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(field_err(DOC, "mediaType", "must be a string")),
    };
    let declared = match declared_type {
        Some(t) => kind_of_media_type(t)?,
        None => None,
    };
    let kind = match (hinted, declared) {
        (Some(h), Some(d)) if h != d => {
            return Err(ManifestError::MediaTypeConflict {
                hint: hint.unwrap_or_default().to_string(),
                declared: declared_type.unwrap_or_default().to_string(),
            })
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) if obj.contains_key("manifests") => Kind::Index,
        (None, None) if obj.contains_key("layers") || obj.contains_key("config") => Kind::Manifest,
        (None, None) => return Err(ManifestError::UnknownKind),
    };
    match obj.get("schemaVersion") {
        Some(v) if v.as_u64() == Some(2) => {}
        Some(v) => {
            return Err(field_err(
                DOC,
                "schemaVersion",
                format!("must be 2, found {v}"),
            ))
        }
        None => return Err(field_err(DOC, "schemaVersion", "is missing")),
    }
    match kind {
        Kind::Index => {
            let manifests = obj
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or_else(|| field_err("index", "manifests", "must be an array"))?;
            for (i, d) in manifests.iter().enumerate() {
                check_descriptor("index", &format!("manifests[{i}]"), d)?;
            }
            serde_json::from_value(value)
                .map(Parsed::Index)
                .map_err(|source| ManifestError::Json {
                    document: "index",
                    source,
                })
        }
        Kind::Manifest => {
            let config = obj
                .get("config")
                .ok_or_else(|| field_err(DOC, "config", "is missing"))?;
            check_descriptor(DOC, "config", config)?;
            let layers = obj
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| field_err(DOC, "layers", "must be an array"))?;
            for (i, d) in layers.iter().enumerate() {
                check_descriptor(DOC, &format!("layers[{i}]"), d)?;
            }
            serde_json::from_value(value)
                .map(Parsed::Manifest)
                .map_err(|source| ManifestError::Json {
                    document: DOC,
                    source,
                })
        }
    }
}

/// Checks a descriptor's mediaType, digest and size, naming the field on failure.
fn check_descriptor(document: &'static str, at: &str, d: &Value) -> Result<(), ManifestError> {
    let obj = d
        .as_object()
        .ok_or_else(|| field_err(document, at, "must be an object"))?;
    match obj.get("mediaType") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            return Err(field_err(
                document,
                format!("{at}.mediaType"),
                "must be a non-empty string",
            ))
        }
    }
    let digest = obj
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| field_err(document, format!("{at}.digest"), "must be a string"))?;
    parse_digest(document, &format!("{at}.digest"), digest)?;
    let size = obj.get("size");
    match size.and_then(Value::as_u64) {
        Some(s) if s <= MAX_DESCRIPTOR_SIZE => Ok(()),
        Some(s) => Err(field_err(
            document,
            format!("{at}.size"),
            format!("{s} bytes is more than the {MAX_DESCRIPTOR_SIZE} bytes a blob may have"),
        )),
        None => Err(field_err(
            document,
            format!("{at}.size"),
            match size {
                None => "is missing".to_string(),
                Some(v) => format!("must be a non-negative integer, found {v}"),
            },
        )),
    }
}

fn parse_digest(document: &'static str, field: &str, s: &str) -> Result<Digest, ManifestError> {
    let digest: Digest = s
        .parse()
        .map_err(|e| field_err(document, field, format!("{s:?} is not a valid digest: {e}")))?;
    match digest.algorithm() {
        oci_spec::image::DigestAlgorithm::Sha256
        | oci_spec::image::DigestAlgorithm::Sha384
        | oci_spec::image::DigestAlgorithm::Sha512 => Ok(digest),
        other => Err(field_err(
            document,
            field,
            format!("unsupported digest algorithm {other}"),
        )),
    }
}

/// An operating system, CPU architecture and optional variant, in Go's names (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// The host's platform: `linux/amd64` on x86-64.
    fn default() -> Self {
        Platform {
            os: "linux".to_string(),
            architecture: normalize_arch(std::env::consts::ARCH).to_string(),
            variant: None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

const KNOWN_OSES: &[&str] = &[
    "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix",
    "plan9", "wasip1",
];

impl Platform {
    /// Parses `os[/arch[/variant]]` as `docker --platform` takes it; a lone architecture
    /// (`arm64`) means Linux, a lone OS the host's architecture. Names are normalised
    /// (`x86_64` is `amd64`, `aarch64` is `arm64`).
    pub fn parse(s: &str) -> Result<Self, ManifestError> {
        let invalid = |reason| ManifestError::InvalidPlatform {
            value: s.to_string(),
            reason,
        };
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid("empty component"));
        }
        if parts.iter().any(|p| {
            !p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        }) {
            return Err(invalid(
                "components may only hold letters, digits, '_', '.' and '-'",
            ));
        }
        let host = Platform::default();
        let (os, arch, variant) = match parts.as_slice() {
            [one] if KNOWN_OSES.contains(one) => (one.to_string(), host.architecture, None),
            [one] => ("linux".to_string(), one.to_string(), None),
            [os, arch] => (os.to_string(), arch.to_string(), None),
            [os, arch, variant] => (os.to_string(), arch.to_string(), Some(variant.to_string())),
            _ => return Err(invalid("expected os[/arch[/variant]]")),
        };
        Ok(Platform {
            os,
            architecture: normalize_arch(&arch).to_string(),
            variant,
        })
    }

    /// Whether a descriptor's platform satisfies this one. A wanted variant must match (with
    /// `arm64` meaning `v8` and `arm` meaning `v7` when unset); no wanted variant takes any.
    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let arch = normalize_arch(arch);
        if self.os != os || self.architecture != arch {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => variant.or(default_variant(arch)) == Some(want.as_str()),
        }
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        "armhf" | "armel" => "arm",
        other => other,
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// Picks the manifest for `wanted` from an index. Entries without a platform are taken only
/// when the index has exactly one entry. Among matches, the one whose variant is exactly the
/// wanted (or the architecture's default) variant wins; otherwise the first match.
pub fn select_platform(index: &ImageIndex, wanted: &Platform) -> Result<Descriptor, ManifestError> {
    let manifests = index.manifests();
    if let [only] = manifests.as_slice() {
        if only.platform().is_none() {
            return Ok(only.clone());
        }
    }
    let mut first_match = None;
    let mut available = Vec::new();
    for d in manifests {
        let Some(p) = d.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        let variant = p.variant().as_deref();
        if os != "unknown" {
            let mut name = format!("{os}/{arch}");
            if let Some(v) = variant {
                name.push('/');
                name.push_str(v);
            }
            available.push(name);
        }
        if !wanted.matches(&os, &arch, variant) {
            continue;
        }
        let preferred = match &wanted.variant {
            Some(_) => true,
            None => variant.is_none() || variant == default_variant(normalize_arch(&arch)),
        };
        if preferred {
            return Ok(d.clone());
        }
        first_match.get_or_insert(d);
    }
    first_match
        .cloned()
        .ok_or_else(|| ManifestError::NoMatchingPlatform {
            wanted: wanted.clone(),
            available,
        })
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// A blob a manifest names: its digest, size and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// A layer of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub compression: LayerCompression,
    /// A foreign or non-distributable layer: fetched from `urls` (if any), never pushed.
    pub foreign: bool,
    pub urls: Vec<String>,
}

/// What the engine needs from an image manifest: the config blob and the layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLayers {
    pub media_type: String,
    pub config: BlobRef,
    pub layers: Vec<LayerRef>,
}

impl ManifestLayers {
    /// Parses an image manifest (not an index) and checks its config and layer media types.
    pub fn from_manifest_bytes(
        bytes: &[u8],
        content_type_hint: Option<&str>,
    ) -> Result<Self, ManifestError> {
        match parse_manifest(bytes, content_type_hint)? {
            Parsed::Manifest(m) => {
                let media_type = m
                    .media_type()
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| {
                        content_type_hint
                            .map(|h| h.split(';').next().unwrap_or("").trim().to_string())
                    })
                    .filter(|t| kind_of_media_type(t).ok().flatten().is_some())
                    .unwrap_or_else(|| OCI_MANIFEST.to_string());
                Self::from_manifest(&m, media_type)
            }
            Parsed::Index(i) => Err(ManifestError::NotAManifest {
                media_type: i
                    .media_type()
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| OCI_INDEX.to_string()),
            }),
        }
    }

    /// The layers of a parsed manifest; `media_type` is the manifest's own.
    pub fn from_manifest(m: &ImageManifest, media_type: String) -> Result<Self, ManifestError> {
        let config_type = m.config().media_type().to_string();
        if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
            return Err(ManifestError::NotAnImage {
                media_type: config_type,
            });
        }
        let config = BlobRef {
            digest: m.config().digest().clone(),
            size: m.config().size(),
            media_type: config_type,
        };
        let layers = m
            .layers()
            .iter()
            .enumerate()
            .map(|(index, d)| {
                let media_type = d.media_type().to_string();
                let (compression, foreign) = match media_type.as_str() {
                    OCI_LAYER_TAR | DOCKER_LAYER_TAR => (LayerCompression::None, false),
                    OCI_LAYER_TAR_GZIP | DOCKER_LAYER_TAR_GZIP => (LayerCompression::Gzip, false),
                    OCI_LAYER_TAR_ZSTD => (LayerCompression::Zstd, false),
                    OCI_LAYER_NONDIST_TAR => (LayerCompression::None, true),
                    OCI_LAYER_NONDIST_TAR_GZIP | DOCKER_FOREIGN_LAYER_TAR_GZIP => {
                        (LayerCompression::Gzip, true)
                    }
                    OCI_LAYER_NONDIST_TAR_ZSTD => (LayerCompression::Zstd, true),
                    _ => return Err(ManifestError::UnsupportedLayer { index, media_type }),
                };
                Ok(LayerRef {
                    digest: d.digest().clone(),
                    size: d.size(),
                    media_type,
                    compression,
                    foreign,
                    urls: d.urls().clone().unwrap_or_default(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ManifestLayers {
            media_type,
            config,
            layers,
        })
    }

    /// Checks that the config describes as many layers as the manifest has.
    pub fn check_config(&self, config: &ImageConfig) -> Result<(), ManifestError> {
        let diff_ids = config.diff_ids()?;
        if diff_ids.len() != self.layers.len() {
            return Err(ManifestError::LayerCountMismatch {
                layers: self.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(())
    }
}

/// The container defaults of an image config (`config` in the JSON), with Docker's field names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// One entry of an image's history, as `docker history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The step made no layer (ENV, CMD, ...): it has no diff id.
    #[serde(default)]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct ConfigDoc {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
    #[serde(default)]
    history: Vec<History>,
}

/// An image config: the raw JSON plus typed access to what the engine uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    raw: Value,
    doc: ConfigDoc,
    /// `None` when the config has no rootfs; validated when present.
    diff_ids: Option<Vec<Digest>>,
}

impl ImageConfig {
    /// Parses and validates an image config (OCI or Docker).
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        const DOC: &str = "image config";
        let raw: Value = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
            document: DOC,
            source,
        })?;
        if !raw.is_object() {
            return Err(field_err(DOC, "(document)", "must be a JSON object"));
        }
        let diff_ids = match raw.get("rootfs") {
            None | Some(Value::Null) => None,
            Some(rootfs) => {
                match rootfs.get("type").and_then(Value::as_str) {
                    Some("layers") => {}
                    Some(other) => {
                        return Err(ManifestError::BadRootfsType {
                            found: other.to_string(),
                        })
                    }
                    None => {
                        return Err(field_err(
                            DOC,
                            "rootfs.type",
                            "must be the string \"layers\"",
                        ))
                    }
                }
                let ids = match rootfs.get("diff_ids") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(ids)) => ids
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let field = format!("rootfs.diff_ids[{i}]");
                            let s = v
                                .as_str()
                                .ok_or_else(|| field_err(DOC, field.clone(), "must be a string"))?;
                            parse_digest(DOC, &field, s)
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(field_err(DOC, "rootfs.diff_ids", "must be an array")),
                };
                Some(ids)
            }
        };
        let doc: ConfigDoc =
            serde_json::from_value(raw.clone()).map_err(|source| ManifestError::Json {
                document: DOC,
                source,
            })?;
        Ok(ImageConfig { raw, doc, diff_ids })
    }

    /// The config exactly as stored (for `docker inspect` and `save`).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The diff ids (digests of the uncompressed layers), bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, ManifestError> {
        self.diff_ids.clone().ok_or(ManifestError::NoRootfs)
    }

    pub fn history(&self) -> &[History] {
        &self.doc.history
    }

    /// The `created` time as written (RFC 3339).
    pub fn created(&self) -> Option<&str> {
        self.doc.created.as_deref()
    }

    /// The `created` time in unix seconds; `None` when absent or unreadable.
    pub fn created_secs(&self) -> Option<i64> {
        self.created().and_then(crate::time::parse_rfc3339_secs)
    }

    pub fn author(&self) -> Option<&str> {
        self.doc.author.as_deref()
    }

    pub fn architecture(&self) -> &str {
        &self.doc.architecture
    }

    pub fn os(&self) -> &str {
        &self.doc.os
    }

    pub fn variant(&self) -> Option<&str> {
        self.doc.variant.as_deref()
    }

    /// The platform the image was built for.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.doc.os.clone(),
            architecture: normalize_arch(&self.doc.architecture).to_string(),
            variant: self.doc.variant.clone(),
        }
    }

    /// The container defaults (empty when the config has none, as `FROM scratch` images may).
    pub fn container_config(&self) -> &ContainerConfig {
        static EMPTY: ContainerConfig = ContainerConfig {
            env: None,
            cmd: None,
            entrypoint: None,
            working_dir: None,
            user: None,
            labels: None,
            exposed_ports: None,
            volumes: None,
            stop_signal: None,
        };
        self.doc.config.as_ref().unwrap_or(&EMPTY)
    }

    pub fn env(&self) -> &[String] {
        self.container_config().env.as_deref().unwrap_or_default()
    }

    pub fn cmd(&self) -> Option<&[String]> {
        self.container_config().cmd.as_deref()
    }

    pub fn entrypoint(&self) -> Option<&[String]> {
        self.container_config().entrypoint.as_deref()
    }

    pub fn working_dir(&self) -> Option<&str> {
        self.container_config()
            .working_dir
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    pub fn user(&self) -> Option<&str> {
        self.container_config()
            .user
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.container_config().labels.clone().unwrap_or_default()
    }

    /// Exposed ports as written, e.g. `80/tcp`.
    pub fn exposed_ports(&self) -> Vec<String> {
        self.container_config()
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn volumes(&self) -> Vec<String> {
        self.container_config()
            .volumes
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn stop_signal(&self) -> Option<&str> {
        self.container_config()
            .stop_signal
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    /// busybox's manifest list as Docker Hub serves it (trimmed to a few platforms).
    fn docker_manifest_list() -> String {
        format!(
            r#"{{
   "manifests": [
      {{"digest": "{D1}", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "platform": {{"architecture": "amd64", "os": "linux"}}, "size": 528}},
      {{"digest": "{D2}", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "platform": {{"architecture": "arm", "os": "linux", "variant": "v6"}}, "size": 528}},
      {{"digest": "{D3}", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "platform": {{"architecture": "arm64", "os": "linux", "variant": "v8"}}, "size": 528}}
   ],
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "schemaVersion": 2
}}"#
        )
    }

    /// An OCI index as buildx writes it, with an attestation manifest for unknown/unknown.
    fn oci_index_with_attestation() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":1000,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D2}","size":1000,"platform":{{"architecture":"arm64","os":"linux"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D3}","size":566,
              "annotations":{{"vnd.docker.reference.digest":"{D1}","vnd.docker.reference.type":"attestation-manifest"}},
              "platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#
        )
    }

    /// A Docker schema2 manifest as `docker push` writes it.
    fn docker_manifest() -> String {
        format!(
            r#"{{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {{"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1457, "digest": "{D1}"}},
   "layers": [
      {{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2152262, "digest": "{D2}"}},
      {{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 5, "digest": "{D3}",
        "urls": ["https://mcr.microsoft.com/layer"]}}
   ]
}}"#
        )
    }

    /// An OCI manifest as skopeo copies it (no top-level mediaType, annotations).
    fn skopeo_oci_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":583}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{D2}","size":1000}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D3}","size":2048}}],"annotations":{{"org.opencontainers.image.base.name":"docker.io/library/alpine"}}}}"#
        )
    }

    /// A Docker image config (busybox-like), with fields berth does not type.
    fn docker_config() -> String {
        format!(
            r##"{{"architecture":"amd64","config":{{"Hostname":"","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd":["sh"],"Entrypoint":null,"WorkingDir":"/srv","User":"1000:1000","Labels":{{"org.example":"yes"}},
            "ExposedPorts":{{"80/tcp":{{}},"53/udp":{{}}}},"Volumes":{{"/data":{{}}}},"StopSignal":"SIGQUIT"}},
            "container":"abc","container_config":{{"Cmd":["/bin/sh","-c","#(nop) CMD [\"sh\"]"]}},
            "created":"2024-09-26T21:31:42.123456789Z","docker_version":"23.0.11",
            "history":[{{"created":"2024-09-26T21:31:41Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "}},
                       {{"created":"2024-09-26T21:31:42Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}}],
            "os":"linux","rootfs":{{"type":"layers","diff_ids":["{D3}"]}}}}"##
        )
    }

    fn field_of(e: &ManifestError) -> &str {
        match e {
            ManifestError::Field { field, .. } => field,
            other => panic!("expected a field error, got {other}"),
        }
    }

    #[test]
    fn docker_manifest_list_is_an_index_with_or_without_hint() {
        let doc = docker_manifest_list();
        for hint in [Some(DOCKER_MANIFEST_LIST), Some("application/json"), None] {
            let Parsed::Index(index) = parse_manifest(doc.as_bytes(), hint).unwrap() else {
                panic!("not an index with hint {hint:?}");
            };
            assert_eq!(index.manifests().len(), 3);
        }
        // A Content-Type with parameters is understood.
        assert!(matches!(
            parse_manifest(
                doc.as_bytes(),
                Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8")
            )
            .unwrap(),
            Parsed::Index(_)
        ));
    }

    #[test]
    fn index_without_media_type_is_detected_by_shape() {
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":7,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        assert!(matches!(
            parse_manifest(doc.as_bytes(), None).unwrap(),
            Parsed::Index(_)
        ));
    }

    #[test]
    fn docker_and_skopeo_manifests_give_their_layers() {
        let m = ManifestLayers::from_manifest_bytes(
            docker_manifest().as_bytes(),
            Some(DOCKER_MANIFEST),
        )
        .unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        assert_eq!(m.config.digest.to_string(), D1);
        assert_eq!(m.config.size, 1457);
        assert_eq!(m.config.media_type, DOCKER_CONFIG);
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0].compression, LayerCompression::Gzip);
        assert!(!m.layers[0].foreign);
        assert_eq!(m.layers[0].size, 2152262);
        assert!(m.layers[1].foreign);
        assert_eq!(
            m.layers[1].urls,
            vec!["https://mcr.microsoft.com/layer".to_string()]
        );

        let m =
            ManifestLayers::from_manifest_bytes(skopeo_oci_manifest().as_bytes(), None).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.config.media_type, OCI_CONFIG);
        assert_eq!(
            m.layers.iter().map(|l| l.compression).collect::<Vec<_>>(),
            vec![LayerCompression::Zstd, LayerCompression::None]
        );
    }

    #[test]
    fn an_index_is_not_a_manifest() {
        let err = ManifestLayers::from_manifest_bytes(docker_manifest_list().as_bytes(), None)
            .unwrap_err();
        assert!(matches!(err, ManifestError::NotAManifest { .. }), "{err}");
    }

    #[test]
    fn schema1_is_refused_clearly() {
        let doc = r#"{"schemaVersion":1,"name":"library/busybox","tag":"latest","architecture":"amd64",
            "fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
            "history":[{"v1Compatibility":"{}"}],"signatures":[]}"#;
        for hint in [
            None,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        ] {
            let err = parse_manifest(doc.as_bytes(), hint).unwrap_err();
            assert!(
                err.to_string()
                    .contains("schema1 manifests are not supported"),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::NotImplemented);
        }
    }

    #[test]
    fn bad_documents_name_the_field() {
        let bad_digest = docker_manifest().replace(D2, "sha256:1234");
        assert_eq!(
            field_of(&parse_manifest(bad_digest.as_bytes(), None).unwrap_err()),
            "layers[0].digest"
        );

        let negative = docker_manifest().replace("2152262", "-5");
        let err = parse_manifest(negative.as_bytes(), None).unwrap_err();
        assert_eq!(field_of(&err), "layers[0].size");
        assert!(err.to_string().contains("-5"), "{err}");

        let huge = docker_manifest().replace("1457", "18446744073709551615");
        assert_eq!(
            field_of(&parse_manifest(huge.as_bytes(), None).unwrap_err()),
            "config.size"
        );

        let no_config = skopeo_oci_manifest().replace("\"config\"", "\"konfig\"");
        assert_eq!(
            field_of(&parse_manifest(no_config.as_bytes(), Some(OCI_MANIFEST)).unwrap_err()),
            "config"
        );

        let bad_index = docker_manifest_list().replace("\"size\": 528", "\"size\": \"528\"");
        assert_eq!(
            field_of(&parse_manifest(bad_index.as_bytes(), None).unwrap_err()),
            "manifests[0].size"
        );

        let err = parse_manifest(b"{not json", None).unwrap_err();
        assert!(matches!(err, ManifestError::Json { .. }), "{err}");
        assert!(matches!(
            parse_manifest(b"{}", None).unwrap_err(),
            ManifestError::UnknownKind
        ));
        assert!(matches!(
            parse_manifest(b"[1]", None).unwrap_err(),
            ManifestError::Field { .. }
        ));
    }

    #[test]
    fn hint_and_body_must_agree() {
        let err = parse_manifest(docker_manifest().as_bytes(), Some(OCI_INDEX)).unwrap_err();
        assert!(
            matches!(err, ManifestError::MediaTypeConflict { .. }),
            "{err}"
        );
        let err = parse_manifest(
            docker_manifest().as_bytes(),
            Some("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
        )
        .unwrap_err();
        assert!(
            matches!(err, ManifestError::UnsupportedMediaType { .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_layer_and_config_types_are_refused() {
        let odd_layer = docker_manifest().replace(DOCKER_LAYER_TAR_GZIP, "application/x-odd");
        let err = ManifestLayers::from_manifest_bytes(odd_layer.as_bytes(), None).unwrap_err();
        assert!(
            matches!(err, ManifestError::UnsupportedLayer { index: 0, .. }),
            "{err}"
        );
        let helm =
            docker_manifest().replace(DOCKER_CONFIG, "application/vnd.cncf.helm.config.v1+json");
        let err = ManifestLayers::from_manifest_bytes(helm.as_bytes(), None).unwrap_err();
        assert!(matches!(err, ManifestError::NotAnImage { .. }), "{err}");
    }

    fn index(doc: &str) -> ImageIndex {
        match parse_manifest(doc.as_bytes(), None).unwrap() {
            Parsed::Index(i) => i,
            Parsed::Manifest(_) => panic!("not an index"),
        }
    }

    #[test]
    fn platform_selection() {
        let list = index(&docker_manifest_list());
        let pick = |p: &str| {
            select_platform(&list, &Platform::parse(p).unwrap()).map(|d| d.digest().to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), D1);
        assert_eq!(pick("linux/x86_64").unwrap(), D1);
        assert_eq!(pick("linux/arm64").unwrap(), D3);
        assert_eq!(pick("linux/arm64/v8").unwrap(), D3);
        assert_eq!(pick("linux/arm/v6").unwrap(), D2);
        let err = pick("linux/arm/v7").unwrap_err();
        assert!(matches!(err, ManifestError::NoMatchingPlatform { .. }));
        let err = pick("linux/s390x").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("no matching manifest for linux/s390x"),
            "{msg}"
        );
        assert!(
            msg.contains("linux/amd64, linux/arm/v6, linux/arm64/v8"),
            "{msg}"
        );

        let oci = index(&oci_index_with_attestation());
        assert_eq!(
            select_platform(&oci, &Platform::parse("linux/arm64").unwrap())
                .unwrap()
                .digest()
                .to_string(),
            D2
        );
        let msg = select_platform(&oci, &Platform::parse("windows/amd64").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            !msg.contains("unknown"),
            "attestations are not platforms: {msg}"
        );
    }

    #[test]
    fn default_platform_is_the_host() {
        let p = Platform::default();
        assert_eq!(p.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(p.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn platform_parsing() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/arm/v6").unwrap().to_string(),
            "linux/arm/v6"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().architecture,
            "arm64"
        );
        assert!(Platform::parse("linux//v8").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(Platform::parse("linux/amd 64").is_err());
    }

    #[test]
    fn a_single_entry_without_platform_is_taken() {
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":7}}]}}"#
        );
        assert_eq!(
            select_platform(&index(&doc), &Platform::default())
                .unwrap()
                .digest()
                .to_string(),
            D1
        );
    }

    #[test]
    fn docker_config_typed_access_keeps_the_raw_json() {
        let cfg = ImageConfig::parse(docker_config().as_bytes()).unwrap();
        assert_eq!(
            cfg.diff_ids()
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![D3]
        );
        assert_eq!(cfg.architecture(), "amd64");
        assert_eq!(cfg.os(), "linux");
        assert_eq!(cfg.created(), Some("2024-09-26T21:31:42.123456789Z"));
        assert_eq!(cfg.created_secs(), Some(1727386302));
        assert_eq!(
            cfg.env(),
            ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        );
        assert_eq!(cfg.cmd(), Some(&["sh".to_string()][..]));
        assert_eq!(cfg.entrypoint(), None);
        assert_eq!(cfg.working_dir(), Some("/srv"));
        assert_eq!(cfg.user(), Some("1000:1000"));
        assert_eq!(
            cfg.labels().get("org.example").map(String::as_str),
            Some("yes")
        );
        assert_eq!(
            cfg.exposed_ports(),
            vec!["53/udp".to_string(), "80/tcp".to_string()]
        );
        assert_eq!(cfg.volumes(), vec!["/data".to_string()]);
        assert_eq!(cfg.stop_signal(), Some("SIGQUIT"));
        assert_eq!(cfg.history().len(), 2);
        assert!(cfg.history()[1].empty_layer);
        assert_eq!(cfg.raw()["docker_version"], "23.0.11");
        assert_eq!(cfg.platform().to_string(), "linux/amd64");
    }

    #[test]
    fn scratch_like_configs_have_empty_defaults() {
        let cfg = ImageConfig::parse(
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert!(cfg.env().is_empty());
        assert_eq!(cfg.cmd(), None);
        assert!(cfg.labels().is_empty());
        assert!(cfg.diff_ids().unwrap().is_empty());
        assert_eq!(cfg.created_secs(), None);
        let cfg = ImageConfig::parse(br#"{"architecture":"amd64","os":"linux"}"#).unwrap();
        assert!(matches!(
            cfg.diff_ids().unwrap_err(),
            ManifestError::NoRootfs
        ));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let bad = docker_config().replace(D3, "sha256:xyz");
        assert_eq!(
            field_of(&ImageConfig::parse(bad.as_bytes()).unwrap_err()),
            "rootfs.diff_ids[0]"
        );
        let bad = docker_config().replace(r#""type":"layers""#, r#""type":"tarsum""#);
        assert!(matches!(
            ImageConfig::parse(bad.as_bytes()).unwrap_err(),
            ManifestError::BadRootfsType { .. }
        ));
        let bad = docker_config().replace(r#""Cmd":["sh"]"#, r#""Cmd":"sh""#);
        let err = ImageConfig::parse(bad.as_bytes()).unwrap_err();
        assert!(matches!(err, ManifestError::Json { .. }), "{err}");
    }

    #[test]
    fn layer_count_must_match_diff_ids() {
        let m = ManifestLayers::from_manifest_bytes(docker_manifest().as_bytes(), None).unwrap();
        let cfg = ImageConfig::parse(docker_config().as_bytes()).unwrap();
        let err = m.check_config(&cfg).unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::LayerCountMismatch {
                    layers: 2,
                    diff_ids: 1
                }
            ),
            "{err}"
        );
        let two = docker_config().replace(&format!(r#"["{D3}"]"#), &format!(r#"["{D3}","{D2}"]"#));
        m.check_config(&ImageConfig::parse(two.as_bytes()).unwrap())
            .unwrap();
    }
}
