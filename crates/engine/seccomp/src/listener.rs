//! Handing a `SCMP_ACT_NOTIFY` listener fd to the seccomp agent at `listenerPath`.
//!
//! The runtime-spec says: connect to the UNIX socket at `linux.seccomp.listenerPath`, and send
//! the container process state (`ContainerProcessState`, JSON) as the regular payload with the
//! listener fd as `SCM_RIGHTS`, its name in `fds` at the fd's position. The runtime parent does
//! this after the container init handed it the fd that [`crate::SeccompProgram::load`] returned.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{send, sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{ContainerProcessState, SECCOMP_FD_NAME};

use crate::error::SeccompError;

/// Sends the notify listener `fd` to the agent listening on the unix stream socket at
/// `listener_path`: `SCM_RIGHTS` with the fd, and `process_state_json` (a `ContainerProcessState`
/// whose `fds` is `["seccompFd"]`, see [`crate::SeccompProgram::process_state_json`]) as the
/// payload. The connection is closed when everything is sent, which ends the message.
pub fn send_listener_fd(
    listener_path: &Path,
    fd: BorrowedFd<'_>,
    process_state_json: &[u8],
) -> Result<(), SeccompError> {
    check_process_state(process_state_json)?;
    let send_error = |source| SeccompError::ListenerSend {
        path: listener_path.to_path_buf(),
        source,
    };
    let stream =
        UnixStream::connect(listener_path).map_err(|source| SeccompError::ListenerConnect {
            path: listener_path.to_path_buf(),
            source,
        })?;
    let fds = [fd.as_raw_fd()];
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(process_state_json)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(sent) => break sent,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(send_error(errno.into())),
        }
    };
    // A stream socket may take the payload in pieces; the fd went with the first one.
    let mut rest = &process_state_json[sent..];
    while !rest.is_empty() {
        match send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
            Ok(sent) => rest = &rest[sent..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(send_error(errno.into())),
        }
    }
    Ok(())
}

/// Checks the payload is a `ContainerProcessState` naming exactly the one fd we send.
fn check_process_state(process_state_json: &[u8]) -> Result<(), SeccompError> {
    let state: ContainerProcessState =
        serde_json::from_slice(process_state_json).map_err(|error| {
            SeccompError::InvalidProcessState {
                reason: format!("not a ContainerProcessState: {error}"),
            }
        })?;
    if state.fds().as_slice() != [SECCOMP_FD_NAME] {
        return Err(SeccompError::InvalidProcessState {
            reason: format!(
                "fds is {:?}; the one fd sent is the listener, so it must be [\"{SECCOMP_FD_NAME}\"]",
                state.fds()
            ),
        });
    }
    Ok(())
}
