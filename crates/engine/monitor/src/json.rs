//! The little JSON the monitor reads and writes, by hand.
//!
//! Writing: [`write_string`] quotes bytes exactly as Docker's json-file logger does
//! (`jsonlog.ffjsonWriteJSONBytesAsString`, Go's encoding/json rules): `"` and `\`
//! escaped, `\n` and `\r` as themselves, other control characters and `<`, `>`, `&`
//! as `\u00XX`, U+2028 and U+2029 as `\u2028`/`\u2029`, and every byte that is not
//! part of valid UTF-8 as `\ufffd`.
//!
//! Reading: [`parse`] turns a document into a [`Value`]; enough for the exit record,
//! the sync line and a runtime's JSON log lines.

use std::fmt;

/// Append `bytes` as a quoted JSON string.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0; // first byte not yet copied
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if b >= 0x20 && !matches!(b, b'\\' | b'"' | b'<' | b'>' | b'&') {
                i += 1;
                continue;
            }
            out.extend_from_slice(&bytes[start..i]);
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]),
            }
            i += 1;
            start = i;
            continue;
        }
        match utf8_char_len(&bytes[i..]) {
            None => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                start = i;
            }
            // U+2028 and U+2029 (E2 80 A8/A9) break JavaScript string literals.
            Some(3) if bytes[i] == 0xe2 && bytes[i + 1] == 0x80 && bytes[i + 2] >> 1 == 0x54 => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u202");
                out.push(HEX[usize::from(bytes[i + 2] & 0xf)]);
                i += 3;
                start = i;
            }
            Some(n) => i += n,
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The quoted JSON string for `s`, as [`write_string`] writes it.
pub fn quote(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(&mut out, s.as_bytes());
    String::from_utf8(out).expect("escaping keeps UTF-8 valid")
}

/// Length of the valid UTF-8 sequence at the start of `b` (which starts with a
/// byte >= 0x80), or `None` where Go's `utf8.DecodeRune` reports an error of size 1.
fn utf8_char_len(b: &[u8]) -> Option<usize> {
    let (len, lo, hi) = match b[0] {
        0xc2..=0xdf => (2, 0x80, 0xbf),
        0xe0 => (3, 0xa0, 0xbf),
        0xe1..=0xec | 0xee..=0xef => (3, 0x80, 0xbf),
        0xed => (3, 0x80, 0x9f), // no surrogates
        0xf0 => (4, 0x90, 0xbf),
        0xf1..=0xf3 => (4, 0x80, 0xbf),
        0xf4 => (4, 0x80, 0x8f), // nothing above U+10FFFF
        _ => return None,
    };
    if b.len() < len || !(lo..=hi).contains(&b[1]) {
        return None;
    }
    b[2..len]
        .iter()
        .all(|c| (0x80..=0xbf).contains(c))
        .then_some(len)
}

