//! Seccomp profiles in Docker's JSON format (`--security-opt
//! seccomp=PROFILE.json`), compiled by berth to the same kind of program
//! as its default filter: the default action, and per system call its
//! rules in the profile's order, the first whose argument conditions all
//! hold deciding. Conditions compare the full 64-bit argument. Entries
//! are kept or left out by the container's capabilities, this
//! architecture and the running kernel (`includes`, `excludes`); names
//! this architecture lacks are skipped, as libseccomp skips them.
//!
//! As with berth's own filter, calls of another architecture (i386, x32)
//! kill the process, whatever the profile's `architectures` list.

use super::{header, insn, names, ret, tree_of, Program, JEQ, JGE, LD_ABS, RET_ALLOW};
use super::{RET_ERRNO, RET_KILL_PROCESS};
use serde::Deserialize;
use std::collections::BTreeMap;

const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const EPERM: u32 = 1;

/// Offset of argument `i`'s low 32 bits in `struct seccomp_data`
/// (little-endian); its high ones follow.
fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProfileError {
    #[error("it is not a seccomp profile in Docker's JSON format: {0}")]
    Json(String),
    #[error("unknown action {0:?}")]
    Action(String),
    #[error("unknown comparison {0:?}")]
    Op(String),
    #[error("argument index {0} of {1}: system calls have 6 arguments (0 to 5)")]
    Index(u32, String),
    #[error("{0}: too many conditions for one rule")]
    TooLong(String),
    #[error("the compiled filter has {0} instructions, more than the kernel's 4096")]
    TooBig(usize),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    names: Vec<String>,
    /// Docker's older form: one name.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// This architecture as profiles name it.
#[cfg(target_arch = "x86_64")]
const ARCHES: &[&str] = &["amd64", "x86_64", "SCMP_ARCH_X86_64"];
#[cfg(target_arch = "aarch64")]
const ARCHES: &[&str] = &["arm64", "aarch64", "SCMP_ARCH_AARCH64"];

/// What the running system has, that entries are held to.
pub struct Host<'a> {
    /// The container's capabilities.
    pub caps: u64,
    /// Capability names by number.
    pub cap_names: &'a [&'a str],
    /// The kernel's release (major, minor).
    pub kernel: (u32, u32),
}

impl Host<'_> {
    fn has_cap(&self, name: &str) -> bool {
        let name = name.strip_prefix("CAP_").unwrap_or(name);
        self.cap_names
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .is_some_and(|n| self.caps & (1 << n) != 0)
    }

    /// Whether an entry with these includes and excludes applies.
    fn applies(&self, inc: &Filter, exc: &Filter) -> bool {
        let arch = |a: &String| ARCHES.contains(&a.as_str());
        let newer = |v: &String| kernel_version(v).is_some_and(|k| self.kernel >= k);
        inc.caps.iter().all(|c| self.has_cap(c))
            && (inc.arches.is_empty() || inc.arches.iter().any(arch))
            && inc.min_kernel.as_ref().is_none_or(newer)
            && !exc.caps.iter().any(|c| self.has_cap(c))
            && !exc.arches.iter().any(arch)
            && !exc.min_kernel.as_ref().is_some_and(newer)
    }
}

/// "5.10" (or "5.10.0-foo") as (5, 10).
pub fn kernel_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// The return value of `action`, with `errno` for the actions that take
/// one (EPERM if not given).
fn action(action: &str, errno: Option<u32>) -> Result<u32, ProfileError> {
    let errno = errno.unwrap_or(EPERM) & 0xffff;
    Ok(match action {
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_ERRNO" => RET_ERRNO | errno,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_TRACE" => RET_TRACE | errno,
        "SCMP_ACT_LOG" => RET_LOG,
        other => return Err(ProfileError::Action(other.into())),
    })
}

/// A jump target inside a rule's code, resolved once it is laid out.
#[derive(Clone, Copy)]
enum To {
    Next,
    /// The next condition (or the rule's return).
    Pass,
    /// The next rule.
    Fail,
}

struct Ins(u16, To, To, u32);

