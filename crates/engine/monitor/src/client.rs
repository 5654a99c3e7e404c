//! One connection on the attach socket: frames in, a bounded buffer of frames out.
//! Never blocks: a client that stops reading is dropped once it is
//! [`CLIENT_BUFFER_LIMIT`] behind, so it can never hold up the container or the log.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use berth_monitor::protocol::{self, Frame, CLIENT_BUFFER_LIMIT, MAX_PAYLOAD};

pub struct Client {
    pub stream: UnixStream,
    /// Bytes received that do not make a whole frame yet.
    inbuf: Vec<u8>,
    /// Frames waiting to be written, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The HELLO flags; `None` until HELLO, when only replies are sent.
    pub flags: Option<u8>,
    /// The client shut down its sending side; it may still be reading.
    pub read_closed: bool,
    /// The client has sent input: it is the one held back while input piles up.
    pub sends_input: bool,
    /// To be dropped: gone, broken, or too far behind.
    pub dead: bool,
}

/// Compact the output buffer once this much of it has been written.
const COMPACT_AT: usize = 256 * 1024;

impl Client {
    pub fn new(stream: UnixStream) -> Client {
        Client {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            flags: None,
            read_closed: false,
            sends_input: false,
            dead: false,
        }
    }

    /// Whether the client said HELLO with `flag`.
    pub fn wants(&self, flag: u8) -> bool {
        self.flags.is_some_and(|f| f & flag != 0)
    }

    pub fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Queue a frame; a client that would go over the limit is dropped instead.
    pub fn queue(&mut self, kind: u8, payload: &[u8]) {
        if self.dead {
            return;
        }
        if self.pending() + protocol::HEADER_LEN + payload.len() > CLIENT_BUFFER_LIMIT {
            self.dead = true;
            return;
        }
        protocol::append_frame(&mut self.out, kind, payload);
    }

    /// Write what the socket takes now.
    pub fn flush(&mut self) {
        while self.pending() > 0 && !self.dead {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.dead = true,
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            // A burst made it large: give the memory back.
            if self.out.capacity() > COMPACT_AT {
                self.out = Vec::new();
            }
        } else if self.out_pos >= COMPACT_AT {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Read what has arrived and return the whole frames in it. `hangup`: poll
    /// said the peer is gone, so end of stream means drop it.
    pub fn receive(&mut self, hangup: bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut buf = [0u8; 8192];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.read_closed = true;
                // Keep a half-closed client only while it still wants something.
                if hangup || self.flags.unwrap_or(0) == 0 && self.pending() == 0 {
                    self.dead = true;
                }
            }
            Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => self.dead = true,
        }
        let mut used = 0;
        loop {
            match protocol::decode_frame(&self.inbuf[used..], MAX_PAYLOAD) {
                Ok(Some((frame, n))) => {
                    used += n;
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        self.inbuf.drain(..used);
        if self.inbuf.is_empty() && self.inbuf.capacity() > 64 * 1024 {
            self.inbuf = Vec::new();
        }
        frames
    }
}
