//! The socket between the runtime (parent) and the processes it forks.
//!
//! Setting up a container takes three processes, and they talk over one
//! `SOCK_SEQPACKET` socket pair, one message per packet:
//!
//! ```text
//!  parent (berth-runc)            stage-1 (joins/unshares)          init (becomes the container)
//!  fork stage-1 ───────────────▶
//!  put it in the cgroup          setns(paths), unshare(user)
//!   (the first move into a        ◀────── NeedIdMaps
//!   cgroup can wait ms for RCU:
//!   stage-1 works meanwhile)
//!  write uid_map/gid_map
//!  IdMapsWritten ─────────────▶  unshare(the rest but cgroup)
//!  CgroupJoined ──────────────▶  unshare(cgroup): its root is the container's
//!                                clone(CLONE_PARENT) ─────────────▶ setsid, mounts
//!                       ◀────── InitPid(pid); exit
//!                       ◀───────────────────────────────────────── NeedRuntimeHooks
//!  prestart, createRuntime hooks
//!  HookState(json) ─────────────────────────────────────────────▶ createContainer hooks,
//!                                                                  pivot_root, console, user...
//!                       ◀───────────────────────────────────────── SeccompListener + fd (if any)
//!                       ◀───────────────────────────────────────── Ready (or Error)
//! ```
//!
//! Because init is cloned with `CLONE_PARENT`, it is the parent's child, so the
//! parent (or whoever reaps orphans for it) collects its exit status.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One message between the runtime and its children.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Message {
    /// Parent to stage-1: it is in the container's cgroup now.
    CgroupJoined,
    /// Parent to stage-1: the user namespace's id maps are written.
    IdMapsWritten,
    /// Stage-1 created a user namespace and waits for its id maps.
    NeedIdMaps,
    /// Stage-1 cloned the init process: its pid as the parent sees it.
    InitPid(i32),
    /// Init set up its mounts and waits for prestart/createRuntime hooks.
    NeedRuntimeHooks,
    /// Parent to init: the hooks ran; here is the state JSON for init's own hooks.
    HookState(String),
    /// Init loaded a seccomp filter with a user-notification listener; the fd rides along.
    SeccompListener,
    /// Init is ready: it waits for `start` (create) or is about to exec (exec).
    Ready,
    /// A child failed; the text says what failed.
    Error(String),
}

/// One end of the socket pair.
pub struct Channel {
    fd: OwnedFd,
}

/// A fresh socket pair: (parent end, child end). Both are close-on-exec, so the
/// container's process never inherits them.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Message, fd: Option<BorrowedFd>) -> Result<()> {
        let buf = serde_json::to_vec(msg).expect("messages always serialize");
        let iov = [IoSlice::new(&buf)];
        let raw: [RawFd; 1];
        let cmsgs: Vec<ControlMessage> = match fd {
            Some(fd) => {
                raw = [fd.as_raw_fd()];
                vec![ControlMessage::ScmRights(&raw)]
            }
            None => vec![],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys("sending to the runtime's child", e))?;
        Ok(())
    }

    /// The next message, or `None` when the other side closed its end.
    pub fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r
                        .cmsgs()
                        .map_err(|e| Error::sys("reading control message", e))?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: the kernel just installed this descriptor for us and
                                // nothing else owns it.
                                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(Error::sys("receiving from the runtime's child", e)),
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len])
            .map_err(|e| Error::Init(format!("malformed message from child: {e}")))?;
        Ok(Some((msg, fd)))
    }

    /// Wait for `want`, remembering a `CgroupJoined` that arrives first.
    pub fn wait_for(&self, want: &Message, cgroup_joined: &mut bool) -> Result<()> {
        if *want == Message::CgroupJoined && *cgroup_joined {
            return Ok(());
        }
        loop {
            match self.recv()? {
                Some((m, _)) if m == *want => {
                    if m == Message::CgroupJoined {
                        *cgroup_joined = true;
                    }
                    return Ok(());
                }
                Some((Message::CgroupJoined, _)) => *cgroup_joined = true,
                Some((Message::Error(e), _)) => return Err(Error::Init(e)),
                Some((other, _)) => {
                    return Err(Error::Init(format!("unexpected message {other:?}")))
                }
                None => return Err(Error::Init("the runtime went away during setup".into())),
            }
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