/// The code of one condition on a 64-bit argument.
fn condition(a: &Arg) -> Result<Vec<Ins>, ProfileError> {
    let (lo, hi) = (arg_low(a.index), arg_low(a.index) + 4);
    let (v_hi, v_lo) = ((a.value >> 32) as u32, a.value as u32);
    let ld = |off| Ins(LD_ABS, To::Next, To::Next, off);
    use To::{Fail, Next, Pass};
    Ok(match a.op.as_str() {
        "SCMP_CMP_EQ" => vec![
            ld(hi),
            Ins(JEQ, Next, Fail, v_hi),
            ld(lo),
            Ins(JEQ, Pass, Fail, v_lo),
        ],
        "SCMP_CMP_NE" => vec![
            ld(hi),
            Ins(JEQ, Next, Pass, v_hi),
            ld(lo),
            Ins(JEQ, Fail, Pass, v_lo),
        ],
        "SCMP_CMP_GT" | "SCMP_CMP_GE" => {
            let last = if a.op == "SCMP_CMP_GT" { JGT } else { JGE };
            vec![
                ld(hi),
                Ins(JGT, Pass, Next, v_hi),
                Ins(JEQ, Next, Fail, v_hi),
                ld(lo),
                Ins(last, Pass, Fail, v_lo),
            ]
        }
        "SCMP_CMP_LT" | "SCMP_CMP_LE" => {
            // Less (or equal) is not greater-or-equal (or greater).
            let last = if a.op == "SCMP_CMP_LT" { JGE } else { JGT };
            vec![
                ld(hi),
                Ins(JGT, Fail, Next, v_hi),
                Ins(JEQ, Next, Pass, v_hi),
                ld(lo),
                Ins(last, Fail, Pass, v_lo),
            ]
        }
        "SCMP_CMP_MASKED_EQ" => {
            let (m_hi, m_lo) = (v_hi, v_lo);
            let (e_hi, e_lo) = ((a.value_two >> 32) as u32, a.value_two as u32);
            vec![
                ld(hi),
                Ins(AND, Next, Next, m_hi),
                Ins(JEQ, Next, Fail, e_hi),
                ld(lo),
                Ins(AND, Next, Next, m_lo),
                Ins(JEQ, Pass, Fail, e_lo),
            ]
        }
        other => return Err(ProfileError::Op(other.into())),
    })
}

/// One rule: its conditions, then its return; a failed condition jumps
/// past the return, to what follows the rule.
fn rule(args: &[Arg], ret_value: u32, name: &str) -> Result<Vec<u64>, ProfileError> {
    let mut blocks = Vec::new();
    for a in args {
        if a.index > 5 {
            return Err(ProfileError::Index(a.index, name.into()));
        }
        blocks.push(condition(a)?);
    }
    let total: usize = blocks.iter().map(Vec::len).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(total);
    for block in blocks {
        let end = out.len() + block.len();
        for Ins(code, jt, jf, k) in block {
            let at = out.len() + 1;
            let offset = |to: To| -> Result<u8, ProfileError> {
                let target = match to {
                    To::Next => at,
                    To::Pass => end,
                    To::Fail => total,
                };
                u8::try_from(target - at).map_err(|_| ProfileError::TooLong(name.into()))
            };
            out.push(insn(code, offset(jt)?, offset(jf)?, k));
        }
    }
    out.push(ret(ret_value));
    Ok(out)
}

