//! The container's log in Docker's json-file format, so `docker logs` readers
//! (and berth's own) read it unchanged:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-23T14:29:07.123456789Z"}
//! ```
//!
//! One object per line of output, the line with its newline. A line still without
//! one is written, without it, once 16 KiB of it are buffered, or when the stream
//! ends. stdout and stderr are split into lines separately. Rotation as Docker does
//! it, by size and count (`FILE`, `FILE.1`, ... `FILE.(N-1)`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_monitor::json;

/// The longest line kept back waiting for its newline (Docker's copier buffer).
pub const MAX_LINE: usize = 16 * 1024;

/// Cuts one stream into log lines.
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feed output; `emit` gets each complete line (with its `\n`), and each
    /// [`MAX_LINE`] bytes of a line that has no newline yet.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.partial.len();
            let window = &data[..data.len().min(room)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                if self.partial.is_empty() {
                    emit(&data[..=i]);
                } else {
                    self.partial.extend_from_slice(&data[..=i]);
                    emit(&self.partial);
                    self.partial.clear();
                }
                data = &data[i + 1..];
            } else if data.len() >= room {
                self.partial.extend_from_slice(window);
                emit(&self.partial);
                self.partial.clear();
                data = &data[room..];
            } else {
                self.partial.extend_from_slice(data);
                data = &[];
            }
        }
        if self.partial.capacity() > MAX_LINE {
            self.partial.shrink_to(MAX_LINE);
        }
    }

    /// The stream ended: emit what is left of a last line without newline.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial);
            self.partial = Vec::new();
        }
    }
}

/// The log file, with rotation.
pub struct JsonLog {
    path: PathBuf,
    file: File,
    /// Bytes in the file now (what was written, plus what was there before).
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Entries not written yet: written in one go per chunk of output.
    pending: Vec<u8>,
    entry: Vec<u8>,
}

/// Flush earlier than the end of a chunk once this much is pending.
const PENDING_LIMIT: usize = 64 * 1024;

impl JsonLog {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<JsonLog> {
        let file = open_log(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_owned(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            pending: Vec::new(),
            entry: Vec::new(),
        })
    }

    /// Queue one entry; `time` is the formatted time the output was read.
    pub fn write(&mut self, line: &[u8], stream: &str, time: &[u8]) {
        self.entry.clear();
        self.entry.extend_from_slice(b"{\"log\":");
        json::write_string(&mut self.entry, line);
        self.entry.extend_from_slice(b",\"stream\":\"");
        self.entry.extend_from_slice(stream.as_bytes());
        self.entry.extend_from_slice(b"\",\"time\":\"");
        self.entry.extend_from_slice(time);
        self.entry.extend_from_slice(b"\"}\n");

        let queued = self.size + self.pending.len() as u64;
        if self.max_size > 0 && queued > 0 && queued + self.entry.len() as u64 > self.max_size {
            self.flush();
            self.rotate();
        }
        self.pending.extend_from_slice(&self.entry);
        if self.pending.len() >= PENDING_LIMIT {
            self.flush();
        }
    }

