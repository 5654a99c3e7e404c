//! berth-container: containers as the Docker Engine API knows them.
//!
//! A container is a record (what was asked: its config, host config, name, image) kept
//! apart from the task that runs it (a monitor process holding the container's stdio and
//! the runtime's state). The life of `docker run`:
//! 1. create: the image's config is merged into the request ([`spec::merge`]), the
//!    record is written, and the rootfs is prepared as snapshots: the image's layers, an
//!    init layer (hostname, hosts, resolv.conf, mount points), and the container's own
//!    copy-on-write layer.
//! 2. start: the OCI spec is built from the record ([`spec`]) into a bundle, and a
//!    monitor (`berth-monitor`) is started; it runs the runtime's `create`, holds the
//!    container's stdio, writes its json-file log ([`logs`] reads it) and records its exit.
//! 3. while it runs: attach, exec, stats ([`stats`]), kill, pause, update act through the
//!    monitor, the runtime and the cgroup.
//! 4. when it exits, the monitor's exit record is read, the runtime's state deleted, the
//!    rootfs unmounted; restart policies and `--rm` apply.

pub mod archive;
pub mod error;
pub mod etcfiles;
pub mod events;
pub mod exec;
pub mod logopts;
pub mod logs;
pub mod monitor;
pub mod mounts;
pub mod names;
pub mod netns;
pub mod network;
pub mod oom;
pub mod record;
pub mod rootfs;
pub mod runtime;
pub mod service;
pub mod spec;
pub mod stats;
pub mod top;

pub use error::{ContainerError, Result};
pub use service::{Config, Container, ContainerService};
