//! Which paths are mount points, from `/proc/self/mountinfo`.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Every mount point of this process's mount namespace, in mount order.
pub(crate) fn mount_points() -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse(&text))
}

/// The mount points at `dir` or below it. `dir` must be canonical, as the kernel lists them.
pub(crate) fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect())
}

/// Field 5 of each line: the mount point, with `\040`-style octal escapes decoded.
fn parse(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field.as_bytes()))))
        .collect()
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unescapes_mount_points() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:35 / /var/lib/my\\040vol/_data rw - tmpfs tmpfs rw,size=1024k\n\
                    41 22 0:36 / /tmp/a\\134b\\011c rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse(text),
            vec![
                PathBuf::from("/"),
                PathBuf::from("/var/lib/my vol/_data"),
                PathBuf::from("/tmp/a\\b\tc"),
            ]
        );
        assert_eq!(unescape(b"a\\04"), b"a\\04".to_vec());
        assert_eq!(unescape(b"\\999"), b"\\999".to_vec());
    }

    #[test]
    fn this_process_has_a_root_mount() {
        assert!(mount_points().unwrap().contains(&PathBuf::from("/")));
    }
}
