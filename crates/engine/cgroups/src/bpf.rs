//! The cgroup v2 device filter: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, attached to the container's cgroup with
//! `BPF_CGROUP_DEVICE`. cgroup v2 has no devices controller files; the kernel
//! runs this program on every device open/mknod and denies access when it
//! returns 0.
//!
//! The program is generated from the emulated [`DeviceState`]: it loads the
//! request (type, access, major, minor) from `struct bpf_cgroup_dev_ctx`, then
//! tests one block per exception and finally returns the default:
//!
//! ```text
//! r2 = ctx->access_type & 0xffff        ; device type
//! r3 = ctx->access_type >> 16           ; requested access bits
//! r4 = ctx->major ; r5 = ctx->minor
//! block i:  if r2 != type goto block i+1
//!           (allow) if (r3 & acc) != r3 goto block i+1   ; every bit allowed
//!           (deny)  if (r3 & acc) == 0  goto block i+1   ; any bit denied
//!           if r4 != major goto block i+1                ; unless wildcard
//!           if r5 != minor goto block i+1                ; unless wildcard
//!           r0 = !default ; exit
//! last:     r0 = default ; exit
//! ```
//!
//! Loading and attaching use raw bpf(2): load, query what is attached now,
//! attach the new program with `BPF_F_ALLOW_MULTI`, then detach the old ones,
//! so an `update` never leaves the cgroup unfiltered.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::devices::{DevType, DeviceState, ACC_ALL};
use crate::error::{CgroupError, Result};

// struct bpf_cgroup_dev_ctx: device types and access bits (include/uapi/linux/bpf.h).
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

// bpf(2) commands.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// Opcodes (class | op | source).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst_reg:4 and src_reg:4 bitfields.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        // The C bitfields put dst_reg in the low nibble on little-endian
        // and in the high nibble on big-endian.
        #[cfg(target_endian = "little")]
        let regs = (src << 4) | (dst & 0x0f);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0x0f);
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
    const fn load_u32(dst: u8, src: u8, off: i16) -> Self {
        Self::new(LDX_MEM_W, dst, src, off, 0)
    }
    const fn and32(dst: u8, imm: i32) -> Self {
        Self::new(ALU32_AND_K, dst, 0, 0, imm)
    }
    const fn rsh32(dst: u8, imm: i32) -> Self {
        Self::new(ALU32_RSH_K, dst, 0, 0, imm)
    }
    const fn mov32_imm(dst: u8, imm: i32) -> Self {
        Self::new(ALU32_MOV_K, dst, 0, 0, imm)
    }
    const fn mov32_reg(dst: u8, src: u8) -> Self {
        Self::new(ALU32_MOV_X, dst, src, 0, 0)
    }
    const fn jne_imm(dst: u8, imm: i32) -> Self {
        Self::new(JMP_JNE_K, dst, 0, 0, imm)
    }
    const fn jeq_imm(dst: u8, imm: i32) -> Self {
        Self::new(JMP_JEQ_K, dst, 0, 0, imm)
    }
    const fn jne_reg(dst: u8, src: u8) -> Self {
        Self::new(JMP_JNE_X, dst, src, 0, 0)
    }
    const fn exit() -> Self {
        Self::new(JMP_EXIT, 0, 0, 0, 0)
    }
    fn is_jump(&self) -> bool {
        matches!(self.code, JMP_JEQ_K | JMP_JNE_K | JMP_JNE_X)
    }
}

