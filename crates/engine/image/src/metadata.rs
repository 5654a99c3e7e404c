//! The record of images, tags and repo digests: one embedded redb file (`root/metadata.db`),
//! no server, every change transactional.
//!
//! Docker's model: an image's ID is the digest of its config. When a pull finishes, the image
//! service writes an [`ImageRecord`] (which platform manifest and index it came from, when it
//! was stored, its size), points the tag (`docker.io/library/busybox:latest`) at the ID and
//! records the repo digest (`docker.io/library/busybox@sha256:<manifest>`), all in one
//! [`MetadataStore::transaction`], so a crash never leaves a tag pointing at nothing. Deleting an
//! image removes its tags and repo digests in the same transaction.
//!
//! [`MetadataStore::resolve`] finds an image the way `docker inspect <name>` does: by reference
//! (`busybox`, `me/app:1.0`, `repo@sha256:...`), by full ID, or by a unique ID prefix.
//!
//! Tables, keyed by strings so the file is easy to inspect:
//! `images` (ID -> JSON record), `tags` (full reference -> ID), `repo_digests` (`repo@digest`
//! -> ID).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::{Digest, ErrorKind, HasKind, Reference, ReferenceError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
const REPO_DIGESTS: TableDefinition<&str, &str> = TableDefinition::new("repo_digests");

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("image metadata {path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("image metadata: {op}: {source}")]
    Db {
        op: &'static str,
        #[source]
        source: redb::Error,
    },
    #[error("image metadata: record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("No such image: {name}")]
    NoSuchImage { name: String },
    #[error("image ID prefix {prefix:?} is ambiguous: it matches {matches} images")]
    Ambiguous { prefix: String, matches: usize },
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    #[error("{reference} has no tag to record (or also names a digest)")]
    NotATag { reference: String },
    #[error("{reference} is not a repo digest (repository@digest)")]
    NotADigest { reference: String },
}

impl HasKind for MetadataError {
    fn kind(&self) -> ErrorKind {
        match self {
            MetadataError::Open { .. }
            | MetadataError::Db { .. }
            | MetadataError::Corrupt { .. } => ErrorKind::Internal,
            MetadataError::NoSuchImage { .. } => ErrorKind::NotFound,
            MetadataError::Ambiguous { .. }
            | MetadataError::InvalidReference(_)
            | MetadataError::NotATag { .. }
            | MetadataError::NotADigest { .. } => ErrorKind::InvalidArgument,
        }
    }
}

fn db<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> MetadataError {
    move |e| MetadataError::Db {
        op,
        source: e.into(),
    }
}

/// The platform manifest of an image, kept in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// One image: its ID (config digest) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: ManifestRef,
    /// The index (manifest list) the manifest was selected from, if any.
    #[serde(default)]
    pub index: Option<Digest>,
    /// When the image was stored, unix seconds.
    pub created: i64,
    /// Sum of the uncompressed layers, when known (0 otherwise).
    #[serde(default)]
    pub size: u64,
    /// When a tag last pointed here, unix nanoseconds (Docker's `Metadata.LastTagTime`).
    #[serde(default)]
    pub last_tag_time: Option<i64>,
}

/// The image database. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct MetadataStore {
    db: Arc<redb::Database>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore").finish_non_exhaustive()
    }
}

