//! Rendering the daemon's JSON progress stream (pull, push, load, import).
//!
//! The daemon sends one JSON message per line:
//! `{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"a1b2c3"}`,
//! `{"stream":"Loaded image: bb:latest\n"}`, `{"aux":{...}}`, and on failure
//! `{"errorDetail":{"message":"..."},"error":"..."}`, which ends the command with that message.
//!
//! On a terminal each layer id gets its own line with a progress bar that updates in place; when
//! stdout is not a terminal each message is a plain `id: status` line and byte-progress updates
//! are left out, as the docker CLI does.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, Result};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::Response;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
pub struct JsonMessage {
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, rename = "progressDetail")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default)]
    pub progress: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default)]
    pub aux: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProgressDetail {
    #[serde(default)]
    pub current: i64,
    #[serde(default)]
    pub total: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
}

impl JsonMessage {
    /// The error this message carries, if it is an error message.
    pub fn error_message(&self) -> Option<String> {
        if let Some(d) = &self.error_detail {
            if !d.message.is_empty() {
                return Some(d.message.clone());
            }
        }
        self.error.clone().filter(|e| !e.is_empty())
    }

    /// Byte progress, when the message reports some.
    fn bytes(&self) -> Option<(u64, u64)> {
        let d = self.progress_detail.as_ref()?;
        (d.current > 0 || d.total > 0).then(|| (d.current.max(0) as u64, d.total.max(0) as u64))
    }
}

/// Where messages go.
pub trait Sink {
    fn message(&mut self, msg: &JsonMessage) -> Result<()>;
    fn finish(&mut self) {}
}

/// Plain lines for pipes and files.
pub struct PlainSink<W: Write> {
    pub out: W,
}

impl<W: Write> Sink for PlainSink<W> {
    fn message(&mut self, msg: &JsonMessage) -> Result<()> {
        if let Some(s) = &msg.stream {
            write!(self.out, "{s}")?;
            return Ok(());
        }
        if msg.bytes().is_some() || msg.progress.as_deref().is_some_and(|p| !p.is_empty()) {
            return Ok(());
        }
        let Some(status) = &msg.status else {
            return Ok(());
        };
        match &msg.id {
            Some(id) if !id.is_empty() => writeln!(self.out, "{id}: {status}")?,
            _ => writeln!(self.out, "{status}")?,
        }
        Ok(())
    }
}

/// Discards everything (`-q`); errors still end the stream.
pub struct QuietSink;

impl Sink for QuietSink {
    fn message(&mut self, _: &JsonMessage) -> Result<()> {
        Ok(())
    }
}

/// One line per layer id with a bar, redrawn in place.
pub struct TtySink {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    text: ProgressStyle,
    bar: ProgressStyle,
}

impl Default for TtySink {
    fn default() -> Self {
        Self::new()
    }
}

impl TtySink {
    pub fn new() -> Self {
        Self::drawing_to(ProgressDrawTarget::stdout())
    }

    fn drawing_to(target: ProgressDrawTarget) -> Self {
        TtySink {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            text: ProgressStyle::with_template("{prefix}{msg}").expect("static template"),
            bar: ProgressStyle::with_template("{prefix}{msg} [{bar:50.=>-}] {bytes}/{total_bytes}")
                .expect("static template")
                .progress_chars("=> "),
        }
    }

    fn line(&mut self) -> ProgressBar {
        let pb = self.multi.add(ProgressBar::new(0));
        pb.set_style(self.text.clone());
        pb
    }
}

impl Sink for TtySink {
    fn message(&mut self, msg: &JsonMessage) -> Result<()> {
        if let Some(s) = &msg.stream {
            for line in s.lines() {
                let pb = self.line();
                pb.finish_with_message(line.to_string());
            }
            return Ok(());
        }
        let Some(status) = &msg.status else {
            return Ok(());
        };
        let id = match &msg.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => {
                let pb = self.line();
                pb.finish_with_message(status.clone());
                return Ok(());
            }
        };
        let pb = match self.bars.get(&id) {
            Some(pb) => pb.clone(),
            None => {
                let pb = self.line();
                pb.set_prefix(format!("{id}: "));
                self.bars.insert(id, pb.clone());
                pb
            }
        };
        match msg.bytes() {
            Some((current, total)) if total > 0 => {
                pb.set_style(self.bar.clone());
                pb.set_length(total);
                pb.set_position(current.min(total));
            }
            _ => pb.set_style(self.text.clone()),
        }
        pb.set_message(status.clone());
        Ok(())
    }

    fn finish(&mut self) {
        for pb in self.bars.values() {
            pb.abandon();
        }
    }
}

