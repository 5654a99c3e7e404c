//! berth-bench-apply-layer LAYER DEST
//!
//! Extracts LAYER (plain, gzip or zstd tar: sniffed as berth's pull does) into the existing
//! directory DEST with berth_archive::apply_layer and the default options (overlay whiteouts,
//! owners kept when root). Prints the uncompressed bytes and entries on stderr.
use std::{env, fs, path::Path, process::ExitCode};

use berth_archive::{apply_layer, decompress, ApplyOptions};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {} LAYER DEST", args[0]);
        return ExitCode::from(2);
    }
    let run = || -> Result<_, Box<dyn std::error::Error>> {
        let file = fs::File::open(&args[1])?;
        let (_, reader) = decompress(file)?;
        Ok(apply_layer(reader, Path::new(&args[2]), &ApplyOptions::default())?)
    };
    match run() {
        Ok(stats) => {
            if env::var_os("VERBOSE").is_some() {
                eprintln!("{} bytes, {} entries", stats.bytes, stats.entries);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("apply_layer: {e}");
            ExitCode::FAILURE
        }
    }
}
