//! Container ids and names: 64 random hex digits, and Docker-style `adjective_name` names.

use std::io::Read;

/// A new 64-hex-digit id from the kernel's random source; never all digits (Docker avoids
/// ids that look like numbers, which some tools would misread).
pub fn new_id() -> String {
    loop {
        let mut b = [0u8; 32];
        getrandom(&mut b);
        let id = hex::encode(b);
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

fn getrandom(buf: &mut [u8]) {
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    // /dev/urandom missing (a very bare chroot): the getrandom syscall.
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert_eq!(n as usize, buf.len(), "no source of randomness");
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

const LEFT: &[&str] = &[
    "admiring",
    "agitated",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "focused",
    "friendly",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "nice",
    "nifty",
    "optimistic",
    "peaceful",
    "practical",
    "priceless",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "strange",
    "sweet",
    "tender",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "archimedes",
    "babbage",
    "bardeen",
    "bell",
    "bhabha",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "jemison",
    "johnson",
    "kepler",
    "knuth",
    "lamport",
    "leakey",
    "lovelace",
    "mayer",
    "mccarthy",
    "meitner",
    "mendel",
    "morse",
    "newton",
    "noether",
    "pascal",
    "pike",
    "ritchie",
    "shannon",
    "sinoussi",
    "thompson",
    "torvalds",
    "turing",
    "wescoff",
    "wilson",
    "wozniak",
    "yalow",
];

/// A random `adjective_scientist` name, as Docker makes them.
pub fn random_name() -> String {
    let mut b = [0u8; 4];
    getrandom(&mut b);
    let l = LEFT[u16::from_le_bytes([b[0], b[1]]) as usize % LEFT.len()];
    let r = RIGHT[u16::from_le_bytes([b[2], b[3]]) as usize % RIGHT.len()];
    format!("{l}_{r}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_id());
        assert!(valid("web-1.a_b"));
        assert!(!valid("-web"));
        assert!(!valid("a"));
        assert!(!valid("we b"));
        assert!(valid(&random_name()));
    }
}
