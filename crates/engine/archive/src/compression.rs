//! Layer compression: sniffing the format of a blob, decompressing it as a stream, and
//! compressing a freshly written diff.
//!
//! Registries serve layers as gzip (`application/vnd.oci.image.layer.v1.tar+gzip`), zstd
//! (`...tar+zstd`) or plain tar; the media type is advisory, so the reader trusts the magic bytes.

use std::io::{self, BufReader, Read, Write};

use crate::ArchiveError;

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (RFC 1952), possibly several concatenated members.
    Gzip,
    /// Zstandard frames.
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Buffer between the decompressor and the tar reader.
const DECOMPRESS_BUFFER: usize = 256 * 1024;

impl Compression {
    /// The compression whose magic bytes start `prefix`; `None` if neither matches (including a
    /// prefix too short to tell).
    pub fn detect(prefix: &[u8]) -> Compression {
        if prefix.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if prefix.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The suffix of the OCI layer media type: `""`, `"+gzip"` or `"+zstd"`.
    pub fn media_type_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// Sniffs the compression from the first bytes and returns a reader of the uncompressed stream.
pub fn decompress<'a, R: Read + Send + 'a>(
    mut r: R,
) -> Result<(Compression, Box<dyn Read + Send + 'a>), ArchiveError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        match r.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ArchiveError::Read(e)),
        }
    }
    let prefix = prefix[..filled].to_vec();
    let compression = Compression::detect(&prefix);
    let whole = io::Cursor::new(prefix).chain(r);
    let reader: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            DECOMPRESS_BUFFER,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(DECOMPRESS_BUFFER, whole)),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            DECOMPRESS_BUFFER,
            zstd::stream::read::Decoder::new(whole).map_err(ArchiveError::Read)?,
        )),
    };
    Ok((compression, reader))
}

/// A writer that compresses into the wrapped writer; [`Compressor::finish`] ends the stream and
/// returns the writer.
pub enum Compressor<W: Write> {
    /// Bytes pass through unchanged.
    None(W),
    /// gzip at the default level (6), as docker writes.
    Gzip(flate2::write::GzEncoder<W>),
    /// zstd at the default level (3).
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// A writer that compresses into `w` (gzip / zstd / none); `finish()` returns `w`.
pub fn compress<W: Write>(w: W, c: Compression) -> Result<Compressor<W>, ArchiveError> {
    Ok(match c {
        Compression::None => Compressor::None(w),
        Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
            w,
            flate2::Compression::default(),
        )),
        Compression::Zstd => Compressor::Zstd(
            zstd::stream::write::Encoder::new(w, zstd::DEFAULT_COMPRESSION_LEVEL)
                .map_err(ArchiveError::Write)?,
        ),
    })
}

impl<W: Write> Compressor<W> {
    /// Writes the end of the compressed stream and returns the inner writer, flushed.
    pub fn finish(self) -> Result<W, ArchiveError> {
        let mut w = match self {
            Compressor::None(w) => w,
            Compressor::Gzip(e) => e.finish().map_err(ArchiveError::Write)?,
            Compressor::Zstd(e) => e.finish().map_err(ArchiveError::Write)?,
        };
        w.flush().map_err(ArchiveError::Write)?;
        Ok(w)
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.write_all(buf),
            Compressor::Gzip(e) => e.write_all(buf),
            Compressor::Zstd(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}
