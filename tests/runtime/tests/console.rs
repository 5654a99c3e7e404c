//! Terminals: `create --console-socket` hands the pty master to the caller;
//! a foreground `run` with a terminal proxies it itself.

use std::time::Duration;

use anyhow::{ensure, Context};
use berth_runtime_tests::console::{read_pty, run_on_pty, write_pty, ConsoleSocket};
use berth_runtime_tests::{conformance, Bundle, Container, Spec};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of terminal output without carriage returns.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

conformance!(console_socket_receives_pty, |rt| {
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().terminal(true).args(&["sh"]))?;
    let c = Container::new(rt, &bundle, "console");
    let socket = ConsoleSocket::bind(&bundle.file("console.sock"))?;
    let (master, created) = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| socket.receive_master(TIMEOUT));
        let created = c.create_with(&["--console-socket", &socket.path().to_string_lossy()]);
        (receiver.join().expect("receiver thread"), created)
    });
    created?.ok()?;
    let master = master.with_context(|| format!("[{rt}] no pty master on the console socket"))?;
    c.start()?;

    write_pty(&master, "[ -t 0 ] && echo is-a-tty; echo hello; exit 5\n")?;
    let text = read_pty(&master, TIMEOUT, |_| false)?;
    let seen = lines(&text);
    ensure!(
        seen.iter().any(|l| l == "hello"),
        "[{rt}] no \"hello\" line from the terminal: {text:?}"
    );
    ensure!(
        seen.iter().any(|l| l == "is-a-tty"),
        "[{rt}] the process's stdin is not a terminal: {text:?}"
    );
    c.wait_for_status("stopped", TIMEOUT)?;
    drop(master);
    c.delete_and_check(false)?;
    Ok(())
});

conformance!(foreground_run_with_terminal, |rt| {
    // `run` with a terminal and no console socket proxies between the
    // caller's terminal and the container's: give it one, as a shell would.
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().terminal(true).args(&["sh"]))?;
    let c = Container::new(rt, &bundle, "tty-run");
    let bundle_path = bundle.path().to_string_lossy().into_owned();
    let cmd = rt.command(&["run", "--bundle", &bundle_path, &c.id]);
    let (code, text) = run_on_pty(
        cmd,
        "[ -t 1 ] && echo is-a-tty; echo hello; exit 5\n",
        TIMEOUT,
    )?;
    ensure!(
        code == Some(5),
        "[{rt}] run with a terminal must exit with the shell's 5, got {code:?}: {text:?}"
    );
    let seen = lines(&text);
    ensure!(
        seen.iter().any(|l| l == "hello"),
        "[{rt}] no \"hello\" line: {text:?}"
    );
    ensure!(
        seen.iter().any(|l| l == "is-a-tty"),
        "[{rt}] stdout is not a terminal: {text:?}"
    );
    c.assert_nothing_left()?;
    Ok(())
});

conformance!(terminal_without_console_socket_fails_detached, |rt| {
    // Nobody could ever read a detached container's terminal.
    let bundle = Bundle::new()?;
    bundle.write_spec(&Spec::new().terminal(true).args(&["sh"]))?;
    let c = Container::new(rt, &bundle, "tty-nosock");
    let outcome = c.create()?;
    ensure!(
        !outcome.success(),
        "[{rt}] create with terminal but no --console-socket must fail: {outcome}"
    );
    ensure!(
        !outcome.stderr.trim().is_empty(),
        "[{rt}] create failed silently: {outcome}"
    );
    c.assert_nothing_left()?;
    Ok(())
});