/// Generate the filter program for a device policy.
pub(crate) fn device_program(state: &DeviceState) -> Vec<Insn> {
    let mut prog = vec![
        Insn::load_u32(R2, R1, 0),
        Insn::and32(R2, 0xffff),
        Insn::load_u32(R3, R1, 0),
        Insn::rsh32(R3, 16),
        Insn::load_u32(R4, R1, 4),
        Insn::load_u32(R5, R1, 8),
    ];
    // Exceptions say the opposite of the default.
    let verdict = i32::from(!state.default_allow);
    for e in &state.exceptions {
        let mut block = Vec::with_capacity(9);
        let typ = match e.typ {
            DevType::Char => BPF_DEVCG_DEV_CHAR,
            DevType::Block => BPF_DEVCG_DEV_BLOCK,
        };
        block.push(Insn::jne_imm(R2, typ));
        if e.access != ACC_ALL {
            block.push(Insn::mov32_reg(R1, R3));
            block.push(Insn::and32(R1, i32::from(e.access)));
            if state.default_allow {
                // A deny exception matches when any requested bit is denied.
                block.push(Insn::jeq_imm(R1, 0));
            } else {
                // An allow exception matches when every requested bit is allowed.
                block.push(Insn::jne_reg(R1, R3));
            }
        }
        if let Some(major) = e.major {
            block.push(Insn::jne_imm(R4, major as i32));
        }
        if let Some(minor) = e.minor {
            block.push(Insn::jne_imm(R5, minor as i32));
        }
        block.push(Insn::mov32_imm(R0, verdict));
        block.push(Insn::exit());
        // Every jump in a block skips to the start of the next block.
        let n = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.is_jump() {
                insn.off = (n - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(Insn::mov32_imm(R0, i32::from(state.default_allow)));
    prog.push(Insn::exit());
    prog
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized #[repr(C)] prefix of
    // `union bpf_attr` for `cmd`; the kernel reads (and for QUERY writes)
    // at most `size_of::<T>()` bytes and zero-extends the rest.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The BPF_PROG_LOAD part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH / BPF_PROG_DETACH part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The BPF_PROG_QUERY part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

/// The BPF_PROG_GET_FD_BY_ID part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Load a device filter into the kernel. `path` only labels errors. On a
/// verifier rejection the load is retried with logging so the error carries
/// the verifier's explanation.
pub(crate) fn load_device_program(insns: &[Insn], path: &Path) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_devcg\0");
    let attr = |log: &mut Vec<u8>, level: u32| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: level,
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        ..Default::default()
    };
    let mut no_log = Vec::new();
    let fd = match bpf(BPF_PROG_LOAD, &mut attr(&mut no_log, 0)) {
        Ok(fd) => fd,
        Err(source) => {
            let mut log = vec![0u8; 64 * 1024];
            let verifier_log = match bpf(BPF_PROG_LOAD, &mut attr(&mut log, 1)) {
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    String::from_utf8_lossy(&log[..end]).into_owned()
                }
                // Loaded with logging on: odd, but usable.
                Ok(fd) => return Ok(owned(fd)),
            };
            return Err(CgroupError::Bpf {
                op: "BPF_PROG_LOAD",
                path: path.to_path_buf(),
                source,
                verifier_log,
            });
        }
    };
    Ok(owned(fd))
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn bpf_error(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Bpf {
        op,
        path: path.to_path_buf(),
        source,
        verifier_log: String::new(),
    }
}

/// Ids of the device programs attached to the cgroup `dir` right now.
pub(crate) fn attached_device_programs(dir_fd: &OwnedFd, path: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = ProgQueryAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| bpf_error("BPF_PROG_QUERY", path, e))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Make `prog` the device filter of the cgroup directory `dir`, replacing
/// any device filters attached there before.
pub(crate) fn attach_device_program(dir: &Path, prog: &OwnedFd) -> Result<()> {
    let dir_fd: OwnedFd = std::fs::File::open(dir)
        .map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .into();
    let old = attached_device_programs(&dir_fd, dir)?;
    let mut attach = ProgAttachAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| bpf_error("BPF_PROG_ATTACH", dir, e))?;
    // Both filters are active for a moment; each must allow, so the window is
    // never more permissive than either policy.
    for id in old {
        let mut get = GetFdByIdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
            Ok(fd) => owned(fd),
            // Detached and freed meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_error("BPF_PROG_GET_FD_BY_ID", dir, e)),
        };
        let mut detach = ProgAttachAttr {
            target_fd: dir_fd.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_error("BPF_PROG_DETACH", dir, e)),
        }
    }
    Ok(())
}

