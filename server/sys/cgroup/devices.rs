//! Which device nodes a container may use: one allow list, enforced by the
//! devices controller on cgroup v1 and by a BPF_PROG_TYPE_CGROUP_DEVICE
//! program attached to the container's cgroup on v2 (which has no devices
//! controller). The program is assembled here from the list: a block of
//! checks per rule, the first rule that matches allows, none denies.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Access bits, as the kernel's BPF device context and v1's "rwm" mean them.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
const RWM: u8 = MKNOD | READ | WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

/// One allowed (kind, major, minor) with the access it may have; `None` is
/// any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

const fn rule(kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        kind,
        major,
        minor,
        access,
    }
}

/// Docker's defaults: any node may be created (mknod), but only null,
/// zero, full, random, urandom, tty, ptmx and the ptys opened.
pub const DEFAULT: &[Rule] = &[
    rule(Kind::Char, None, None, MKNOD),
    rule(Kind::Block, None, None, MKNOD),
    rule(Kind::Char, Some(1), Some(3), RWM), // null
    rule(Kind::Char, Some(1), Some(5), RWM), // zero
    rule(Kind::Char, Some(1), Some(7), RWM), // full
    rule(Kind::Char, Some(1), Some(8), RWM), // random
    rule(Kind::Char, Some(1), Some(9), RWM), // urandom
    rule(Kind::Char, Some(5), Some(0), RWM), // tty
    rule(Kind::Char, Some(5), Some(2), RWM), // ptmx
    rule(Kind::Char, Some(136), None, RWM),  // pts
];

/// The rules a spec's rule stands for: one per kind ('a': both).
pub fn from_spec(r: &crate::spec::CgroupRule) -> Vec<Rule> {
    let (kind, major, minor, access) = r;
    let bits = access.chars().fold(0, |bits, c| {
        bits | match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => 0,
        }
    });
    let kinds: &[Kind] = match kind {
        'c' => &[Kind::Char],
        'b' => &[Kind::Block],
        _ => &[Kind::Char, Kind::Block],
    };
    kinds
        .iter()
        .map(|k| rule(*k, *major, *minor, bits))
        .collect()
}

// The kernel's struct bpf_cgroup_dev_ctx: access_type (access << 16 |
// type), major, minor, each a u32.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One eBPF instruction, as the kernel's struct bpf_insn lays it out.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (class | size/op | source).
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV64_X: u8 = 0xbf; // dst = src
const MOV64_K: u8 = 0xb7; // dst = imm
const AND64_K: u8 = 0x57; // dst &= imm
const RSH64_K: u8 = 0x77; // dst >>= imm
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const EXIT: u8 = 0x95;

// Registers: r1 holds the context on entry, r0 the verdict on exit.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;
const SCRATCH: u8 = 6;

/// The program allowing what `rules` allow and denying everything else.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, TYPE, R1, CTX_ACCESS_TYPE, 0),
        insn(MOV64_X, ACCESS, TYPE, 0, 0),
        insn(AND64_K, TYPE, 0, 0, 0xffff),
        insn(RSH64_K, ACCESS, 0, 0, 16),
        insn(LDX_W, MAJOR, R1, CTX_MAJOR, 0),
        insn(LDX_W, MINOR, R1, CTX_MINOR, 0),
    ];
    for r in rules {
        // Each check jumps past the rule's block when it does not match;
        // the offsets are filled in once the block's length is known.
        let mut block = Vec::new();
        let kind = match r.kind {
            Kind::Char => DEV_CHAR,
            Kind::Block => DEV_BLOCK,
        };
        block.push(insn(JNE_K, TYPE, 0, 0, kind));
        if r.access & RWM != RWM {
            // Every bit asked for must be allowed: asked & !allowed == 0.
            block.push(insn(MOV64_X, SCRATCH, ACCESS, 0, 0));
            block.push(insn(AND64_K, SCRATCH, 0, 0, i32::from(!r.access & RWM)));
            block.push(insn(JNE_K, SCRATCH, 0, 0, 0));
        }
        if let Some(major) = r.major {
            block.push(insn(JNE_K, MAJOR, 0, 0, major as i32));
        }
        if let Some(minor) = r.minor {
            block.push(insn(JNE_K, MINOR, 0, 0, minor as i32));
        }
        block.push(insn(MOV64_K, R0, 0, 0, 1));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV64_K, R0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the cgroup's ancestors (systemd's, say) run as well, and
/// all must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of union bpf_attr for BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
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
}

/// The leading fields of union bpf_attr for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// bpf(2) with `attr`; the kernel zero-fills what it knows of beyond it.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a #[repr(C)] prefix of union bpf_attr that lives
    // across the call, and its exact size is passed; every pointer in it
    // points at memory that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        r => Ok(r),
    }
}

/// Loads the program for `rules` and attaches it to the cgroup v2
/// directory `cgroup`. The cgroup holds the program from then on; it goes
/// with the cgroup.
pub fn attach(cgroup: &OwnedFd, rules: &[Rule]) -> io::Result<()> {
    let insns = program(rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"berth_devices");
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let prog = bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let verifier = String::from_utf8_lossy(&log[..end]);
        match verifier.trim() {
            "" => io::Error::new(e.kind(), format!("load the device program: {e}")),
            v => io::Error::new(e.kind(), format!("load the device program: {e}: {v}")),
        }
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let mut attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach)
        .map_err(|e| io::Error::new(e.kind(), format!("attach the device program: {e}")))?;
    Ok(())
}
