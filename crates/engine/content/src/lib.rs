//! berth-content: a content-addressed blob store, like containerd's content store.
//!
//! # The story of one blob
//!
//! A pull learns a layer's digest and size from a manifest, then asks the store for a
//! [`Writer`] of that digest ([`ContentStore::writer`]). The writer lives in
//! `root/ingest/<alg>-<hex>`, a file locked with `flock` so that only one writer per digest
//! exists at a time, across threads and processes. A second puller gets an error of kind
//! [`ErrorKind::Conflict`] and may [`ContentStore::wait_writer`] until the first one is done.
//!
//! The puller streams the bytes into the writer. Every byte is hashed as it arrives, and a
//! byte past the declared size is refused at once, so a registry that lies about a size cannot
//! fill the disk. While the download runs, [`Writer::follower`] hands out readers that tail the
//! ingest file: the unpacker extracts the layer as it downloads.
//!
//! [`Writer::commit`] checks size and digest, fsyncs the file, renames it to
//! `root/blobs/<alg>/<hex>` and fsyncs the directories. A mismatch discards the ingest. A blob
//! is therefore only ever visible under its digest once it is complete and verified; a crash
//! or `kill -9` at any moment leaves at most an ingest file behind. That ingest file is how a
//! pull resumes: the next writer of the same digest re-hashes what is there and continues at
//! [`Writer::offset`] instead of fetching everything again.
//!
//! Small documents (manifests, configs) take the short way: [`ContentStore::put`] and
//! [`ContentStore::read_blob`].
//!
//! Digests are sha256, sha384 or sha512; each blob is verified with its digest's algorithm.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

pub use berth_core::Digest;
use berth_core::{ErrorKind, HasKind};
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::DigestAlgorithm;
use sha2::Digest as _;

/// Bytes a writer gathers before it writes them to the ingest file (and that followers see).
const WRITE_BUFFER: usize = 1 << 20;
/// Chunk size when re-hashing an ingest to resume it, or hashing a stored blob.
const READ_CHUNK: usize = 1 << 20;

/// Why a content store operation failed. Messages name the digest and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("content {digest}: not found")]
    NotFound { digest: Digest },
    #[error("content {digest}: unsupported digest algorithm {algorithm:?} (sha256, sha384 and sha512 are supported)")]
    UnsupportedAlgorithm { digest: Digest, algorithm: String },
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("content {digest}: more bytes than the declared size of {declared}: refused a write reaching {attempted} bytes")]
    SizeExceeded {
        digest: Digest,
        declared: u64,
        attempted: u64,
    },
    #[error("content {digest}: declared size of {size} bytes exceeds the {available} bytes available in {path}")]
    InsufficientSpace {
        digest: Digest,
        size: u64,
        available: u64,
        path: PathBuf,
    },
    #[error("content {digest}: {size} bytes is more than the {max} bytes allowed for this read")]
    TooLarge { digest: Digest, size: u64, max: u64 },
    #[error("content {digest}: stored blob is corrupt (its bytes hash to {actual})")]
    Corrupt { digest: Digest, actual: Digest },
    #[error("content {digest}: another writer is ingesting it")]
    WriterBusy { digest: Digest },
    #[error("content {digest}: already exists")]
    AlreadyExists { digest: Digest },
    #[error("content {digest}: ingest {reason}")]
    IngestFailed { digest: Digest, reason: String },
}

impl HasKind for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::Io { source, .. } => HasKind::kind(source),
            ContentError::NotFound { .. } => ErrorKind::NotFound,
            ContentError::UnsupportedAlgorithm { .. }
            | ContentError::DigestMismatch { .. }
            | ContentError::SizeMismatch { .. }
            | ContentError::SizeExceeded { .. }
            | ContentError::TooLarge { .. } => ErrorKind::InvalidArgument,
            ContentError::WriterBusy { .. } => ErrorKind::Conflict,
            ContentError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            ContentError::InsufficientSpace { .. }
            | ContentError::Corrupt { .. }
            | ContentError::IngestFailed { .. } => ErrorKind::Internal,
        }
    }
}

impl ContentError {
    /// The content error inside an `io::Error` returned by [`Writer`]'s `Write` impl or a
    /// [`Follower`]'s `Read` impl, if there is one.
    pub fn from_io(e: &io::Error) -> Option<&ContentError> {
        e.get_ref()?.downcast_ref::<ContentError>()
    }

