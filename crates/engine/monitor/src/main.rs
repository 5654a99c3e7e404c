//! `berth-monitor`: one per running container and per exec; see the library's
//! documentation for its life, and README.md for the command line.
//!
//! `args` reads the command line, `sys::daemonize` puts the monitor on its own,
//! `monitor` is the life of one container: setup, the poll loop, the exit record.
//! `runtime` runs the OCI runtime, `jsonlog` writes the log, `client` holds one
//! attach connection.

mod args;
mod client;
mod jsonlog;
mod monitor;
mod runtime;
mod sys;

fn main() {
    let opts = match args::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("berth-monitor: {msg}");
            std::process::exit(2);
        }
    };
    if let Some(fd) = opts.sync_fd {
        // Kept across the fork below, and out of every process the monitor runs.
        if let Err(e) = sys::set_cloexec(fd) {
            eprintln!("berth-monitor: --sync-fd {fd}: {e}");
            std::process::exit(2);
        }
    }
    if let Err(e) = sys::daemonize(opts.sync_fd) {
        // Only the child gets here, with stdio already on /dev/null or not: the
        // daemon learns of it from the sync pipe closing without a line.
        eprintln!("berth-monitor: going into the background: {e}");
        std::process::exit(1);
    }
    std::process::exit(monitor::run(&opts));
}
