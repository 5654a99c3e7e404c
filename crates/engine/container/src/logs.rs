//! A container's log as `docker logs` and `GET /containers/{id}/logs` read it.
//!
//! The monitor writes what the container prints as Docker's json-file driver does: one JSON
//! object per line, `{"log":"hello\n","stream":"stdout","time":"2026-11-23T14:29:07.123456789Z"}`
//! (a `log` without its newline is part of a longer line, split by the writer). Past
//! max-size the file is rotated like Docker's: `FILE` is renamed to `FILE.1` (`FILE.1` to
//! `FILE.2`, ..., the oldest dropped) and a new `FILE` is started.
//!
//! The life of a `docker logs --tail 10 -f` request:
//! 1. the query values become [`LogOptions`] ([`parse_api_time`] for `since`/`until`);
//! 2. the log's files are opened together, oldest first (`open_chain`), so a rotation
//!    while we read changes nothing for us;
//! 3. `tail` is found by reading the files backwards in blocks from the end
//!    (`tail_start`): a short tail of a large log costs a few blocks;
//! 4. from there the entries are read forward, filtered by stream and time: [`read_logs`]
//!    stops at the end the files had when opened; [`follow_logs`] goes on with what is
//!    written next, across rotations, until the container stops or the client goes away;
//! 5. each entry becomes the bytes of the response ([`encode_entry`]): Docker's
//!    multiplexed frames ([`encode_frame`]) when the container has no TTY, optionally
//!    prefixed by its time.
//!
//! Lines that are not valid entries are skipped. A last line still being written (no
//! newline yet) is held back until it is complete.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_core::{ErrorKind, HasKind};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

/// How much of a file is read at once, forwards or backwards.
const BLOCK: usize = 64 * 1024;
/// Rotated files looked for at most (`FILE.1` ... `FILE.MAX_ROTATED`).
const MAX_ROTATED: usize = 1000;
/// How often opening the files is retried when a rotation happened while they were opened.
const CHAIN_ATTEMPTS: usize = 5;
/// Without inotify, how often a follower looks for new lines.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// With inotify, a follower still looks this often, in case an event was lost (the
/// directory replaced, the event queue overflowed).
const WATCH_SAFETY_INTERVAL: Duration = Duration::from_secs(1);
/// A follower with `until` keeps reading this long past `until`, for entries stamped
/// before it but written just after.
const UNTIL_GRACE: Duration = Duration::from_millis(250);

/// Which of the container's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }

    /// The stream byte of Docker's multiplexed framing (`stdcopy`).
    fn frame_byte(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// One entry of the log: a line (or a piece of a long one) as the container wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: Stream,
    /// When the monitor read it.
    pub time: SystemTime,
    /// The bytes, with the newline when the line is complete.
    pub line: Vec<u8>,
}

/// What to read: the query of `GET /containers/{id}/logs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Entries at or after this time (Docker's `since` is inclusive).
    pub since: Option<SystemTime>,
    /// Entries at or before this time; reading ends at the first entry after it.
    pub until: Option<SystemTime>,
    /// The last `n` entries that pass the other filters; `None` for all.
    pub tail: Option<usize>,
    /// Keep reading what is written next ([`follow_logs`]).
    pub follow: bool,
    /// Prefix each entry with its time ([`encode_entry`]).
    pub timestamps: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            tail: None,
            follow: false,
            timestamps: false,
        }
    }
}

/// Why the log could not be read. Damaged lines are not errors: they are skipped.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A log file exists but could not be opened.
    #[error("cannot open log file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A log file could not be read.
    #[error("cannot read log file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A `since` or `until` value is neither unix seconds nor RFC 3339.
    #[error(
        "invalid time {value:?}: expected unix seconds such as 1700000000.123456789, or RFC 3339"
    )]
    InvalidTime { value: String },

    /// The thread that follows the log could not be started, or failed to wait.
    #[error("cannot follow the log: {source}")]
    Follow {
        #[source]
        source: io::Error,
    },
}

impl HasKind for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::InvalidTime { .. } => ErrorKind::InvalidArgument,
            LogError::Open { source, .. } | LogError::Read { source, .. } => HasKind::kind(source),
            LogError::Follow { .. } => ErrorKind::Internal,
        }
    }
}

/// The entries of the log at `path` that `opts` selects, oldest first, up to the end the
/// files have now (`opts.follow` is not looked at: see [`follow_logs`]). A missing log is
/// an empty one. This reads files: call it where blocking is fine (`spawn_blocking`).
pub fn read_logs(path: &Path, opts: &LogOptions) -> Result<LogReader, LogError> {
    Ok(LogReader {
        cursor: Cursor::open(path, opts, true)?,
        failed: false,
    })
}

/// The entries of a log, read forward from the files opened by [`read_logs`].
pub struct LogReader {
    cursor: Cursor,
    failed: bool,
}

impl Iterator for LogReader {
    type Item = Result<LogEntry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.cursor.next_step() {
            Ok(Step::Entry(e)) => Some(Ok(e)),
            Ok(Step::CaughtUp | Step::PastUntil) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Send the entries `opts` selects to `sink`, then, with `opts.follow`, the ones written
/// after, across rotations, until `stop` resolves (the container stopped: what is already
/// written is sent, then this ends), the receiver is dropped, or an entry after
/// `opts.until` is read (or the clock passes it). Without `opts.follow` it ends after the
/// existing entries.
///
/// The files are read on a thread of their own, woken by inotify on the log's directory
/// (by a 50 ms poll when inotify is not available). Run it beside the receiver (its own
/// task): it waits for the receiver to take the entries. Dropping this future also ends
/// the thread.
pub async fn follow_logs(
    path: impl Into<PathBuf>,
    opts: LogOptions,
    stop: impl Future,
    sink: mpsc::Sender<LogEntry>,
) -> Result<(), LogError> {
    follow(path.into(), opts, stop, sink, Wakeups::Inotify).await
}

/// How a follower learns that the log changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wakeups {
    /// inotify on the log's directory, polling if the kernel refuses.
    Inotify,
    /// Polling only.
    Poll,
}

async fn follow(
    path: PathBuf,
    opts: LogOptions,
    stop: impl Future,
    sink: mpsc::Sender<LogEntry>,
    wakeups: Wakeups,
) -> Result<(), LogError> {
    // Closing the write end wakes the follower and tells it to finish.
    let (wake, stop_follower) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| LogError::Follow { source: e.into() })?;
    let receiver_gone = sink.clone();
    let (done_tx, mut done) = oneshot::channel();
    std::thread::Builder::new()
        .name("berth-logs".into())
        .spawn(move || {
            let _ = done_tx.send(Follower::new(path, opts, sink, wake).run(wakeups));
        })
        .map_err(|source| LogError::Follow { source })?;

