use super::*;

/// Runs `program` over one call, as the kernel would.
fn run(program: &Program, nr: u32, arch: u32, arg0: u64) -> u32 {
    trace(program, nr, arch, arg0).0
}

/// The result and the number of instructions run.
fn trace(program: &Program, nr: u32, arch: u32, arg0: u64) -> (u32, usize) {
    let data = |off: u32| match off {
        NR => nr,
        ARCH => arch,
        ARG0_LOW => arg0 as u32,
        _ => panic!("unexpected load at {off}"),
    };
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0);
    loop {
        let i = program[pc];
        steps += 1;
        let (code, jt, jf, k) = ((i >> 48) as u16, (i >> 40) as u8, (i >> 32) as u8, i as u32);
        pc += 1;
        match code {
            LD_ABS => acc = data(k),
            RET => return (k, steps),
            JA => pc += k as usize,
            JEQ | JGE | JSET => {
                let taken = match code {
                    JEQ => acc == k,
                    JGE => acc >= k,
                    _ => acc & k != 0,
                };
                pc += if taken { jt } else { jf } as usize;
            }
            _ => panic!("unknown instruction {code:#x}"),
        }
    }
}

const DEFAULT_CAPS: u64 = 0xa804_25fb;
const DENY: u32 = RET_ERRNO | EPERM;

#[test]
fn every_rule_decides_as_the_profile_says() {
    let p = compile(DEFAULT_CAPS);
    let call = |nr: i64, arg0: u64| run(&p, nr as u32, AUDIT_ARCH, arg0);
    for &nr in ALLOWED.iter().chain(ALLOWED_ARCH) {
        assert_eq!(run(&p, nr, AUDIT_ARCH, 0), RET_ALLOW, "call {nr}");
    }
    for nr in [
        libc::SYS_mount,
        libc::SYS_unshare,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_add_key,
        libc::SYS_keyctl,
        libc::SYS_setns,
        libc::SYS_reboot,
        libc::SYS_bpf,
        // io_uring bypasses the filter for the calls it submits, as
        // Docker's profile blocks it since 25.0.
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        assert_eq!(call(nr, 0), DENY, "call {nr}");
    }
    assert_eq!(call(libc::SYS_chroot, 0), RET_ALLOW); // SYS_CHROOT is default
    assert_eq!(call(libc::SYS_socket, 2), RET_ALLOW);
    assert_eq!(call(libc::SYS_socket, 40), DENY);
    assert_eq!(call(libc::SYS_personality, 0xffff_ffff), RET_ALLOW);
    assert_eq!(call(libc::SYS_personality, 0x2_0008), RET_ALLOW);
    assert_eq!(call(libc::SYS_personality, 0x4_0000), DENY);
    assert_eq!(call(libc::SYS_clone, 0x11 | 0x0100_0000), RET_ALLOW); // fork
    assert_eq!(call(libc::SYS_clone, 0x1000_0000), DENY); // NEWUSER
    assert_eq!(call(libc::SYS_clone3, 0), RET_ERRNO | ENOSYS);
    let newest = newest_known();
    assert_eq!(run(&p, newest + 1, AUDIT_ARCH, 0), RET_ERRNO | ENOSYS);
    assert_eq!(run(&p, 100_000, AUDIT_ARCH, 0), RET_ERRNO | ENOSYS);
    assert_eq!(run(&p, 0, 0x4000_0003, 0), RET_KILL_PROCESS); // i386
    if let Some(bit) = X32_BIT {
        assert_eq!(run(&p, bit | 1, AUDIT_ARCH, 0), RET_KILL_PROCESS);
    }
    // Every number not named is denied.
    let rules = rules(DEFAULT_CAPS);
    for nr in 0..=newest {
        if !rules.contains_key(&nr) {
            assert_eq!(run(&p, nr, AUDIT_ARCH, 0), DENY, "call {nr}");
        }
    }
}

#[test]
fn capabilities_open_their_calls() {
    let admin = compile(DEFAULT_CAPS | 1 << CAP_SYS_ADMIN);
    for nr in [libc::SYS_mount, libc::SYS_unshare, libc::SYS_clone3] {
        assert_eq!(run(&admin, nr as u32, AUDIT_ARCH, 0), RET_ALLOW);
    }
    let ns = run(&admin, libc::SYS_clone as u32, AUDIT_ARCH, 0x1000_0000);
    assert_eq!(ns, RET_ALLOW);
    let module = compile(DEFAULT_CAPS | 1 << CAP_SYS_MODULE);
    let nr = libc::SYS_finit_module as u32;
    assert_eq!(run(&module, nr, AUDIT_ARCH, 0), RET_ALLOW);
    let none = compile(0);
    assert_eq!(run(&none, libc::SYS_chroot as u32, AUDIT_ARCH, 0), DENY);
    assert_eq!(run(&none, libc::SYS_read as u32, AUDIT_ARCH, 0), RET_ALLOW);
}

#[test]
fn the_program_is_small_and_a_call_is_a_short_search() {
    let p = compile(DEFAULT_CAPS);
    assert!(p.len() < 400, "{} instructions", p.len());
    let longest = (0..1000)
        .map(|nr| trace(&p, nr, AUDIT_ARCH, 0).1)
        .max()
        .unwrap();
    assert!(longest <= 20, "a call runs {longest} instructions");
}