/// A parsed JSON value. Numbers are kept as f64, which holds every pid and exit code.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object (the last one, if repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|m| &m.1),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An integral number that fits in i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(n as i64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// Where and why a document is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parse one JSON document (surrounding whitespace allowed, nothing else).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: u32,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            reason,
        }
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, ParseError> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("unknown literal"))
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.ws();
        match self.s.get(self.pos) {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => self.nested(|p| {
                let mut items = Vec::new();
                if p.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(p.value()?);
                    if p.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    if !p.eat(b',') {
                        return Err(p.err("expected ',' or ']'"));
                    }
                }
            }),
            Some(b'{') => self.nested(|p| {
                let mut members = Vec::new();
                if p.eat(b'}') {
                    return Ok(Value::Object(members));
                }
                loop {
                    p.ws();
                    if p.s.get(p.pos) != Some(&b'"') {
                        return Err(p.err("expected a member name"));
                    }
                    let key = p.string()?;
                    if !p.eat(b':') {
                        return Err(p.err("expected ':'"));
                    }
                    members.push((key, p.value()?));
                    if p.eat(b'}') {
                        return Ok(Value::Object(members));
                    }
                    if !p.eat(b',') {
                        return Err(p.err("expected ',' or '}'"));
                    }
                }
            }),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    /// An array or object: `body` runs after the opening bracket.
    fn nested(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<Value, ParseError>,
    ) -> Result<Value, ParseError> {
        if self.depth >= 64 {
            return Err(self.err("nested too deeply"));
        }
        self.depth += 1;
        self.pos += 1;
        let v = body(self);
        self.depth -= 1;
        v
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.s[self.pos] == b'-' {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.s.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > from
        };
        if !digits(self) {
            return Err(self.err("expected digits"));
        }
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.err("expected digits after '.'"));
            }
        }
        if matches!(self.s.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.s.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.err("expected exponent digits"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII");
        text.parse()
            .map(Value::Number)
            .map_err(|_| self.err("bad number"))
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(h)
    }

    /// A string, at its opening quote.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while !matches!(self.s.get(self.pos), None | Some(b'"' | b'\\' | 0..=0x1f)) {
                self.pos += 1;
            }
            // The input is a &str and the run stops only at ASCII: valid UTF-8.
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).expect("str input"));
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(&c) = self.s.get(self.pos) else {
                        return Err(self.err("unexpected end in escape"));
                    };
                    self.pos += 1;
                    match c {
                        b'"' | b'\\' | b'/' => out.push(c as char),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xd800..0xdc00).contains(&cp)
                                && self.s[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                } else {
                                    self.pos = save;
                                }
                            }
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("unknown escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        let mut out = Vec::new();
        write_string(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_docker() {
        assert_eq!(esc(b"hello\n"), r#""hello\n""#);
        assert_eq!(esc(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            esc(b"\r\n\t\x00\x1f\x7f"),
            "\"\\r\\n\\u0009\\u0000\\u001f\x7f\""
        );
        assert_eq!(
            esc(b"<a href='x'>&</a>"),
            r#""\u003ca href='x'\u003e\u0026\u003c/a\u003e""#
        );
        assert_eq!(esc("é中😀".as_bytes()), "\"é中😀\"");
        assert_eq!(esc("a\u{2028}b\u{2029}".as_bytes()), r#""a\u2028b\u2029""#);
        assert_eq!(esc(b""), r#""""#);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_per_byte() {
        // A lone continuation byte, a truncated sequence, an overlong encoding,
        // a surrogate, and a byte that never appears in UTF-8.
        assert_eq!(esc(b"a\x80b"), r#""a\ufffdb""#);
        assert_eq!(esc(b"\xe4\xb8"), r#""\ufffd\ufffd""#);
        assert_eq!(esc(b"\xc0\xaf"), r#""\ufffd\ufffd""#);
        assert_eq!(esc(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
        assert_eq!(esc(b"\xff"), r#""\ufffd""#);
        assert_eq!(esc(b"\xf4\x90\x80\x80"), r#""\ufffd\ufffd\ufffd\ufffd""#);
        // Truncated at the very end of the input.
        assert_eq!(esc(b"ok\xf0\x9f\x98"), r#""ok\ufffd\ufffd\ufffd""#);
    }

    #[test]
    fn escaped_output_parses_back() {
        let all: Vec<u8> = (0u8..=0x7f).collect();
        let text = esc(&all);
        let v = parse(&text).unwrap();
        assert_eq!(v.as_str().unwrap().as_bytes(), &all[..]);
    }

    #[test]
    fn parses_documents() {
        let v = parse(
            r#" {"exit_code": -3, "signal": null, "ok": true, "n": 1.5e2,
                          "a": [1, "x", {"b": false}], "s": "q\"\\\/\u00e9\ud83d\ude00\n"} "#,
        )
        .unwrap();
        assert_eq!(v.get("exit_code").unwrap().as_i64(), Some(-3));
        assert_eq!(v.get("signal"), Some(&Value::Null));
        assert_eq!(v.get("ok").unwrap().as_bool(), Some(true));
        assert_eq!(v.get("n").unwrap().as_i64(), Some(150));
        assert_eq!(v.get("s").unwrap().as_str(), Some("q\"\\/é😀\n"));
        assert_eq!(
            v.get("a"),
            Some(&Value::Array(vec![
                Value::Number(1.0),
                Value::String("x".into()),
                Value::Object(vec![("b".into(), Value::Bool(false))]),
            ]))
        );
        assert_eq!(v.get("missing"), None);
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "{",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "\"abc",
            "\"a\nb\"",
            "tru",
            "01x",
            "-",
            "1.",
            "{} x",
            "\"\\x\"",
            "\"\\u12\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