    let finished = |r: Result<Result<(), LogError>, oneshot::error::RecvError>| {
        r.unwrap_or_else(|_| {
            Err(LogError::Follow {
                source: io::Error::other("the log follower thread panicked"),
            })
        })
    };
    tokio::select! {
        r = &mut done => return finished(r),
        _ = stop => {}
        _ = receiver_gone.closed() => {}
    }
    drop(stop_follower);
    drop(receiver_gone);
    finished(done.await)
}

/// Docker's multiplexed stream framing (`stdcopy`), used when the container has no TTY:
/// per frame an 8-byte header (the stream, 1 for stdout or 2 for stderr, three zero bytes,
/// the payload length as a big-endian u32), then the payload.
pub fn encode_frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    for chunk in payload.chunks(u32::MAX as usize) {
        out.extend_from_slice(&[stream.frame_byte(), 0, 0, 0]);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// The bytes of the response for one entry: with `timestamps`, its time as `docker logs
/// -t` prints it ([`rfc3339_nano_fixed`]) and a space before the line; framed by
/// [`encode_frame`] unless the container has a TTY.
pub fn encode_entry(entry: &LogEntry, timestamps: bool, tty: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entry.line.len() + 31);
    if timestamps {
        payload.extend_from_slice(rfc3339_nano_fixed(entry.time).as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&entry.line);
    if tty {
        payload
    } else {
        encode_frame(entry.stream, &payload)
    }
}

/// A `since` or `until` query value: unix seconds with an optional fraction of up to nine
/// digits ("1700000000.123456789", what the docker CLI sends for durations and dates), or
/// RFC 3339. Empty and "0" mean no limit (`None`).
pub fn parse_api_time(value: &str) -> Result<Option<SystemTime>, LogError> {
    let v = value.trim();
    let invalid = || LogError::InvalidTime {
        value: value.to_string(),
    };
    if v.is_empty() {
        return Ok(None);
    }
    if v.contains(['T', 't', ' ']) || v.get(4..5) == Some("-") {
        return parse_rfc3339(v).map(Some).ok_or_else(invalid);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| invalid())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let nanos = fraction_nanos(frac);
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(from_unix(secs, nanos)))
}

/// RFC 3339 with nine fraction digits, `2026-11-23T14:29:07.120000000Z`: Go's
/// `RFC3339NanoFixed`, the time `docker logs -t` prints.
pub fn rfc3339_nano_fixed(t: SystemTime) -> String {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    berth_image::time::rfc3339(nanos)
}

/// RFC 3339 as Go's `RFC3339Nano` writes it, the trailing zeros of the fraction dropped
/// (`2026-11-23T14:29:07.12Z`, `2026-11-23T14:29:07Z`): times in Docker's JSON.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let fixed = rfc3339_nano_fixed(t);
    match fixed.split_once('.') {
        Some((whole, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{digits}Z")
            }
        }
        None => fixed,
    }
}

/// An RFC 3339 time: `2026-11-23T14:29:07.123456789Z`, with any number of fraction
/// digits (nanoseconds kept) and `Z` or a `+hh:mm`/`-hh:mm` offset.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = s.get(from..to)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let separators_ok = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        nanos = fraction_nanos(&after_dot[..n]);
        rest = &after_dot[n..];
    }
    let offset = match rest.as_bytes() {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (
                number(s.len() - 5, s.len() - 3)?,
                number(s.len() - 2, s.len())?,
            );
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(from_unix(secs - offset, nanos))
}

/// Up to nine fraction digits as nanoseconds ("5" is 500000000); more are dropped.
fn fraction_nanos(digits: &str) -> u32 {
    let mut nanos = 0u32;
    for i in 0..9 {
        let d = digits.as_bytes().get(i).map_or(0, |c| u32::from(c - b'0'));
        nanos = nanos * 10 + d;
    }
    nanos
}

/// Go's `time.Unix(secs, nanos)`.
fn from_unix(secs: i64, nanos: u32) -> SystemTime {
    let base = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    base + Duration::from_nanos(u64::from(nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One json-file line as the driver writes it (an `attrs` field, if any, is ignored).
#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// The entry of one line, `None` if the line is not one.
fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let j: JsonLine = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        stream: Stream::from_name(&j.stream)?,
        time: parse_rfc3339(&j.time)?,
        line: j.log.into_owned().into_bytes(),
    })
}

/// What `stdout`, `stderr`, `since` and `until` say about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Emit,
    Skip,
    /// After `until`: this entry and everything after it is left out.
    PastUntil,
}

