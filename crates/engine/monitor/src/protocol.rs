//! What the daemon and a monitor say to each other.
//!
//! **The attach socket** (`DIR/sock`, `SOCK_STREAM`, any number of clients) carries
//! frames both ways: one byte of type, the payload length as a big-endian u32, the
//! payload.
//!
//! | type | client → monitor | payload |
//! |------|------------------|---------|
//! | 0 | [`HELLO`] | one byte of flags: [`WANT_STDOUT`], [`WANT_STDERR`], [`WANT_EXIT`] |
//! | 1 | [`STDIN`] | bytes for the container's stdin (needs `--stdin`) |
//! | 2 | [`STDIN_CLOSE`] | none: close stdin once the buffered bytes are written (pipes only) |
//! | 3 | [`RESIZE`] | rows and cols, u16 big-endian each ([`resize_payload`]) |
//! | 4 | [`START`] | none: start the container (or the exec'd process) |
//!
//! | type | monitor → client | payload |
//! |------|------------------|---------|
//! | 1 | [`STDOUT`] | output (everything, with a terminal) |
//! | 2 | [`STDERR`] | output |
//! | 5 | [`STARTED`] | `{"pid":N}` ([`parse_started`]) |
//! | 6 | [`ERROR`] | a message, UTF-8 text |
//! | 7 | [`EXIT`] | the exit record, [`ExitStatus`] as JSON |
//!
//! A client gets nothing but replies (STARTED, ERROR) until it sends HELLO. Output
//! is buffered per client up to [`CLIENT_BUFFER_LIMIT`]; a client further behind is
//! disconnected, never waited for.
//!
//! **The sync pipe** (`--sync-fd`) carries one line, [`SyncReport`]: once the
//! container is created (`{"ok":true,"pid":N}`; pid 0 in exec mode) or could not be
//! (`{"ok":false,"error":"..."}`).
//!
//! **The exit record** (`DIR/exit`, also the EXIT payload) is [`ExitStatus`].

use std::io::{self, Read};

use crate::json::{self, Value};

/// Client → monitor: subscribe (payload: one byte of `WANT_*` flags).
pub const HELLO: u8 = 0;
/// Client → monitor: bytes for the container's stdin.
pub const STDIN: u8 = 1;
/// Client → monitor: close the container's stdin after the buffered bytes.
pub const STDIN_CLOSE: u8 = 2;
/// Client → monitor: set the terminal size (payload: [`resize_payload`]).
pub const RESIZE: u8 = 3;
/// Client → monitor: start the container or the exec'd process.
pub const START: u8 = 4;

/// Monitor → client: the container's stdout (all output, with a terminal).
pub const STDOUT: u8 = 1;
/// Monitor → client: the container's stderr.
pub const STDERR: u8 = 2;
/// Monitor → client: START worked (payload `{"pid":N}`).
pub const STARTED: u8 = 5;
/// Monitor → client: a request failed (payload: the message).
pub const ERROR: u8 = 6;
/// Monitor → client: the process exited (payload: [`ExitStatus`] JSON).
pub const EXIT: u8 = 7;

/// HELLO flag: send me STDOUT frames.
pub const WANT_STDOUT: u8 = 1;
/// HELLO flag: send me STDERR frames.
pub const WANT_STDERR: u8 = 2;
/// HELLO flag: send me the EXIT frame.
pub const WANT_EXIT: u8 = 4;

/// Bytes before the payload: type and length.
pub const HEADER_LEN: usize = 5;
/// The largest payload either side accepts; a longer frame ends the connection.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// How far a client may fall behind the container's output before it is dropped.
pub const CLIENT_BUFFER_LIMIT: usize = 4 << 20;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// Append the frame `kind`/`payload` to `out`.
pub fn append_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload over 4 GiB");
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The frame `kind`/`payload`, encoded.
pub fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    append_frame(&mut out, kind, payload);
    out
}

/// Decode the frame at the start of `buf`: `Ok(None)` until it is complete, else
/// the frame and the bytes it took. A payload over `max_payload` is an error.
pub fn decode_frame(buf: &[u8], max_payload: usize) -> io::Result<Option<(Frame, usize)>> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > max_payload {
        return Err(too_long(len));
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let frame = Frame {
        kind: header[0],
        payload: payload.to_vec(),
    };
    Ok(Some((frame, HEADER_LEN + len)))
}

fn too_long(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame of {len} bytes is over the limit of {MAX_PAYLOAD}"),
    )
}

/// Reads frames from a blocking stream (the daemon's side of the socket).
pub struct FrameReader<R> {
    inner: R,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader { inner }
    }

    /// The next frame; `Ok(None)` when the stream ends between frames.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.inner.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(too_long(len));
        }
        let mut payload = vec![0; len];
        self.inner.read_exact(&mut payload)?;
        Ok(Some(Frame {
            kind: header[0],
            payload,
        }))
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// The RESIZE payload for a terminal of `rows` × `cols`.
pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let [r0, r1] = rows.to_be_bytes();
    let [c0, c1] = cols.to_be_bytes();
    [r0, r1, c0, c1]
}

