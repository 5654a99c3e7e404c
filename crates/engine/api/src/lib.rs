#![recursion_limit = "256"]
//! berth-api: the Docker Engine API, served over a unix socket.
//!
//! A request's path through this crate:
//! 1. [`server::serve`] accepts a connection and hands each request to [`router::handle`].
//! 2. [`version`] strips the optional `/v1.NN` prefix and refuses versions berth cannot speak.
//! 3. [`router::Route::parse`] turns method and path into one [`router::Route`] value (one
//!    `match` table, like firecracker's `parsed_request.rs`).
//! 4. The handler in [`routes`] calls the engine's services and writes Docker's JSON shapes,
//!    or a streamed body (pull/push progress, save, load).
//! 5. Any failure becomes Docker's `{"message": ...}` with the status code of its
//!    [`berth_core::ErrorKind`], mapped in one place: [`error`].

pub mod body;
pub mod error;
pub mod progress;
pub mod router;
pub mod routes;
pub mod server;
pub mod version;

pub use server::{serve, Backend, SystemFacts};