#[derive(Clone, Debug)]
struct Filter {
    stdout: bool,
    stderr: bool,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl Filter {
    fn new(opts: &LogOptions) -> Self {
        Filter {
            stdout: opts.stdout,
            stderr: opts.stderr,
            since: opts.since,
            until: opts.until,
        }
    }

    fn judge(&self, e: &LogEntry) -> Verdict {
        if self.until.is_some_and(|u| e.time > u) {
            return Verdict::PastUntil;
        }
        let wanted = match e.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        if !wanted || self.since.is_some_and(|s| e.time < s) {
            return Verdict::Skip;
        }
        Verdict::Emit
    }
}

/// A file's identity, which a rename keeps and a new file at the same name does not.
type FileId = (u64, u64);

fn file_id(path: &Path) -> io::Result<FileId> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// One open file of the log.
struct Segment {
    file: File,
    /// Its name when opened (for errors; it may have been rotated since).
    path: PathBuf,
    id: FileId,
    /// Its size when opened: where bounded reading ends.
    end: u64,
}

impl Segment {
    fn open(path: PathBuf) -> Result<Option<Segment>, LogError> {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LogError::Open { path, source }),
        };
        let m = file.metadata().map_err(|source| LogError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Some(Segment {
            file,
            path,
            id: (m.dev(), m.ino()),
            end: m.len(),
        }))
    }

    fn read_error(&self, source: io::Error) -> LogError {
        LogError::Read {
            path: self.path.clone(),
            source,
        }
    }
}

/// `FILE.k`, the k-th newest rotated file.
fn rotated_name(path: &Path, k: usize) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{k}"));
    name.into()
}

/// The log's files, oldest first: `FILE.n` ... `FILE.1`, `FILE`. They are opened one after
/// the other and then checked against their names; if a rotation moved them in between,
/// they are opened again, so no file is read twice or skipped.
fn open_chain(path: &Path) -> Result<Vec<Segment>, LogError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut newest_first = Vec::new();
        newest_first.extend(Segment::open(path.to_path_buf())?);
        for k in 1..=MAX_ROTATED {
            match Segment::open(rotated_name(path, k))? {
                Some(s) => newest_first.push(s),
                None => break,
            }
        }
        let settled = newest_first
            .iter()
            .all(|s| file_id(&s.path).ok() == Some(s.id));
        if settled || attempt == CHAIN_ATTEMPTS {
            newest_first.reverse();
            return Ok(newest_first);
        }
    }
}

/// The complete lines of one file, forwards from an offset. A last line without its
/// newline is held back (and read again once completed).
struct Lines {
    seg: Segment,
    /// Stop at `seg.end` (the size when opened) rather than at the current end.
    bounded: bool,
    buf: Vec<u8>,
    /// `buf[head..]` is not consumed yet; `buf[head..scanned]` holds no newline.
    head: usize,
    scanned: usize,
    /// The file offset of `buf[head]`: where the next line starts.
    pos: u64,
}

impl Lines {
    fn new(seg: Segment, pos: u64, bounded: bool) -> Self {
        Lines {
            seg,
            bounded,
            buf: Vec::new(),
            head: 0,
            scanned: 0,
            pos,
        }
    }

    fn next_line(&mut self) -> Result<Option<&[u8]>, LogError> {
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let (start, end) = (self.head, self.scanned + i + 1);
                self.head = end;
                self.scanned = end;
                self.pos += (end - start) as u64;
                return Ok(Some(&self.buf[start..end]));
            }
            self.scanned = self.buf.len();
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Read the next block after what `buf` holds; false at the end.
    fn fill(&mut self) -> Result<bool, LogError> {
        self.buf.drain(..self.head);
        self.scanned -= self.head;
        self.head = 0;
        let from = self.pos + self.buf.len() as u64;
        let want = if self.bounded {
            BLOCK.min(usize::try_from(self.seg.end.saturating_sub(from)).unwrap_or(BLOCK))
        } else {
            BLOCK
        };
        if want == 0 {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let read = loop {
            match self.seg.file.read_at(&mut self.buf[old..], from) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(self.seg.read_error(e));
                }
            }
        };
        self.buf.truncate(old + read);
        Ok(read > 0)
    }

    /// Whether the file is now shorter than what was read of it (truncated in place).
    fn truncated(&self) -> Result<bool, LogError> {
        let len = self
            .seg
            .file
            .metadata()
            .map_err(|e| self.seg.read_error(e))?
            .len();
        Ok(len < self.pos + (self.buf.len() - self.head) as u64)
    }

    fn restart(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.scanned = 0;
        self.pos = 0;
    }
}

/// The complete lines of one file, backwards from the size it had when opened; the bytes
/// after its last newline (a line being written) are left out.
struct LinesBackwards<'a> {
    seg: &'a Segment,
    /// File bytes `[buf_start, buf_start + buf.len())`.
    buf: Vec<u8>,
    buf_start: u64,
    /// `buf[..line_end]` ends with the newline of the next line to return, once
    /// `found_end`; before that, the last newline of the file has not been seen yet.
    line_end: usize,
    found_end: bool,
}

impl<'a> LinesBackwards<'a> {
    fn new(seg: &'a Segment) -> Self {
        LinesBackwards {
            seg,
            buf: Vec::new(),
            buf_start: seg.end,
            line_end: 0,
            found_end: false,
        }
    }

    /// The previous line and its offset in the file.
    fn prev_line(&mut self) -> Result<Option<(u64, &[u8])>, LogError> {
        loop {
            if self.found_end && self.line_end == 0 {
                return Ok(None);
            }
            // Look before the current line's own newline.
            let search_to = if self.found_end {
                self.line_end - 1
            } else {
                self.buf.len()
            };
            if let Some(i) = self.buf[..search_to].iter().rposition(|&b| b == b'\n') {
                if !self.found_end {
                    self.found_end = true;
                    self.line_end = i + 1;
                    continue;
                }
                let (start, end) = (i + 1, self.line_end);
                self.line_end = start;
                return Ok(Some((self.buf_start + start as u64, &self.buf[start..end])));
            }
            if self.buf_start == 0 {
                if !self.found_end {
                    return Ok(None);
                }
                let end = self.line_end;
                self.line_end = 0;
                return Ok(Some((0, &self.buf[..end])));
            }
            // Keep the start of the current line, prepend the block before it.
            self.buf
                .truncate(if self.found_end { self.line_end } else { 0 });
            let from = self.buf_start.saturating_sub(BLOCK as u64);
            let len = (self.buf_start - from) as usize;
            let mut block = vec![0; len + self.buf.len()];
            self.seg
                .file
                .read_exact_at(&mut block[..len], from)
                .map_err(|e| self.seg.read_error(e))?;
            block[len..].copy_from_slice(&self.buf);
            self.buf = block;
            self.buf_start = from;
            if self.found_end {
                self.line_end += len;
            }
        }
    }
}

