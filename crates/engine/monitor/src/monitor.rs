//! The life of one container (or exec'd process), once the monitor is on its own:
//!
//! 1. [`Monitor::setup`]: write `DIR/monitor.pid`, route SIGCHLD into a pipe, make
//!    the stdio (pipes, or a console socket for the runtime to hand the pty master
//!    to), bind `DIR/sock`, open the log, and in container mode run `create`;
//! 2. report on the sync pipe;
//! 3. [`Monitor::run_loop`]: one poll(2) over the SIGCHLD pipe, the output, the
//!    input, the attach socket and its clients. START runs `start` (or `exec`);
//!    the container's exit starts a drain of at most [`DRAIN`];
//! 4. [`Monitor::finish`]: the last partial lines, `DIR/exit`, EXIT to whoever
//!    asked, and `DIR/sock` removed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_monitor::protocol::{self, ExitStatus, SyncReport};
use berth_monitor::time;

use crate::args::{Mode, Options};
use crate::client::Client;
use crate::jsonlog::{JsonLog, LineSplitter};
use crate::runtime::{Launch, Runtime, RuntimeStdio};
use crate::sys;

/// How long output is still read after the process exited, for descendants that
/// keep the pipes open.
const DRAIN: Duration = Duration::from_secs(2);
/// How long clients get to take their last frames (EXIT) before the monitor goes.
const FINAL_FLUSH: Duration = Duration::from_secs(2);
/// Input buffered for the container before clients are no longer read.
const STDIN_LIMIT: usize = 1 << 20;
/// Connections beyond this many are closed at once.
const MAX_CLIENTS: usize = 128;
/// One read of output.
const CHUNK: usize = 16 * 1024;

/// Run the monitor; the process's exit code.
pub fn run(opts: &Options) -> i32 {
    let mut sync = opts.sync_fd.map(|fd| {
        // SAFETY: main checked the descriptor is open, and only this owns it.
        unsafe { File::from_raw_fd(fd) }
    });
    let runtime = Runtime {
        path: opts.runtime.clone(),
        root: opts.runtime_root.clone(),
        log: opts.dir.join("runtime.log"),
        id: opts.id.clone(),
    };
    let paths = Paths::new(&opts.dir);
    let mut monitor = match Monitor::setup(opts, &runtime, &paths) {
        Ok(m) => m,
        Err(error) => {
            // A failed `create` is not followed by `delete --force`: the runtime
            // undoes its own half-made container, and a failure may mean the id
            // belongs to a container someone else runs. The sockets went with the
            // half-made monitor.
            report(&mut sync, &SyncReport::Failed { error });
            return 1;
        }
    };
    report(&mut sync, &SyncReport::Ok { pid: monitor.pid });
    monitor.run_loop();
    monitor.finish()
}

fn report(sync: &mut Option<File>, r: &SyncReport) {
    if let Some(mut f) = sync.take() {
        // The daemon may be gone: nothing to do about a failed write.
        let _ = f.write_all((r.to_json() + "\n").as_bytes());
    }
}

/// Everything the monitor keeps in its directory.
struct Paths {
    sock: PathBuf,
    console: PathBuf,
    pid: PathBuf,
    exit: PathBuf,
    monitor_pid: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Paths {
        Paths {
            sock: dir.join("sock"),
            console: dir.join("console.sock"),
            pid: dir.join("pid"),
            exit: dir.join("exit"),
            monitor_pid: dir.join("monitor.pid"),
        }
    }

    fn read_pid(&self) -> Result<i32, String> {
        let text = std::fs::read_to_string(&self.pid)
            .map_err(|e| format!("reading {}: {e}", self.pid.display()))?;
        text.trim()
            .parse()
            .ok()
            .filter(|&p: &i32| p > 0)
            .ok_or_else(|| format!("{}: not a pid: {text:?}", self.pid.display()))
    }
}

