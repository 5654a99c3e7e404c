//! berth-monitor: the small process that watches one container (or one exec'd
//! process), so that the container does not depend on the daemon.
//!
//! The daemon starts `berth-monitor` for every container it runs and every exec.
//! The monitor forks and lets its parent exit at once, so it is reparented to init
//! (or to the nearest subreaper) and outlives the daemon; it becomes a subreaper
//! itself, so the container's init and exec'd processes come back to it to be
//! reaped. It then:
//!
//! 1. binds the attach socket `DIR/sock` before anything that can block;
//! 2. makes the container's stdio: pipes, or a pty whose master the runtime hands
//!    over on `DIR/console.sock`;
//! 3. (container mode) runs the runtime's `create` and reports on the sync pipe
//!    (see [`protocol::SyncReport`]);
//! 4. waits for a client's START, runs `start` (or `exec --detach` in exec mode);
//! 5. drains the output into Docker's json-file log (container mode) and to
//!    attached clients, feeds them the input, and reaps children;
//! 6. when the process exits, writes `DIR/exit` ([`protocol::ExitStatus`]) and
//!    sends EXIT to whoever asked, then exits itself.
//!
//! The daemon can be killed at any time: the monitor keeps draining and logging,
//! and a restarted daemon reconnects to `DIR/sock` or reads `DIR/exit`.
//!
//! This library is what the daemon links to talk to a monitor: [`protocol`] (frames,
//! the sync line, the exit record), and the hand-written [`json`] and [`time`]
//! helpers they use. Like the binary, it depends on libc alone.

pub mod json;
pub mod protocol;
pub mod time;