/// Where forward reading starts so as to give the last `n` entries `filter` passes: the
/// index in `chain` and the offset in that file. `n == 0` starts after the last complete
/// line; fewer than `n` entries in all start at the beginning.
fn tail_start(chain: &[Segment], n: usize, filter: &Filter) -> Result<(usize, u64), LogError> {
    if n == 0 {
        let Some(last) = chain.len().checked_sub(1) else {
            return Ok((0, 0));
        };
        let end = match LinesBackwards::new(&chain[last]).prev_line()? {
            Some((start, line)) => start + line.len() as u64,
            None => 0,
        };
        return Ok((last, end));
    }
    let mut found = 0;
    for (index, seg) in chain.iter().enumerate().rev() {
        let mut lines = LinesBackwards::new(seg);
        while let Some((start, line)) = lines.prev_line()? {
            if parse_line(line).is_some_and(|e| filter.judge(&e) == Verdict::Emit) {
                found += 1;
                if found == n {
                    return Ok((index, start));
                }
            }
        }
    }
    Ok((0, 0))
}

/// What reading forward gave.
enum Step {
    Entry(LogEntry),
    /// The end of the last file (for now).
    CaughtUp,
    /// An entry after `until`: nothing more is wanted.
    PastUntil,
}

/// The reading position in the log's files, shared by [`read_logs`] and the follower.
struct Cursor {
    current: Option<Lines>,
    /// Files after the current one, oldest first.
    next: VecDeque<Segment>,
    filter: Filter,
    bounded: bool,
    past_until: bool,
}

impl Cursor {
    fn open(path: &Path, opts: &LogOptions, bounded: bool) -> Result<Self, LogError> {
        let chain = open_chain(path)?;
        let filter = Filter::new(opts);
        let (index, offset) = match opts.tail {
            Some(n) => tail_start(&chain, n, &filter)?,
            None => (0, 0),
        };
        let mut next: VecDeque<Segment> = chain.into_iter().skip(index).collect();
        let current = next.pop_front().map(|seg| Lines::new(seg, offset, bounded));
        Ok(Cursor {
            current,
            next,
            filter,
            bounded,
            past_until: false,
        })
    }

    fn next_step(&mut self) -> Result<Step, LogError> {
        loop {
            if self.past_until {
                return Ok(Step::PastUntil);
            }
            let Some(lines) = self.current.as_mut() else {
                match self.next.pop_front() {
                    Some(seg) => self.current = Some(Lines::new(seg, 0, self.bounded)),
                    None => return Ok(Step::CaughtUp),
                }
                continue;
            };
            match lines.next_line()? {
                Some(line) => {
                    let Some(entry) = parse_line(line) else {
                        continue;
                    };
                    match self.filter.judge(&entry) {
                        Verdict::Emit => return Ok(Step::Entry(entry)),
                        Verdict::Skip => {}
                        Verdict::PastUntil => self.past_until = true,
                    }
                }
                // The last file stays current: a follower reads on when it grows.
                None if self.next.is_empty() => return Ok(Step::CaughtUp),
                None => {
                    self.current = self
                        .next
                        .pop_front()
                        .map(|s| Lines::new(s, 0, self.bounded))
                }
            }
        }
    }

    /// After catching up: take the files written since the current one was rotated away,
    /// or start the current one again if it was truncated. False if nothing changed.
    fn pick_up_changes(&mut self, path: &Path) -> Result<bool, LogError> {
        let now = match file_id(path) {
            Ok(id) => id,
            // Between a rotation's rename and the new file's creation, or no log yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(LogError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if let Some(lines) = self.current.as_mut().filter(|l| l.seg.id == now) {
            if lines.truncated()? {
                lines.restart();
                return Ok(true);
            }
            return Ok(false);
        }
        let current_id = self.current.as_ref().map(|l| l.seg.id);
        // Rotated: the files newer than the current one follow it. If the current one is
        // no longer in the chain it was the oldest and was dropped: they all follow.
        let chain = open_chain(path)?;
        let newer = match chain.iter().position(|s| Some(s.id) == current_id) {
            Some(i) => i + 1,
            None => 0,
        };
        let before = self.next.len();
        self.next.extend(chain.into_iter().skip(newer));
        Ok(self.next.len() > before)
    }
}

/// The thread behind [`follow_logs`].
struct Follower {
    path: PathBuf,
    opts: LogOptions,
    sink: mpsc::Sender<LogEntry>,
    /// Readable (hung up) once the async side wants the follower to finish.
    wake: OwnedFd,
}

/// How a round of reading ended.
enum Round {
    /// Everything written so far was sent.
    Idle,
    /// Nothing more will be sent: the receiver is gone or `until` was passed.
    Finished,
}

impl Follower {
    fn new(path: PathBuf, opts: LogOptions, sink: mpsc::Sender<LogEntry>, wake: OwnedFd) -> Self {
        Follower {
            path,
            opts,
            sink,
            wake,
        }
    }

