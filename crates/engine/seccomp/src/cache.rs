//! A cache of compiled programs, so a container does not pay libseccomp's compile time again
//! for a profile an earlier container already used.
//!
//! libseccomp needs about 20 ms to build podman's default profile for x86-64, x86 and x32
//! (most of it generating the BPF), against a budget of about 15 ms for a whole `run`. The
//! program is a pure function of the profile, the libseccomp version, the native architecture
//! and this crate, so [`SeccompProgram::compile_cached`] keeps it in a file named by a hash of
//! those, under a directory the runtime owns (e.g. `/run/berth-runc/seccomp`).
//!
//! An entry holds its whole key, compared byte for byte on every hit, so the hash only picks
//! the file. The checks that do not need libseccomp (actions, errno values, arguments, notify,
//! and the kernel's answer on the flags) run on every call, hit or miss; a profile libseccomp
//! refuses is never stored, so it fails again on every call. Entries are never pruned: there is
//! one per distinct profile. The directory and its entries must belong to the effective user and
//! be writable by nobody else; otherwise the cache is not used (a planted entry could loosen the
//! filter).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use crate::error::SeccompError;
use crate::program::{CheckedProfile, SeccompProgram, BPF_MAXINSNS};

/// Bump when the program a profile compiles to changes for the same crate version.
const CACHE_FORMAT: &str = "berth-seccomp-cache 1";

/// The largest entry read back: a full-size program plus a generous key.
const MAX_ENTRY_BYTES: u64 = (BPF_MAXINSNS * 8 + (4 << 20)) as u64;

/// Where [`SeccompProgram::compile_cached`] got its program from.
#[derive(Debug)]
pub enum CacheOutcome {
    /// Read from the cache.
    Hit,
    /// Compiled, and stored for the next container.
    Stored,
    /// Compiled; the cache could not be used, for this reason (worth a debug log, not a
    /// failure: the program is the same).
    Bypassed(io::Error),
}

impl SeccompProgram {
    /// [`Self::compile`], reusing the program compiled earlier for the same profile from
    /// `cache_dir` (created, mode 0700, if missing). Fails exactly when `compile` would.
    pub fn compile_cached(
        seccomp: &LinuxSeccomp,
        cache_dir: &Path,
    ) -> Result<(Self, CacheOutcome), SeccompError> {
        let checked = CheckedProfile::check(seccomp)?;
        let key = match cache_key(seccomp) {
            Ok(key) => key,
            Err(error) => {
                let (instructions, unknown) = checked.build()?;
                return Ok((
                    checked.into_program(instructions, unknown),
                    CacheOutcome::Bypassed(error),
                ));
            }
        };
        if let Err(error) = trusted_dir(cache_dir) {
            let (instructions, unknown) = checked.build()?;
            return Ok((
                checked.into_program(instructions, unknown),
                CacheOutcome::Bypassed(error),
            ));
        }
        let path = cache_dir.join(format!("{:016x}.bpf", fnv1a(&key)));
        // An entry that cannot be read is replaced like a missing one.
        if let Ok(Some((instructions, unknown))) = read_entry(&path, &key) {
            return Ok((
                checked.into_program(instructions, unknown),
                CacheOutcome::Hit,
            ));
        }
        let (instructions, unknown) = checked.build()?;
        let outcome = match write_entry(&path, &key, &instructions, &unknown) {
            Ok(()) => CacheOutcome::Stored,
            Err(error) => CacheOutcome::Bypassed(error),
        };
        Ok((checked.into_program(instructions, unknown), outcome))
    }
}

/// Everything the compiled program depends on.
fn cache_key(seccomp: &LinuxSeccomp) -> io::Result<Vec<u8>> {
    let mut key = format!(
        "{CACHE_FORMAT}\n{} {}\nlibseccomp {}\nnative {:?}\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        crate::features::libseccomp_version(),
        libseccomp::ScmpArch::native(),
    )
    .into_bytes();
    serde_json::to_writer(&mut key, seccomp)?;
    Ok(key)
}

/// 64-bit FNV-1a: names the entry file; correctness rests on the stored key, not on this.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates `dir` if missing, and checks it is ours and writable only by us.
fn trusted_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        Err(error) => return Err(error),
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(untrusted(dir, "is not a directory"));
    }
    check_owner(dir, &meta)
}

/// Checks `meta` belongs to the effective user and is not writable by group or others.
fn check_owner(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(untrusted(path, "belongs to another user"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(path, "is writable by group or others"));
    }
    Ok(())
}

fn untrusted(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("seccomp cache {} {why}", path.display()),
    )
}

fn corrupt(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("seccomp cache entry {} {why}", path.display()),
    )
}

/// A cached program and the syscall names that were unknown when it was built.
type Entry = (Vec<libc::sock_filter>, Vec<String>);

/// Reads the entry at `path`: `None` if there is none, or it holds another key (a hash
/// collision, overwritten by the caller).
///
/// Layout: the key's length (u64 LE) and bytes, the number of unknown syscall names (u64 LE)
/// and each name's length and bytes, then the instructions (8 bytes each, host order) to the
/// end of the file.
fn read_entry(path: &Path, key: &[u8]) -> io::Result<Option<Entry>> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let meta = file.metadata()?;
    check_owner(path, &meta)?;
    if !meta.is_file() || meta.len() > MAX_ENTRY_BYTES {
        return Err(corrupt(path, "is not a regular file of a sane size"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)?;

    let mut rest = bytes.as_slice();
    let stored_key = take_chunk(&mut rest).ok_or_else(|| corrupt(path, "is truncated"))?;
    if stored_key != key {
        return Ok(None);
    }
    let count = take_u64(&mut rest).ok_or_else(|| corrupt(path, "is truncated"))?;
    let mut unknown = Vec::new();
    for _ in 0..count {
        let name = take_chunk(&mut rest).ok_or_else(|| corrupt(path, "is truncated"))?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| corrupt(path, "holds a syscall name that is not UTF-8"))?;
        unknown.push(name);
    }
    if rest.is_empty() || rest.len() % 8 != 0 || rest.len() / 8 > BPF_MAXINSNS {
        return Err(corrupt(path, "holds no whole BPF program"));
    }
    let instructions = rest
        .chunks_exact(8)
        .map(|raw| libc::sock_filter {
            code: u16::from_ne_bytes([raw[0], raw[1]]),
            jt: raw[2],
            jf: raw[3],
            k: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
        })
        .collect();
    Ok(Some((instructions, unknown)))
}

fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    let (head, tail) = rest.split_first_chunk::<8>()?;
    *rest = tail;
    Some(u64::from_le_bytes(*head))
}

fn take_chunk<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u64(rest)?).ok()?;
    if rest.len() < len {
        return None;
    }
    let (chunk, tail) = rest.split_at(len);
    *rest = tail;
    Some(chunk)
}

/// Writes the entry to a temporary file next to `path` and renames it over `path`, so a
/// reader sees the old entry or the new one, never half of one.
fn write_entry(
    path: &Path,
    key: &[u8],
    instructions: &[libc::sock_filter],
    unknown: &[String],
) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(key.len() + instructions.len() * 8 + 64);
    let put_chunk = |bytes: &mut Vec<u8>, chunk: &[u8]| {
        bytes.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        bytes.extend_from_slice(chunk);
    };
    put_chunk(&mut bytes, key);
    bytes.extend_from_slice(&(unknown.len() as u64).to_le_bytes());
    for name in unknown {
        put_chunk(&mut bytes, name.as_bytes());
    }
    for instruction in instructions {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.extend_from_slice(&[instruction.jt, instruction.jf]);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }

    let temporary = temporary_path(path);
    // Left behind by a process that had our pid and died mid-write.
    let _ = fs::remove_file(&temporary);
    let written = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&temporary)?;
        file.write_all(&bytes)?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    /// What a program is made of: instructions, unknown names, kernel flags.
    type Fields<'a> = (Vec<(u16, u8, u8, u32)>, &'a [String], libc::c_ulong);

    fn fields(program: &SeccompProgram) -> Fields<'_> {
        (
            program
                .instructions
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect(),
            program.unknown_syscalls(),
            program.kernel_flags,
        )
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("berth-seccomp-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_hit_gives_the_program_a_compile_gives() {
        let dir = scratch_dir("hit").join("nested");
        let seccomp = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                { "names": ["read", "write", "berth_unknown"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] }
            ]
        }));
        let fresh = SeccompProgram::compile(&seccomp).unwrap();
        let (first, outcome) = SeccompProgram::compile_cached(&seccomp, &dir).unwrap();
        assert!(matches!(outcome, CacheOutcome::Stored), "{outcome:?}");
        let (second, outcome) = SeccompProgram::compile_cached(&seccomp, &dir).unwrap();
        assert!(matches!(outcome, CacheOutcome::Hit), "{outcome:?}");
        assert_eq!(fields(&fresh), fields(&first));
        assert_eq!(fields(&fresh), fields(&second));
        assert_eq!(second.unknown_syscalls(), ["berth_unknown"]);
        assert_eq!(
            fs::metadata(&dir).unwrap().mode() & 0o777,
            0o700,
            "created private"
        );

        // Another profile gets its own entry.
        let other = profile(serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW" }));
        let (_, outcome) = SeccompProgram::compile_cached(&other, &dir).unwrap();
        assert!(matches!(outcome, CacheOutcome::Stored), "{outcome:?}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn corrupt_or_colliding_entries_are_replaced() {
        let dir = scratch_dir("corrupt");
        let seccomp = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
        }));
        let (fresh, _) = SeccompProgram::compile_cached(&seccomp, &dir).unwrap();
        let entry = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();

        let bytes = fs::read(&entry).unwrap();
        fs::write(&entry, &bytes[..bytes.len() - 3]).unwrap();
        let (again, outcome) = SeccompProgram::compile_cached(&seccomp, &dir).unwrap();
        assert!(matches!(outcome, CacheOutcome::Stored), "{outcome:?}");
        assert_eq!(fields(&fresh), fields(&again));

        // Same file name, different key: a collision is a miss, never another profile's program.
        let mut other_key = bytes.clone();
        other_key[20] ^= 0xff;
        fs::write(&entry, &other_key).unwrap();
        let (again, outcome) = SeccompProgram::compile_cached(&seccomp, &dir).unwrap();
        assert!(matches!(outcome, CacheOutcome::Stored), "{outcome:?}");
        assert_eq!(fields(&fresh), fields(&again));
        assert_eq!(fs::read(&entry).unwrap(), bytes);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch_dir("shared");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let seccomp = profile(serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW" }));
        let (_, outcome) = SeccompProgram::compile_cached(&seccomp, &dir).unwrap();
        assert!(
            matches!(&outcome, CacheOutcome::Bypassed(e) if e.kind() == io::ErrorKind::PermissionDenied),
            "{outcome:?}"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_profile_fails_even_with_a_cache() {
        let dir = scratch_dir("bad");
        let bad =
            profile(serde_json::json!({ "defaultAction": "SCMP_ACT_LOG", "defaultErrnoRet": 1 }));
        assert!(matches!(
            SeccompProgram::compile_cached(&bad, &dir),
            Err(SeccompError::ErrnoRetUnused { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