impl MetadataStore {
    /// Opens (creating) the database file at `path` and its tables.
    pub fn open(path: &Path) -> Result<Self, MetadataError> {
        let database = redb::Database::create(path).map_err(|source| MetadataError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let store = MetadataStore {
            db: Arc::new(database),
        };
        store.transaction(|txn| {
            txn.txn.open_table(IMAGES).map_err(db("open images"))?;
            txn.txn.open_table(TAGS).map_err(db("open tags"))?;
            txn.txn
                .open_table(REPO_DIGESTS)
                .map_err(db("open repo digests"))?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `f` in one write transaction: it commits when `f` returns `Ok`, and nothing of it
    /// is kept when `f` fails. Write transactions are serialised.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, MetadataError>,
    ) -> Result<T, MetadataError> {
        let txn = self.db.begin_write().map_err(db("begin write"))?;
        let mut t = Transaction { txn: &txn };
        match f(&mut t) {
            Ok(v) => {
                txn.commit().map_err(db("commit"))?;
                Ok(v)
            }
            Err(e) => {
                txn.abort().map_err(db("abort"))?;
                Err(e)
            }
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTables) -> Result<T, MetadataError>,
    ) -> Result<T, MetadataError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        f(&ReadTables {
            images: txn.open_table(IMAGES).map_err(db("open images"))?,
            tags: txn.open_table(TAGS).map_err(db("open tags"))?,
            digests: txn
                .open_table(REPO_DIGESTS)
                .map_err(db("open repo digests"))?,
        })
    }

    pub fn get_image(&self, id: &Digest) -> Result<Option<ImageRecord>, MetadataError> {
        self.read(|t| get_image(&t.images, id))
    }

    /// Every image, by ID.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>, MetadataError> {
        self.read(|t| list_images(&t.images))
    }

    /// Inserts or replaces an image record.
    pub fn put_image(&self, record: &ImageRecord) -> Result<(), MetadataError> {
        self.transaction(|t| t.put_image(record))
    }

    /// Deletes an image with its tags and repo digests; NotFound if there is none.
    pub fn delete_image(&self, id: &Digest) -> Result<(), MetadataError> {
        self.transaction(|t| t.delete_image(id))
    }

    /// Points the tag at `id`; returns the image it pointed at before.
    pub fn set_tag(
        &self,
        reference: &Reference,
        id: &Digest,
    ) -> Result<Option<Digest>, MetadataError> {
        self.transaction(|t| t.set_tag(reference, id))
    }

    /// Removes a tag; returns the image it pointed at.
    pub fn remove_tag(&self, reference: &Reference) -> Result<Option<Digest>, MetadataError> {
        self.transaction(|t| t.remove_tag(reference))
    }

    /// Records `repo@digest` for `id`; returns the image it pointed at before.
    pub fn add_repo_digest(
        &self,
        reference: &Reference,
        id: &Digest,
    ) -> Result<Option<Digest>, MetadataError> {
        self.transaction(|t| t.add_repo_digest(reference, id))
    }

    /// Removes a repo digest; returns the image it pointed at.
    pub fn remove_repo_digest(
        &self,
        reference: &Reference,
    ) -> Result<Option<Digest>, MetadataError> {
        self.transaction(|t| t.remove_repo_digest(reference))
    }

    /// The tags pointing at `id`, sorted.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<Reference>, MetadataError> {
        self.read(|t| refs_of(&t.tags, id))
    }

    /// The repo digests pointing at `id`, sorted.
    pub fn repo_digests_of(&self, id: &Digest) -> Result<Vec<Reference>, MetadataError> {
        self.read(|t| refs_of(&t.digests, id))
    }

    /// Finds an image as Docker does: `sha256:<hex>` (full or a unique prefix) is an ID; else a
    /// reference (`busybox` is `docker.io/library/busybox:latest`; `repo@sha256:...` a repo
    /// digest) is looked up; else a bare hex string is an ID prefix. Unknown names give
    /// `No such image: <name>` (NotFound), a prefix of several IDs an [`MetadataError::Ambiguous`].
    pub fn resolve(&self, name_or_id: &str) -> Result<Digest, MetadataError> {
        self.read(|t| resolve(&t.images, &t.tags, &t.digests, name_or_id))
    }
}

/// The tables of a read transaction.
struct ReadTables {
    images: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    tags: redb::ReadOnlyTable<&'static str, &'static str>,
    digests: redb::ReadOnlyTable<&'static str, &'static str>,
}

/// A write transaction, handed to the closure of [`MetadataStore::transaction`].
pub struct Transaction<'a> {
    txn: &'a redb::WriteTransaction,
}