    fn run(self, wakeups: Wakeups) -> Result<(), LogError> {
        // Watch before reading, so nothing written in between goes unnoticed.
        let watch = self.opts.follow.then(|| DirWatch::new(&self.path, wakeups));
        let mut cursor = Cursor::open(&self.path, &self.opts, !self.opts.follow)?;
        let Some(watch) = watch else {
            self.send_available(&mut cursor, None)?;
            return Ok(());
        };
        loop {
            // Asked to finish: send what is written by now, then end.
            let finishing = self.wake_signalled(Duration::ZERO)?;
            if let Round::Finished = self.send_available(&mut cursor, Some(&self.path))? {
                return Ok(());
            }
            let until_left = match self.opts.until {
                Some(until) => match (until + UNTIL_GRACE).duration_since(SystemTime::now()) {
                    Ok(left) => Some(left),
                    Err(_) => return Ok(()),
                },
                None => None,
            };
            if finishing {
                return Ok(());
            }
            watch.wait(&self, until_left)?;
        }
    }

    /// Send entries until caught up; `rotations` is the log's path when rotations are to
    /// be followed.
    fn send_available(
        &self,
        cursor: &mut Cursor,
        rotations: Option<&Path>,
    ) -> Result<Round, LogError> {
        loop {
            match cursor.next_step()? {
                Step::Entry(e) => {
                    if self.sink.blocking_send(e).is_err() {
                        return Ok(Round::Finished);
                    }
                }
                Step::PastUntil => return Ok(Round::Finished),
                Step::CaughtUp => match rotations {
                    Some(path) if cursor.pick_up_changes(path)? => {}
                    _ => return Ok(Round::Idle),
                },
            }
        }
    }

    fn wake_signalled(&self, timeout: Duration) -> Result<bool, LogError> {
        let mut fds = [PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
        poll_fds(&mut fds, timeout)?;
        Ok(fds[0].any().unwrap_or(false))
    }
}

/// Wait on `fds` at most `timeout`; an interrupted wait counts as a wake-up.
fn poll_fds(fds: &mut [PollFd], timeout: Duration) -> Result<(), LogError> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(LogError::Follow { source: e.into() }),
    }
}

/// Changes in the log's directory (writes, renames, creations), by inotify when the
/// kernel lets us watch it.
struct DirWatch {
    inotify: Option<Inotify>,
}

impl DirWatch {
    fn new(log: &Path, wakeups: Wakeups) -> Self {
        if wakeups == Wakeups::Poll {
            return DirWatch { inotify: None };
        }
        let dir = match log.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let events = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CLOSE_WRITE;
        // Out of inotify instances or watches, or no directory yet: poll instead.
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .and_then(|i| i.add_watch(dir, events).map(|_| i))
            .ok();
        DirWatch { inotify }
    }

