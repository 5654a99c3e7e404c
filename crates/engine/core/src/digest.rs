//! Digests: `oci_spec::image::Digest` is the one digest type of the engine; these are the
//! small helpers around it that every crate needs.

pub use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

/// The sha256 digest of `bytes`, as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let hex = hex::encode(Sha256::digest(bytes));
    format!("sha256:{hex}")
        .parse()
        .expect("a sha256 hex string is a valid digest")
}

/// The sha256 digest from an already computed 32-byte hash.
pub fn sha256_from_hash(hash: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(hash))
        .parse()
        .expect("a sha256 hex string is a valid digest")
}

/// The image chain id of a stack of layer diff ids (OCI image spec, "ChainID"):
/// `chain(L0) = diff(L0)`, `chain(L0..Ln) = sha256(chain(L0..Ln-1) + " " + diff(Ln))`.
/// Returns one chain id per layer, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256_digest(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256_digest(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a: Digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .parse()
            .unwrap();
        let b: Digest = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
            .parse()
            .unwrap();
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(format!("{a} {b}").as_bytes()));
        assert_ne!(ids[1], b);
    }
}