/// The program `json` (Docker's profile format) gives a container on
/// `host`.
pub fn compile_profile(json: &str, host: &Host) -> Result<Program, ProfileError> {
    let profile: Profile =
        serde_json::from_str(json).map_err(|e| ProfileError::Json(e.to_string()))?;
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    // Per call number, its rules' code in the profile's order.
    let mut calls: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for e in &profile.syscalls {
        let ret_value = action(&e.action, e.errno_ret)?;
        if !host.applies(&e.includes, &e.excludes) {
            continue;
        }
        for name in e.names.iter().chain(&e.name) {
            let Some(nr) = names::number(name) else {
                tracing::debug!(call = %name, "seccomp profile: no such call here, skipped");
                continue;
            };
            let code = rule(&e.args, ret_value, name)?;
            calls.entry(nr).or_default().extend(code);
        }
    }
    // Gaps and what no rule matched: the default action.
    let mut ranges: Vec<(u32, Vec<u64>)> = Vec::new();
    let mut next = 0;
    for (nr, mut code) in calls {
        if nr > next {
            ranges.push((next, vec![ret(default)]));
        }
        code.push(ret(default));
        ranges.push((nr, code));
        next = nr + 1;
    }
    ranges.push((next, vec![ret(default)]));
    let mut p = header();
    p.extend(tree_of(&ranges));
    if p.len() > 4096 {
        return Err(ProfileError::TooBig(p.len()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::{AUDIT_ARCH, JA, NR, RET};
    use super::*;

    /// Runs `p` over a call as the kernel would.
    fn run(p: &Program, nr: u32, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                NR => nr,
                4 => AUDIT_ARCH,
                o if o >= 16 => {
                    let a = args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
                o => panic!("load at {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = p[pc];
            let (code, jt, jf, k) = ((i >> 48) as u16, (i >> 40) as u8, (i >> 32) as u8, i as u32);
            pc += 1;
            let jump = |taken: bool| if taken { jt } else { jf } as usize;
            match code {
                LD_ABS => acc = word(k),
                RET => return k,
                JA => pc += k as usize,
                AND => acc &= k,
                JEQ => pc += jump(acc == k),
                JGE => pc += jump(acc >= k),
                JGT => pc += jump(acc > k),
                0x45 => pc += jump(acc & k != 0),
                c => panic!("instruction {c:#x}"),
            }
        }
    }

    /// The one capability the tests use, as bit 0.
    const CAPS: [&str; 1] = ["SYS_ADMIN"];

    fn host(caps: u64) -> Host<'static> {
        Host {
            caps,
            cap_names: &CAPS,
            kernel: (6, 1),
        }
    }

    const MKDIRAT: u32 = libc::SYS_mkdirat as u32;
    const FCHMODAT: u32 = libc::SYS_fchmodat as u32;
    const GETPID: u32 = libc::SYS_getpid as u32;
    const SETNS: u32 = libc::SYS_setns as u32;

    #[test]
    fn actions_and_the_default_apply_per_call() {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["getpid", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"name": "setns", "action": "SCMP_ACT_KILL_PROCESS"}
            ]}"#;
        let p = compile_profile(json, &host(0)).unwrap();
        assert_eq!(run(&p, GETPID, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, MKDIRAT, [0; 6]), RET_ERRNO | 13);
        assert_eq!(run(&p, SETNS, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&p, 0, [0; 6]), RET_ERRNO | 38);
        assert_eq!(run(&p, 1000, [0; 6]), RET_ERRNO | 38);
    }

    #[test]
    fn conditions_compare_all_64_bits_and_the_first_matching_rule_wins() {
        let rule = |op: &str, value: u64, two: u64| {
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {{"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
                      "args": [{{"index": 2, "value": {value}, "valueTwo": {two}, "op": "{op}"}}]}}]}}"#
            )
        };
        let denied = RET_ERRNO | EPERM;
        let big = 1u64 << 32 | 5;
        for (op, value, two, yes, no) in [
            (
                "SCMP_CMP_EQ",
                0o777,
                0,
                vec![0o777],
                vec![0o755, 0o777 | 1 << 32],
            ),
            (
                "SCMP_CMP_NE",
                0o777,
                0,
                vec![0o755, 0o777 | 1 << 32],
                vec![0o777],
            ),
            (
                "SCMP_CMP_GT",
                big,
                0,
                vec![big + 1, 2 << 32],
                vec![big, 5, 1 << 32],
            ),
            ("SCMP_CMP_GE", big, 0, vec![big, 2 << 32], vec![big - 1, 6]),
            ("SCMP_CMP_LT", big, 0, vec![big - 1, 6], vec![big, 2 << 32]),
            ("SCMP_CMP_LE", big, 0, vec![big, 5], vec![big + 1, 2 << 32]),
            (
                "SCMP_CMP_MASKED_EQ",
                0o700 | 1 << 40,
                0o700,
                vec![0o755, 0o700],
                vec![0o655, 0o755 | 1 << 40],
            ),
        ] {
            let p = compile_profile(&rule(op, value, two), &host(0)).unwrap();
            for v in yes {
                assert_eq!(run(&p, FCHMODAT, [0, 0, v, 0, 0, 0]), denied, "{op} {v:#x}");
            }
            for v in no {
                assert_eq!(
                    run(&p, FCHMODAT, [0, 0, v, 0, 0, 0]),
                    RET_ALLOW,
                    "{op} {v:#x}"
                );
            }
        }
        // Two rules for one call: the first that holds decides.
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ALLOW"}]}"#;
        let p = compile_profile(json, &host(0)).unwrap();
        assert_eq!(run(&p, FCHMODAT, [0, 0, 511, 0, 0, 0]), RET_ERRNO | 13);
        assert_eq!(run(&p, FCHMODAT, [0, 0, 493, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn includes_and_excludes_hold_to_caps_arch_and_kernel() {
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["setns"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.0"}}]}"#;
        let admin = 1;
        let p = compile_profile(json, &host(admin)).unwrap();
        assert_eq!(run(&p, SETNS, [0; 6]), RET_ALLOW);
        assert_ne!(run(&p, GETPID, [0; 6]), RET_ALLOW);
        let p = compile_profile(json, &host(0)).unwrap();
        assert_ne!(run(&p, SETNS, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, GETPID, [0; 6]), RET_ALLOW);
        assert_ne!(run(&p, MKDIRAT, [0; 6]), RET_ALLOW);
        assert_ne!(run(&p, FCHMODAT, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn what_cannot_be_compiled_says_why() {
        let bad = |json: &str| compile_profile(json, &host(0)).unwrap_err();
        assert!(matches!(bad("{"), ProfileError::Json(_)));
        assert!(matches!(bad(r#"{"syscalls": []}"#), ProfileError::Json(_)));
        assert_eq!(
            bad(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#),
            ProfileError::Action("SCMP_ACT_NOTIFY".into())
        );
        let arg = |index: u32, op: &str| {
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{{"index": {index}, "value": 1, "op": "{op}"}}]}}]}}"#
            )
        };
        assert_eq!(
            bad(&arg(6, "SCMP_CMP_EQ")),
            ProfileError::Index(6, "read".into())
        );
        assert_eq!(
            bad(&arg(0, "SCMP_CMP_ABOUT")),
            ProfileError::Op("SCMP_CMP_ABOUT".into())
        );
        assert_eq!(kernel_version("6.1.0-57-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5"), Some((5, 0)));
    }
}