    fn into_io(self) -> io::Error {
        let kind = match self {
            ContentError::Io { ref source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A stored blob as [`ContentStore::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// An interrupted ingest as [`ContentStore::ingests`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestInfo {
    pub digest: Digest,
    /// Bytes already in the ingest file.
    pub offset: u64,
}

/// The incremental hash for one digest algorithm.
#[derive(Clone)]
enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn for_digest(d: &Digest) -> Result<Self, ContentError> {
        match d.algorithm() {
            DigestAlgorithm::Sha256 => Ok(Hasher::Sha256(sha2::Sha256::new())),
            DigestAlgorithm::Sha384 => Ok(Hasher::Sha384(sha2::Sha384::new())),
            DigestAlgorithm::Sha512 => Ok(Hasher::Sha512(sha2::Sha512::new())),
            other => Err(ContentError::UnsupportedAlgorithm {
                digest: d.clone(),
                algorithm: other.to_string(),
            }),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Hasher::Sha384(h) => ("sha384", hex::encode(h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        format!("{alg}:{hex}")
            .parse()
            .expect("a hex hash of the right length is a valid digest")
    }
}

/// The digest of `bytes` computed with the algorithm of `like`.
fn digest_like(like: &Digest, bytes: &[u8]) -> Result<Digest, ContentError> {
    let mut h = Hasher::for_digest(like)?;
    h.update(bytes);
    Ok(h.finish())
}

/// A content-addressed blob store rooted at a directory:
/// `root/blobs/<alg>/<hex>` holds verified blobs, `root/ingest/<alg>-<hex>` the ingests.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: Arc<PathBuf>,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        for dir in [root.join("blobs"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        Ok(ContentStore {
            root: Arc::new(root.to_path_buf()),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a complete, verified blob with digest `d` is stored.
    pub fn contains(&self, d: &Digest) -> bool {
        fs::metadata(self.blob_path(d)).is_ok_and(|m| m.is_file())
    }

    /// The size of the stored blob `d`.
    pub fn size(&self, d: &Digest) -> Result<u64, ContentError> {
        let path = self.blob_path(d);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound { digest: d.clone() })
            }
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    /// Where the blob `d` is (or would be) stored. Only complete, verified blobs are ever there.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_ref())
            .join(d.digest())
    }

    fn ingest_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("ingest")
            .join(format!("{}-{}", d.algorithm().as_ref(), d.digest()))
    }

    /// Opens the stored blob `d` for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound { digest: d.clone() }
            } else {
                io_err("open", &path)(e)
            }
        })
    }

    /// Reads a small blob (a manifest, a config) whole, verifying its digest. Refuses blobs
    /// bigger than `max` bytes with [`ContentError::TooLarge`].
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, ContentError> {
        let file = self.open_blob(d)?;
        let path = self.blob_path(d);
        let size = file.metadata().map_err(io_err("stat", &path))?.len();
        if size > max {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size,
                max,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // `take` guards against a file growing between the stat and the read.
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        if bytes.len() as u64 > max {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size: bytes.len() as u64,
                max,
            });
        }
        let actual = digest_like(d, &bytes)?;
        if &actual != d {
            return Err(ContentError::Corrupt {
                digest: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes`, verified against `expected` when given (else stored under their
    /// sha256). Atomic, and idempotent: storing a blob that exists only returns its digest.
    /// Waits for a concurrent writer of the same digest instead of failing.
    pub fn put(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, ContentError> {
        let digest = match expected {
            Some(expected) => {
                let actual = digest_like(expected, bytes)?;
                if &actual != expected {
                    return Err(ContentError::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                actual
            }
            None => berth_core::sha256_digest(bytes),
        };
        loop {
            if self.contains(&digest) {
                return Ok(digest);
            }
            let ingest = match self.lock_ingest(&digest) {
                Ok(ingest) => ingest,
                Err(ContentError::WriterBusy { .. }) => {
                    self.wait_writer(&digest)?;
                    continue;
                }
                Err(ContentError::AlreadyExists { .. }) => return Ok(digest),
                Err(e) => return Err(e),
            };
            // The bytes are verified already: write them over whatever an interrupted ingest
            // left, and move them in place.
            let path = &ingest.path;
            ingest.file.set_len(0).map_err(io_err("truncate", path))?;
            ingest
                .file
                .write_all_at(bytes, 0)
                .map_err(io_err("write", path))?;
            self.move_into_place(&ingest, &digest)?;
            return Ok(digest);
        }
    }

    /// Starts or resumes the ingest of `expected`. If an interrupted ingest left bytes, the
    /// writer re-hashes them and continues at [`Writer::offset`]. `expected_size`, when given,
    /// is enforced on every write and at commit, and must fit in the free space of the store.
    ///
    /// Errors: [`ContentError::WriterBusy`] (kind Conflict) while another writer holds this
    /// digest; [`ContentError::AlreadyExists`] when the blob is already stored.
    pub fn writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Writer, ContentError> {
        let hasher = Hasher::for_digest(expected)?;
        if self.contains(expected) {
            return Err(ContentError::AlreadyExists {
                digest: expected.clone(),
            });
        }
        if let Some(size) = expected_size {
            let ingest_dir = self.root.join("ingest");
            let stat = nix::sys::statvfs::statvfs(&ingest_dir).map_err(|e| ContentError::Io {
                op: "statvfs",
                path: ingest_dir.clone(),
                source: e.into(),
            })?;
            let available = (stat.blocks_available() as u64).saturating_mul(stat.fragment_size());
            if size > available {
                return Err(ContentError::InsufficientSpace {
                    digest: expected.clone(),
                    size,
                    available,
                    path: ingest_dir,
                });
            }
        }
        let ingest = self.lock_ingest(expected)?;
        let mut writer = Writer {
            store: self.clone(),
            digest: expected.clone(),
            expected_size,
            ingest: Some(ingest),
            hasher,
            offset: 0,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            shared: Arc::new(Shared::default()),
        };
        writer.rehash_existing()?;
        Ok(writer)
    }

    /// Blocks until no writer holds the ingest of `d` (returns at once if there is none).
    /// Afterwards the blob is either stored ([`ContentStore::contains`]) or the writer gave up,
    /// and the caller may start its own [`ContentStore::writer`].
    pub fn wait_writer(&self, d: &Digest) -> Result<(), ContentError> {
        let path = self.ingest_path(d);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let lock = Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| ContentError::Io {
            op: "lock",
            path: path.clone(),
            source: e.into(),
        })?;
        drop(lock);
        Ok(())
    }

    /// Opens (creating) the ingest file of `d` and locks it exclusively, failing with
    /// [`ContentError::WriterBusy`] if another writer holds it. Retries when the locked file is
    /// no longer the one at the path (its writer committed or aborted in between).
    fn lock_ingest(&self, d: &Digest) -> Result<Ingest, ContentError> {
        let path = self.ingest_path(d);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err("open ingest", &path))?;
            let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(ContentError::WriterBusy { digest: d.clone() })
                }
                Err((_, e)) => {
                    return Err(ContentError::Io {
                        op: "lock ingest",
                        path,
                        source: e.into(),
                    })
                }
            };
            let held = file.metadata().map_err(io_err("stat", &path))?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat", &path)(e)),
            }
            let ingest = Ingest { file, path };
            if self.contains(d) {
                // Committed by someone else between our check and the lock.
                ingest.remove()?;
                return Err(ContentError::AlreadyExists { digest: d.clone() });
            }
            return Ok(ingest);
        }
    }

    /// fsyncs the locked ingest file, renames it to the blob path and fsyncs both directories.
    fn move_into_place(&self, ingest: &Ingest, d: &Digest) -> Result<(), ContentError> {
        ingest
            .file
            .sync_all()
            .map_err(io_err("fsync", &ingest.path))?;
        let blob = self.blob_path(d);
        let blob_dir = blob.parent().expect("blob paths have a parent");
        fs::create_dir_all(blob_dir).map_err(io_err("create directory", blob_dir))?;
        fs::rename(&ingest.path, &blob).map_err(io_err("rename ingest", &ingest.path))?;
        sync_dir(blob_dir)?;
        sync_dir(ingest.path.parent().expect("ingest paths have a parent"))?;
        Ok(())
    }

    /// Deletes the blob `d`.
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let path = self.blob_path(d);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().expect("blob paths have a parent")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound { digest: d.clone() })
            }
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every stored blob with its size, sorted by digest. Files under `blobs/` that are not
    /// named like a digest are ignored.
    pub fn list(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let blobs = self.root.join("blobs");
        let mut out = Vec::new();
        for alg in read_dir_names(&blobs)? {
            let dir = blobs.join(&alg);
            if !dir.is_dir() {
                continue;
            }
            for name in read_dir_names(&dir)? {
                let Ok(digest) = format!("{alg}:{name}").parse::<Digest>() else {
                    continue;
                };
                let path = dir.join(&name);
                match fs::metadata(&path) {
                    Ok(m) if m.is_file() => out.push(BlobInfo {
                        digest,
                        size: m.len(),
                    }),
                    Ok(_) => {}
                    // Deleted while we listed.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("stat", &path)(e)),
                }
            }
        }
        out.sort_by(|a, b| a.digest.as_ref().cmp(b.digest.as_ref()));
        Ok(out)
    }

