//! SCMP_ACT_NOTIFY end to end: the child loads the filter, hands the listener fd to an "agent"
//! at listenerPath with `send_listener_fd`, and the agent answers the child's notified syscall.

#![cfg(target_arch = "x86_64")]

mod common;

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use berth_seccomp::{send_listener_fd, SeccompError, SeccompProgram};
use common::*;
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{ContainerProcessState, ContainerState, State};
use serde_json::json;

fn socket_path(name: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("berth-seccomp-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn notify_returns_a_listener_the_agent_receives_and_answers() {
    let path = socket_path("agent");
    let agent = UnixListener::bind(&path).unwrap();
    let program = SeccompProgram::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "listenerMetadata": "berth-test",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    })))
    .unwrap();

    // SAFETY: the child runs only the closure below (syscalls, and allocation, which glibc
    // makes safe after fork) and leaves with _exit.
    let child = match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(|| {
                let listener = match set_nnp_and_load(&program) {
                    Ok(Some(fd)) => fd,
                    Ok(None) => return 2,
                    Err(code) => return code,
                };
                let mut state = State::default();
                state
                    .set_version("1.2.0".to_string())
                    .set_id("notify-test".to_string())
                    .set_status(ContainerState::Creating)
                    .set_pid(Some(std::process::id() as i32));
                let json = program
                    .process_state_json(std::process::id() as i32, &state)
                    .unwrap();
                if send_listener_fd(program.listener_path().unwrap(), listener.as_fd(), &json)
                    .is_err()
                {
                    return 3;
                }
                drop(listener);
                // Blocks until the agent answers: it answers EXDEV.
                match sys_mkdir(c"/berth-seccomp-notify-never-created") {
                    Err(Errno::EXDEV) => 0,
                    _ => 4,
                }
            })
            .unwrap_or(101);
            // SAFETY: ends the child without returning into the test harness.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };

    let outcome = std::panic::catch_unwind(|| agent_answers(&agent, child));
    let status = waitpid(child, None).unwrap();
    let _ = std::fs::remove_file(&path);
    let (process_state, syscall) =
        outcome.unwrap_or_else(|_| panic!("agent failed; child: {status:?}"));
    assert_exited_ok(status);
    assert_eq!(process_state.fds(), &["seccompFd".to_string()]);
    assert_eq!(*process_state.pid(), child.as_raw());
    assert_eq!(process_state.metadata().as_deref(), Some("berth-test"));
    assert_eq!(process_state.version(), "1.2.0");
    assert_eq!(process_state.state().id(), "notify-test");
    assert_eq!(syscall, ScmpSyscall::from_name("mkdir").unwrap());
}

/// The agent: accepts one connection, reads the fd and the process state until EOF, then
/// answers the first notification with EXDEV.
fn agent_answers(agent: &UnixListener, child: Pid) -> (ContainerProcessState, ScmpSyscall) {
    agent.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut stream, _) = loop {
        match agent.accept() {
            Ok(conn) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "child {child} never connected"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let mut payload = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut payload)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(received) = c {
            fds.extend(received);
        }
    }
    let received = msg.bytes;
    assert_eq!(fds.len(), 1, "exactly one fd is sent");
    // SAFETY: recvmsg installed this fd in our table for us.
    let listener = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    payload.truncate(received);
    stream.read_to_end(&mut payload).unwrap();
    let process_state: ContainerProcessState = serde_json::from_slice(&payload).unwrap();

    let request = ScmpNotifReq::receive(listener.as_raw_fd()).unwrap();
    ScmpNotifResp::new_error(request.id, -libc::EXDEV, ScmpNotifRespFlags::empty())
        .respond(listener.as_raw_fd())
        .unwrap();
    (process_state, request.data.syscall)
}

#[test]
fn send_listener_fd_checks_the_process_state() {
    let path = socket_path("bad-state");
    let _agent = UnixListener::bind(&path).unwrap();
    let fd = std::fs::File::open("/dev/null").unwrap();
    for bad in [
        &b"not json"[..],
        br#"{"ociVersion":"1.2.0","fds":[],"pid":1,"state":{}}"#,
    ] {
        let error = send_listener_fd(&path, fd.as_fd(), bad).unwrap_err();
        assert!(
            matches!(error, SeccompError::InvalidProcessState { .. }),
            "{error:?}"
        );
    }
    let good = br#"{"ociVersion":"1.2.0","fds":["seccompFd"],"pid":1,"state":{}}"#;
    send_listener_fd(&path, fd.as_fd(), good).unwrap();
    let _ = std::fs::remove_file(&path);

    let error = send_listener_fd(&path, fd.as_fd(), good).unwrap_err();
    assert!(
        matches!(error, SeccompError::ListenerConnect { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(path.to_str().unwrap()),
        "{error}"
    );
}