impl Transaction<'_> {
    fn images(&self) -> Result<redb::Table<'_, &'static str, &'static [u8]>, MetadataError> {
        self.txn.open_table(IMAGES).map_err(db("open images"))
    }

    fn refs(
        &self,
        def: TableDefinition<'static, &'static str, &'static str>,
    ) -> Result<redb::Table<'_, &'static str, &'static str>, MetadataError> {
        self.txn.open_table(def).map_err(db("open table"))
    }

    pub fn get_image(&self, id: &Digest) -> Result<Option<ImageRecord>, MetadataError> {
        get_image(&self.images()?, id)
    }

    pub fn list_images(&self) -> Result<Vec<ImageRecord>, MetadataError> {
        list_images(&self.images()?)
    }

    pub fn put_image(&mut self, record: &ImageRecord) -> Result<(), MetadataError> {
        let bytes = serde_json::to_vec(record).map_err(|e| MetadataError::Corrupt {
            key: record.id.to_string(),
            reason: format!("cannot encode: {e}"),
        })?;
        self.images()?
            .insert(record.id.as_ref(), bytes.as_slice())
            .map_err(db("insert image"))?;
        Ok(())
    }

    /// Deletes the image and every tag and repo digest pointing at it.
    pub fn delete_image(&mut self, id: &Digest) -> Result<(), MetadataError> {
        if self
            .images()?
            .remove(id.as_ref())
            .map_err(db("remove image"))?
            .is_none()
        {
            return Err(MetadataError::NoSuchImage {
                name: id.to_string(),
            });
        }
        for def in [TAGS, REPO_DIGESTS] {
            let mut table = self.refs(def)?;
            table
                .retain(|_, v| v != id.as_ref())
                .map_err(db("remove references"))?;
        }
        Ok(())
    }

    fn require_image(&self, id: &Digest) -> Result<(), MetadataError> {
        match self.images()?.get(id.as_ref()).map_err(db("get image"))? {
            Some(_) => Ok(()),
            None => Err(MetadataError::NoSuchImage {
                name: id.to_string(),
            }),
        }
    }

    /// Points the tag at `id` (which must be recorded); returns the previous image.
    pub fn set_tag(
        &mut self,
        reference: &Reference,
        id: &Digest,
    ) -> Result<Option<Digest>, MetadataError> {
        let key = tag_key(reference)?;
        self.require_image(id)?;
        let previous = self
            .refs(TAGS)?
            .insert(key.as_str(), id.as_ref())
            .map_err(db("insert tag"))?
            .map(|v| v.value().to_string());
        previous.map(|p| parse_id(&key, &p)).transpose()
    }

    pub fn remove_tag(&mut self, reference: &Reference) -> Result<Option<Digest>, MetadataError> {
        let key = tag_key(reference)?;
        let previous = self
            .refs(TAGS)?
            .remove(key.as_str())
            .map_err(db("remove tag"))?
            .map(|v| v.value().to_string());
        previous.map(|p| parse_id(&key, &p)).transpose()
    }

    /// Records the repo digest (a tag in `reference` is ignored) for `id`, which must be recorded.
    pub fn add_repo_digest(
        &mut self,
        reference: &Reference,
        id: &Digest,
    ) -> Result<Option<Digest>, MetadataError> {
        let key = digest_key(reference)?;
        self.require_image(id)?;
        let previous = self
            .refs(REPO_DIGESTS)?
            .insert(key.as_str(), id.as_ref())
            .map_err(db("insert repo digest"))?
            .map(|v| v.value().to_string());
        previous.map(|p| parse_id(&key, &p)).transpose()
    }

    pub fn remove_repo_digest(
        &mut self,
        reference: &Reference,
    ) -> Result<Option<Digest>, MetadataError> {
        let key = digest_key(reference)?;
        let previous = self
            .refs(REPO_DIGESTS)?
            .remove(key.as_str())
            .map_err(db("remove repo digest"))?
            .map(|v| v.value().to_string());
        previous.map(|p| parse_id(&key, &p)).transpose()
    }

    pub fn tags_of(&self, id: &Digest) -> Result<Vec<Reference>, MetadataError> {
        refs_of(&self.refs(TAGS)?, id)
    }

    pub fn repo_digests_of(&self, id: &Digest) -> Result<Vec<Reference>, MetadataError> {
        refs_of(&self.refs(REPO_DIGESTS)?, id)
    }

    /// [`MetadataStore::resolve`] inside the transaction (sees its uncommitted changes).
    pub fn resolve(&self, name_or_id: &str) -> Result<Digest, MetadataError> {
        let images = self.images()?;
        let tags = self.refs(TAGS)?;
        let digests = self.refs(REPO_DIGESTS)?;
        resolve(&images, &tags, &digests, name_or_id)
    }
}