    /// The ingests left in the store (in progress, or interrupted and resumable).
    pub fn ingests(&self) -> Result<Vec<IngestInfo>, ContentError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for name in read_dir_names(&dir)? {
            let Some((alg, hex)) = name.split_once('-') else {
                continue;
            };
            let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                continue;
            };
            if let Ok(m) = fs::metadata(dir.join(&name)) {
                out.push(IngestInfo {
                    digest,
                    offset: m.len(),
                });
            }
        }
        out.sort_by(|a, b| a.digest.as_ref().cmp(b.digest.as_ref()));
        Ok(out)
    }

    /// Removes the interrupted ingest of `d`, unless a writer holds it ([`ContentError::WriterBusy`]).
    pub fn remove_ingest(&self, d: &Digest) -> Result<(), ContentError> {
        if !self.ingest_path(d).exists() {
            return Ok(());
        }
        match self.lock_ingest(d) {
            Ok(ingest) => ingest.remove(),
            Err(ContentError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, ContentError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let entry = entry.map_err(io_err("read directory", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// A locked ingest file. The lock is released when it is dropped.
struct Ingest {
    file: Flock<File>,
    path: PathBuf,
}

impl Ingest {
    /// Unlinks the ingest file while still holding its lock.
    fn remove(self) -> Result<(), ContentError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove ingest", &self.path)(e)),
        }
    }
}

/// Where an ingest stands, shared between its writer and its followers.
#[derive(Default)]
struct Shared {
    state: Mutex<FollowState>,
    changed: Condvar,
}

#[derive(Default)]
struct FollowState {
    /// Bytes in the ingest file that followers may read.
    written: u64,
    end: Option<Result<(), String>>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut FollowState)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state);
        self.changed.notify_all();
    }
}

