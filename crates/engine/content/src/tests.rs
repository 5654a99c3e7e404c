use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::Duration;

use sha2::Digest as _;

use super::*;

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::Builder::new()
        .prefix("berth-content-")
        .tempdir()
        .unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Deterministic, non-repeating-looking test bytes.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn sha256(bytes: &[u8]) -> Digest {
    berth_core::sha256_digest(bytes)
}

fn sha512(bytes: &[u8]) -> Digest {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
        .parse()
        .unwrap()
}

fn content_err(e: &io::Error) -> &ContentError {
    ContentError::from_io(e).expect("a content error inside the io error")
}

#[test]
fn put_read_and_idempotence() {
    let (_dir, store) = store();
    let bytes = br#"{"schemaVersion":2}"#;
    let d = store.put(bytes, None).unwrap();
    assert_eq!(d, sha256(bytes));
    assert!(store.contains(&d));
    assert_eq!(store.size(&d).unwrap(), bytes.len() as u64);
    assert_eq!(store.read_blob(&d, 1024).unwrap(), bytes);
    assert_eq!(store.put(bytes, Some(&d)).unwrap(), d);
    assert_eq!(
        store.list().unwrap(),
        vec![BlobInfo {
            digest: d.clone(),
            size: bytes.len() as u64
        }]
    );
    assert!(store.ingests().unwrap().is_empty());
    let mut s = String::new();
    store.open_blob(&d).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s.as_bytes(), bytes);
}

#[test]
fn sha512_blobs_are_verified_with_sha512() {
    let (_dir, store) = store();
    let bytes = pattern(3 << 20, 7);
    let d = sha512(&bytes);
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    w.write_all(&bytes).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert_eq!(
        store.blob_path(&d),
        store.root().join("blobs/sha512").join(d.digest())
    );
    assert_eq!(store.read_blob(&d, 4 << 20).unwrap(), bytes);

    let small = b"sha512 put";
    let d2 = sha512(small);
    assert_eq!(store.put(small, Some(&d2)).unwrap(), d2);
    let wrong = sha512(b"something else");
    let err = store.put(small, Some(&wrong)).unwrap_err();
    assert!(
        matches!(&err, ContentError::DigestMismatch { expected, actual } if *expected == wrong && *actual == d2)
    );
}