/// The key of a tag: the full reference `domain/path:tag`.
fn tag_key(reference: &Reference) -> Result<String, MetadataError> {
    match (reference.tag(), reference.digest()) {
        (Some(_), None) => Ok(reference.to_string()),
        _ => Err(MetadataError::NotATag {
            reference: reference.to_string(),
        }),
    }
}

/// The key of a repo digest: `domain/path@digest`.
fn digest_key(reference: &Reference) -> Result<String, MetadataError> {
    match reference.digest() {
        Some(d) => Ok(reference
            .without_tag_or_digest()
            .with_digest(d.clone())
            .to_string()),
        None => Err(MetadataError::NotADigest {
            reference: reference.to_string(),
        }),
    }
}

fn parse_id(key: &str, value: &str) -> Result<Digest, MetadataError> {
    value.parse().map_err(|e| MetadataError::Corrupt {
        key: key.to_string(),
        reason: format!("{value:?} is not a digest: {e}"),
    })
}

fn decode(key: &str, bytes: &[u8]) -> Result<ImageRecord, MetadataError> {
    serde_json::from_slice(bytes).map_err(|e| MetadataError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn get_image(
    images: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &Digest,
) -> Result<Option<ImageRecord>, MetadataError> {
    match images.get(id.as_ref()).map_err(db("get image"))? {
        Some(v) => decode(id.as_ref(), v.value()).map(Some),
        None => Ok(None),
    }
}

fn list_images(
    images: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<ImageRecord>, MetadataError> {
    let mut out = Vec::new();
    for entry in images.iter().map_err(db("list images"))? {
        let (k, v) = entry.map_err(db("list images"))?;
        out.push(decode(k.value(), v.value())?);
    }
    Ok(out)
}

fn refs_of(
    table: &impl ReadableTable<&'static str, &'static str>,
    id: &Digest,
) -> Result<Vec<Reference>, MetadataError> {
    let mut out = Vec::new();
    for entry in table.iter().map_err(db("list references"))? {
        let (k, v) = entry.map_err(db("list references"))?;
        if v.value() == id.as_ref() {
            let r = Reference::parse_named(k.value()).map_err(|e| MetadataError::Corrupt {
                key: k.value().to_string(),
                reason: e.to_string(),
            })?;
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.to_string());
    Ok(out)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Docker's lookup order: `sha256:<hex prefix>` is an ID; otherwise a reference (tag, or repo
/// digest) is tried first, then a bare hex string as an ID prefix.
fn resolve(
    images: &impl ReadableTable<&'static str, &'static [u8]>,
    tags: &impl ReadableTable<&'static str, &'static str>,
    digests: &impl ReadableTable<&'static str, &'static str>,
    name: &str,
) -> Result<Digest, MetadataError> {
    let not_found = || MetadataError::NoSuchImage {
        name: name.to_string(),
    };
    if let Some(hex) = name.strip_prefix("sha256:") {
        if !is_hex(hex) {
            return Err(not_found());
        }
        return find_by_prefix(images, hex)?.ok_or_else(not_found);
    }
    let reference = Reference::parse(name);
    if let Ok(r) = &reference {
        let found = match r.digest() {
            Some(_) => digests
                .get(digest_key(r)?.as_str())
                .map_err(db("get repo digest"))?
                .map(|v| v.value().to_string()),
            None => tags
                .get(tag_key(r)?.as_str())
                .map_err(db("get tag"))?
                .map(|v| v.value().to_string()),
        };
        if let Some(id) = found {
            return parse_id(name, &id);
        }
    }
    if is_hex(name) {
        return find_by_prefix(images, name)?.ok_or_else(not_found);
    }
    match reference {
        Ok(_) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// The image whose sha256 ID starts with `hex`; an error if several do.
fn find_by_prefix(
    images: &impl ReadableTable<&'static str, &'static [u8]>,
    hex: &str,
) -> Result<Option<Digest>, MetadataError> {
    let start = format!("sha256:{hex}");
    let mut matches = Vec::new();
    for entry in images.range(start.as_str()..).map_err(db("find image"))? {
        let (k, _) = entry.map_err(db("find image"))?;
        if !k.value().starts_with(&start) {
            break;
        }
        matches.push(k.value().to_string());
    }
    match matches.len() {
        0 => Ok(None),
        1 => parse_id(&matches[0], &matches[0]).map(Some),
        n => Err(MetadataError::Ambiguous {
            prefix: hex.to_string(),
            matches: n,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn id_hex(hex: &str) -> Digest {
        format!("sha256:{hex}").parse().unwrap()
    }

    fn record(id: &Digest) -> ImageRecord {
        ImageRecord {
            id: id.clone(),
            manifest: ManifestRef {
                digest: berth_core::sha256_digest(id.as_ref().as_bytes()),
                media_type: crate::manifest::OCI_MANIFEST.to_string(),
                size: 123,
            },
            index: None,
            created: 1_700_000_000,
            size: 4096,
            last_tag_time: None,
        }
    }

    fn store() -> (tempfile::TempDir, MetadataStore) {
        let dir = tempfile::Builder::new()
            .prefix("berth-metadata-")
            .tempdir()
            .unwrap();
        let store = MetadataStore::open(&dir.path().join("metadata.db")).unwrap();
        (dir, store)
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn records_round_trip_and_survive_reopen() {
        let dir = tempfile::Builder::new()
            .prefix("berth-metadata-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("metadata.db");
        let a = id('a');
        let mut rec = record(&a);
        rec.index = Some(id('f'));
        rec.last_tag_time = Some(5);
        {
            let store = MetadataStore::open(&path).unwrap();
            assert_eq!(store.get_image(&a).unwrap(), None);
            store.put_image(&rec).unwrap();
            store.set_tag(&r("busybox"), &a).unwrap();
        }
        let store = MetadataStore::open(&path).unwrap();
        assert_eq!(store.get_image(&a).unwrap(), Some(rec.clone()));
        assert_eq!(store.list_images().unwrap(), vec![rec]);
        assert_eq!(
            store.tags_of(&a).unwrap(),
            vec![r("docker.io/library/busybox:latest")]
        );
    }

    #[test]
    fn tags_move_and_report_the_previous_image() {
        let (_dir, store) = store();
        let (a, b) = (id('a'), id('b'));
        store.put_image(&record(&a)).unwrap();
        store.put_image(&record(&b)).unwrap();
        assert_eq!(store.set_tag(&r("busybox:1"), &a).unwrap(), None);
        assert_eq!(store.set_tag(&r("busybox:1"), &b).unwrap(), Some(a.clone()));
        assert!(store.tags_of(&a).unwrap().is_empty());
        assert_eq!(store.tags_of(&b).unwrap(), vec![r("busybox:1")]);
        assert_eq!(store.remove_tag(&r("busybox:1")).unwrap(), Some(b.clone()));
        assert_eq!(store.remove_tag(&r("busybox:1")).unwrap(), None);
    }

    #[test]
    fn tags_need_an_image_and_a_tag() {
        let (_dir, store) = store();
        let a = id('a');
        let err = store.set_tag(&r("busybox"), &a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        store.put_image(&record(&a)).unwrap();
        let digested = r(&format!("busybox@{}", id('c')));
        assert!(matches!(
            store.set_tag(&digested, &a).unwrap_err(),
            MetadataError::NotATag { .. }
        ));
        assert!(matches!(
            store.add_repo_digest(&r("busybox:1"), &a).unwrap_err(),
            MetadataError::NotADigest { .. }
        ));
    }

    #[test]
    fn delete_removes_tags_and_digests_in_one_go() {
        let (_dir, store) = store();
        let (a, b) = (id('a'), id('b'));
        store.put_image(&record(&a)).unwrap();
        store.put_image(&record(&b)).unwrap();
        store.set_tag(&r("one"), &a).unwrap();
        store.set_tag(&r("two:x"), &a).unwrap();
        store.set_tag(&r("other"), &b).unwrap();
        let digest_ref = r(&format!("one@{}", id('d')));
        store.add_repo_digest(&digest_ref, &a).unwrap();
        assert_eq!(store.repo_digests_of(&a).unwrap(), vec![digest_ref.clone()]);
        store.delete_image(&a).unwrap();
        assert_eq!(store.get_image(&a).unwrap(), None);
        assert!(store.tags_of(&a).unwrap().is_empty());
        assert!(store.repo_digests_of(&a).unwrap().is_empty());
        assert_eq!(
            store.resolve("one").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(store.resolve("other").unwrap(), b);
        assert_eq!(
            store.delete_image(&a).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let (_dir, store) = store();
        let a = id('a');
        let err = store
            .transaction(|txn| {
                txn.put_image(&record(&a))?;
                txn.set_tag(&r("busybox"), &a)?;
                assert_eq!(
                    txn.resolve("busybox")?,
                    a,
                    "the transaction sees its own writes"
                );
                // A tag for an image that does not exist fails the whole transaction.
                txn.set_tag(&r("ghost"), &id('e'))?;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(store.get_image(&a).unwrap(), None);
        assert!(store.resolve("busybox").is_err());

        store
            .transaction(|txn| {
                txn.put_image(&record(&a))?;
                txn.set_tag(&r("busybox"), &a)?;
                txn.add_repo_digest(&r(&format!("busybox@{}", id('d'))), &a)?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.resolve("busybox").unwrap(), a);
    }

    #[test]
    fn resolve_follows_dockers_rules() {
        let (_dir, store) = store();
        let a = id_hex(&format!("abc1{}", "0".repeat(60)));
        let b = id_hex(&format!("abc2{}", "0".repeat(60)));
        store.put_image(&record(&a)).unwrap();
        store.put_image(&record(&b)).unwrap();
        store.set_tag(&r("busybox"), &a).unwrap();
        store.set_tag(&r("localhost:5000/me/app:1.0"), &b).unwrap();
        let manifest = id('d');
        store
            .add_repo_digest(&r(&format!("me/app@{manifest}")), &b)
            .unwrap();

        // References, normalised.
        assert_eq!(store.resolve("busybox").unwrap(), a);
        assert_eq!(store.resolve("busybox:latest").unwrap(), a);
        assert_eq!(
            store.resolve("docker.io/library/busybox:latest").unwrap(),
            a
        );
        assert_eq!(store.resolve("localhost:5000/me/app:1.0").unwrap(), b);
        assert_eq!(
            store
                .resolve(&format!("docker.io/me/app@{manifest}"))
                .unwrap(),
            b
        );
        // Full IDs, with or without the algorithm, and unique prefixes.
        assert_eq!(store.resolve(a.as_ref()).unwrap(), a);
        assert_eq!(store.resolve(a.digest()).unwrap(), a);
        assert_eq!(store.resolve("abc1").unwrap(), a);
        assert_eq!(store.resolve("sha256:abc2").unwrap(), b);
        // Ambiguous and unknown.
        let err = store.resolve("abc").unwrap_err();
        assert!(
            matches!(err, MetadataError::Ambiguous { matches: 2, .. }),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = store.resolve("sha256:ab").unwrap_err();
        assert!(matches!(err, MetadataError::Ambiguous { .. }), "{err}");
        let err = store.resolve("nginx").unwrap_err();
        assert_eq!(err.to_string(), "No such image: nginx");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(
            store.resolve("abd").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store.resolve("sha256:xyz").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store.resolve("Bad!Name").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn a_tag_named_like_a_prefix_wins_over_the_prefix() {
        let (_dir, store) = store();
        let a = id('a');
        let b = id('b');
        store.put_image(&record(&a)).unwrap();
        store.put_image(&record(&b)).unwrap();
        // `docker tag <b> aaaa` then `docker inspect aaaa`: the tag, not the ID prefix.
        store.set_tag(&r("aaaa"), &b).unwrap();
        assert_eq!(store.resolve("aaaa").unwrap(), b);
        assert_eq!(store.resolve("aaaaa").unwrap(), a);
    }

    #[test]
    fn concurrent_writers_are_serialised() {
        let (_dir, store) = store();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let d = berth_core::sha256_digest(format!("{t}-{i}").as_bytes());
                        store
                            .transaction(|txn| {
                                txn.put_image(&record(&d))?;
                                txn.set_tag(&r(&format!("t{t}:v{i}")), &d)?;
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.list_images().unwrap().len(), 40);
        assert_eq!(
            store.resolve("t3:v9").unwrap(),
            berth_core::sha256_digest(b"3-9")
        );
    }
}