    /// Sleep until the directory changes, the follower is told to finish, or the
    /// interval (capped by `limit`) passes.
    fn wait(&self, follower: &Follower, limit: Option<Duration>) -> Result<(), LogError> {
        let interval = if self.inotify.is_some() {
            WATCH_SAFETY_INTERVAL
        } else {
            POLL_INTERVAL
        };
        let timeout = limit.map_or(interval, |l| l.min(interval));
        let mut fds = vec![PollFd::new(follower.wake.as_fd(), PollFlags::POLLIN)];
        if let Some(i) = &self.inotify {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLIN));
        }
        poll_fds(&mut fds, timeout)?;
        if let Some(i) = &self.inotify {
            // Only the wake-up matters; empty the queue (EAGAIN once empty).
            while matches!(i.read_events(), Ok(ev) if !ev.is_empty()) {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::time::Instant;

    /// A log path in a fresh directory (removed when the guard drops).
    fn new_log() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        (dir, log)
    }

    fn t(secs: i64, nanos: u32) -> SystemTime {
        from_unix(secs, nanos)
    }

    fn json_line(stream: &str, log: &str, time: SystemTime) -> String {
        format!(
            "{}\n",
            serde_json::json!({"log": log, "stream": stream, "time": rfc3339_nano(time)})
        )
    }

    fn append_bytes(path: &Path, bytes: &[u8]) {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    /// Append entries "<prefix><i>\n" for i in range (every third on stderr), at `base`+i
    /// seconds.
    fn append(path: &Path, prefix: &str, range: std::ops::Range<usize>, base: i64) {
        let mut text = String::new();
        for i in range {
            let stream = if i % 3 == 2 { "stderr" } else { "stdout" };
            text += &json_line(stream, &format!("{prefix}{i}\n"), t(base + i as i64, 0));
        }
        append_bytes(path, text.as_bytes());
    }

    fn lines_of(entries: &[LogEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                String::from_utf8(e.line.clone())
                    .unwrap()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn read_all(path: &Path, opts: &LogOptions) -> Vec<String> {
        let entries: Vec<LogEntry> = read_logs(path, opts)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        lines_of(&entries)
    }

    /// Rotate as Docker does: FILE.k -> FILE.k+1, FILE -> FILE.1, drop past `max_files`.
    fn rotate(path: &Path, max_files: usize) {
        let _ = fs::remove_file(rotated_name(path, max_files - 1));
        for k in (1..max_files - 1).rev() {
            let _ = fs::rename(rotated_name(path, k), rotated_name(path, k + 1));
        }
        fs::rename(path, rotated_name(path, 1)).unwrap();
        fs::File::create(path).unwrap();
    }

    fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("{prefix}{i}")).collect()
    }

    /// A log of entries l0, l1, ... written in `chunks`, rotated (keeping `max_files`)
    /// between them.
    fn rotated_log(chunks: &[usize], max_files: usize) -> (tempfile::TempDir, PathBuf) {
        let (dir, log) = new_log();
        let mut next = 0;
        for (i, &n) in chunks.iter().enumerate() {
            if i > 0 {
                rotate(&log, max_files);
            }
            append(&log, "l", next..next + n, 1000);
            next += n;
        }
        (dir, log)
    }

    #[test]
    fn reads_rotated_files_oldest_first() {
        let (_dir, log) = rotated_log(&[10, 10, 5], 4);
        assert_eq!(read_all(&log, &LogOptions::default()), numbered("l", 0..25));
        // A third rotation with max-file 4 keeps FILE.3: nothing is dropped yet.
        rotate(&log, 4);
        append(&log, "l", 25..27, 1000);
        assert_eq!(read_all(&log, &LogOptions::default()), numbered("l", 0..27));
        rotate(&log, 4);
        assert_eq!(
            read_all(&log, &LogOptions::default()),
            numbered("l", 10..27)
        );
    }

    #[test]
    fn tail_counts_across_rotated_files() {
        let (_dir, log) = rotated_log(&[10, 2, 3], 5);
        let tail = |n| LogOptions {
            tail: Some(n),
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &tail(0)), Vec::<String>::new());
        assert_eq!(read_all(&log, &tail(2)), numbered("l", 13..15));
        assert_eq!(read_all(&log, &tail(3)), numbered("l", 12..15));
        assert_eq!(read_all(&log, &tail(4)), numbered("l", 11..15));
        assert_eq!(read_all(&log, &tail(7)), numbered("l", 8..15));
        assert_eq!(read_all(&log, &tail(100)), numbered("l", 0..15));
        // Only stderr lines (every third) count toward the tail.
        let stderr_tail = LogOptions {
            stdout: false,
            tail: Some(3),
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &stderr_tail), ["l8", "l11", "l14"]);
    }

    #[test]
    fn since_and_until_are_inclusive() {
        let (_dir, log) = new_log();
        append(&log, "l", 0..10, 1000);
        let opts = LogOptions {
            since: Some(t(1003, 0)),
            until: Some(t(1006, 0)),
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &opts), numbered("l", 3..7));
        let just_after = LogOptions {
            since: Some(t(1003, 1)),
            until: Some(t(1005, 999_999_999)),
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &just_after), numbered("l", 4..6));
        // The tail is the last entries of the window, not of the whole log.
        let tail_in_window = LogOptions {
            tail: Some(2),
            ..opts
        };
        assert_eq!(read_all(&log, &tail_in_window), ["l5", "l6"]);
    }

    #[test]
    fn streams_are_selected() {
        let (_dir, log) = new_log();
        append(&log, "l", 0..6, 1000);
        let only = |stdout, stderr| LogOptions {
            stdout,
            stderr,
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &only(true, false)), ["l0", "l1", "l3", "l4"]);
        assert_eq!(read_all(&log, &only(false, true)), ["l2", "l5"]);
        assert!(read_all(&log, &only(false, false)).is_empty());
        let entries: Vec<_> = read_logs(&log, &only(false, true))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(entries.iter().all(|e| e.stream == Stream::Stderr));
        assert_eq!(entries[0].time, t(1002, 0));
    }

    #[test]
    fn malformed_and_partial_lines() {
        let (_dir, log) = new_log();
        let mut text = json_line("stdout", "a\n", t(1, 0));
        text += "not json at all\n";
        text += "{\"log\":\"no time\\n\",\"stream\":\"stdout\"}\n";
        text +=
            "{\"log\":\"bad stream\\n\",\"stream\":\"stdin\",\"time\":\"2026-01-01T00:00:00Z\"}\n";
        text += "{\"log\":\"bad time\\n\",\"stream\":\"stdout\",\"time\":\"yesterday\"}\n";
        text += "\n\u{0}\u{0}\n";
        // A long line the writer split: the first piece has no newline.
        text += &json_line("stdout", "first half ", t(2, 0));
        text += &json_line("stdout", "second half\n", t(2, 1));
        text += "{\"log\":\"unicode \\u00e9\\n\",\"stream\":\"stderr\",\"time\":\"1970-01-01T00:00:03Z\",\"attrs\":{\"k\":\"v\"}}\n";
        // The line being written: no newline yet.
        let pending = json_line("stdout", "pending\n", t(4, 0));
        text += &pending[..pending.len() - 1];
        fs::write(&log, &text).unwrap();
        let entries: Vec<LogEntry> = read_logs(&log, &LogOptions::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let lines: Vec<&[u8]> = entries.iter().map(|e| e.line.as_slice()).collect();
        assert_eq!(
            lines,
            [
                &b"a\n"[..],
                b"first half ",
                b"second half\n",
                "unicode é\n".as_bytes()
            ]
        );
        // Tail does not count the pending line either.
        let tail1 = LogOptions {
            tail: Some(1),
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &tail1), ["unicode é"]);
        // Once completed, it is read.
        append_bytes(&log, b"\n");
        assert_eq!(read_all(&log, &tail1), ["pending"]);
    }

    #[test]
    fn missing_log_is_empty() {
        let (_dir, log) = new_log();
        assert!(read_all(&log, &LogOptions::default()).is_empty());
        let tail = LogOptions {
            tail: Some(3),
            ..LogOptions::default()
        };
        assert!(read_all(&log, &tail).is_empty());
    }

    #[test]
    fn tail_of_a_large_file_reads_only_its_end() {
        let (_dir, log) = new_log();
        let mut text = String::with_capacity(100_000 * 90);
        for i in 0..100_000 {
            text += &json_line("stdout", &format!("line {i}\n"), t(1_700_000_000 + i, 0));
        }
        fs::write(&log, &text).unwrap();
        let chain = open_chain(&log).unwrap();
        let filter = Filter::new(&LogOptions::default());
        let start = Instant::now();
        let (index, offset) = tail_start(&chain, 10, &filter).unwrap();
        let found = start.elapsed();
        assert_eq!(index, 0);
        let expected = text.len()
            - text
                .lines()
                .rev()
                .take(10)
                .map(|l| l.len() + 1)
                .sum::<usize>();
        assert_eq!(offset, expected as u64);
        let opts = LogOptions {
            tail: Some(10),
            ..LogOptions::default()
        };
        assert_eq!(read_all(&log, &opts), numbered("line ", 99_990..100_000));
        // One 64 KiB block parsed backwards, not 9 MB: well under the time a full read takes.
        let start = Instant::now();
        assert_eq!(read_all(&log, &LogOptions::default()).len(), 100_000);
        let full = start.elapsed();
        assert!(
            found * 20 < full,
            "tail took {found:?}, a full read {full:?}"
        );
    }

    #[test]
    fn frames_and_timestamps() {
        assert_eq!(
            encode_frame(Stream::Stdout, b"hi\n"),
            [1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        let big = vec![b'x'; 70_000];
        let framed = encode_frame(Stream::Stderr, &big);
        assert_eq!(&framed[..8], &[2, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(framed.len(), 70_008);
        assert!(encode_frame(Stream::Stdout, b"").is_empty());

        let e = LogEntry {
            stream: Stream::Stderr,
            time: t(1_795_444_147, 120_000_000),
            line: b"oops\n".to_vec(),
        };
        assert_eq!(encode_entry(&e, false, true), b"oops\n");
        assert_eq!(
            encode_entry(&e, true, true),
            b"2026-11-23T14:29:07.120000000Z oops\n"
        );
        let framed = encode_entry(&e, true, false);
        assert_eq!(&framed[..8], &[2, 0, 0, 0, 0, 0, 0, 36]);
        assert_eq!(&framed[8..], b"2026-11-23T14:29:07.120000000Z oops\n");
    }

    #[test]
    fn times() {
        let t0 = t(1_795_444_147, 123_456_789);
        assert_eq!(rfc3339_nano_fixed(t0), "2026-11-23T14:29:07.123456789Z");
        assert_eq!(rfc3339_nano(t0), "2026-11-23T14:29:07.123456789Z");
        assert_eq!(
            rfc3339_nano(t(1_795_444_147, 120_000_000)),
            "2026-11-23T14:29:07.12Z"
        );
        assert_eq!(rfc3339_nano(t(1_795_444_147, 0)), "2026-11-23T14:29:07Z");
        for s in [
            "2026-11-23T14:29:07.123456789Z",
            "2026-11-23t14:29:07.123456789z",
            "2026-11-23T15:29:07.123456789+01:00",
            "2026-11-23T13:59:07.123456789-00:30",
            "2026-11-23T14:29:07.1234567891Z",
        ] {
            assert_eq!(parse_rfc3339(s), Some(t0), "{s}");
        }
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(t(951_782_400, 0))
        );
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59.5Z"),
            Some(t(-1, 500_000_000))
        );
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T14:29:07",
            "2026-11-23T14:29:07.Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T14:29:07+0100",
            "2026-11-23T14:29:07Zjunk",
            "+026-11-23T14:29:07Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn api_times() {
        assert_eq!(parse_api_time("").unwrap(), None);
        assert_eq!(parse_api_time("0").unwrap(), None);
        assert_eq!(
            parse_api_time("1700000000").unwrap(),
            Some(t(1_700_000_000, 0))
        );
        assert_eq!(
            parse_api_time("1700000000.123456789").unwrap(),
            Some(t(1_700_000_000, 123_456_789))
        );
        assert_eq!(
            parse_api_time("1700000000.5").unwrap(),
            Some(t(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_api_time("2023-11-14T22:13:20.25Z").unwrap(),
            Some(t(1_700_000_000, 250_000_000))
        );
        for bad in ["abc", "17e8", "1700000000.x", "1.2.3", "2023-11-14"] {
            let err = parse_api_time(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    /// Drain a follower's cursor: the entries up to the end, following rotations.
    fn caught_up(cursor: &mut Cursor, log: &Path) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            match cursor.next_step().unwrap() {
                Step::Entry(e) => got.push(e),
                Step::PastUntil => break,
                Step::CaughtUp if cursor.pick_up_changes(log).unwrap() => {}
                Step::CaughtUp => break,
            }
        }
        lines_of(&got)
    }

    #[test]
    fn cursor_catches_up_after_missed_rotations() {
        let (_dir, log) = new_log();
        append(&log, "l", 0..2, 1000);
        let mut cursor = Cursor::open(&log, &LogOptions::default(), false).unwrap();
        assert_eq!(caught_up(&mut cursor, &log), numbered("l", 0..2));
        assert!(caught_up(&mut cursor, &log).is_empty());
        // Two rotations while the follower was not looking.
        append(&log, "l", 2..3, 1000);
        rotate(&log, 5);
        append(&log, "l", 3..4, 1000);
        rotate(&log, 5);
        append(&log, "l", 4..5, 1000);
        assert_eq!(caught_up(&mut cursor, &log), numbered("l", 2..5));
        // So many that the file being read was dropped (with l5's, after it): every
        // file left is newer.
        for i in 5..9 {
            rotate(&log, 3);
            append(&log, "l", i..i + 1, 1000);
        }
        assert_eq!(caught_up(&mut cursor, &log), numbered("l", 6..9));
        // Between a rotation's rename and the new file: nothing yet, then the new file.
        fs::rename(&log, rotated_name(&log, 1)).unwrap();
        assert!(caught_up(&mut cursor, &log).is_empty());
        append(&log, "l", 9..10, 1000);
        assert_eq!(caught_up(&mut cursor, &log), ["l9"]);
    }

    type Following = (
        tokio::task::JoinHandle<Result<(), LogError>>,
        mpsc::Receiver<LogEntry>,
    );

    /// Follow `log` (`opts` with `follow` set) on a task, woken as `wakeups` says, until
    /// `stop`; the entries arrive on the receiver.
    fn spawn_follow(
        log: &Path,
        opts: LogOptions,
        stop: impl Future<Output = ()> + Send + 'static,
        wakeups: Wakeups,
    ) -> Following {
        let (tx, rx) = mpsc::channel(16);
        let opts = LogOptions {
            follow: true,
            ..opts
        };
        let task = tokio::spawn(follow(log.to_path_buf(), opts, stop, tx, wakeups));
        (task, rx)
    }

    /// Receive until `n` entries arrived, failing after a few seconds.
    async fn recv_n(rx: &mut mpsc::Receiver<LogEntry>, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("an entry within 5 s")
                .expect("the follower still running");
            got.push(e);
        }
        lines_of(&got)
    }

    #[tokio::test]
    async fn follow_survives_rotation_and_ends_on_stop() {
        rotation_scenario(Wakeups::Inotify).await;
    }

    #[tokio::test]
    async fn follow_by_polling_survives_rotation_and_ends_on_stop() {
        rotation_scenario(Wakeups::Poll).await;
    }

    async fn rotation_scenario(wakeups: Wakeups) {
        let (_dir, log) = new_log();
        append(&log, "l", 0..5, 1000);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let opts = LogOptions {
            tail: Some(2),
            ..LogOptions::default()
        };
        let (task, mut rx) = spawn_follow(&log, opts, async { stop_rx.await.unwrap() }, wakeups);
        assert_eq!(recv_n(&mut rx, 2).await, ["l3", "l4"]);

        append(&log, "l", 5..7, 1000);
        assert_eq!(recv_n(&mut rx, 2).await, ["l5", "l6"]);

        // Written to the old file just before the rotation, then to the new one.
        append(&log, "l", 7..9, 1000);
        rotate(&log, 3);
        append(&log, "l", 9..11, 1000);
        assert_eq!(recv_n(&mut rx, 4).await, numbered("l", 7..11));

        // A line written in two pieces is sent once complete.
        let line = json_line("stdout", "split\n", t(2000, 0));
        let (a, b) = line.split_at(20);
        append_bytes(&log, a.as_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err());
        append_bytes(&log, b.as_bytes());
        assert_eq!(recv_n(&mut rx, 1).await, ["split"]);

        // Two rotations between looks: the middle file is not skipped.
        append(&log, "l", 11..12, 1000);
        rotate(&log, 5);
        append(&log, "l", 12..13, 1000);
        rotate(&log, 5);
        append(&log, "l", 13..14, 1000);
        assert_eq!(recv_n(&mut rx, 3).await, numbered("l", 11..14));

        // The container stops: what is written by then is sent, then the stream ends.
        append(&log, "l", 14..16, 1000);
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("follow ends after stop")
            .unwrap()
            .unwrap();
        let mut rest = Vec::new();
        while let Some(e) = rx.recv().await {
            rest.push(e);
        }
        assert_eq!(lines_of(&rest), numbered("l", 14..16));
    }

    #[tokio::test]
    async fn follow_with_tail_zero_waits_for_the_log() {
        let (_dir, log) = new_log();
        let opts = LogOptions {
            tail: Some(0),
            stdout: false,
            ..LogOptions::default()
        };
        let (task, mut rx) = spawn_follow(&log, opts, std::future::pending(), Wakeups::Inotify);
        tokio::time::sleep(Duration::from_millis(100)).await;
        append(&log, "l", 0..6, 1000);
        assert_eq!(recv_n(&mut rx, 2).await, ["l2", "l5"]);
        // The receiver goes away: the follower ends.
        drop(rx);
        append(&log, "l", 6..9, 1000);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("follow ends when the receiver is dropped")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn follow_tail_zero_skips_existing_lines() {
        let (_dir, log) = new_log();
        append(&log, "old", 0..3, 1000);
        let partial = json_line("stdout", "half\n", t(1500, 0));
        append_bytes(&log, &partial.as_bytes()[..10]);
        let opts = LogOptions {
            tail: Some(0),
            ..LogOptions::default()
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (task, mut rx) = spawn_follow(
            &log,
            opts,
            async { stop_rx.await.unwrap() },
            Wakeups::Inotify,
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The line being written when following began is new: it is sent once complete.
        append_bytes(&log, &partial.as_bytes()[10..]);
        append(&log, "new", 0..1, 2000);
        assert_eq!(recv_n(&mut rx, 2).await, ["half", "new0"]);
        stop_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn follow_ends_at_until() {
        let (_dir, log) = new_log();
        append(&log, "l", 0..3, 1000);
        // An entry after `until` ends it.
        let opts = LogOptions {
            until: Some(SystemTime::now() + Duration::from_secs(3600)),
            ..LogOptions::default()
        };
        let (task, mut rx) = spawn_follow(&log, opts, std::future::pending(), Wakeups::Inotify);
        assert_eq!(recv_n(&mut rx, 3).await, numbered("l", 0..3));
        append(&log, "late", 0..1, 4_000_000_000);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("follow ends at an entry after until")
            .unwrap()
            .unwrap();
        assert!(rx.recv().await.is_none());

        // The clock passing `until` ends it too, with nothing written.
        let (tx, mut rx) = mpsc::channel(16);
        let opts = LogOptions {
            follow: true,
            until: Some(SystemTime::now() + Duration::from_millis(200)),
            ..LogOptions::default()
        };
        let started = Instant::now();
        follow_logs(log.clone(), opts, std::future::pending::<()>(), tx)
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(recv_n(&mut rx, 3).await, numbered("l", 0..3));
    }

    #[tokio::test]
    async fn follow_without_follow_sends_what_exists() {
        let (_dir, log) = new_log();
        append(&log, "l", 0..4, 1000);
        let (tx, mut rx) = mpsc::channel(2);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(e) = rx.recv().await {
                got.push(e);
            }
            lines_of(&got)
        });
        follow_logs(log, LogOptions::default(), std::future::pending::<()>(), tx)
            .await
            .unwrap();
        assert_eq!(reader.await.unwrap(), numbered("l", 0..4));
    }

    #[tokio::test]
    async fn follow_survives_truncation() {
        let (_dir, log) = new_log();
        append(&log, "l", 0..3, 1000);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let stop = async { stop_rx.await.unwrap() };
        let (task, mut rx) = spawn_follow(&log, LogOptions::default(), stop, Wakeups::Inotify);
        assert_eq!(recv_n(&mut rx, 3).await, numbered("l", 0..3));
        // max-file 1: the file is truncated in place and written from its start.
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "t", 0..1, 2000);
        assert_eq!(recv_n(&mut rx, 1).await, ["t0"]);
        stop_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
