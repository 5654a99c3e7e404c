//! Unpacking a layer: a compressed blob (or one still arriving) becomes a committed snapshot
//! named by its chain id. The uncompressed stream is hashed on the way and must equal the
//! diff id the image config names, or the snapshot is thrown away.

use std::io::{self, Read};

use berth_archive::{ApplyOptions, Whiteouts};
use berth_core::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::{ImageError, Result};
use crate::service::ImageService;

/// Counts and hashes what is read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pub(crate) count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn finish(self) -> (Digest, u64) {
        (
            berth_core::digest::sha256_from_hash(&self.hasher.finalize()),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Calls `tick` with the running byte count as data is read.
pub(crate) struct CountingReader<R, F> {
    pub(crate) inner: R,
    pub(crate) count: u64,
    pub(crate) tick: F,
}

impl<R: Read, F: FnMut(u64)> Read for CountingReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        (self.tick)(self.count);
        Ok(n)
    }
}

impl ImageService {
    /// Whether the layer stack up to `chain` is already unpacked.
    pub(crate) fn has_layer(&self, chain: &Digest) -> bool {
        self.snapshots.stat(chain.as_ref()).is_ok()
    }

    /// Unpacks one layer on top of `parent` (its chain id) into the snapshot `chain`, checking
    /// the uncompressed content against `diff_id`. Returns the uncompressed size.
    pub(crate) fn unpack_layer(
        &self,
        parent: Option<&Digest>,
        chain: &Digest,
        diff_id: &Digest,
        compressed: impl Read + Send,
    ) -> Result<u64> {
        if self.has_layer(chain) {
            return Ok(0);
        }
        let key = format!(
            "extract-{}-{}-{}",
            std::process::id(),
            crate::time::now_nanos(),
            chain.digest()
        );
        self.snapshots.prepare(&key, parent.map(|p| p.as_ref()))?;
        let applied = self.apply_into(&key, diff_id, compressed);
        let outcome = applied.and_then(|size| match self.snapshots.commit(chain.as_ref(), &key) {
            Ok(()) => Ok(size),
            // Another pull unpacked the same layer meanwhile: theirs is as good as ours.
            Err(_) if self.has_layer(chain) => {
                self.snapshots.remove(&key)?;
                Ok(size)
            }
            Err(e) => Err(e.into()),
        });
        if outcome.is_err() {
            let _ = self.snapshots.remove(&key);
        }
        outcome
    }

    fn apply_into(&self, key: &str, diff_id: &Digest, compressed: impl Read + Send) -> Result<u64> {
        let target = self.snapshots.layer_target(key)?;
        let (_compression, plain) = berth_archive::decompress(compressed)?;
        let mut hashing = HashingReader::new(plain);
        let opts = ApplyOptions::new(if target.overlay_whiteouts {
            Whiteouts::Overlay
        } else {
            Whiteouts::Apply
        });
        berth_archive::apply_layer(&mut hashing, &target.dir, &opts)?;
        // The end-of-archive blocks and any padding belong to the diff id too.
        io::copy(&mut hashing, &mut io::sink())
            .map_err(ImageError::io(format!("reading layer {diff_id}")))?;
        let (actual, size) = hashing.finish();
        if &actual != diff_id {
            return Err(ImageError::DiffIdMismatch {
                layer: diff_id.to_string(),
                expected: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(size)
    }
}
