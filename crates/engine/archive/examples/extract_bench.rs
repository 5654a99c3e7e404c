//! Extraction throughput against GNU tar, and decompression throughput.
//!
//! Builds a ~100 MB layer (a few big files of random data and a few thousand small files),
//! then extracts it alternately with `tar -xf` and `apply_layer`, several rounds, and prints
//! MB/s for both and their ratio. Then it times gzip and zstd decompression of the same layer.
//!
//! ```text
//! cargo run --release -p berth-archive --example extract_bench [-- ROUNDS]
//! BENCH_DIR=/dev/shm cargo run --release -p berth-archive --example extract_bench
//! ```
//! Runs as root (both extractors then keep owners). Neither extractor fsyncs; the layer file is
//! in the page cache for both, and the file system is synced before every timed run so that one
//! run's writeback does not slow the next. `BENCH_DIR` picks the file system (default: the
//! temporary directory); tmpfs measures the extractors without the disk.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_archive::{apply_layer, compress, decompress, write_tree, ApplyOptions, Compression};

const BIG_FILES: usize = 4;
const BIG_SIZE: usize = 20 << 20;
const SMALL_DIRS: usize = 40;
const SMALL_PER_DIR: usize = 125;

/// xorshift64*: incompressible enough, no dependency.
struct Rng(u64);
impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn below(&mut self, n: u64) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b) % n
    }
}

fn make_tree(root: &Path) -> io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; BIG_SIZE];
    fs::create_dir_all(root.join("opt/big"))?;
    for i in 0..BIG_FILES {
        rng.fill(&mut buf);
        fs::write(root.join(format!("opt/big/blob{i}")), &buf)?;
    }
    for d in 0..SMALL_DIRS {
        let dir = root.join(format!("usr/share/d{d:02}"));
        fs::create_dir_all(&dir)?;
        for f in 0..SMALL_PER_DIR {
            // Mostly text-like small files: half random, half repeated, 100 B .. 8 KiB.
            let len = 100 + rng.below(8 * 1024) as usize;
            let mut data = vec![b'a' + (f % 26) as u8; len];
            rng.fill(&mut data[..len / 2]);
            fs::write(dir.join(format!("file{f:04}.txt")), &data)?;
        }
    }
    Ok(())
}

fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// User plus system time of this process or of its waited-for children.
fn cpu_time(who: libc::c_int) -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable rusage; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    let rc = unsafe { libc::getrusage(who, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage");
    // SAFETY: getrusage succeeded and filled the struct (it was zeroed before anyway).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let work = tempfile::Builder::new()
        .prefix("berth-archive-bench-")
        .tempdir_in(&base)?;
    println!("working in {}", work.path().display());
    let src = work.path().join("src");
    make_tree(&src)?;

    let layer = work.path().join("layer.tar");
    let t = Instant::now();
    write_tree(&src, io::BufWriter::new(fs::File::create(&layer)?))?.flush()?;
    let write_time = t.elapsed();
    let size = fs::metadata(&layer)?.len();
    println!(
        "layer: {:.1} MB, {} big files + {} small files; write_tree {:.0} MB/s",
        size as f64 / 1e6,
        BIG_FILES,
        SMALL_DIRS * SMALL_PER_DIR,
        mbps(size, write_time)
    );
    // Warm the page cache for both readers.
    io::copy(&mut fs::File::open(&layer)?, &mut io::sink())?;

    let opts = ApplyOptions::default();
    let (mut gnu, mut ours) = (Vec::new(), Vec::new());
    // CPU time (user + system) as well as wall time: on a shared, loaded machine the wall time
    // mostly measures the neighbours.
    let (mut gnu_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    // Alternate which extractor goes first, and start each from a synced file system with
    // nothing freshly deleted (ext4 with `discard` pays for deletions at the next commit).
    for round in 0..rounds {
        let gnu_out = work.path().join(format!("gnu{round}"));
        let ours_out = work.path().join(format!("ours{round}"));
        fs::create_dir(&gnu_out)?;
        fs::create_dir(&ours_out)?;
        for first in [round % 2 == 0, round % 2 == 1] {
            sync();
            let t = Instant::now();
            let (self_cpu, child_cpu) =
                (cpu_time(libc::RUSAGE_SELF), cpu_time(libc::RUSAGE_CHILDREN));
            if first {
                let status = Command::new("tar")
                    .arg("-xf")
                    .arg(&layer)
                    .arg("-C")
                    .arg(&gnu_out)
                    .status()?;
                gnu.push(t.elapsed());
                gnu_cpu.push(cpu_time(libc::RUSAGE_CHILDREN) - child_cpu);
                assert!(status.success(), "tar -xf failed");
            } else {
                let stats = apply_layer(fs::File::open(&layer)?, &ours_out, &opts)?;
                ours.push(t.elapsed());
                ours_cpu.push(cpu_time(libc::RUSAGE_SELF) - self_cpu);
                assert_eq!(stats.bytes, size);
            }
        }
        fs::remove_dir_all(&gnu_out)?;
        fs::remove_dir_all(&ours_out)?;
        println!(
            "round {round}: tar -xf {:7.1} MB/s   apply_layer {:7.1} MB/s   ({} first)",
            mbps(size, *gnu.last().unwrap()),
            mbps(size, *ours.last().unwrap()),
            if round % 2 == 0 { "tar" } else { "apply_layer" }
        );
    }
    let (g, o) = (median(gnu), median(ours));
    println!(
        "median: tar -xf {:.1} MB/s, apply_layer {:.1} MB/s, apply_layer/tar = {:.2}x",
        mbps(size, g),
        mbps(size, o),
        g.as_secs_f64() / o.as_secs_f64()
    );
    let (gc, oc) = (median(gnu_cpu), median(ours_cpu));
    println!(
        "median CPU time: tar -xf {:.0} ms, apply_layer {:.0} ms, tar/apply_layer = {:.2}x",
        gc.as_secs_f64() * 1e3,
        oc.as_secs_f64() * 1e3,
        gc.as_secs_f64() / oc.as_secs_f64()
    );

    let mut raw = Vec::with_capacity(size as usize);
    fs::File::open(&layer)?.read_to_end(&mut raw)?;
    for c in [Compression::Gzip, Compression::Zstd] {
        let t = Instant::now();
        let mut w = compress(Vec::new(), c)?;
        w.write_all(&raw)?;
        let packed = w.finish()?;
        let ctime = t.elapsed();
        let mut times = Vec::new();
        for _ in 0..rounds.min(3) {
            let t = Instant::now();
            let (_, mut r) = decompress(&packed[..])?;
            let n = io::copy(&mut r, &mut io::sink())?;
            times.push(t.elapsed());
            assert_eq!(n, size);
        }
        let d = median(times);
        println!(
            "{c:?}: {:.1} MB compressed ({:.0} MB/s to compress), decompress {:.0} MB/s (uncompressed bytes)",
            packed.len() as f64 / 1e6,
            mbps(size, ctime),
            mbps(size, d)
        );
        let out = work.path().join("compressed-apply");
        fs::create_dir(&out)?;
        let t = Instant::now();
        let (_, r) = decompress(&packed[..])?;
        apply_layer(r, &out, &opts)?;
        println!(
            "{c:?}: decompress + apply_layer {:.0} MB/s",
            mbps(size, t.elapsed())
        );
        fs::remove_dir_all(&out)?;
    }
    Ok(())
}