/// Writes one blob into the store: `std::io::Write` the bytes, then [`Writer::commit`].
///
/// Dropping a writer without committing keeps what was written for a later resume.
pub struct Writer {
    store: ContentStore,
    digest: Digest,
    expected_size: Option<u64>,
    /// `None` once committed or aborted.
    ingest: Option<Ingest>,
    hasher: Hasher,
    /// Bytes accepted so far, including those still in `buffer`.
    offset: u64,
    buffer: Vec<u8>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("digest", &self.digest)
            .field("expected_size", &self.expected_size)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Writer {
    /// The digest being ingested.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Bytes ingested so far (where a resumed download continues).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn ingest(&self) -> &Ingest {
        self.ingest
            .as_ref()
            .expect("an ingest is held until commit or abort consumes the writer")
    }

    /// Hashes what an interrupted ingest left, or discards it when it is longer than declared.
    fn rehash_existing(&mut self) -> Result<(), ContentError> {
        let ingest = self.ingest.as_ref().expect("a new writer holds its ingest");
        let len = ingest
            .file
            .metadata()
            .map_err(io_err("stat", &ingest.path))?
            .len();
        if self.expected_size.is_some_and(|size| len > size) {
            ingest
                .file
                .set_len(0)
                .map_err(io_err("truncate", &ingest.path))?;
            return Ok(());
        }
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut pos = 0u64;
        while pos < len {
            let n = ingest
                .file
                .read_at(&mut chunk, pos)
                .map_err(io_err("read ingest", &ingest.path))?;
            if n == 0 {
                break;
            }
            self.hasher.update(&chunk[..n]);
            pos += n as u64;
        }
        self.offset = pos;
        self.shared.update(|s| s.written = pos);
        Ok(())
    }