/// Rows and cols from a RESIZE payload.
pub fn parse_resize(payload: &[u8]) -> Option<(u16, u16)> {
    match *payload {
        [r0, r1, c0, c1] => Some((u16::from_be_bytes([r0, r1]), u16::from_be_bytes([c0, c1]))),
        _ => None,
    }
}

/// The STARTED payload.
pub fn started_json(pid: i32) -> String {
    format!("{{\"pid\":{pid}}}")
}

/// The pid in a STARTED payload.
pub fn parse_started(payload: &[u8]) -> Option<i32> {
    let v = json::parse(std::str::from_utf8(payload).ok()?).ok()?;
    i32::try_from(v.get("pid")?.as_i64()?).ok()
}

/// How a container's process ended: `DIR/exit` and the EXIT payload.
///
/// `{"exit_code":N,"signal":S_or_null,"finished_at":"RFC3339Nano"}`, with
/// `"error":"..."` added when the process never ran (its start failed; then the
/// exit code is -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit status, or 128 + the signal that killed it.
    pub exit_code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// When the monitor saw it end, as Docker writes times (see [`crate::time`]).
    pub finished_at: String,
    /// Why it never ran.
    pub error: Option<String>,
}

impl ExitStatus {
    /// From a status as `waitpid(2)` reports it.
    pub fn from_wait_status(status: i32, finished_at: String) -> ExitStatus {
        let (exit_code, signal) = if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            (128 + sig, Some(sig))
        } else {
            (libc::WEXITSTATUS(status), None)
        };
        ExitStatus {
            exit_code,
            signal,
            finished_at,
            error: None,
        }
    }

    /// A process that never ran.
    pub fn failed(error: String, finished_at: String) -> ExitStatus {
        ExitStatus {
            exit_code: -1,
            signal: None,
            finished_at,
            error: Some(error),
        }
    }

    pub fn to_json(&self) -> String {
        let signal = match self.signal {
            Some(s) => s.to_string(),
            None => "null".into(),
        };
        let mut out = format!(
            "{{\"exit_code\":{},\"signal\":{signal},\"finished_at\":{}",
            self.exit_code,
            json::quote(&self.finished_at)
        );
        if let Some(e) = &self.error {
            out.push_str(",\"error\":");
            out.push_str(&json::quote(e));
        }
        out.push('}');
        out
    }

    /// Read an exit record; `exit_code` is required, the rest may be missing.
    pub fn parse(text: &str) -> Result<ExitStatus, ProtocolError> {
        let v = json::parse(text).map_err(|e| ProtocolError(format!("exit record: {e}")))?;
        let exit_code = v
            .get("exit_code")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .ok_or_else(|| ProtocolError("exit record: no integer exit_code".into()))?;
        let signal =
            match v.get("signal") {
                None | Some(Value::Null) => None,
                Some(s) => Some(s.as_i64().and_then(|s| i32::try_from(s).ok()).ok_or_else(
                    || ProtocolError("exit record: signal is not an integer".into()),
                )?),
            };
        let text_of = |key| v.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(ExitStatus {
            exit_code,
            signal,
            finished_at: text_of("finished_at").unwrap_or_default(),
            error: text_of("error"),
        })
    }
}

/// The one line a monitor writes to `--sync-fd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    /// Created (container mode: init's pid; exec mode: 0).
    Ok { pid: i32 },
    /// Not created: the runtime's message.
    Failed { error: String },
}

impl SyncReport {
    pub fn to_json(&self) -> String {
        match self {
            SyncReport::Ok { pid } => format!("{{\"ok\":true,\"pid\":{pid}}}"),
            SyncReport::Failed { error } => {
                format!("{{\"ok\":false,\"error\":{}}}", json::quote(error))
            }
        }
    }

    pub fn parse(text: &str) -> Result<SyncReport, ProtocolError> {
        let v = json::parse(text.trim()).map_err(|e| ProtocolError(format!("sync line: {e}")))?;
        match v.get("ok").and_then(Value::as_bool) {
            Some(true) => {
                let pid = v
                    .get("pid")
                    .and_then(Value::as_i64)
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| ProtocolError("sync line: ok without a pid".into()))?;
                Ok(SyncReport::Ok { pid })
            }
            Some(false) => Ok(SyncReport::Failed {
                error: v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the monitor gave no reason")
                    .to_owned(),
            }),
            None => Err(ProtocolError("sync line: no boolean \"ok\"".into())),
        }
    }
}

