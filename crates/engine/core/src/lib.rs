//! berth-core: the vocabulary the engine crates share, with no I/O.
//!
//! - [`reference`]: image references (`busybox` means `docker.io/library/busybox:latest`),
//!   parsed and normalised the way the Docker CLI and registries expect.
//! - [`ErrorKind`]: the handful of error classes every store and service reports, mapped to
//!   HTTP status codes in one place (the API crate), like containerd's `errdefs`.
//! - [`digest`]: helpers over `oci_spec::image::Digest`, the digest type used everywhere.

pub mod digest;
pub mod error;
pub mod reference;
pub mod units;

pub use digest::{sha256_digest, Digest};
pub use error::{ErrorKind, HasKind};
pub use reference::{Reference, ReferenceError};
