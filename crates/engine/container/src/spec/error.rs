//! What can go wrong turning a container record into an OCI spec.
//!
//! Messages a Docker client may show its user are Docker's own wording (moby's
//! `verifyPlatformContainerResources`, runc's user lookup, go-units' ulimits), so scripts
//! and people that know Docker recognise them.

use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the command ---
    #[error("no command specified")]
    NoCommand,
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkingDir(String),

    // --- memory ---
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryBelowMinimum,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    #[error("Invalid value: {0}, valid memory swappiness range is 0-100")]
    Swappiness(i64),
    #[error("Minimum memory reservation allowed is 6MB")]
    ReservationBelowMinimum,
    #[error("Minimum memory limit can not be less than memory reservation limit, see usage")]
    MemoryBelowReservation,

    // --- cpu ---
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    NanoCpusWithPeriod,
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    NanoCpusWithQuota,
    #[error("Range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available")]
    CpusOutOfRange { available: usize },
    #[error(
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
    )]
    CpuPeriodRange,
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuotaMinimum,
    #[error("invalid CPU shares ({0}): value must be a positive integer")]
    CpuShares(i64),
    #[error("Invalid value {value} for cpuset {what}: invalid format: {value}")]
    CpusetSyntax { what: &'static str, value: String },
    #[error("Requested CPUs are not available - requested {requested}, available: {available}")]
    CpusUnavailable {
        requested: String,
        available: String,
    },

    // --- block I/O ---
    #[error("Range of blkio weight is from 10 to 1000")]
    BlkioWeight,
    #[error(
        "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"
    )]
    IoMaximum,

    // --- other host settings ---
    #[error("SHM size can not be less than 0")]
    ShmSize,
    #[error("Invalid value {0}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj(i64),
    #[error("invalid {what} mode: {value}")]
    InvalidMode { what: &'static str, value: String },
    #[error("unknown capability: \"{0}\"")]
    UnknownCapability(String),
    #[error(
        "capability not supported by your kernel or not available in the current environment: \"{0}\""
    )]
    CapabilityUnavailable(String),
    #[error("invalid ulimit type: {0}")]
    UlimitType(String),
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitRange { soft: i64, hard: i64 },
    /// `which` is 1 when the option has no `=`, 2 when its key or value is wrong (moby's
    /// numbering).
    #[error("invalid --security-opt {which}: \"{option}\"")]
    SecurityOpt { which: u8, option: String },
    #[error("Decoding seccomp profile failed: {0}")]
    SeccompDecode(String),
    #[error("seccomp profile: {0}")]
    SeccompProfile(String),
    #[error("invalid device cgroup rule format: '{0}'")]
    DeviceCgroupRule(String),
    #[error("error gathering device information while adding custom device \"{path}\": {reason}")]
    Device { path: String, reason: String },
    /// Go's `os.PathError` wording, as moby returns it for a blkio device.
    #[error("stat {path}: {source}")]
    StatDevice {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid tmpfs option \"{0}\"")]
    TmpfsOption(String),
    #[error("invalid mount propagation mode \"{0}\"")]
    Propagation(String),
    #[error("path {path} is mounted on {mount_point} but it is not a {wanted} mount")]
    SourceNotShared {
        path: String,
        mount_point: String,
        wanted: &'static str,
    },

    // --- the user ---
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    /// runc's wording for `--group-add`, capital letter included.
    #[error("Unable to find group {0}: no matching entries in group file")]
    AdditionalGroupNotFound(String),
    #[error("uids and gids must be in range 0-2147483647")]
    IdOutOfRange,
    #[error("reading {path} in the container's root filesystem: {source}")]
    RootfsRead {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} in the container's root filesystem is not a regular file")]
    RootfsNotRegular { path: String },
    #[error("{path} in the container's root filesystem is larger than {limit} bytes")]
    RootfsTooLarge { path: String, limit: u64 },

    // --- the host ---
    #[error("--init was requested but no init binary (docker-init) is configured")]
    InitMissing,
    #[error("{what}: {source}")]
    Host {
        what: String,
        source: std::io::Error,
    },
    #[error("{0} is not supported by berth yet")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn host(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Host { what, source }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::RootfsRead { .. } | Error::InitMissing | Error::Host { .. } => {
                ErrorKind::Internal
            }
            Error::Unsupported(_) => ErrorKind::NotImplemented,
            // A request (or an image) Docker refuses.
            Error::NoCommand
            | Error::RelativeWorkingDir(_)
            | Error::MemoryBelowMinimum
            | Error::SwapBelowMemory
            | Error::SwapWithoutMemory
            | Error::Swappiness(_)
            | Error::ReservationBelowMinimum
            | Error::MemoryBelowReservation
            | Error::NanoCpusWithPeriod
            | Error::NanoCpusWithQuota
            | Error::CpusOutOfRange { .. }
            | Error::CpuPeriodRange
            | Error::CpuQuotaMinimum
            | Error::CpuShares(_)
            | Error::CpusetSyntax { .. }
            | Error::CpusUnavailable { .. }
            | Error::BlkioWeight
            | Error::IoMaximum
            | Error::ShmSize
            | Error::OomScoreAdj(_)
            | Error::InvalidMode { .. }
            | Error::UnknownCapability(_)
            | Error::CapabilityUnavailable(_)
            | Error::UlimitType(_)
            | Error::UlimitRange { .. }
            | Error::SecurityOpt { .. }
            | Error::SeccompDecode(_)
            | Error::SeccompProfile(_)
            | Error::DeviceCgroupRule(_)
            | Error::Device { .. }
            | Error::StatDevice { .. }
            | Error::TmpfsOption(_)
            | Error::Propagation(_)
            | Error::SourceNotShared { .. }
            | Error::UserNotFound(_)
            | Error::GroupNotFound(_)
            | Error::AdditionalGroupNotFound(_)
            | Error::IdOutOfRange
            | Error::RootfsNotRegular { .. }
            | Error::RootfsTooLarge { .. } => ErrorKind::InvalidArgument,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
