//! berth-image: images as the engine sees them.
//!
//! An image is a manifest in the content store naming a config and a stack of layer blobs;
//! its id is the config's digest. [`ImageService`] is the one entry point:
//!
//! - **pull** ([`pull`]): resolve a tag to a manifest (picking linux/amd64 from an index),
//!   fetch the missing blobs in parallel into the content store (hashed as they stream,
//!   resumed from where an interrupted pull stopped), and unpack each layer into a snapshot
//!   keyed by its chain id while it is still arriving ([`unpack`]). The image is recorded in
//!   the metadata store, with its tag and repo digest, only once everything verified.
//! - **push** ([`push`]): blobs the registry lacks (cross-repository mounts first), then the
//!   manifest under its tag.
//! - **save / load / import** ([`archive`], [`import`]): `docker save` archives (OCI layout
//!   plus `manifest.json`), both archive layouts on load, a rootfs tarball as a one-layer image.
//! - **remove / prune** ([`service`], [`gc`]): untag, delete records, then collect the blobs
//!   and snapshots no image references any more.

pub mod archive;
pub mod commit;
pub mod error;
pub mod gc;
pub mod import;
pub mod manifest;
pub mod metadata;
pub mod progress;
pub mod pull;
pub mod push;
pub mod service;
pub mod time;
pub mod unpack;

pub use error::ImageError;
pub use service::{ImageService, RegistryAuth, ServiceOptions};