#[test]
fn put_refuses_bytes_that_do_not_match() {
    let (_dir, store) = store();
    let claimed = sha256(b"the real thing");
    let err = store.put(b"an impostor", Some(&claimed)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let msg = err.to_string();
    assert!(msg.contains(&claimed.to_string()), "{msg}");
    assert!(msg.contains(&sha256(b"an impostor").to_string()), "{msg}");
    assert!(!store.contains(&claimed));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn unsupported_algorithms_are_refused() {
    let (_dir, store) = store();
    let d: Digest = "md5:d41d8cd98f00b204e9800998ecf8427e".parse().unwrap();
    let err = store.writer(&d, None).unwrap_err();
    assert!(
        matches!(err, ContentError::UnsupportedAlgorithm { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(store.put(b"x", Some(&d)).is_err());
}

#[test]
fn missing_blobs_are_not_found() {
    let (_dir, store) = store();
    let d = sha256(b"absent");
    assert!(!store.contains(&d));
    assert_eq!(store.size(&d).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(store.open_blob(&d).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store.read_blob(&d, 10).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.delete(&d).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn delete_and_list() {
    let (_dir, store) = store();
    let a = store.put(b"a", None).unwrap();
    let b = store.put(b"bb", None).unwrap();
    // Junk under blobs/ is not a blob.
    fs::write(store.root().join("blobs/sha256/not-a-digest"), b"junk").unwrap();
    let mut expected = vec![
        BlobInfo {
            digest: a.clone(),
            size: 1,
        },
        BlobInfo {
            digest: b.clone(),
            size: 2,
        },
    ];
    expected.sort_by(|x, y| x.digest.as_ref().cmp(y.digest.as_ref()));
    assert_eq!(store.list().unwrap(), expected);
    store.delete(&a).unwrap();
    assert!(!store.contains(&a));
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.contains(&b));
}

#[test]
fn read_blob_refuses_big_blobs_and_detects_corruption() {
    let (_dir, store) = store();
    let bytes = pattern(4096, 1);
    let d = store.put(&bytes, None).unwrap();
    let err = store.read_blob(&d, 4095).unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::TooLarge {
                size: 4096,
                max: 4095,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("4095"), "{err}");
    // Someone tampers with the file behind the store's back.
    fs::write(store.blob_path(&d), b"tampered").unwrap();
    let err = store.read_blob(&d, 1 << 20).unwrap_err();
    assert!(matches!(err, ContentError::Corrupt { .. }), "{err}");
}

#[test]
fn writer_commits_a_verified_blob() {
    let (_dir, store) = store();
    let bytes = pattern((5 << 20) + 123, 2);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    assert_eq!(w.offset(), 0);
    // Mixed write sizes: small (buffered) and big (direct).
    w.write_all(&bytes[..10]).unwrap();
    w.write_all(&bytes[10..(2 << 20)]).unwrap();
    for chunk in bytes[(2 << 20)..].chunks(64 << 10) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.offset(), bytes.len() as u64);
    assert!(!store.contains(&d), "nothing is visible before commit");
    assert_eq!(w.commit().unwrap(), d);
    assert!(store.contains(&d));
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), bytes);
    assert!(store.ingests().unwrap().is_empty());
    // A second writer for a stored blob is told it exists.
    let err = store.writer(&d, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

#[test]
fn writer_without_declared_size_still_verifies_digest() {
    let (_dir, store) = store();
    let bytes = pattern(1000, 3);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, None).unwrap();
    w.write_all(&bytes).unwrap();
    assert_eq!(w.commit().unwrap(), d);
}

#[test]
fn commit_with_wrong_bytes_names_both_digests_and_discards() {
    let (_dir, store) = store();
    let good = pattern(10_000, 4);
    let mut bad = good.clone();
    bad[5000] ^= 1;
    let d = sha256(&good);
    let mut w = store.writer(&d, Some(good.len() as u64)).unwrap();
    w.write_all(&bad).unwrap();
    let err = w.commit().unwrap_err();
    match &err {
        ContentError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, &d);
            assert_eq!(actual, &sha256(&bad));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains(&d.to_string()));
    assert!(!store.contains(&d));
    assert!(
        store.ingests().unwrap().is_empty(),
        "the bad ingest is discarded"
    );
    assert_eq!(store.writer(&d, None).unwrap().offset(), 0);
}

#[test]
fn truncated_content_fails_commit() {
    let (_dir, store) = store();
    let bytes = pattern(10_000, 5);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    w.write_all(&bytes[..9_999]).unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 10_000,
                actual: 9_999,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("10000") && err.to_string().contains("9999"));
    assert!(!store.contains(&d));
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn writing_past_the_declared_size_is_refused_at_once() {
    let (_dir, store) = store();
    let bytes = pattern(100, 6);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(100)).unwrap();
    w.write_all(&bytes[..60]).unwrap();
    let err = w.write(&bytes[..41]).unwrap_err();
    assert!(
        matches!(
            content_err(&err),
            ContentError::SizeExceeded {
                declared: 100,
                attempted: 101,
                ..
            }
        ),
        "{err}"
    );
    // Nothing of the refused write was taken; the writer can still finish correctly.
    assert_eq!(w.offset(), 60);
    w.write_all(&bytes[60..]).unwrap();
    assert_eq!(w.commit().unwrap(), d);
}

#[test]
fn a_lying_stream_never_grows_the_ingest_past_the_declared_size() {
    let (_dir, store) = store();
    let d = sha256(b"whatever");
    let mut w = store.writer(&d, Some(1 << 20)).unwrap();
    let chunk = vec![0u8; 300 << 10];
    let mut accepted = 0u64;
    // An endless stream: io::copy must stop with an error, not fill the disk.
    let mut endless = io::repeat(0).take(u64::MAX);
    let err = io::copy(&mut endless, &mut w).unwrap_err();
    assert!(matches!(
        content_err(&err),
        ContentError::SizeExceeded { .. }
    ));
    while w.write_all(&chunk).is_ok() {
        accepted += chunk.len() as u64;
    }
    assert_eq!(accepted, 0, "the writer is already at its declared size");
    assert_eq!(w.offset(), 1 << 20);
    drop(w);
    assert_eq!(store.ingests().unwrap()[0].offset, 1 << 20);
}

#[test]
fn absurd_declared_sizes_are_refused_before_any_byte() {
    let (_dir, store) = store();
    let d = sha256(b"huge");
    let err = store.writer(&d, Some(u64::MAX / 2)).unwrap_err();
    assert!(
        matches!(err, ContentError::InsufficientSpace { .. }),
        "{err}"
    );
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn a_dropped_writer_is_resumed_where_it_stopped() {
    let (_dir, store) = store();
    let bytes = pattern((3 << 20) + 17, 8);
    let d = sha256(&bytes);
    let half = bytes.len() / 2;
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    w.write_all(&bytes[..half]).unwrap();
    drop(w);
    assert!(!store.contains(&d));
    assert_eq!(
        store.ingests().unwrap(),
        vec![IngestInfo {
            digest: d.clone(),
            offset: half as u64
        }]
    );
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    assert_eq!(w.offset(), half as u64);
    w.write_all(&bytes[half..]).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), bytes);
}

#[test]
fn a_resumed_ingest_with_bad_bytes_fails_and_then_starts_over() {
    let (_dir, store) = store();
    let bytes = pattern(50_000, 9);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    w.write_all(&pattern(20_000, 10)).unwrap();
    drop(w);
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    assert_eq!(w.offset(), 20_000);
    w.write_all(&bytes[20_000..]).unwrap();
    assert!(matches!(
        w.commit().unwrap_err(),
        ContentError::DigestMismatch { .. }
    ));
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    assert_eq!(w.offset(), 0);
    w.write_all(&bytes).unwrap();
    assert_eq!(w.commit().unwrap(), d);
}

#[test]
fn an_ingest_longer_than_declared_is_discarded_on_resume() {
    let (_dir, store) = store();
    let bytes = pattern(1000, 11);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, None).unwrap();
    w.write_all(&pattern(5000, 12)).unwrap();
    drop(w);
    let w = store.writer(&d, Some(1000)).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn put_replaces_an_interrupted_ingest() {
    let (_dir, store) = store();
    let bytes = pattern(1000, 13);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, None).unwrap();
    w.write_all(&pattern(3000, 14)).unwrap();
    drop(w);
    assert_eq!(store.put(&bytes, Some(&d)).unwrap(), d);
    assert_eq!(store.read_blob(&d, 1000).unwrap(), bytes);
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn one_writer_per_digest_and_the_other_can_wait() {
    let (_dir, store) = store();
    let bytes = pattern(2 << 20, 15);
    let d = sha256(&bytes);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let d = d.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                store.writer(&d, Some(2 << 20))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (mut winners, losers): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let err = losers.into_iter().next().unwrap().unwrap_err();
    assert!(matches!(err, ContentError::WriterBusy { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let mut writer = winners.pop().unwrap().unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let store = store.clone();
        let d = d.clone();
        thread::spawn(move || {
            store.wait_writer(&d).unwrap();
            tx.send(store.contains(&d)).unwrap();
        })
    };
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "wait_writer returns only after the writer is done"
    );
    writer.write_all(&bytes).unwrap();
    writer.commit().unwrap();
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    waiter.join().unwrap();
    // The waiter sees the blob; a new writer is told it exists.
    assert_eq!(
        store.writer(&d, None).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
}

#[test]
fn a_waiter_may_take_over_after_the_first_writer_gives_up() {
    let (_dir, store) = store();
    let bytes = pattern(100_000, 16);
    let d = sha256(&bytes);
    let mut first = store.writer(&d, Some(100_000)).unwrap();
    first.write_all(&bytes[..40_000]).unwrap();
    let second = {
        let store = store.clone();
        let d = d.clone();
        thread::spawn(move || {
            store.wait_writer(&d).unwrap();
            store.writer(&d, Some(100_000)).map(|w| w.offset())
        })
    };
    thread::sleep(Duration::from_millis(50));
    drop(first);
    assert_eq!(second.join().unwrap().unwrap(), 40_000);
}

#[test]
fn concurrent_puts_of_the_same_bytes_all_succeed() {
    let (_dir, store) = store();
    let bytes = Arc::new(pattern(3 << 20, 17));
    let d = sha256(&bytes);
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let bytes = bytes.clone();
            let d = d.clone();
            thread::spawn(move || store.put(&bytes, Some(&d)))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), d);
    }
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), *bytes);
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn a_follower_tails_the_ingest_and_ends_at_commit() {
    let (_dir, store) = store();
    let bytes = pattern((4 << 20) + 5, 18);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    let mut follower = w.follower();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut first = [0u8; 16];
        follower.read_exact(&mut first).unwrap();
        tx.send(()).unwrap();
        let mut rest = Vec::new();
        follower.read_to_end(&mut rest).unwrap();
        let mut all = first.to_vec();
        all.extend(rest);
        all
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "the follower blocks while nothing is written"
    );
    w.write_all(&bytes[..100]).unwrap();
    w.flush().unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the follower sees flushed bytes");
    for chunk in bytes[100..].chunks(256 << 10) {
        w.write_all(chunk).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    assert!(!reader.is_finished(), "no EOF before commit");
    w.commit().unwrap();
    assert_eq!(reader.join().unwrap(), bytes);
}

