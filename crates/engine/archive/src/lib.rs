//! Layer tarballs for the image store.
//!
//! A pulled layer goes through this crate on its way into a snapshot:
//!
//! 1. [`decompress`] sniffs the blob's magic bytes (gzip, zstd or plain tar) and returns a reader
//!    of the uncompressed tar stream.
//! 2. [`apply_layer`] extracts that stream into the snapshot directory. For the overlay
//!    snapshotter the target is an empty upper dir and OCI whiteouts become overlayfs whiteouts
//!    ([`Whiteouts::Overlay`]); for the copy snapshotter the target already holds the parent's
//!    files and whiteouts delete them ([`Whiteouts::Apply`]). Extraction never writes outside the
//!    target: see [`apply`] for how paths are walked.
//!
//! Going the other way, when a container is committed or an image is built:
//!
//! 3. [`write_overlay_diff`] turns an overlay upper dir back into a layer (whiteout devices and
//!    opaque dirs become `.wh.` entries); [`write_tree_diff`] compares two full trees (copy
//!    snapshotter); [`write_tree`] archives a whole tree. All three write deterministic tars:
//!    entries sorted by name, PAX records for long names and xattrs, the end blocks.
//! 4. [`compress`] wraps the writer in gzip or zstd before the content store hashes it.

pub mod apply;
mod compression;
mod error;
mod reader;
pub mod write;

pub use apply::{apply_layer, ApplyOptions, ApplyStats, Whiteouts};
pub use compression::{compress, decompress, Compression, Compressor};
pub use error::{ArchiveError, Refusal};
pub use write::{write_entry, write_overlay_diff, write_tree, write_tree_diff};
