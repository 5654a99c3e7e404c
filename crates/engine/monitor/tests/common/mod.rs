//! The "daemon" side for the monitor's tests: a busybox bundle, the real
//! berth-runc, the real berth-monitor started the way the daemon starts it, and an
//! attach client speaking the library's protocol.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_monitor::protocol::{self, ExitStatus, Frame, FrameReader, SyncReport};
use serde_json::Value;

pub const MONITOR: &str = env!("CARGO_BIN_EXE_berth-monitor");

/// berth-runc: `$BERTH_RUNC`, else the one beside this test's target directory,
/// built there if missing.
pub fn runc() -> &'static Path {
    static RUNC: OnceLock<PathBuf> = OnceLock::new();
    RUNC.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_RUNC") {
            return PathBuf::from(p);
        }
        // target/debug/deps/<test> → target/debug
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
        let runc = profile_dir.join("berth-runc");
        if !runc.exists() {
            let target_dir = profile_dir.parent().unwrap();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "berth-runc"])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build -p berth-runc");
            assert!(status.success(), "cargo build -p berth-runc failed");
        }
        runc
    })
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie is not alive: it has exited and waits for its parent.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

pub fn ppid_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

pub fn kill(pid: i32, sig: i32) {
    assert!(pid > 0);
    // SAFETY: kill(2) with a pid this test was told belongs to its container.
    unsafe { libc::kill(pid, sig) };
}

/// Wait for `cond`, checking every 20 ms; false on timeout.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// One container's bundle, runtime root and monitor directory, in a tempdir.
pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub id: String,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub dir: PathBuf,
    /// Monitors started (container and exec), to be sure they are gone at the end.
    monitors: Vec<i32>,
}