/// Generate, load and attach the device filter for `state` to `dir`.
pub(crate) fn apply_device_filter(dir: &Path, state: &DeviceState) -> Result<()> {
    let insns = device_program(state);
    let prog = load_device_program(&insns, dir)?;
    attach_device_program(dir, &prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{emulate, parse_rules, Exception, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use oci_spec::runtime::LinuxDeviceCgroup;

    fn state(json: &str) -> DeviceState {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        emulate(&parse_rules(&rules).unwrap())
    }

    const PROLOGUE: [Insn; 6] = [
        Insn::load_u32(R2, R1, 0),
        Insn::and32(R2, 0xffff),
        Insn::load_u32(R3, R1, 0),
        Insn::rsh32(R3, 16),
        Insn::load_u32(R4, R1, 4),
        Insn::load_u32(R5, R1, 8),
    ];

    #[test]
    fn encodes_registers_like_the_kernel_struct() {
        // r2 = *(u32 *)(r1 + 0)  is 61 12 00 00 00 00 00 00 on x86-64.
        let i = Insn::load_u32(R2, R1, 0);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        #[cfg(target_endian = "little")]
        assert_eq!((i.code, i.regs), (0x61, 0x12));
        assert_eq!(Insn::exit().code, 0x95);
    }

    #[test]
    fn deny_all_program_is_prologue_and_return_zero() {
        let p = device_program(&state(r#"[{"allow": false, "access": "rwm"}]"#));
        let mut want = PROLOGUE.to_vec();
        want.push(Insn::mov32_imm(R0, 0));
        want.push(Insn::exit());
        assert_eq!(p, want);
    }

    #[test]
    fn allow_rules_generate_one_block_each() {
        let p = device_program(&state(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rw"},
                {"allow": true, "type": "b", "access": "m"}]"#,
        ));
        let mut want = PROLOGUE.to_vec();
        // c 1:3 rwm: type, major, minor; no access test for rwm.
        want.extend([
            Insn {
                off: 4,
                ..Insn::jne_imm(R2, BPF_DEVCG_DEV_CHAR)
            },
            Insn {
                off: 3,
                ..Insn::jne_imm(R4, 1)
            },
            Insn {
                off: 2,
                ..Insn::jne_imm(R5, 3)
            },
            Insn::mov32_imm(R0, 1),
            Insn::exit(),
        ]);
        // c 136:* rw: access must be a subset of rw.
        want.extend([
            Insn {
                off: 6,
                ..Insn::jne_imm(R2, BPF_DEVCG_DEV_CHAR)
            },
            Insn::mov32_reg(R1, R3),
            Insn::and32(R1, i32::from(ACC_READ | ACC_WRITE)),
            Insn {
                off: 3,
                ..Insn::jne_reg(R1, R3)
            },
            Insn {
                off: 2,
                ..Insn::jne_imm(R4, 136)
            },
            Insn::mov32_imm(R0, 1),
            Insn::exit(),
        ]);
        // b *:* m
        want.extend([
            Insn {
                off: 5,
                ..Insn::jne_imm(R2, BPF_DEVCG_DEV_BLOCK)
            },
            Insn::mov32_reg(R1, R3),
            Insn::and32(R1, i32::from(ACC_MKNOD)),
            Insn {
                off: 2,
                ..Insn::jne_reg(R1, R3)
            },
            Insn::mov32_imm(R0, 1),
            Insn::exit(),
        ]);
        want.push(Insn::mov32_imm(R0, 0));
        want.push(Insn::exit());
        assert_eq!(p, want);
    }

    #[test]
    fn deny_exceptions_match_on_any_bit() {
        let st = DeviceState {
            default_allow: true,
            exceptions: vec![Exception {
                typ: DevType::Block,
                major: Some(8),
                minor: Some(0),
                access: ACC_WRITE,
            }],
        };
        let p = device_program(&st);
        assert_eq!(
            p[6..],
            [
                Insn {
                    off: 7,
                    ..Insn::jne_imm(R2, BPF_DEVCG_DEV_BLOCK)
                },
                Insn::mov32_reg(R1, R3),
                Insn::and32(R1, i32::from(ACC_WRITE)),
                Insn {
                    off: 4,
                    ..Insn::jeq_imm(R1, 0)
                },
                Insn {
                    off: 3,
                    ..Insn::jne_imm(R4, 8)
                },
                Insn {
                    off: 2,
                    ..Insn::jne_imm(R5, 0)
                },
                Insn::mov32_imm(R0, 0),
                Insn::exit(),
                Insn::mov32_imm(R0, 1),
                Insn::exit(),
            ]
        );
    }

    /// Root only: the kernel verifier accepts what we generate.
    #[test]
    fn kernel_verifier_accepts_generated_programs() {
        for json in [
            r#"[{"allow": false, "access": "rwm"}]"#,
            r#"[{"allow": true, "access": "rwm"}]"#,
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rw"},
                {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                {"allow": true, "type": "b", "access": "m"},
                {"allow": true, "type": "c", "access": "m"}]"#,
            r#"[{"allow": true, "access": "rwm"},
                {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "w"}]"#,
        ] {
            let insns = device_program(&state(json));
            let fd = load_device_program(&insns, Path::new("(test)"))
                .unwrap_or_else(|e| panic!("verifier rejected program for {json}: {e}"));
            drop(fd);
        }
    }

    #[test]
    fn load_error_carries_the_verifier_log() {
        // Reading r6 before it is written is rejected by the verifier.
        let bad = [Insn::mov32_reg(R0, 6), Insn::exit()];
        let e = load_device_program(&bad, Path::new("/x")).unwrap_err();
        let CgroupError::Bpf { verifier_log, .. } = &e else {
            panic!("unexpected {e}");
        };
        assert!(!verifier_log.is_empty(), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
    /// Root only, on a host with a cgroup2 mount (pure v2, or hybrid like
    /// this build host): the attached filter really decides device access.
    #[test]
    fn attached_filter_is_enforced() {
        use std::os::fd::AsRawFd;
        use std::time::{SystemTime, UNIX_EPOCH};

        let mounts = crate::mounts::Mounts::read().unwrap();
        let v2 = mounts.v2.expect("this test needs a cgroup2 mount");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = v2
            .mount_point
            .join(format!("berth-test-bpf-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                for _ in 0..50 {
                    if std::fs::remove_dir(&self.0).is_ok() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                eprintln!("could not remove {}", self.0.display());
            }
        }
        let _cleanup = Cleanup(dir.clone());

        // Only /dev/null (c 1:3) is allowed.
        let st = state(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
        );
        apply_device_filter(&dir, &st).unwrap();
        // An update replaces the filter instead of stacking a second one.
        apply_device_filter(&dir, &st).unwrap();
        let dir_fd: OwnedFd = std::fs::File::open(&dir).unwrap().into();
        assert_eq!(attached_device_programs(&dir_fd, &dir).unwrap().len(), 1);

        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe(2) returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only calls async-signal-safe functions (read,
        // open, _exit) on data prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut b = 0u8;
            // SAFETY: reading one byte into a local; raw syscalls only.
            unsafe {
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                let zero = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
                let code = if null < 0 {
                    1
                } else if zero >= 0 {
                    2
                } else if *libc::__errno_location() != libc::EPERM {
                    3
                } else {
                    0
                };
                libc::_exit(code);
            }
        }
        assert!(pid > 0);
        crate::fsutil::write(&dir.join("cgroup.procs"), &pid.to_string()).unwrap();
        // SAFETY: writing one byte from a local to our pipe.
        unsafe { libc::write(fds[1], b"g".as_ptr().cast(), 1) };
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        // SAFETY: closing our pipe ends.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "1: /dev/null denied, 2: /dev/zero allowed, 3: wrong errno"
        );
        let _ = dir_fd.as_raw_fd();
    }
}