    /// Write what is queued. A failed write (a full disk) loses those entries but
    /// never stops the monitor, which must keep draining the container.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.file.write_all(&self.pending).is_ok() {
            self.size += self.pending.len() as u64;
        } else {
            self.size = self.file.metadata().map(|m| m.len()).unwrap_or(self.size);
        }
        self.pending.clear();
        if self.pending.capacity() > 4 * PENDING_LIMIT {
            self.pending.shrink_to(PENDING_LIMIT);
        }
    }

    /// FILE.(N-2) → FILE.(N-1), ..., FILE → FILE.1, and a new FILE; with one file,
    /// just empty it.
    fn rotate(&mut self) {
        if self.max_files > 1 {
            let numbered = |k: u32| {
                let mut p = self.path.as_os_str().to_owned();
                p.push(format!(".{k}"));
                PathBuf::from(p)
            };
            let _ = std::fs::remove_file(numbered(self.max_files - 1));
            for k in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(numbered(k), numbered(k + 1));
            }
            if std::fs::rename(&self.path, numbered(1)).is_ok() {
                match open_log(&self.path) {
                    Ok(f) => self.file = f,
                    // Keep writing to the renamed file rather than lose output.
                    Err(_) => return,
                }
            }
        }
        if self.file.set_len(0).is_ok() {
            self.size = 0;
        }
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    // The mode of a new file is cut by the umask; a log is 0640 whatever it was.
    file.set_permissions(std::fs::Permissions::from_mode(0o640))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |l| out.push(l.to_vec()));
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_keep_their_newlines_across_chunks() {
        assert_eq!(
            split(&[b"one\ntw", b"o\n", b"\nthree"]),
            vec![
                b"one\n".to_vec(),
                b"two\n".to_vec(),
                b"\n".to_vec(),
                b"three".to_vec()
            ]
        );
        assert_eq!(
            split(&[b"a\r\nb\r\n"]),
            vec![b"a\r\n".to_vec(), b"b\r\n".to_vec()]
        );
        assert!(split(&[b""]).is_empty());
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let mut long = vec![b'x'; MAX_LINE * 2 + 10];
        long.push(b'\n');
        let out = split(&[&long[..100], &long[100..]]);
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 11]
        );
        assert_eq!(out.concat(), long);
        // Exactly 16 KiB then a newline: the 16 KiB go out alone, the newline after.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        let out = split(&[&exact]);
        assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [MAX_LINE, 1]);
        // A newline within the first 16 KiB ends its line there.
        let mut short = vec![b'z'; MAX_LINE - 1];
        short.push(b'\n');
        assert_eq!(split(&[&short]), vec![short.clone()]);
    }

    /// "line 0\n" .. "line n-1\n" on stdout, flushed.
    fn write_lines(log: &mut JsonLog, n: usize) {
        for i in 0..n {
            log.write(
                format!("line {i}\n").as_bytes(),
                "stdout",
                b"2026-01-01T00:00:00Z",
            );
        }
        log.flush();
    }

    fn read_entries(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn entries_are_docker_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = JsonLog::open(&path, 0, 1).unwrap();
        log.write(b"hi \"there\"\n", "stdout", b"2026-11-23T14:29:07.1Z");
        log.write(b"\xffbad", "stderr", b"2026-11-23T14:29:08Z");
        log.flush();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"log\":\"hi \\\"there\\\"\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T14:29:07.1Z\"}\n\
             {\"log\":\"\\ufffdbad\",\"stream\":\"stderr\",\"time\":\"2026-11-23T14:29:08Z\"}\n"
        );
        let e = read_entries(&path);
        assert_eq!(e[1]["log"], "\u{fffd}bad");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn rotation_keeps_max_files_each_within_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = JsonLog::open(&path, 1000, 3).unwrap();
        write_lines(&mut log, 200);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c.log", "c.log.1", "c.log.2"]);
        for n in &names {
            let len = std::fs::metadata(dir.path().join(n)).unwrap().len();
            // Rotated files were full: the next entry (~70 bytes) did not fit.
            let full = n != "c.log";
            assert!(len <= 1000 && (!full || len > 900), "{n}: {len} bytes");
        }
        // The newest lines are in the live file, older ones in .1, then .2, in order.
        let lines = |n: &str| -> Vec<String> {
            read_entries(&dir.path().join(n))
                .iter()
                .map(|e| e["log"].as_str().unwrap().to_owned())
                .collect()
        };
        let all = [lines("c.log.2"), lines("c.log.1"), lines("c.log")].concat();
        assert_eq!(all.last().unwrap(), "line 199\n");
        let first: usize = all[0][5..all[0].len() - 1].parse().unwrap();
        let want: Vec<String> = (first..200).map(|i| format!("line {i}\n")).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn one_file_is_emptied_instead_of_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = JsonLog::open(&path, 300, 1).unwrap();
        write_lines(&mut log, 20);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = read_entries(&path);
        assert!(std::fs::metadata(&path).unwrap().len() <= 300);
        assert_eq!(e.last().unwrap()["log"], "line 19\n");
    }

    #[test]
    fn an_existing_file_counts_toward_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, vec![b'#'; 950]).unwrap();
        let mut log = JsonLog::open(&path, 1000, 2).unwrap();
        log.write(b"new\n", "stdout", b"2026-01-01T00:00:00Z");
        log.flush();
        assert_eq!(
            std::fs::metadata(dir.path().join("c.log.1")).unwrap().len(),
            950
        );
        assert_eq!(read_entries(&path).len(), 1);
    }
}