/// A listening unix socket only root can connect to (its mode is set before
/// anyone can), non-blocking; its path is removed when it is dropped. Binding
/// never replaces an existing path, so a monitor never takes another's socket.
struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    fn bind(path: &Path) -> Result<BoundSocket, String> {
        // SAFETY: umask has no preconditions; the monitor has one thread.
        let old = unsafe { libc::umask(0o177) };
        let listener = UnixListener::bind(path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener = listener.map_err(|e| format!("binding {}: {e}", path.display()))?;
        let bound = BoundSocket {
            listener,
            path: path.to_owned(),
        };
        bound
            .listener
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(bound)
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The container's ends of its stdio pipes, until the runtime takes them.
struct ChildEnds {
    stdin: Option<File>,
    stdout: File,
    stderr: File,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    fn frame(self) -> u8 {
        match self {
            Stream::Stdout => protocol::STDOUT,
            Stream::Stderr => protocol::STDERR,
        }
    }
    fn flag(self) -> u8 {
        match self {
            Stream::Stdout => protocol::WANT_STDOUT,
            Stream::Stderr => protocol::WANT_STDERR,
        }
    }
}

/// One stream of output being drained.
struct Output {
    file: File,
    stream: Stream,
    lines: LineSplitter,
}

/// What a slot of the poll set is.
#[derive(Clone, Copy)]
enum Slot {
    SigChld,
    Output(usize),
    Stdin,
    Listener,
    Client(usize),
}

struct Monitor<'a> {
    opts: &'a Options,
    runtime: &'a Runtime,
    paths: &'a Paths,
    sigchld: File,
    /// The attach socket, `DIR/sock`.
    /// The attach socket, `DIR/sock`.
    listener: BoundSocket,
    clients: Vec<Client>,
    /// stdout (or the pty) and stderr, until each ends.
    outputs: [Option<Output>; 2],
    /// Pipe mode: the container's ends, until `create` or `exec` hands them over.
    child_ends: Option<ChildEnds>,
    /// Terminal mode: where the runtime sends the pty master.
    console: Option<BoundSocket>,
    /// Terminal mode: the pty master, for resizing.
    master: Option<File>,
    /// Where input goes (the stdin pipe or the pty master), while it is open.
    stdin: Option<File>,
    stdin_buf: Vec<u8>,
    /// Input is taken from clients (with `--stdin`, until STDIN_CLOSE).
    stdin_open: bool,
    /// STDIN_CLOSE came: close the pipe once `stdin_buf` is written.
    stdin_closing: bool,
    /// The last RESIZE, applied again when the pty arrives.
    winsize: Option<(u16, u16)>,
    log: Option<JsonLog>,
    /// The process watched: init in container mode, the exec'd process after START.
    pid: i32,
    started: bool,
    exit: Option<ExitStatus>,
    drain_until: Option<Instant>,
}

impl<'a> Monitor<'a> {
    fn setup(
        opts: &'a Options,
        runtime: &'a Runtime,
        paths: &'a Paths,
    ) -> Result<Monitor<'a>, String> {
        // A record of an earlier run in this directory would read as this one's.
        for stale in [&paths.exit, &paths.pid] {
            match std::fs::remove_file(stale) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(format!("removing {}: {e}", stale.display()));
                }
                _ => {}
            }
        }
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        sys::write_atomic(&paths.monitor_pid, me.to_string().as_bytes())
            .map_err(|e| format!("writing {}: {e}", paths.monitor_pid.display()))?;
        let sigchld = sys::sigchld_pipe().map_err(|e| format!("SIGCHLD pipe: {e}"))?;

        let mut outputs = [None, None];
        let mut child_ends = None;
        let mut stdin = None;
        let console = if opts.terminal {
            Some(BoundSocket::bind(&paths.console)?)
        } else {
            let pipe = || sys::pipe().map_err(|e| format!("pipe: {e}"));
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdin_r = if opts.stdin {
                let (r, w) = pipe()?;
                sys::set_nonblocking(w.as_raw_fd()).map_err(|e| format!("pipe: {e}"))?;
                stdin = Some(w);
                Some(r)
            } else {
                None
            };
            for (i, (file, stream)) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)]
                .into_iter()
                .enumerate()
            {
                sys::set_nonblocking(file.as_raw_fd()).map_err(|e| format!("pipe: {e}"))?;
                outputs[i] = Some(Output {
                    file,
                    stream,
                    lines: LineSplitter::default(),
                });
            }
            child_ends = Some(ChildEnds {
                stdin: stdin_r,
                stdout: out_w,
                stderr: err_w,
            });
            None
        };
        let listener = BoundSocket::bind(&paths.sock)?;
        let log = match (&opts.log, opts.mode) {
            (Some(l), Mode::Container) => Some(
                JsonLog::open(&l.path, l.max_size, l.max_files)
                    .map_err(|e| format!("opening the log {}: {e}", l.path.display()))?,
            ),
            _ => None,
        };
        let mut m = Monitor {
            opts,
            runtime,
            paths,
            sigchld,
            listener,
            clients: Vec::new(),
            outputs,
            child_ends,
            console,
            master: None,
            stdin,
            stdin_buf: Vec::new(),
            stdin_open: opts.stdin,
            stdin_closing: false,
            winsize: None,
            log,
            pid: 0,
            started: false,
            exit: None,
            drain_until: None,
        };
        if opts.mode == Mode::Container {
            m.launch()?;
        }
        Ok(m)
    }

    /// The runtime's stdio for `create` or `exec`: the pipes (handed over for
    /// good), or with a terminal /dev/null in and a pipe out to read errors from.
    fn spawn_with_stdio(
        &mut self,
        call: impl FnOnce(&Runtime, RuntimeStdio<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        match self.child_ends.take() {
            Some(ends) => {
                let stdio = RuntimeStdio {
                    stdin: ends.stdin.map_or_else(Stdio::null, Stdio::from),
                    stdout: Stdio::from(ends.stdout),
                    stderr: Stdio::from(ends.stderr),
                    stderr_reader: self.outputs[1].as_mut().map(|o| &mut o.file),
                };
                call(self.runtime, stdio)
            }
            None => {
                let (mut stdio, mut reader) =
                    RuntimeStdio::captured().map_err(|e| format!("pipe: {e}"))?;
                stdio.stderr_reader = Some(&mut reader);
                call(self.runtime, stdio)
            }
        }
    }

    fn console_path(&self) -> Option<&'a Path> {
        self.opts.terminal.then_some(self.paths.console.as_path())
    }

    /// `create` (container mode, in setup) or `exec` (exec mode, at START), then
    /// the pid and, with a terminal, the pty. A container created but not usable
    /// is removed again.
    fn launch(&mut self) -> Result<i32, String> {
        let what = match (self.opts.mode, &self.opts.bundle, &self.opts.process) {
            (Mode::Container, Some(bundle), _) => Launch::Create { bundle },
            (Mode::Exec, _, Some(process)) => Launch::Exec { process },
            _ => unreachable!("args checks each mode has its file"),
        };
        let (pid_file, console) = (&self.paths.pid, self.console_path());
        self.spawn_with_stdio(|rt, stdio| rt.launch(what, pid_file, console, stdio))?;
        let taken = self.paths.read_pid().and_then(|pid| {
            self.pid = pid;
            self.take_console()
        });
        if let Err(e) = taken {
            if self.opts.mode == Mode::Container {
                self.runtime.delete_force();
            }
            return Err(e);
        }
        Ok(self.pid)
    }

    /// With a terminal: accept the runtime's connection on the console socket and
    /// take the pty master it sent; it becomes the output and, with `--stdin`, the input.
    fn take_console(&mut self) -> Result<(), String> {
        // Taken for good: the socket file goes at the end of this call.
        let Some(console) = self.console.take() else {
            return Ok(());
        };
        let (conn, _) = console
            .listener
            .accept()
            .map_err(|e| format!("the runtime sent no terminal to the console socket: {e}"))?;
        let master =
            File::from(sys::recv_fd(&conn).map_err(|e| format!("receiving the terminal: {e}"))?);
        sys::set_nonblocking(master.as_raw_fd()).map_err(|e| format!("pty: {e}"))?;
        if let Some((rows, cols)) = self.winsize {
            let _ = sys::set_winsize(master.as_raw_fd(), rows, cols);
        }
        let dup = || master.try_clone().map_err(|e| format!("pty: {e}"));
        self.outputs[0] = Some(Output {
            file: dup()?,
            stream: Stream::Stdout,
            lines: LineSplitter::default(),
        });
        if self.opts.stdin {
            self.stdin = Some(dup()?);
        }
        self.master = Some(master);
        Ok(())
    }

    /// START from client `from`.
    fn start(&mut self, from: usize) {
        let reply_error =
            |m: &mut Self, msg: &str| m.clients[from].queue(protocol::ERROR, msg.as_bytes());
        if self.started {
            return reply_error(self, "already started");
        }
        if self.exit.is_some() {
            return reply_error(self, "the process has already exited");
        }
        self.started = true;
        let result = match self.opts.mode {
            Mode::Container => self.runtime.start().map(|()| self.pid),
            Mode::Exec => self.launch(),
        };
        match result {
            Ok(pid) => {
                let reply = protocol::started_json(pid);
                self.clients[from].queue(protocol::STARTED, reply.as_bytes());
                // Running the runtime was the last of the one-off work.
                sys::release_startup_code();
            }
            Err(msg) => {
                reply_error(self, &msg);
                // It never ran. A created container would wait forever for a
                // start: remove it (exec mode has nothing to remove).
                if self.opts.mode == Mode::Container {
                    self.runtime.delete_force();
                }
                self.exit = Some(ExitStatus::failed(msg, time::now_rfc3339_nano()));
                self.drain_until = Some(Instant::now());
            }
        }
    }

    fn finished(&self) -> bool {
        self.exit.is_some()
            && (self.outputs.iter().all(Option::is_none)
                || self.drain_until.is_some_and(|t| Instant::now() >= t))
    }

    fn run_loop(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        // Children may have ended before the handler was there to say so.
        self.reap();
        sys::release_startup_code();
        while !self.finished() {
            fds.clear();
            slots.clear();
            let mut add = |fd: RawFd, events: i16, slot: Slot| {
                fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                slots.push(slot);
            };
            add(self.sigchld.as_raw_fd(), libc::POLLIN, Slot::SigChld);
            for (i, o) in self.outputs.iter().enumerate() {
                if let Some(o) = o {
                    add(o.file.as_raw_fd(), libc::POLLIN, Slot::Output(i));
                }
            }
            if let Some(s) = &self.stdin {
                if !self.stdin_buf.is_empty() {
                    add(s.as_raw_fd(), libc::POLLOUT, Slot::Stdin);
                }
            }
            add(
                self.listener.listener.as_raw_fd(),
                libc::POLLIN,
                Slot::Listener,
            );
            // Past the limit, clients that send input wait; the others (a daemon's START
            // among them, which the input may be waiting for) are still read.
            let take_input = self.stdin_buf.len() < STDIN_LIMIT;
            for (i, c) in self.clients.iter().enumerate() {
                let mut events = 0;
                if (take_input || !c.sends_input) && !c.read_closed {
                    events |= libc::POLLIN;
                }
                if c.pending() > 0 {
                    events |= libc::POLLOUT;
                }
                add(c.stream.as_raw_fd(), events, Slot::Client(i));
            }
            let timeout = match self.drain_until {
                Some(t) => t.saturating_duration_since(Instant::now()).as_millis() as i32 + 1,
                None => -1,
            };
            if sys::poll(&mut fds, timeout).is_err() {
                // Nothing to wait on works any more: record what is known and go.
                break;
            }
            for (pfd, slot) in fds.iter().zip(&slots) {
                let ready = pfd.revents;
                if ready == 0 {
                    continue;
                }
                let hangup = ready & (libc::POLLHUP | libc::POLLERR) != 0;
                match *slot {
                    Slot::SigChld => {
                        let _ = sys::read_available(&mut self.sigchld, 4096);
                        self.reap();
                    }
                    Slot::Output(i) => self.read_output(i),
                    Slot::Stdin => self.pump_stdin(),
                    Slot::Listener => self.accept(),
                    Slot::Client(i) => {
                        if self.clients[i].read_closed {
                            self.clients[i].dead |= hangup;
                        } else if ready & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                            let frames = self.clients[i].receive(hangup);
                            for f in frames {
                                self.handle_frame(i, f);
                            }
                        }
                    }
                }
            }
            self.pump_stdin();
            for c in &mut self.clients {
                c.flush();
                if c.read_closed && c.flags.unwrap_or(0) == 0 && c.pending() == 0 {
                    c.dead = true;
                }
            }
            self.clients.retain(|c| !c.dead);
        }
    }

    fn reap(&mut self) {
        while let Some((pid, status)) = sys::reap_one() {
            if pid == self.pid && self.exit.is_none() {
                self.exit = Some(ExitStatus::from_wait_status(
                    status,
                    time::now_rfc3339_nano(),
                ));
                self.drain_until = Some(Instant::now() + DRAIN);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.listener.accept() {
                Ok((stream, _)) => {
                    if self.clients.len() < MAX_CLIENTS && stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client::new(stream));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn handle_frame(&mut self, from: usize, f: protocol::Frame) {
        if self.clients[from].dead {
            return;
        }
        match f.kind {
            protocol::HELLO => {
                self.clients[from].flags = Some(f.payload.first().copied().unwrap_or(0))
            }
            protocol::STDIN if self.stdin_open => {
                self.clients[from].sends_input = true;
                self.stdin_buf.extend_from_slice(&f.payload)
            }
            // A terminal has no end of input to send; only pipes close.
            protocol::STDIN_CLOSE if !self.opts.terminal && self.stdin_open => {
                self.stdin_open = false;
                self.stdin_closing = true;
            }
            protocol::RESIZE => {
                if let Some((rows, cols)) = protocol::parse_resize(&f.payload) {
                    self.winsize = Some((rows, cols));
                    if let Some(m) = &self.master {
                        let _ = sys::set_winsize(m.as_raw_fd(), rows, cols);
                    }
                }
            }
            protocol::START => self.start(from),
            // Unknown frames are skipped: newer clients may say more.
            _ => {}
        }
    }

    /// Write buffered input without blocking; close the pipe after STDIN_CLOSE.
    fn pump_stdin(&mut self) {
        let Some(target) = &mut self.stdin else {
            return;
        };
        let mut written = 0;
        let mut broken = false;
        while written < self.stdin_buf.len() {
            match target.write(&self.stdin_buf[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The process closed its stdin (or is gone): input has nowhere to go.
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        self.stdin_buf.drain(..written);
        if broken || (self.stdin_closing && self.stdin_buf.is_empty()) {
            self.stdin = None;
            self.stdin_open = false;
            self.stdin_buf = Vec::new();
        }
    }

    /// Read one chunk of output: into the log, and to every client that wants it.
    fn read_output(&mut self, i: usize) {
        let Some(out) = &mut self.outputs[i] else {
            return;
        };
        let mut buf = [0u8; CHUNK];
        let n = loop {
            match out.file.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // EIO: every holder of the pty's other side has gone; for a pipe
                // any error is the end of it too.
                Err(_) => break 0,
            }
        };
        let stream = out.stream;
        let mut stamp = Vec::with_capacity(32);
        let (secs, nanos) = time::now();
        time::write_rfc3339_nano(&mut stamp, secs, nanos);
        if let Some(log) = &mut self.log {
            let mut write = |line: &[u8]| log.write(line, stream.name(), &stamp);
            if n == 0 {
                out.lines.finish(&mut write);
            } else {
                out.lines.feed(&buf[..n], &mut write);
            }
            log.flush();
        }
        if n == 0 {
            self.outputs[i] = None;
            return;
        }
        for c in &mut self.clients {
            if c.wants(stream.flag()) {
                c.queue(stream.frame(), &buf[..n]);
            }
        }
    }

    /// The end: last lines, `DIR/exit`, EXIT to whoever asked, sockets removed.
    fn finish(mut self) -> i32 {
        let now = time::now_rfc3339_nano();
        if let Some(log) = &mut self.log {
            for out in self.outputs.iter_mut().flatten() {
                let stream = out.stream.name();
                out.lines
                    .finish(&mut |line| log.write(line, stream, now.as_bytes()));
            }
            log.flush();
        }
        let exit = self.exit.take().unwrap_or_else(|| {
            ExitStatus::failed("the monitor could not wait any longer".into(), now)
        });
        let json = exit.to_json();
        let _ = sys::write_atomic(&self.paths.exit, json.as_bytes());
        for c in &mut self.clients {
            if c.wants(protocol::WANT_EXIT) {
                c.queue(protocol::EXIT, json.as_bytes());
            }
        }
        self.flush_clients(Instant::now() + FINAL_FLUSH);
        // Everything closes, and `DIR/sock` goes with its listener.
        drop(self);
        if exit.error.is_some() {
            1
        } else {
            0
        }
    }

    /// Give clients until `deadline` to take what is queued for them.
    fn flush_clients(&mut self, deadline: Instant) {
        loop {
            for c in &mut self.clients {
                c.flush();
            }
            self.clients.retain(|c| !c.dead && c.pending() > 0);
            let left = deadline.saturating_duration_since(Instant::now());
            if self.clients.is_empty() || left.is_zero() {
                return;
            }
            let mut fds: Vec<libc::pollfd> = self
                .clients
                .iter()
                .map(|c| libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                })
                .collect();
            if sys::poll(&mut fds, left.as_millis() as i32 + 1).is_err() {
                return;
            }
        }
    }
}
