//! `berth-runc`: the runc command line over berth's runtime library.
//!
//! Callers that drive runc (podman's conmon, containerd's shim, scripts) drive
//! berth-runc unchanged: same global flags, same commands, same JSON, same exit
//! codes. Each command is a few lines in `commands`; the work happens in
//! `berth_runtime`.

mod cli;
mod commands;
mod log;
mod tty;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let logger = log::Logger::new(cli.log.as_deref(), cli.log_format, cli.debug);
    // What the caller asked for, word for word: the first thing to look at when a
    // caller (conmon, a shim) and the runtime disagree.
    logger.debug(&format!(
        "argv {:?} pid {}",
        std::env::args().collect::<Vec<_>>(),
        std::process::id()
    ));
    let code = match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    };
    logger.debug(&format!("exit {code}"));
    std::process::exit(code);
}