impl Setup {
    /// A busybox bundle whose process runs `args` (with a terminal if asked).
    pub fn new(name: &str, args: &[&str], terminal: bool) -> Setup {
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-monitor-")
            .tempdir()
            .unwrap();
        let id = format!("berth-test-monitor-{name}-{}", std::process::id());
        let root = tmp.path().join("root");
        let bundle = tmp.path().join("bundle");
        let dir = tmp.path().join("mon");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../scripts/make-busybox-rootfs.sh");
        let out = Command::new(&script)
            .arg(bundle.join("rootfs"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(runc())
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth-runc spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = Setup {
            tmp,
            id,
            root,
            bundle,
            dir,
            monitors: Vec::new(),
        };
        s.edit_config(|c| {
            c["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
            c["process"]["terminal"] = Value::Bool(terminal);
        });
        s
    }

    pub fn edit_config(&self, f: impl FnOnce(&mut Value)) {
        self.edit_json(&self.bundle.join("config.json"), f);
    }

    pub fn edit_json(&self, path: &Path, f: impl FnOnce(&mut Value)) {
        let mut c: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    /// The bundle's process object with other args: an exec's process.json.
    pub fn process_json(&self, args: &[&str], terminal: bool) -> PathBuf {
        let c: Value =
            serde_json::from_slice(&std::fs::read(self.bundle.join("config.json")).unwrap())
                .unwrap();
        let mut p = c["process"].clone();
        p["args"] = args.iter().map(|a| Value::from(*a)).collect();
        p["terminal"] = Value::Bool(terminal);
        let n = std::fs::read_dir(self.tmp.path()).unwrap().count();
        let path = self.tmp.path().join(format!("process-{n}.json"));
        std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
        path
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("container.log")
    }

    /// Start a container-mode monitor with the log at [`Self::log_path`].
    pub fn start_container_monitor(&mut self, extra: &[&str]) -> SyncReport {
        let (dir, bundle) = (self.dir.clone(), self.bundle.clone());
        let mut args: Vec<&OsStr> = vec![
            "--mode".as_ref(),
            "container".as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
        ];
        let log = self.log_path();
        if !extra.contains(&"--log-path") {
            args.extend(["--log-path".as_ref(), log.as_os_str()]);
        }
        args.extend(extra.iter().map(OsStr::new));
        self.launch(&dir, &args)
    }

    /// Start an exec-mode monitor in its own directory.
    pub fn start_exec_monitor(&mut self, dir: &Path, process: &Path, extra: &[&str]) -> SyncReport {
        std::fs::create_dir_all(dir).unwrap();
        let mut args: Vec<&OsStr> = vec![
            "--mode".as_ref(),
            "exec".as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--process".as_ref(),
            process.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        self.launch(dir, &args)
    }

    /// Run berth-monitor as the daemon does: a sync pipe on fd `--sync-fd`, wait
    /// for the short-lived parent, read the one line.
    fn launch(&mut self, dir: &Path, args: &[&OsStr]) -> SyncReport {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors are new and owned here.
        let (mut r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let wfd = w.as_raw_fd();
        let mut cmd = Command::new(MONITOR);
        cmd.arg("--runtime")
            .arg(runc())
            .arg("--runtime-root")
            .arg(&self.root)
            .arg("--id")
            .arg(&self.id)
            .args(args)
            .arg("--sync-fd")
            .arg(wfd.to_string());
        // SAFETY: fcntl is async-signal-safe; only the monitor inherits the write end.
        unsafe {
            cmd.pre_exec(move || {
                libc::fcntl(wfd, libc::F_SETFD, 0);
                Ok(())
            });
        }
        let status = cmd.status().unwrap();
        drop(w);
        assert!(status.success(), "berth-monitor's first process: {status}");
        let line = read_all_with_timeout(&mut r, Duration::from_secs(60));
        if let Ok(pid) = std::fs::read_to_string(dir.join("monitor.pid")) {
            self.monitors.push(pid.trim().parse().unwrap());
        }
        SyncReport::parse(std::str::from_utf8(&line).unwrap())
            .unwrap_or_else(|e| panic!("sync line {:?}: {e}", String::from_utf8_lossy(&line)))
    }

    pub fn connect(&self) -> Conn {
        Conn::connect(&self.dir.join("sock"))
    }

    pub fn monitor_pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.join("monitor.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// `DIR/exit`, once the monitor wrote it.
    pub fn wait_exit_file(&self, dir: &Path, timeout: Duration) -> ExitStatus {
        let path = dir.join("exit");
        assert!(
            wait_for(timeout, || path.exists()),
            "no {} after {timeout:?}",
            path.display()
        );
        ExitStatus::parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// The json-file log's entries, each checked to be exactly Docker's shape.
    pub fn log_entries(&self, path: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(check_entry).collect()
    }
}

/// One json-file line: exactly `log`, `stream`, `time`, in that order; the time
/// UTC RFC 3339 with at most nanoseconds. Returns (log, stream).
pub fn check_entry(line: &str) -> (String, String) {
    let v: serde_json::Map<String, Value> =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let keys: Vec<&str> = v.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["log", "stream", "time"], "{line}");
    assert!(line.starts_with("{\"log\":"), "{line}");
    let time = v["time"].as_str().unwrap();
    let b = time.as_bytes();
    assert!(
        time.len() >= 20 && b[4] == b'-' && b[10] == b'T' && time.ends_with('Z'),
        "{time}"
    );
    if time.len() > 20 {
        assert!(b[19] == b'.' && time.len() <= 30, "{time}");
    }
    let stream = v["stream"].as_str().unwrap().to_owned();
    assert!(stream == "stdout" || stream == "stderr", "{line}");
    (v["log"].as_str().unwrap().to_owned(), stream)
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = Command::new(runc())
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .output();
        // With the container gone its monitor records the exit and leaves; one
        // that does not is killed (it is ours: its pid came from its own file).
        for &pid in &self.monitors {
            if !wait_for(Duration::from_secs(5), || !pid_alive(pid)) {
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn read_all_with_timeout(f: &mut File, timeout: Duration) -> Vec<u8> {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out reading; got {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that lives across the call.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        let mut buf = [0u8; 4096];
        match f.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the sync pipe: {e}"),
        }
    }
}

/// What an attach client saw.
#[derive(Default, Debug)]
pub struct Seen {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<ExitStatus>,
}

/// An attach client.
pub struct Conn {
    pub stream: UnixStream,
    reader: FrameReader<UnixStream>,
    /// Output frames read while waiting for a reply.
    pub seen: Seen,
}

impl Conn {
    pub fn connect(path: &Path) -> Conn {
        let stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let reader = FrameReader::new(stream.try_clone().unwrap());
        Conn {
            stream,
            reader,
            seen: Seen::default(),
        }
    }

    pub fn send(&mut self, kind: u8, payload: &[u8]) {
        self.stream
            .write_all(&protocol::encode_frame(kind, payload))
            .unwrap();
    }

    pub fn hello(&mut self, flags: u8) {
        self.send(protocol::HELLO, &[flags]);
    }

    /// One frame; output and EXIT frames are also recorded in `seen`.
    pub fn next(&mut self) -> Option<Frame> {
        let f = self.reader.read_frame().unwrap()?;
        match f.kind {
            protocol::STDOUT => self.seen.stdout.extend_from_slice(&f.payload),
            protocol::STDERR => self.seen.stderr.extend_from_slice(&f.payload),
            protocol::EXIT => {
                self.seen.exit =
                    Some(ExitStatus::parse(std::str::from_utf8(&f.payload).unwrap()).unwrap())
            }
            _ => {}
        }
        Some(f)
    }

    /// Send START and wait for the reply: the pid, or the error message.
    pub fn start(&mut self) -> Result<i32, String> {
        self.send(protocol::START, b"");
        loop {
            let f = self
                .next()
                .expect("connection closed before the START reply");
            match f.kind {
                protocol::STARTED => return Ok(protocol::parse_started(&f.payload).unwrap()),
                protocol::ERROR => return Err(String::from_utf8(f.payload).unwrap()),
                _ => {}
            }
        }
    }

    /// Read until EXIT (or the end of the connection).
    pub fn until_exit(&mut self) -> &Seen {
        while self.seen.exit.is_none() {
            if self.next().is_none() {
                break;
            }
        }
        &self.seen
    }
}