#[test]
fn a_follower_of_a_resumed_ingest_starts_at_zero() {
    let (_dir, store) = store();
    let bytes = pattern(300_000, 19);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(300_000)).unwrap();
    w.write_all(&bytes[..120_000]).unwrap();
    drop(w);
    let mut w = store.writer(&d, Some(300_000)).unwrap();
    let mut follower = w.follower();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        follower.read_to_end(&mut all).map(|_| all)
    });
    w.write_all(&bytes[120_000..]).unwrap();
    w.commit().unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), bytes);
}

fn follower_error_after(end: impl FnOnce(Writer)) -> ContentError {
    let (_dir, store) = store();
    let bytes = pattern(10_000, 20);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(20_000)).unwrap();
    let mut follower = w.follower();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        follower.read_to_end(&mut all).unwrap_err()
    });
    w.write_all(&bytes).unwrap();
    w.flush().unwrap();
    thread::sleep(Duration::from_millis(20));
    end(w);
    let err = reader.join().unwrap();
    match ContentError::from_io(&err) {
        Some(ContentError::IngestFailed { reason, .. }) => ContentError::IngestFailed {
            digest: d,
            reason: reason.clone(),
        },
        _ => panic!("unexpected follower error {err}"),
    }
}

#[test]
fn a_follower_fails_when_the_ingest_is_aborted() {
    let err = follower_error_after(|w| w.abort().unwrap());
    assert!(err.to_string().contains("aborted"), "{err}");
}

