//! Compression: detection by magic bytes and round trips.

use std::io::{Read, Write};

use berth_archive::{compress, decompress, ArchiveError, Compression};
use berth_core::{ErrorKind, HasKind};

fn sample() -> Vec<u8> {
    (0..300_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect()
}

#[test]
fn detects_magic_bytes() {
    assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
        Compression::Zstd
    );
    assert_eq!(Compression::detect(b"usr/bin"), Compression::None);
    assert_eq!(Compression::detect(&[0x1f]), Compression::None);
    assert_eq!(Compression::detect(&[]), Compression::None);
}

#[test]
fn every_compression_round_trips() {
    let data = sample();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut w = compress(Vec::new(), c).unwrap();
        w.write_all(&data).unwrap();
        let packed = w.finish().unwrap();
        assert_eq!(Compression::detect(&packed), c);
        if c != Compression::None {
            assert!(packed.len() < data.len() / 2, "{c:?} compresses");
        }
        let (found, mut r) = decompress(&packed[..]).unwrap();
        assert_eq!(found, c);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "{c:?}");
    }
}

#[test]
fn concatenated_gzip_members_are_one_stream() {
    let mut packed = Vec::new();
    for part in [&b"first "[..], b"second"] {
        let mut w = compress(Vec::new(), Compression::Gzip).unwrap();
        w.write_all(part).unwrap();
        packed.extend(w.finish().unwrap());
    }
    let (_, mut r) = decompress(&packed[..]).unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "first second");
}

#[test]
fn short_and_corrupt_inputs() {
    let (c, mut r) = decompress(&b"ab"[..]).unwrap();
    assert_eq!(c, Compression::None);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"ab");

    let mut w = compress(Vec::new(), Compression::Gzip).unwrap();
    w.write_all(&sample()).unwrap();
    let mut packed = w.finish().unwrap();
    let mid = packed.len() / 2;
    packed[mid..mid + 64].fill(0xff);
    let (_, r) = decompress(&packed[..]).unwrap();
    let err =
        berth_archive::apply_layer(r, tempfile::tempdir().unwrap().path(), &Default::default())
            .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Read(_) | ArchiveError::Malformed { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
