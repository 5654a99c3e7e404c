//! A client of the OCI distribution API (Docker Registry HTTP API v2).
//!
//! One [`RegistryClient`] talks to one registry host. It is cheap to clone, so the image service
//! hands clones to the tasks that fetch layers in parallel; they share connections and tokens.
//!
//! # A pull
//!
//! 1. The first request pings `GET /v2/`, over HTTPS, then plain HTTP for insecure and loopback
//!    registries. The answer fixes the base URL and how to authenticate: nothing, HTTP Basic,
//!    or `WWW-Authenticate: Bearer realm=..,service=..,scope=..`.
//! 2. [`RegistryClient::get_manifest`] asks for `repository:<repo>:pull`. With a Bearer
//!    challenge the client fetches a token from the realm (credentials as Basic there), caches
//!    it per scope, and sends it; a 401 with a new challenge gets one retry with a fresh token.
//!    The manifest (or index) comes back as raw bytes with its media type and its digest,
//!    verified against the bytes.
//! 3. The image service picks a platform from an index (another `get_manifest` by digest),
//!    then calls [`RegistryClient::get_blob`] for the config and each layer, in parallel. A
//!    [`BlobStream`] yields the chunks as they arrive (no copies), so the caller hashes and
//!    decompresses while downloading; redirects to storage backends are followed. An interrupted
//!    layer resumes with a non-zero `offset` (a Range request).
//!
//! # A push
//!
//! 1. [`RegistryClient::push_blob`] for each layer and the config, with the scope
//!    `repository:<repo>:pull,push` (and `repository:<from>:pull` to mount). A `HEAD` finds blobs
//!    the repository already has ([`PushOutcome::Exists`]). With `mount_from`, a
//!    `POST ..?mount=<digest>&from=<repo>` links the blob from another repository of the same
//!    registry ([`PushOutcome::Mounted`]). Otherwise `POST /blobs/uploads/` opens an upload and a
//!    single `PUT <location>?digest=..` streams the content ([`PushOutcome::Uploaded`]).
//! 2. [`RegistryClient::put_manifest`] stores the manifest under its tag (or digest) once all
//!    the blobs it names are there, and returns its digest.
//!
//! Errors are [`RemoteError`]s; the registry's error codes (`MANIFEST_UNKNOWN`, `DENIED`, ...)
//! become variants whose [`berth_core::HasKind`] classes the API server maps to HTTP statuses.

mod auth;
mod client;
mod error;

pub use auth::{credentials_from_docker_config, Credentials};
pub use client::{
    BlobSource, BlobStream, ClientOptions, Manifest, PushOutcome, RegistryClient, MANIFEST_ACCEPT,
    MANIFEST_SIZE_LIMIT,
};
pub use error::RemoteError;