#[test]
fn a_follower_fails_when_the_writer_is_dropped() {
    let err = follower_error_after(drop);
    assert!(err.to_string().contains("dropped"), "{err}");
}

#[test]
fn a_follower_fails_when_commit_fails() {
    let err = follower_error_after(|w| {
        w.commit().unwrap_err();
    });
    assert!(err.to_string().contains("size mismatch"), "{err}");
}

#[test]
fn abort_removes_the_ingest() {
    let (_dir, store) = store();
    let d = sha256(b"abc");
    let mut w = store.writer(&d, None).unwrap();
    w.write_all(b"ab").unwrap();
    w.abort().unwrap();
    assert!(store.ingests().unwrap().is_empty());
    assert_eq!(store.writer(&d, None).unwrap().offset(), 0);
}

#[test]
fn remove_ingest_respects_a_live_writer() {
    let (_dir, store) = store();
    let d = sha256(b"abc");
    let mut w = store.writer(&d, None).unwrap();
    w.write_all(b"ab").unwrap();
    w.flush().unwrap();
    assert_eq!(
        store.remove_ingest(&d).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    drop(w);
    store.remove_ingest(&d).unwrap();
    assert!(store.ingests().unwrap().is_empty());
}

const KILL_ROOT_ENV: &str = "BERTH_CONTENT_KILL_TEST_ROOT";
const KILL_TOTAL: usize = 16 << 20;
const KILL_CHUNK: usize = 64 << 10;

/// The child half of `kill_9_mid_ingest_leaves_a_loadable_store`: ingests slowly into the
/// store named by the environment until it is killed. Run only by that test.
#[test]
#[ignore = "helper process for kill_9_mid_ingest_leaves_a_loadable_store"]
fn kill_9_child_ingests_until_killed() {
    let root =
        std::env::var(KILL_ROOT_ENV).expect("run by kill_9_mid_ingest_leaves_a_loadable_store");
    let store = ContentStore::open(Path::new(&root)).unwrap();
    let bytes = pattern(KILL_TOTAL, 21);
    let d = sha256(&bytes);
    let mut w = store.writer(&d, Some(KILL_TOTAL as u64)).unwrap();
    let mut announced = false;
    for chunk in bytes.chunks(KILL_CHUNK) {
        w.write_all(chunk).unwrap();
        if !announced && w.offset() >= (1 << 20) {
            w.flush().unwrap();
            println!("READY {}", w.offset());
            io::stdout().flush().unwrap();
            announced = true;
        }
        thread::sleep(Duration::from_millis(3));
    }
    // Never reached in the test: 256 chunks take far longer than the parent waits.
    w.commit().unwrap();
}

#[test]
fn kill_9_mid_ingest_leaves_a_loadable_store() {
    let (dir, _) = store();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::kill_9_child_ingests_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_ROOT_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = loop {
        let line = lines
            .next()
            .expect("the child announces READY before exiting")
            .unwrap();
        // libtest may print the test name on the same line.
        if let Some(at) = line.find("READY ") {
            break line[at + "READY ".len()..].trim().to_string();
        }
    };
    assert!(ready.parse::<u64>().unwrap() >= 1 << 20);
    thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();

    let store = ContentStore::open(dir.path()).unwrap();
    let bytes = pattern(KILL_TOTAL, 21);
    let d = sha256(&bytes);
    assert!(!store.contains(&d), "no half blob under its digest");
    assert!(store.list().unwrap().is_empty());
    let ingests = store.ingests().unwrap();
    assert_eq!(ingests.len(), 1);
    assert!(ingests[0].offset < KILL_TOTAL as u64);

    // The dead child's lock is gone; the ingest resumes from what reached the file.
    let mut w = store.writer(&d, Some(KILL_TOTAL as u64)).unwrap();
    let resumed = w.offset() as usize;
    assert!(resumed >= 1 << 20, "resumed at {resumed}");
    let mut prefix = vec![0u8; resumed];
    w.follower().read_exact(&mut prefix).unwrap();
    assert!(
        prefix == bytes[..resumed],
        "the kept prefix is what the child wrote"
    );
    w.write_all(&bytes[resumed..]).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), bytes);
}

