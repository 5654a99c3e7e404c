//! A container's stdio over a hijacked connection (`attach`, `exec start`), and the same
//! framing in `logs`.
//!
//! Once the daemon has answered `101 Switching Protocols` the connection is a plain byte stream
//! in both directions. What we write is the process's stdin; when our stdin ends, the write half
//! is shut down, and the daemon closes the process's stdin (`StdinOnce`). What we read is its
//! output: raw bytes when it has a TTY, otherwise stdout and stderr multiplexed by docker's
//! stdcopy framing ([`Demux`]): an 8-byte header (stream 1 or 2, three zero bytes, the payload
//! length as a big-endian u32), then the payload.
//!
//! With a TTY, our stdin is put in raw mode for the session, and the detach sequence
//! (ctrl-p ctrl-q unless `--detach-keys` says otherwise) typed on it ends the session without
//! stopping the container ([`EscapeDetector`]).

use anyhow::{anyhow, bail, Result};
use bytes::{Buf, Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::terminal::RawTerminal;

/// Where a stdcopy frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

/// Splits docker's stdcopy framing back into (stream, payload) frames; bytes may arrive in
/// chunks of any size.
#[derive(Default)]
pub struct Demux {
    buf: BytesMut,
}

const HEADER_LEN: usize = 8;

impl Demux {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, if it has arrived. A frame of stream 3 is an error the daemon
    /// reports in the stream; it ends the copy with its message, as docker's `StdCopy` does.
    pub fn next_frame(&mut self) -> Result<Option<(Stream, Bytes)>> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        let len = len as usize;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        let stream = match kind {
            0 => Stream::Stdin,
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            3 => bail!(
                "error from daemon in stream: {}",
                String::from_utf8_lossy(&payload)
            ),
            other => bail!("Unrecognized input header: {other}"),
        };
        Ok(Some((stream, payload)))
    }

    /// Bytes left over that do not make a whole frame.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// One stdcopy frame (what the daemon sends).
#[cfg(test)]
pub fn frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let kind = match stream {
        Stream::Stdin => 0,
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    };
    let mut out = vec![kind, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Writes output to our stdout or stderr, flushing each piece (it is interactive).
pub fn write_out(stream: Stream, data: &[u8]) -> std::io::Result<()> {
    if stream == Stream::Stderr {
        let mut err = std::io::stderr().lock();
        err.write_all(data)?;
        err.flush()
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(data)?;
        out.flush()
    }
}

/// The default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// Parses a detach sequence like docker's `term.ToBytes`: comma-separated keys, each a single
/// character or `ctrl-<x>` with x in `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>> {
    let mut codes = Vec::new();
    for key in spec.split(',') {
        if key.len() == 1 {
            codes.push(key.as_bytes()[0]);
            continue;
        }
        let lower = key.to_ascii_lowercase();
        let code = lower
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .and_then(|c| match c.as_bytes()[0] {
                b'@' => Some(0),
                c @ b'a'..=b'z' => Some(c - b'a' + 1),
                b'[' => Some(27),
                b'\\' => Some(28),
                b']' => Some(29),
                b'^' => Some(30),
                b'_' => Some(31),
                _ => None,
            })
            .ok_or_else(|| anyhow!("Unknown character: '{key}'"))?;
        codes.push(code);
    }
    Ok(codes)
}

/// Watches stdin for the detach sequence. Keys that start the sequence are held back until it
/// is complete (detach) or broken (they are passed on after all).
pub struct EscapeDetector {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeDetector {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeDetector { keys, matched: 0 }
    }

    /// The bytes to forward from `input`, and whether the sequence was completed (anything
    /// after it is dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Our stdin as chunks, read on a thread of its own: a blocking read of a terminal cannot be
/// cancelled, and the thread simply ends with the process. The channel closes at end of input.
pub fn stdin_chunks() -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

/// What the session copies, and how.
pub struct Session {
    /// Copy our stdin to the process.
    pub stdin: bool,
    /// The process has a TTY: raw output, raw-mode stdin, detach keys.
    pub tty: bool,
    /// The detach sequence (TTY sessions only).
    pub detach_keys: Vec<u8>,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The output stream ended.
    Closed,
    /// The user typed the detach sequence.
    Detached,
}

/// Copies stdin to `conn` and `conn`'s output to stdout/stderr until the output ends, as
/// docker's `hijackedIOStreamer` does.
pub async fn run_session(conn: TokioIo<Upgraded>, session: &Session) -> Result<Ended> {
    let raw = if session.stdin && session.tty {
        RawTerminal::enable()?
    } else {
        None
    };
    let (mut reader, mut writer) = tokio::io::split(conn);
    let tty = session.tty;
    let output = async {
        let mut buf = vec![0u8; 32 * 1024];
        let mut demux = Demux::default();
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if tty {
                write_out(Stream::Stdout, &buf[..n])?;
                continue;
            }
            demux.push(&buf[..n]);
            while let Some((stream, payload)) = demux.next_frame()? {
                write_out(stream, &payload)?;
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    let input = async {
        if session.stdin {
            let mut chunks = stdin_chunks();
            let mut escape = EscapeDetector::new(if tty {
                session.detach_keys.clone()
            } else {
                Vec::new()
            });
            while let Some(chunk) = chunks.recv().await {
                let (forward, detached) = escape.feed(&chunk);
                if !forward.is_empty() && writer.write_all(&forward).await.is_err() {
                    // The output side sees the same failure and reports it.
                    break;
                }
                if detached {
                    return Ended::Detached;
                }
            }
        }
        let _ = writer.shutdown().await;
        Ended::Closed
    };
    tokio::pin!(output, input);
    let ended = tokio::select! {
        out = &mut output => { out?; Ended::Closed }
        ended = &mut input => match ended {
            Ended::Detached => Ended::Detached,
            Ended::Closed => { output.await?; Ended::Closed }
        },
    };
    drop(raw);
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_splits_frames_arriving_in_any_chunks() {
        let mut wire = frame(Stream::Stdout, b"hello\n");
        wire.extend(frame(Stream::Stderr, b"oops\n"));
        wire.extend(frame(Stream::Stdout, b""));
        wire.extend(frame(Stream::Stdout, &[7u8; 70000]));
        for chunk in [1usize, 3, 8, 13, 4096, wire.len()] {
            let mut demux = Demux::default();
            let mut got: Vec<(Stream, Vec<u8>)> = Vec::new();
            for piece in wire.chunks(chunk) {
                demux.push(piece);
                while let Some((s, p)) = demux.next_frame().unwrap() {
                    got.push((s, p.to_vec()));
                }
            }
            assert_eq!(demux.pending(), 0);
            assert_eq!(got.len(), 4, "chunk {chunk}");
            assert_eq!(got[0], (Stream::Stdout, b"hello\n".to_vec()));
            assert_eq!(got[1], (Stream::Stderr, b"oops\n".to_vec()));
            assert_eq!(got[2], (Stream::Stdout, Vec::new()));
            assert_eq!(got[3].1.len(), 70000);
        }
    }

    #[test]
    fn demux_reports_daemon_errors_and_bad_headers() {
        let mut demux = Demux::default();
        let mut wire = vec![3, 0, 0, 0, 0, 0, 0, 4];
        wire.extend_from_slice(b"boom");
        demux.push(&wire);
        assert_eq!(
            demux.next_frame().unwrap_err().to_string(),
            "error from daemon in stream: boom"
        );
        let mut demux = Demux::default();
        demux.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(demux.next_frame().is_err());
        let mut demux = Demux::default();
        demux.push(&[1, 0, 0, 0, 0, 0, 0]);
        assert!(demux.next_frame().unwrap().is_none());
    }

    #[test]
    fn detach_keys_like_docker() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(
            parse_detach_keys("ctrl-@,a,CTRL-Z,ctrl-_").unwrap(),
            [0, b'a', 26, 31]
        );
        assert_eq!(
            parse_detach_keys("ctrl-pp").unwrap_err().to_string(),
            "Unknown character: 'ctrl-pp'"
        );
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn escape_sequence_is_held_back_then_detaches() {
        let mut e = EscapeDetector::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(e.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // ctrl-p alone is held; a key that breaks the sequence releases it.
        assert_eq!(e.feed(&[16]), (Vec::new(), false));
        assert_eq!(e.feed(b"x"), (vec![16, b'x'], false));
        // ctrl-p ctrl-p ctrl-q: the first is released, the last two detach.
        assert_eq!(e.feed(&[16, 16]), (vec![16], false));
        assert_eq!(e.feed(&[17, b'z']), (Vec::new(), true));
        let mut e = EscapeDetector::new(b"q".to_vec());
        assert_eq!(e.feed(b"abq"), (b"ab".to_vec(), true));
        let mut none = EscapeDetector::new(Vec::new());
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
    }
}
