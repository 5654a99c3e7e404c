//! berth-monitor against the real berth-runc and a busybox container, driven the
//! way the daemon drives it: a sync pipe, then attach clients on `DIR/sock`.
//! Needs root (namespaces, cgroups).

mod common;

use std::io::Read;
use std::time::Duration;

use berth_monitor::protocol::{
    self, resize_payload, SyncReport, WANT_EXIT, WANT_STDERR, WANT_STDOUT,
};
use common::*;

const ALL: u8 = WANT_STDOUT | WANT_STDERR | WANT_EXIT;
const LONG: Duration = Duration::from_secs(120);

/// A container running `args`, its monitor started with `extra`, and a client
/// that said HELLO with `flags` and START: (setup, init's pid, client).
fn running(name: &str, args: &[&str], extra: &[&str], flags: u8) -> (Setup, i32, Conn) {
    let mut s = Setup::new(name, args, false);
    let init = created(s.start_container_monitor(extra));
    let mut c = s.connect();
    c.hello(flags);
    assert_eq!(c.start(), Ok(init));
    (s, init, c)
}

fn created(r: SyncReport) -> i32 {
    match r {
        SyncReport::Ok { pid } if pid > 0 => pid,
        other => panic!("create: {other:?}"),
    }
}

#[test]
fn output_of_both_streams_reaches_the_log_and_the_client_in_order() {
    let script = "echo one; sleep 0.2; echo 'two \"q\" <&>' >&2; sleep 0.2; \
                  printf 'tab\\there\\n'; printf 'no newline'";
    let mut s = Setup::new("output", &["sh", "-c", script], false);
    let init = created(s.start_container_monitor(&[]));

    // The monitor runs on its own: not the test's child, but init's (or a subreaper's).
    let monitor = s.monitor_pid();
    assert_ne!(ppid_of(monitor), std::process::id() as i32);
    assert_eq!(ppid_of(init), monitor, "init is reparented to its monitor");

    let mut c = s.connect();
    c.hello(ALL);
    assert_eq!(c.start(), Ok(init));
    let seen = c.until_exit();
    assert_eq!(
        String::from_utf8_lossy(&seen.stdout),
        "one\ntab\there\nno newline"
    );
    assert_eq!(String::from_utf8_lossy(&seen.stderr), "two \"q\" <&>\n");
    let exit = seen.exit.clone().unwrap();
    assert_eq!(
        (exit.exit_code, exit.signal, exit.error.as_deref()),
        (0, None, None)
    );
    assert_eq!(s.wait_exit_file(&s.dir, LONG), exit);

    let entries = s.log_entries(&s.log_path());
    let want = [
        ("one\n", "stdout"),
        ("two \"q\" <&>\n", "stderr"),
        ("tab\there\n", "stdout"),
        ("no newline", "stdout"),
    ];
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|(l, s)| (l.as_str(), s.as_str()))
        .collect();
    assert_eq!(got, want);
    // Docker's escaping, byte for byte.
    let raw = std::fs::read_to_string(s.log_path()).unwrap();
    assert!(
        raw.contains(r#"{"log":"two \"q\" \u003c\u0026\u003e\n","stream":"stderr","time":""#),
        "{raw}"
    );
    assert!(raw.contains(r#""log":"tab\u0009here\n""#), "{raw}");
    // The monitor is gone, and so is its socket.
    assert!(wait_for(Duration::from_secs(5), || !pid_alive(monitor)));
    assert!(!s.dir.join("sock").exists());
}

#[test]
fn exit_code_of_the_container() {
    let (s, _, mut c) = running("exit3", &["sh", "-c", "exit 3"], &[], WANT_EXIT);
    let exit = c.until_exit().exit.clone().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (3, None));
    assert!(exit.finished_at.ends_with('Z'));
    assert_eq!(s.wait_exit_file(&s.dir, LONG), exit);
}

#[test]
fn exit_zero_without_any_client_waiting() {
    let (s, _, c) = running("exit0", &["true"], &[], 0);
    drop(c);
    let exit = s.wait_exit_file(&s.dir, LONG);
    assert_eq!((exit.exit_code, exit.signal), (0, None));
}

#[test]
fn killed_by_sigkill_is_137_and_signal_9() {
    let (s, init, mut c) = running("sigkill", &["sleep", "100"], &[], WANT_EXIT);
    kill(init, libc::SIGKILL);
    let exit = c.until_exit().exit.clone().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert_eq!(
        std::fs::read_to_string(s.dir.join("exit")).unwrap(),
        format!(
            r#"{{"exit_code":137,"signal":9,"finished_at":"{}"}}"#,
            exit.finished_at
        )
    );
}

#[test]
fn stdin_round_trip_and_close() {
    let (s, _, mut c) = running("stdin", &["cat"], &["--stdin"], ALL);
    c.send(protocol::STDIN, b"hello\n");
    c.send(protocol::STDIN, b"wor");
    c.send(protocol::STDIN, b"ld\n");
    // cat is still running: it only ends when its stdin is closed.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.dir.join("exit").exists());
    c.send(protocol::STDIN_CLOSE, b"");
    let seen = c.until_exit();
    assert_eq!(seen.stdout, b"hello\nworld\n");
    assert_eq!(seen.exit.as_ref().unwrap().exit_code, 0);
    let lines: Vec<String> = s
        .log_entries(&s.log_path())
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(lines, ["hello\n", "world\n"]);
}

#[test]
fn terminal_with_resize_and_input() {
    let script = "stty size; read x; echo \"got $x\"";
    let mut s = Setup::new("tty", &["sh", "-c", script], true);
    created(s.start_container_monitor(&["--terminal", "--stdin"]));
    let mut c = s.connect();
    c.hello(ALL);
    // Sized before the program starts: `stty size` sees it at once.
    c.send(protocol::RESIZE, &resize_payload(33, 111));
    c.start().unwrap();
    while !String::from_utf8_lossy(&c.seen.stdout).contains("33 111") {
        c.next().expect("output ended before the size was printed");
    }
    c.send(protocol::RESIZE, &resize_payload(50, 60));
    c.send(protocol::STDIN, b"abc\n");
    let seen = c.until_exit();
    let out = String::from_utf8_lossy(&seen.stdout).into_owned();
    assert!(out.starts_with("33 111\r\n"), "{out:?}");
    assert!(out.contains("got abc\r\n"), "{out:?}");
    assert!(seen.stderr.is_empty());
    assert_eq!(seen.exit.as_ref().unwrap().exit_code, 0);
    // One stream, lines as the terminal wrote them.
    let entries = s.log_entries(&s.log_path());
    assert!(
        entries
            .iter()
            .all(|(l, s)| s == "stdout" && l.ends_with("\r\n")),
        "{entries:?}"
    );
    assert_eq!(entries[0].0, "33 111\r\n");
    assert!(
        entries.iter().any(|(l, _)| l == "got abc\r\n"),
        "{entries:?}"
    );
    assert!(!s.dir.join("console.sock").exists());
}

#[test]
fn exec_into_a_running_container() {
    let (mut s, init, mut main) = running("exec", &["sleep", "100"], &[], WANT_EXIT);

    let exec_dir = s.tmp.path().join("exec1");
    let process = s.process_json(
        &["sh", "-c", "echo from-exec; echo exec-err >&2; exit 7"],
        false,
    );
    let report = s.start_exec_monitor(&exec_dir, &process, &[]);
    assert_eq!(report, SyncReport::Ok { pid: 0 });
    let mut c = Conn::connect(&exec_dir.join("sock"));
    c.hello(ALL);
    let pid = c.start().unwrap();
    assert!(pid > 0 && pid != init);
    let seen = c.until_exit();
    assert_eq!(seen.stdout, b"from-exec\n");
    assert_eq!(seen.stderr, b"exec-err\n");
    assert_eq!(seen.exit.as_ref().unwrap().exit_code, 7);
    assert_eq!(s.wait_exit_file(&exec_dir, LONG).exit_code, 7);
    // An exec writes no log.
    assert!(std::fs::read_dir(&exec_dir).unwrap().all(|e| {
        let name = e.unwrap().file_name();
        !name.to_string_lossy().ends_with(".log") || name == "runtime.log"
    }));

    // An exec that cannot run: START answers with the runtime's reason, the exit
    // record carries it.
    let bad_dir = s.tmp.path().join("exec2");
    let process = s.process_json(&["/no/such/tool"], false);
    assert_eq!(
        s.start_exec_monitor(&bad_dir, &process, &[]),
        SyncReport::Ok { pid: 0 }
    );
    let mut c = Conn::connect(&bad_dir.join("sock"));
    c.hello(WANT_EXIT);
    let err = c.start().unwrap_err();
    assert!(err.contains("/no/such/tool"), "{err}");
    let exit = s.wait_exit_file(&bad_dir, LONG);
    assert_eq!(exit.exit_code, -1);
    assert!(exit.error.unwrap().contains("/no/such/tool"));

    // The container itself ran on, untouched.
    assert!(pid_alive(init));
    kill(init, libc::SIGKILL);
    assert_eq!(main.until_exit().exit.as_ref().unwrap().exit_code, 137);
}

#[test]
fn exec_with_a_terminal() {
    let (mut s, init, _) = running("exectty", &["sleep", "100"], &[], 0);
    let exec_dir = s.tmp.path().join("exec");
    // The exec'd program runs before START is answered: its first size comes with
    // the process (consoleSize), later ones by RESIZE.
    let process = s.process_json(&["sh", "-c", "stty size; tty; read x; stty size"], true);
    s.edit_json(&process, |p| {
        p["consoleSize"] = serde_json::json!({"height": 24, "width": 100})
    });
    s.start_exec_monitor(&exec_dir, &process, &["--terminal", "--stdin"]);
    let mut c = Conn::connect(&exec_dir.join("sock"));
    c.hello(ALL);
    c.start().unwrap();
    while !String::from_utf8_lossy(&c.seen.stdout).contains("/dev/pts/") {
        c.next().expect("output ended early");
    }
    c.send(protocol::RESIZE, &resize_payload(30, 90));
    c.send(protocol::STDIN, b"\n");
    let seen = c.until_exit();
    let out = String::from_utf8_lossy(&seen.stdout);
    assert!(out.starts_with("24 100\r\n/dev/pts/"), "{out:?}");
    assert!(out.ends_with("30 90\r\n"), "{out:?}");
    assert_eq!(seen.exit.as_ref().unwrap().exit_code, 0);
    kill(init, libc::SIGKILL);
}

#[test]
fn failing_create_reports_the_runtime_error() {
    let mut s = Setup::new("badcreate", &["/no/such/binary"], false);
    let report = s.start_container_monitor(&[]);
    let SyncReport::Failed { error } = report else {
        panic!("create of a missing program succeeded: {report:?}");
    };
    assert!(error.contains("/no/such/binary"), "{error}");
    let monitor = s.monitor_pid();
    assert!(wait_for(Duration::from_secs(10), || !pid_alive(monitor)));
    assert!(!s.dir.join("sock").exists());
    // Nothing is left in the runtime's state.
    let out = std::process::Command::new(runc())
        .arg("--root")
        .arg(&s.root)
        .args(["state", &s.id])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_second_start_is_refused_and_clients_come_and_go() {
    let script = "i=0; while [ $i -lt 150 ]; do echo line $i; i=$((i+1)); sleep 0.01; done";
    let mut s = Setup::new("reattach", &["sh", "-c", script], false);
    created(s.start_container_monitor(&[]));
    let mut first = s.connect();
    first.hello(WANT_STDOUT);
    first.start().unwrap();
    // Leave in the middle of the output, without reading the rest.
    while !String::from_utf8_lossy(&first.seen.stdout).contains("line 5\n") {
        first.next().unwrap();
    }
    drop(first);
    let mut second = s.connect();
    assert_eq!(second.start(), Err("already started".into()));
    second.hello(ALL);
    let seen = second.until_exit();
    assert_eq!(seen.exit.as_ref().unwrap().exit_code, 0);
    assert!(String::from_utf8_lossy(&seen.stdout).ends_with("line 149\n"));
    let lines: Vec<String> = s
        .log_entries(&s.log_path())
        .into_iter()
        .map(|e| e.0)
        .collect();
    let want: Vec<String> = (0..150).map(|i| format!("line {i}\n")).collect();
    assert_eq!(lines, want);
}

#[test]
fn a_client_that_never_reads_cannot_stop_50_mb() {
    // 100-byte lines, 50 MiB of them. (Not `yes | head`: under berth-runc the
    // container inherits an ignored SIGPIPE, and `yes` would never stop.)
    let script = r#"BEGIN { s = sprintf("%099d", 0); for (i = 0; i < 524288; i++) print s }"#;
    let (s, _, mut stuck) = running("flood", &["awk", script], &[], WANT_STDOUT | WANT_STDERR);
    // Never read from `stuck` while the container writes.
    let exit = s.wait_exit_file(&s.dir, Duration::from_secs(300));
    assert_eq!(exit.exit_code, 0);
    let text = std::fs::read_to_string(s.log_path()).unwrap();
    let mut total = 0;
    let mut count = 0;
    for l in text.lines() {
        let (log, stream) = check_entry(l);
        assert_eq!((log.len(), stream.as_str()), (100, "stdout"));
        total += log.len();
        count += 1;
    }
    assert_eq!((total, count), (52_428_800, 524_288));
    // The client fell behind and was cut off: what it can still read ends early.
    let mut rest = Vec::new();
    stuck
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stuck.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.len() < 16 << 20, "{} bytes", rest.len());
}

#[test]
fn rotation_keeps_at_most_three_files_under_the_size() {
    let script = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done";
    let rotate = ["--log-max-size", "2048", "--log-max-files", "3"];
    let (s, _, _c) = running("rotate", &["sh", "-c", script], &rotate, 0);
    assert_eq!(s.wait_exit_file(&s.dir, LONG).exit_code, 0);
    let log = s.log_path();
    let name = |k: u32| {
        let mut p = log.clone().into_os_string();
        p.push(format!(".{k}"));
        std::path::PathBuf::from(p)
    };
    assert!(!name(3).exists());
    let files = [name(2), name(1), log.clone()];
    let mut lines = Vec::new();
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 2048, "{}: {len}", f.display());
        lines.extend(s.log_entries(f).into_iter().map(|e| e.0));
    }
    // Oldest first: the newest 3 files hold a tail of the output, in order.
    let first: usize = lines[0].trim_end()[5..].parse().unwrap();
    assert!(first > 0, "nothing was rotated away");
    let want: Vec<String> = (first..300).map(|i| format!("line {i}\n")).collect();
    assert_eq!(lines, want);
}

#[test]
fn the_container_outlives_its_daemon_side() {
    let mut s = Setup::new("detached", &["sleep", "100"], false);
    // An earlier run's record in the directory is not taken for this one.
    std::fs::write(s.dir.join("exit"), r#"{"exit_code":5,"signal":null}"#).unwrap();
    let init = created(s.start_container_monitor(&[]));
    assert!(!s.dir.join("exit").exists());
    let monitor = s.monitor_pid();
    let sock = std::fs::metadata(s.dir.join("sock")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&sock.permissions()) & 0o777,
        0o600
    );
    let mut c = s.connect();
    c.hello(ALL);
    c.start().unwrap();
    // The "daemon" goes away: every connection closed, the sync pipe long read.
    drop(c);
    std::thread::sleep(Duration::from_millis(500));
    assert!(pid_alive(init), "the container died with its clients");
    assert!(pid_alive(monitor));
    assert_ne!(ppid_of(monitor), std::process::id() as i32);
    // A new "daemon" attaches and sees the end.
    let mut again = s.connect();
    again.hello(WANT_EXIT);
    kill(init, libc::SIGKILL);
    let exit = again.until_exit().exit.clone().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert!(wait_for(Duration::from_secs(5), || !pid_alive(monitor)));
}