/// Splits a byte stream into JSON messages (newline-separated or simply concatenated).
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<JsonMessage>> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut iter = serde_json::Deserializer::from_slice(&self.buf).into_iter::<JsonMessage>();
        let mut consumed = 0;
        loop {
            match iter.next() {
                Some(Ok(m)) => {
                    out.push(m);
                    consumed = iter.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(anyhow!("decoding the daemon's progress stream: {e}")),
                None => {
                    consumed = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        Ok(out)
    }

    /// Whether bytes of an unfinished message are left over.
    pub fn has_partial(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }
}

/// Feeds `messages` to `sink`; stops at the first error message and returns it.
pub fn render(messages: &[JsonMessage], sink: &mut dyn Sink, aux: &mut Vec<Value>) -> Result<()> {
    for m in messages {
        if let Some(err) = m.error_message() {
            return Err(anyhow!(err));
        }
        if let Some(a) = &m.aux {
            aux.push(a.clone());
        }
        sink.message(m)?;
    }
    Ok(())
}

/// Reads the whole progress stream of `resp` into `sink`; returns the `aux` payloads.
pub async fn display(resp: Response<Incoming>, sink: &mut dyn Sink) -> Result<Vec<Value>> {
    let mut body = crate::client::body_stream(resp);
    let mut decoder = Decoder::default();
    let mut aux = Vec::new();
    let result = async {
        while let Some(chunk) = body.next().await {
            let msgs = decoder.push(&chunk?)?;
            render(&msgs, sink, &mut aux)?;
        }
        if decoder.has_partial() {
            return Err(anyhow!(
                "the daemon's progress stream ended in the middle of a message"
            ));
        }
        Ok(())
    }
    .await;
    sink.finish();
    result.map(|()| aux)
}

/// The sink for a command's progress on stdout: bars on a terminal, plain lines otherwise.
pub fn stdout_sink(quiet: bool) -> Box<dyn Sink> {
    use std::io::IsTerminal;
    if quiet {
        Box::new(QuietSink)
    } else if std::io::stdout().is_terminal() {
        Box::new(TtySink::new())
    } else {
        Box::new(PlainSink {
            out: std::io::stdout(),
        })
    }
}

/// Progress on stderr, for pulls that are not the command's output (`run` pulling a missing
/// image keeps stdout for the container).
pub fn stderr_sink() -> Box<dyn Sink> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        Box::new(TtySink::drawing_to(ProgressDrawTarget::stderr()))
    } else {
        Box::new(PlainSink {
            out: std::io::stderr(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PULL: &str = concat!(
        "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n",
        "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"ec562eabd705\"}\r\n",
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":100,\"total\":2000},",
        "\"progress\":\"[=>  ] 100B/2kB\",\"id\":\"ec562eabd705\"}\r\n",
        "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"ec562eabd705\"}",
        "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"ec562eabd705\"}\n",
        "{\"status\":\"Digest: sha256:abc\"}\n",
    );

    #[test]
    fn plain_output_drops_byte_progress() {
        let mut decoder = Decoder::default();
        let mut msgs = Vec::new();
        // Split mid-message to check buffering across chunks.
        for chunk in PULL.as_bytes().chunks(37) {
            msgs.extend(decoder.push(chunk).unwrap());
        }
        assert!(!decoder.has_partial());
        let mut sink = PlainSink { out: Vec::new() };
        let mut aux = Vec::new();
        render(&msgs, &mut sink, &mut aux).unwrap();
        assert_eq!(
            String::from_utf8(sink.out).unwrap(),
            "latest: Pulling from library/busybox\n\
             ec562eabd705: Pulling fs layer\n\
             ec562eabd705: Download complete\n\
             ec562eabd705: Pull complete\n\
             Digest: sha256:abc\n"
        );
    }

    #[test]
    fn errors_end_the_stream_and_aux_is_collected() {
        let mut decoder = Decoder::default();
        let msgs = decoder
            .push(
                concat!(
                    "{\"stream\":\"Loaded image: bb:latest\\n\"}\n",
                    "{\"aux\":{\"Tag\":\"1\",\"Digest\":\"sha256:d\"}}\n",
                    "{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\n",
                    "{\"status\":\"never shown\"}\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let mut sink = PlainSink { out: Vec::new() };
        let mut aux = Vec::new();
        let err = render(&msgs, &mut sink, &mut aux).unwrap_err();
        assert_eq!(err.to_string(), "manifest unknown");
        assert_eq!(
            String::from_utf8(sink.out).unwrap(),
            "Loaded image: bb:latest\n"
        );
        assert_eq!(aux[0]["Digest"], "sha256:d");
    }

    #[test]
    fn bad_json_is_an_error_and_partial_messages_are_noticed() {
        let mut d = Decoder::default();
        assert!(d.push(b"{\"status\":\"x\"").unwrap().is_empty());
        assert!(d.has_partial());
        assert!(Decoder::default().push(b"not json\n").is_err());
    }

    #[test]
    fn tty_sink_tracks_one_bar_per_layer() {
        let mut sink = TtySink::new();
        sink.multi.set_draw_target(ProgressDrawTarget::hidden());
        let mut d = Decoder::default();
        let msgs = d.push(PULL.as_bytes()).unwrap();
        let mut aux = Vec::new();
        render(&msgs[..3], &mut sink, &mut aux).unwrap();
        let bar = &sink.bars["ec562eabd705"];
        assert_eq!((bar.position(), bar.length()), (100, Some(2000)));
        assert_eq!(bar.message(), "Downloading");
        render(&msgs[3..], &mut sink, &mut aux).unwrap();
        assert_eq!(
            sink.bars.len(),
            2,
            "one line for the tag, one for the layer"
        );
        assert_eq!(sink.bars["ec562eabd705"].message(), "Pull complete");
    }
}
