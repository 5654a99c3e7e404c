//! A streaming tar reader that is strict about what matters and lenient about what does not.
//!
//! Headers are parsed with the `tar` crate's block layout; this module folds the metadata
//! entries (PAX `x`, GNU long names `L`/`K`) into the entry they describe, hands the caller one
//! [`EntryHeader`] at a time and lets it stream the data straight out of the read buffer.
//!
//! The end of the stream: a block of zeros ends the archive, as does a clean end of input at an
//! entry boundary or inside the padding after the last entry's data (umoci 0.4.7 writes layers
//! without the end blocks; Go's reader accepts them). An end of input inside a header or inside an
//! entry's data is an error: the layer was truncated. After the end block the rest of the input
//! is read and discarded, so a digest computed over the stream by the caller is complete.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::ArchiveError;

const BLOCK: u64 = 512;
/// Large enough that big files move in a few syscalls, small enough to stay in cache.
const READ_BUFFER: usize = 1024 * 1024;
/// Upper bound for PAX records and GNU long names kept in memory.
const MAX_META_SIZE: u64 = 1024 * 1024;

/// One file system entry of the stream, with PAX and GNU extensions already applied.
#[derive(Debug, Clone)]
pub(crate) struct EntryHeader {
    pub typeflag: u8,
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `SCHILY.xattr.<name>` records, in stream order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl EntryHeader {
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Why copying an entry's data stopped.
pub(crate) enum CopyError {
    Read(ArchiveError),
    Write(io::Error),
}

pub(crate) struct TarReader<R: Read> {
    r: BufReader<R>,
    /// Bytes consumed from the uncompressed stream.
    offset: u64,
    /// Data bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding bytes after the current entry's data.
    padding: u64,
    done: bool,
}

#[derive(Default)]
struct Overrides {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(r: R) -> Self {
        TarReader {
            r: BufReader::with_capacity(READ_BUFFER, r),
            offset: 0,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// Bytes of the tar stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn malformed(&self, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Malformed {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Reads into `buf` until it is full or the input ends; returns how much was read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ArchiveError::Read(e)),
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    /// Skips the rest of the current entry: its data must be there, its padding may be cut off.
    fn finish_entry(&mut self) -> Result<bool, ArchiveError> {
        if self.remaining > 0 {
            self.copy_data(&mut io::sink()).map_err(|e| match e {
                CopyError::Read(e) => e,
                CopyError::Write(e) => ArchiveError::Read(e),
            })?;
        }
        let mut pad = [0u8; BLOCK as usize];
        let want = self.padding as usize;
        self.padding = 0;
        let got = self.read_full(&mut pad[..want])?;
        // The input may end inside the padding after the last entry; report it as the end.
        Ok(got == want)
    }

    /// Streams the current entry's data into `out`, straight from the read buffer.
    pub fn copy_data(&mut self, out: &mut dyn Write) -> Result<(), CopyError> {
        while self.remaining > 0 {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(ArchiveError::Read(e))),
            };
            if buf.is_empty() {
                let missing = self.remaining;
                return Err(CopyError::Read(self.malformed(format!(
                    "truncated: the stream ends {missing} bytes before the end of an entry's data"
                ))));
            }
            let n = buf
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            out.write_all(&buf[..n]).map_err(CopyError::Write)?;
            self.r.consume(n);
            self.remaining -= n as u64;
            self.offset += n as u64;
        }
        Ok(())
    }

    /// Reads the whole (small) data of a metadata entry.
    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>, ArchiveError> {
        if size > MAX_META_SIZE {
            return Err(self.malformed(format!("{what} of {size} bytes is too large")));
        }
        let mut data = Vec::with_capacity(size as usize);
        self.start_entry(size);
        self.copy_data(&mut data).map_err(|e| match e {
            CopyError::Read(e) => e,
            CopyError::Write(e) => ArchiveError::Read(e),
        })?;
        Ok(data)
    }

    fn start_entry(&mut self, size: u64) {
        self.remaining = size;
        self.padding = (BLOCK - size % BLOCK) % BLOCK;
    }

    /// The next file system entry, or `None` at the end of the archive. Unread data of the
    /// previous entry is skipped.
    pub fn next_header(&mut self) -> Result<Option<EntryHeader>, ArchiveError> {
        let mut ov = Overrides::default();
        loop {
            if self.done {
                return Ok(None);
            }
            if !self.finish_entry()? {
                self.done = true;
                return Ok(None);
            }
            let mut block = [0u8; BLOCK as usize];
            let got = self.read_full(&mut block)?;
            if got == 0 {
                self.done = true;
                return Ok(None);
            }
            if got < block.len() {
                return Err(self.malformed(format!(
                    "truncated: the stream ends {got} bytes into a 512-byte header"
                )));
            }
            if block.iter().all(|&b| b == 0) {
                // The end of the archive. What follows (the second end block, the padding of
                // the last 10 KiB record) is read too, so that a digest computed over the
                // stream by the caller sees every byte.
                self.done = true;
                let drained = io::copy(&mut self.r, &mut io::sink()).map_err(ArchiveError::Read)?;
                self.offset += drained;
                return Ok(None);
            }
            if !checksum_ok(&block) {
                return Err(self.malformed("header checksum mismatch (not a tar stream?)"));
            }
            let h = tar::Header::from_byte_slice(&block);
            let size = match ov.size.take() {
                Some(s) => s,
                None => h
                    .entry_size()
                    .map_err(|e| self.malformed(format!("bad size field: {e}")))?,
            };
            let typeflag = block[156];
            match typeflag {
                b'x' => {
                    let data = self.read_meta(size, "PAX header")?;
                    self.parse_pax(&data, &mut ov)?;
                    continue;
                }
                b'g' => {
                    // Global PAX headers carry archive-wide defaults (usually a comment); like
                    // docker and containerd, layers ignore them.
                    self.read_meta(size, "global PAX header")?;
                    continue;
                }
                b'L' => {
                    let mut name = self.read_meta(size, "GNU long name")?;
                    trim_nul(&mut name);
                    ov.path = Some(name);
                    continue;
                }
                b'K' => {
                    let mut name = self.read_meta(size, "GNU long link name")?;
                    trim_nul(&mut name);
                    ov.link = Some(name);
                    continue;
                }
                _ => {}
            }
            let num = |r: io::Result<u64>, field: &str| -> Result<u64, ArchiveError> {
                r.map_err(|e| self.malformed(format!("bad {field} field: {e}")))
            };
            let path = match ov.path.take() {
                Some(p) => p,
                None => h.path_bytes().into_owned(),
            };
            let link = match ov.link.take() {
                Some(l) => l,
                None => h
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            };
            let uid = match ov.uid {
                Some(u) => u,
                None => to_u32(num(h.uid(), "uid")?, "uid").map_err(|r| self.malformed(r))?,
            };
            let gid = match ov.gid {
                Some(g) => g,
                None => to_u32(num(h.gid(), "gid")?, "gid").map_err(|r| self.malformed(r))?,
            };
            let (mtime, mtime_nsec) = match ov.mtime {
                Some(t) => t,
                None => (num(h.mtime(), "mtime")? as i64, 0),
            };
            let mode = num(h.mode().map(u64::from), "mode")? as u32;
            let (dev_major, dev_minor) = if matches!(typeflag, b'3' | b'4') {
                let major = h
                    .device_major()
                    .map_err(|e| self.malformed(format!("bad device major: {e}")))?;
                let minor = h
                    .device_minor()
                    .map_err(|e| self.malformed(format!("bad device minor: {e}")))?;
                (major.unwrap_or(0), minor.unwrap_or(0))
            } else {
                (0, 0)
            };
            let typeflag = if ov.sparse { b'S' } else { typeflag };
            // Only regular files (and unknown types, which are refused later) carry data; the
            // size field of links and directories is ignored, as GNU tar does.
            let data_size = match typeflag {
                b'0' | b'\0' | b'7' | b'S' => size,
                b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => 0,
                _ => size,
            };
            self.start_entry(data_size);
            return Ok(Some(EntryHeader {
                typeflag,
                path,
                link,
                mode,
                uid,
                gid,
                mtime,
                mtime_nsec,
                dev_major,
                dev_minor,
                xattrs: std::mem::take(&mut ov.xattrs),
            }));
        }
    }

    fn parse_pax(&self, data: &[u8], ov: &mut Overrides) -> Result<(), ArchiveError> {
        for ext in tar::PaxExtensions::new(data) {
            let ext = ext.map_err(|e| self.malformed(format!("bad PAX record: {e}")))?;
            let key = ext
                .key()
                .map_err(|_| self.malformed("PAX record key is not UTF-8"))?;
            let value = ext.value_bytes();
            let text = || {
                std::str::from_utf8(value)
                    .map_err(|_| self.malformed(format!("PAX record {key:?} is not UTF-8")))
            };
            let int = |v: &str| -> Result<u64, ArchiveError> {
                v.parse::<u64>()
                    .map_err(|_| self.malformed(format!("PAX record {key:?}: bad number {v:?}")))
            };
            match key {
                "path" => ov.path = Some(value.to_vec()),
                "linkpath" => ov.link = Some(value.to_vec()),
                "size" => ov.size = Some(int(text()?)?),
                "uid" => {
                    ov.uid = Some(to_u32(int(text()?)?, "uid").map_err(|r| self.malformed(r))?)
                }
                "gid" => {
                    ov.gid = Some(to_u32(int(text()?)?, "gid").map_err(|r| self.malformed(r))?)
                }
                "mtime" => {
                    ov.mtime =
                        Some(parse_pax_time(text()?).ok_or_else(|| {
                            self.malformed(format!("PAX mtime {value:?} is invalid"))
                        })?)
                }
                k if k.starts_with("SCHILY.xattr.") => ov.xattrs.push((
                    k.as_bytes()["SCHILY.xattr.".len()..].to_vec(),
                    value.to_vec(),
                )),
                k if k.starts_with("GNU.sparse.") => ov.sparse = true,
                // atime, ctime, uname, gname, comment, charset, ...: not needed for a layer.
                _ => {}
            }
        }
        Ok(())
    }
}

fn to_u32(v: u64, field: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{field} {v} does not fit in 32 bits"))
}

fn trim_nul(v: &mut Vec<u8>) {
    if let Some(p) = v.iter().position(|&b| b == 0) {
        v.truncate(p);
    }
}

/// `seconds[.fraction]`, possibly negative.
fn parse_pax_time(s: &str) -> Option<(i64, u32)> {
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nsec = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    if secs < 0 && nsec > 0 {
        // -1.5 means 1.5 seconds before the epoch.
        return Some((secs - 1, 1_000_000_000 - nsec));
    }
    Some((secs, nsec))
}

/// The header checksum: the sum of all bytes with the checksum field read as spaces. Some old
/// writers summed signed bytes; both are accepted, as GNU tar does.
fn checksum_ok(block: &[u8; 512]) -> bool {
    let field = &block[148..156];
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    let Ok(stored) = u64::from_str_radix(std::str::from_utf8(&text).unwrap_or("x"), 8) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored as i64 == signed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time_parses_fractions_and_negatives() {
        assert_eq!(parse_pax_time("12"), Some((12, 0)));
        assert_eq!(parse_pax_time("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time("1.000000001"), Some((1, 1)));
        assert_eq!(parse_pax_time("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