/// A message from a monitor that does not say what the protocol says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_reader() {
        let mut wire = encode_frame(HELLO, &[WANT_STDOUT | WANT_EXIT]);
        append_frame(&mut wire, STDIN, b"hello\n");
        append_frame(&mut wire, START, b"");
        assert_eq!(&wire[..5], &[0, 0, 0, 0, 1]);
        let mut r = FrameReader::new(&wire[..]);
        assert_eq!(
            r.read_frame().unwrap().unwrap(),
            Frame {
                kind: HELLO,
                payload: vec![5]
            }
        );
        assert_eq!(
            r.read_frame().unwrap().unwrap(),
            Frame {
                kind: STDIN,
                payload: b"hello\n".to_vec()
            }
        );
        assert_eq!(
            r.read_frame().unwrap().unwrap(),
            Frame {
                kind: START,
                payload: vec![]
            }
        );
        assert_eq!(r.read_frame().unwrap(), None);
    }

    #[test]
    fn reader_rejects_truncated_and_oversized_frames() {
        let wire = encode_frame(STDOUT, b"abcdef");
        let mut r = FrameReader::new(&wire[..8]);
        assert_eq!(
            r.read_frame().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut r = FrameReader::new(&wire[..3]);
        assert_eq!(
            r.read_frame().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let huge = [STDOUT, 0xff, 0xff, 0xff, 0xff];
        let mut r = FrameReader::new(&huge[..]);
        assert_eq!(
            r.read_frame().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn decoder_waits_for_whole_frames() {
        let mut wire = encode_frame(RESIZE, &resize_payload(40, 120));
        append_frame(&mut wire, STDIN_CLOSE, b"");
        for cut in 0..9 {
            assert_eq!(
                decode_frame(&wire[..cut], MAX_PAYLOAD).unwrap(),
                None,
                "cut {cut}"
            );
        }
        let (f, used) = decode_frame(&wire, MAX_PAYLOAD).unwrap().unwrap();
        assert_eq!((f.kind, used), (RESIZE, 9));
        assert_eq!(parse_resize(&f.payload), Some((40, 120)));
        let (f, used) = decode_frame(&wire[9..], MAX_PAYLOAD).unwrap().unwrap();
        assert_eq!((f.kind, f.payload.len(), used), (STDIN_CLOSE, 0, 5));
        assert!(decode_frame(&[STDIN, 0, 0, 0, 9], 8).is_err());
        assert_eq!(parse_resize(&[1, 2, 3]), None);
    }

    #[test]
    fn exit_status_from_wait_statuses() {
        // Exited with 3: status 3 << 8. Killed by SIGKILL: status 9.
        let e = ExitStatus::from_wait_status(3 << 8, "t".into());
        assert_eq!((e.exit_code, e.signal), (3, None));
        let e = ExitStatus::from_wait_status(libc::SIGKILL, "t".into());
        assert_eq!((e.exit_code, e.signal), (137, Some(9)));
        let e = ExitStatus::from_wait_status(0, "t".into());
        assert_eq!((e.exit_code, e.signal), (0, None));
    }

    #[test]
    fn exit_status_json_round_trips() {
        let e = ExitStatus {
            exit_code: 137,
            signal: Some(9),
            finished_at: "2026-11-23T14:29:07.123456789Z".into(),
            error: None,
        };
        let text = e.to_json();
        assert_eq!(
            text,
            r#"{"exit_code":137,"signal":9,"finished_at":"2026-11-23T14:29:07.123456789Z"}"#
        );
        assert_eq!(ExitStatus::parse(&text).unwrap(), e);
        let f = ExitStatus::failed("exec: \"nope\": not found".into(), "x".into());
        assert_eq!(
            f.to_json(),
            r#"{"exit_code":-1,"signal":null,"finished_at":"x","error":"exec: \"nope\": not found"}"#
        );
        assert_eq!(ExitStatus::parse(&f.to_json()).unwrap(), f);
        let minimal = ExitStatus::parse(r#"{"exit_code":-1,"error":"boom"}"#).unwrap();
        assert_eq!(
            (minimal.exit_code, minimal.error.as_deref()),
            (-1, Some("boom"))
        );
        assert!(ExitStatus::parse(r#"{"signal":9}"#).is_err());
        assert!(ExitStatus::parse(r#"{"exit_code":1,"signal":"KILL"}"#).is_err());
    }

    #[test]
    fn sync_reports_round_trip() {
        for r in [
            SyncReport::Ok { pid: 4242 },
            SyncReport::Failed {
                error: "no such file \"/x\"\n".into(),
            },
        ] {
            assert_eq!(SyncReport::parse(&(r.to_json() + "\n")).unwrap(), r);
        }
        assert_eq!(
            SyncReport::Ok { pid: 0 }.to_json(),
            r#"{"ok":true,"pid":0}"#
        );
        assert!(SyncReport::parse(r#"{"pid":1}"#).is_err());
        assert_eq!(parse_started(started_json(77).as_bytes()), Some(77));
        assert_eq!(parse_started(b"{}"), None);
    }
}