    /// Writes the buffered bytes to the ingest file and lets followers see them.
    fn flush_buffer(&mut self) -> Result<(), ContentError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let start = self.offset - self.buffer.len() as u64;
        let ingest = self.ingest();
        ingest
            .file
            .write_all_at(&self.buffer, start)
            .map_err(io_err("write ingest", &ingest.path))?;
        self.buffer.clear();
        let written = self.offset;
        self.shared.update(|s| s.written = written);
        Ok(())
    }

    fn accept(&mut self, bytes: &[u8]) -> Result<(), ContentError> {
        let attempted = self.offset + bytes.len() as u64;
        if let Some(declared) = self.expected_size {
            if attempted > declared {
                return Err(ContentError::SizeExceeded {
                    digest: self.digest.clone(),
                    declared,
                    attempted,
                });
            }
        }
        self.hasher.update(bytes);
        if self.buffer.len() + bytes.len() > WRITE_BUFFER {
            self.flush_buffer()?;
        }
        if bytes.len() >= WRITE_BUFFER {
            // Big writes go straight to the file, without a copy.
            let ingest = self.ingest();
            ingest
                .file
                .write_all_at(bytes, self.offset)
                .map_err(io_err("write ingest", &ingest.path))?;
            self.offset = attempted;
            self.shared.update(|s| s.written = attempted);
        } else {
            self.buffer.extend_from_slice(bytes);
            self.offset = attempted;
        }
        Ok(())
    }

    /// Verifies size and digest, fsyncs, and renames the ingest into `blobs/` atomically. On a
    /// mismatch the ingest is discarded and the error names expected and actual values.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        let result = self.try_commit();
        let end = match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        self.shared.update(|s| s.end = Some(end));
        result
    }

    fn try_commit(&mut self) -> Result<Digest, ContentError> {
        if let Err(e) = self.flush_buffer() {
            // Keep the bytes for a resume; this failure is about the disk, not the content.
            self.ingest = None;
            return Err(e);
        }
        let ingest = self.ingest.take().expect("commit consumes a live writer");
        if let Some(expected) = self.expected_size {
            if self.offset != expected {
                ingest.remove()?;
                return Err(ContentError::SizeMismatch {
                    digest: self.digest.clone(),
                    expected,
                    actual: self.offset,
                });
            }
        }
        let hasher = std::mem::replace(&mut self.hasher, Hasher::Sha256(sha2::Sha256::new()));
        let actual = hasher.finish();
        if actual != self.digest {
            ingest.remove()?;
            return Err(ContentError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        self.store.move_into_place(&ingest, &self.digest)?;
        Ok(actual)
    }

    /// Gives up the ingest and removes its bytes. Followers get an error.
    pub fn abort(mut self) -> Result<(), ContentError> {
        let ingest = self.ingest.take().expect("abort consumes a live writer");
        self.shared
            .update(|s| s.end = Some(Err("was aborted".to_string())));
        ingest.remove()
    }

    /// A reader of the bytes being ingested, from offset 0. It blocks at the current end until
    /// the writer writes more (or flushes), returns EOF once all bytes were read after a
    /// successful commit, and fails if the ingest is aborted, fails to commit, or the writer is
    /// dropped.
    pub fn follower(&self) -> Follower {
        let ingest = self.ingest();
        let file = ingest
            .file
            .try_clone()
            .map_err(|e| io_err("duplicate ingest descriptor", &ingest.path)(e).to_string());
        Follower {
            file,
            digest: self.digest.clone(),
            pos: 0,
            shared: self.shared.clone(),
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.accept(buf).map_err(ContentError::into_io)?;
        Ok(buf.len())
    }

    /// Writes buffered bytes to the ingest file, so followers can read them.
    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer().map_err(ContentError::into_io)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.ingest.is_none() {
            return;
        }
        // Keep what was written so a later writer resumes from it. A failed flush only makes
        // the resume start earlier: the file holds a prefix of the accepted bytes either way.
        let flushed = self.flush_buffer();
        let reason = match flushed {
            Ok(()) => "writer was dropped before commit".to_string(),
            Err(e) => format!("writer was dropped before commit ({e})"),
        };
        self.shared.update(|s| s.end = Some(Err(reason)));
    }
}

/// Reads an ingest while it is written; see [`Writer::follower`].
pub struct Follower {
    /// Its own descriptor of the ingest inode, valid after the rename into `blobs/`.
    file: Result<File, String>,
    digest: Digest,
    pos: u64,
    shared: Arc<Shared>,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let file = match &self.file {
            Ok(f) => f,
            Err(reason) => {
                return Err(ContentError::IngestFailed {
                    digest: self.digest.clone(),
                    reason: reason.clone(),
                }
                .into_io())
            }
        };
        let available = {
            let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match &state.end {
                    Some(Err(reason)) => {
                        return Err(ContentError::IngestFailed {
                            digest: self.digest.clone(),
                            reason: reason.clone(),
                        }
                        .into_io())
                    }
                    _ if state.written > self.pos => break state.written - self.pos,
                    Some(Ok(())) => return Ok(0),
                    None => {
                        state = self
                            .shared
                            .changed
                            .wait(state)
                            .unwrap_or_else(|p| p.into_inner())
                    }
                }
            }
        };
        let want = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(ContentError::IngestFailed {
                digest: self.digest.clone(),
                reason: format!("file ended at {} before its written length", self.pos),
            }
            .into_io());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
