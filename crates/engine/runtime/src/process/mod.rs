//! The processes that become a container.
//!
//! [`spawn`] is the parent's side: fork stage-1, answer its requests over the
//! [`channel`], and return once init reports ready. [`init`] holds the children's
//! side: stage-1 joins and creates namespaces, then clones init, which builds the
//! container's view (mounts, console, user, capabilities, seccomp) and finally
//! becomes the container's program.

pub mod capabilities;
pub mod channel;
pub mod console;
pub mod init;
pub mod mount;
pub mod rootfs;
mod spawn;
pub mod wait;

pub use spawn::{spawn, SpawnHooks, SpawnRequest, Spawned, Stage};