/// Ingesting costs little above hashing: run with
/// `cargo test -p berth-content --release -- --ignored ingest_costs_little_above_the_hash --nocapture`.
#[test]
#[ignore = "throughput check; meaningful only in release builds"]
fn ingest_costs_little_above_the_hash() {
    let (_dir, store) = store();
    let bytes = pattern(256 << 20, 22);
    let started = std::time::Instant::now();
    let d = sha256(&bytes);
    let hash_only = started.elapsed();
    let started = std::time::Instant::now();
    let mut w = store.writer(&d, Some(bytes.len() as u64)).unwrap();
    for chunk in bytes.chunks(256 << 10) {
        w.write_all(chunk).unwrap();
    }
    w.commit().unwrap();
    let ingest = started.elapsed();
    let mib = (bytes.len() >> 20) as f64;
    println!(
        "hash only: {:.0} MiB/s, ingest (hash + write + fsync + rename): {:.0} MiB/s",
        mib / hash_only.as_secs_f64(),
        mib / ingest.as_secs_f64()
    );
    assert!(
        ingest < hash_only * 4 + Duration::from_millis(500),
        "ingest took {ingest:?} for a {hash_only:?} hash"
    );
}

#[test]
fn handles_can_move_between_threads() {
    fn shared<T: Clone + Send + Sync + 'static>(_: &T) {}
    fn movable<T: Send + 'static>(_: &T) {}
    let (_dir, store) = store();
    shared(&store);
    let d = sha256(b"x");
    let w = store.writer(&d, Some(1)).unwrap();
    let follower = w.follower();
    movable(&w);
    movable(&follower);
    // A writer moved to another thread commits there; the follower reads here.
    let writer = thread::spawn(move || {
        let mut w = w;
        w.write_all(b"x").unwrap();
        w.commit().unwrap()
    });
    let mut follower = follower;
    let mut got = Vec::new();
    follower.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"x");
    assert_eq!(writer.join().unwrap(), d);
}
