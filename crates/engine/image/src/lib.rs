//! berth-image: images as the engine sees them.
//!
//! - [`metadata`]: the embedded, transactional record of images, tags and repo digests (redb).
//! - [`manifest`]: OCI and Docker schema2 manifests, indexes and configs; platform selection.

pub mod manifest;
pub mod metadata;
